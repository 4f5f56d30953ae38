# The rp2 internal ADC as a picodaq source: channels 0-3 (GPIO26-29) and 4 (the
# temperature sensor), 12-bit counts shipped as int16 (fmt 1). Below 1 kS/s
# aggregate a hard timer IRQ reads each instant; from 1 kS/s up the ADC runs free
# in round-robin into its FIFO, drained by two chained rp2.DMA channels into
# ping-pong buffers whose completion IRQ copies each block into the ring.
# IRQ handlers are bound methods over buffers made at START and call the ring's
# viper writers: nothing allocates in IRQ context (hal_rp2.py says why).
import machine
import rp2
from array import array
from machine import ADC, Timer
from micropython import const
from time import ticks_us
from . import budget, ring as R
from .blit import copy
from .contracts import FMT_INT16
from .ring import SampleRing

_ADC_MAX_RATE = const(500000)  # the ADC's conversion limit (96 cycles of 48 MHz)
_ADC_DMA_MIN = const(1000)  # aggregate rate from which the DMA path runs
_ADC_CLOCK = const(48000000)
_ADC_CHANNELS = const(5)
_BLOCK_MS = const(8)  # a DMA block lasts about this long


def _bits(mask: int) -> int:
    n = 0
    for c in range(32):
        n += mask >> c & 1
    return n


# register offsets and fields (RP2040 datasheet 4.9.6, RP2350 datasheet 12.4.7)
_CS = const(0x00)
_FCS = const(0x08)
_FIFO = const(0x0C)
_DIV = const(0x10)
_CS_EN = const(1)
_CS_TS_EN = const(2)
_CS_START_MANY = const(8)
_CS_READY = const(0x100)
_FCS_EN = const(1)
_FCS_DREQ_EN = const(8)
_FCS_EMPTY = const(0x100)
_FCS_UNDER = const(0x400)
_FCS_OVER = const(0x800)
_FCS_THRESH_1 = const(1 << 24)


