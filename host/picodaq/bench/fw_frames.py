# MicroPython script (the unix port), not a CPython module: picodaq.bench.firmware
# runs it next to a copy of the firmware. Firmware hot-path micro-benchmark:
# microseconds per SAMPLES frame for the framing hot path (ramp fill into the
# ring, then header, copy and CRC-32 into the frame buffer), per format, with
# the heap locked as in the streaming loop; next to a straightforward framer
# (struct.pack and bytes concatenation, binascii.crc32) on the same ring.
# Prints one JSON line per format.
#
# Allocations: the optimised framer runs under micropython.heap_lock(), where
# any allocation raises MemoryError (counted, frame by frame); gc.mem_alloc()
# before and after, with the GC off, gives the bytes. The straightforward one
# cannot run with the heap locked: its bytes per frame come from gc.mem_alloc()
# deltas over a short run with the GC off.
import binascii
import gc
import json
import struct
import sys
from time import ticks_diff, ticks_us

import micropython
from picodaq_fw.contracts import BYTES_PER_SAMPLE, MAGIC0, MAGIC1, MSG_SAMPLES, PROTOCOL_VERSION
from picodaq_fw.framer import Framer
from picodaq_fw.ring import CBYTES, RSLOT, SampleRing
from picodaq_fw.ring import SPF as SPF_AT
from picodaq_fw.sources import Ramp

NCH = 8
SPF = 32
PERIOD_NS = 1000000
FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
NAIVE_ALLOC_FRAMES = 200  # few enough that the GC, switched off, never needs to run


def naive_samples(ring, period_ns, nch, fmt, seq, release=True):
    """A SAMPLES frame the straightforward way: struct.pack, slices, concatenation."""
    s = ring.st[RSLOT]
    cb = ring.st[CBYTES]
    first = ring.first[2 * s] | ring.first[2 * s + 1] << 16
    payload = struct.pack("<IIIBBH", first, ring.t0[s], period_ns, nch, fmt, ring.st[SPF_AT])
    payload += bytes(ring.buf[s * cb : (s + 1) * cb])
    frame = struct.pack("<BBBBHI", MAGIC0, MAGIC1, PROTOCOL_VERSION, MSG_SAMPLES, len(payload), seq) + payload
    frame += struct.pack("<I", binascii.crc32(frame))
    if release:
        ring.release()
    return frame


def setup(fmt):
    ring = SampleRing(64 * 1024)
    ring.configure(4, SPF, NCH * BYTES_PER_SAMPLE[fmt])
    src = Ramp()
    src.start(NCH, fmt, 1000)
    return ring, src


def same_bytes(fmt):
    """Both framers give the same bytes for the same chunks (seq included)."""
    ring, src = setup(fmt)
    f = Framer()
    for seq in range(3):
        src.fill(ring.buf, ring.offset(), SPF)
        ring.commit(SPF, 12345 + seq)
        want = naive_samples(ring, PERIOD_NS, NCH, fmt, seq, release=False)
        n = f.samples(ring, PERIOD_NS, NCH, fmt)
        if bytes(f.sbuf[:n]) != want:
            return False
    return True


def run(fmt):
    ring, src = setup(fmt)
    f = Framer()
    gc.collect()
    free = gc.mem_free()
    gc.disable()
    used = gc.mem_alloc()
    errors = 0
    micropython.heap_lock()
    # whole frames: fill + frame, as the streaming loop does them
    t0 = ticks_us()
    for _ in range(FRAMES):
        src.fill(ring.buf, ring.offset(), SPF)
        ring.commit(SPF, t0)
        f.samples(ring, PERIOD_NS, NCH, fmt)
    total = ticks_diff(ticks_us(), t0)
    # the two halves apart (timer calls included); a MemoryError here is an allocation
    fill = 0
    frame = 0
    for _ in range(FRAMES):
        a = ticks_us()
        src.fill(ring.buf, ring.offset(), SPF)
        ring.commit(SPF, a)
        b = ticks_us()
        try:
            f.samples(ring, PERIOD_NS, NCH, fmt)
        except MemoryError:
            errors += 1
        frame += ticks_diff(ticks_us(), b)
        fill += ticks_diff(b, a)
    micropython.heap_unlock()
    grown = gc.mem_alloc() - used  # before anything here allocates
    after = gc.mem_free()
    gc.enable()
    # the straightforward framer, heap unlocked: time, then bytes per frame with the GC off
    gc.collect()
    seq = 0
    naive = 0
    for _ in range(FRAMES):
        a = ticks_us()
        src.fill(ring.buf, ring.offset(), SPF)
        ring.commit(SPF, a)
        b = ticks_us()
        naive_samples(ring, PERIOD_NS, NCH, fmt, seq)
        naive += ticks_diff(ticks_us(), b)
        seq += 1
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(NAIVE_ALLOC_FRAMES):
        src.fill(ring.buf, ring.offset(), SPF)
        ring.commit(SPF, 0)
        naive_samples(ring, PERIOD_NS, NCH, fmt, seq)
    naive_bytes = gc.mem_alloc() - before
    gc.enable()
    return {
        "fmt": fmt,
        "frames": FRAMES,
        "frame_bytes": 14 + 16 + SPF * NCH * BYTES_PER_SAMPLE[fmt],
        "us_per_frame": total / FRAMES,
        "us_fill": fill / FRAMES,
        "us_frame": frame / FRAMES,
        "naive_us_frame": naive / FRAMES,
        "heap_alloc_errors": errors,
        "heap_bytes_allocated": grown,
        "naive_bytes_per_frame": naive_bytes / NAIVE_ALLOC_FRAMES,
        "same_bytes": same_bytes(fmt),
        "heap_free_before": free,
        "heap_free_after": after,
    }


for fmt in (1, 2, 3):
    print(json.dumps(run(fmt)))
