"""Recording outputs, chosen by file suffix.

| suffix | what it holds |
|---|---|
| `.tlv` | the raw link bytes, exactly as received: `picodaq replay` runs them through the same pipeline again |
| `.bdf` | BDF+ (bdf.py): physical units, gaps filled and annotated, markers annotated |
| `.npy` | int32 counts, instants x channels, received instants only; beside it `<stem>.events.csv` |
| `.csv` | one row per received instant: `t_s,sample_index,marker,ch0,...` (counts) |

How gaps and markers appear where the format has no place for them:

- `.npy` holds only the instants that arrived, so a gap is invisible in the
  array itself. `<stem>.events.csv` lists, with the .npy row they apply to:
  every stream start (`segment`), every gap (`gap`: its start time, length and
  reason) and every marker (`marker`: code and time). The time of any row is
  its segment's t_s plus (row - segment row) / rate, with the rows of lost
  samples skipped, which is exactly what the `gap` rows say.
- `.csv` rows carry `t_s`, the time on the recording's grid (gaps included, the
  same clock as the BDF), so a gap is a jump in t_s larger than one period;
  `sample_index` is the device's index (it restarts at 0 with a new stream);
  `marker` holds the code of a marker at that instant (empty otherwise; codes joined
  by `;` when several mark the same instant).

Every writer streams to disk as blocks arrive and copies what it keeps, so it
never holds on to a receiver's buffer; `close()` finalises the file.
"""

from __future__ import annotations

import ast
import csv
import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ...core.blocks import SamplesBlock
from ...errors import PicodaqError, UsageError
from ..timeline import LOST, UNKNOWN, Gap, Layout, MarkerEvent

SUFFIXES = (".tlv", ".bdf", ".npy", ".csv")
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER_LEN = 128 - len(_NPY_MAGIC) - 2  # fixed, so the shape can be rewritten in place


class OutputError(PicodaqError):
    """An output could not be written (disk full, removed folder, a format limit)."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


class Output:
    """The interface every output implements; each method is optional."""

    path: Path
    wants_raw = False  # only raw captures see the link bytes
    warnings: list[str]

    def on_raw(self, chunk: memoryview) -> None:
        """Link bytes as received."""

    def on_layout(self, layout: Layout) -> None:
        """What the recording holds; before any samples."""

    def on_samples(self, pos: int, row: int, block: SamplesBlock) -> None:
        """One SAMPLES block placed on the grid (pos) and among received rows (row)."""

    def on_gap(self, gap: Gap) -> None:
        pass

    def on_marker(self, marker: MarkerEvent) -> None:
        pass

    def on_end(self, end_time: float | None) -> None:
        """The recording is over; end_time (epoch s) when the recorder knows it."""

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def written(self) -> list[Path]:
        """Every file this output writes."""
        return [self.path]


class TlvOutput(Output):
    """The raw link bytes: replayable through `picodaq replay`."""

    wants_raw = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self._f: BinaryIO = _open(path, "wb")
        self.bytes = 0

    def on_raw(self, chunk: memoryview) -> None:
        _write(self._f, chunk, self.path)
        self.bytes += len(chunk)

    def flush(self) -> None:
        _flush(self._f, self.path)

    def close(self) -> None:
        _close(self._f, self.path)


class _MarkerRows:
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
        self._markers = _MarkerRows()
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


class NpyOutput(Output):
    """int32 counts, instants x channels, in numpy's .npy format, plus `<stem>.events.csv`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self.events_path = events_path(path)
        self._f: BinaryIO = _open(path, "w+b")
        self.rows = 0
        self.n_channels = 0
        self._write_header()
        self.events = EventsFile(self.events_path)

    def _write_header(self) -> None:
        shape = (self.rows, self.n_channels)
        d = "{'descr': '<i4', 'fortran_order': False, 'shape': " + repr(shape) + ", }"
        text = d.ljust(_NPY_HEADER_LEN - 1) + "\n"
        try:
            self._f.seek(0)
            self._f.write(_NPY_MAGIC + len(text).to_bytes(2, "little") + text.encode("latin1"))
            self._f.seek(0, os.SEEK_END)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write: {e.strerror or e}", self.path) from None

    def on_layout(self, layout: Layout) -> None:
        self.n_channels = layout.n_channels
        self.events.layout(layout)

    def on_samples(self, pos: int, row: int, block: SamplesBlock) -> None:
        _write(self._f, np.ascontiguousarray(block.counts, dtype="<i4").data, self.path)
        self.rows += block.n_samples
        self.events.samples(pos, row, block.n_samples, block.first_index)

    def on_gap(self, gap: Gap) -> None:
        self.events.gap(gap)

    def on_marker(self, marker: MarkerEvent) -> None:
        self.events.marker(marker)

    def flush(self) -> None:
        self._write_header()  # the shape is kept current: a crashed recording still loads
        _flush(self._f, self.path)
        self.events.flush()

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            self.events.finish(self.rows)
            _close(self._f, self.path)

    def written(self) -> list[Path]:
        return [self.path, self.events_path]


