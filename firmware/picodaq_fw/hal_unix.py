# The unix-port board: synthetic sources paced in real time by ticks_us (or
# unpaced, as fast as the link drains, for tests), stdio as the link.
# It runs the same App as rp2; the emulator puts its stdio on a pty.
import gc
import os
import sys
import select
import micropython
from micropython import const
from time import ticks_us, ticks_diff, ticks_add
from .contracts import SRC_RAMP, SRC_SINE
from .sources import Ramp, Sine

_BURST = const(4096)  # most instants generated per service() call


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
        self.unpaced = unpaced
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._ramp = Ramp()
        self._sine = Sine()
        self.next_t = 0
        self.q = 1000
        self.r = 0
        self.frac = 0
        self.rate = 1000

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

    def idle(self):
        # nothing due: sleep until input or the next millisecond
        self._poll.ipoll(1)

    # -- sampling --------------------------------------------------------------

    def start(self, ring, src, rate, mask):
        self.rate = rate
        self.q = 1000000 // rate
        self.r = 1000000 % rate
        self.frac = 0
        self.next_t = ticks_us()

    def stop(self):
        pass

    def _advance(self):
        # next instant time: q us plus a Bresenham share of the remainder
        self.frac += self.r
        step = self.q
        if self.frac >= self.rate:
            self.frac -= self.rate
            step += 1
        self.next_t = ticks_add(self.next_t, step)

    def service(self, ring, src):
        """Generate the instants that are due; True if any were."""
        if self.unpaced:
            n = ring.space()
            if n:
                src.fill(ring.buf, ring.offset(), n)
                ring.commit(n, ticks_us())
                return True
            return False
        now = ticks_us()
        done = 0
        while done < _BURST and ticks_diff(now, self.next_t) >= 0:
            t = self.next_t
            space = ring.space()
            k = 0
            while k < (space if space else _BURST) and done + k < _BURST and ticks_diff(now, self.next_t) >= 0:
                self._advance()
                k += 1
            if space:
                src.fill(ring.buf, ring.offset(), k)
                ring.commit(k, t)
            else:
                src.skip(k)
                ring.drop(k)
            done += k
        return done > 0
