# Simulated rp2 peripherals, so that hal_rp2 runs on the unix port.
#
# install() puts stand-ins for `machine`, `rp2` and `micropython` into
# sys.modules before hal_rp2 is imported. They model what hal_rp2 relies on:
#   Pin          levels and IRQ handlers (pulse() fires a marker edge)
#   Timer        periodic callbacks
#   ADC          read_u16 of a known pattern per channel
#   mem32        the ADC's CS/FCS/FIFO/DIV registers: START_MANY runs the ADC
#                free at 48 MHz / (DIV + 1) conversions per second, round robin
#   rp2.DMA      channels paced by the ADC DREQ, writing half-words into their
#                buffers, chaining, and calling their IRQ handler when done
#   SPI          an ADS1299: command decoder, registers, RDATAC frames whose
#                samples are the PROTOCOL.md ramp in 24 bits (so the host can
#                check them bit-exactly), DRDY edges at the CONFIG1 rate
#   rp2.StateMachine, rp2.asm_pio, SSPDMACR
#                the DMA path of the ADS1299 driver at the level of what it
#                does: while its PIO state machine runs and the SPI's DMA
#                requests are on, each DRDY puts one whole frame into the
#                running receive DMA channel (treq SPI RX), which completes,
#                chains and calls its IRQ as the ADC's channels do
# Hardware time is ticks_us: tick() (called from hal.service by the driver,
# inside the heap-locked streaming loop) fires every event now due, in order,
# calling the firmware's handlers as the interrupts would. Nothing on that path
# allocates, so a handler that allocates fails exactly as it would on rp2.
import os
import sys
import micropython as _mp
from time import ticks_us, ticks_diff

_ADC_BASES = (0x4004C000, 0x400A0000)


def adc_value(channel, k):
    return (k * 7 + channel * 512) & 0xFFF


class _Namespace:
    pass


# -- Pin -------------------------------------------------------------------------


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8
    pins = {}

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.level = 0 if value is None else value
        self.handler = None
        self.trigger = 0
        Pin.pins[id] = self

    def __call__(self, v=None):
        if v is None:
            return self.level
        self.level = v
        if self.id == ads.cs_pin:
            ads.select(v)
        return None

    def value(self, v=None):
        return self(v)

    def irq(self, handler=None, trigger=12, hard=False):
        self.handler = handler
        self.trigger = trigger


def pulse(pin_id):
    """A marker edge on pin_id, if its IRQ is armed."""
    p = Pin.pins.get(pin_id)
    if p is not None and p.handler is not None:
        p.handler(p)


# -- Timer ---------------------------------------------------------------------------


class Timer:
    PERIODIC = 1
    ONE_SHOT = 0
    active = []

    def __init__(self, id=-1, mode=1, freq=None, period=None, callback=None, hard=False):
        self.period_us = 1000000 // freq
        self.callback = callback
        self.next = ticks_us()
        Timer.active.append(self)

    def deinit(self):
        if self in Timer.active:
            Timer.active.remove(self)


# -- ADC and its registers -------------------------------------------------------------


class ADC:
    reads = [0] * 8

    def __init__(self, id):
        self.ch = id - 26 if id >= 26 else id
        ADC.reads[self.ch] = 0

    def read_u16(self):
        k = ADC.reads[self.ch]
        ADC.reads[self.ch] = k + 1
        v = adc_value(self.ch, k)
        return v << 4 | v >> 8  # as rp2 scales a 12-bit count to 16 bits


class _Adc:
    def __init__(self):
        self.cs = 0
        self.fcs = 0
        self.div = 0
        self.running = False
        self.order = bytearray(5)  # channels in round-robin order
        self.n = 0
        self.pos = 0  # next position in order
        self.conv = [0] * 5  # conversions per channel
        self.next = 0  # ticks of the next conversion, in 1/256 us steps below
        self.frac = 0
        self.q8 = 0  # conversion period in 1/256 cycles of 48 MHz

    def write(self, off, v):
        if off == 0:
            self.cs = v
            start = bool(v & 8)
            if start and not self.running:
                mask = v >> 16 & 0x1FF
                first = v >> 12 & 0xF
                self.n = 0
                for c in range(5):
                    if mask >> c & 1:
                        self.order[self.n] = c
                        self.n += 1
                self.pos = 0
                for i in range(self.n):
                    if self.order[i] == first:
                        self.pos = i
                self.q8 = self.div + 256
                self.next = ticks_us()
                self.frac = 0
            self.running = start
        elif off == 8:
            self.fcs = v & 0x0F00000F
        elif off == 0x10:
            self.div = v

    def read(self, off):
        if off == 0:
            return self.cs | 0x100  # READY
        if off == 8:
            return self.fcs | 0x100  # FIFO always drained by the model: EMPTY
        return 0

    def convert(self):
        c = self.order[self.pos]
        self.pos = self.pos + 1 if self.pos + 1 < self.n else 0
        k = self.conv[c]
        self.conv[c] = k + 1
        return adc_value(c, k)

    def due(self, now):
        """Conversions due by now (advancing the model's clock over them)."""
        if not self.running:
            return 0
        k = 0
        # q8 / 256 cycles of 48 MHz per conversion = q8 / 12288 us
        while k < 4096:
            if ticks_diff(now, self.next) < 0:
                break
            self.frac += self.q8
            self.next += self.frac // 12288
            self.frac %= 12288
            k += 1
        return k


