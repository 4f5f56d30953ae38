"""`.npy`: int32 counts, instants x channels (received instants only), with `<stem>.events.csv`."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ...core.blocks import SamplesBlock
from ..timeline import Gap, Layout, MarkerEvent
from .base import Output, OutputError, close_file, flush_file, open_file, write
from .events import EventsFile, events_path

_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER_LEN = 128 - len(_NPY_MAGIC) - 2  # fixed, so the shape can be rewritten in place


class NpyOutput(Output):
    """int32 counts, instants x channels, in numpy's .npy format, plus `<stem>.events.csv`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self.events_path = events_path(path)
        self._f: BinaryIO = open_file(path, "w+b")
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
        write(self._f, np.ascontiguousarray(block.counts, dtype="<i4").data, self.path)
        self.rows += block.n_samples
        self.events.samples(pos, row, block.n_samples, block.first_index)

    def on_gap(self, gap: Gap) -> None:
        self.events.gap(gap)

    def on_marker(self, marker: MarkerEvent) -> None:
        self.events.marker(marker)

    def flush(self) -> None:
        self._write_header()  # the shape is kept current: a crashed recording still loads
        flush_file(self._f, self.path)
        self.events.flush()

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            self.events.finish(self.rows)
            close_file(self._f, self.path)

    def written(self) -> list[Path]:
        return [self.path, self.events_path]


def read_npy_shape(path: Path) -> tuple[int, ...]:
    """The shape recorded in a .npy header (for checks and summaries)."""
    with open(path, "rb") as f:
        f.read(len(_NPY_MAGIC))
        n = int.from_bytes(f.read(2), "little")
        return tuple(ast.literal_eval(f.read(n).decode("latin1"))["shape"])
