"""Pool[T]: a generic pool of reusable objects, so a steady state creates none.

`take()` hands out a free object, or makes one with the factory: it never
blocks. `give(obj)` puts it back; at most `cap` objects are kept free, and
objects given back beyond that are dropped (counted in `discarded`);
`overflows` tells how many objects were made past the cap. Objects a caller
lost (collected without being given back) are reported with `lost()` by
their owner, so `in_use` stays true.

Thread-safe: one thread may take while another gives back.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ObjectPoolStats:
    created: int
    takes: int
    returns: int
    in_use: int
    hits: int
    overflows: int  # objects made past the cap (never blocked)
    discarded: int  # given back while cap objects were already free
    lost: int  # objects collected without being given back
    free: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.takes if self.takes else 1.0

    def as_dict(self) -> dict[str, float]:
        d: dict[str, float] = dict(asdict(self))
        d["hit_rate"] = self.hit_rate
        return d


class Pool(Generic[T]):
    def __init__(self, factory: Callable[[], T], cap: int = 1024) -> None:
        if cap < 0:
            raise ValueError("cap must not be negative")
        self._factory = factory
        self.cap = cap
        self._free: deque[T] = deque()  # not a list: one shrinking to empty and growing again reallocates
        self._lock = threading.Lock()
        # Only the take count moves on every take, in two digits of base 256
        # (the low one stays a small int, which Python does not allocate); a
        # hit is a take that created nothing, and an object is free, in use,
        # discarded or lost, so the rest is derived: no int allocated per take.
        self._created = 0
        self._takes_lo = 0
        self._takes_hi = 0
        self._discarded = 0  # given back while the free list was at the cap
        self._lost = 0

    def take(self) -> T:
        lock = self._lock  # acquire()/release(), not `with`: no bound-method objects per call
        lock.acquire()
        try:
            lo = self._takes_lo + 1
            if lo == 256:
                self._takes_hi += 1
                lo = 0
            self._takes_lo = lo
            if self._free:
                return self._free.pop()
            self._created += 1
        finally:
            lock.release()
        return self._factory()

    def give(self, obj: T) -> None:
        lock = self._lock
        lock.acquire()
        try:
            if len(self._free) < self.cap:
                self._free.append(obj)
            else:
                self._discarded += 1
        finally:
            lock.release()

    def lost(self) -> None:
        """An object taken from this pool was collected without being given back."""
        with self._lock:
            self._lost += 1

    @property
    def stats(self) -> ObjectPoolStats:
        with self._lock:
            free = len(self._free)
            in_use = self._created - free - self._discarded - self._lost
            takes = self._takes_hi * 256 + self._takes_lo
            return ObjectPoolStats(
                created=self._created,
                takes=takes,
                returns=takes - in_use - self._lost,
                in_use=in_use,
                hits=takes - self._created,
                overflows=max(0, self._created - self.cap),
                discarded=self._discarded,
                lost=self._lost,
                free=free,
            )

    def __len__(self) -> int:
        return len(self._free)
