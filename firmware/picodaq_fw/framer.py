# Framer: builds TLV frames (PROTOCOL.md) into preallocated buffers.
# Every int handed to pack_into stays below 2**30 (wide u32 fields go as u16
# halves), and the CRC never leaves viper, so building a frame allocates nothing.
import micropython
from array import array
from micropython import const
from struct import pack_into
from . import budget, crc32, counter32
from .ring import RSLOT, SPF, CBYTES
from .contracts import (
    MAGIC0, MAGIC1, PROTOCOL_VERSION, HEADER_SIZE, OVERHEAD, MAX_PAYLOAD,
    MSG_HELLO, MSG_SAMPLES, MSG_STATUS, MSG_MARKER, MSG_LOG, MSG_ACK, LOG_MAX,
    HELLO_FMT, SAMPLES_FMT, STATUS_FMT, MARKER_FMT, ACK_FMT,
)

_SAMPLES_HEAD = const(16)
_U16_MAX = const(0xFFFF)
_LEN_SEQ_FMT = "<BHHH"  # type, length, seq lo, seq hi at offset 3
_SEQ = const(0)  # index of the sequence counter in self.seq (u16 halves)


class Framer:
    def __init__(self):
        # SAMPLES frames: the buffer taken at boot (budget.early), or a new one
        self.sbuf = budget.frame if budget.frame is not None else bytearray(OVERHEAD + MAX_PAYLOAD)
        self.cbuf = bytearray(OVERHEAD + LOG_MAX)  # every other frame
        for b in (self.sbuf, self.cbuf):
            b[0] = MAGIC0
            b[1] = MAGIC1
            b[2] = PROTOCOL_VERSION
        self.seq = array("H", bytes(4))
        self.crc = crc32.new_state()

    def frames_sent(self):
        return self.seq  # halves: the seq counter is the count of frames sent

    def _head(self, buf, mtype, n):
        pack_into(_LEN_SEQ_FMT, buf, 3, mtype, n, self.seq[_SEQ], self.seq[_SEQ + 1])
        counter32.add(self.seq, _SEQ, 1)

    def _seal(self, buf, n):
        # CRC over header and payload, stored after them; returns the frame size
        c = self.crc
        crc32.reset(c)
        crc32.update(c, buf, 0, HEADER_SIZE + n)
        crc32.store(c, buf, HEADER_SIZE + n)
        return OVERHEAD + n

    def samples(self, ring, period_ns, nch, fmt):
        """Frame the ring's oldest chunk into sbuf and release it; returns the size."""
        b = self.sbuf
        st = ring.st
        s = st[RSLOT]
        cb = st[CBYTES]
        n = _SAMPLES_HEAD + cb
        self._head(b, MSG_SAMPLES, n)
        first = ring.first
        pack_into(SAMPLES_FMT, b, HEADER_SIZE, first[2 * s], first[2 * s + 1],
                  ring.t0[s], period_ns, nch, fmt, st[SPF])
        c = self.crc
        crc32.reset(c)
        crc32.update(c, b, 0, HEADER_SIZE + _SAMPLES_HEAD)
        # copied out before release(): the writer may refill the slot after it
        crc32.copy(c, b, HEADER_SIZE + _SAMPLES_HEAD, ring.buf, s * cb, cb)
        crc32.store(c, b, HEADER_SIZE + n)
        ring.release()
        return OVERHEAD + n

    def ack(self, cmd_id, opcode, status):
        b = self.cbuf
        self._head(b, MSG_ACK, 4)
        pack_into(ACK_FMT, b, HEADER_SIZE, cmd_id, opcode, status)
        return self._seal(b, 4)

    def status(self, uptime, counts, di, high_water, capacity, free_heap, last_error, state):
        # uptime: u16 halves at index 0; samples_dropped: counts[di], counts[di + 1]
        b = self.cbuf
        self._head(b, MSG_STATUS, 24)
        fs = self.seq  # frames_sent counts this STATUS frame too
        # the u16 ring fields saturate: a fast 1 s ring can hold more instants
        pack_into(STATUS_FMT, b, HEADER_SIZE, uptime[0], uptime[1], fs[0], fs[1],
                  counts[di], counts[di + 1], min(high_water, _U16_MAX), min(capacity, _U16_MAX),
                  free_heap, last_error, state)
        return self._seal(b, 24)

    def marker(self, index, i, code):
        # index[i], index[i + 1]: the sample index as u16 halves
        b = self.cbuf
        self._head(b, MSG_MARKER, 8)
        pack_into(MARKER_FMT, b, HEADER_SIZE, index[i], index[i + 1], code, 0)
        return self._seal(b, 8)

    def hello(self, version, hash_le, board_id, platform, max_channels, source, max_rate, sources, ring_bytes):
        # sources (bit k: source kind k is on this board) and ring_bytes go in the bytes
        # PROTOCOL.md reserves, at 30 and 32 (31 stays 0); ring_bytes < 2**30 on any board
        b = self.cbuf
        self._head(b, MSG_HELLO, 64)
        for i in range(HEADER_SIZE, HEADER_SIZE + 64):
            b[i] = 0
        pack_into(HELLO_FMT, b, HEADER_SIZE, version[0], version[1], version[2], PROTOCOL_VERSION,
                  hash_le[0] | hash_le[1] << 8, hash_le[2] | hash_le[3] << 8,
                  board_id, platform, max_channels, source, max_rate, sources, 0, ring_bytes)
        return self._seal(b, 64)

    def log(self, level, text):
        """A LOG frame. text is a str (idle only: encoding allocates) or a
        bytes constant (allocation-free, usable while streaming)."""
        b = self.cbuf
        data = text.encode() if isinstance(text, str) else text
        n = min(len(data), LOG_MAX - 1)
        self._head(b, MSG_LOG, n + 1)
        b[HEADER_SIZE] = level
        _copy(b, HEADER_SIZE + 1, data, n)
        return self._seal(b, n + 1)


@micropython.viper
def _copy(dst: ptr8, off: int, src: ptr8, n: int):
    i = 0
    while i < n:
        dst[off + i] = src[i]
        i += 1
