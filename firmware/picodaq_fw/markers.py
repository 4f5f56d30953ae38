# MarkerQueue: marker events recorded by an IRQ (a GPIO edge on rp2) with the
# sample index current at that moment, framed later by the main loop.
# Single producer (push, viper, allocation-free) and single consumer (pop_into);
# head is written only by the producer, tail only by the consumer.
import micropython
from array import array
from micropython import const
from . import ring

_NEXT = const(0)  # ring.NEXT, as a constant viper can index with

CAPACITY = const(8)
_HEAD = const(0)
_TAIL = const(1)
_LOST = const(2)  # markers that found the queue full


@micropython.viper
def push(q: ptr16, hd: ptr32, counts: ptr16, code: int):
    h = hd[_HEAD]
    if ((h - hd[_TAIL]) & 0x3FFFFFFF) >= CAPACITY:
        hd[_LOST] = hd[_LOST] + 1
        return
    e = 3 * (h & (CAPACITY - 1))
    # the index halves are read directly: on rp2 the sampler IRQs have this
    # IRQ's priority, so none can run between the two reads
    q[e] = counts[_NEXT]
    q[e + 1] = counts[_NEXT + 1]
    q[e + 2] = code
    hd[_HEAD] = (h + 1) & 0x3FFFFFFF


@micropython.viper
def push_ahead(q: ptr16, hd: ptr32, counts: ptr16, ahead: int, code: int):
    """push() at the sample index ahead instants past the ring's next one (an
    instant a DMA block has begun but not yet committed)."""
    h = hd[_HEAD]
    if ((h - hd[_TAIL]) & 0x3FFFFFFF) >= CAPACITY:
        hd[_LOST] = hd[_LOST] + 1
        return
    e = 3 * (h & (CAPACITY - 1))
    lo = counts[_NEXT] + ahead
    q[e] = lo & 0xFFFF
    q[e + 1] = (counts[_NEXT + 1] + (lo >> 16)) & 0xFFFF
    q[e + 2] = code
    hd[_HEAD] = (h + 1) & 0x3FFFFFFF


assert ring.NEXT == _NEXT


class MarkerQueue:
    def __init__(self):
        self.q = array("H", bytes(6 * CAPACITY))
        self.hd = array("i", bytes(12))

    def clear(self):
        # only while no producer runs
        for i in range(3):
            self.hd[i] = 0

    def pending(self):
        hd = self.hd
        return hd[_HEAD] != hd[_TAIL]

    def lost(self):
        return self.hd[_LOST]

    def pop_into(self, dst):
        """Oldest marker: its index halves into dst[0], dst[1]; returns its code."""
        hd = self.hd
        t = hd[_TAIL]
        e = 3 * (t & (CAPACITY - 1))
        q = self.q
        dst[0] = q[e]
        dst[1] = q[e + 1]
        code = q[e + 2]
        hd[_TAIL] = (t + 1) & 0x3FFFFFFF
        return code
