# Firmware micro-benchmark, run on the unix port by tools/fw_bench.py:
# microseconds per SAMPLES frame for the framing hot path (ramp fill into the
# ring, then header, copy and CRC-32 into the frame buffer), per format, with
# the heap locked as in the streaming loop. Prints one JSON line per format.
import gc
import json
import sys
import micropython
from time import ticks_us, ticks_diff
from picodaq_fw.framer import Framer
from picodaq_fw.ring import SampleRing
from picodaq_fw.sources import Ramp
from picodaq_fw.contracts import BYTES_PER_SAMPLE

NCH = 8
SPF = 32
FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def run(fmt):
    ring = SampleRing(64 * 1024)
    ring.configure(4, SPF, NCH * BYTES_PER_SAMPLE[fmt])
    src = Ramp()
    src.start(NCH, fmt, 1000)
    f = Framer()
    gc.collect()
    free = gc.mem_free()
    micropython.heap_lock()
    # whole frames: fill + frame, as the streaming loop does them
    t0 = ticks_us()
    for _ in range(FRAMES):
        src.fill(ring.buf, ring.offset(), SPF)
        ring.commit(SPF, t0)
        f.samples(ring, 1000000, NCH, fmt)
    total = ticks_diff(ticks_us(), t0)
    # the two halves apart (timer calls included)
    fill = 0
    frame = 0
    for _ in range(FRAMES):
        a = ticks_us()
        src.fill(ring.buf, ring.offset(), SPF)
        ring.commit(SPF, a)
        b = ticks_us()
        f.samples(ring, 1000000, NCH, fmt)
        frame += ticks_diff(ticks_us(), b)
        fill += ticks_diff(b, a)
    micropython.heap_unlock()
    after = gc.mem_free()  # before anything here allocates
    return {"fmt": fmt, "frames": FRAMES, "frame_bytes": 14 + 16 + SPF * NCH * BYTES_PER_SAMPLE[fmt],
            "us_per_frame": total / FRAMES, "us_fill": fill / FRAMES, "us_frame": frame / FRAMES,
            "heap_free_before": free, "heap_free_after": after}


for fmt in (1, 2, 3):
    print(json.dumps(run(fmt)))
