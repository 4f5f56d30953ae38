"""Allocation tracking: HotPathGuard for tests, allocation counts for benchmarks.

`HotPathGuard` (tracemalloc) wraps code that must not churn memory:

    with HotPathGuard(budget_bytes=64 * 1024, max_growth_bytes=0):
        ... steady-state work ...

On exit it fails (AllocationBudgetExceeded, an AssertionError, with the top
allocation sites) when the traced memory alive at exit exceeds what was alive
at entry by more than `max_growth_bytes` (retained growth), or when the peak
of traced memory rose more than `budget_bytes` above the entry level (what the
code had allocated at once, transient objects included). Warm up first: the
guard measures a steady state, not a first run's caches.

tracemalloc costs time on every allocation, so code with few allocations
runs under it at nearly full speed: the guard itself rewards an allocation-
free hot path.

`count_allocations(fn)` (memray, when installed: the test extras) runs fn
and returns how many allocations it made and how many bytes they asked for in
total, freed or not (tracemalloc can only tell what is alive). Benchmarks
divide by frames to report allocations and bytes per frame.
"""
from __future__ import annotations

import linecache
import os
import sys
import tempfile
import tracemalloc
from dataclasses import dataclass
from typing import Any, Callable

from .errors import UsageError


class AllocationBudgetExceeded(AssertionError):
    """Code under a HotPathGuard grew retained memory or allocated past its budget."""

    def __init__(self, message: str, growth: int, peak: int) -> None:
        super().__init__(message)
        self.growth = growth
        self.peak = peak


class HotPathGuard:
    def __init__(self, budget_bytes: int = 256 * 1024, max_growth_bytes: int = 0, nframes: int = 1,
                 label: str = "hot path") -> None:
        self.budget_bytes = budget_bytes
        self.max_growth_bytes = max_growth_bytes
        self.nframes = nframes
        self.label = label
        self.growth = 0  # traced bytes alive at exit minus at entry
        self.peak = 0  # highest traced bytes alive meanwhile, minus at entry
        self._started = False
        self._before: tracemalloc.Snapshot | None = None
        self._base = 0

    def __enter__(self) -> "HotPathGuard":
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start(self.nframes)
        self._before = tracemalloc.take_snapshot()
        self._base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        try:
            current, peak = tracemalloc.get_traced_memory()
            self.growth = current - self._base
            self.peak = peak - self._base
            if exc_type is not None:
                return
            problems = []
            if self.growth > self.max_growth_bytes:
                problems.append(f"retained {self.growth} bytes more than at entry (allowed {self.max_growth_bytes})")
            if self.peak > self.budget_bytes:
                problems.append(f"peaked {self.peak} bytes above entry (budget {self.budget_bytes})")
            if problems:
                after = tracemalloc.take_snapshot()
                sites = _top_growth(self._before, after)  # type: ignore[arg-type]
                raise AllocationBudgetExceeded(f"{self.label}: " + "; ".join(problems) + sites,
                                               self.growth, self.peak)
        finally:
            self._before = None
            if self._started:
                tracemalloc.stop()


def _top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int = 8) -> str:
    skip = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, linecache.__file__)]
    diff = after.filter_traces(skip).compare_to(before.filter_traces(skip), "lineno")
    lines = [f"  {d.size_diff:+d} B in {d.count_diff:+d} blocks: {d.traceback}" for d in diff[:n] if d.size_diff]
    return ("\ntop growth:\n" + "\n".join(lines)) if lines else ""


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
    kinds = {memray.AllocatorType.MALLOC, memray.AllocatorType.CALLOC, memray.AllocatorType.REALLOC,
             memray.AllocatorType.PYMALLOC_MALLOC, memray.AllocatorType.PYMALLOC_CALLOC,
             memray.AllocatorType.PYMALLOC_REALLOC, memray.AllocatorType.POSIX_MEMALIGN,
             memray.AllocatorType.ALIGNED_ALLOC, memray.AllocatorType.MEMALIGN, memray.AllocatorType.VALLOC,
             memray.AllocatorType.PVALLOC}
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
