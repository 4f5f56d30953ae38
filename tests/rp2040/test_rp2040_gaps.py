"""Each rp2040js 1.4.1 gap of shared/rp2sim/NOTES.md: the failure with the
runner's handling switched off (--without GAP), the success with it."""

from __future__ import annotations

import numpy as np
import pytest
from rp2helpers import Repl, code_channel, dma_codes, port_exists, stream, wait_for_firmware

from picodaq import contracts as C
from picodaq.errors import CommandTimeout
from picodaq.transport.link import Link


def _exec(board, code: bytes, timeout: float = 30.0) -> bytes | None:
    repl = Repl(board.port)
    try:
        repl.raw_repl()
        return repl.exec_in_one_piece(code, timeout)
    finally:
        repl.close()


# -- gap 1: USB CDC host-to-device flow control ---------------------------------------


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "without"])
def test_gap1_cdc_host_to_device_flow_control(rp2040, handled):
    """6 KB of code written in one piece: rp2040js's 512-byte FIFO drops most of it."""
    board = rp2040(fresh=True, without=() if handled else ("cdc-flow",))
    payload = b"s = b'" + bytes(b"0123456789abcdef"[i % 16] for i in range(6000)) + b"'\n"
    code = payload + b"import hashlib, binascii\nprint(len(s), binascii.hexlify(hashlib.sha256(s).digest()))\n"
    out = _exec(board, code, timeout=30 if handled else 10)
    import hashlib

    want = b"OK6000 b'" + hashlib.sha256(payload[6:-2]).hexdigest().encode() + b"'"
    if handled:
        assert out is not None and out.startswith(want), out
    else:
        assert out is None or not out.startswith(want), out


# -- gap 2: QSPI flash erase/program ------------------------------------------------


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "without"])
def test_gap2_flash_erase_and_program(rp2040, handled):
    """A fresh Pico formats littlefs on its flash at first boot: only with erase/program."""
    board = rp2040(fresh=True, without=() if handled else ("flash",))
    out = _exec(
        board,
        b"import os\nprint(os.statvfs('/'))\n"
        b"try:\n f = open('x.txt', 'w'); f.write('abc'); f.close(); print('wrote', os.listdir())\n"
        b"except OSError as e:\n print('OSError', e.errno)\n",
    )
    assert out is not None, "no answer"
    if handled:
        assert b"(4096, 4096, 352," in out and b"wrote ['x.txt']" in out, out
        assert board.control("stats")["programs"] > 0
    else:
        assert b"(0, 0, 0, 0, 0, 0, 0, 0, 0," in out and b"OSError 19" in out, out  # no filesystem: ENODEV


# -- gaps 3 and 4: ADC round robin -------------------------------------------------


def _adc_dma(board, mask: int, rate: int = 1000, instants: int = 300):
    chans = [c for c in range(5) if mask >> c & 1]
    agg = rate * len(chans)
    board.control("adc", mode="code", unit_ns=1e9 / agg, origin="first")
    with Link.open(board.port) as link:
        link.get_info()
        s = stream(link, rate, mask, C.SRC_ADC, C.FMT_INT16, spf=20, instants=instants)
    return chans, s


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "without"])
def test_gap3_adc_round_robin_ainsel_mask(rp2040, handled):
    """Channels 0-3 round robin on the DMA path: without, every conversion after the first reads channel 0."""
    board = rp2040(without=() if handled else ("adc-ainsel",))
    chans, s = _adc_dma(board, 0xF)
    assert s.final.last_error == C.ST_OK and s.gaps() == []
    got = code_channel(s.counts)
    if handled:
        assert np.array_equal(s.counts, dma_codes(chans, 0, len(s.counts)))
    else:
        assert set(np.unique(got[1:])) <= {0}, np.unique(got)


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "without"])
def test_gap4_adc_round_robin_wraps_from_channel_4(rp2040, handled):
    """Channels 0 and 4 (temperature): without, the walk from 4 skips 0 and stays on 4."""
    board = rp2040(without=() if handled else ("adc-rrobin",))
    chans, s = _adc_dma(board, 0x11)
    got = code_channel(s.counts)
    if handled:
        assert np.array_equal(s.counts, dma_codes(chans, 0, len(s.counts)))
    else:
        assert (got[2:] == 4).all(), got[:10]


