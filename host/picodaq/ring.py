"""ByteRing: a single-producer single-consumer byte ring between the port's
reader thread and the consumer.

The producer reads straight into the ring's free space (`write_from`, given a
`readinto`-style function: no bytes object per read); the consumer copies out
with `pop_batch_into` or `recv`. Capacity is a power of two; head and tail
grow without bound and are masked on use, so each side writes only its own
counter. Waiting is on events, never on a sleep.

Overflow policy: the ring never drops or overwrites. When it is full the
producer waits for space (counted in `full_waits`) and the port's own buffer,
then the device's ring, absorb the backlog; the device counts what it drops,
so every loss shows up in the decoder's counters.
"""
from __future__ import annotations

import threading
from typing import Callable


class RingError(Exception):
    pass


class ChannelFull(RingError):
    """A non-blocking push found no room."""


class SendersDisconnected(RingError):
    """The producer closed the ring and every byte has been read."""


class ReceiversDisconnected(RingError):
    """The consumer closed the ring: nothing more will be read."""


class ByteRing:
    def __init__(self, capacity: int = 1 << 20) -> None:
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        self.capacity = capacity
        self._mask = capacity - 1
        self._buf = bytearray(capacity)
        self._view = memoryview(self._buf)
        self._head = 0  # total bytes written (producer's)
        self._tail = 0  # total bytes read (consumer's)
        self._readable = threading.Event()
        self._writable = threading.Event()
        self._writable.set()
        self._sender_closed = False
        self._receiver_closed = False
        self.error: BaseException | None = None  # why the sender closed, if it failed
        self.full_waits = 0

    def __len__(self) -> int:
        return self._head - self._tail

    @property
    def free(self) -> int:
        return self.capacity - (self._head - self._tail)

    # -- producer ----------------------------------------------------------

    def _free_region(self) -> memoryview:
        start = self._head & self._mask
        n = min(self.free, self.capacity - start)
        return self._view[start:start + n]

    def _produced(self, n: int) -> None:
        if n > 0:
            self._head += n
            self._readable.set()

    def wait_writable(self, timeout: float | None = None) -> bool:
        while self.free == 0:
            if self._receiver_closed:
                raise ReceiversDisconnected()
            self._writable.clear()
            if self.free:
                break
            self.full_waits += 1
            if not self._writable.wait(timeout):
                return False
        return True

    def write_from(self, readinto: Callable[[memoryview], int | None], timeout: float | None = None) -> int:
        """Let `readinto` fill free space directly; returns the bytes it wrote."""
        if self._receiver_closed:
            raise ReceiversDisconnected()
        if not self.wait_writable(timeout):
            return 0
        region = self._free_region()
        try:
            n = readinto(region) or 0
        finally:
            region.release()
        self._produced(n)
        return n

    def push(self, data: bytes | bytearray | memoryview, block: bool = True, timeout: float | None = None) -> None:
        """Copy all of data in, waiting for room unless block is False."""
        src = memoryview(data).cast("B")
        while len(src):
            if self._receiver_closed:
                raise ReceiversDisconnected()
            if self.free == 0:
                if not block:
                    raise ChannelFull()
                if not self.wait_writable(timeout):
                    raise ChannelFull()
            region = self._free_region()
            n = min(len(region), len(src))
            region[:n] = src[:n]
            region.release()
            src = src[n:]
            self._produced(n)

    def close_sender(self, error: BaseException | None = None) -> None:
        self.error = error
        self._sender_closed = True
        self._readable.set()

    # -- consumer ----------------------------------------------------------

    def wait_readable(self, timeout: float | None = None) -> bool:
        """True when bytes are waiting; raises SendersDisconnected once drained and closed."""
        while self._head == self._tail:
            if self._sender_closed:
                raise SendersDisconnected()
            self._readable.clear()
            if self._head != self._tail or self._sender_closed:
                continue
            if not self._readable.wait(timeout):
                return False
        return True

    def pop_batch_into(self, out: bytearray | memoryview) -> int:
        """Copy as many waiting bytes as fit into out; returns the count (0 if none)."""
        dst = memoryview(out).cast("B")
        total = 0
        while total < len(dst):
            avail = self._head - self._tail
            if not avail:
                break
            start = self._tail & self._mask
            n = min(avail, self.capacity - start, len(dst) - total)
            dst[total:total + n] = self._view[start:start + n]
            total += n
            self._tail += n
        if total:
            self._writable.set()
        return total

    def pop_each(self, max_bytes: int, fn: Callable[[memoryview], None]) -> int:
        """Hand waiting bytes to fn as up to two contiguous views, without copying."""
        done = 0
        while done < max_bytes:
            avail = self._head - self._tail
            if not avail:
                break
            start = self._tail & self._mask
            n = min(avail, self.capacity - start, max_bytes - done)
            view = self._view[start:start + n]
            try:
                fn(view)
            finally:
                view.release()
            self._tail += n
            done += n
        if done:
            self._writable.set()
        return done

    def recv(self, size: int) -> bytearray:
        """A plain copy of up to size waiting bytes, for simple callers."""
        out = bytearray(min(size, len(self)))
        n = self.pop_batch_into(out)
        del out[n:]
        return out

    def close_receiver(self) -> None:
        self._receiver_closed = True
        self._writable.set()