class InternalAdc:
    def __init__(self, chip: str) -> None:
        # base address and DMA request line differ between the chips; the
        # field positions used here (AINSEL at 12, RROBIN at 16) do not
        rp2350 = chip == "RP2350"
        self.base = 0x400A0000 if rp2350 else 0x4004C000
        self.dreq = 48 if rp2350 else 36
        self.nch = 1
        self.fmt = FMT_INT16
        self.timer: Timer | None = None
        self.dmas: tuple[rp2.DMA, rp2.DMA] | None = None
        self.block = 0  # DMA transfers (conversions) per block

    def start(self, nch: int, fmt: int, rate: int) -> None:
        self.nch = nch
        self.fmt = fmt

    def check(self, fmt: int, rate: int, mask: int) -> str | None:
        if fmt != FMT_INT16:
            return "the rp2 ADC ships its 12-bit counts as int16 (fmt 1)"
        if mask >> _ADC_CHANNELS:
            return "the rp2 ADC has channels 0-3 (GPIO26-29) and 4 (temperature) only"
        agg = rate * _bits(mask)
        if agg > _ADC_MAX_RATE:
            return "the rp2 ADC converts at most 500000 samples/s in all"
        if agg < _ADC_DMA_MIN and 1000000 % rate:
            return "below 1000 samples/s in all the ADC is timer-driven: use a rate dividing 1000000"
        return None

    def begin(self, ring: SampleRing, rate: int, mask: int) -> int:
        """Start sampling into ring; returns the true instant period in ns."""
        chans = [c for c in range(_ADC_CHANNELS) if mask >> c & 1]
        # machine.ADC sets up the pins (analog, no pulls) and the temperature sensor
        adcs = [ADC(26 + c if c < 4 else 4) for c in chans]
        if rate * len(chans) < _ADC_DMA_MIN:
            return self._begin_timer(ring, rate, adcs)
        return self._begin_dma(ring, rate, mask, chans)

    def _begin_timer(self, ring: SampleRing, rate: int, adcs: list[ADC]) -> int:
        self.ring = ring
        self.adcs = adcs
        self.n = len(adcs)
        self.stage = bytearray(2 * self.n)
        self.idx = bytes(range(0, 2 * self.n, 2))
        self.timer = Timer(-1, mode=Timer.PERIODIC, freq=rate, callback=self._on_tick, hard=True)
        return (1000000 // rate) * 1000

    def _on_tick(self, timer: Timer) -> None:
        # hard IRQ: one instant, every enabled channel in turn
        r = self.ring
        try:
            t = ticks_us()
            adcs = self.adcs
            stage = self.stage
            n = self.n
            i = 0
            while i < n:
                v = adcs[i].read_u16() >> 4  # read_u16 scales the 12-bit count up
                stage[2 * i] = v & 0xFF
                stage[2 * i + 1] = v >> 8
                i += 1
            R.put_gather(r.st, r.counts, r.t0, r.first, r.buf, stage, self.idx, n, 2, t)
        except Exception:
            r.st[R.FAULT] = 1

    def _begin_dma(self, ring: SampleRing, rate: int, mask: int, chans: list[int]) -> int:
        nch = len(chans)
        agg = rate * nch
        # conversion period in 1/256 cycles of the 48 MHz ADC clock: 1 + INT + FRAC/256
        q8 = (_ADC_CLOCK * 256 + agg // 2) // agg
        n = max(1, min(256, rate * _BLOCK_MS // 1000))  # instants per DMA block
        count = n * nch
        bufs = budget.dma_blocks(2 * count)  # taken at boot; the DMA fills 2 * count bytes of each
        period_ns = (nch * q8 * 1000 + 6144) // 12288  # nch * q8 / 256 / 48e6 s
        period_q8 = (nch * q8) // 48  # the instant period in 1/256 us
        a = rp2.DMA()
        b = rp2.DMA()
        self.dmas = (a, b)
        self.block = count
        fifo = self.base + _FIFO
        for d, other, buf in ((a, b, bufs[0]), (b, a, bufs[1])):
            ctrl = d.pack_ctrl(size=1, inc_read=False, inc_write=True, treq_sel=self.dreq,
                               chain_to=other.channel,  # type: ignore[attr-defined]  # not in the stubs
                               irq_quiet=False)
            d.config(read=fifo, write=buf, count=count, ctrl=ctrl, trigger=False)
            d.irq(handler=_DmaLeg(ring, buf, n, period_q8).on_done, hard=True)
        m32 = machine.mem32
        base = self.base
        ts = _CS_TS_EN if mask & 0x10 else 0
        m32[base + _CS] = _CS_EN | ts  # stopped, round robin off, while setting up
        self._drain()
        m32[base + _DIV] = q8 - 256  # INT = q8 // 256 - 1, FRAC = q8 % 256
        m32[base + _FCS] = _FCS_EN | _FCS_DREQ_EN | _FCS_THRESH_1 | _FCS_UNDER | _FCS_OVER
        a.active(1)
        # the first conversion is AINSEL, then round robin upwards through mask
        m32[base + _CS] = _CS_EN | ts | _CS_START_MANY | chans[0] << 12 | mask << 16
        return period_ns

    def begun(self) -> int:
        """Hard IRQ (the marker pin): instants of the running DMA block whose
        conversions have begun, not yet in the ring (0 on the timer path)."""
        dmas = self.dmas
        if dmas is None:
            return 0
        d = dmas[0]
        if not d.active():
            d = dmas[1]
            if not d.active():
                return 0
        left: int = d.count  # type: ignore[attr-defined]  # count: not in the stubs
        return (self.block - left + self.nch - 1) // self.nch

    def _drain(self) -> None:
        m32 = machine.mem32
        base = self.base
        for _ in range(64):
            if m32[base + _FCS] & _FCS_EMPTY:
                break
            m32[base + _FIFO]

    def end(self) -> None:
        if self.timer is not None:
            self.timer.deinit()
            self.timer = None
        if self.dmas is not None:
            m32 = machine.mem32
            base = self.base
            m32[base + _CS] = _CS_EN
            for _ in range(1000):
                if m32[base + _CS] & _CS_READY:
                    break
            for d in self.dmas:
                d.active(0)
                d.close()
            self.dmas = None
            self._drain()
            m32[base + _FCS] = _FCS_UNDER | _FCS_OVER
            m32[base + _DIV] = 0  # leave the ADC as machine.ADC expects it


class _DmaLeg:
    """One buffer of the DMA ping-pong and its completion handler."""

    # a bound method, not a closure: calling a closure over more than a few
    # variables allocates its argument array on the heap (py/objclosure.c)
    def __init__(self, ring: SampleRing, buf: bytearray, n: int, period_q8: int) -> None:
        self.ring = ring
        self.buf = buf
        self.n = n
        self.period_q8 = period_q8
        self.p = array("i", bytes(8))  # blit.copy's offsets

    def on_done(self, dma: rp2.DMA) -> None:
        # hard IRQ: the other leg is already running (chained); copy this
        # block out, chunk by chunk, and re-arm it before that one ends (the
        # count reloads itself)
        r = self.ring
        try:
            st = r.st
            n = self.n
            ib = st[R.IBYTES]
            p = self.p
            t_end = ticks_us()
            i = 0
            while i < n:
                k = R.room(st, n - i)
                if not k:
                    R.drop(r.counts, n - i)  # full: the ring keeps its old data
                    break
                p[0] = R.offset(st)
                p[1] = i * ib
                copy(p, r.buf, self.buf, k * ib)
                R.commit_at(st, r.counts, r.t0, r.first, k, t_end, n, i, self.period_q8)
                i += k
            dma.config(write=self.buf)
        except Exception:
            r.st[R.FAULT] = 1
