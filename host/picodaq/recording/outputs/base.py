"""What every recording output is: the Output interface, its error, and file I/O that
reports a failure (a full disk, a removed folder) as an OutputError naming the file."""

from __future__ import annotations

import os
from pathlib import Path

from ...core.blocks import SamplesBlock
from ...errors import PicodaqError, UsageError
from ..timeline import Gap, Layout, MarkerEvent


class OutputError(PicodaqError):
    """An output could not be written (disk full, removed folder, a format limit)."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path

    @property
    def reason(self) -> str:
        """The message without the path it starts with."""
        text = str(self)
        prefix = f"{self.path}: "
        return text[len(prefix) :] if self.path is not None and text.startswith(prefix) else text


class OutputsFailed(PicodaqError):
    """Outputs that failed on the way (the others were finished): each named, with what it holds."""

    def __init__(self, failed: list[dict]):
        self.failed = failed
        super().__init__("; ".join(f"{f['path']}: {f['error']} ({f['holds']})" for f in failed))


class Output:
    """The interface every output implements; each method is optional."""

    path: Path
    wants_raw = False  # only raw captures see the link bytes
    warnings: list[str]

    def on_raw(self, chunk: memoryview) -> None:
        """Link bytes as received."""

    def cut(self, seq: int, first_index: int, instants: int) -> None:
        """A raw capture ends with the SAMPLES frame of this seq and first index, holding only its
        first `instants` instants: the recording's last (a limited recording's end)."""

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


# -- file I/O that reports failures as OutputError --------------------------------


def open_file(path: Path, mode: str, **kw):
    try:
        return open(path, mode, **kw)
    except OSError as e:
        raise UsageError(f"{path}: cannot write: {e.strerror or e}") from None


def write(f, data, path: Path) -> None:
    try:
        f.write(data)
    except OSError as e:
        raise OutputError(f"{path}: write failed: {e.strerror or e}", path) from None


def flush_file(f, path: Path) -> None:
    if f.closed:
        return
    try:
        f.flush()
    except OSError as e:
        raise OutputError(f"{path}: write failed: {e.strerror or e}", path) from None


def close_file(f, path: Path) -> None:
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
