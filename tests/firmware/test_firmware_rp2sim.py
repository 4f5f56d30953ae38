"""hal_rp2 on the unix port, over simulated rp2 peripherals (tests/fw/rp2sim.py).

The real App and the real hal_rp2 run; only `machine`, `rp2` and part of
`micropython` are stand-ins. The simulated interrupts fire from inside the
heap-locked streaming loop, so an IRQ handler that allocates faults the stream
as it would on the board, and every sample reaches the host through the pty to
be checked bit-exactly: the ADS1299 model sends the PROTOCOL.md ramp in 24
bits, the ADC model a known pattern per channel.

What this cannot show: register-level behaviour of the real chips (the models
follow the datasheets as hal_rp2 reads them), timing, and IRQ latency."""
from __future__ import annotations

import numpy as np
import pytest

from fwhelpers import (RawPort, Recording, boot_board, check_overflow, configure_args, read_until_resumed,
                       stop_raw, stop_stream)
from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.errors import CommandFailed
from picodaq.transport.link import Link


def adc_counts(first: int, n: int, nch: int, fmt: int, chans=(0, 1, 2, 3, 4)) -> np.ndarray:
    """The simulated ADC: conversion k of channel c reads (7k + 512c) mod 4096."""
    k = first + np.arange(n)[:, None]
    c = np.array(chans[:nch])[None, :]
    return ((k * 7 + c * 512) & 0xFFF).astype(np.int32)


@pytest.fixture
def sim():
    """sim(env, board_json) -> (Link, board) for a board running hal_rp2 on rp2sim."""
    made: list = []
    links: list[Link] = []

    def make(env: dict | None = None, board_json: dict | None = None) -> tuple[Link, object]:
        board = boot_board(made, {"FWTEST_RP2SIM": "1", **(env or {})}, unpaced=False, board_json=board_json)
        link = Link.open(board.port)
        links.append(link)
        return link, board

    yield make
    for link in links:
        link.close()
    for b in made:
        b.stop()


def refusal(link: Link, **kw) -> tuple[int, str]:
    logs = link.receiver.log_count
    try:
        link.command(C.OP_CONFIGURE, configure_args(**kw))
    except CommandFailed as e:
        assert link.pump_until(lambda: link.receiver.log_count > logs, 30)
        return e.status, link.log_texts()[-1]
    raise AssertionError(f"CONFIGURE {kw} was accepted")


def stream(link: Link, rec: Recording, instants: int, rate: int, mask: int, source: int, fmt: int, spf: int):
    """Stream until `instants` instants arrived (however long a loaded machine takes), then STOP."""
    link.configure(rate, mask, source, fmt, spf)
    link.receiver.block_handlers.append(rec)
    link.start()
    assert link.pump_until(lambda: sum(rec.sizes) >= instants, 120), f"{sum(rec.sizes)} of {instants} instants"
    return stop_stream(link)


def test_hello_and_refusals_on_rp2(sim):
    link, _ = sim()
    hello = link.get_info()
    assert hello.platform == "rp2" and hello.max_channels == 8 and hello.max_rate == 200_000
    assert hello.board_id == "e6614104032f1a2b"  # machine.unique_id()
    checks = [
        (dict(mask=0x1FF), C.ST_BAD_ARGUMENT, "channel 8 not on this board"),
        (dict(source=C.SRC_ADC, fmt=C.FMT_INT24), C.ST_UNSUPPORTED, "int16"),
        (dict(source=C.SRC_ADC, mask=0x20), C.ST_UNSUPPORTED, "channels 0-3"),
        (dict(source=C.SRC_ADC, mask=0x1, rate=300), C.ST_UNSUPPORTED, "dividing 1000000"),
        (dict(source=C.SRC_ADS1299, fmt=C.FMT_INT16), C.ST_UNSUPPORTED, "fmt 2"),
        (dict(source=C.SRC_ADS1299, fmt=C.FMT_INT24, rate=300), C.ST_UNSUPPORTED, "250, 500"),
        (dict(rate=60_000, mask=0xFF), C.ST_BAD_ARGUMENT, "exceeds"),
    ]
    for kw, code, text in checks:
        got, why = refusal(link, **kw)
        assert got == code and text in why, (kw, got, why)


