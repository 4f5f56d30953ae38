"""Stand-ins for a live recording's counters (the live view's tests, no board)."""

from __future__ import annotations

import struct
from types import SimpleNamespace

from picodaq.flash import uf2 as U
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


def uf2_image(n: int = 8, family: int = U.RP2040, base: int = U.FLASH_BASE, payload: int = 256) -> bytearray:
    """n blocks of a flash image for family, 256 bytes each from base, as pico-sdk's elf2uf2 writes."""
    out = bytearray()
    for i in range(n):
        block = bytearray(U.BLOCK)
        struct.pack_into("<8I", block, 0, U.MAGIC0, U.MAGIC1, U.FLAG_FAMILY, base + i * payload, payload, i, n, family)
        block[32 : 32 + payload] = bytes((i + k) & 0xFF for k in range(payload))
        struct.pack_into("<I", block, U.BLOCK - 4, U.MAGIC_END)
        out += block
    return out
