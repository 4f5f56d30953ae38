"""Min/max envelopes: a signal of millions of instants drawn in a few thousand columns.

A column is `bucket` consecutive positions of the recording's grid (gaps
included: `t = pos / rate`), column k covering `[start + k * bucket, start +
(k + 1) * bucket)`. Its value, per channel, is the minimum and the maximum of
the instants received in it, so a spike one instant wide still reaches its
full height when a million instants share one pixel, where every-Nth-sample
decimation would miss it. A column no instant reached stays empty (NaN when
drawn): a gap never looks like data.

`reduce_columns` is the one reduction (one pass over any chunk, columns cut where
the grid says, not where the chunk starts); the live
view (picodaq.view) runs it per block, `Envelope` over whole recordings:

- with the window's length known (a .npy, a .bdf), the bucket is chosen up
  front: the window over `columns`;
- with the length unknown until the end (a .tlv replayed, a .csv read line by
  line), the bucket starts at one instant and doubles, merging neighbouring
  columns in pairs, whenever data lands beyond twice `columns`: the result
  holds between `columns` and twice as many columns, whatever the length;
- small chunks (a replay's blocks of a few dozen instants) are gathered into
  runs of `STAGE_ROWS` before they are reduced: per-call overhead, not the
  arithmetic, is what costs for small blocks. The stage keeps the chunks'
  dtype (int32 counts stay int32: half the bytes of int64 to reduce).
"""

from __future__ import annotations

import math

import numpy as np

STAGE_ROWS = 1 << 16  # instants gathered before a reduction (per channel)
_EMPTY_LO = np.inf
_EMPTY_HI = -np.inf


def reduce_columns(counts: np.ndarray, pos: int, bucket: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Column minimum and maximum of instants x channels `counts` whose first instant sits at grid
    position pos (relative to column 0's start); returns (first column, mins, maxs), each
    columns x channels, covering every column the instants touch.

    The whole columns are one reshape to columns x bucket x channels reduced over the middle axis
    (numpy runs that ~15x faster than `reduceat` over rows of a few channels: 1 GB in ~0.5 s);
    the partial columns at either end are reduced apart."""
    n = len(counts)
    if n == 0:
        raise ValueError("no instants to reduce")
    c0 = pos // bucket
    c1 = (pos + n - 1) // bucket
    nch = counts.shape[1]
    lo = np.empty((c1 - c0 + 1, nch), dtype=counts.dtype)
    hi = np.empty_like(lo)
    head = min(n, (c0 + 1) * bucket - pos)  # instants in the first column
    lo[0] = counts[:head].min(axis=0)
    hi[0] = counts[:head].max(axis=0)
    if c1 == c0:
        return c0, lo, hi
    full = (n - head) // bucket
    if full:
        body = counts[head : head + full * bucket].reshape(full, bucket, nch)
        body.min(axis=1, out=lo[1 : 1 + full])
        body.max(axis=1, out=hi[1 : 1 + full])
    rest = head + full * bucket
    if rest < n:  # the last column, partly filled
        lo[-1] = counts[rest:].min(axis=0)
        hi[-1] = counts[rest:].max(axis=0)
    return c0, lo, hi


class Envelope:
    """The envelope of a window `[start, end)` of a recording's grid, fed in chunks in any order.

    `add(pos, counts)` takes instants x channels counts whose first instant is at grid position
    pos; instants outside the window are ignored. `columns()` returns the result."""

    def __init__(
        self,
        n_channels: int,
        *,
        start: int = 0,
        end: int | None = None,
        columns: int = 2000,
        bucket: int | None = None,
    ) -> None:
        if columns < 1:
            raise ValueError("columns must be at least 1")
        if end is not None and end <= start:
            raise ValueError(f"an empty window: [{start}, {end})")
        self.n_channels = n_channels
        self.start = start
        self.end = end
        self.target = columns
        if bucket is None:
            bucket = max(1, math.ceil((end - start) / columns)) if end is not None else 1
        self.bucket = bucket
        self._grows = end is None
        cap = 2 * columns if end is None else math.ceil((end - start) / bucket)
        self._lo = np.full((cap, n_channels), _EMPTY_LO)
        self._hi = np.full((cap, n_channels), _EMPTY_HI)
        self.n_columns = 0  # columns up to the last one holding data
        self.instants = 0  # instants taken (inside the window)
        self._stage: np.ndarray | None = None
        self._stage_pos = 0
        self._staged = 0

    # -- input --------------------------------------------------------------------

    def add(self, pos: int, counts: np.ndarray) -> None:
        n = len(counts)
        if n < STAGE_ROWS and pos >= self.start and (self.end is None or pos + n <= self.end):
            # the common case first (a replay's blocks, all inside the window): one copy, no reduction
            s = self._staged
            stage = self._stage
            if (
                s
                and stage is not None
                and pos == self._stage_pos + s
                and s + n <= STAGE_ROWS
                and counts.dtype == stage.dtype
            ):
                stage[s : s + n] = counts
                self._staged = s + n
                return
            if s:
                self.flush()
            if stage is None or stage.dtype != counts.dtype:
                stage = self._stage = np.empty((STAGE_ROWS, self.n_channels), dtype=counts.dtype)
            stage[:n] = counts
            self._stage_pos = pos
            self._staged = n
            return
        lo = max(pos, self.start)
        hi = pos + n if self.end is None else min(pos + n, self.end)
        if hi <= lo:
            return
        self.flush()
        self._reduce(lo, counts[lo - pos : hi - pos])

    def flush(self) -> None:
        """Reduce what is staged (columns() does this itself)."""
        if self._staged:
            assert self._stage is not None
            n, self._staged = self._staged, 0
            self._reduce(self._stage_pos, self._stage[:n])

    def _reduce(self, pos: int, counts: np.ndarray) -> None:
        rel = pos - self.start
        last = (rel + len(counts) - 1) // self.bucket
        while last >= len(self._lo):
            if not self._grows:  # cannot happen inside the window; a guard against rounding
                raise AssertionError(f"column {last} beyond the window's {len(self._lo)}")
            self._coarsen()
            last = (rel + len(counts) - 1) // self.bucket
        c0, mn, mx = reduce_columns(counts, rel, self.bucket)
        cols = slice(c0, c0 + len(mn))
        np.minimum(self._lo[cols], mn, out=self._lo[cols])
        np.maximum(self._hi[cols], mx, out=self._hi[cols])
        self.n_columns = max(self.n_columns, last + 1)
        self.instants += len(counts)

    def _coarsen(self) -> None:
        """Twice the bucket: neighbouring columns merged in pairs (column 2j and 2j+1 become j)."""
        half = len(self._lo) // 2
        nch = self.n_channels
        self._lo[:half] = self._lo.reshape(half, 2, nch).min(axis=1)
        self._hi[:half] = self._hi.reshape(half, 2, nch).max(axis=1)
        self._lo[half:] = _EMPTY_LO
        self._hi[half:] = _EMPTY_HI
        self.bucket *= 2
        self.n_columns = (self.n_columns + 1) // 2

    # -- output -------------------------------------------------------------------

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pos, lo, hi): each column's first grid position, and its min and max per channel
        (columns x channels, float64, NaN where no instant arrived). Up to the last column with
        data, or to the window's end when it was given."""
        self.flush()
        n = len(self._lo) if not self._grows else self.n_columns
        pos = self.start + np.arange(n, dtype=np.int64) * self.bucket
        lo = self._lo[:n].copy()
        hi = self._hi[:n].copy()
        empty = np.isinf(lo)
        lo[empty] = np.nan
        hi[empty] = np.nan
        return pos, lo, hi
