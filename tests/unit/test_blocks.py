"""Sample blocks (zero-copy numpy views, every format), processing stages, the host clock."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypo import examples
from picodaq import contracts as C
from picodaq.bench.frames import encode_counts
from picodaq.buffers.pool import PoolError
from picodaq.core.blocks import BlockView, SamplesBlock, decode_block, decode_counts, ramp_counts
from picodaq.core.clock import HostClock
from picodaq.core.primary import BlockQueue
from picodaq.core.receiver import Receiver
from picodaq.core.stages import ScaleToUnits, Stage, run
from picodaq.protocol.frames import encode_frame, samples_payload

FORMATS = [C.FMT_INT16, C.FMT_INT24, C.FMT_INT32]


def frame_of(
    counts: np.ndarray, fmt: int, first: int = 0, seq: int = 0, t0: int = 1000, period_ns: int = 1_000_000
) -> bytes:
    ns, nch = counts.shape
    data = encode_counts(counts, fmt).tobytes()
    return encode_frame(C.MSG_SAMPLES, seq, samples_payload(first, t0, period_ns, nch, fmt, ns, data))


def counts_strategy(fmt):
    bits = 8 * C.BYTES_PER_SAMPLE[fmt]
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return st.integers(1, 8).flatmap(
        lambda nch: st.integers(1, 40).flatmap(
            lambda ns: st.lists(st.integers(lo, hi), min_size=nch * ns, max_size=nch * ns).map(
                lambda v: np.array(v, dtype=np.int32).reshape(ns, nch)
            )
        )
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_exactly_through_the_receiver(fmt):
    @settings(max_examples=examples(40))
    @given(counts_strategy(fmt))
    def check(counts):
        q = BlockQueue()
        rx = Receiver(primary=q)
        rx.receive(frame_of(counts, fmt, first=5, t0=77, period_ns=250_000))
        with q.get() as b:
            assert b.counts.dtype == np.int32 and b.counts.shape == counts.shape
            assert np.array_equal(b.counts, counts)
            assert np.array_equal(b.channels, counts.T) and np.shares_memory(b.channels, b.counts)
            assert (b.first_index, b.t0_us, b.period_ns, b.n_channels, b.fmt) == (5, 77, 250_000, counts.shape[1], fmt)
        assert rx.pool_stats.in_use == 0 and rx.block_stats.in_use == 0
        assert np.array_equal(decode_counts(encode_counts(counts, fmt).tobytes(), fmt, *counts.shape[::-1]), counts)

    check()


def test_int24_extremes_are_sign_extended():
    v = np.array([[-(1 << 23), (1 << 23) - 1, 0, -1, 1, 0x123456, -0x123456, 0x7F00FF]], dtype=np.int32)
    assert np.array_equal(decode_counts(encode_counts(v, C.FMT_INT24).tobytes(), C.FMT_INT24, 8, 1), v)


def test_int32_counts_are_a_view_of_the_pooled_buffer_and_aligned():
    q = BlockQueue()
    rx = Receiver(primary=q)
    counts = ramp_counts(0, 16, 3, C.FMT_INT32)
    rx.receive(frame_of(counts, C.FMT_INT32))
    b = q.get()
    assert b.counts.base is not None and b.counts.flags.aligned and b.counts.flags.writeable
    assert bytes(b.raw) == frame_of(counts, C.FMT_INT32)
    assert np.shares_memory(b.counts, np.frombuffer(b.raw, dtype=np.uint8))  # zero copy
    b.release()
    with pytest.raises(PoolError):
        b.counts  # noqa: B018
    with pytest.raises(PoolError):
        b.release()


def test_observers_get_read_only_views_and_owners_may_write():
    q = BlockQueue()
    rx = Receiver(primary=q)
    seen = []

    def observer(view):
        assert isinstance(view, BlockView)
        with pytest.raises(ValueError):
            view.counts[0, 0] = 1
        with pytest.raises(ValueError):
            view.channels[0, 0] = 1
        seen.append(view.copy())  # what outlives the call is a copy

    rx.taps.add(observer)
    counts = ramp_counts(100, 10, 2, C.FMT_INT16)
    rx.receive(frame_of(counts, C.FMT_INT16, first=100))
    with q.get() as b:
        b.counts[0, 0] = 42  # the owner's data
        assert b.counts[0, 0] == 42
    assert np.array_equal(seen[0].counts, counts) and seen[0].first_index == 100


def test_copy_and_decode_block_are_detached():
    counts = ramp_counts(7, 5, 4, C.FMT_INT24)
    frame = frame_of(counts, C.FMT_INT24, first=7)
    payload = frame[C.HEADER_SIZE : -C.CRC_SIZE]
    b = decode_block(payload)
    assert np.array_equal(b.counts, counts) and b.first_index == 7
    assert list(b.indices) == [7, 8, 9, 10, 11]
    assert np.allclose(b.device_times_us, 1000 + np.arange(5) * 1000.0)
    b.release()  # detached: nothing to give back
    legacy = SamplesBlock(3, 10, 1000, 4, C.FMT_INT32, 5, counts)
    assert legacy.counts is counts and legacy.t0_us == 10 and legacy.period_ns == 1000


def test_scaling_stage_in_place_and_on_a_view():
    stage = ScaleToUnits.ads1299_microvolts(gain=24)
    lsb_uv = 4.5 / 24 / (1 << 23) * 1e6
    assert stage.scale == pytest.approx(lsb_uv) and stage.unit == "uV"
    counts = np.array([[(1 << 23) - 1, -(1 << 23), 0, 1000]], dtype=np.int32)
    q = BlockQueue()
    rx = Receiver(primary=q)
    results = []
    rx.taps.add(lambda view: results.append(run(stage, view)))  # an observer: read-only, a new array
    rx.receive(frame_of(counts, C.FMT_INT24))
    expected = counts * lsb_uv
    assert results[0].dtype == np.float64 and np.allclose(results[0], expected)
    with q.get() as b:
        before = b.counts
        values = run(stage, b)  # the owner: in place, float32 over the block's own memory
        assert values.dtype == np.float32 and np.shares_memory(values, before)
        assert np.allclose(values, expected, rtol=1e-6) and np.allclose(b.values, expected, rtol=1e-6)
        assert b.unit == "uV"
        with pytest.raises(ValueError):
            b.counts  # noqa: B018  (the counts were overwritten)
    volts = ScaleToUnits.rp2_adc_volts()
    assert volts.process(SamplesBlock(0, 0, 0, 1, C.FMT_INT32, 2, np.array([[0], [4095]], dtype=np.int32)).view)[
        1, 0
    ] == pytest.approx(3.3 * 4095 / 4096)
    with pytest.raises(ValueError):
        ScaleToUnits.ads1299_microvolts(gain=3)

    class Mean(Stage):
        def process(self, view):
            return view.counts.mean(axis=0)

    assert np.allclose(run(Mean(), SamplesBlock(0, 0, 0, 2, C.FMT_INT32, 2, np.ones((2, 2), np.int32))), 1.0)


def test_clock_unwraps_the_ticks_period():
    clock = HostClock()
    p = C.TICKS_PERIOD
    ticks = [p - 3000, p - 1000, 500, 2500, p - 100]  # wraps once, then far backwards: a restart
    got = [clock.unwrap(t) for t in ticks]
    assert got[:4] == [p - 3000, p - 1000, p + 500, p + 2500]
    assert got[4] == p - 100 and clock.restarts == 1
    assert clock.unwrap_near(10, p - 5, 7 * p - 5) == 7 * p + 10  # near a reference, across the wrap


def test_clock_fit_removes_the_host_read_jitter():
    rng = random.Random(5)
    clock = HostClock()
    drift = 1 + 40e-6  # the device's crystal runs 40 ppm fast against the host
    host0 = 5000.0
    worst_arrival = best = 0.0
    for i in range(3000):  # 30 s: a block every 10 ms, read 0.1 to 8 ms late
        dev = (123_456_789 + i * 10_000) % C.TICKS_PERIOD
        true_host = host0 + i * 0.010 / drift
        arrival = true_host + 0.0001 + rng.expovariate(1 / 0.002) % 0.008
        worst_arrival = max(worst_arrival, arrival - true_host)
        clock.observe(clock.unwrap(dev), arrival)
    for i in (2000, 2500, 2999):
        dev = clock.unwrap_near((123_456_789 + i * 10_000) % C.TICKS_PERIOD, clock.ref_raw, clock.ref_dev)
        err = clock.host_time(dev) - (host0 + i * 0.010 / drift)
        best = max(best, abs(err))
    assert worst_arrival > 0.007
    assert best < 0.0005  # within the least delay, well under the read jitter
    assert clock.slope == pytest.approx(1e-6 / drift, rel=1e-5)  # the 40 ppm are seen
