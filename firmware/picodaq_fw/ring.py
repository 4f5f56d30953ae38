# SampleRing: interleaved sample instants in a fixed buffer, cut into chunks of
# samples_per_frame instants so that each SAMPLES frame is one chunk.
#
# One writer (the sampler: a hard IRQ or DMA IRQ on rp2, the main loop on unix)
# and one reader (the framer in the main loop). All ring state lives in one
# array of words, `st`, so the writer side is viper functions that a hard IRQ
# can call with no allocation and no attribute lookups:
#   writer-owned: WR (chunks completed, mod 2**16), WSLOT, FILL, HIGH, FAULT,
#                 the NEXT/DROPPED counters and the metadata of the chunk it fills
#   reader-owned: RD (chunks released, mod 2**16), RSLOT
# Queued chunks = (WR - RD) & 0xFFFF. Neither side writes a word the other
# writes, and each word is written in one store, so no lock is needed. The
# writer publishes a chunk (WR += 1) only after its data and metadata are in
# place, and the reader frees a slot (RD += 1) only after copying it out.
#
# When the ring is full the oldest data is kept: new instants are counted as
# dropped and their indices skipped, which shows on the host as a jump in
# first_sample_index. A chunk is only started when a whole free slot exists, so
# every chunk holds consecutive instants.
#
# Size: the buffer is taken once (at boot on rp2, before the heap fragments) and
# a stream uses as much of it as its frame size allows, up to MAX_SLOTS chunks
# (geometry()); a configuration is refused only when that would hold less than
# FLOOR_MS of the stream (app.py says so, naming the ring's duration and size).
import micropython
from array import array
from micropython import const
from . import counter32
from .budget import largest

MAX_SLOTS = const(128)  # chunks at most on a small board: 8 bytes of metadata each, made at boot
# (a board with RAM to spare says more in its Hal.RING_SLOTS: the unix port, 1024)
FLOOR_MS = const(100)  # the least a stream's ring may hold
# indices into counts (u32 counters as u16 halves)
NEXT = const(0)  # absolute index of the next instant
DROPPED = const(2)  # instants dropped since START
# indices into st
WR = const(0)
WSLOT = const(1)
FILL = const(2)
HIGH = const(3)
FAULT = const(4)  # set by a sampler that hit an error in IRQ context
RD = const(5)
RSLOT = const(6)
SLOTS = const(7)
SPF = const(8)
IBYTES = const(9)
CBYTES = const(10)
_NST = const(11)


@micropython.viper
def space(st: ptr32) -> int:
    """Instants that can be written now, all into the current chunk."""
    fill = st[FILL]
    if fill == 0 and ((st[WR] - st[RD]) & 0xFFFF) >= st[SLOTS]:
        return 0  # full: the ring keeps its old data
    return st[SPF] - fill


@micropython.viper
def offset(st: ptr32) -> int:
    return st[WSLOT] * st[CBYTES] + st[FILL] * st[IBYTES]


@micropython.viper
def commit(st: ptr32, counts: ptr16, t0: ptr32, first: ptr16, n: int, t_us: int):
    """n instants were written at offset(); t_us is the first one's time."""
    s = st[WSLOT]
    fill = st[FILL]
    if fill == 0:
        t0[s] = t_us & 0x3FFFFFFF
        first[2 * s] = counts[NEXT]
        first[2 * s + 1] = counts[NEXT + 1]
    lo = counts[NEXT] + (n & 0xFFFF)
    counts[NEXT + 1] = counts[NEXT + 1] + (n >> 16) + (lo >> 16)
    counts[NEXT] = lo
    fill += n
    if fill >= st[SPF]:
        fill = 0
        s += 1
        if s == st[SLOTS]:
            s = 0
        st[WSLOT] = s
        st[FILL] = 0
        st[WR] = (st[WR] + 1) & 0xFFFF  # publish the chunk last
    else:
        st[FILL] = fill
    q = ((st[WR] - st[RD]) & 0xFFFF) * st[SPF] + fill
    if q > st[HIGH]:
        st[HIGH] = q


@micropython.viper
def drop(counts: ptr16, n: int):
    """n instants arrived while the ring was full."""
    lo = counts[NEXT] + (n & 0xFFFF)
    counts[NEXT + 1] = counts[NEXT + 1] + (n >> 16) + (lo >> 16)
    counts[NEXT] = lo
    lo = counts[DROPPED] + (n & 0xFFFF)
    counts[DROPPED + 1] = counts[DROPPED + 1] + (n >> 16) + (lo >> 16)
    counts[DROPPED] = lo


@micropython.viper
def put_gather(st: ptr32, counts: ptr16, t0: ptr32, first: ptr16, rbuf: ptr8,
               src: ptr8, idx: ptr8, nidx: int, bps: int, t_us: int) -> int:
    """Store one instant gathered from src: nidx samples of bps bytes, sample k
    at src[idx[k]:]. For IRQ samplers (ADC timer, ADS1299 DRDY). Returns 1 if
    stored, 0 if the ring was full and the instant was dropped."""
    fill = st[FILL]
    if fill == 0 and ((st[WR] - st[RD]) & 0xFFFF) >= st[SLOTS]:
        drop(counts, 1)
        return 0
    o = st[WSLOT] * st[CBYTES] + fill * st[IBYTES]
    k = 0
    while k < nidx:
        j = int(idx[k])
        b = 0
        while b < bps:
            rbuf[o] = src[j + b]
            o += 1
            b += 1
        k += 1
    commit(st, counts, t0, first, 1, t_us)
    return 1


