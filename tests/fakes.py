"""Stand-ins for a live recording's counters (the live view's tests, no board)."""

from __future__ import annotations

from types import SimpleNamespace

from picodaq.protocol.messages import Status
from picodaq.protocol.stats import DecoderStats
from picodaq.recording.timeline import TimelineCounts


def fake_recording(pool_stats=None):
    pool_stats = pool_stats or SimpleNamespace(hit_rate=1.0)
    receiver = SimpleNamespace(
        stats=DecoderStats(frames_ok=120, samples=4000, samples_lost=7, crc_errors=1),
        status=Status(1000, 100, 3, 51, 1020, 0, 0, 1),
        pool_stats=pool_stats,
    )
    pipeline = SimpleNamespace(
        timeline=SimpleNamespace(counts=TimelineCounts(gaps=2, markers=1)), layout=None, last_marker=None
    )
    return SimpleNamespace(
        receiver=receiver, pipeline=pipeline, bytes_in=2_000_000, device_dropped=3, state="streaming"
    )
