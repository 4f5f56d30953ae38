"""The receiver's steady state over a million frames, frame by frame and in runs: no retained
growth under tracemalloc, pool hit rate >= 99.9%, exact counters. Seconds each, so they live here
rather than in tests/unit (which stays well under 20 s)."""

from __future__ import annotations

import numpy as np

from picodaq import contracts as C
from picodaq.bench.frames import FrameStream
from picodaq.core.alloc import HotPathGuard, tracing
from picodaq.core.primary import BlockQueue
from picodaq.core.receiver import Receiver


def test_one_million_frames_in_steady_state():
    """decode -> route -> primary + 2 observers: no retained growth, pool hit rate >= 99.9%.

    One million 614-byte SAMPLES frames (600-byte payloads), through the
    Receiver in 64 KiB reads, under tracemalloc from the first frame.
    """
    frames = FrameStream(n_channels=4, fmt=C.FMT_INT16, n_samples=73, frames_per_chunk=1000)
    queue = BlockQueue(maxlen=4096)
    rx = Receiver(primary=queue)
    last = np.zeros(4, dtype=np.int32)
    first = np.zeros(4, dtype=np.int32)

    def every_block(view):
        np.copyto(last, view.counts[-1])

    def every_tenth(view):
        np.copyto(first, view.counts[0])

    rx.taps.add(every_block)
    rx.taps.add(every_tenth, every=10)

    def consume(block):  # the primary's consumer: owns each block until poll_each releases it
        pass

    # Arrival times as a host would see them (the device time of the read's last byte plus a jitter of
    # up to 1 ms), made before the guard: the clock fit's path then depends on the data alone, not on
    # how fast this machine runs today (the wall clock once left one float more alive by chance).
    frame_s = 73 / 1000
    reads = [min(1000, (i + (1 << 16)) // frames.frame_size) for i in range(0, frames.frame_size * 1000, 1 << 16)]
    arrivals = iter(
        [(c * 1000 + n) * frame_s + (k * 7919 % 1000) * 1e-6 for c in range(1000) for k, n in enumerate(reads)]
    )

    def run(chunks):
        for _ in range(chunks):
            chunk = frames.next_chunk()
            for i in range(0, len(chunk), 1 << 16):
                rx.receive(chunk[i : i + (1 << 16)], next(arrivals))
                queue.poll_each(1 << 30, consume)

    total_chunks, warmup = 1000, 70
    with tracing():
        run(warmup)  # pools, caches, the clock's window and counters (past 65536) reach their working size
        with HotPathGuard(budget_bytes=512 * 1024, max_growth_bytes=0, label="decode->route->primary") as g:
            run(total_chunks - warmup)
    s = rx.stats
    assert s.frames_ok == 1_000_000 and s.samples == 73_000_000
    assert s.crc_errors == s.header_errors == s.skipped_bytes == s.seq_lost == s.samples_lost == 0
    p = rx.pool_stats
    assert p.acquires == 1_000_000 and p.in_use == 0 and p.fallbacks == 0 and p.leaked == 0
    assert p.hit_rate >= 0.999 and rx.block_stats.hit_rate >= 0.999
    assert queue.delivered == 1_000_000 and queue.dropped == 0
    assert [t.delivered for t in rx.taps] == [1_000_000, 100_000]
    assert g.growth <= 0
    data = (np.arange(4 * 73 * 2) % 251).astype(np.uint8)  # FrameStream's fixed sample bytes
    assert np.array_equal(last, data[-8:].view("<i2")) and np.array_equal(first, data[:8].view("<i2"))


def test_one_million_frames_in_runs_in_steady_state():
    """The batched path's steady state: no retained growth, pool hit rate >= 99.9%, exact counters."""
    frames = FrameStream(n_channels=4, fmt=C.FMT_INT16, n_samples=73, frames_per_chunk=1000)
    queue = BlockQueue(maxlen=4096)
    rx = Receiver(primary=queue, runs=True)
    last = np.zeros((1, 4), dtype=np.int32)

    def every_block(view):
        np.copyto(last, view.counts[-1:])

    rx.taps.add(every_block)
    rx.taps.add(every_block, every=10)

    reads = [0]

    def run(chunks):
        for _ in range(chunks):
            chunk = frames.next_chunk()
            for i in range(0, len(chunk), 1 << 16):
                reads[0] += 1
                # arrival times as a steady link would give them: the host clock's fit, and so
                # what it keeps, is the same on every run of the test
                rx.receive(chunk[i : i + (1 << 16)], reads[0] * 0.0078)
                queue.poll_each(1 << 30, lambda b: None)

    # a longer warm-up than frame by frame: the views kept per buffer and run length, and numpy's
    # own caches of small arrays, settle over the first few hundred reads
    total_chunks, warmup = 1000, 250
    with tracing():
        run(warmup)
        with HotPathGuard(budget_bytes=512 * 1024, max_growth_bytes=0, label="runs: decode->route->primary") as g:
            run(total_chunks - warmup)
    s = rx.stats
    assert s.frames_ok == 1_000_000 and s.samples == 73_000_000
    assert s.crc_errors == s.header_errors == s.skipped_bytes == s.seq_lost == s.samples_lost == 0
    p = rx.pool_stats
    assert p.in_use == 0 and p.fallbacks == 0 and p.leaked == 0 and p.hit_rate >= 0.999
    assert rx.decoder.runs > 0 and p.acquires < 1_000_000 // 20  # a buffer per read's run, not per frame
    assert [t.delivered for t in rx.taps] == [1_000_000, 100_000]
    assert g.growth <= 0
