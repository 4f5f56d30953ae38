# SampleRing: interleaved sample instants in a fixed buffer, cut into chunks of
# samples_per_frame instants so that each SAMPLES frame is one chunk.
#
# One writer (the sampler: a hard IRQ on rp2, the main loop on unix) and one
# reader (the framer). The writer owns wr, wslot, fill, the next-index halves
# and the per-chunk metadata of the chunk it fills; the reader owns rd and
# rslot. Queued chunks = (wr - rd) & 0xFFFF, so neither side writes a field the
# other writes, and no lock is needed.
#
# When the ring is full the oldest data is kept: new instants are counted as
# dropped and their indices skipped, which shows on the host as a jump in
# first_sample_index. A chunk is only started when a whole free slot exists, so
# every chunk holds consecutive instants.
from array import array
from micropython import const
from . import counter32

MAX_SLOTS = const(1024)
_MASK30 = const(0x3FFFFFFF)
# indices into self.counts (u32 counters as u16 halves)
NEXT = const(0)  # absolute index of the next instant
DROPPED = const(2)  # instants dropped since START


class SampleRing:
    def __init__(self, nbytes):
        self.buf = bytearray(nbytes)  # allocated once, at boot
        self.t0 = array("I", bytes(4 * MAX_SLOTS))
        self.first = array("H", bytes(4 * MAX_SLOTS))  # first index of each chunk, halves
        self.counts = array("H", bytes(8))
        self.slots = 1
        self.spf = 1
        self.ibytes = 1
        self.cbytes = 1
        self.reset()

    def fits(self, slots, spf, ibytes):
        return 2 <= slots <= MAX_SLOTS and slots * spf * ibytes <= len(self.buf) and slots * spf <= 65535

    def configure(self, slots, spf, ibytes):
        self.slots = slots
        self.spf = spf
        self.ibytes = ibytes
        self.cbytes = spf * ibytes
        self.reset()

    def reset(self):
        self.wr = 0
        self.rd = 0
        self.wslot = 0
        self.rslot = 0
        self.fill = 0
        self.high_water = 0
        for i in range(4):
            self.counts[i] = 0

    def capacity(self):
        return self.slots * self.spf

    # -- writer side -------------------------------------------------------

    def space(self):
        """Instants that can be written now, all into the current chunk."""
        if self.fill == 0 and ((self.wr - self.rd) & 0xFFFF) >= self.slots:
            return 0  # full: the ring keeps its old data
        return self.spf - self.fill

    def offset(self):
        return self.wslot * self.cbytes + self.fill * self.ibytes

    def commit(self, n, t_us):
        """n instants were written at offset(); t_us is the first one's time."""
        if self.fill == 0:
            s = self.wslot
            self.t0[s] = t_us & _MASK30
            self.first[2 * s] = self.counts[NEXT]
            self.first[2 * s + 1] = self.counts[NEXT + 1]
        counter32.add(self.counts, NEXT, n)
        self.fill += n
        if self.fill >= self.spf:
            self.fill = 0
            self.wslot += 1
            if self.wslot == self.slots:
                self.wslot = 0
            self.wr = (self.wr + 1) & 0xFFFF
        q = ((self.wr - self.rd) & 0xFFFF) * self.spf + self.fill
        if q > self.high_water:
            self.high_water = q

    def drop(self, n):
        """n instants arrived while the ring was full."""
        counter32.add(self.counts, NEXT, n)
        counter32.add(self.counts, DROPPED, n)

    # -- reader side -------------------------------------------------------

    def ready(self):
        return (self.wr - self.rd) & 0xFFFF

    def release(self):
        self.rslot += 1
        if self.rslot == self.slots:
            self.rslot = 0
        self.rd = (self.rd + 1) & 0xFFFF
