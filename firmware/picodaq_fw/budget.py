# The sample ring's share of a board's heap.
#
# main.py takes the ring first thing at boot, before the firmware's modules load:
# the heap is then one free block, so the ring can be one large bytearray. Taken
# after the imports it got less than half of what was free (the loaders leave
# holes: on an RP2040, 71 KB of a 200 KB free heap was the largest block).
# What is left after the ring, RP2_RESERVE, holds the modules, the App's buffers,
# what START makes for a source and what commands format; how it was measured is
# in firmware/README.md ("Ring budget").
import gc
from micropython import const

RP2_RESERVE = const(72 * 1024)


def largest(nbytes, least=4096):
    """A bytearray of nbytes, or of the largest size below that the heap holds in
    one block (found to within 256 bytes); MemoryError below least bytes."""
    gc.collect()
    try:
        return bytearray(nbytes)
    except MemoryError:
        pass
    lo = 0
    hi = nbytes
    while hi - lo > 256:
        mid = ((lo + hi) // 2) & ~3
        try:
            b = bytearray(mid)
            del b
            lo = mid
        except MemoryError:
            hi = mid
        gc.collect()
    if lo < least:
        raise MemoryError("no room for a sample ring")
    return bytearray(lo)


def take(reserve):
    """The ring: what is free now, less reserve bytes, in one block."""
    gc.collect()
    return largest((gc.mem_free() - reserve) & ~3)
