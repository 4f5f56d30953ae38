"""`.csv`: one row per received instant, `t_s,sample_index,marker,ch0,...` (counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.blocks import SamplesBlock
from ..timeline import Layout, MarkerEvent
from .base import Output, close_file, flush_file, open_file, write
from .events import MarkerRows


class CsvOutput(Output):
    """One row per received instant: t_s (grid time), sample_index, marker code, then each channel's counts.

    The newest HOLD_BLOCKS blocks stay in memory before they are written, so a marker
    that reports an instant a little in the past still lands on its row; one later than
    that goes on the next row written (the .bdf and the events list keep its exact time)."""

    HOLD_BLOCKS = 8

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self._f = open_file(path, "w", newline="")
        self._markers = MarkerRows()
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
        write(self._f, "t_s,sample_index,marker," + ",".join(layout.labels) + "\n", self.path)

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
            write(self._f, (self._row_fmt * len(table)) % tuple(table.ravel().tolist()), self.path)
        del self._held[:k]

    def flush(self) -> None:
        flush_file(self._f, self.path)

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
            close_file(self._f, self.path)
