"""EnvelopeObserver: the live view's tap, min/max columns made on the receiver's thread.

It hangs on a Receiver's TapRegistry (`on_block(view)`, read-only BlockViews)
and on a Pipeline's gap and marker listeners (the Timeline's Gap and
MarkerEvent). For each block it does a bounded amount of work and returns:

- the block's instants are reduced to min/max columns of `bucket` instants of
  the recording's grid (plot.envelope.reduce_columns: a few numpy calls, ~50 us
  for a 4 KB frame of 63 instants x 32 channels, 1 % of a core at 16 kHz),
  merged into the column still open;
- finished columns go into a fixed ring (preallocated arrays, one writer: this
  thread; one reader: the view's publisher thread). When the ring is full the
  publisher is behind: the block is refused (`False`, counted by the tap as
  dropped) and its instants are counted in `instants_dropped`. Nothing here
  ever waits, so the recording's primary output never does either.

Where a block sits on the grid: each block continues the previous one unless a
gap came first; the Timeline reports a gap before the block it precedes, with
the grid position that block starts at (`gap.pos + gap.span`, keyed by the
block's first sample index, so the order in which a receiver delivers gaps and
blocks does not matter). An index jump no gap explained is placed by the index.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from ..plot.envelope import reduce_columns

_U32 = 1 << 32
_HALF = 1 << 31


class EnvelopeObserver:
    """Reduce every block to min/max columns of the grid; `drain()` hands them to another thread."""

    def __init__(self, rate: int, *, window_s: float = 10.0, columns: int = 1000, capacity: int = 8192) -> None:
        """rate: instants per second (the stream's configured rate); window_s: the seconds a page
        shows across `columns` columns, which sets the bucket; capacity: columns the ring holds."""
        self.rate = rate
        self.window_s = window_s
        self.bucket = max(1, round(rate * window_s / columns))
        self.capacity = capacity
        self.n_channels = 0
        self._col = np.zeros(capacity, dtype=np.int64)
        self._lo = np.zeros((capacity, 0), dtype=np.int32)  # columns x channels, made for the first block
        self._hi = np.zeros((capacity, 0), dtype=np.int32)
        self._w = 0  # columns written (the receiver's thread only)
        self._r = 0  # columns read (the publisher's thread only)
        # the column being filled
        self._open = -1
        self._open_lo = np.zeros(0, dtype=np.int32)
        self._open_hi = np.zeros(0, dtype=np.int32)
        # grid placement
        self._pos = 0  # grid position of the next expected instant
        self._expect: int | None = None  # its device sample index
        self._placed: dict[int, int] = {}  # first sample index after a gap -> its grid position
        self.events: deque[tuple[str, Any]] = deque(maxlen=100_000)  # ("gap", Gap) / ("marker", MarkerEvent)
        # counters
        self.blocks = 0
        self.instants = 0
        self.blocks_dropped = 0
        self.instants_dropped = 0
        self.columns_made = 0
        self._kept: Callable[[], int] = lambda: 1 << 62  # instants of each block to draw: all

    def follow(self, pipeline: Any) -> None:
        """Draw what a recording keeps: its last block only up to its last instant (--seconds),
        nothing after it (as the LSL outlet publishes)."""
        self._kept = lambda: pipeline.kept

    # -- the receiver's thread ------------------------------------------------------------

    def on_gap(self, gap: Any) -> None:
        """A Pipeline gap listener: the next block (gap.first_index) starts at gap.pos + gap.span."""
        if len(self._placed) > 64:
            self._placed.clear()
        self._placed[gap.first_index] = gap.pos + gap.span
        self.events.append(("gap", gap))

    def on_marker(self, marker: Any) -> None:
        """A Pipeline marker listener (MarkerEvent: pos on the grid, code)."""
        self.events.append(("marker", marker))

    def on_block(self, view: Any) -> bool:
        kept = self._kept()
        if kept < view.n_samples:  # a recording's last block, cut at its last instant
            if not kept:
                return True
            view = _Head(view, kept)
        n = view.n_samples
        first = view.first_index
        pos = self._placed.pop(first, None) if self._placed else None
        if pos is None:
            pos = self._pos
            if self._expect is not None and first != self._expect:
                jump = (first - self._expect) % _U32
                if jump < _HALF:
                    pos += jump
        self._pos = pos + n
        self._expect = (first + n) % _U32
        self.blocks += 1
        self.instants += n
        if not n:
            return True
        nch = view.n_channels
        if nch != self.n_channels:
            self._reshape(nch)
        # room for every column this block can finish, plus the open one
        if self._w - self._r + n // self.bucket + 2 > self.capacity:
            self.blocks_dropped += 1
            self.instants_dropped += n
            self._open = -1  # its instants are incomplete now: start afresh
            return False
        c0, lo, hi = reduce_columns(view.counts, pos, self.bucket)
        last = c0 + len(lo) - 1
        if self._open >= 0:
            if self._open == c0:
                np.minimum(lo[0], self._open_lo, out=lo[0])
                np.maximum(hi[0], self._open_hi, out=hi[0])
            else:
                self._put(self._open, self._open_lo, self._open_hi)  # a gap ended it early
        for k in range(len(lo) - 1):
            self._put(c0 + k, lo[k], hi[k])
        if (pos + n) % self.bucket == 0:
            self._put(last, lo[-1], hi[-1])
            self._open = -1
        else:
            self._open = last
            self._open_lo[:] = lo[-1]
            self._open_hi[:] = hi[-1]
        return True

    def _reshape(self, nch: int) -> None:
        self.n_channels = nch
        self._lo = np.zeros((self.capacity, nch), dtype=np.int32)
        self._hi = np.zeros((self.capacity, nch), dtype=np.int32)
        self._open_lo = np.zeros(nch, dtype=np.int32)
        self._open_hi = np.zeros(nch, dtype=np.int32)
        self._open = -1
        self._r = self._w  # columns of another shape: never read

    def _put(self, col: int, lo: np.ndarray, hi: np.ndarray) -> None:
        i = self._w % self.capacity
        self._col[i] = col
        self._lo[i] = lo
        self._hi[i] = hi
        self._w += 1  # published: the reader sees the column only after its data is in place
        self.columns_made += 1

    # -- the publisher's thread ---------------------------------------------------------------

    def drain(self, most: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the columns finished since the last drain: (column numbers, mins, maxs), the
        mins and maxs columns x channels (counts). Column c covers grid [c * bucket, (c + 1) * bucket)."""
        w, r = self._w, self._r
        if most is not None:
            w = min(w, r + most)
        lo, hi = self._lo, self._hi
        if w == r or lo is None or hi is None:
            return (
                np.zeros(0, dtype=np.int64),
                np.zeros((0, self.n_channels), np.int32),
                np.zeros((0, self.n_channels), np.int32),
            )
        idx = np.arange(r, w) % self.capacity
        out = self._col[idx], lo[idx], hi[idx]
        self._r = w
        return out

    def pending(self) -> int:
        return self._w - self._r

    def stats(self) -> dict[str, int]:
        return {
            "blocks": self.blocks,
            "instants": self.instants,
            "blocks_dropped": self.blocks_dropped,
            "instants_dropped": self.instants_dropped,
            "columns_made": self.columns_made,
            "bucket": self.bucket,
        }


class _Head:
    """The first n instants of a block's view (what on_block reads of it)."""

    __slots__ = ("first_index", "n_channels", "n_samples", "counts")

    def __init__(self, view: Any, n: int) -> None:
        self.first_index = view.first_index
        self.n_channels = view.n_channels
        self.n_samples = n
        self.counts = view.counts[:n]
