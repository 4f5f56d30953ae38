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
from .contracts import SRC_RAMP, SRC_SINE
from .pacer import Pacer
from .sources import Ramp, Sine


class Hal:
    PLATFORM = b"linux\0\0\0"
    MAX_CHANNELS = const(32)
    SOURCES = (SRC_RAMP, SRC_SINE)
    MAX_RATE = const(4000000)

    def __init__(self, unpaced=None):
        gc.collect()
        # the ring takes half of what is free at boot, at most 8 MB
        self.RING_BYTES = min(gc.mem_free() // 2, 8 * 1024 * 1024)
        if unpaced is None:
            unpaced = os.getenv("PICODAQ_UNPACED") == "1"
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._ramp = Ramp()
        self._sine = Sine()
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
        return None  # the synthetic sources take any format and rate

    def source(self, kind):
        return self._sine if kind == SRC_SINE else self._ramp

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
