# The unix-port board: synthetic sources paced in real time by ticks_us (or
# unpaced, as fast as the link drains, for tests), stdio as the link.
# It runs the same App as rp2; the emulator puts its stdio on a pty.
#
# The link blocks: this build has no fcntl, so stdout cannot be made
# non-blocking, and a write to a full pty waits until the host reads. The
# Pacer makes that harmless to the data: the instants due meanwhile are
# generated afterwards with their own times, kept while the ring has room and
# counted as dropped beyond, as rp2's IRQ sampler would have done. The short
# writes of rp2's USB CDC are exercised by the firmware tests at this HAL's
# write() (tests/fw/driver.py).
import gc
import os
import sys
import select
import micropython
from micropython import const
from .contracts import SRC_RAMP, SRC_SINE, SRC_ADC, SRC_ADS1299, FMT_INT16, FMT_INT24
from .pacer import Pacer
from .sources import Ramp, Sine
from .sources_unix import AdcTriangle, AdsSquare

_ADS_RATES = (250, 500, 1000, 2000, 4000, 8000, 16000)


class Hal:
    PLATFORM = b"linux\0\0\0"
    MAX_CHANNELS = const(32)
    # adc and ads1299 are deterministic stand-ins (sources.py) with the rp2 front ends' formats,
    # channels and rates, so the host's scaling is checked end to end here too
    SOURCES: tuple = (SRC_RAMP, SRC_SINE, SRC_ADC, SRC_ADS1299)
    MAX_RATE = const(4000000)
    # the ring's frames at most: a host stalled for a second still loses nothing at 1 MB/s in
    # frames of 4 ms (a Pico's 128 frames would hold half a second of that)
    RING_SLOTS = const(1024)

    def __init__(self, unpaced=None):
        gc.collect()
        # the ring takes half of what is free at boot, at most 8 MB
        self.RING_BYTES = min(gc.mem_free() // 2, 8 * 1024 * 1024)
        if unpaced is None:
            unpaced = os.getenv("PICODAQ_UNPACED") == "1"
        # a ring cut into a Pico's frames (tests of its geometry and overflow): PICODAQ_RING_SLOTS=128
        slots = os.getenv("PICODAQ_RING_SLOTS")
        if slots:
            self.RING_SLOTS = int(slots)
        # a board with fewer front ends (as a Pico without an ADS1299): PICODAQ_SOURCES=ramp,sine
        only = os.getenv("PICODAQ_SOURCES")
        if only:
            names = only.split(",")
            self.SOURCES = tuple(k for k in self.SOURCES if ("ramp", "sine", "adc", "ads1299")[k] in names)
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._ramp = Ramp()
        self._sine = Sine()
        self._adc = AdcTriangle()
        self._ads = AdsSquare()
        self.pacer = Pacer(unpaced)

    def board_id(self):
        h = os.getenv("PICODAQ_BOARD_ID") or ""
        b = bytearray(8)
        try:
            raw = bytes.fromhex(h)
        except ValueError:
            raw = h.encode()
        b[: min(8, len(raw))] = raw[:8]
        return bytes(b)

    def check(self, source, fmt, rate, mask):
        # the synthetic sources take any format and rate; the stand-ins, what their chips would
        if source == SRC_ADC:
            if fmt != FMT_INT16:
                return "the adc ships its 12-bit counts as int16 (fmt 1)"
            if mask >> 5:
                return "the adc has channels 0-3 and 4 (temperature) only"
        elif source == SRC_ADS1299:
            if fmt != FMT_INT24:
                return "the ads1299 delivers 24-bit big-endian samples: use fmt 2 (int24)"
            if rate not in _ADS_RATES:
                return "the ads1299 runs at 250, 500, 1000, 2000, 4000, 8000 or 16000 Hz"
            if mask >> 8:
                return "the ads1299 has channels 0-7"
        return None

    def source(self, kind):
        if kind == SRC_SINE:
            return self._sine
        if kind == SRC_ADC:
            return self._adc
        if kind == SRC_ADS1299:
            return self._ads
        return self._ramp

    # -- link ----------------------------------------------------------------

    def begin(self):
        micropython.kbd_intr(-1)

    def end(self):
        micropython.kbd_intr(3)

    def write(self, buf, off, n):
        return self._out.write(buf, off, n)

    def input_ready(self):
        for _ in self._poll.ipoll(0):
            return True
        return False

    def read_byte(self, one):
        self._in.readinto(one)

    def wait_input(self, ms):
        for _ in self._poll.ipoll(ms):
            return True
        return False

    def wait_output(self):
        self._poll.ipoll(1)

    def idle(self, ms):
        # nothing due for ms: sleep until then or until input
        self._poll.ipoll(ms)

    # -- sampling --------------------------------------------------------------

    def start(self, ring, src, rate, mask, markers):
        """Start sampling; returns the true sample period in ns."""
        self.pacer.start(rate)
        return 1000000000 // rate

    def stop(self):
        pass

    def service(self, ring, src):
        return self.pacer.service(ring, src)
