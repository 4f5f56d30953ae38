"""End to end: `picodaq record` from an emulated board through a real pty,
every sample of every channel checked against the ramp, then replayed."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from picodaq import contracts as C
from picodaq.blocks import ramp_counts
from picodaq.outputs import read_npy_shape


def picodaq(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "picodaq.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("fmt", ["int16", "int24", "int32"])
def test_record_is_bit_exact_in_every_format(make_board, tmp_path, fmt):
    board = make_board()
    npy, tlv, csv = tmp_path / "rec.npy", tmp_path / "rec.tlv", tmp_path / "rec.csv"
    r = picodaq("record", "--port", board.port, "--seconds", "2", "--rate", "1000", "--channels", "8",
                "--fmt", fmt, "--out", str(npy), "--out", str(tlv), "--out", str(csv), "--stats-json", "-")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["crc_errors"] == stats["samples_lost"] == stats["seq_lost"] == 0
    assert stats["header_errors"] == stats["decode_errors"] == stats["skipped_bytes"] == 0
    data = np.load(npy)
    assert data.dtype == np.int32 and data.shape[1] == 8
    assert 1500 <= data.shape[0] == stats["samples"]
    code = {name: code for code, name in C.FORMAT_NAMES.items()}[fmt]
    assert np.array_equal(data, ramp_counts(0, data.shape[0], 8, code))
    rows = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.int64)
    assert np.array_equal(rows[:, 0], np.arange(data.shape[0])) and np.array_equal(rows[:, 2:], data)

    replayed = tmp_path / "replay.npy"
    r2 = picodaq("replay", str(tlv), "--out", str(replayed), "--stats-json", "-")
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout) == {k: v for k, v in stats.items() if k != "seconds"}
    assert np.array_equal(np.load(replayed), data)


def test_record_without_port_starts_an_emulated_board_and_says_so(tmp_path):
    out = tmp_path / "a.npy"
    r = picodaq("record", "--seconds", "1", "--channels", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "emulated board" in r.stderr
    assert read_npy_shape(out)[1] == 2
