"""One stream on the emulated Pico, measured in the chip's own cycles, every value checked.

A `Point` is a source, format, channel count and rate; `stream()` configures it
as `picodaq record` would (frames of ~20 ms), lets it settle for 0.5 emulated
seconds, then streams for the emulated seconds asked and returns what it cost
(busy share, cycles per frame, from the runner's control channel) and what it
lost: the board's samples_dropped, the host's losses and gaps, blocks whose
values differ from what the source must produce (`Checker`), and ADS1299 frames
the chip held that were not read before the next (the model's count).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import contracts as C
from ..core.blocks import SamplesBlock, ramp_counts
from ..errors import PicodaqError
from ..recording.config import StreamConfig
from ..transport.link import Link

CYCLES_PER_S = 125_000_000  # the RP2040's clock as MicroPython's rp2 port sets it: 8 ns a cycle


@dataclass(frozen=True)
class Point:
    source: str
    fmt: str
    channels: int
    rate: int

    @property
    def config(self) -> StreamConfig:
        return StreamConfig(
            self.rate, (1 << self.channels) - 1, _code(self.source, C.SOURCE_NAMES), _code(self.fmt, C.FORMAT_NAMES)
        )

    def name(self) -> str:
        return f"{self.source} {self.rate} Hz x {self.channels} {self.fmt}"


def _code(name: str, names: dict[int, str]) -> int:
    return next(k for k, v in names.items() if v == name)


class Checker:
    """Every block against what the source must have produced there."""

    def __init__(self, p: Point) -> None:
        self.p = p
        self.fmt = _code(p.fmt, C.FORMAT_NAMES)
        self.instants = 0
        self.bad_blocks = 0
        self.blocks = 0
        self.last_end: int | None = None
        self.gaps = 0
        if p.source == "sine":
            self.table = np.array([int(29490 * math.sin(2 * math.pi * k / 256)) for k in range(256)], dtype=np.int64)
            self.steps = []
            for c in range(p.channels):
                f = (c + 1) * 5
                while 2 * f >= p.rate and f > 1:
                    f //= 2
                self.steps.append((f << 32) // p.rate)

    def expected(self, first: int, n: int) -> tuple[np.ndarray, int]:
        p = self.p
        if p.source == "ramp" or p.source == "ads1299":
            return ramp_counts(first, n, p.channels, self.fmt).astype(np.int64), 0
        k = first + np.arange(n, dtype=np.int64)[:, None]
        if p.source == "adc":  # the ADC model's codes: conversion j of the stream, channel c
            j = k * p.channels + np.arange(p.channels)[None, :]
            return (np.arange(p.channels)[None, :] << 9) | (j % 512), 0
        bits = 8 * C.BYTES_PER_SAMPLE[self.fmt]
        out = np.empty((n, p.channels), dtype=np.int64)
        idx = (first + np.arange(n)).astype(np.uint64)
        for c, step in enumerate(self.steps):
            phase = (idx * np.uint64(step)) & np.uint64(0xFFFFFFFF)
            out[:, c] = self.table[(phase >> np.uint64(24)).astype(np.int64)] << (bits - 16)
        # the board's table comes from single-precision math.sin: one 16-bit count either way
        return out, 1 << (bits - 16)

    def __call__(self, block: SamplesBlock) -> None:
        self.blocks += 1
        first, n = block.first_index, block.n_samples
        if self.last_end is not None and first != self.last_end:
            self.gaps += 1
        self.last_end = first + n
        want, tol = self.expected(first, n)
        got = np.asarray(block.counts, dtype=np.int64)
        if got.shape != want.shape or np.abs(got - want).max(initial=0) > tol:
            self.bad_blocks += 1
        self.instants += n


def stream(board: Any, link: Link, p: Point, seconds: float) -> dict[str, Any]:
    """Stream p for `seconds` of the chip's time after 0.5 s of settling; what it cost and lost."""
    cfg = p.config
    spf = cfg.frame_samples()
    out: dict[str, Any] = {
        "source": p.source,
        "fmt": p.fmt,
        "channels": p.channels,
        "rate": p.rate,
        "samples_per_frame": spf,
        "seconds": seconds,
    }
    if p.source == "adc":
        board.control("adc", mode="code", unit_ns=1e9 / (p.rate * p.channels), origin="first")
    try:
        link.configure(p.rate, cfg.channel_mask, cfg.source, cfg.fmt, spf)
    except PicodaqError as e:
        out.update(ok=False, why=str(e))
        return out
    check = Checker(p)
    link.receiver.block_handlers.append(check)
    base = link.receiver.stats.as_dict()
    missed0 = board.control("ads1299").get("missed", 0) if p.source == "ads1299" else 0
    try:
        link.start()
        a = board.control("time")
        while board.control("time")["ns"] - a["ns"] < 0.5e9:
            link.pump_until(lambda: False, 0.1)
        a, sa, w0 = board.control("time"), link.get_status(), time.monotonic()
        while board.control("time")["ns"] - a["ns"] < seconds * 1e9:
            link.pump_until(lambda: False, 0.2)
        z, sz, w1 = board.control("time"), link.get_status(), time.monotonic()
        missed = board.control("ads1299").get("missed", 0) - missed0 if p.source == "ads1299" else 0
        final = link.stop()
    finally:
        link.receiver.block_handlers.remove(check)
    stats = link.receiver.stats.as_dict()
    losses = {k: stats[k] - base.get(k, 0) for k in ("crc_errors", "seq_lost", "samples_lost", "decode_errors")}
    busy = z["busy"] - a["busy"]
    cycles = z["cycles"] - a["cycles"]
    frames = sz.frames_sent - sa.frames_sent
    dropped = final.samples_dropped if final is not None else -1
    out.update(
        busy_share=round(busy / cycles, 4),
        cycles_per_frame=round(busy / max(1, frames)),
        frames_per_s=round(frames / (cycles / CYCLES_PER_S), 2),
        wire_bytes_per_s=round(cfg.bytes_per_second()),
        samples_per_s=p.rate * p.channels,
        dropped=dropped,
        losses=losses,
        gaps=check.gaps,
        instants=check.instants,
        bad_blocks=check.bad_blocks,
        missed_frames=missed,
        ring_high_water=final.ring_high_water if final is not None else None,
        ring_capacity=final.ring_capacity if final is not None else None,
        free_heap=sz.free_heap,
        last_error=C.STATUS_NAMES.get(final.last_error, str(final.last_error)) if final is not None else None,
        emulated_per_wall=round((z["ns"] - a["ns"]) / 1e9 / (w1 - w0), 3),
    )
    why = []
    if dropped:
        why.append(f"{dropped:,} instants dropped by the board (its ring overflowed)")
    if losses["samples_lost"] or check.gaps:  # the board's drops show here too, as jumps in first_sample_index
        why.append(f"the host saw {losses['samples_lost']:,} instants missing in {check.gaps:,} gaps")
    if link_losses := {k: v for k, v in losses.items() if v and k != "samples_lost"}:
        why.append("lost on the link: " + ", ".join(f"{v:,} {k}" for k, v in link_losses.items()))
    if check.bad_blocks:
        why.append(f"{check.bad_blocks} blocks with wrong values")
    if missed:
        why.append(f"{missed} ADS1299 frames not read before the next")
    if out["busy_share"] >= 0.995:
        why.append("the CPU never slept (busy 100 %)")
    if check.instants < p.rate * seconds * 0.9:
        why.append(f"only {check.instants} instants arrived of ~{int(p.rate * seconds)}")
    out.update(ok=not why, why="; ".join(why))
    return out
