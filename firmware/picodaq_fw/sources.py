# Byte stores are written out in each fill: calling a helper from viper would
# box the sample word, and on rp2 an int >= 2**30 is a heap allocation.
# Integer-only sample sources that write whole instants, already encoded in
# the frame's sample format, straight into the sample ring. Floats allocate on
# MicroPython, so the sine is a precomputed table stepped by a phase accumulator.
import micropython
from array import array
from .contracts import RAMP_MUL, RAMP_CHAN_MUL, MAX_CHANNELS, FMT_INT24, BYTES_PER_SAMPLE


@micropython.viper
def _ramp_fill(buf: ptr8, off: int, n: int, acc: ptr32, nch: int, bps: int, be: int, mask: uint):
    # acc[c] holds value(c, n) + 2**(B-1) mod 2**B: the two's-complement
    # encoding of the ramp, so stepping it is one add and one mask
    o = off
    i = 0
    while i < n:
        c = 0
        while c < nch:
            a = uint(acc[c])
            acc[c] = (a + uint(RAMP_MUL)) & mask
            if be:
                j = o + bps - 1
                while j >= o:
                    buf[j] = a
                    a = a >> 8
                    j -= 1
            else:
                j = o
                while j < o + bps:
                    buf[j] = a
                    a = a >> 8
                    j += 1
            o += bps
            c += 1
        i += 1


@micropython.viper
def _ramp_skip(acc: ptr32, n: int, nch: int, mask: uint):
    step = uint(n) * uint(RAMP_MUL)
    c = 0
    while c < nch:
        acc[c] = (uint(acc[c]) + step) & mask
        c += 1


@micropython.viper
def _ramp_init(acc: ptr32, nch: int, bits: int, mask: uint):
    top = uint(1) << uint(bits - 1)
    c = 0
    while c < nch:
        acc[c] = (uint(c) * uint(RAMP_CHAN_MUL) + top) & mask
        c += 1


@micropython.viper
def _sine_fill(buf: ptr8, off: int, n: int, phase: ptr32, step: ptr32, table: ptr16,
               nch: int, bps: int, be: int, shift: int, mask: uint):
    o = off
    i = 0
    while i < n:
        c = 0
        while c < nch:
            p = uint(phase[c])
            v = int(table[p >> 24])
            if v >= 32768:
                v -= 65536  # table is int16 read through an unsigned pointer
            phase[c] = p + uint(step[c])
            a = uint(v << shift) & mask
            if be:
                j = o + bps - 1
                while j >= o:
                    buf[j] = a
                    a = a >> 8
                    j -= 1
            else:
                j = o
                while j < o + bps:
                    buf[j] = a
                    a = a >> 8
                    j += 1
            o += bps
            c += 1
        i += 1


@micropython.viper
def _phase_skip(phase: ptr32, step: ptr32, n: int, nch: int):
    c = 0
    while c < nch:
        phase[c] = uint(phase[c]) + uint(n) * uint(step[c])
        c += 1


def _mask(bits):
    # 2**bits - 1 without making an int >= 2**30 when bits is 32
    return -1 if bits == 32 else (1 << bits) - 1


class Ramp:
    """The bit-exact test pattern of PROTOCOL.md."""

    def __init__(self):
        self.acc = array("I", bytes(4 * MAX_CHANNELS))
        self.nch = 1
        self.bps = 2
        self.be = 0
        self.mask = 0xFFFF

    def start(self, nch, fmt, rate):
        self.nch = nch
        self.bps = BYTES_PER_SAMPLE[fmt]
        self.be = 1 if fmt == FMT_INT24 else 0
        bits = 8 * self.bps
        self.mask = _mask(bits)
        _ramp_init(self.acc, nch, bits, self.mask)

    def fill(self, buf, off, n):
        _ramp_fill(buf, off, n, self.acc, self.nch, self.bps, self.be, self.mask)

    def skip(self, n):
        _ramp_skip(self.acc, n, self.nch, self.mask)


class Sine:
    """Channel c is a sine of (c + 1) * 5 Hz at 90% of full scale."""

    def __init__(self):
        import math

        self.table = array("h", bytes(512))
        for k in range(256):
            self.table[k] = int(29490 * math.sin(2 * math.pi * k / 256))
        self.phase = array("I", bytes(4 * MAX_CHANNELS))
        self.step = array("I", bytes(4 * MAX_CHANNELS))
        self.nch = 1
        self.bps = 2
        self.be = 0
        self.shift = 0
        self.mask = 0xFFFF

    def start(self, nch, fmt, rate):
        self.nch = nch
        self.bps = BYTES_PER_SAMPLE[fmt]
        self.be = 1 if fmt == FMT_INT24 else 0
        self.shift = 8 * self.bps - 16
        self.mask = _mask(8 * self.bps)
        for c in range(nch):
            f = (c + 1) * 5
            while 2 * f >= rate and f > 1:
                f //= 2
            self.phase[c] = 0
            self.step[c] = (f << 32) // rate  # outside the hot path: big ints are fine here

    def fill(self, buf, off, n):
        _sine_fill(buf, off, n, self.phase, self.step, self.table, self.nch, self.bps, self.be,
                   self.shift, self.mask)

    def skip(self, n):
        _phase_skip(self.phase, self.step, n, self.nch)