class CsvOutput(Output):
    """One row per received instant: t_s (grid time), sample_index, marker code, then each channel's counts.

    The newest HOLD_BLOCKS blocks stay in memory before they are written, so a marker
    that reports an instant a little in the past still lands on its row; one later than
    that goes on the next row written (the .bdf and the events list keep its exact time)."""

    HOLD_BLOCKS = 8

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self._f = _open(path, "w", newline="")
        self._markers = _MarkerRows()
        self._held: list[tuple[int, int, np.ndarray]] = []  # (pos, row, table) not yet written
        self.rate = 1
        self._row_fmt = ""
        self._decimals = 6
        self.late_markers = 0

    def on_layout(self, layout: Layout) -> None:
        self.rate = layout.rate
        # enough decimals that consecutive instants never print alike
        self._decimals = max(3, len(str(layout.rate)) + 1)
        self._row_fmt = "%s,%d,%s" + ",%d" * layout.n_channels + "\n"
        _write(self._f, "t_s,sample_index,marker," + ",".join(layout.labels) + "\n", self.path)

    def on_samples(self, pos: int, row: int, block: SamplesBlock) -> None:
        n, nch = block.n_samples, block.n_channels
        table = np.empty((n, 3 + nch), dtype=object)
        table[:, 0] = np.char.mod(f"%.{self._decimals}f", (pos + np.arange(n)) / self.rate)
        table[:, 1] = block.indices.astype(np.int64)
        table[:, 2] = ""
        table[:, 3:] = block.counts  # a copy: the block's buffer may be reused after this call
        self._held.append((pos, row, table))
        for r, m in self._markers.resolve(pos, row, n):
            self._mark(r, m)
        if len(self._held) > self.HOLD_BLOCKS:
            self._write_held(len(self._held) - self.HOLD_BLOCKS)

    def on_marker(self, marker: MarkerEvent) -> None:
        r = self._markers.add(marker)
        if r is not None:
            self._mark(r, marker)

    def _mark(self, r: int, m: MarkerEvent) -> None:
        for _, row, table in self._held:
            if row <= r < row + len(table):
                cell = table[r - row, 2]
                table[r - row, 2] = f"{cell};{m.code}" if cell != "" else str(m.code)
                return
        if self._held:  # its row is already on disk: the next one written carries it
            self.late_markers += 1
            _, _, table = self._held[0]
            cell = table[0, 2]
            table[0, 2] = f"{cell};{m.code}" if cell != "" else str(m.code)
        else:
            self._markers.waiting.append(m)

    def _write_held(self, k: int) -> None:
        for _, _, table in self._held[:k]:
            _write(self._f, (self._row_fmt * len(table)) % tuple(table.ravel().tolist()), self.path)
        del self._held[:k]

    def flush(self) -> None:
        _flush(self._f, self.path)

    def close(self) -> None:
        if self._f.closed:
            return
        try:
            self._write_held(len(self._held))
        finally:
            if self._markers.waiting:
                self.warnings.append(
                    f"{self.path}: {len(self._markers.waiting)} marker(s) after the last sample "
                    "have no row (the events list and .bdf have them)"
                )
            if self.late_markers:
                self.warnings.append(
                    f"{self.path}: {self.late_markers} marker(s) arrived after their row was "
                    "written and sit on the next row"
                )
            _close(self._f, self.path)


