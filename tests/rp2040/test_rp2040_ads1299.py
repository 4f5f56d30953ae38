"""hal_rp2's ADS1299 driver end to end, against the runner's ADS1299 model on
SPI0 (rp2040js/ads1299.mjs): registers, DRDY, RDATAC frames, the ramp, the
internal test signal, and a missing or wrong chip refused at CONFIGURE."""

from __future__ import annotations

import numpy as np
import pytest
from rp2helpers import ads1299_test_signal_board, record_instants, stream, wait_for_firmware

from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.errors import CommandFailed
from picodaq.transport.link import Link


@pytest.mark.parametrize("rate,mask", [(250, 0xFF), (2000, 0x0F)])
def test_ads1299_ramp_bit_exact(rp2040, rate, mask):
    board = rp2040()
    nch = bin(mask).count("1")
    with Link.open(board.port) as link:
        link.get_info()
        s = stream(link, rate, mask, C.SRC_ADS1299, C.FMT_INT24, spf=max(5, rate // 50), instants=rate)
    assert s.final.last_error == C.ST_OK and s.final.samples_dropped == 0 and s.gaps() == [], s.logs
    assert np.array_equal(s.counts, ramp_counts(0, len(s.counts), nch, C.FMT_INT24))
    regs = board.control("ads1299")["regs"]
    assert regs[1] == 0x90 | (16000 // rate).bit_length() - 1  # CONFIG1: the rate
    assert regs[3] == 0xE0  # CONFIG3: internal reference on
    for ch in range(8):
        assert regs[5 + ch] == (0x60 if mask >> ch & 1 else 0x81), ch  # gain 24, normal input / powered down


def test_ads1299_test_signal_through_picodaq_record(rp2040, tmp_path):
    """input "test" in picodaq_board.json: the internal square wave, +-1.875 mV at
    0.9765625 Hz, at gain 24 reads +-83886 counts, 128 frames high then 128 low at 250 Hz."""
    board = ads1299_test_signal_board(rp2040, tmp_path)
    out = tmp_path / "x.npy"
    # both halves of the square wave: 128 frames high, then 128 low (a count, not wall seconds)
    stats = record_instants(
        board.port, out, 300, "--source", "ads1299", "--fmt", "int24", "--rate", "250", "--channels", "2"
    )
    assert stats["samples_lost"] == stats["gaps"] == 0, stats
    a = np.load(out)
    n = np.arange(len(a))
    want = np.where((n // 128) % 2 == 0, 83886, -83886)
    assert len(a) >= 300 and np.array_equal(a, np.stack([want, want], axis=1))
    assert board.control("ads1299")["regs"][2] == 0xD0  # CONFIG2: internal test signal


def _refusal(link: Link) -> str:
    with pytest.raises(CommandFailed) as e:
        link.configure(250, 0xFF, C.SRC_ADS1299, C.FMT_INT24, 5)
    assert e.value.status == C.ST_UNSUPPORTED
    return link.log_texts()[-1]


def test_no_ads1299_is_refused_at_configure(rp2040):
    board = rp2040(ads1299="none")
    with Link.open(board.port) as link:
        link.get_info()
        assert "no ADS1299 answered on SPI0 (ID register read 0x00)" in _refusal(link)


def test_a_wrong_chip_is_refused_at_configure(rp2040):
    board = rp2040()
    board.control("ads1299", id=0x92)  # an ADS1298's ID: seen at the next boot
    board.hard_reset()
    wait_for_firmware(board)
    with Link.open(board.port) as link:
        link.get_info()
        assert "no ADS1299 answered on SPI0 (ID register read 0x92)" in _refusal(link)
