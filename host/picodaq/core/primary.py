"""Primary outputs: the one consumer that receives ownership of each SAMPLES block.

The receiver offers every block to its primary output with `offer(block)`.
Returning True takes ownership: the output must `release()` the block when
done with it. Returning False refuses it: the receiver counts the block as
dropped (`blocks_dropped`) and releases it, so nothing is lost silently.

`BlockQueue` is the usual primary: a bounded queue between the receiver's
thread and the user's, read with the polling APIs:

- `poll_into(out, max)` copies instants into the caller's reusable int32
  array (rows x channels) and returns how many; each call returns one
  contiguous run of sample indices (it stops at a gap), `first_index` says
  where it starts, and an optional `indices` array gets every row's index;
- `poll_each(max, fn)` lends up to max blocks to fn, releasing each after;
- `get(timeout)` hands over one block (the caller releases it);
- `poll()` returns detached copies in a list: a convenience that allocates.

When the queue is full a new block is refused (counted in `dropped`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..errors import UsageError
from .blocks import MAX_SAMPLE_VALUES, SamplesBlock

_U32 = 0xFFFFFFFF
_ARANGE = np.arange(MAX_SAMPLE_VALUES, dtype=np.int64)


class PrimaryOutput(Protocol):
    def offer(self, block: SamplesBlock) -> bool:
        """Take ownership of block (True), or refuse it (False: counted as dropped)."""


class CallbackOutput:
    """A primary output that calls fn(block) synchronously and then releases the block."""

    def __init__(self, fn: Callable[[SamplesBlock], object]) -> None:
        self.fn = fn
        self.blocks = 0

    def offer(self, block: SamplesBlock) -> bool:
        try:
            self.fn(block)
        finally:
            block.release()
        self.blocks += 1
        return True


class BlockQueue:
    def __init__(self, maxlen: int = 256) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self.maxlen = maxlen
        self._q: deque[SamplesBlock] = deque()
        self._offset = 0  # rows of the head block already copied out by poll_into
        self._event = threading.Event()
        self._waiting = False
        # counters: refused blocks (the producer's), blocks that left the queue (the consumer's,
        # added once per poll call); accepted is derived, so offer() counts nothing per block
        self.dropped = 0
        self.delivered = 0
        self.high_water = 0
        self.first_index = 0  # sample index of the first row of the last poll_into
        self._closed = False

    def __len__(self) -> int:
        return len(self._q)

    # -- producer (the receiver) -------------------------------------------------

    @property
    def accepted(self) -> int:
        return self.delivered + len(self._q)

    @property
    def offered(self) -> int:
        return self.accepted + self.dropped

    def offer(self, block: SamplesBlock) -> bool:
        q = self._q
        if len(q) >= self.maxlen or self._closed:
            self.dropped += 1
            return False
        q.append(block)
        if len(q) > self.high_water:
            self.high_water = len(q)
        if self._waiting:
            self._event.set()
        return True

    # -- consumer ------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a block is queued; False on timeout."""
        if self._q:
            return True
        self._event.clear()
        self._waiting = True
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._q:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._event.wait(left)
                self._event.clear()
            return True
        finally:
            self._waiting = False

    def _finish_head(self) -> None:
        b = self._q.popleft()
        self._offset = 0
        b.release()

    def _check_whole(self) -> None:
        if self._offset:
            raise UsageError("the first queued block is partly read by poll_into: finish it with poll_into")

    def poll_into(self, out: np.ndarray, max: int | None = None, indices: np.ndarray | None = None) -> int:
        """Copy up to max instants (rows) into out[:n]; returns n (0 when nothing is queued).

        out is a reusable (rows, channels) array, int32 or any type the counts
        cast to; indices, if given, gets each row's sample index. One call
        returns one contiguous run: it stops before a gap in sample indices or
        a change of channel count. `first_index` is the index of out[0].
        """
        if out.ndim != 2:
            raise UsageError(f"poll_into needs a 2-D (rows, channels) array, got shape {out.shape}")
        rows, cols = out.shape
        limit = rows if max is None or max > rows else max
        if indices is not None and len(indices) < limit:
            raise UsageError("poll_into: indices is shorter than the rows asked for")
        q = self._q
        done = 0
        finished = 0
        expected = -1
        while done < limit and q:
            b = q[0]
            if b.n_channels != cols:
                if done:
                    break
                raise UsageError(f"poll_into: blocks have {b.n_channels} channels, the output array {cols} columns")
            off = self._offset
            ns = b.n_samples
            start = b.first_index + off if off else b.first_index
            if start > _U32:
                start &= _U32
            if done == 0:
                self.first_index = start
            elif start != expected:
                break  # a gap: the next call starts a new run
            k = ns - off
            if k > limit - done:
                k = limit - done
            end = done + k
            counts = b.counts
            out[done:end] = counts if k == ns else counts[off : off + k]
            if indices is not None:
                np.add(_ARANGE[:k], start, out=indices[done:end], casting="unsafe")
            done = end
            expected = start + k
            if expected > _U32:
                expected &= _U32
            if off + k >= ns:
                self._finish_head()
                finished += 1
            else:
                self._offset = off + k
        if finished:
            self.delivered += finished
        return done

    def poll_each(self, max: int, fn: Callable[[SamplesBlock], object]) -> int:
        """Lend up to max queued blocks to fn, in order, releasing each after its call."""
        self._check_whole()
        q = self._q
        n = 0
        try:
            while n < max and q:
                b = q[0]
                n += 1
                try:
                    fn(b)
                finally:
                    self._finish_head()
        finally:
            self.delivered += n
        return n

    def get(self, timeout: float | None = 0.0) -> SamplesBlock | None:
        """The next block, owned by the caller (release it, or use `with`); None if none came in time."""
        self._check_whole()
        if not self._q and (timeout == 0 or not self.wait(timeout)):
            return None
        self.delivered += 1
        return self._q.popleft()

    def poll(self, max: int | None = None) -> list[SamplesBlock]:
        """Detached copies of up to max queued blocks (a convenience: it allocates)."""
        out: list[SamplesBlock] = []
        self.poll_each(len(self._q) if max is None else max, lambda b: out.append(b.copy()))
        return out

    def close(self) -> None:
        """Refuse new blocks and release every queued one."""
        self._closed = True
        while self._q:
            self._finish_head()
            self.delivered += 1

    def stats(self) -> dict[str, int]:
        return {
            "queued": len(self._q),
            "accepted": self.accepted,
            "dropped": self.dropped,
            "delivered": self.delivered,
            "high_water": self.high_water,
            "maxlen": self.maxlen,
        }