def _bdf(path: Path) -> Output:
    from .bdf import BdfOutput

    return BdfOutput(path)


_KINDS = {".tlv": TlvOutput, ".bdf": _bdf, ".npy": NpyOutput, ".csv": CsvOutput}


def events_path(path: Path) -> Path:
    return path.with_name(path.stem + ".events.csv")


def planned_files(path: Path) -> list[Path]:
    """The files an output at path will write (the .npy brings its events list)."""
    return [path, events_path(path)] if path.suffix.lower() == ".npy" else [path]


def check_output_path(path: Path) -> None:
    """Fail with a UsageError, before anything streams, if path cannot be written."""
    if path.suffix.lower() not in _KINDS:
        raise UsageError(
            f"{path}: unknown output format {path.suffix or '(no suffix)'!r}; use one of {', '.join(_KINDS)}"
        )
    for p in planned_files(path):
        check_writable(p)


def check_writable(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"{path}: is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"{path}: folder {parent} does not exist")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise UsageError(f"{path}: not writable ({e.strerror or e})") from None
    if not existed:
        path.unlink()


def check_outputs(paths: list[Path], protect: tuple[Path, ...] | list[Path] = (), stats: Path | None = None) -> None:
    """Every path writable, no two outputs writing the same file, none overwriting a protected one.

    stats: the --stats-json file, written at the end: it must not replace a recording or the capture."""
    for p in paths:
        check_output_path(p)
    named = [(f"--out {p}", planned_files(p)) for p in paths]
    if stats is not None:
        check_writable(stats)
        named.append((f"--stats-json {stats}", [stats]))
    guarded = {p.resolve() for p in protect}
    seen: dict[Path, str] = {}
    for flag, files in named:
        for f in files:
            key = f.resolve()
            if key in guarded:
                raise UsageError(f"{f}: would overwrite the capture being replayed")
            if key in seen:
                raise UsageError(f"{f}: written twice (by {seen[key]} and {flag})")
            seen[key] = flag


def open_output(path: Path) -> Output:
    check_output_path(path)
    try:
        return _KINDS[path.suffix.lower()](path)
    except OSError as e:
        raise UsageError(f"{path}: cannot write: {e.strerror or e}") from None


def open_outputs(paths: list[Path]) -> list[Output]:
    """All or nothing: if one cannot be opened, the ones already open are closed."""
    outs: list[Output] = []
    try:
        for p in paths:
            outs.append(open_output(p))
    except BaseException:
        for o in outs:
            try:
                o.close()
            except PicodaqError:
                pass
        raise
    return outs


def read_npy_shape(path: Path) -> tuple[int, ...]:
    """The shape recorded in a .npy header (for checks and summaries)."""
    with open(path, "rb") as f:
        f.read(len(_NPY_MAGIC))
        n = int.from_bytes(f.read(2), "little")
        return tuple(ast.literal_eval(f.read(n).decode("latin1"))["shape"])


# -- file I/O that reports failures as OutputError --------------------------------


def _open(path: Path, mode: str, **kw):
    try:
        return open(path, mode, **kw)
    except OSError as e:
        raise UsageError(f"{path}: cannot write: {e.strerror or e}") from None


def _write(f, data, path: Path) -> None:
    try:
        f.write(data)
    except OSError as e:
        raise OutputError(f"{path}: write failed: {e.strerror or e}", path) from None


def _flush(f, path: Path) -> None:
    if f.closed:
        return
    try:
        f.flush()
    except OSError as e:
        raise OutputError(f"{path}: write failed: {e.strerror or e}", path) from None


def _close(f, path: Path) -> None:
    if f.closed:
        return
    try:
        f.flush()
        os.fsync(f.fileno())
    except OSError as e:
        raise OutputError(f"{path}: write failed: {e.strerror or e}", path) from None
    finally:
        try:
            f.close()
        except OSError:
            pass
