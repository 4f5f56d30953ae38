"""Allocation tracking: HotPathGuard for tests, allocation counts for benchmarks.

`HotPathGuard` (tracemalloc) wraps code that must not churn memory:

    with HotPathGuard(budget_bytes=64 * 1024, max_growth_bytes=0):
        ... steady-state work ...

On exit it fails (AllocationBudgetExceeded, an AssertionError, with the top
allocation sites) when the traced memory alive at exit exceeds what was alive
at entry by more than `max_growth_bytes` (retained growth, from snapshots at
entry and exit, leaving out the guard's own bookkeeping), or when the peak of
traced memory rose more than `budget_bytes` above the entry level (what the
code had allocated at once, transient objects included). Warm up first, under
`tracing()`: the guard measures a steady state, not a first run's caches, and
objects made before tracing began cannot be told apart from new ones.

    with tracing():
        work(warmup)
        with HotPathGuard(budget_bytes=256 * 1024):
            work(n)

tracemalloc costs time on every allocation, so code with few allocations
runs under it at nearly full speed: the guard itself rewards an allocation-
free hot path.

`count_allocations(fn)` (memray, when installed: the test extras) runs fn
and returns how many allocations it made and how many bytes they asked for in
total, freed or not (tracemalloc can only tell what is alive). Benchmarks
divide by frames to report allocations and bytes per frame.
"""

from __future__ import annotations

import contextlib
import gc
import linecache
import os
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError


class AllocationBudgetExceeded(AssertionError):
    """Code under a HotPathGuard grew retained memory or allocated past its budget."""

    def __init__(self, message: str, growth: int, peak: int) -> None:
        super().__init__(message)
        self.growth = growth
        self.peak = peak


@contextlib.contextmanager
def tracing(nframes: int = 1) -> Iterator[None]:
    """Trace allocations (tracemalloc) for the block, if nobody traces already.

    Warm up under it before entering a HotPathGuard: objects the warm-up left
    behind are then traced too, so replacing them is not mistaken for growth."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(nframes)
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


class HotPathGuard:
    def __init__(
        self, budget_bytes: int = 256 * 1024, max_growth_bytes: int = 0, nframes: int = 1, label: str = "hot path"
    ) -> None:
        self.budget_bytes = budget_bytes
        self.max_growth_bytes = max_growth_bytes
        self.nframes = nframes
        self.label = label
        self.growth = 0  # traced bytes alive at exit minus at entry
        self.peak = 0  # highest traced bytes alive meanwhile, minus at entry
        self._started = False
        self._before: tracemalloc.Snapshot | None = None
        self._skip: list[tracemalloc.Filter] = []
        self._base = 0

    def __enter__(self) -> HotPathGuard:
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start(self.nframes)
        # What the `with` line itself allocates (this guard, the bound __exit__ the
        # interpreter keeps and drops) is not the guarded code's.
        caller = sys._getframe(1)
        self._skip = _SKIP + [tracemalloc.Filter(False, caller.f_code.co_filename, caller.f_lineno)]
        # A full collection also empties CPython's free lists (tuples, floats, ...):
        # objects parked there are alive to tracemalloc, and how many are parked
        # varies by chance. Emptied at both ends, they cannot pass for growth.
        _quiet_collect()
        self._before = tracemalloc.take_snapshot()
        self._base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        try:
            peak = tracemalloc.get_traced_memory()[1]
            _quiet_collect()
            after = tracemalloc.take_snapshot()
            self.peak = peak - self._base
            # growth from the snapshots, leaving out what the guard itself keeps (its own numbers)
            skip = self._skip
            growth = after.filter_traces(skip).compare_to(self._before.filter_traces(skip), "lineno")  # type: ignore[union-attr]
            self.growth = sum(d.size_diff for d in growth)
            if exc_type is not None:
                return
            problems = []
            if self.growth > self.max_growth_bytes:
                problems.append(f"retained {self.growth} bytes more than at entry (allowed {self.max_growth_bytes})")
            if self.peak > self.budget_bytes:
                problems.append(f"peaked {self.peak} bytes above entry (budget {self.budget_bytes})")
            if problems:
                lines = [
                    f"  {d.size_diff:+d} B in {d.count_diff:+d} blocks: {d.traceback}"
                    for d in growth[:8]
                    if d.size_diff
                ]
                sites = ("\ntop growth:\n" + "\n".join(lines)) if lines else ""
                raise AllocationBudgetExceeded(f"{self.label}: " + "; ".join(problems) + sites, self.growth, self.peak)
        finally:
            self._before = None
            if self._started:
                tracemalloc.stop()


def _quiet_collect() -> None:
    """A full collection without gc.callbacks (a test tool's GC timer would allocate as it runs)."""
    callbacks = gc.callbacks[:]
    gc.callbacks.clear()
    try:
        gc.collect()
    finally:
        gc.callbacks.extend(callbacks)


_SKIP = [
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, linecache.__file__),
    tracemalloc.Filter(False, __file__),
    # a test runner's own thread (pytest-xdist's execnet channel to its controller, and xdist's
    # queue of tests it fills: --dist worksteal sends work at any time) allocates while the code
    # under the guard runs: none of it is the code's
    tracemalloc.Filter(False, "*/execnet/*"),
    tracemalloc.Filter(False, "*/xdist/*"),
]


@dataclass(frozen=True)
class Allocations:
    count: int  # allocation calls (malloc, calloc, realloc, pymalloc)
    bytes: int  # bytes they asked for

    def per(self, n: int) -> tuple[float, float]:
        """(allocations, bytes) per unit of work."""
        return (self.count / n, self.bytes / n) if n else (0.0, 0.0)


def count_allocations(fn: Callable[[], object]) -> Allocations:
    """Run fn under memray and count every allocation it made (freed or not)."""
    try:
        import memray
    except ImportError:
        raise UsageError("counting allocations needs memray: pip install 'picodaq[test]'") from None
    kinds = {
        memray.AllocatorType.MALLOC,
        memray.AllocatorType.CALLOC,
        memray.AllocatorType.REALLOC,
        memray.AllocatorType.PYMALLOC_MALLOC,
        memray.AllocatorType.PYMALLOC_CALLOC,
        memray.AllocatorType.PYMALLOC_REALLOC,
        memray.AllocatorType.POSIX_MEMALIGN,
        memray.AllocatorType.ALIGNED_ALLOC,
        memray.AllocatorType.MEMALIGN,
        memray.AllocatorType.VALLOC,
        memray.AllocatorType.PVALLOC,
    }
    fd, path = tempfile.mkstemp(prefix="picodaq-alloc-", suffix=".bin")
    os.close(fd)
    os.unlink(path)
    try:
        with memray.Tracker(path, trace_python_allocators=True):
            # memray follows the Python stack with a profile hook, and CPython
            # then makes a frame object for every call: allocations the code
            # does not make without it. Counting needs no stacks: drop the hook.
            sys.setprofile(None)
            fn()
        count = size = 0
        for rec in memray.FileReader(path).get_allocation_records():
            if rec.allocator in kinds:
                count += rec.n_allocations
                size += rec.size
        return Allocations(count, size)
    finally:
        if os.path.exists(path):
            os.unlink(path)
