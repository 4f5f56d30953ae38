"""BufferPool: reusable byte buffers in the size classes generated from contracts.toml.

`acquire(size)` lends a `Loaned` buffer of the smallest class that holds size
bytes. A class grows lazily, one buffer at a time, up to its cap; once every
buffer of the class is out, `acquire` falls back to a plain allocation and
counts it (`fallbacks`): it never blocks and never drops data. A request
larger than every class is a fallback too.

A loan is released exactly once, by `release()` or by leaving its `with`
block; releasing it again raises PoolError. A loan that is garbage-collected
unreleased is not lost: its buffer goes back to the pool and counts as
`leaked`. Loan handles are reused with their buffers, so a steady state of
acquire/release allocates nothing; `cache` on a loan is a slot where users of
the buffer keep views they derived from it (it lives as long as the buffer).

Thread-safe: the decoder's thread acquires, any thread may release.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .. import contracts as C
from ..errors import PicodaqError


class PoolError(PicodaqError):
    """A pool used against its rules (a buffer released twice)."""


@dataclass(frozen=True)
class PoolStats:
    allocations: int  # pooled buffers created (each class grows lazily up to its cap)
    acquires: int
    returns: int  # releases plus leaked loans reclaimed
    in_use: int
    hits: int  # acquires served by a pooled buffer already allocated
    fallbacks: int  # acquires served by a plain allocation: class exhausted or size too large
    leaked: int  # loans collected without being released (their buffers were reclaimed)
    free: int  # pooled buffers waiting to be lent

    @property
    def hit_rate(self) -> float:
        return self.hits / self.acquires if self.acquires else 1.0

    def as_dict(self) -> dict[str, float]:
        d: dict[str, float] = dict(asdict(self))
        d["hit_rate"] = self.hit_rate
        return d


class Loaned:
    """A buffer lent by a BufferPool: `buffer` (a bytearray of the class size),
    `view` (a memoryview of all of it) and `size` (the bytes asked for)."""

    __slots__ = ("buffer", "view", "size", "cache", "run_cache", "_pool", "_cls", "_out")

    def __init__(self, buffer: bytearray, pool: BufferPool | None, cls: int) -> None:
        self.buffer = buffer
        self.view = memoryview(buffer)
        self.size = 0
        self.cache: object = None
        self.run_cache: dict[object, object] | None = None  # as cache, for runs of frames (by layout)
        self._pool = pool
        self._cls = cls  # size class index, -1 for a fallback allocation
        self._out = False

    @property
    def pooled(self) -> bool:
        return self._cls >= 0

    @property
    def released(self) -> bool:
        return not self._out

    def release(self) -> None:
        if not self._out:
            raise PoolError("this buffer was already released to its pool")
        self._out = False
        pool = self._pool
        if pool is not None:
            pool._give(self)

    def __enter__(self) -> Loaned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        if self._out:
            pool = self._pool
            if pool is not None:
                # reclaimed under the pool's lock on its next use (deque.append is atomic)
                pool._leaked.append((self._cls, self.buffer))

    def __repr__(self) -> str:
        state = "out" if self._out else "free"
        return f"<Loaned {self.size}/{len(self.buffer)} bytes, {state}>"


# A class for runs of frames the decoder copies at once (decoder.drain's run_handler): one
# buffer holds many SAMPLES frames back to back. Host-side only: the contract's classes fit one
# frame; a receiver that takes runs adds this one (RUN_CLASSES).
RUN_CLASS = 1 << 16
RUN_CLASSES = (*C.POOL_SIZE_CLASSES, RUN_CLASS)


def _default_classes() -> tuple[int, ...]:
    return tuple(C.POOL_SIZE_CLASSES)


class BufferPool:
    def __init__(self, classes: Sequence[int] | None = None, cap: int | Sequence[int] = 256) -> None:
        classes = tuple(sorted(classes if classes is not None else _default_classes()))
        if not classes or any(c <= 0 for c in classes):
            raise ValueError("size classes must be positive")
        caps = tuple(cap for _ in classes) if isinstance(cap, int) else tuple(cap)
        if len(caps) != len(classes) or any(c < 0 for c in caps):
            raise ValueError("one non-negative cap per size class")
        self.classes = classes
        self.caps = caps
        self.largest = classes[-1]
        # class index by ceil(size / 128): the classes are powers of two >= 128
        step = 128
        self._step_shift = step.bit_length() - 1
        self._max = classes[-1]
        table = []
        for k in range(self._max // step + 1):
            need = min(k * step, self._max)
            table.append(next(i for i, c in enumerate(classes) if c >= need))
        self._class_of = table  # for class_for(); acquire() compares, which allocates no int
        # free buffers by class, as deques: a list shrinking and growing by one around a
        # resize threshold reallocates its array each time; a deque keeps its block
        self._free: list[deque[Loaned]] = [deque() for _ in classes]
        self._count = [0] * len(classes)
        self._lock = threading.Lock()
        self._leaked: deque[tuple[int, bytearray]] = deque()  # filled by Loaned.__del__, drained under the lock
        # Counters. Only the acquire count moves on every acquire, and it is kept
        # in two digits of base 256 (`_acq_lo` stays a small int, which Python
        # does not allocate; `_acq_hi` moves once per 256): the hot path
        # allocates no ints. The rest move on misses, fallbacks and leaks;
        # returns and in_use are derived (a pooled buffer is either free or out).
        self._acq_lo = 0
        self._acq_hi = 0
        self._fallbacks = 0
        self._fallbacks_back = 0  # fallback loans released
        self._allocations = 0
        self._leaks = 0

    def class_for(self, size: int) -> int | None:
        """The size class that serves size bytes, or None (a fallback)."""
        if 0 <= size <= self._max:
            return self.classes[self._class_of[(size + 127) >> self._step_shift]]
        return None

    def acquire(self, size: int) -> Loaned:
        """Lend a buffer of at least size bytes (never blocks)."""
        if size < 0:
            raise ValueError("size must not be negative")
        # lock.acquire()/release() rather than `with`: a with statement makes two
        # bound-method objects per use, and this runs once per frame
        lock = self._lock
        lock.acquire()
        try:
            if self._leaked:
                self._reclaim()
            lo = self._acq_lo + 1
            if lo == 256:
                self._acq_hi += 1
                lo = 0
            self._acq_lo = lo
            classes = self.classes
            i = 0
            n = len(classes)
            while i < n and classes[i] < size:
                i += 1
            if i < n:
                free = self._free[i]
                if free:
                    loan = free.pop()
                    loan.size = size
                    loan._out = True
                    return loan
                if self._count[i] < self.caps[i]:
                    self._count[i] += 1
                    self._allocations += 1
                    loan = Loaned(bytearray(classes[i]), self, i)
                    loan.size = size
                    loan._out = True
                    return loan
            self._fallbacks += 1
        finally:
            lock.release()
        loan = Loaned(bytearray(size), self, -1)
        loan.size = size
        loan._out = True
        return loan

    def _give(self, loan: Loaned) -> None:
        lock = self._lock
        lock.acquire()
        try:
            if loan._cls >= 0:
                self._free[loan._cls].append(loan)
            else:
                self._fallbacks_back += 1
        finally:
            lock.release()

    def _reclaim(self) -> None:
        """Return the buffers of loans collected unreleased (lock held)."""
        while self._leaked:
            cls, buf = self._leaked.popleft()
            self._leaks += 1
            if cls >= 0:
                # the old handle is gone: a new one takes over the buffer
                self._free[cls].append(Loaned(buf, self, cls))
            else:
                self._fallbacks_back += 1

    @property
    def stats(self) -> PoolStats:
        with self._lock:
            if self._leaked:
                self._reclaim()
            free = sum(len(f) for f in self._free)
            in_use = (self._allocations - free) + (self._fallbacks - self._fallbacks_back)
            acquires = self._acq_hi * 256 + self._acq_lo
            return PoolStats(
                allocations=self._allocations,
                acquires=acquires,
                returns=acquires - in_use,
                in_use=in_use,
                hits=acquires - self._allocations - self._fallbacks,
                fallbacks=self._fallbacks,
                leaked=self._leaks,
                free=free,
            )

    @property
    def hit_rate(self) -> float:
        return self.stats.hit_rate

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<BufferPool classes={self.classes} in_use={s.in_use} allocations={s.allocations} "
            f"hit_rate={s.hit_rate:.4f} fallbacks={s.fallbacks} leaked={s.leaked}>"
        )
