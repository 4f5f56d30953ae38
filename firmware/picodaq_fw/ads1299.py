# The TI ADS1299 on SPI as a picodaq source: 8 channels, 250 Hz to 16 kHz, 24-bit
# big-endian samples shipped as they come (fmt 2). The DRDY pin IRQ reads the
# 27-byte RDATAC frame with spi.readinto into a fixed buffer and gathers the
# enabled channels into the ring; nothing allocates in IRQ context.
from machine import Pin, SPI
from micropython import const
from time import ticks_us, sleep_ms, sleep_us
from . import ring as R
from .contracts import FMT_INT24
from .ring import SampleRing

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
                "baud": 8000000, "gain": 24, "input": "normal", "srb1": False}


class Ads1299:
    def __init__(self, cfg: object) -> None:
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
        self.drdy.irq(handler=self._on_drdy, trigger=Pin.IRQ_FALLING, hard=True)
        self._cmd(_START)
        return 1000000000 // rate

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
        self.drdy.irq(handler=None)
        self._cmd(_STOP)
        self._cmd(_SDATAC)
