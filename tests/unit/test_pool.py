"""BufferPool and Pool[T]: no buffer lent twice, every loan returned exactly once, honest counters."""

from __future__ import annotations

import gc
import queue
import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hypo import examples
from picodaq import contracts as C
from picodaq.buffers.objpool import Pool
from picodaq.buffers.pool import BufferPool, PoolError


def test_size_classes_come_from_the_contract():
    # next power of two >= 128 over each message's largest frame (14 bytes of overhead)
    expected = sorted({max(128, 1 << (C.OVERHEAD + n - 1).bit_length()) for n in C.MAX_PAYLOAD_BY_TYPE.values()})
    assert list(C.POOL_SIZE_CLASSES) == expected
    pool = BufferPool()
    assert pool.classes == C.POOL_SIZE_CLASSES
    for size, cls in [(0, 128), (128, 128), (129, 256), (256, 256), (257, 8192), (C.MAX_FRAME, 8192)]:
        assert pool.class_for(size) == cls
        with pool.acquire(size) as loan:
            assert len(loan.buffer) == cls and loan.size == size and loan.pooled
    assert pool.class_for(8193) is None


class PoolModel(RuleBasedStateMachine):
    """A model of the pool that predicts every acquire: the class that serves it, whether it is a hit
    (and then which buffer: the last one returned to that class, LIFO), a new pooled buffer (while the
    class is under its cap) or a fallback (a plain allocation of exactly the size asked for)."""

    CLASSES = (128, 256, 1024)

    @initialize(cap=st.integers(0, 3))
    def start(self, cap):
        self.pool = BufferPool(classes=self.CLASSES, cap=cap)
        self.cap = cap
        self.held = []
        self.acquires = 0
        self.released = 0
        self.free: list[list[bytearray]] = [[] for _ in self.CLASSES]  # per class, last returned last
        self.made = [0] * len(self.CLASSES)  # pooled buffers created per class
        self.seen: set[int] = set()  # ids of every pooled buffer ever lent (kept alive by self.known)
        self.known: list[bytearray] = []
        self.hits = self.allocations = self.fallbacks = 0

    @rule(size=st.one_of(st.integers(0, 1100), st.sampled_from([0, 128, 129, 256, 257, 1024, 1025])))
    def acquire(self, size):
        cls = next((i for i, c in enumerate(self.CLASSES) if c >= size), None)
        loan = self.pool.acquire(size)
        self.acquires += 1
        assert loan.size == size and not loan.released
        if cls is not None and self.free[cls]:  # a hit: the buffer returned last to this class
            assert loan.pooled and loan.buffer is self.free[cls].pop()
            self.hits += 1
        elif cls is not None and self.made[cls] < self.cap:  # the class grows by one buffer
            assert loan.pooled and len(loan.buffer) == self.CLASSES[cls] and id(loan.buffer) not in self.seen
            self.made[cls] += 1
            self.allocations += 1
            self.seen.add(id(loan.buffer))
            self.known.append(loan.buffer)
        else:  # class exhausted (or none big enough): a plain buffer of exactly the size, never pooled
            assert not loan.pooled and len(loan.buffer) == size and id(loan.buffer) not in self.seen
            self.fallbacks += 1
        loan.buffer[:size] = bytes([len(self.held) % 256]) * size  # the borrower writes all of it
        self.held.append((loan, cls))

    @precondition(lambda self: self.held)
    @rule(which=st.integers(0, 1000), use_with=st.booleans())
    def release(self, which, use_with):
        loan, cls = self.held.pop(which % len(self.held))
        pooled = loan.pooled
        if use_with:
            with loan:
                pass
        else:
            loan.release()
        self.released += 1
        assert loan.released
        if pooled:
            self.free[cls].append(loan.buffer)  # back to its class, to be lent next
        with pytest.raises(PoolError):
            loan.release()  # exactly once

    @invariant()
    def no_buffer_lent_twice(self):
        ids = [id(loan.buffer) for loan, _ in self.held]
        assert len(ids) == len(set(ids))

    @invariant()
    def counters_agree(self):
        s = self.pool.stats
        assert s.acquires == self.acquires
        assert s.returns == self.released
        assert s.in_use == len(self.held)
        assert (s.hits, s.allocations, s.fallbacks) == (self.hits, self.allocations, self.fallbacks)
        assert s.free == sum(len(f) for f in self.free)
        assert s.allocations <= 3 * self.pool.caps[0]
        assert 0.0 <= s.hit_rate <= 1.0

    def teardown(self):
        for loan, _ in self.held:
            loan.release()
        s = self.pool.stats
        assert s.in_use == 0 and s.returns == s.acquires and s.leaked == 0


TestPoolModel = PoolModel.TestCase
TestPoolModel.settings = settings(max_examples=examples(100), stateful_step_count=40)


def test_exhaustion_falls_back_without_blocking_and_is_counted():
    pool = BufferPool(classes=(128,), cap=2)
    a, b = pool.acquire(10), pool.acquire(10)
    c = pool.acquire(10)  # the class is at its cap and all lent: a plain allocation
    big = pool.acquire(5000)  # larger than every class
    assert not c.pooled and not big.pooled and len(big.buffer) == 5000
    s = pool.stats
    assert (s.allocations, s.fallbacks, s.in_use, s.hits) == (2, 2, 4, 0)
    for loan in (a, b, c, big):
        loan.release()
    d = pool.acquire(100)
    assert d.buffer is b.buffer  # pooled buffers are reused, last in first out
    s = pool.stats
    assert (s.allocations, s.hits, s.in_use, s.returns, s.free) == (2, 1, 1, 4, 1)
    assert s.hit_rate == pytest.approx(1 / 5)


def test_a_loan_collected_unreleased_is_returned_and_counted_as_leaked():
    pool = BufferPool(classes=(128,), cap=4)
    loan = pool.acquire(64)
    buf = loan.buffer
    del loan
    gc.collect()
    s = pool.stats
    assert s.leaked == 1 and s.in_use == 0 and s.returns == 1
    again = pool.acquire(64)
    assert again.buffer is buf and pool.stats.allocations == 1  # the buffer came back, not a new one
    again.release()


def test_release_from_another_thread():
    pool = BufferPool(cap=64)
    handoff: queue.Queue = queue.Queue(maxsize=50)

    def releaser():
        while (loan := handoff.get()) is not None:
            loan.release()

    t = threading.Thread(target=releaser)
    t.start()
    for _ in range(20_000):
        handoff.put(pool.acquire(600))
    handoff.put(None)
    t.join(30)
    s = pool.stats
    assert s.acquires == s.returns == 20_000 and s.in_use == 0
    assert s.allocations <= 64 and s.hits + s.allocations + s.fallbacks == 20_000


def test_object_pool_reuses_and_counts():
    made = []

    def factory():
        made.append(object())
        return made[-1]

    pool: Pool[object] = Pool(factory, cap=2)
    a, b, c = pool.take(), pool.take(), pool.take()
    assert len(made) == 3
    for x in (a, b, c):
        pool.give(x)  # the third is beyond the cap: dropped
    s = pool.stats
    assert (s.created, s.takes, s.in_use, s.free, s.discarded, s.overflows) == (3, 3, 0, 2, 1, 1)
    assert pool.take() is b and pool.take() is a and len(made) == 3
    s = pool.stats
    assert (s.hits, s.in_use, s.returns) == (2, 2, 3)
    pool.lost()
    assert pool.stats.in_use == 1 and pool.stats.lost == 1
