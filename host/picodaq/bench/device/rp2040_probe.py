# MicroPython script for the rp2 port (the emulated RP2040), not a CPython module:
# picodaq.bench.rp2040_board runs it in the raw REPL after a soft reset, with the
# firmware's modules on the board. Cycles (at 125 MHz) of each piece of the hot
# path, with the heap locked as in the streaming loop: on rp2 a call into
# bytecode puts its frame on the heap unless the heap is locked, which changes
# the cost by up to 3x. Time is ticks_us(), the chip's own timer: nothing here
# waits, so emulated time is cycles executed (8 ns each), interrupts included.
# Prints one JSON object per line; the last line is {"done": true}. The host
# sets PROBE_QUICK (fewer, shorter measurements) before this text. The ring
# budget is rp2040_budget.py's (a small script: what it finds free is what
# main.py finds).
import gc
import json
from time import ticks_diff, ticks_us

import micropython

QUICK = globals().get("PROBE_QUICK", False)
NCH = 8
RING = 48 * 1024


def cycles(t0, t1, n):
    return ticks_diff(t1, t0) * 125 // n


def say(**kw):
    print(json.dumps(kw))


def framing(ring, f, fmt, spf, n):
    bps = fmt + 1 if fmt < 3 else 4
    ring.configure(RING // (spf * NCH * bps), spf, NCH * bps)
    best = 0
    micropython.heap_lock()
    try:
        for _ in range(n):
            ring.commit(spf, 0)
        t0 = ticks_us()
        for _ in range(n):
            best = f.samples(ring, 1000000, NCH, fmt)
        t1 = ticks_us()
    finally:
        micropython.heap_unlock()
    return cycles(t0, t1, n), best


def crc_per_byte(update, buf, n):
    c = crc32.new_state()
    micropython.heap_lock()
    try:
        t0 = ticks_us()
        for _ in range(n):
            update(c, buf, 0, len(buf))
        t1 = ticks_us()
    finally:
        micropython.heap_unlock()
    return ticks_diff(t1, t0) * 125 * 100 // (n * len(buf))  # hundredths of a cycle


def fill_per_instant(src, fmt, buf, n):
    src.start(NCH, fmt, 1000)  # allocates (the sine's steps): not timed
    micropython.heap_lock()
    try:
        t0 = ticks_us()
        for _ in range(n):
            src.fill(buf, 0, 100)
        t1 = ticks_us()
    finally:
        micropython.heap_unlock()
    return cycles(t0, t1, 100 * n)


def handler_per_instant(leg, ring, dma, instants, n):
    micropython.heap_lock()
    try:
        t0 = ticks_us()
        for _ in range(n):
            ring.reset()  # room for the block again: timed apart below and taken off
            leg.on_done(dma)
        t1 = ticks_us()
        for _ in range(n):
            ring.reset()
        t2 = ticks_us()
    finally:
        micropython.heap_unlock()
    return (ticks_diff(t1, t0) - ticks_diff(t2, t1)) * 125 // (n * instants)


def main():
    global crc32, Ramp, Sine
    import rp2
    from picodaq_fw import crc32
    from picodaq_fw.adc_rp2 import _DmaLeg
    from picodaq_fw.ads1299 import _AdsLeg
    from picodaq_fw.framer import Framer
    from picodaq_fw.ring import SampleRing
    from picodaq_fw.sources import Ramp, Sine

    gc.collect()
    ring = SampleRing(RING)
    f = Framer()
    frames = 8 if QUICK else 40
    spfs = (16, 170) if QUICK else (8, 16, 32, 64, 128, 170)
    for fmt in (1, 2, 3):
        bps = fmt + 1 if fmt < 3 else 4
        for spf in spfs:
            if 16 + spf * NCH * bps > 4096:
                continue
            crc32.update = crc32._update_thumb if crc32.THUMB else crc32.update_viper
            crc32.copy = crc32._copy_thumb if crc32.THUMB else crc32.copy_viper
            new, size = framing(ring, f, fmt, spf, frames)
            crc32.update = crc32.update_viper
            crc32.copy = crc32.copy_viper
            old, _ = framing(ring, f, fmt, spf, frames)
            say(
                kind="framing",
                fmt=fmt,
                channels=NCH,
                samples_per_frame=spf,
                frame_bytes=size,
                cycles_new=new,
                cycles_old=old,
                thumb=crc32.THUMB,
            )
    crc32.update = crc32._update_thumb if crc32.THUMB else crc32.update_viper
    crc32.copy = crc32._copy_thumb if crc32.THUMB else crc32.copy_viper
    buf = bytearray(4000)
    n = 2 if QUICK else 10
    say(
        kind="crc",
        bytes=len(buf),
        centicycles_per_byte_viper=crc_per_byte(crc32.update_viper, buf, n),
        centicycles_per_byte_new=crc_per_byte(crc32.update, buf, n),
        thumb=crc32.THUMB,
    )
    n = 2 if QUICK else 10
    for fmt in (1, 2, 3):
        for name, source in (("ramp", Ramp), ("sine", Sine)):
            say(
                kind="source",
                source=name,
                fmt=fmt,
                channels=NCH,
                cycles_per_instant=fill_per_instant(source(), fmt, ring.buf, n),
            )
    # the block handlers of the DMA paths, called as their IRQ would (the IRQ's entry not included)
    dma = rp2.DMA()
    try:
        ring.configure(RING // (500 * 8), 500, 8)  # 4 channels of int16, 500 instants a frame
        blk = bytearray(200 * 8)
        leg = _DmaLeg(ring, blk, 200, 40 * 256)  # 25 kHz: 40 us an instant
        say(
            kind="source",
            source="adc",
            fmt=1,
            channels=4,
            block_instants=200,
            cycles_per_instant=handler_per_instant(leg, ring, dma, 200, 4 if QUICK else 20),
        )
        ring.configure(RING // (170 * 24), 170, 24)  # 8 channels of int24, 170 instants a frame
        blk = bytearray(128 * 27)
        idx = bytearray(3 + 3 * c for c in range(8))
        leg = _AdsLeg(ring, blk, 128, idx, 8, 27, 256000000 // 16000)
        say(
            kind="source",
            source="ads1299",
            fmt=2,
            channels=8,
            block_instants=128,
            cycles_per_instant=handler_per_instant(leg, ring, dma, 128, 4 if QUICK else 20),
        )
    finally:
        dma.close()
    say(done=True)


main()
