# CRC-32 (zlib polynomial), kept in a small array and stored as bytes.
# binascii.crc32 returns an int that is often >= 2**30, a heap object on rp2;
# here no int ever leaves the machine code, so framing allocates nothing.
#
# Two implementations of the byte loop, the same results:
# - viper (every board; the unix port): ~63 cycles a byte on an RP2040 (the
#   armv6m emitter keeps most locals on the stack), ~98 with the copy;
# - Thumb inline assembler, compiled when this module loads on an Arm board
#   (rp2: RP2040, RP2350 in Arm mode): ~14.5 cycles a byte, ~17 with the copy.
#   The source is compiled when this module loads (thumb.py says why).
# Cycles measured on the emulated RP2040: `picodaq bench --only rp2040`.
import micropython
from array import array
from micropython import const
from .thumb import assemble

_TABLE = array("I", bytes(1024))


def _build():
    # runs once at import; the big ints made here never reach the hot path
    for i in range(256):
        c = i
        for _ in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if (c & 1) else (c >> 1)
        _TABLE[i] = c


_build()

# state words: 0 the running CRC, 1 the table's address (Thumb), 2 and 3 the
# destination and source offsets of copy() (Thumb: only four arguments)
_NSTATE = const(4)


@micropython.viper
def reset(state: ptr32):
    state[0] = int(-1)


@micropython.viper
def update_viper(state: ptr32, buf: ptr8, off: int, n: int):
    t = ptr32(_TABLE)
    c = uint(state[0])
    i = off
    end = off + n
    while i < end:
        c = uint(t[(c ^ uint(buf[i])) & 0xFF]) ^ (c >> 8)
        i += 1
    state[0] = c


@micropython.viper
def copy_viper(state: ptr32, dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
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


_THUMB = """
@micropython.asm_thumb
def address(r0):
    # a buffer argument arrives as the address of its data: return it
    pass


@micropython.asm_thumb
def update(r0, r1, r2, r3):
    # r0 state, r1 buffer, r2 offset, r3 count
    cmp(r3, 0)
    beq(done)
    add(r1, r1, r2)
    ldr(r6, [r0, 4])
    ldr(r4, [r0, 0])
    label(loop)
    ldrb(r5, [r1, 0])
    eor(r5, r4)
    lsl(r5, r5, 24)
    lsr(r5, r5, 22)
    add(r5, r5, r6)
    ldr(r5, [r5, 0])
    lsr(r4, r4, 8)
    eor(r4, r5)
    add(r1, 1)
    sub(r3, 1)
    bne(loop)
    str(r4, [r0, 0])
    label(done)


@micropython.asm_thumb
def copy4(r0, r1, r2, r3):
    # r0 state (words 2, 3: destination and source offsets), r1 destination,
    # r2 source, r3 count
    cmp(r3, 0)
    beq(done)
    ldr(r4, [r0, 8])
    add(r1, r1, r4)
    ldr(r4, [r0, 12])
    add(r2, r2, r4)
    ldr(r6, [r0, 4])
    ldr(r4, [r0, 0])
    label(loop)
    ldrb(r5, [r2, 0])
    strb(r5, [r1, 0])
    eor(r5, r4)
    lsl(r5, r5, 24)
    lsr(r5, r5, 22)
    add(r5, r5, r6)
    ldr(r5, [r5, 0])
    lsr(r4, r4, 8)
    eor(r4, r5)
    add(r1, 1)
    add(r2, 1)
    sub(r3, 1)
    bne(loop)
    str(r4, [r0, 0])
    label(done)
"""


def new_state():
    s = array("I", bytes(4 * _NSTATE))
    s[1] = _TABLE_ADDR
    return s


def _copy_thumb(state, dst, doff, src, soff, n):
    state[2] = doff
    state[3] = soff
    _copy4(state, dst, src, n)


update = update_viper
copy = copy_viper
THUMB = False
_TABLE_ADDR = 0
_update_thumb = None
_T = assemble(_THUMB)
if _T is not None:
    THUMB = True
    _TABLE_ADDR = _T["address"](_TABLE)
    update = _update_thumb = _T["update"]
    _copy4 = _T["copy4"]
    copy = _copy_thumb
_T = None
