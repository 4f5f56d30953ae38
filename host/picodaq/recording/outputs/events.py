"""`<stem>.events.csv` beside a `.npy`: segments, gaps and markers with the row each applies to;
and the marker placement the `.csv` output shares with it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..timeline import LOST, UNKNOWN, Gap, Layout, MarkerEvent
from .base import OutputError


class MarkerRows:
    """Markers waiting for the row of their instant: the row holding their grid position, or the
    first row after it when that instant never arrived (it fell in a gap).

    The MARK command marks the next instant, so its MARKER comes before that instant's
    block; a marker input may report an instant already received: `runs` (one entry per
    stretch without a gap) lets such a late marker find its row all the same."""

    def __init__(self) -> None:
        self.waiting: list[MarkerEvent] = []
        self.runs: list[list[int]] = []  # [pos, row, n] of each contiguous stretch received
        self.end = 0  # grid position after the last instant received

    def add(self, m: MarkerEvent) -> int | None:
        """The marker's row if its instant is already placed, else None (it waits)."""
        if m.pos < self.end:
            return self._row_of(m.pos)
        self.waiting.append(m)
        return None

    def _row_of(self, pos: int) -> int:
        for p0, r0, n in reversed(self.runs):
            if pos >= p0:
                return r0 + min(pos - p0, n)  # in a gap: the row after it
        return 0

    def resolve(self, pos: int, row: int, n: int) -> list[tuple[int, MarkerEvent]]:
        """Place rows [row, row + n), whose first instant sits at grid pos; the markers they settle."""
        last = self.runs[-1] if self.runs else None
        if last is not None and last[0] + last[2] == pos and last[1] + last[2] == row:
            last[2] += n
        else:
            self.runs.append([pos, row, n])
        self.end = pos + n
        if not self.waiting:
            return []
        done, keep = [], []
        for m in self.waiting:
            if m.pos < pos + n:
                done.append((row + max(0, m.pos - pos), m))
            else:
                keep.append(m)
        self.waiting = keep
        return done


class EventsFile:
    """`<stem>.events.csv`: segments, gaps and markers, with the sample-output row each applies to."""

    HEADER = ("kind", "row", "t_s", "sample_index", "code", "duration_s", "detail")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[tuple] = []
        self.rate = 1
        self._markers = MarkerRows()
        self._dirty = True
        self.flush()

    def layout(self, layout: Layout) -> None:
        self.rate = layout.rate
        self.rows.append(
            (
                "segment",
                0,
                0.0,
                None,
                "",
                "",
                f"{layout.n_channels} channels at {layout.rate} Hz, {layout.source_name}, {layout.fmt_name}",
            )
        )
        note = layout.clock_note()
        if note is not None:  # several boards: where this one's sample 0 is on the shared host clock
            self.rows.append(
                (
                    "clock",
                    0,
                    0.0,
                    None,
                    "",
                    "",
                    f"{note}; run start {layout.clock_origin:.6f} (host epoch s); sample 0 at {layout.start_time:.6f}",
                )
            )
        self._dirty = True

    def gap(self, gap: Gap) -> None:
        duration = "" if gap.timing == UNKNOWN else _t(gap.span / self.rate)
        self.rows.append(
            (
                "gap",
                gap.row,
                _t(gap.pos / self.rate),
                gap.first_index,
                "",
                duration,
                f"{gap.reason}; timing: {gap.timing}",
            )
        )
        if gap.reason != LOST:
            self.rows.append(
                (
                    "segment",
                    gap.row,
                    _t((gap.pos + gap.span) / self.rate),
                    gap.first_index,
                    "",
                    "",
                    "a new stream starts",
                )
            )
        self._dirty = True

    def marker(self, m: MarkerEvent) -> None:
        row = self._markers.add(m)
        if row is not None:
            self._marker_row(row, m)

    def _marker_row(self, row: int, m: MarkerEvent, detail: str = "") -> None:
        self.rows.append(("marker", row, _t(m.pos / self.rate), m.sample_index, m.code, "", detail))
        self._dirty = True

    def samples(self, pos: int, row: int, n: int, first_index: int) -> None:
        if self.rows and self.rows[0][3] is None:  # the first segment's index, once known
            self.rows[0] = self.rows[0][:3] + (first_index,) + self.rows[0][4:]
        for r, m in self._markers.resolve(pos, row, n):
            self._marker_row(r, m)

    def finish(self, total_rows: int) -> None:
        for m in self._markers.waiting:  # after the last sample: row = the row count
            self._marker_row(total_rows, m, "after the last sample")
        self._markers.waiting = []
        self._dirty = True
        self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.HEADER)
        order = {"gap": 0, "segment": 1, "clock": 2, "marker": 3}
        for row in sorted(self.rows, key=lambda r: (r[1], float(r[2]), order[r[0]])):
            w.writerow(["" if v is None else v for v in row])
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(buf.getvalue())
            tmp.replace(self.path)  # readers never see a half-written list
        except OSError as e:
            tmp.unlink(missing_ok=True)  # a full disk leaves no stray .tmp; the last complete list stays
            raise OutputError(f"{self.path}: cannot write: {e.strerror or e}", self.path) from None
        self._dirty = False


def _t(seconds: float) -> float:
    return round(seconds, 9)


def events_path(path: Path) -> Path:
    return path.with_name(path.stem + ".events.csv")
