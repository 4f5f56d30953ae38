"""A board left at the MicroPython REPL (issue 16, item 4): `mpremote connect PORT fs ls` leaves it
there, firmware installed; `picodaq info` and `record` said "no answer to STOP ... (`picodaq flash`
installs it)". They now notice the REPL, soft-reset the board into its firmware (saying so on
stderr) and go on; when that cannot start the firmware, the hint names the real cause."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from cli_helpers import picodaq, serve

MPREMOTE = str(Path(__import__("sys").executable).with_name("mpremote"))
SAID = "is at the MicroPython REPL (as mpremote leaves it); soft-resetting it into its firmware"


def mpremote(port: str, *args: str) -> None:
    r = subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_info_and_record_soft_reset_a_board_left_at_the_repl(make_board, tmp_path):
    board = make_board()
    mpremote(board.port, "fs", "ls")
    r = picodaq("info", "--port", board.port, "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"picodaq: the board on {board.port} {SAID}"
    assert json.loads(r.stdout)["contract_ok"] is True
    mpremote(board.port, "fs", "ls")
    out = tmp_path / "a.npy"
    r = picodaq("record", "--port", board.port, "--seconds", "1", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"picodaq: the board on {board.port} {SAID}"
    assert np.load(out).shape == (1000, 1)
    r = picodaq("info", "--port", board.port)  # a board already running its firmware: nothing said
    assert r.returncode == 0 and r.stderr == ""


def test_a_board_left_at_the_repl_over_serve(make_board):
    board = make_board()
    with serve(board.port) as served:
        mpremote(served.url, "fs", "ls")
        r = picodaq("info", "--port", served.url)
    assert r.returncode == 0, r.stderr
    assert SAID in r.stderr


def test_a_repl_whose_soft_reset_starts_no_firmware_is_named(make_board):
    board = make_board()
    mpremote(board.port, "fs", "ls")
    (board.flash / "main.py").unlink()  # MicroPython without picodaq's main.py
    r = picodaq("info", "--port", board.port)
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[0] == f"picodaq: the board on {board.port} {SAID}"
    assert lines[1].startswith(f"picodaq: the board on {board.port} is at the MicroPython REPL, and a soft reset")
    assert "started no picodaq firmware" in lines[1] and "`picodaq flash` installs it" in lines[1]
    assert "no answer to STOP" not in r.stderr
