"""A Picture drawn with matplotlib: stacked channels on one time axis, in physical units.

- each channel its own lane, its min/max envelope filled (the samples as a line when a column is
  one instant), autoscaled; empty columns leave the lane blank;
- gaps shaded across every lane, labelled with their reason on the top lane ("gap: 40 samples
  lost", "gap: board restarted (host clock)"); a gap of unknown length is a dotted line, one
  narrower than two pixels a solid grey line as well (31 ms in 17 minutes still shows);
- markers as red vertical lines across every lane, their codes on the top lane.

Artists carry ids (`envelope-ch0`, `gaps-ch0`, `markers-ch0`, ...) that the SVG keeps as group ids,
and texts stay text in the SVG, so what was drawn can be checked in the file. matplotlib's
object-oriented API only (no pyplot): no global state, no display needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .model import Picture, PlotError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SIGNAL = "#1f5fa8"
HIGHLIGHT = "#e67e00"
MARKER = "#d62728"
GAP = "#9a9a9a"
MAX_LABELS = 24  # gap and marker texts on the top lane; the rest are drawn, not labelled
FORMATS = ("png", "svg", "pdf")


def draw(pic: Picture, *, width: float = 12.0, dpi: int = 100) -> Figure:
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    n = len(pic.labels)
    lane = 0.9 if n <= 8 else 0.55
    fig = Figure(figsize=(width, 1.4 + lane * n), dpi=dpi, layout="constrained")
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    t, lo_all, hi_all = _break_at(pic, [g.start_s for g in pic.gaps if g.end_s <= g.start_s])
    pixel = (pic.t_to - pic.t_from) / (width * dpi)  # seconds per pixel, about
    known = [g for g in pic.gaps if g.end_s > g.start_s]
    unknown = [g for g in pic.gaps if g.end_s <= g.start_s]
    narrow = [g for g in known if g.end_s - g.start_s < 2 * pixel]  # shaded too, but a line shows them
    for k, ax in enumerate(axes):
        label = pic.labels[k]
        lo, hi = lo_all[:, k], hi_all[:, k]
        if pic.bucket == 1:
            ax.plot(t, lo, color=SIGNAL, lw=0.8, gid=f"signal-{label}")
        else:
            ax.fill_between(t, lo, hi, facecolor=SIGNAL, edgecolor=SIGNAL, lw=0.5, gid=f"envelope-{label}")
        xaxis = ax.get_xaxis_transform()  # x in seconds, y from the lane's bottom (0) to its top (1)
        if known:
            boxes = [[(g.start_s, 0), (g.end_s, 0), (g.end_s, 1), (g.start_s, 1)] for g in known]
            ax.add_collection(
                PolyCollection(
                    boxes,
                    transform=xaxis,
                    facecolor=GAP,
                    alpha=0.35,
                    edgecolor="none",
                    hatch="//",
                    gid=f"gaps-{label}",
                ),
                autolim=False,
            )
        if narrow:
            ax.vlines(
                [g.start_s for g in narrow], 0, 1, transform=xaxis, colors=GAP, lw=1.2, gid=f"gaps-narrow-{label}"
            )
        if unknown:
            ax.vlines(
                [g.start_s for g in unknown],
                0,
                1,
                transform=xaxis,
                colors=GAP,
                linestyles=":",
                lw=1.5,
                gid=f"gaps-unknown-{label}",
            )
        if pic.markers:
            ax.vlines(
                [m.t_s for m in pic.markers], 0, 1, transform=xaxis, colors=MARKER, lw=0.9, gid=f"markers-{label}"
            )
        if pic.highlight is not None:
            ax.axvline(pic.highlight[0], color=HIGHLIGHT, lw=1.4, ls="--", gid=f"highlight-{label}")
        ax.set_ylabel(f"{label}\n{pic.unit}", rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(x=0, y=0.08)
        ax.grid(True, axis="x", lw=0.3, alpha=0.5)
    ax0 = axes[0]
    ax0.set_xlim(pic.t_from, pic.t_to)
    top = ax0.get_xaxis_transform()
    for i, g in enumerate(pic.gaps[:MAX_LABELS]):
        ax0.text(g.start_s, 1.02, g.label, transform=top, fontsize=7, color="#555555", gid=f"gap-label-{i}")
    for i, m in enumerate(pic.markers[:MAX_LABELS]):  # inside the top lane, clear of the gap labels above it
        ax0.text(
            m.t_s,
            0.97,
            f" {m.code}",
            transform=top,
            fontsize=7,
            color=MARKER,
            va="top",
            gid=f"marker-label-{i}",
        )
    if pic.highlight is not None:
        t_h, what = pic.highlight
        ax0.text(t_h, 0.03, f" {what}", transform=top, fontsize=7, color=HIGHLIGHT, gid="highlight-label")
    axes[-1].set_xlabel("time (s) on the recording's grid", fontsize=8)
    more = []
    if len(pic.gaps) > MAX_LABELS or len(pic.markers) > MAX_LABELS:
        more.append(f"{len(pic.gaps)} gaps and {len(pic.markers)} markers, the first {MAX_LABELS} of each labelled")
    fig.suptitle(
        f"{pic.path.name}: {pic.about}\n{caption(pic)}" + ("".join(f"\n{m}" for m in more + pic.notes)),
        fontsize=9,
    )
    return fig


def _break_at(pic: Picture, times: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns with a NaN row at each time: the line breaks where a stream restarted after a gap of
    unknown length (no empty column marks it: the two streams touch on the grid)."""
    t, lo, hi = pic.t, pic.lo, pic.hi
    if not times:
        return t, lo, hi
    at = np.searchsorted(t, times)
    nan = np.full(len(times), np.nan)
    return (
        np.insert(t, at, times),
        np.insert(lo, at, nan[:, None], axis=0),
        np.insert(hi, at, nan[:, None], axis=0),
    )


def caption(pic: Picture) -> str:
    per = "the samples" if pic.bucket == 1 else f"min/max of {pic.bucket:,} instants per column"
    of = f"of {pic.duration_s:.3f} s" if pic.duration_s == pic.duration_s else "of a longer recording"
    return (
        f"{pic.t_from:.3f} to {pic.t_to:.3f} s {of}; {len(pic.pos):,} columns, {per}; "
        f"{len(pic.gaps)} gaps, {len(pic.markers)} markers"
    )


def out_format(out: Path) -> str:
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise PlotError(f"{out}: draws into {', '.join('.' + f for f in FORMATS)} (by the suffix)")
    return fmt


def save(pic: Picture, out: Path, *, width: float = 12.0, dpi: int = 100) -> Figure:
    """Draw pic into out (.png, .svg or .pdf, by suffix); returns the figure."""
    import matplotlib

    fmt = out_format(out)
    # SVG: texts as text (searchable, checkable), and the same bytes for the same picture
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "picodaq", "path.simplify": True}):
        fig = draw(pic, width=width, dpi=dpi)
        try:
            fig.savefig(out, format=fmt, metadata=_metadata(fmt))
        except OSError as e:
            raise PlotError(f"{out}: cannot write: {e.strerror or e}") from None
    return fig


def _metadata(fmt: str) -> dict[str, str | None]:
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return {}


def finite_range(pic: Picture) -> tuple[float, float]:
    """The smallest and largest value drawn (NaN-free), for summaries."""
    lo = np.nanmin(pic.lo) if np.isfinite(pic.lo).any() else float("nan")
    hi = np.nanmax(pic.hi) if np.isfinite(pic.hi).any() else float("nan")
    return float(lo), float(hi)
