"""Faults on the real rp2 port: the ring overflowing behind a host that stops
reading, an allocation under the heap lock, the counters that pass 2**30 and
2**32 in the field (31-bit small ints on rp2), and `record --reconnect` across an unplug."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
from rp2helpers import dma_codes, run_driver, stream

from cli_helpers import Lines, events, file_grows_past, start_picodaq
from fwhelpers import RawPort, Recording, check_overflow, configure_args
from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.transport.link import Link
from waiting import wait_for


@pytest.mark.parametrize("source", ["adc", "ramp"])
def test_ring_overflows_when_the_host_stops_reading_for_2_s(rp2040, source):
    """The host holds the port and reads nothing for 2 s of the chip's time, or 1 s more than
    the ring holds if that is longer: the CDC IN transfers stall, the firmware's writes block,
    the sampler keeps filling the ring (adc: 4 x 5 kHz on the DMA path, 128 frames of 50
    instants, 1.28 s; ramp: 4 x 4 kHz from the main loop's pacer, which catches up after each
    blocked write, 128 frames of 80 instants, 2.56 s), then drops and counts; the jump in
    first_sample_index equals STATUS samples_dropped."""
    board = rp2040()
    chans = [0, 1, 2, 3]
    if source == "adc":
        board.control("adc", mode="code", unit_ns=1e9 / 20_000, origin="first")
        args = configure_args(5000, 0xF, C.SRC_ADC, C.FMT_INT16, 50)
        expected = lambda first, n, nch, fmt: dma_codes(chans, first, n)  # noqa: E731
    else:
        args = configure_args(4000, 0xF, C.SRC_RAMP, C.FMT_INT16, 80)
        expected = ramp_counts
    port = RawPort(board.port)
    try:
        rec = Recording(C.FMT_INT16, 4, expected=expected)
        assert port.command(C.OP_CONFIGURE, args).status == 0
        port.rx.block_handlers.append(rec)
        assert port.command(C.OP_START).status == C.ST_OK
        assert port.read_until(lambda: len(rec.first) >= 20, 30), "no data before the stall"
        assert port.read_until(lambda: port.rx.status is not None and port.rx.status.ring_capacity > 0, 30)
        rate = 5000 if source == "adc" else 4000
        stall = max(2.0, port.rx.status.ring_capacity / rate + 1.0)
        t = board.control("time")["ns"]
        board.wait_emulated(t + stall * 1e9)  # reading nothing meanwhile
        held = board.control("stats")["in_held"]

        def went_on() -> bool:  # the ring drained, and the stream went on well past the gap
            gaps = rec.gaps()
            cap = port.rx.status.ring_capacity if port.rx.status else 0
            return bool(gaps) and sum(n for f, n in zip(rec.first, rec.sizes) if f > gaps[-1][0]) >= 0.5 * cap > 0

        assert port.read_until(went_on, 120), f"gaps {rec.gaps()}, {len(rec.first)} blocks"
        n = port.rx.statuses
        assert port.command(C.OP_STOP).status == C.ST_OK
        assert port.read_until(lambda: port.rx.statuses > n and port.rx.status.state == C.STATE_IDLE, 10)
        final = port.rx.status
        assert held >= 1, "the chip's CDC IN transfers never stalled"
        check_overflow(port, rec, final, capacity_share=0.3)
        assert len(rec.gaps()) == 1
        assert final.ring_high_water >= final.ring_capacity - 50
    finally:
        port.close()


def _faulted(link: Link) -> list[str]:
    seen: list[str] = []
    link.receiver.log_handlers.append(lambda log: seen.append(log.text))
    link.command(C.OP_START, timeout=5)

    def faulted() -> bool:
        return link.receiver.status is not None and link.receiver.status.state == C.STATE_FAULTED

    assert link.pump_until(faulted, 30), seen
    assert link.receiver.status.last_error == C.ST_INTERNAL
    assert link.pump_until(lambda: any("streaming stopped" in t for t in seen), 5), seen
    return seen


def test_an_allocation_in_the_streaming_path_faults_and_the_board_still_answers(rp2040):
    """The heap lock on the real port: an allocation on the 200th pass of the
    streaming loop raises MemoryError; STATUS says faulted, PING is still answered."""
    board = rp2040()
    run_driver(board, inject_at=200)
    with Link.open(board.port) as link:
        link.get_info()
        assert link.command(C.OP_CONFIGURE, configure_args(1000, 0xF), timeout=5).status == C.ST_OK
        seen = _faulted(link)
        assert any("MemoryError" in t for t in seen), seen
        assert link.ping().status == C.ST_OK
        st = link.get_status()
        assert st.state == C.STATE_IDLE and st.last_error == C.ST_INTERNAL
        s = stream(link, 1000, 0xF, instants=300)  # and it streams again
        assert s.final.last_error == C.ST_OK and np.array_equal(s.counts, ramp_counts(0, len(s.counts), 4, C.FMT_INT16))


TICKS_WRAP_US = 1 << 30


def test_counters_cross_2_30_and_2_32_under_the_heap_lock(rp2040):
    """The sample index starts 1000 short of 2**30, seq 16 frames short of 2**32,
    uptime 16 ms short of 2**30 ms, and the chip's timer 6 s short of ticks_us's
    2**30 wrap: the stream runs across all four with no fault and exact frames."""
    board = rp2040(clock_start_us=TICKS_WRAP_US - 6_000_000)
    run_driver(board, near_limits=True)
    with Link.open(board.port) as link:
        link.get_info()

        def until_the_wrap(col):
            if col.n >= 2000 and board.control("time")["ns"] < (TICKS_WRAP_US + 500_000) * 1000:
                col.n = 1999  # keep streaming until ticks_us has wrapped

        s = stream(link, 1000, 0xFF, C.SRC_RAMP, C.FMT_INT16, spf=16, instants=2000, during=until_the_wrap, timeout=180)
        after = board.control("time")["ns"]
    assert after > TICKS_WRAP_US * 1000
    assert s.final.last_error == C.ST_OK, s.logs
    first = (1 << 30) - 1000
    assert s.firsts[0] == first and s.firsts[-1] > 1 << 30  # the index crossed 2**30
    # the ramp's values count from the stream's start (the preset index is the driver's, not the source's)
    assert s.gaps() == [] and np.array_equal(s.counts, ramp_counts(0, len(s.counts), 8, C.FMT_INT16))
    assert s.final.frames_sent < 10_000  # seq crossed 2**32 and wrapped
    assert s.final.uptime_ms >= 1 << 30  # uptime crossed 2**30 ms
    assert s.stats["seq_lost"] == s.stats["samples_lost"] == s.stats["crc_errors"] == 0


def test_record_reconnect_across_an_unplug(rp2040, tmp_path):
    board = rp2040(unplug_seconds=1.0)
    tlv, npy = tmp_path / "rec.tlv", tmp_path / "rec.npy"
    p = start_picodaq(
        "record",
        "--port",
        board.port,
        "--channels",
        "3",
        "--rate",
        "1000",
        "--out",
        str(tlv),
        "--out",
        str(npy),
        "--stats-json",
        "-",
        "--reconnect",
    )
    lines = Lines(p.stderr)
    try:
        wait_for(file_grows_past(tlv, 3000), timeout=60, what="data")
        board.unplug()
        lines.wait_for("link lost", 30)
        lines.wait_for("reconnected", 60)
        size = tlv.stat().st_size
        wait_for(file_grows_past(tlv, size + 3000), timeout=60, what="data after the reconnect")
        p.send_signal(signal.SIGINT)
        out = p.stdout.read()
        p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, lines.join()
    stats = json.loads(out)
    assert stats["reconnects"] == 1 and stats["gaps"] >= 1 and stats["crc_errors"] == 0, stats
    a = np.load(npy)
    gaps = [e for e in events(tmp_path / "rec.events.csv") if e["kind"] == "gap"]
    restarted = [int(e["row"]) for e in gaps if "restarted" in e["detail"]]
    assert restarted, gaps
    row = restarted[-1]
    # the unplugged Pico lost power: after the gap the ramp starts again from 0
    assert np.array_equal(a[row:], ramp_counts(0, len(a) - row, 3, C.FMT_INT16))
    assert np.array_equal(a[: gaps[0] and int(gaps[0]["row"])], ramp_counts(0, int(gaps[0]["row"]), 3, C.FMT_INT16))


def test_a_command_sent_while_the_firmware_loads_is_answered(rp2040):
    """The port is there as soon as USB is up, a second before main.py has loaded the
    app: a CONFIGURE sent then (its opcode byte is 0x03) must not interrupt main.py."""
    board = rp2040(ready=False)
    port = RawPort(board.port)
    try:
        assert port.command(C.OP_CONFIGURE, configure_args(1000, 0xF), timeout=60).status == C.ST_OK
        assert port.command(C.OP_PING).status == C.ST_OK
    finally:
        port.close()
