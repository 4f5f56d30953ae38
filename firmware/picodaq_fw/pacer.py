# Pacer: runs a synthetic source (ramp, sine) in real time from the main loop.
# Each service() call generates every instant whose time has come, stamped
# with its scheduled time, so a main loop held up (a blocking write) catches
# up afterwards exactly as an IRQ sampler would have filled the ring meanwhile:
# what does not fit is dropped and counted, nothing is generated twice.
# Instant i is due at t_start + i * 1e6 / rate us, walked in viper with a
# Bresenham remainder so no int ever reaches 2**30. Times are ticks_us() modulo
# 2**30: that is rp2's ticks period, while the 64-bit unix port's is 2**62.
import micropython
from array import array
from micropython import const
from time import ticks_us

_BURST = const(4096)  # most instants handled per service() call
_MASK30 = const(0x3FFFFFFF)
# indices into the state words
_NEXT_T = const(0)  # ticks_us of the next instant
_Q = const(1)  # whole us per instant
_R = const(2)  # remainder: 1e6 = q * rate + r
_RATE = const(3)
_FRAC = const(4)  # accumulated remainder, < rate


@micropython.viper
def _begin(ps: ptr32, now: int):
    ps[_NEXT_T] = now & _MASK30
    ps[_FRAC] = 0


@micropython.viper
def _walk(ps: ptr32, now: int, limit: int) -> int:
    """Advance over the instants due at ticks `now` (at most limit); return how many."""
    now &= _MASK30
    t = ps[_NEXT_T]
    q = ps[_Q]
    r = ps[_R]
    rate = ps[_RATE]
    frac = ps[_FRAC]
    k = 0
    while k < limit:
        d = ((now - t + 0x20000000) & _MASK30) - 0x20000000  # ticks_diff
        if d < 0:
            break
        frac += r
        step = q
        if frac >= rate:
            frac -= rate
            step += 1
        t = (t + step) & _MASK30  # ticks_add
        k += 1
    ps[_NEXT_T] = t
    ps[_FRAC] = frac
    return k


class Pacer:
    def __init__(self, unpaced=False):
        self.unpaced = unpaced  # tests: as fast as the ring drains
        self.ps = array("i", bytes(20))

    def start(self, rate):
        ps = self.ps
        ps[_Q] = 1000000 // rate
        ps[_R] = 1000000 % rate
        ps[_RATE] = rate
        _begin(ps, ticks_us())

    def service(self, ring, src) -> bool:
        """Generate the instants that are due; True if more are due than one call
        makes (_BURST), so the caller should come back at once. Paced, the main
        loop calls this when a chunk is due (it sleeps until then) and the chunk
        is made in one fill: a call per instant would cost a loop pass each.
        Unpaced (tests): True whenever it filled anything."""
        if self.unpaced:
            n = ring.space()
            if n:
                src.fill(ring.buf, ring.offset(), n)
                ring.commit(n, ticks_us())  # masked to 30 bits in there
                return True
            return False
        ps = self.ps
        now = ticks_us()
        done = 0
        while True:
            space = ring.space()
            if space:
                limit = _BURST - done  # bounded, so commands and frames keep flowing
                if limit <= 0:
                    break
                if space < limit:
                    limit = space
            else:
                # full: everything due now is lost at once, as it would be
                # had an IRQ sampler found the ring full all along
                limit = _MASK30
            t = ps[_NEXT_T]
            k = _walk(ps, now, limit)
            if not k:
                break
            if space:
                src.fill(ring.buf, ring.offset(), k)
                ring.commit(k, t)
                done += k
            else:
                src.skip(k)
                ring.drop(k)
                done += 1
        return done >= _BURST
