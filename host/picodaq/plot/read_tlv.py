"""A `.tlv` capture, replayed through picodaq's own pipeline (recording.pipeline) and decimated on the
fly: the Timeline places every block, gap and marker exactly as `picodaq replay` does, and a sink
output keeps only the envelope. Nothing of the capture's size is held in memory; with --to the
replay stops once it is past the window."""

from __future__ import annotations

from pathlib import Path

from ..core.blocks import SamplesBlock
from ..errors import PicodaqError
from ..recording.outputs import Output
from ..recording.pipeline import replay
from ..recording.timeline import Gap, Layout, LayoutChanged, MarkerEvent
from .envelope import Envelope
from .model import (
    COUNTS_UNIT,
    ChannelPick,
    GapSpan,
    MarkSpot,
    Picture,
    PlotError,
    Window,
    to_physical,
    window_gaps,
    window_markers,
)


class _PastTheWindow(Exception):
    """Raised by the sink to end the replay early (not a PicodaqError: nothing failed)."""


class EnvelopeSink(Output):
    """An Output that keeps the envelope of the chosen channels, and the gaps and markers."""

    def __init__(self, path: Path, window: Window, channels: ChannelPick, columns: int) -> None:
        self.path = path
        self.warnings: list[str] = []
        self.window = window
        self.channels = channels
        self.target = columns
        self.layout: Layout | None = None
        self.env: Envelope | None = None
        self.pick: list[int] = []
        self._all = True
        self.end_pos = 0  # grid position after the last instant or gap
        self.gaps: list[GapSpan] = []
        self.markers: list[MarkSpot] = []
        self._stop_at: int | None = None

    def on_layout(self, layout: Layout) -> None:
        self.layout = layout
        self.pick = self.channels.indices(layout.labels, self.path)
        self._all = self.pick == list(range(layout.n_channels))
        start, end = self.window.positions(layout.rate)
        self.env = Envelope(len(self.pick), start=start, end=end, columns=self.target)
        self._stop_at = end

    def on_samples(self, pos: int, row: int, block: SamplesBlock) -> None:
        if self._stop_at is not None and pos >= self._stop_at:
            raise _PastTheWindow
        counts = block.counts
        assert self.env is not None
        self.env.add(pos, counts if self._all else counts[:, self.pick])
        self.end_pos = pos + block.n_samples

    def on_gap(self, gap: Gap) -> None:
        rate = self.layout.rate  # type: ignore[union-attr]
        self.gaps.append(GapSpan(gap.pos / rate, (gap.pos + gap.span) / rate, gap.describe()))
        self.end_pos = gap.pos + gap.span

    def on_marker(self, marker: MarkerEvent) -> None:
        if self.layout is not None:
            self.markers.append(MarkSpot(marker.pos / self.layout.rate, marker.code))

    def written(self) -> list[Path]:
        return []


def read_tlv(path: Path, window: Window, channels: ChannelPick, columns: int) -> Picture:
    sink = EnvelopeSink(path, window, channels, columns)
    notes: list[str] = []
    stopped = False
    try:
        stats, _, _ = replay(path, [sink])
    except _PastTheWindow:
        stopped = True
        stats = None
    except LayoutChanged as e:  # a device log holding streams of several layouts: the first one is drawn
        stats = None
        notes.append(f"drawn up to where {e}")
    except PlotError:
        raise
    except PicodaqError as e:
        raise PlotError(f"{path}: {e}") from None
    lay = sink.layout
    if lay is None or sink.env is None:
        if stats is not None and not stats["frames_ok"]:
            raise PlotError(
                f"{path}: no picodaq frame in it: not a capture (`picodaq record --out NAME.tlv` writes one)"
            )
        raise PlotError(f"{path}: a capture without samples: nothing to draw")
    duration = sink.end_pos / lay.rate
    if stopped:
        duration = float("nan")  # the replay stopped past the window: how long the capture runs is not known
    else:
        window.check_start(path, duration)
    pos, lo, hi = sink.env.columns()
    scale = lay.scale
    lo, hi = to_physical(lo, hi, scale.per_count, 0.0)
    t_from = sink.env.start / lay.rate
    t_to = window.t_to if window.t_to is not None else duration
    if lay.source is None:
        notes.append("the capture holds no HELLO (it starts mid-stream): its source is unknown, values are counts")
    about = f"{lay.n_channels} channels at {lay.rate} Hz, {lay.source_name}, {lay.fmt_name}"
    return Picture(
        path=path,
        kind="tlv",
        rate=lay.rate,
        labels=[lay.labels[i] for i in sink.pick],
        unit=scale.dimension or COUNTS_UNIT,
        pos=pos,
        lo=lo,
        hi=hi,
        bucket=sink.env.bucket,
        duration_s=duration,
        t_from=t_from,
        t_to=t_to,
        gaps=window_gaps(sink.gaps, t_from, t_to),
        markers=window_markers(sink.markers, t_from, t_to),
        about=about + (f" ({lay.device})" if lay.device else ""),
        notes=notes,
    )