def test_no_ads1299_answering_is_unsupported_with_the_reason(sim):
    link, _ = sim(env={"FWTEST_RP2SIM_ADS": "0"})
    code, why = refusal(link, source=C.SRC_ADS1299, fmt=C.FMT_INT24)
    assert code == C.ST_UNSUPPORTED and "no ADS1299 answered on SPI0" in why


def test_a_bad_board_file_still_boots(sim):
    link, _ = sim(board_json={"ads1299": {"baud": "fast"}, "marker_pin": "GP15"})
    assert link.get_info().platform == "rp2"
    code, why = refusal(link, source=C.SRC_ADS1299, fmt=C.FMT_INT24)
    assert code == C.ST_UNSUPPORTED and "ADS1299 setup failed" in why


@pytest.mark.parametrize("path", ["dma", "irq"])
@pytest.mark.parametrize("mask", [0xFF, 0x0F])
def test_ads1299_streams_24_bit_samples_bit_exactly(sim, mask, path):
    """Both ways the driver reads frames: DMA paced from DRDY (the default) and the DRDY IRQ."""
    link, board = sim(board_json={"ads1299": {"dma": path == "dma"}})
    nch = bin(mask).count("1")
    rec = Recording(C.FMT_INT24, nch)
    final = stream(link, rec, 1500, rate=1000, mask=mask, source=C.SRC_ADS1299, fmt=C.FMT_INT24, spf=25)
    assert final.last_error == C.ST_OK and final.samples_dropped == 0, link.log_texts()
    assert rec.checked >= 40 and rec.bad == [] and rec.gaps() == []
    s = link.receiver.stats
    assert s.crc_errors == s.samples_lost == s.decode_errors == 0
    regs = (board.flash / "ads1299_regs.bin").read_bytes()  # as written before START
    assert regs[1] == 0x94  # CONFIG1: 1 kSPS
    assert regs[2] == 0xC0 and regs[3] == 0xE0  # no test signal; internal reference on
    for ch in range(8):
        assert regs[5 + ch] == (0x60 if mask >> ch & 1 else 0x81), ch  # gain 24 normal / powered down


def test_ads1299_gain_input_and_rate_from_the_board_file(sim):
    """16 kSPS is the simulation's heaviest rate (an event per DRDY, on the wall clock): on a loaded
    machine (a stress run: pytest -n 4 beside a CPU burner) the board once overran its ring, host
    and board starved. What this test is about (the registers, every value exact) holds either way;
    an overrun must then be said and seen: the board's log, and the host's count of lost instants
    equal to the jumps in first_sample_index (the overrun's own test checks its exact sums)."""
    link, board = sim(board_json={"ads1299": {"gain": 8, "input": "test", "srb1": True}})
    rec = Recording(C.FMT_INT24, 2)
    final = stream(link, rec, 3200, rate=16000, mask=0x3, source=C.SRC_ADS1299, fmt=C.FMT_INT24, spf=160)
    assert rec.bad == [] and rec.checked == len(rec.sizes) and sum(rec.sizes) >= 3200  # every block checked
    lost = sum(n for _, n in rec.gaps())
    assert link.receiver.stats.samples_lost == lost
    if final.last_error == C.ST_OK:
        assert final.samples_dropped == 0 and lost == 0
    else:
        assert final.last_error == C.ST_OVERRUN and final.samples_dropped >= lost, final
        assert any("ring overflowed" in text for text in link.log_texts()), link.log_texts()
    regs = (board.flash / "ads1299_regs.bin").read_bytes()
    assert regs[1] == 0x90 and regs[2] == 0xD0  # 16 kSPS; internal test signal
    assert regs[5] == regs[6] == 0x45  # gain 8, test input
    assert regs[0x15] == 0x20  # SRB1 closed


