"""The firmware's rp2 half on the emulated RP2040: synthetic sources through
`picodaq record`, the ADC on both paths with every conversion a code of its
channel and emulated time, the marker pin, STOP/START and a soft reset.

Content is asserted, never samples per wall second: the chip runs at a fraction
of a real one."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from rp2helpers import MARKER_PIN, dma_codes, picodaq, record_instants, stop, stream, timer_codes

from cli_helpers import events
from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.flash.firmware import REPL_ESCAPE, REPL_ESCAPE_PAUSE
from picodaq.transport.link import Link

FMTS = {"int16": C.FMT_INT16, "int24": C.FMT_INT24, "int32": C.FMT_INT32}


def record(board, tmp_path, *args: str, instants: int = 300) -> tuple[np.ndarray, dict]:
    out = tmp_path / "rec.npy"
    stats = record_instants(board.port, out, instants, *args)
    assert stats["samples_lost"] == stats["crc_errors"] == stats["seq_lost"] == stats["decode_errors"] == 0, stats
    assert stats["device_samples_dropped"] == 0 and stats["gaps"] == 0, stats
    return np.load(out), stats


@pytest.mark.parametrize("fmt", list(FMTS))
def test_ramp_bit_exact_through_picodaq_record(rp2040, tmp_path, fmt):
    board = rp2040()
    a, stats = record(board, tmp_path, "--rate", "1000", "--channels", "4", "--fmt", fmt)
    assert len(a) >= 300 and a.shape[1] == 4
    assert np.array_equal(a, ramp_counts(0, len(a), 4, FMTS[fmt]))


def sine_counts(n: int, nch: int, rate: int, bits: int) -> np.ndarray:
    """The firmware's sine (sources.Sine): a 256-entry table stepped by a 32-bit phase per channel."""
    table = np.array([int(29490 * math.sin(2 * math.pi * k / 256)) for k in range(256)], dtype=np.int64)
    out = np.zeros((n, nch), dtype=np.int64)
    for c in range(nch):
        f = (c + 1) * 5
        while 2 * f >= rate and f > 1:
            f //= 2
        step = (f << 32) // rate
        phase = (np.arange(n, dtype=np.uint64) * np.uint64(step)) & np.uint64(0xFFFFFFFF)
        out[:, c] = table[(phase >> np.uint64(24)).astype(np.int64)] << (bits - 16)
    return out


def test_sine(rp2040, tmp_path):
    board = rp2040()
    a, _ = record(board, tmp_path, "--rate", "1000", "--channels", "4", "--fmt", "int24", "--source", "sine")
    want = sine_counts(len(a), 4, 1000, 24)
    # the table is made with rp2's single-precision math.sin: one 16-bit count either way
    assert len(a) >= 300 and np.abs(a - want).max() <= 1 << 8


# -- the internal ADC ------------------------------------------------------------------


def test_adc_timer_path_below_1ksps(rp2040):
    """4 x 100 Hz: a hard timer IRQ reads each instant; every conversion of instant k reads k."""
    board = rp2040()
    board.control("adc", mode="code", unit_ns=10_000_000, origin="first")
    with Link.open(board.port) as link:
        link.get_info()
        s = stream(link, 100, 0xF, C.SRC_ADC, C.FMT_INT16, spf=10, instants=150)
    assert s.final.last_error == C.ST_OK and s.final.samples_dropped == 0 and s.gaps() == []
    assert np.array_equal(s.counts, timer_codes([0, 1, 2, 3], 0, len(s.counts)))