adc = _Adc()


_SPI_DMACR = (0x4003C024, 0x40040024, 0x40080024, 0x40088024)


class _Mem32:
    def __getitem__(self, addr):
        for base in _ADC_BASES:
            if base <= addr < base + 0x24:
                return adc.read(addr - base)
        if addr in _SPI_DMACR:
            return ads.dmacr
        return 0  # SSPSR: nothing received (RNE clear)

    def __setitem__(self, addr, v):
        for base in _ADC_BASES:
            if base <= addr < base + 0x24:
                adc.write(addr - base, v)
        if addr in _SPI_DMACR:
            ads.dmacr = v


# -- rp2.DMA ----------------------------------------------------------------------


class DMA:
    channels = []

    def __init__(self):
        self.channel = len(DMA.channels)
        DMA.channels.append(self)
        self.buf = None
        self.pos = 0
        self.n = 0  # transfers per trigger (TRANS_COUNT's reload value)
        self.left = 0
        self.chain = self.channel
        self.size = 1  # bytes per transfer: 1 << pack_ctrl's size
        self.inc_write = True
        self.treq = 0
        self.busy = False
        self.handler = None
        self.closed = False

    def pack_ctrl(self, **kw):
        assert not kw.get("inc_read")
        if kw.get("inc_write"):
            assert kw.get("irq_quiet") is False  # a channel filling a buffer says when it is done
        return (kw.get("chain_to", self.channel), 1 << kw.get("size", 2), bool(kw.get("inc_write")),
                kw.get("treq_sel", 0))

    def config(self, read=None, write=None, count=None, ctrl=None, trigger=False):
        if write is not None:
            self.buf = write
            self.pos = 0
        if count is not None:
            self.n = count
        if ctrl is not None:
            self.chain, self.size, self.inc_write, self.treq = ctrl
        if trigger:
            self.active(1)

    def irq(self, handler=None, hard=False):
        self.handler = handler

    def active(self, v=None):
        if v is None:
            return self.busy
        if v and not self.busy:
            if self.inc_write and self.pos + self.size * self.n > len(self.buf):
                raise RuntimeError("DMA started past its buffer: not re-armed in time")
            self.left = self.n
        self.busy = bool(v)
        return self.busy

    @property
    def count(self):
        # as rp2.DMA.count reads TRANS_COUNT: the transfers left while running
        return self.left if self.busy else self.n

    def close(self):
        self.closed = True
        self.busy = False
        self.handler = None


def _running(treq):
    for ch in DMA.channels:
        if ch.busy and ch.treq == treq and ch.inc_write:
            return ch
    return None


def _done(d):
    d.busy = False
    if d.chain != d.channel:
        DMA.channels[d.chain].active(1)
    if d.handler is not None:
        d.handler(d)


def _dma_feed(n):
    """n conversion results for whichever channel is running."""
    for _ in range(n):
        d = None
        for ch in DMA.channels:
            if ch.busy and ch.size == 2 and ch.inc_write:
                d = ch
                break
        v = adc.convert()
        if d is None:
            continue  # nobody drains the FIFO: the model just loses it
        d.buf[d.pos] = v & 0xFF
        d.buf[d.pos + 1] = v >> 8
        d.pos += 2
        d.left -= 1
        if d.left == 0:
            _done(d)


def _ads_dma_frame():
    """A DRDY on the DMA path: the frame, clocked out whole, into the running receive channel."""
    f = ads.frame
    ads.read_into(f)
    d = _running(17) or _running(19) or _running(25) or _running(27)  # SPI0/1 RX, RP2040 and RP2350
    if d is None:
        return  # nobody takes it
    for b in f:
        d.buf[d.pos] = b
        d.pos += 1
        d.left -= 1
        if d.left == 0:
            _done(d)
            d = _running(d.treq)
            if d is None:
                return


# -- SPI with an ADS1299 behind it ---------------------------------------------------


