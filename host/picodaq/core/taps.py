"""TapRegistry: observers that see every Nth block, read-only, synchronously.

An observer is a callable, or an object with `on_block(view)`. It is called
on the receiver's thread with a `BlockView` (read-only arrays, valid only for
the call) and must not block: to hand data to another thread it copies what
it needs and returns. Returning False means it could not take this block
(its own queue was full, say): counted in that tap's `dropped`.

Each tap has its own decimation (`every`: frames 0, N, 2N, ... of those it
saw) and counters, in frames: a block that is a run of several frames (see
blocks.py) counts as that many, and a decimating tap gets the frames due as
one view of them. An observer that raises is isolated: the failure is
counted, logged once, and after `max_failures` failures in a row the tap is
disabled (blocks it then misses count as dropped); the stream goes on.

Observers may be added and removed from any thread while streaming: the
registry swaps in a new tuple, so delivery never sees a half-made list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("picodaq.core.taps")


class Tap:
    """One observer's registration: its decimation, counters and state."""

    __slots__ = (
        "fn",
        "every",
        "name",
        "max_failures",
        "delivered",
        "dropped",
        "failures",
        "consecutive_failures",
        "disabled",
        "last_error",
        "_phase",
        "_logged",
    )

    def __init__(self, fn: Callable[[Any], Any], every: int, name: str, max_failures: int) -> None:
        self.fn = fn
        self.every = every
        self.name = name
        self.max_failures = max_failures
        self.delivered = 0  # frames in calls that returned normally and did not refuse them
        self.dropped = 0  # frames due (not decimated) but not taken: refused (False), failed, or disabled
        self.failures = 0  # calls that raised
        self.consecutive_failures = 0
        self.disabled = False
        self.last_error: BaseException | None = None
        self._phase = 0
        self._logged = False

    def enable(self) -> None:
        """Re-enable a tap that was disabled after repeated failures."""
        self.consecutive_failures = 0
        self.disabled = False

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "every": self.every,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "failures": self.failures,
            "disabled": self.disabled,
        }

    def __repr__(self) -> str:
        return f"<Tap {self.name} every={self.every} delivered={self.delivered} dropped={self.dropped}>"


class TapRegistry:
    def __init__(self, max_failures: int = 3) -> None:
        self.max_failures = max_failures
        self._taps: tuple[Tap, ...] = ()
        self._lock = threading.Lock()

    def add(self, observer: Any, every: int = 1, name: str | None = None, max_failures: int | None = None) -> Tap:
        """Register observer (a callable or an object with on_block); returns its Tap."""
        if every < 1:
            raise ValueError("every must be at least 1")
        fn = getattr(observer, "on_block", observer)
        if not callable(fn):
            raise TypeError("an observer is a callable or has an on_block(view) method")
        tap = Tap(
            fn,
            every,
            name or str(getattr(observer, "__name__", type(observer).__name__)),
            self.max_failures if max_failures is None else max_failures,
        )
        with self._lock:
            self._taps = self._taps + (tap,)
        return tap

    def remove(self, tap: Tap) -> None:
        with self._lock:
            if tap not in self._taps:
                raise ValueError(f"{tap!r} is not registered")
            self._taps = tuple(t for t in self._taps if t is not tap)

    def __len__(self) -> int:
        return len(self._taps)

    def __bool__(self) -> bool:
        """True while any observer is registered (the receiver skips delivery otherwise)."""
        return bool(self._taps)

    def __iter__(self) -> Iterator[Tap]:
        return iter(self._taps)

    def deliver(self, view: Any, frames: int = 1) -> None:
        """Offer one block's view to every tap (the receiver's hot path).

        A block may be a run of frames (from a receiver that takes runs): decimation and
        the counters go by frames, so a tap with every=N gets frames 0, N, 2N, ... of the
        stream whatever blocks they came in, as one view of those frames (`view.select`)."""
        for tap in self._taps:
            every = tap.every
            phase = tap._phase
            if frames == 1:
                tap._phase = phase + 1 if phase + 1 < every else 0
                if phase:
                    continue
                share = view
                n = 1
            else:
                tap._phase = (phase + frames) % every
                first = (every - phase) % every  # the first frame of this block that is due
                if first >= frames:
                    continue
                share = view.select(first, every)
                n = (frames - 1 - first) // every + 1
            if tap.disabled:
                tap.dropped += n
                continue
            try:
                ok = tap.fn(share)
            except Exception as e:  # isolate the observer: the stream goes on
                self._failed(tap, e, n)
                continue
            if ok is False:
                tap.dropped += n
            else:
                tap.delivered += n
                tap.consecutive_failures = 0

    def _failed(self, tap: Tap, e: Exception, frames: int = 1) -> None:
        tap.failures += 1
        tap.dropped += frames
        tap.consecutive_failures += 1
        tap.last_error = e
        if not tap._logged:
            tap._logged = True
            log.warning(
                "observer %s raised %s: %s (logged once; counted in its tap's failures)",
                tap.name,
                type(e).__name__,
                e,
                exc_info=e,
            )
        if tap.consecutive_failures >= tap.max_failures and not tap.disabled:
            tap.disabled = True
            log.warning("observer %s disabled after %d failures in a row", tap.name, tap.consecutive_failures)

    def stats(self) -> list[dict[str, Any]]:
        return [t.stats() for t in self._taps]
