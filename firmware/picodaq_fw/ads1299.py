# The TI ADS1299 on SPI as a picodaq source: 8 channels, 250 Hz to 16 kHz, 24-bit
# big-endian samples shipped as they come (fmt 2). Two ways to read its frames
# (RDATAC: 3 status bytes, then 3 per channel):
#
# - DMA (default): no CPU work per frame. A PIO state machine watches DRDY and
#   pushes a word each time it falls; a DMA channel paced by that takes the word
#   and chains to one that clocks the frame out (27 zero bytes into the SPI's
#   transmit FIFO), which chains back; two more DMA channels, chained ping-pong
#   like the ADC's, gather what the SPI receives into blocks of ~8 ms, and each
#   block's completion IRQ copies the enabled channels into the ring. CS stays
#   low for the whole stream (one ADS1299 on the bus).
# - IRQ ("dma": false in picodaq_board.json): the DRDY pin's hard IRQ reads each
#   frame with spi.readinto; ~20 k cycles a frame on an RP2040, so ~2 kHz x 8 at
#   most (measured: `picodaq bench --only rp2040`).
#
# Nothing allocates in IRQ context.
import machine
import rp2
from array import array
from machine import Pin, SPI
from micropython import const
from time import ticks_us, sleep_ms, sleep_us
from . import budget, ring as R
from .blit import gather3
from .contracts import FMT_INT24
from .ring import SampleRing

try:
    from typing_extensions import TYPE_CHECKING
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # the PIO assembler's names, for type checkers

_RESET = const(0x06)
_START = const(0x08)
_STOP = const(0x0A)
_RDATAC = const(0x10)
_SDATAC = const(0x11)
_RREG = const(0x20)
_WREG = const(0x40)
_REG_ID = const(0x00)
_REG_CONFIG1 = const(0x01)
_REG_CONFIG2 = const(0x02)
_REG_CONFIG3 = const(0x03)
_REG_CH1SET = const(0x05)
_REG_MISC1 = const(0x15)
_FRAME = const(27)  # 3 status bytes, then 8 channels of 3 bytes, MSB first
_RATES = (16000, 8000, 4000, 2000, 1000, 500, 250)  # CONFIG1 DR = index
_GAINS = (1, 2, 4, 6, 8, 12, 24)  # CHnSET GAIN = index
_INPUTS = {"normal": 0, "shorted": 1, "supply": 3, "temperature": 4, "test": 5}
_DEFAULT_ADS: dict = {"spi": 0, "sck": 18, "mosi": 19, "miso": 16, "cs": 17, "drdy": 20, "reset": 21,
                "baud": 8000000, "gain": 24, "input": "normal", "srb1": False, "dma": True}
_BLOCK_MS = const(8)  # a DMA block of frames lasts about this long
_SM = const(4)  # the PIO state machine watching DRDY: PIO1's first
_PIO1_RXF0 = const(0x50300020)  # its receive FIFO (the same on both chips)
_DREQ_PIO1_RX0 = const(12)
_SSPDR = const(0x08)
_SSPSR = const(0x0C)
_SSPDMACR = const(0x24)
_SR_RNE = const(4)


@rp2.asm_pio()
def _drdy_falls():
    # a word into the RX FIFO each time DRDY falls: the DMA's pace
    wait(1, pin, 0)
    wait(0, pin, 0)
    push(noblock)