class _Ads:
    def __init__(self, present):
        self.present = present
        self.regs = bytearray(0x18)
        self.regs[0] = 0x3E  # ADS1299, 8 channels
        self.regs[1] = 0x96
        self.rdatac = True
        self.running = False
        self.cs_pin = 17
        self.drdy_pin = 20
        self.op = -1  # pending RREG/WREG opcode
        self.reg = 0
        self.left = 0
        self.stage = 0  # bytes of the current opcode seen
        self.n = 0  # frames produced
        self.next = 0
        self.period = 4000
        self.dump = None
        self.dmacr = 3  # machine.SPI leaves the SPI's DMA requests on
        self.frame = bytearray(27)

    def select(self, level):
        if level:
            self.stage = 0
            self.op = -1

    def byte_in(self, b):
        if self.stage == 0:
            if b & 0xE0 in (0x20, 0x40):
                self.op = b & 0xE0
                self.reg = b & 0x1F
                self.stage = 1
            else:
                self.command(b)
            return
        if self.stage == 1:
            self.left = (b & 0x1F) + 1
            self.stage = 2
            return
        if self.op == 0x40 and self.left:
            if self.rdatac:
                raise RuntimeError("ADS1299: WREG while in RDATAC is ignored by the chip")
            self.regs[self.reg] = b
            self.reg += 1
            self.left -= 1

    def command(self, b):
        if b == 0x11:
            self.rdatac = False
        elif b == 0x10:
            self.rdatac = True
        elif b == 0x06:
            self.regs[1] = 0x96
        elif b == 0x08:
            self.running = True
            self.n = 0
            rate = 16000 >> (self.regs[1] & 7)
            self.period = 1000000 // rate
            self.next = ticks_us() + self.period
            with open("ads1299_regs.bin", "wb") as f:  # for the test to check the setup
                f.write(self.regs)
        elif b == 0x0A:
            self.running = False

    def read_into(self, buf):
        if not self.present:
            for i in range(len(buf)):
                buf[i] = 0xFF
            return
        if self.op == 0x20:
            for i in range(len(buf)):
                buf[i] = self.regs[self.reg]
                self.reg += 1
            return
        # an RDATAC frame: status, then 8 channels of 24 bits, MSB first
        buf[0] = 0xC0
        buf[1] = 0
        buf[2] = 0
        n = self.n
        for c in range(8):
            v = (n * 1021 + c * 65537 + 0x800000) & 0xFFFFFF  # the ramp, two's complement
            o = 3 + 3 * c
            buf[o] = v >> 16
            buf[o + 1] = v >> 8 & 0xFF
            buf[o + 2] = v & 0xFF
        self.n = n + 1

    def due(self, now):
        if not (self.running and self.rdatac):
            return 0
        k = 0
        while k < 4096 and ticks_diff(now, self.next) >= 0:
            self.next += self.period
            k += 1
        return k


ads = _Ads(os.getenv("FWTEST_RP2SIM_ADS") != "0")


class SPI:
    def __init__(self, id, baudrate=1000000, polarity=0, phase=0, sck=None, mosi=None, miso=None):
        assert polarity == 0 and phase == 1, "the ADS1299 samples on the falling edge: SPI mode 1"
        if not isinstance(baudrate, int):
            raise TypeError("can't convert str to int")  # as machine.SPI says

    def write(self, buf):
        for b in buf:
            ads.byte_in(b)

    def readinto(self, buf, write=0):
        ads.read_into(buf)


# -- the event pump -------------------------------------------------------------------


def tick():
    """Fire every hardware event due by now, as its interrupt would."""
    now = ticks_us()
    for t in Timer.active:
        while ticks_diff(now, t.next) >= 0:
            t.next += t.period_us
            t.callback(t)
    n = adc.due(now)
    if n:
        _dma_feed(n)
    n = ads.due(now)
    if n:
        drdy = Pin.pins.get(ads.drdy_pin)
        for _ in range(n):
            if drdy is not None and drdy.handler is not None:
                drdy.handler(drdy)
            elif StateMachine.running and ads.dmacr & 3 == 3:
                _ads_dma_frame()
            else:
                ads.n += 1  # a frame nobody read


# -- rp2.StateMachine, rp2.asm_pio ------------------------------------------------------


class StateMachine:
    running = False  # one state machine here: the ADS1299 driver's DRDY watcher

    def __init__(self, id, prog=None, freq=-1, in_base=None):
        self.id = id

    def active(self, v=None):
        if v is not None:
            StateMachine.running = bool(v)
        return StateMachine.running


def asm_pio(**kw):
    return lambda program: program  # never run: the chain above does what it would


def install():
    machine = _Namespace()
    machine.Pin = Pin
    machine.SPI = SPI
    machine.ADC = ADC
    machine.Timer = Timer
    machine.mem32 = _Mem32()
    machine.unique_id = lambda: b"\xe6\x61\x41\x04\x03\x2f\x1a\x2b"
    rp2 = _Namespace()
    rp2.DMA = DMA
    rp2.StateMachine = StateMachine
    rp2.asm_pio = asm_pio
    mp = _Namespace()
    for name in ("const", "heap_lock", "heap_unlock", "kbd_intr", "mem_info", "schedule"):
        setattr(mp, name, getattr(_mp, name))
    mp.alloc_emergency_exception_buf = lambda n: None
    sys.modules["machine"] = machine
    sys.modules["rp2"] = rp2
    sys.modules["micropython"] = mp
