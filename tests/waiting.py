"""Waiting on a condition, the one way tests wait: poll until it holds, fail after a timeout.

The timeout is a hang guard for a loaded machine, never the thing under test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

V = TypeVar("V")


def wait_for(cond: Callable[[], V], timeout: float = 60.0, every: float = 0.02, what: str = "condition") -> V:
    """Poll cond() until it is truthy and return its value; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
