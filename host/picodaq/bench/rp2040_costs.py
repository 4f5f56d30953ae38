"""The cost model of the firmware's hot path on the emulated Pico.

Cycles of each part, from the probe (framing per format and frame size, each
source per instant) and the write test (busy cycles per byte): what a stream
should cost before it runs (where the capacity search starts), and, after, where
a measured busy share went (source, framing + CRC, USB writes; the rest is the
loop, IRQ entries and USB interrupts). Also the old/new framing ratio: the same
framer with the viper CRC it had, over the Thumb CRC, per format.
"""

from __future__ import annotations

from typing import Any

from .. import contracts as C
from .rp2040_stream import CYCLES_PER_S, Point


class Costs:
    """Cycles of each part of the hot path, from the probe and the write test."""

    def __init__(self, probe: list[dict[str, Any]], write: dict[str, Any], floor: float) -> None:
        self.floor = floor
        self.write = write["busy_cycles_per_byte"]
        self.sources = {
            (r["source"], r["fmt"]): r["cycles_per_instant"] / r["channels"] for r in probe if r.get("kind") == "source"
        }
        self.framing: dict[int, tuple[float, float]] = {}  # fmt -> (cycles per frame, per byte), new framing
        for fmt in (1, 2, 3):
            pts = [(r["frame_bytes"], r["cycles_new"]) for r in probe if r.get("kind") == "framing" and r["fmt"] == fmt]
            if len(pts) >= 2:
                (x0, y0), (x1, y1) = min(pts), max(pts)
                slope = (y1 - y0) / (x1 - x0)
                self.framing[fmt] = (y0 - slope * x0, slope)

    def parts(self, p: Point) -> dict[str, float]:
        """Cycles per second of each part at p (the rest of a measured total is the loop and IRQ entries)."""
        cfg = p.config
        spf = cfg.frame_samples()
        fps = p.rate / spf
        frame = cfg.frame_bytes()
        fmt = cfg.fmt
        per_sample = self.sources.get((p.source, fmt)) or self.sources.get((p.source, 1)) or 0.0
        a, b = self.framing.get(fmt, (0.0, 0.0))
        return {
            "source": p.rate * p.channels * per_sample,
            "framing": fps * (a + b * frame),
            "writing": fps * frame * self.write,
        }

    def predict(self, p: Point) -> float:
        return self.floor + sum(self.parts(p).values()) / CYCLES_PER_S


def breakdown(costs: Costs, run: dict[str, Any]) -> dict[str, float]:
    p = Point(run["source"], run["fmt"], run["channels"], run["rate"])
    parts = {k: v / CYCLES_PER_S for k, v in costs.parts(p).items()}
    parts["loop, IRQ entries, USB interrupts (the rest)"] = run["busy_share"] - sum(parts.values())
    return {k: round(v, 4) for k, v in parts.items()}


def framing_ratio(probe: list[dict[str, Any]]) -> dict[str, Any]:
    """Old (viper CRC) over new (Thumb CRC) cycles per frame, for the largest frame of each format."""
    res = {}
    for fmt in (1, 2, 3):
        rows = [r for r in probe if r.get("kind") == "framing" and r["fmt"] == fmt]
        if rows:
            r = max(rows, key=lambda r: r["frame_bytes"])
            res[C.FORMAT_NAMES[fmt]] = {
                "frame_bytes": r["frame_bytes"],
                "cycles_old": r["cycles_old"],
                "cycles_new": r["cycles_new"],
                "ratio": round(r["cycles_old"] / r["cycles_new"], 2),
            }
    return res