@pytest.mark.parametrize("mask", [0xF, 0x1F, 0x5])
def test_adc_dma_path_from_1ksps(rp2040, mask):
    """Round robin into the FIFO, drained by two chained DMA channels: conversion j
    of the stream reads its channel and j, so order, spacing and losses are exact."""
    board = rp2040()
    chans = [c for c in range(5) if mask >> c & 1]
    rate = 2000 if len(chans) <= 2 else 1000
    board.control("adc", mode="code", unit_ns=1e9 / (rate * len(chans)), origin="first")
    with Link.open(board.port) as link:
        link.get_info()
        periods = []
        link.receiver.block_handlers.append(lambda b: periods.append(b.period_ns))
        s = stream(link, rate, mask, C.SRC_ADC, C.FMT_INT16, spf=20, instants=2 * rate)
    assert s.final.last_error == C.ST_OK and s.final.samples_dropped == 0 and s.gaps() == []
    assert np.array_equal(s.counts, dma_codes(chans, 0, len(s.counts)))
    assert set(periods) == {1_000_000_000 // rate}


# -- the marker pin ----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [100, 1000], ids=["timer-path", "dma-path"])
def test_marker_pin_arrives_at_the_right_sample_index(rp2040, rate):
    """GPIO 15 (picodaq_board.json) rises halfway through instant K of a 4-channel ADC
    stream, five times: each MARKER carries K+1, the first instant sampled after the
    edge, on the timer path (an IRQ per instant) and on the DMA path (blocks of 8 ms,
    where the ring learns a block's instants only when it is done)."""
    board = rp2040()
    period = 1_000_000_000 // rate
    dma = rate * 4 >= 1000
    board.control("adc", mode="code", unit_ns=period / 4 if dma else period, origin="first")
    plan: list[int] = []

    def arm(col):
        if len(plan) >= 5 or col.n < 5:
            return
        origin = board.control("adc")["origin_ns"]
        now = board.control("time")["ns"]
        k = int((now - origin) // period) + 300_000_000 // period + 3 * len(plan)  # 300 ms of emulated time ahead
        plan.append(k)
        board.control("marker", pin=MARKER_PIN, at_ns=origin + (k + 0.5) * period, width_ns=period // 10)

    with Link.open(board.port) as link:
        link.get_info()
        s = stream(link, rate, 0xF, C.SRC_ADC, C.FMT_INT16, spf=rate // 10, instants=rate * 2, during=arm)
    assert s.final.last_error == C.ST_OK and s.gaps() == []
    want = (dma_codes if dma else timer_codes)([0, 1, 2, 3], 0, len(s.counts))
    assert np.array_equal(s.counts, want)
    assert len(plan) == 5
    assert [(m.code, m.sample_index) for m in s.markers] == [(0x8000, k + 1) for k in plan]


# -- stream lifecycle ----------------------------------------------------------------


def test_stop_start_cycles(rp2040):
    """Streams of every kind one after the other on one boot: each counts from 0 and is
    exact; the ADC's DMA channels and timer are given back each time (twelve streams
    claim 16 DMA channels in all: a leak would run out of the RP2040's 12)."""
    board = rp2040()
    plan = [
        (C.SRC_RAMP, C.FMT_INT16, 1000),
        (C.SRC_ADC, C.FMT_INT16, 1000),
        (C.SRC_RAMP, C.FMT_INT32, 500),
        (C.SRC_ADC, C.FMT_INT16, 100),
        (C.SRC_ADC, C.FMT_INT16, 1000),
        (C.SRC_RAMP, C.FMT_INT24, 1000),
    ] * 2
    with Link.open(board.port) as link:
        link.get_info()
        for source, fmt, rate in plan:
            if source == C.SRC_ADC:
                dma = rate * 4 >= 1000
                board.control("adc", mode="code", unit_ns=1e9 / (rate * 4) if dma else 1e9 / rate, origin="first")
                want = dma_codes if dma else timer_codes
            s = stream(link, rate, 0xF, source, fmt, spf=max(10, rate // 50), instants=rate // 4)
            assert s.final.last_error == C.ST_OK and s.final.state == C.STATE_IDLE and s.gaps() == [], s.logs
            assert s.firsts[0] == 0  # every stream counts from 0
            expected = (
                ramp_counts(0, len(s.counts), 4, fmt) if source == C.SRC_RAMP else want([0, 1, 2, 3], 0, len(s.counts))
            )
            assert np.array_equal(s.counts, expected), (source, fmt, rate)
        assert link.ping().status == C.ST_OK
        st = link.get_status()
        assert st.state == C.STATE_IDLE and st.last_error == C.ST_OK


def test_soft_reset_mid_stream_is_recorded_as_a_gap(rp2040, tmp_path):
    """STOP, the firmware's escape to the REPL, Ctrl-D (the chip's own soft reset), START again:
    the capture replays with one gap (a restart) and the ramp from 0 after it."""
    board = rp2040()
    got = bytearray()
    with Link.open(board.port) as link:
        link.raw_taps.append(got.extend)
        link.get_info()
        link.configure(1000, 0x3, C.SRC_RAMP, C.FMT_INT16, 20)
        link.start()
        assert link.pump_until(lambda: link.receiver.stats.samples >= 400, 30)
        link.stop()
        time.sleep(REPL_ESCAPE_PAUSE)  # the escape wants a pause before it: the input, not a wait for a result
        link.write(REPL_ESCAPE)  # idle: the escape hands the board to the REPL
        assert link.pump_until(lambda: b">>> " in got[-200:], 10)
        seen = link.receiver.hellos
        link.write(b"\x04")  # soft reset: main.py runs again and says HELLO
        assert link.pump_until(lambda: link.receiver.hellos > seen, 20)
        link.configure(1000, 0x3, C.SRC_RAMP, C.FMT_INT16, 20)
        link.start()
        n = link.receiver.stats.samples
        assert link.pump_until(lambda: link.receiver.stats.samples >= n + 400, 30)
        link.stop()
    tlv = tmp_path / "cap.tlv"
    tlv.write_bytes(bytes(got))
    r = picodaq("replay", str(tlv), "--out", str(tmp_path / "again.npy"), "--stats-json", "-")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    # the REPL's text between the streams is skipped; the index going back to 0 is the restart
    assert stats["gaps"] == 1 and stats["stream_restarts"] + stats["board_restarts"] >= 1, stats
    assert stats["crc_errors"] == stats["seq_lost"] == stats["samples_lost"] == 0, stats
    gaps = [e for e in events(tmp_path / "again.events.csv") if e["kind"] == "gap"]
    assert len(gaps) == 1 and "restarted" in gaps[0]["detail"], gaps
    a = np.load(tmp_path / "again.npy")
    row = int(gaps[0]["row"])
    assert np.array_equal(a[:row], ramp_counts(0, row, 2, C.FMT_INT16))
    assert np.array_equal(a[row:], ramp_counts(0, len(a) - row, 2, C.FMT_INT16))


@pytest.mark.parametrize(
    "source,rate,mask,fmt",
    [
        (C.SRC_RAMP, 1000, 0xFF, C.FMT_INT16),
        (C.SRC_SINE, 500, 0xF, C.FMT_INT32),
        (C.SRC_ADC, 1000, 0xF, C.FMT_INT16),
        (C.SRC_ADC, 100, 0x3, C.FMT_INT16),
    ],
    ids=["ramp", "sine", "adc-dma", "adc-timer"],
)
def test_free_heap_is_equal_before_and_after_a_stream(rp2040, source, rate, mask, fmt):
    """On the real heap (the rp2 port's; the sample ring took most of it at boot, a reserve is
    left): the heap lock holds, nothing leaks."""
    board = rp2040()
    with Link.open(board.port) as link:
        link.get_info()
        link.configure(rate, mask, source, fmt, 20 if rate >= 1000 else 5)
        link.start()
        during = link.get_status()  # free_heap as the heap lock was taken
        assert during.state == C.STATE_STREAMING
        n = link.receiver.stats.samples
        assert link.pump_until(lambda: link.receiver.stats.samples >= n + rate // 2, 60)
        final = stop(link)
    assert final.last_error == C.ST_OK and final.samples_dropped == 0
    assert during.free_heap == final.free_heap > 10_000  # the ring takes the heap at boot, less a 62 KB reserve


@pytest.mark.parametrize("source", ["ramp", "adc"])
def test_picodaq_record_across_the_ticks_us_wrap(rp2040, tmp_path, source):
    """rp2's ticks_us wraps at 2**30 us (every 17.9 min): block timestamps wrap with it;
    a recording across the wrap has no gap and exact data (the chip's timer starts 4 s short)."""
    import signal

    from cli_helpers import start_picodaq
    from waiting import wait_for

    wrap_ns = (1 << 30) * 1000
    board = rp2040(clock_start_us=(1 << 30) - 4_000_000)
    if source == "adc":
        board.control("adc", mode="code", unit_ns=250_000, origin="first")
    assert board.control("time")["ns"] < wrap_ns - 500_000_000
    out = tmp_path / "rec.npy"
    p = start_picodaq(
        "record",
        "--port",
        board.port,
        "--quiet",
        "--out",
        str(out),
        "--stats-json",
        "-",
        "--rate",
        "1000",
        "--channels",
        "4",
        "--source",
        source,
    )
    try:
        wait_for(
            lambda: board.control("time")["ns"] > wrap_ns + 1_000_000_000,
            timeout=120,
            every=0.1,
            what="the chip's clock past the ticks_us wrap",
        )
        p.send_signal(signal.SIGINT)
        out_text, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    stats = json.loads(out_text)
    assert stats["samples_lost"] == stats["gaps"] == stats["crc_errors"] == 0, stats
    a = np.load(out)
    want = ramp_counts(0, len(a), 4, C.FMT_INT16) if source == "ramp" else dma_codes([0, 1, 2, 3], 0, len(a))
    assert len(a) >= 1000 and np.array_equal(a, want)