@micropython.viper
def room(st: ptr32, m: int) -> int:
    """Instants, at most m, that can be written now, all into the current chunk
    (at offset()); 0 when the ring is full. For the DMA paths' block handlers."""
    fill = st[FILL]
    if fill == 0 and ((st[WR] - st[RD]) & 0xFFFF) >= st[SLOTS]:
        return 0
    k = st[SPF] - fill
    return k if k < m else m


@micropython.viper
def commit_at(st: ptr32, counts: ptr16, t0: ptr32, first: ptr16, k: int, t_end: int, n: int, i: int,
              period_q8: int):
    """commit() k instants from instant i of a DMA block of n that completed at
    ticks t_end; period_q8 is the instant period in 1/256 us. The time is worked
    out here, in machine ints: on rp2 an int >= 2**30 would be a heap object."""
    t = t_end - ((n * period_q8) >> 8) + ((i * period_q8) >> 8)
    commit(st, counts, t0, first, k, t & 0x3FFFFFFF)


def geometry(nbytes, spf, ibytes, rate, most=MAX_SLOTS):
    """(slots, ms): the chunks of spf instants of ibytes each that a ring of nbytes
    holds (at most `most`), and how many ms of a stream at rate that is."""
    slots = nbytes // (spf * ibytes)
    if slots > most:
        slots = most
    # slots * spf * 1000 < 2**30: spf <= 4080 instants (one frame), slots <= 1024
    return slots, slots * spf * 1000 // rate


def refusal(nbytes, rate, nch, bps, spf, room, most=MAX_SLOTS):
    """None, or why a ring of nbytes would hold less than FLOOR_MS of this stream
    (room: the sample bytes one frame holds), naming its duration and the board's
    limit: the ring's bytes, or its `most` frames. A LOG text: < 128 bytes."""
    slots, ms = geometry(nbytes, spf, nch * bps, rate, most)
    if slots >= 2 and ms >= FLOOR_MS:
        return None
    if slots == most:  # the frames are too small, not the ring
        need = (rate * FLOOR_MS + most * 1000 - 1) // (most * 1000)
        widest = room // (nch * bps)  # instants in the largest frame
        if need > widest:  # no frame size helps: say so, not "raise"
            return "CONFIGURE: rate %d with %d channel(s) is too fast for this board: at most %d" % (
                rate, nch, most * widest * 1000 // FLOOR_MS)
        return "CONFIGURE: %d frames/s: the ring's %d frames hold %d ms (%d needed); raise samples_per_frame to %d" % (
            (rate + spf - 1) // spf, most, ms, FLOOR_MS, need)
    return "CONFIGURE: the ring holds %d ms of %d B/s (%d ms needed); this board's ring is %d B: at most %d B/s" % (
        ms, rate * nch * bps, FLOOR_MS, nbytes, nbytes * (1000 // FLOOR_MS))


class SampleRing:
    def __init__(self, buf, most=MAX_SLOTS):
        # buf: the ring's bytearray (main.py takes it at boot), or a size to allocate now;
        # most: the chunks it may be cut into (their metadata is made here, once)
        self.buf = largest(buf) if isinstance(buf, int) else buf
        self.most = most
        self.st = array("i", bytes(4 * _NST))
        self.t0 = array("I", bytes(4 * most))
        self.first = array("H", bytes(4 * most))  # first index of each chunk, halves
        self.counts = array("H", bytes(8))
        self.configure(2, 1, 1)

    def fits(self, slots, spf, ibytes):
        return 2 <= slots <= self.most and slots * spf * ibytes <= len(self.buf)

    def configure(self, slots, spf, ibytes):
        st = self.st
        st[SLOTS] = slots
        st[SPF] = spf
        st[IBYTES] = ibytes
        st[CBYTES] = spf * ibytes
        self.reset()

    def reset(self):
        # only while no sampler runs
        st = self.st
        for i in range(SLOTS):
            st[i] = 0
        for i in range(4):
            self.counts[i] = 0

    # -- geometry, fixed between configure() calls ------------------------------

    @property
    def spf(self):
        return self.st[SPF]

    @property
    def cbytes(self):
        return self.st[CBYTES]

    def capacity(self):
        return self.st[SLOTS] * self.st[SPF]

    # -- writer side (main-loop samplers; IRQ samplers call the viper functions) --

    def space(self):
        return space(self.st)

    def offset(self):
        return offset(self.st)

    def commit(self, n, t_us):
        commit(self.st, self.counts, self.t0, self.first, n, t_us)

    def drop(self, n):
        drop(self.counts, n)

    # -- reader side -------------------------------------------------------------

    def ready(self):
        st = self.st
        return (st[WR] - st[RD]) & 0xFFFF

    def high_water(self):
        return self.st[HIGH]

    def faulted(self):
        return self.st[FAULT]

    def read_counter(self, i, dst, j):
        """Copy counts[i], counts[i + 1] into dst[j], dst[j + 1], untorn."""
        counter32.snapshot(self.counts, i, dst, j)

    def release(self):
        st = self.st
        s = st[RSLOT] + 1
        st[RSLOT] = 0 if s == st[SLOTS] else s
        st[RD] = (st[RD] + 1) & 0xFFFF
