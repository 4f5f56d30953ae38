"""ByteRing: a model-checked SPSC byte ring, its threads, its asyncio side, its errors."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hypo import examples
from picodaq.buffers.ring import (
    ByteRing,
    ChannelFull,
    Overflow,
    ReceiversDisconnected,
    SendersDisconnected,
    WaiterBusy,
)


class RingModel(RuleBasedStateMachine):
    """Every interleaving of producer and consumer operations against a plain bytes model.

    Small capacities make wraparound and partial reads/writes the common case."""

    @initialize(capacity=st.sampled_from([1, 2, 4, 8, 16, 64]))
    def start(self, capacity):
        self.ring = ByteRing(capacity)
        self.model = bytearray()
        self.next_byte = 0
        self.read = bytearray()

    def _data(self, n):
        out = bytes((self.next_byte + i) % 251 for i in range(n))
        self.next_byte += n
        return out

    # -- producer side
    @rule(n=st.integers(0, 80))
    def write_from(self, n):
        data = self._data(n)
        seen = []

        def readinto(region):
            seen.append(len(region))
            k = min(len(region), len(data))
            region[:k] = data[:k]
            return k

        got = self.ring.write_from(readinto, timeout=0)
        if seen:  # called only with room; the region is the contiguous free space, never empty
            assert 0 < seen[0] <= self.ring.capacity
        self.model += data[: got or 0]
        self.next_byte -= n - (got or 0)

    @rule(n=st.integers(0, 80))
    def try_push(self, n):
        data = self._data(n)
        free = self.ring.free
        got = self.ring.try_push(data)
        assert got == min(n, free)
        self.model += data[:got]
        self.next_byte -= n - got

    @rule(n=st.integers(0, 80))
    def push_nonblocking(self, n):
        data = self._data(n)
        if n > self.ring.free:
            with pytest.raises(ChannelFull):
                self.ring.push(data, block=False)
            self.next_byte -= n  # all or nothing
        else:
            self.ring.push(data, block=False)
            self.model += data

    @rule()
    def rewind(self):  # a no-op unless empty: then the next byte goes to the buffer's start
        self.ring.rewind()
        if not self.model:
            assert len(self.ring.room()) == self.ring.capacity  # all the room, in one piece

    # -- consumer side
    @rule(size=st.integers(0, 80))
    def pop_batch_into(self, size):
        out = bytearray(size)
        n = self.ring.pop_batch_into(out)
        assert n == min(size, len(self.model))
        assert out[:n] == self.model[:n]
        self._consumed(n)

    @rule(size=st.integers(0, 80))
    def pop_each(self, size):
        views = []
        n = self.ring.pop_each(size, lambda v: views.append(bytes(v)))
        assert len(views) <= 2  # at most the wrap splits it
        assert n == min(size, len(self.model)) == sum(map(len, views))
        assert b"".join(views) == self.model[:n]
        self._consumed(n)

    @rule(size=st.integers(0, 80))
    def recv(self, size):
        got = self.ring.recv(size)
        assert isinstance(got, bytearray)
        assert got == self.model[:size]
        self._consumed(len(got))

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def wait_readable_is_immediate(self):
        assert self.ring.wait_readable(timeout=0)

    def _consumed(self, n):
        self.read += self.model[:n]
        del self.model[:n]

    @invariant()
    def lengths_agree(self):
        assert len(self.ring) == len(self.model)
        assert self.ring.free == self.ring.capacity - len(self.model)
        assert self.ring.bytes_written - self.ring.bytes_read == len(self.model)
        assert self.ring.high_water >= len(self.model)
        assert bytes(self.read) == bytes(i % 251 for i in range(len(self.read)))  # in order, none lost


TestRingModel = RingModel.TestCase
TestRingModel.settings = settings(max_examples=examples(100), stateful_step_count=40)


def test_capacity_must_be_a_power_of_two():
    for bad in (0, 3, 100):
        with pytest.raises(ValueError):
            ByteRing(bad)


def test_drop_policy_counts_what_does_not_fit():
    ring = ByteRing(8, Overflow.DROP)
    ring.push(b"0123456789AB")  # never waits: 8 fit, 4 are dropped
    assert ring.dropped_bytes == 4 and ring.recv(100) == b"01234567"
    ring.push(b"xy")
    assert ring.recv(100) == b"xy" and ring.dropped_bytes == 4

    data = b"z" * 20
    pos = [0]

    def readinto(region):  # a port with 20 bytes waiting
        k = min(len(region), len(data) - pos[0])
        region[:k] = data[pos[0] : pos[0] + k]
        pos[0] += k
        return k

    assert ring.write_from(readinto) == 6  # the free space up to the wrap
    assert ring.write_from(readinto) == 2  # and after it: the ring is full
    assert ring.write_from(readinto) == 12  # full: read and dropped, so the port keeps draining
    assert ring.dropped_bytes == 16 and len(ring) == 8


def test_block_policy_producer_waits_for_the_consumer_and_counts_it():
    ring = ByteRing(16)
    ring.push(b"a" * 16)
    done = threading.Event()

    def producer():
        ring.push(b"b" * 40)  # waits twice or more for room
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    got = bytearray()
    while len(got) < 56:
        ring.wait_readable(timeout=5)
        got += ring.recv(7)
    t.join(5)
    assert done.is_set() and got == b"a" * 16 + b"b" * 40
    assert ring.producer_waits >= 1 and ring.dropped_bytes == 0


@pytest.mark.parametrize("capacity", [64, 4096])
def test_threads_move_every_byte_in_order(capacity):
    """A producer and a consumer thread at full speed, each blocking on the ring's events."""
    rng = random.Random(capacity)
    blob = rng.randbytes(min(3_000_000, capacity * 8000))
    ring = ByteRing(capacity)
    sent = hashlib.sha256()

    def producer():
        pos = 0
        while pos < len(blob):
            n = rng.randint(1, 3 * capacity)

            def readinto(region, pos=pos, n=n):
                k = min(len(region), n, len(blob) - pos)
                region[:k] = blob[pos : pos + k]
                return k

            got = ring.write_from(readinto)
            sent.update(blob[pos : pos + got])
            pos += got
        ring.close_sender()

    received = hashlib.sha256()
    total = 0
    t = threading.Thread(target=producer)
    t.start()
    buf = bytearray(capacity // 2 + 3)
    try:
        while True:
            try:
                ring.wait_readable(timeout=10)
            except SendersDisconnected:
                break
            if total % 2:
                n = ring.pop_batch_into(buf)
                received.update(buf[:n])
            else:
                n = ring.pop_each(capacity, received.update)
            total += n
    finally:
        t.join(10)
    assert total == len(blob) and received.digest() == sent.digest()
    assert ring.high_water <= capacity


def test_one_waiter_per_side():
    ring = ByteRing(16)
    started = threading.Event()

    def wait():
        started.set()
        try:
            ring.wait_readable(timeout=5)
        except SendersDisconnected:
            pass

    t = threading.Thread(target=wait)
    t.start()
    started.wait()
    while not ring.consumer_waiting:  # the first consumer is parked on the ring's event
        threading.Event().wait(0.001)
    with pytest.raises(WaiterBusy):
        ring.wait_readable(timeout=0.5)
    ring.push(b"x")
    t.join(5)
    assert not t.is_alive()

    async def two_consumers():
        ring2 = ByteRing(16)
        first = asyncio.create_task(ring2.wait_readable_async())
        await asyncio.sleep(0)
        with pytest.raises(WaiterBusy):
            await ring2.wait_readable_async()
        await ring2.send(b"y")
        assert await first == 1

    asyncio.run(two_consumers())


def test_disconnects_are_clear_errors():
    ring = ByteRing(8)
    ring.push(b"abc")
    ring.close_sender()
    assert ring.wait_readable(0) and ring.recv(10) == b"abc"  # what was sent is still read
    with pytest.raises(SendersDisconnected):
        ring.wait_readable(0)

    ring = ByteRing(8)
    ring.push(b"12345678")
    blocked = threading.Event()
    outcome = []

    def producer():
        blocked.set()
        try:
            ring.push(b"more")
        except ReceiversDisconnected as e:
            outcome.append(e)

    t = threading.Thread(target=producer)
    t.start()
    blocked.wait()
    while not ring.producer_waiting:
        threading.Event().wait(0.001)
    ring.close_receiver()  # wakes the waiting producer
    t.join(5)
    assert len(outcome) == 1 and "consumer" in str(outcome[0])
    with pytest.raises(ReceiversDisconnected):
        ring.push(b"x")
    with pytest.raises(ReceiversDisconnected):
        ring.try_push(b"x")


def test_async_send_larger_than_the_ring_and_a_stream_of_pooled_chunks():
    async def main():
        ring = ByteRing(64)
        blob = bytes(range(256)) * 40
        stream = ring.into_stream(pool_size=3, chunk_size=50)

        async def producer():
            await ring.send(blob)  # 10240 bytes through 64: waits on the consumer
            ring.close_sender()

        task = asyncio.create_task(producer())
        chunks = [c async for c in stream]
        await task
        # every chunk held at once, and none was overwritten by a later one
        assert b"".join(bytes(c) for c in chunks) == blob
        assert all(1 <= len(c) <= 50 for c in chunks)
        assert stream.fallbacks == len(chunks) - 3  # all held: fresh buffers, never a reuse
        assert ring.producer_waits >= 1

    asyncio.run(main())


def test_chunks_and_ready_chunks():
    async def main():
        ring = ByteRing(32)
        stream = ring.into_stream(pool_size=2, chunk_size=16)

        async def producer():
            for i in range(25):
                await ring.send(bytes([i]) * 3)
                await asyncio.sleep(0)
            ring.close_sender()

        task = asyncio.create_task(producer())
        got = []
        async for c in stream.chunks(10):
            got.append(bytes(c))  # copied: the views may be reused once dropped
        await task
        assert [len(c) for c in got] == [10] * 7 + [5]
        assert b"".join(got) == b"".join(bytes([i]) * 3 for i in range(25))

        ring = ByteRing(32)
        stream = ring.into_stream(pool_size=2, chunk_size=16)
        await ring.send(b"abcdefgh")
        ring.close_sender()
        ready = [bytes(c) async for c in stream.ready_chunks(5)]
        assert ready == [b"abcde", b"fgh"]  # what was ready, at most 5, never waiting for more
        with pytest.raises(ValueError):
            await stream.chunks(17).__anext__()

    asyncio.run(main())


def test_a_thread_producer_wakes_an_asyncio_consumer():
    async def main():
        ring = ByteRing(1024)
        blob = random.Random(1).randbytes(200_000)

        def producer():
            for i in range(0, len(blob), 333):
                ring.push(blob[i : i + 333])
            ring.close_sender()

        t = threading.Thread(target=producer)
        t.start()
        got = bytearray()
        async for chunk in ring.into_stream(pool_size=4, chunk_size=512):
            got += chunk
        t.join(5)
        assert got == blob

    asyncio.run(main())


def test_wait_for_is_capped_at_the_capacity():
    async def main():
        ring = ByteRing(16)
        await ring.send(b"x" * 10)

        async def consumer():
            await asyncio.sleep(0)
            ring.recv(10)

        task = asyncio.create_task(consumer())
        # asks for more than the ring can ever hold: returns once it is all free, no deadlock
        assert await asyncio.wait_for(ring.wait_for(1 << 20), timeout=5) == 16
        await task

    asyncio.run(main())


def test_bytes_lent_to_a_consumer_that_raises_are_not_lent_again():
    """An output failing mid-chunk (a full disk) must not make the link hand the same bytes to the
    capture file and the decoder a second time (a .tlv with duplicated frames)."""
    ring = ByteRing(16)
    ring.push(b"abcdef")

    def fails(view):
        raise OSError("disk full")

    with pytest.raises(OSError):
        ring.pop_each(16, fails)
    assert len(ring) == 0
    ring.push(b"gh")
    seen = []
    assert ring.pop_each(16, lambda v: seen.append(bytes(v))) == 2 and seen == [b"gh"]


def _reader_of(data: bytes):
    """A readinto that hands data out in pieces of at most 5 bytes, then None (EAGAIN)."""
    src = memoryview(data)
    at = [0]

    def readinto(region: memoryview) -> int | None:
        n = min(5, len(region), len(src) - at[0])
        if not n:
            return None
        region[:n] = src[at[0] : at[0] + n]
        at[0] += n
        return n

    return readinto


def _parked(ring: ByteRing) -> None:
    while not ring.consumer_waiting:
        threading.Event().wait(0.001)


def test_writes_without_wake_leave_the_consumer_parked_until_wake_receiver():
    ring = ByteRing(64)
    woke = threading.Event()
    t = threading.Thread(target=lambda: ring.wait_readable(timeout=30) and woke.set())
    t.start()
    _parked(ring)
    readinto = _reader_of(b"0123456789abc")
    while ring.write_from(readinto, wake=False):
        pass
    assert len(ring) == 13 and ring.consumer_waiting and not woke.is_set()  # parked: nobody woke it
    ring.wake_receiver()
    t.join(30)
    assert woke.is_set() and ring.recv(64) == b"0123456789abc"


def test_a_full_ring_wakes_a_consumer_left_parked_before_the_producer_waits():
    ring = ByteRing(16)
    data = bytes(range(40))
    got = bytearray()

    def consumer() -> None:
        while len(got) < len(data):
            if ring.wait_readable(timeout=30):
                got.extend(ring.recv(16))

    t = threading.Thread(target=consumer)
    t.start()
    _parked(ring)
    readinto = _reader_of(data)
    while ring.write_from(readinto, timeout=30, wake=False):  # a full ring wakes it, or the producer times out
        pass
    ring.wake_receiver()  # the end of the burst: the last bytes
    t.join(30)
    assert bytes(got) == data and ring.producer_waits >= 1
