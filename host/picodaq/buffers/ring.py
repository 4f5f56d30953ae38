"""ByteRing: the single-producer single-consumer byte ring between the port's
reader thread and the consumer.

Layout and invariants (as micropython-lib's usb `Buffer`):
- `capacity` is a power of two; `_head` counts every byte ever written and is
  written only by the producer, `_tail` counts every byte ever read and is
  written only by the consumer. Both grow without bound and are masked on use,
  so `_head - _tail` is the number of bytes waiting (0 .. capacity) and neither
  side ever writes the other's counter.
- The producer fills the free region in place (`write_from` hands it to a
  `readinto`-style function: no bytes object per read); the consumer reads in
  place (`pop_each` lends views) or copies out (`pop_batch_into`, `recv`).
- Waiting is on a binary semaphore (threads: a Lock held while nothing is
  pending, released by the other side: one futex call each way, where a
  threading.Event costs a Condition and a new lock per wait) or a future
  (asyncio), never a sleep. Each
  side has one waiter slot: a second concurrent waiter on the same side is a
  bug and raises `WaiterBusy`. A waiter publishes itself, then re-checks its
  condition, then sleeps; the other side updates its counter, then looks for a
  waiter. Under the GIL one of the two always sees the other, so no wake-up is
  lost. A producer that reads in pieces (a pty hands 4 KiB a read) may write
  with `wake=False` and call `wake_receiver()` once it has read all there was:
  the consumer then wakes once per burst, not once per piece (each wake is a
  futex call each way, and the woken consumer contends for the GIL with the
  producer's next read). A full ring wakes the consumer before the producer
  waits for room, so a deferred wake cannot deadlock.

Overflow policy, chosen at construction and counted:
- `Overflow.BLOCK` (the default, and the Link's): a full ring makes the
  producer wait (`producer_waits`). The port's buffer, then the device's ring,
  absorb the backlog; the device counts what it drops (STATUS
  samples_dropped) and the gap shows as a jump in first_sample_index. Nothing
  is lost silently on the host.
- `Overflow.DROP`: the producer never waits; bytes that do not fit are read
  and discarded, counted in `dropped_bytes` (the decoder then counts the
  damaged frames). For live views that prefer fresh data to complete data.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections.abc import Callable

from .ring_errors import ChannelFull, ReceiversDisconnected, RingError, SendersDisconnected, WaiterBusy
from .stream import ByteStream


class Overflow(enum.Enum):
    BLOCK = "block"
    DROP = "drop"


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Waiter:
    """One side's waiter slot: a thread waits on `_sem` (a Lock used as a binary semaphore:
    held while no wake is pending), a coroutine on `future`."""

    __slots__ = ("active", "need", "_sem", "future", "loop", "side", "nudged")

    def __init__(self, side: str) -> None:
        self.active = False
        self.nudged = False  # end the (next) wait early: another thread has something for this side
        self.need = 1
        self._sem = threading.Lock()
        self._sem.acquire()  # no wake pending
        self.future: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.side = side

    def wake(self) -> None:
        fut = self.future
        if fut is not None:
            try:
                self.loop.call_soon_threadsafe(_resolve, fut)  # type: ignore[union-attr]
            except RuntimeError:  # its loop has closed: nobody is waiting any more
                pass
        else:
            try:
                self._sem.release()  # a wake is pending now
            except RuntimeError:  # one was pending already
                pass

    def forget(self) -> None:
        """Drop a wake left pending from before (the waiter re-checks its condition anyway)."""
        self._sem.acquire(False)

    def sleep(self, timeout: float | None) -> None:
        """Until woken (a pending wake counts) or timeout seconds have passed."""
        self._sem.acquire(True, -1 if timeout is None else timeout)


class ByteRing:
    def __init__(self, capacity: int = 1 << 20, overflow: Overflow = Overflow.BLOCK) -> None:
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        self.capacity = capacity
        self.overflow = Overflow(overflow)
        self._mask = capacity - 1
        self._buf = bytearray(capacity)
        self._view = memoryview(self._buf)
        self._head = 0  # total bytes written: the producer's
        self._tail = 0  # total bytes read: the consumer's
        self._origin = 0  # the count that sits at index 0 (rewind())
        self._reader = _Waiter("consumer")
        self._writer = _Waiter("producer")
        self._sender_closed = False
        self._receiver_closed = False
        self._discard: bytearray | None = None  # DROP policy: where unwanted bytes are read to
        self.error: BaseException | None = None  # why the producer closed, if it failed
        # counters (each written by one side only)
        self.producer_waits = 0  # BLOCK: times the producer found the ring full and waited
        self.dropped_bytes = 0  # DROP: bytes discarded because the ring was full
        self.high_water = 0  # most bytes ever waiting at once

    def __len__(self) -> int:
        return self._head - self._tail

    @property
    def free(self) -> int:
        return self.capacity - (self._head - self._tail)

    @property
    def bytes_written(self) -> int:
        return self._head

    @property
    def bytes_read(self) -> int:
        return self._tail

    @property
    def consumer_waiting(self) -> bool:
        """A consumer is parked waiting for bytes."""
        return self._reader.active

    @property
    def producer_waiting(self) -> bool:
        """The producer is parked waiting for room."""
        return self._writer.active

    @property
    def sender_closed(self) -> bool:
        return self._sender_closed

    @property
    def receiver_closed(self) -> bool:
        return self._receiver_closed

    def stats(self) -> dict[str, int]:
        return {
            "capacity": self.capacity,
            "waiting": self._head - self._tail,
            "high_water": self.high_water,
            "bytes_written": self._head,
            "bytes_read": self._tail,
            "producer_waits": self.producer_waits,
            "dropped_bytes": self.dropped_bytes,
        }

    # -- waiting (both sides) --------------------------------------------------

    def _wait(self, slot: _Waiter, ready: Callable[[], bool], need: int, timeout: float | None) -> bool:
        if slot.active:
            raise WaiterBusy(slot.side)
        slot.need = need
        slot.forget()
        slot.active = True  # published: from here the other side wakes us
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not ready():
                if slot.nudged:
                    slot.nudged = False
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                slot.sleep(left)
            return True
        finally:
            slot.active = False

    async def _await(self, slot: _Waiter, ready: Callable[[], bool], need: int) -> None:
        if slot.active:
            raise WaiterBusy(slot.side)
        slot.need = need  # ready() reads it
        if ready():
            return
        loop = asyncio.get_running_loop()
        slot.loop = loop
        slot.active = True
        try:
            while not ready():
                fut = loop.create_future()
                slot.future = fut
                if ready():  # re-check after publishing the future
                    break
                await fut
        finally:
            slot.future = None
            slot.active = False

    # -- producer ----------------------------------------------------------------

    def _produced(self, n: int, wake: bool = True) -> None:
        head = self._head + n
        self._head = head
        used = head - self._tail
        if used > self.high_water:
            self.high_water = used
        r = self._reader
        if wake and r.active and used >= r.need:
            r.wake()

    def wake_receiver(self) -> None:
        """Wake the consumer if what it waits for is here (after writes with wake=False)."""
        r = self._reader
        if r.active and self._head - self._tail >= r.need:
            r.wake()

    def _writable_or_closed(self) -> bool:
        return self._receiver_closed or self._head - self._tail <= self.capacity - self._writer.need

    def wait_writable(self, timeout: float | None = None, n: int = 1) -> bool:
        """Wait until at least min(n, capacity) bytes are free; False on timeout."""
        n = max(1, min(n, self.capacity))
        if self._receiver_closed:
            raise ReceiversDisconnected()
        if self.free >= n:
            return True
        self.producer_waits += 1
        self.wake_receiver()  # what a write with wake=False left unannounced: room comes from the consumer
        ok = self._wait(self._writer, self._writable_or_closed, n, timeout)
        if self._receiver_closed:
            raise ReceiversDisconnected()
        return ok

    def rewind(self) -> None:
        """An empty ring's next byte goes to its start: a reader that keeps refilling an empty
        ring reuses the same few hundred KB (hot in the CPU's cache) instead of walking all of it.
        Only for a caller that is producer and consumer at once (nobody else writes or reads)."""
        if self._head == self._tail:
            self._origin = self._head

    def room(self) -> memoryview:
        """The free space write_from() would offer now (one piece: up to the buffer's end)."""
        start = (self._head - self._origin) & self._mask
        return self._view[start : start + min(self.free, self.capacity - start)]

    def write_from(
        self, readinto: Callable[[memoryview], int | None], timeout: float | None = None, wake: bool = True
    ) -> int | None:
        """Let `readinto` fill free space in place; returns what it returned.

        That is the bytes it read (0 at end of input, None if it would block).
        Under BLOCK a full ring first waits for room (0 on timeout); under DROP
        a full ring reads into a discard buffer and counts the bytes dropped.
        wake=False: leave waking the consumer to a later `wake_receiver()`.
        """
        if self._receiver_closed:
            raise ReceiversDisconnected()
        if self.free == 0:
            if self.overflow is Overflow.DROP:
                if self._discard is None:
                    self._discard = bytearray(1 << 16)
                n = readinto(memoryview(self._discard))
                if n:
                    self.dropped_bytes += n
                return n
            if not self.wait_writable(timeout):
                return 0
        region = self.room()
        try:
            n = readinto(region)
        finally:
            region.release()
        if n:
            self._produced(n, wake)
        return n

    def try_push(self, data: bytes | bytearray | memoryview) -> int:
        """Copy in as much of data as fits, without waiting; returns the bytes written."""
        if self._receiver_closed:
            raise ReceiversDisconnected()
        src = memoryview(data).cast("B")
        done = 0
        while done < len(src) and self.free:
            start = (self._head - self._origin) & self._mask
            n = min(self.free, self.capacity - start, len(src) - done)
            self._view[start : start + n] = src[done : done + n]
            done += n
            self._produced(n)
        return done

    def push(self, data: bytes | bytearray | memoryview, block: bool = True, timeout: float | None = None) -> None:
        """Copy all of data in.

        BLOCK: waits for room as needed (data may exceed the capacity); with
        block=False, or on timeout, raises ChannelFull having written nothing
        (or, on timeout, only what fitted before). DROP: never waits; what does
        not fit is dropped and counted.
        """
        if self._receiver_closed:
            raise ReceiversDisconnected()
        src = memoryview(data).cast("B")
        if self.overflow is Overflow.DROP:
            n = self.try_push(src)
            self.dropped_bytes += len(src) - n
            return
        if not block and len(src) > self.free:
            raise ChannelFull(len(src), self.free)
        done = 0
        while done < len(src):
            if not self.wait_writable(timeout, len(src) - done):
                raise ChannelFull(len(src) - done, self.free)
            done += self.try_push(src[done:])

    async def wait_for(self, n: int) -> int:
        """Wait (asyncio) until min(n, capacity) bytes are free; returns the free count.

        Capped at the capacity, so a request larger than the ring cannot deadlock.
        """
        n = max(1, min(n, self.capacity))
        if self._receiver_closed:
            raise ReceiversDisconnected()
        if self.free < n:
            self.producer_waits += 1
            await self._await(self._writer, self._writable_or_closed, n)
        if self._receiver_closed:
            raise ReceiversDisconnected()
        return self.free

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Copy all of data in (asyncio), waiting for room as the consumer drains."""
        src = memoryview(data).cast("B")
        if self.overflow is Overflow.DROP:
            self.push(src)
            return
        done = 0
        while done < len(src):
            await self.wait_for(len(src) - done)
            done += self.try_push(src[done:])

    def close_sender(self, error: BaseException | None = None) -> None:
        """The producer is done (error: why, if it failed); the consumer drains, then gets SendersDisconnected."""
        self.error = error
        self._sender_closed = True
        if self._reader.active:
            self._reader.wake()

    # -- consumer ----------------------------------------------------------------

    def _readable_or_closed(self) -> bool:
        return self._sender_closed or self._head - self._tail >= self._reader.need

    def nudge_receiver(self) -> None:
        """End the consumer's wait_readable early (now, or its next one), returning False as on a
        timeout: for a thread that has something else for the consumer to do (stop, send a MARK),
        so the consumer can wait for data without waking up to look for such things."""
        slot = self._reader
        slot.nudged = True
        if slot.active:
            slot.wake()

    def wait_readable(self, timeout: float | None = None, n: int = 1) -> bool:
        """Wait until min(n, capacity) bytes are waiting; False on timeout.

        Once the producer has closed this returns True while any byte is left
        (fewer than n, perhaps) and raises SendersDisconnected when none is.
        """
        n = max(1, min(n, self.capacity))
        if self._head - self._tail < n and not self._sender_closed:
            if not self._wait(self._reader, self._readable_or_closed, n, timeout):
                return False
        if self._head == self._tail and self._sender_closed:
            raise SendersDisconnected()
        return True

    async def wait_readable_async(self, n: int = 1) -> int:
        """Wait (asyncio) until min(n, capacity) bytes are waiting; returns the count."""
        n = max(1, min(n, self.capacity))
        await self._await(self._reader, self._readable_or_closed, n)
        if self._head == self._tail and self._sender_closed:
            raise SendersDisconnected()
        return self._head - self._tail

    def _consumed(self, n: int) -> None:
        tail = self._tail + n
        self._tail = tail
        w = self._writer
        if w.active and self.capacity - (self._head - tail) >= w.need:
            w.wake()

    def pop_batch_into(self, out: bytearray | memoryview) -> int:
        """Copy as many waiting bytes as fit into out; returns the count (0 if none)."""
        with memoryview(out) as raw, raw.cast("B") as dst:
            total = 0
            want = len(dst)
            while total < want:
                avail = self._head - self._tail
                if not avail:
                    break
                start = (self._tail - self._origin) & self._mask
                n = min(avail, self.capacity - start, want - total)
                dst[total : total + n] = self._view[start : start + n]
                total += n
                self._consumed(n)
        return total

    def pop_each(self, max_bytes: int, fn: Callable[[memoryview], object]) -> int:
        """Lend waiting bytes to fn in place, as at most two contiguous views (the wrap).

        A view is valid only during its call: the space is reused once fn returns. Bytes lent
        are consumed even if fn raises: lending them again would hand a consumer (a capture
        file, a decoder) the same bytes twice.
        """
        done = 0
        while done < max_bytes:
            avail = self._head - self._tail
            if not avail:
                break
            start = (self._tail - self._origin) & self._mask
            n = min(avail, self.capacity - start, max_bytes - done)
            view = self._view[start : start + n]
            try:
                fn(view)
            finally:
                view.release()
                done += n
                self._consumed(n)
        return done

    def recv(self, size: int) -> bytearray:
        """A plain copy of up to size waiting bytes, for simple callers."""
        out = bytearray(min(size, len(self)))
        n = self.pop_batch_into(out)
        del out[n:]
        return out

    def into_stream(self, pool_size: int = 4, chunk_size: int = 1 << 16) -> ByteStream:
        """An asyncio stream of the ring's bytes as memoryviews of pooled buffers."""
        return ByteStream(self, pool_size, chunk_size)

    def close_receiver(self) -> None:
        """The consumer is done: the producer gets ReceiversDisconnected from now on."""
        self._receiver_closed = True
        if self._writer.active:
            self._writer.wake()


__all__ = [
    "ByteRing",
    "ByteStream",
    "ChannelFull",
    "Overflow",
    "ReceiversDisconnected",
    "RingError",
    "SendersDisconnected",
    "WaiterBusy",
]
