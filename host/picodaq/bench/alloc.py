"""Figure 2: what the hot path allocates in steady state, and what it keeps.

- allocations and bytes allocated per frame: memray (picodaq.core.alloc.count_allocations:
  a `memray.Tracker` to a file, then `memray.FileReader` counting every
  allocation record, freed or not) around the timed part of a capture replay,
  for the pipeline and, for scale, the naive decoder;
- retained growth: tracemalloc (picodaq.core.alloc.HotPathGuard, with no limits,
  read for its numbers) over a long run of frames from a FrameStream into the
  same receiver set-up: traced memory alive at the end minus at the start
  (also for the second half alone: a bounded structure filling up, such as
  the host clock's fit window of 256 buckets, grows in the first half only;
  a leak grows in both), and the peak of traced memory above the start;
- the buffer pool's hit rate and the block pool's counters over that run.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from ..core.alloc import HotPathGuard, count_allocations, tracing
from .frames import FrameStream
from .pipeline import FMT, N_CHANNELS, N_SAMPLES, PIECE, NaiveReplay, PipelineReplay, _split


def allocations_per_frame(data: bytes, warmup_frames: int = 2000) -> dict[str, Any]:
    """memray counts for the timed part of a replay of data, per frame, pipeline and naive."""
    out: dict[str, Any] = {}
    for name, make in (("pipeline", PipelineReplay), ("naive", NaiveReplay)):
        warm, timed, frames = _split(data, warmup_frames)
        r = make()
        r.feed(warm)
        a = count_allocations(functools.partial(r.feed, timed))
        per, size = a.per(frames)
        out[name] = {
            "frames": frames,
            "allocations": a.count,
            "bytes": a.bytes,
            "allocations_per_frame": per,
            "bytes_allocated_per_frame": size,
        }
    return out


def retained_growth(frames: int, frames_per_chunk: int = 1000) -> dict[str, Any]:
    """Stream frames through the pipeline's receiver under tracemalloc; growth, peak and pool counters."""
    stream = FrameStream(N_CHANNELS, FMT, N_SAMPLES, frames_per_chunk)
    r = PipelineReplay()

    def work(chunks: int) -> None:
        for _ in range(chunks):
            chunk = stream.next_chunk()
            r.feed([chunk[i : i + PIECE] for i in range(0, len(chunk), PIECE)])

    chunks = max(2, frames // frames_per_chunk)
    halves = []
    with tracing():
        work(2)  # warm up under tracing: what it leaves behind is not growth
        first = r.rx.stats.frames_ok
        for n in (chunks // 2, chunks - chunks // 2):
            guard = HotPathGuard(budget_bytes=sys.maxsize, max_growth_bytes=sys.maxsize, label="bench")
            with guard:
                work(n)
            halves.append(guard)
    pool = r.rx.pool_stats
    return {
        "frames": r.rx.stats.frames_ok - first,
        "retained_growth_bytes": sum(g.growth for g in halves),
        # a bounded structure filling up (the host clock's fit window) grows in the first half only
        "second_half_growth_bytes": halves[1].growth,
        "peak_above_start_bytes": max(halves[0].peak, halves[0].growth + halves[1].peak),
        "pool_hit_rate": pool.hit_rate,
        "pool": pool.as_dict(),
        "block_pool": r.rx.block_stats.as_dict(),
        "samples_lost": r.rx.stats.samples_lost,
        "seq_lost": r.rx.stats.seq_lost,
    }
