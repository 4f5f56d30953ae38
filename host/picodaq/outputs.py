"""Recording outputs, chosen by file suffix: raw link bytes (.tlv), numpy (.npy), CSV (.csv).

Every writer streams to disk as blocks arrive, so a crash or a pulled cable
loses at most what the OS had not written; `close()` finalises the file (the
.npy header is rewritten with the final shape, and kept current on every flush).
"""
from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np

from .blocks import SamplesBlock
from .errors import UsageError

SUFFIXES = (".tlv", ".npy", ".csv")
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER_LEN = 128 - len(_NPY_MAGIC) - 2  # fixed, so the shape can be rewritten in place


class Output:
    path: Path

    def on_raw(self, chunk: memoryview) -> None:
        """Link bytes as received (only raw captures use them)."""

    def on_block(self, block: SamplesBlock) -> None:
        """One SAMPLES block (sample outputs use it)."""

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class TlvOutput(Output):
    """The raw link bytes: replayable through `picodaq replay`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: BinaryIO = open(path, "wb")
        self.bytes = 0

    def on_raw(self, chunk: memoryview) -> None:
        self._f.write(chunk)
        self.bytes += len(chunk)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


class NpyOutput(Output):
    """int32 counts, instants x channels, in numpy's .npy format."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: BinaryIO = open(path, "w+b")
        self.rows = 0
        self.n_channels: int | None = None
        self._write_header()

    def _write_header(self) -> None:
        shape = (self.rows, self.n_channels or 0)
        d = "{'descr': '<i4', 'fortran_order': False, 'shape': %r, }" % (shape,)
        text = d.ljust(_NPY_HEADER_LEN - 1) + "\n"
        self._f.seek(0)
        self._f.write(_NPY_MAGIC + len(text).to_bytes(2, "little") + text.encode("latin1"))
        self._f.seek(0, os.SEEK_END)

    def on_block(self, block: SamplesBlock) -> None:
        if self.n_channels is None:
            self.n_channels = block.n_channels
        elif block.n_channels != self.n_channels:
            raise UsageError(f"{self.path}: channel count changed from {self.n_channels} to {block.n_channels}")
        self._f.write(np.ascontiguousarray(block.counts, dtype="<i4").tobytes())
        self.rows += block.n_samples

    def flush(self) -> None:
        self._write_header()
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            os.fsync(self._f.fileno())
            self._f.close()


class CsvOutput(Output):
    """One row per instant: sample index, device time in microseconds, then each channel's counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: TextIO = open(path, "w", newline="")
        self.n_channels: int | None = None

    def on_block(self, block: SamplesBlock) -> None:
        if self.n_channels is None:
            self.n_channels = block.n_channels
            cols = ",".join(f"ch{c}" for c in range(block.n_channels))
            self._f.write(f"sample_index,t_us,{cols}\n")
        idx = block.indices
        t = block.device_times_us
        rows = np.column_stack([idx.astype(np.int64), np.round(t).astype(np.int64), block.counts.astype(np.int64)])
        np.savetxt(self._f, rows, fmt="%d", delimiter=",")

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


_KINDS = {".tlv": TlvOutput, ".npy": NpyOutput, ".csv": CsvOutput}


def check_output_path(path: Path) -> None:
    """Fail with a UsageError, before anything streams, if path cannot be written."""
    if path.suffix.lower() not in _KINDS:
        raise UsageError(f"{path}: unknown output format {path.suffix or '(no suffix)'!r}; "
                         f"use one of {', '.join(_KINDS)}")
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


def open_output(path: Path) -> Output:
    check_output_path(path)
    try:
        return _KINDS[path.suffix.lower()](path)
    except OSError as e:
        raise UsageError(f"{path}: cannot write: {e.strerror or e}") from None


def read_npy_shape(path: Path) -> tuple[int, ...]:
    """The shape recorded in a .npy header (for checks and summaries)."""
    with open(path, "rb") as f:
        f.read(len(_NPY_MAGIC))
        n = int.from_bytes(f.read(2), "little")
        return tuple(ast.literal_eval(f.read(n).decode("latin1"))["shape"])
