"""One model for every recording format: what `picodaq plot` draws.

A reader (read_tlv, read_npy, read_bdf, read_csv) turns a file into a `Picture`:
the chosen channels' min/max envelope over the chosen window, in physical
units, with the recording's gaps and markers in seconds on its grid (t = pos /
rate, gaps included: the time every picodaq format shares). Everything is
plain data, so tests check what will be drawn without looking at pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError

# the axis word for plain counts (the synthetic sources: their BDF dimension is blank, see units.COUNTS)
COUNTS_UNIT = "count"


class PlotError(UsageError):
    """The file cannot be plotted as asked: missing, not a recording, a window outside it."""


@dataclass(frozen=True)
class GapSpan:
    """A stretch of the grid with no data: start_s == end_s when its length is unknown."""

    start_s: float
    end_s: float
    label: str  # as the BDF annotates it: "gap: 40 samples lost", "gap: board restarted (host clock)"


@dataclass(frozen=True)
class MarkSpot:
    t_s: float
    code: int


@dataclass(frozen=True)
class Window:
    """The part of a recording to draw, in seconds on its grid (None: from the start / to the end)."""

    t_from: float | None = None
    t_to: float | None = None

    def __post_init__(self) -> None:
        for name, v in (("--from", self.t_from), ("--to", self.t_to)):
            if v is not None and (not math.isfinite(v) or v < 0):
                raise PlotError(f"{name} {v:g}: must be a time in seconds from the recording's start (0 or more)")
        if self.t_from is not None and self.t_to is not None and self.t_to <= self.t_from:
            raise PlotError(f"--to {self.t_to:g} s is not after --from {self.t_from:g} s")

    def positions(self, rate: float) -> tuple[int, int | None]:
        """[start, end) on the grid of a recording at rate."""
        start = math.floor(self.t_from * rate) if self.t_from is not None else 0
        end = math.ceil(self.t_to * rate) if self.t_to is not None else None
        return start, end

    def check_start(self, path: Path, duration_s: float) -> None:
        """--from at or beyond the recording's end: one clear line."""
        if self.t_from is not None and self.t_from >= duration_s:
            raise PlotError(f"--from {self.t_from:g} s: {path} ends at {duration_s:.3f} s")


@dataclass
class Picture:
    path: Path
    kind: str  # "tlv", "bdf", "npy", "csv"
    rate: float
    labels: list[str]  # the channels drawn, top to bottom
    unit: str
    # the envelope: column start positions on the grid, and min / max per channel in physical units
    pos: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    bucket: int  # instants per column (1: the samples themselves)
    duration_s: float  # the whole recording's length on its grid (NaN: not read to its end)
    t_from: float  # the window drawn
    t_to: float
    gaps: list[GapSpan] = field(default_factory=list)  # those that touch the window
    markers: list[MarkSpot] = field(default_factory=list)  # those inside the window
    about: str = ""  # "8 channels at 1000 Hz, ramp, int16"
    notes: list[str] = field(default_factory=list)
    highlight: tuple[float, str] | None = None  # an instant to point at: (seconds, what it is)

    @property
    def t(self) -> np.ndarray:
        """Each column's time: its middle, in seconds."""
        return (self.pos + (self.bucket - 1) / 2) / self.rate


class ChannelPick:
    """--channels: board channel numbers and ranges ("0,2,4-7"), or labels ("ch3"); None: every channel."""

    def __init__(self, spec: str | None) -> None:
        self.spec = spec
        self.wanted: list[str] | None = None
        if spec is None:
            return
        wanted: list[str] = []
        for part in spec.split(","):
            part = part.strip()
            lo, dash, hi = part.partition("-")
            try:
                if dash:
                    a, b = int(lo), int(hi)
                    if a > b:
                        raise PlotError(f"--channels {spec}: a range goes from low to high ({part!r})")
                    wanted += [f"ch{c}" for c in range(a, b + 1)]
                else:
                    wanted.append(f"ch{int(part)}")
            except ValueError:
                if not part or dash:
                    raise PlotError(f"--channels {spec}: not a channel list such as 0,2,4-7") from None
                wanted.append(part)  # a label as the recording names it
        self.wanted = wanted

    def indices(self, labels: list[str], path: Path) -> list[int]:
        """The positions, in labels, of the channels asked for (in the order asked)."""
        if self.wanted is None:
            return list(range(len(labels)))
        missing = [w for w in self.wanted if w not in labels]
        if missing:
            raise PlotError(f"--channels {self.spec}: {path} has no {', '.join(missing)} (it holds {_span(labels)})")
        return [labels.index(w) for w in self.wanted]


def _span(labels: list[str]) -> str:
    if len(labels) > 4:
        return f"{labels[0]}, {labels[1]}, ... {labels[-1]}"
    return ", ".join(labels)


def to_physical(
    lo: np.ndarray, hi: np.ndarray, gain: np.ndarray | float, offset: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Counts to physical units per channel (physical = counts * gain + offset); a negative gain swaps
    min and max."""
    a = lo * gain + offset
    b = hi * gain + offset
    return np.fmin(a, b), np.fmax(a, b)


def window_gaps(gaps: list[GapSpan], t_from: float, t_to: float) -> list[GapSpan]:
    return [g for g in gaps if g.end_s >= t_from and g.start_s <= t_to]


def window_markers(markers: list[MarkSpot], t_from: float, t_to: float) -> list[MarkSpot]:
    return [m for m in markers if t_from <= m.t_s <= t_to]
