# The sample ring's share of a board's heap, and the other large buffers.
#
# main.py takes them first thing at boot, before the firmware's modules load:
# the heap is then one free block. Taken after the imports the ring got less
# than half of what was free (the loaders leave holes: on an RP2040, 71 KB of a
# 200 KB free heap was the largest block), and after the Thumb code is compiled
# (thumb.py) even a 4 KB frame buffer may find no block. So early() takes the
# frame buffer and the DMA paths' two block buffers, then take() the ring, and
# what is left, RP2_RESERVE, holds the modules, the App's small buffers, what
# START makes and what commands format, with at least 10 KB to spare while
# streaming; how it was measured is in firmware/README.md ("Ring budget").
import gc
from micropython import const

RP2_RESERVE = const(62 * 1024)
FRAME_BYTES = const(4110)  # a frame of MAX_PAYLOAD: OVERHEAD 14 + 4096 (a test checks contracts.py)
# the largest DMA block: 128 ADS1299 frames of 27 bytes (16 kHz, 8 ms; an ADC block is at most
# 256 instants x 5 channels x 2 bytes = 2560)
DMA_BLOCK_BYTES = const(3456)

frame = None  # early(): the SAMPLES frame buffer
dma = None  # early(): the two DMA block buffers


def early():
    """The buffers of fixed size streams need, while the heap is whole."""
    global frame, dma
    gc.collect()
    frame = bytearray(FRAME_BYTES)
    dma = (bytearray(DMA_BLOCK_BYTES), bytearray(DMA_BLOCK_BYTES))


def release():
    """Back to the heap once the firmware has returned to the REPL (main.py)."""
    global frame, dma
    frame = None
    dma = None


def dma_blocks(nbytes):
    """Two buffers of at least nbytes for a DMA ping-pong: early()'s, else new ones."""
    if dma is not None and nbytes <= DMA_BLOCK_BYTES:
        return dma
    return bytearray(nbytes), bytearray(nbytes)


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
