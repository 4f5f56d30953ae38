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

from collections.abc import Callable
from pathlib import Path

from ...errors import PicodaqError, UsageError
from .base import Output, OutputError, OutputsFailed, check_writable
from .bdf import BdfOutput
from .csv import CsvOutput
from .events import events_path
from .npy import NpyOutput, read_npy_shape
from .tlv import TlvOutput

__all__ = [
    "SUFFIXES",
    "Output",
    "OutputError",
    "OutputsFailed",
    "BdfOutput",
    "CsvOutput",
    "NpyOutput",
    "TlvOutput",
    "check_outputs",
    "check_output_path",
    "check_writable",
    "events_path",
    "open_output",
    "open_outputs",
    "planned_files",
    "read_npy_shape",
]

SUFFIXES = (".tlv", ".bdf", ".npy", ".csv")
_KINDS: dict[str, Callable[[Path], Output]] = {
    ".tlv": TlvOutput,
    ".bdf": BdfOutput,
    ".npy": NpyOutput,
    ".csv": CsvOutput,
}


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


def check_outputs(
    paths: list[Path],
    protect: tuple[Path, ...] | list[Path] = (),
    stats: Path | None = None,
    overwrite: bool = False,
) -> None:
    """Every path writable, no two outputs writing the same file, none overwriting a protected one,
    and none replacing a file that exists unless overwrite (a repeated command line must not
    destroy yesterday's recording).

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
    if not overwrite:
        there = [str(f) for p in paths for f in planned_files(p) if f.exists()]
        if there:
            they = "exists" if len(there) == 1 else "exist"
            raise UsageError(f"{', '.join(there)}: already {they}; give --overwrite to replace")


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
