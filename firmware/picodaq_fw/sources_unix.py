# The unix-port board's stand-ins for the rp2's front ends: deterministic signals in the units
# those front ends ship, so a host's scaling to volts and microvolts is checked end to end on
# the emulated board. Channel k below is the k-th enabled channel, n the sample index.
# Only hal_unix.py imports this module, never an rp2 board: on rp2 every byte of bytecode a
# module leaves on the heap comes out of the reserve that budget.py keeps after the ring.
import micropython
from array import array
from micropython import const
from .contracts import MAX_CHANNELS

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