# -- gap 5: the flash unique ID ------------------------------------------------------


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "without"])
def test_gap5_unique_id(rp2040, handled):
    board = rp2040(without=() if handled else ("uid",))
    with Link.open(board.port) as link:
        hello = link.get_info()
    if handled:
        assert hello.board_id == board.board_id != "0" * 16
    else:
        assert hello.board_id == "0" * 16


def test_gap5_every_board_is_its_own(rp2040):
    a, b = rp2040(), rp2040()
    ids = []
    for board in (a, b):
        with Link.open(board.port) as link:
            ids.append(link.get_info().board_id)
    assert ids == [a.board_id, b.board_id] and ids[0] != ids[1]


# -- gap 6: system reset --------------------------------------------------------------


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "without"])
def test_gap6_machine_reset_reboots_and_reenumerates(rp2040, handled):
    board = rp2040(without=() if handled else ("reset",))
    boots = board.control("time")["boot"]
    repl = Repl(board.port)
    repl.raw_repl()
    repl.s.write(b"import machine\nmachine.reset()\n\x04")
    if handled:
        # the port goes away (USB re-enumeration) and comes back, the firmware boots again
        gone = _wait(lambda: not port_exists(board.port), 20)
        repl.close()
        assert gone, "the port never went away"
        assert _wait(lambda: port_exists(board.port), 30), "the port did not come back"
        assert board.control("time")["boot"] == boots + 1
        wait_for_firmware(board)  # the port is back once USB is up, before main.py has loaded the app
        with Link.open(board.port) as link:
            assert link.ping().status == C.ST_OK
            assert link.get_info().board_id == board.board_id
    else:
        # rp2040js alone: the chip hangs; the port stays and nothing answers
        repl.close()
        assert port_exists(board.port)
        with Link.open(board.port) as link:
            assert not link.pump_until(lambda: link.receiver.hellos > 0, 5)
            with pytest.raises(CommandTimeout):
                link.command(C.OP_PING, timeout=2, retries=0)
        assert board.control("time")["boot"] == boots


def _wait(cond, timeout: float) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


# -- gaps 7 and 8: what the ADS1299's DMA path needs (PIO in emulated time, SPI DMA requests) --


def _ads_dma(board, rate: int = 2000, instants: int = 1000):
    from picodaq.core.blocks import ramp_counts

    with Link.open(board.port) as link:
        link.get_info()
        missed = board.control("ads1299")["missed"]
        s = stream(link, rate, 0xFF, C.SRC_ADS1299, C.FMT_INT24, spf=rate // 50, instants=instants, timeout=60)
    exact = len(s.counts) > 0 and np.array_equal(s.counts, ramp_counts(0, len(s.counts), 8, C.FMT_INT24))
    return s, exact, board.control("ads1299")["missed"] - missed


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "without"])
def test_gap7_pio_runs_on_the_emulated_clock(rp2040, handled):
    """The state machine that paces the ADS1299's DMA by DRDY: without, rp2040js runs it in
    batches between the runner's slices, so it sees DRDY fall milliseconds late or never, and
    the chip's frames are not read (the model counts them)."""
    board = rp2040(without=() if handled else ("pio",))
    if handled:
        s, exact, missed = _ads_dma(board)
        assert exact and missed == 0 and s.final.samples_dropped == 0 and s.gaps() == []
    else:
        with pytest.raises(AssertionError):  # no frame read in time: too few instants, or wrong ones
            s, exact, missed = _ads_dma(board, instants=1000)
            assert exact and missed == 0
        assert board.control("ads1299")["missed"] > 0


@pytest.mark.parametrize("handled", [True, False], ids=["handled", "without"])
def test_gap8_spi_dma_requests_follow_sspdmacr(rp2040, handled):
    """The driver sends START by a blocking write with SSPDMACR off while its receive DMA already
    waits: without, the DMA takes START's byte, every frame after is one byte off, and no value
    is the chip's."""
    board = rp2040(without=() if handled else ("spi-dmacr",))
    s, exact, missed = _ads_dma(board)
    assert s.final.samples_dropped == 0 and s.gaps() == []
    assert exact is handled, s.counts[:2]