class Ads1299:
    def __init__(self, cfg: object, chip: str = "RP2040") -> None:
        rp2350 = chip == "RP2350"
        self.spi_base = (0x40080000, 0x40088000) if rp2350 else (0x4003C000, 0x40040000)
        self.dreq_tx = 24 if rp2350 else 16  # SPI0's; SPI1's are 2 more
        self.dmas: tuple[rp2.DMA, rp2.DMA, rp2.DMA, rp2.DMA] | None = None
        self.sm: rp2.StateMachine | None = None
        self.present = False
        self.channels = 0
        self.why = "no ADS1299 configured (picodaq_board.json says \"ads1299\": false)"
        self.cfg: dict = dict(_DEFAULT_ADS)
        if cfg is False:
            return
        if isinstance(cfg, dict):
            self.cfg.update(cfg)
        try:
            self._probe()
        except Exception as e:  # a bad board file must not keep the firmware from booting
            self.why = "ADS1299 setup failed (check picodaq_board.json): %r" % e

    def _probe(self) -> None:
        c = self.cfg
        self.gain = _GAINS.index(c["gain"]) if c["gain"] in _GAINS else 6
        self.mux = _INPUTS.get(c["input"], 0)
        self.rx = bytearray(_FRAME)
        self.one = bytearray(1)
        self.idx = bytearray(8)
        self.cs = Pin(c["cs"], Pin.OUT, value=1)
        self.drdy = Pin(c["drdy"], Pin.IN, Pin.PULL_UP)
        self.spi = SPI(c["spi"], baudrate=c["baud"], polarity=0, phase=1,
                       sck=Pin(c["sck"]), mosi=Pin(c["mosi"]), miso=Pin(c["miso"]))
        if c.get("reset") is not None:
            rst = Pin(c["reset"], Pin.OUT, value=1)
            sleep_ms(150)  # power-on reset: 2**18 clocks of 2.048 MHz
            rst(0)
            sleep_us(10)
            rst(1)
            sleep_us(20)
        else:
            sleep_ms(150)
            self._cmd(_RESET)
        self._cmd(_SDATAC)  # it wakes up in RDATAC, where registers cannot be read
        dev = self._rreg(_REG_ID)
        if dev & 0x1C == 0x1C and dev & 3 < 3:  # ADS1299 family: 4, 6 or 8 channels
            self.present = True
            self.channels = (4, 6, 8)[dev & 3]
            self.fsize = 3 + 3 * self.channels  # an RDATAC frame
        else:
            self.why = "no ADS1299 answered on SPI%d (ID register read 0x%02X)" % (c["spi"], dev)

    # register access: CS stays low across an opcode and its operands; each byte
    # needs 4 tCLK (about 2 us) to decode before the next
    def _xfer(self, b: int) -> None:
        self.one[0] = b
        self.spi.write(self.one)
        sleep_us(3)

    def _cmd(self, op: int) -> None:
        self.cs(0)
        self._xfer(op)
        self.cs(1)
        sleep_us(3)

    def _wreg(self, reg: int, value: int) -> None:
        self.cs(0)
        self._xfer(_WREG | reg)
        self._xfer(0)
        self._xfer(value)
        self.cs(1)
        sleep_us(3)

    def _rreg(self, reg: int) -> int:
        self.cs(0)
        self._xfer(_RREG | reg)
        self._xfer(0)
        self.spi.readinto(self.one, 0)
        self.cs(1)
        sleep_us(3)
        return self.one[0]

    def start(self, nch: int, fmt: int, rate: int) -> None:
        pass

    def check(self, fmt: int, rate: int, mask: int) -> str | None:
        if fmt != FMT_INT24:
            return "the ADS1299 delivers 24-bit big-endian samples: use fmt 2 (int24)"
        if rate not in _RATES:
            return "the ADS1299 runs at 250, 500, 1000, 2000, 4000, 8000 or 16000 Hz"
        if mask >> self.channels:
            return "this ADS1299 has channels 0-%d" % (self.channels - 1)
        return None

    def begin(self, ring: SampleRing, rate: int, mask: int) -> int:
        self._cmd(_SDATAC)
        self._wreg(_REG_CONFIG3, 0xE0)  # internal reference on, bias off
        sleep_ms(10)
        self._wreg(_REG_CONFIG1, 0x90 | _RATES.index(rate))
        self._wreg(_REG_CONFIG2, 0xD0 if self.mux == 5 else 0xC0)  # internal test signal
        self._wreg(_REG_MISC1, 0x20 if self.cfg["srb1"] else 0)
        nidx = 0
        for ch in range(8):
            if mask >> ch & 1:
                self._wreg(_REG_CH1SET + ch, self.gain << 4 | self.mux)
                self.idx[nidx] = 3 + 3 * ch
                nidx += 1
            else:
                self._wreg(_REG_CH1SET + ch, 0x81)  # powered down, input shorted
        self.ring = ring
        self.nidx = nidx
        self._cmd(_RDATAC)
        if self.cfg.get("dma", True):
            self._begin_dma(ring, rate)
        else:
            self.drdy.irq(handler=self._on_drdy, trigger=Pin.IRQ_FALLING, hard=True)
            self._cmd(_START)
        return 1000000000 // rate

    def _begin_dma(self, ring: SampleRing, rate: int) -> None:
        fsize = self.fsize
        n = max(1, min(128, rate * _BLOCK_MS // 1000))  # frames per DMA block (budget.DMA_BLOCK_BYTES)
        count = n * fsize
        bufs = budget.dma_blocks(count)  # taken at boot; the DMA fills count bytes of each
        self.block = count
        self.zero = bytearray(4)  # what the transmit DMA clocks out
        self.sink = bytearray(4)  # where the pacing DMA drops the PIO's word
        m32 = machine.mem32
        spi = self.spi_base[self.cfg["spi"]]
        dr = spi + _SSPDR
        dreq_tx = self.dreq_tx + 2 * self.cfg["spi"]
        # the SPI's DMA requests off while START goes out by a blocking write
        m32[spi + _SSPDMACR] = 0
        t = rp2.DMA()
        tx = rp2.DMA()
        a = rp2.DMA()
        b = rp2.DMA()
        self.dmas = (t, tx, a, b)
        t.config(read=_PIO1_RXF0, write=self.sink, count=1, trigger=False,
                 ctrl=t.pack_ctrl(size=2, inc_read=False, inc_write=False, treq_sel=_DREQ_PIO1_RX0,
                                  chain_to=tx.channel, irq_quiet=True))  # type: ignore[attr-defined]
        tx.config(read=self.zero, write=dr, count=fsize, trigger=False,
                  ctrl=tx.pack_ctrl(size=0, inc_read=False, inc_write=False, treq_sel=dreq_tx,
                                    chain_to=t.channel, irq_quiet=True))  # type: ignore[attr-defined]
        period_q8 = 256000000 // rate  # the frame period in 1/256 us
        for d, other, buf in ((a, b, bufs[0]), (b, a, bufs[1])):
            d.config(read=dr, write=buf, count=count, trigger=False,
                     ctrl=d.pack_ctrl(size=0, inc_read=False, inc_write=True, treq_sel=dreq_tx + 1,
                                      chain_to=other.channel, irq_quiet=False))  # type: ignore[attr-defined]
            d.irq(handler=_AdsLeg(ring, buf, n, self.idx, self.nidx, fsize, period_q8).on_done, hard=True)
        self.sm = rp2.StateMachine(_SM, _drdy_falls, freq=1000000, in_base=self.drdy)
        self.cs(0)  # low from here to the end of the stream
        sleep_us(3)
        a.active(1)
        t.active(1)
        self.sm.active(1)
        self.one[0] = _START
        self.spi.write(self.one)  # the first DRDY falls 1/rate later
        m32[spi + _SSPDMACR] = 3  # the DMA channels take the SPI from here

    def begun(self) -> int:
        """Hard IRQ (the marker pin): frames of the running DMA block already read,
        not yet in the ring (0 on the IRQ path)."""
        dmas = self.dmas
        if dmas is None:
            return 0
        d = dmas[2]
        if not d.active():
            d = dmas[3]
            if not d.active():
                return 0
        left: int = d.count  # type: ignore[attr-defined]  # count: not in the stubs
        return (self.block - left) // self.fsize

    def _on_drdy(self, pin: Pin) -> None:
        # hard IRQ: read the frame the ADS1299 has ready, gather the enabled channels
        r = self.ring
        try:
            t = ticks_us()
            cs = self.cs
            cs(0)
            self.spi.readinto(self.rx)  # 27 bytes: below the size where rp2 SPI would use DMA
            cs(1)
            R.put_gather(r.st, r.counts, r.t0, r.first, r.buf, self.rx, self.idx, self.nidx, 3, t)
        except Exception:
            r.st[R.FAULT] = 1

    def end(self) -> None:
        if self.dmas is not None:
            m32 = machine.mem32
            spi = self.spi_base[self.cfg["spi"]]
            if self.sm is not None:
                self.sm.active(0)
                self.sm = None
            for d in self.dmas:
                d.active(0)
                d.close()
            self.dmas = None
            sleep_us(100)  # a frame being clocked out ends
            for _ in range(64):
                if not m32[spi + _SSPSR] & _SR_RNE:
                    break
                m32[spi + _SSPDR]
            m32[spi + _SSPDMACR] = 3  # as machine.SPI leaves it
            self.cs(1)
            sleep_us(3)
        else:
            self.drdy.irq(handler=None)
        self._cmd(_STOP)
        self._cmd(_SDATAC)


class _AdsLeg:
    """One buffer of the frames' DMA ping-pong and its completion handler (a bound
    method, not a closure: see hal_rp2.py)."""

    def __init__(self, ring: SampleRing, buf: bytearray, n: int, idx: bytearray, nidx: int, fsize: int,
                 period_q8: int) -> None:
        self.ring = ring
        self.buf = buf
        self.n = n
        self.idx = idx
        self.fsize = fsize
        self.period_q8 = period_q8
        p = array("i", bytes(20))  # blit.gather3's offsets, frames, frame size, samples
        p[3] = fsize
        p[4] = nidx
        self.p = p

    def on_done(self, dma: rp2.DMA) -> None:
        # hard IRQ: the other leg is already running (chained); gather this
        # block's enabled channels into the ring, chunk by chunk, and re-arm it
        r = self.ring
        try:
            st = r.st
            n = self.n
            p = self.p
            t_end = ticks_us()
            i = 0
            while i < n:
                k = R.room(st, n - i)
                if not k:
                    R.drop(r.counts, n - i)  # full: the ring keeps its old data
                    break
                p[0] = R.offset(st)
                p[1] = i * self.fsize
                p[2] = k
                gather3(p, r.buf, self.buf, self.idx)
                R.commit_at(st, r.counts, r.t0, r.first, k, t_end, n, i, self.period_q8)
                i += k
            dma.config(write=self.buf)
        except Exception:
            r.st[R.FAULT] = 1
