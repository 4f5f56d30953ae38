"""Figure 5: latency from a block's last sample instant, on the device clock, to the primary consumer's callback.

The emulated board (paced, 8 channels x 1 kHz, 20 instants per frame) stamps
each block with t0_us, its first instant's scheduled time on `ticks_us()`
masked to 30 bits (firmware/picodaq_fw/pacer.py; PROTOCOL.md's 2**30 us
ticks period). On the unix port `time.ticks_us()` is CLOCK_MONOTONIC in
microseconds (MicroPython's mp_hal_ticks_us), and so is CPython's
`time.monotonic()` on Linux: the device clock is the host's, so

    device ticks = (time.monotonic_ns() // 1000) mod 2**30

and the latency of a block is (now_us - last_us) mod 2**30, with last_us =
t0_us + (n_samples - 1) * period_ns / 1000, taken in the consumer's callback
(the receiver's primary output, a CallbackOutput, as Link.pump routes the block). `clock_check` verifies the mapping
before measuring: a ticks_us() read by the unix port falls between two host
readings. The latency covers the pacer noticing the instant is due (it
sleeps up to 1 ms between checks), framing, the pty, the emulator's relay
process, the Link's reader thread and ring, decoding and routing.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import numpy as np

from .. import contracts as C
from ..core.blocks import SamplesBlock
from ..recording.config import StreamConfig
from .session import EmulatedSession

CONFIG = StreamConfig(rate=1000, channel_mask=0xFF, source=C.SRC_RAMP, fmt=C.FMT_INT24)
_MASK = C.TICKS_PERIOD - 1
_HALF = C.TICKS_PERIOD // 2


def now_ticks() -> int:
    """The host's monotonic clock as the unix-port board's ticks_us reads it (30 bits)."""
    return (time.monotonic_ns() // 1000) & _MASK


def clock_check(exe: str) -> dict[str, Any]:
    """Read ticks_us on the unix port between two host readings: the mapping holds if it falls between."""
    before = now_ticks()
    out = subprocess.run(
        [exe, "-c", "import time; print(time.ticks_us())"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    after = now_ticks()
    device = int(out) & _MASK
    ok = ((device - before) & _MASK) <= ((after - before) & _MASK)
    return {"host_before_us": before, "device_us": device, "host_after_us": after, "same_clock": ok}


def latency_run(session: EmulatedSession, seconds: float) -> dict[str, Any]:
    lat: list[int] = []

    def on_block(block: SamplesBlock) -> None:
        now = now_ticks()
        last = block.t0_us + (block.n_samples - 1) * block.period_ns // 1000
        d = (now - last) & _MASK
        lat.append(d - C.TICKS_PERIOD if d >= _HALF else d)

    w = session.stream(CONFIG, seconds, on_block=on_block)
    a = np.array(lat, dtype=np.float64) / 1000.0  # ms; the warm-up's blocks included
    return {
        "blocks": len(lat),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "min_ms": float(a.min()),
        "rate": CONFIG.rate,
        "n_channels": CONFIG.n_channels,
        "samples_per_frame": CONFIG.frame_samples(),
        "fmt": C.FORMAT_NAMES[CONFIG.fmt],
        "window": w.as_dict(),
    }
