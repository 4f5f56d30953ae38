"""The CPU another process uses over a window of wall time, from /proc (every thread, those that
ended too): what the peer figure compares between BrainFlow's process and picodaq's."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> tuple[float, float | None, frozenset[str]]:
    """(utime + stime in seconds, the sum of its threads' schedstat run times in seconds or None, thread ids)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    tasks = frozenset(os.listdir(f"/proc/{pid}/task"))
    ns = 0
    try:
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return ticks, None, tasks
    return ticks, ns / 1e9, tasks


@dataclass
class CpuWindow:
    seconds: float
    cpu_seconds: float  # utime + stime
    cpu_seconds_schedstat: float | None  # threads alive at both ends; None when a thread came or went
    threads: int

    def as_dict(self) -> dict[str, Any]:
        s = self.seconds
        fine = self.cpu_seconds_schedstat
        return {
            "seconds": s,
            "cpu_seconds": self.cpu_seconds,
            "cpu_percent": 100 * self.cpu_seconds / s,
            "cpu_percent_schedstat": None if fine is None else 100 * fine / s,
            "threads": self.threads,
        }


def cpu_window(pid: int, seconds: float, alive: Callable[[], bool]) -> CpuWindow:
    """The CPU pid uses over the next `seconds` of wall time."""
    c0, f0, tasks0 = proc_cpu(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    if not alive():
        raise ProcessLookupError(f"process {pid} ended inside its window")
    c1, f1, tasks1 = proc_cpu(pid)
    t1 = time.monotonic()
    fine = None if f0 is None or f1 is None or tasks0 != tasks1 else f1 - f0
    return CpuWindow(t1 - t0, c1 - c0, fine, len(tasks1))