def test_internal_adc_dma_at_100_ksps_aggregate(sim):
    """4 channels round robin at 25 kHz: the DMA ping-pong path."""
    link, _ = sim()
    rec = Recording(C.FMT_INT16, 4, expected=adc_counts)
    final = stream(link, rec, 37_500, rate=25_000, mask=0xF, source=C.SRC_ADC, fmt=C.FMT_INT16, spf=250)
    assert sum(rec.sizes) >= 37_500 and rec.bad == []  # every instant that arrived is the ADC's, bit-exact
    # the simulated ADC runs on the host's clock: a machine too busy to run the firmware for a while
    # makes it drop, as a Pico's would if starved; then the board reports an overrun, and the host
    # counts exactly the jumps in first_sample_index, at most the board's count (what it dropped
    # after the last frame it sent before STOP shows in no jump: 96 instants when the ADS1299 test's
    # board was stopped for 2 s; the stall tests check the exact sums)
    s = link.receiver.stats
    lost = sum(n for _, n in rec.gaps())
    assert s.samples_lost == lost and final.samples_dropped >= lost, (rec.gaps(), final)
    if final.samples_dropped:
        assert final.last_error == C.ST_OVERRUN and "ring overflowed" in " ".join(link.log_texts())
    else:
        assert final.last_error == C.ST_OK, link.log_texts()
    assert s.crc_errors == s.decode_errors == s.seq_lost == 0
    periods = []  # blocks are pooled: keep what is needed, not the block
    link.receiver.block_handlers[:] = [lambda block: periods.append(block.period_ns)]
    assert link.start().status == C.ST_OK
    assert link.pump_until(lambda: periods, 30)
    stop_stream(link)
    assert periods[0] == 40_000  # 4 x 480 cycles of 48 MHz


def test_internal_adc_timer_path_with_the_temperature_channel(sim):
    link, _ = sim()
    rec = Recording(C.FMT_INT16, 5, expected=adc_counts)
    final = stream(link, rec, 120, rate=100, mask=0x1F, source=C.SRC_ADC, fmt=C.FMT_INT16, spf=10)
    assert final.last_error == C.ST_OK, link.log_texts()
    assert sum(rec.sizes) >= 80 and rec.bad == [] and rec.gaps() == []


def test_gpio_marker_edges_become_markers(sim):
    # every 50th pass of the streaming loop (it sleeps until a frame is due: ~4 passes a frame)
    link, _ = sim(env={"FWTEST_MARKER_EVERY": "50"}, board_json={"marker_pin": 15})
    rec = Recording(C.FMT_INT16, 4, expected=adc_counts)
    link.configure(25_000, 0xF, C.SRC_ADC, C.FMT_INT16, 250)
    link.receiver.block_handlers.append(rec)
    link.start()
    assert link.pump_until(lambda: len(link.receiver.markers) >= 3, 30)
    final = stop_stream(link)
    markers = link.receiver.markers
    assert {m.code for m in markers} == {0x8000}
    idx = [m.sample_index for m in markers]
    # a marker is for an instant the board sampled: at most what was delivered, then the frames
    # its ring held at most (a loaded machine's backlog, not sent once STOP came), then the frame
    # being filled (a bound of one frame past the last delivered failed under load by 39 instants)
    sampled = rec.first[-1] + rec.sizes[-1] + (final.ring_high_water + 1) * 250
    assert idx == sorted(idx) and 0 < idx[0] and idx[-1] < sampled
    assert rec.bad == []


@pytest.mark.parametrize("source", [C.SRC_ADC, C.SRC_ADS1299])
def test_irq_samplers_fill_and_overflow_the_ring_while_the_link_is_stalled(sim, source):
    """rp2's CDC write making no progress for 1.5 s (emulated at the HAL): the
    DMA and DRDY handlers keep filling the ring, then drop and count; the
    stream resumes with one jump in first_sample_index equal to the count."""
    made: list = []
    board = boot_board(made, {"FWTEST_RP2SIM": "1", "FWTEST_STALL": "300,1500"}, unpaced=False)
    port = RawPort(board.port)
    try:
        if source == C.SRC_ADC:
            args = configure_args(rate=5000, mask=0xF, source=source, fmt=C.FMT_INT16, spf=50)
            rec = Recording(C.FMT_INT16, 4, expected=adc_counts)
        else:
            args = configure_args(rate=2000, mask=0xFF, source=source, fmt=C.FMT_INT24, spf=20)
            rec = Recording(C.FMT_INT24, 8, expected=ramp_counts)
        assert port.command(C.OP_CONFIGURE, args).status == C.ST_OK
        port.rx.block_handlers.append(rec)
        assert port.command(C.OP_START).status == C.ST_OK
        read_until_resumed(port, rec, capacity_share=0.3)  # the stall, the overflow, the stream after it
        final = stop_raw(port)
        check_overflow(port, rec, final, capacity_share=0.3)
        assert len(rec.gaps()) == 1
        assert final.ring_high_water >= final.ring_capacity - 50
    finally:
        port.close()
        for b in made:
            b.stop()
