# Byte stores are written out in each fill: calling a helper from viper would
# box the sample word, and on rp2 an int >= 2**30 is a heap allocation.
# Integer-only sample sources that write whole instants, already encoded in
# the frame's sample format, straight into the sample ring. Floats allocate on
# MicroPython, so the sine is a precomputed table stepped by a phase accumulator.
import micropython
from array import array
from micropython import const
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


# The unix-port board's stand-ins for the rp2's front ends: deterministic signals in the units
# those front ends ship, so a host's scaling to volts and microvolts is checked end to end on
# the emulated board. Channel k below is the k-th enabled channel, n the sample index.
_TRI_SPAN = const(8192)  # a triangle's period in steps of the 12-bit code: up 4096, down 4096
_SQUARE_SHIFT = const(14)  # the ADS1299 square's amplitude: (k + 1) << 14 counts


@micropython.viper
def _tri_fill(buf: ptr8, off: int, n: int, acc: ptr32, nch: int):
    # acc[k]: position on the triangle (0..8191); int16 little-endian codes 0..4095
    o = off
    i = 0
    while i < n:
        c = 0
        while c < nch:
            t = acc[c]
            acc[c] = (t + (c + 1) * 16) & (_TRI_SPAN - 1)
            if t >= 4096:
                t = _TRI_SPAN - 1 - t
            buf[o] = t
            buf[o + 1] = t >> 8
            o += 2
            c += 1
        i += 1


@micropython.viper
def _tri_skip(acc: ptr32, n: int, nch: int):
    # mod 8192, which divides the machine word's wrap: n may be large
    c = 0
    while c < nch:
        acc[c] = (uint(acc[c]) + uint(n) * uint((c + 1) * 16)) & uint(_TRI_SPAN - 1)
        c += 1


@micropython.viper
def _square_fill(buf: ptr8, off: int, n: int, st: ptr32, nch: int):
    # st[0]: instant within the period, st[1]: the period (the rate: 1 Hz); int24 big-endian
    o = off
    k = st[0]
    period = st[1]
    half = period >> 1
    i = 0
    while i < n:
        c = 0
        while c < nch:
            a = (c + 1) << _SQUARE_SHIFT
            if k >= half:
                a = 0 - a
            buf[o] = a >> 16
            buf[o + 1] = a >> 8
            buf[o + 2] = a
            o += 3
            c += 1
        k += 1
        if k >= period:
            k = 0
        i += 1
    st[0] = k


class AdcTriangle:
    """The rp2 ADC's stand-in: 12-bit codes (int16), channel k a triangle over the whole range,
    0..4095 and back, of period 512 / (k + 1) instants: code(k, n) = t if t < 4096 else 8191 - t,
    t = 16 (k + 1) n mod 8192. In volts (3.3 V / 4096 per code): 0 to 3.2992 V."""

    def __init__(self):
        self.acc = array("I", bytes(4 * MAX_CHANNELS))
        self.nch = 1

    def start(self, nch, fmt, rate):
        self.nch = nch
        for c in range(nch):
            self.acc[c] = 0

    def fill(self, buf, off, n):
        _tri_fill(buf, off, n, self.acc, self.nch)

    def skip(self, n):
        _tri_skip(self.acc, n, self.nch)


class AdsSquare:
    """The ADS1299's stand-in: int24 counts, channel k a 1 Hz square wave of +-(k + 1) * 2**14
    counts, high for the first half of each second from sample 0: at the host's gain G one count is
    2 * 4.5 V / G / 2**24, so at G = 24 channel k swings +-(k + 1) * 366.2 uV."""

    def __init__(self):
        self.st = array("i", bytes(8))
        self.nch = 1

    def start(self, nch, fmt, rate):
        self.nch = nch
        self.st[0] = 0
        self.st[1] = rate

    def fill(self, buf, off, n):
        _square_fill(buf, off, n, self.st, self.nch)

    def skip(self, n):
        self.st[0] = (self.st[0] + n) % self.st[1]
