"""The short time slice the threads reading a board ask Linux for (transport/time_slice.py)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from picodaq.transport.link import Link
from picodaq.transport.time_slice import SLICE_NS, ask_short_slice, slice_ns


def in_thread(fn: Callable[[], Any]) -> Any:
    """fn's result in a thread of its own (what it asks for stays with that thread)."""
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(10)
    assert out, "the thread did not finish"
    return out[0]


def default_slice() -> int:
    """This kernel's default slice for a thread that never asked; skip where slices are not told."""
    s = in_thread(slice_ns)
    if not s:
        pytest.skip("the kernel does not tell a thread's slice (Linux before 6.12, or not Linux)")
    assert s > SLICE_NS
    return int(s)


def thread_slice(native_id: int) -> int:
    """Another thread of this process's slice, as /proc tells it."""
    with open(f"/proc/self/task/{native_id}/sched") as f:
        for line in f:
            if line.startswith("se.slice"):
                return int(line.split(":")[1])
    raise AssertionError("no se.slice in /proc")


def test_a_thread_asking_gets_the_short_slice_keeps_its_nice_and_what_it_starts_gets_the_default():
    default = default_slice()

    def ask() -> tuple[bool, int | None, int, int | None]:
        os.setpriority(os.PRIO_PROCESS, 0, 3)  # this thread's nice (Linux: per thread)
        took = ask_short_slice()
        return took, slice_ns(), os.getpriority(os.PRIO_PROCESS, 0), in_thread(slice_ns)

    took, mine, nice, started = in_thread(ask)
    assert took and mine == SLICE_NS and nice == 3
    assert started == default  # reset on fork: a thread it starts is not short-sliced
    assert in_thread(lambda: (ask_short_slice(), ask_short_slice(), slice_ns())) == (True, True, SLICE_NS)


def test_a_link_reader_thread_and_the_thread_that_pumps_ask_for_it(pty_pair):
    default = default_slice()
    master, path = pty_pair
    with Link.open(path) as link:
        reader = link.reader._thread
        assert reader is not None and reader.native_id is not None
        deadline = time.monotonic() + 10
        while thread_slice(reader.native_id) != SLICE_NS:
            assert time.monotonic() < deadline, "the reader thread never asked"
            time.sleep(0.01)

        def pump() -> tuple[int | None, int | None]:
            before = slice_ns()
            loans = link.reader.loans
            assert link.pump(timeout=1.0) == 0  # nothing came: it waited lent the port, reading it
            assert link.reader.loans == loans + 1
            return before, slice_ns()

        assert in_thread(pump) == (default, SLICE_NS)
        os.write(master, b"\x00" * 10)
        assert link.pump(timeout=5) == 10


def test_an_inline_link_asks_for_the_thread_that_pumps(pty_pair):
    default = default_slice()
    master, path = pty_pair
    with Link.open(path, inline=True) as link:
        assert link.reader._thread is None

        def pump() -> tuple[int | None, int | None]:
            before = slice_ns()
            os.write(master, b"\x00" * 10)
            assert link.pump(timeout=5) == 10
            return before, slice_ns()

        assert in_thread(pump) == (default, SLICE_NS)
