# CRC-32 (zlib polynomial) in viper, kept in a 1-word array and stored as bytes.
# binascii.crc32 returns an int that is often >= 2**30, a heap object on rp2;
# here no int ever leaves viper, so framing allocates nothing.
import micropython
from array import array

_TABLE = array("I", bytes(1024))


def _build():
    # runs once at import; the big ints made here never reach the hot path
    for i in range(256):
        c = i
        for _ in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if (c & 1) else (c >> 1)
        _TABLE[i] = c


_build()


def new_state():
    return array("I", bytes(4))


@micropython.viper
def reset(state: ptr32):
    state[0] = int(-1)


@micropython.viper
def update(state: ptr32, buf: ptr8, off: int, n: int):
    t = ptr32(_TABLE)
    c = uint(state[0])
    i = off
    end = off + n
    while i < end:
        c = uint(t[(c ^ uint(buf[i])) & 0xFF]) ^ (c >> 8)
        i += 1
    state[0] = c


@micropython.viper
def copy(state: ptr32, dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
    # copy src[soff:soff+n] to dst[doff:] and fold it into the CRC in one pass
    t = ptr32(_TABLE)
    c = uint(state[0])
    i = 0
    while i < n:
        b = uint(src[soff + i])
        dst[doff + i] = b
        c = uint(t[(c ^ b) & 0xFF]) ^ (c >> 8)
        i += 1
    state[0] = c


@micropython.viper
def store(state: ptr32, buf: ptr8, off: int):
    # final xor, little-endian, byte by byte: no 32-bit constant needed
    c = uint(state[0])
    buf[off] = (c & 0xFF) ^ 0xFF
    buf[off + 1] = ((c >> 8) & 0xFF) ^ 0xFF
    buf[off + 2] = ((c >> 16) & 0xFF) ^ 0xFF
    buf[off + 3] = ((c >> 24) & 0xFF) ^ 0xFF


@micropython.viper
def matches(state: ptr32, buf: ptr8, off: int) -> bool:
    # True when buf[off:off+4] holds this CRC (finalised)
    c = uint(state[0]) ^ uint(0xFF)
    i = 0
    while i < 4:
        if uint(buf[off + i]) != (c & 0xFF):
            return False
        c = (c >> 8) ^ uint(0xFF)
        i += 1
    return True
