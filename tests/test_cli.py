"""Bad input on the command line: one clear line on stderr, non-zero exit, no traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def picodaq(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "picodaq.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def assert_one_clear_line(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("args,words", [
    (["record", "--seconds", "-1", "--out", "x.npy"], ["--seconds", "positive"]),
    (["record", "--seconds", "abc", "--out", "x.npy"], ["--seconds", "not a number"]),
    (["record", "--seconds", "1", "--rate", "0", "--out", "x.npy"], ["--rate", "positive"]),
    (["record", "--seconds", "1", "--channels", "40", "--out", "x.npy"], ["channel count"]),
    (["record", "--seconds", "1", "--source", "laser", "--out", "x.npy"], ["--source", "invalid choice"]),
    (["record", "--seconds", "1", "--out", "rec.wav"], ["rec.wav", "unknown output format"]),
    (["record", "--seconds", "1", "--out", "/nonexistent-dir/rec.npy"], ["does not exist"]),
    (["record", "--seconds", "1"], ["--out"]),
    (["replay", "/nonexistent.tlv"], ["no such file"]),
    (["frobnicate"], ["invalid choice"]),
])
def test_bad_arguments(args, words, tmp_path):
    r = subprocess.run([sys.executable, "-m", "picodaq.cli", *args], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert_one_clear_line(r, *words)


def test_unknown_port(tmp_path):
    r = picodaq("record", "--port", str(tmp_path / "ttyNOPE"), "--seconds", "1", "--out", str(tmp_path / "a.npy"))
    assert_one_clear_line(r, "cannot open port", "ttyNOPE")


def test_unwritable_output(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/picodaq-test.npy"  # not even root creates files in /proc
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = str(ro / "a.npy")
    r = picodaq("record", "--seconds", "1", "--out", target)
    assert_one_clear_line(r, "not writable")


def test_output_that_is_a_directory_fails_before_streaming(tmp_path):
    d = tmp_path / "d.npy"
    d.mkdir()
    r = picodaq("record", "--seconds", "1", "--out", str(d))
    assert_one_clear_line(r, "is a directory")


def test_port_that_is_not_a_board(tmp_path):
    # a pty nobody answers on: the command times out with advice, not a traceback
    import pty

    m, s = pty.openpty()
    try:
        r = picodaq("info", "--port", os.ttyname(s), timeout=60)
    finally:
        os.close(m)
        os.close(s)
    assert_one_clear_line(r, "no answer", "picodaq flash")


def test_replay_of_garbage_reports_counters(tmp_path):
    f = tmp_path / "junk.tlv"
    f.write_bytes(b"\x00" * 100 + b"\xa5\x5a\x09" + b"\x01" * 50)
    r = picodaq("replay", str(f), "--stats-json", "-", "--quiet")
    assert r.returncode == 0, r.stderr
    import json

    s = json.loads(r.stdout)
    assert s["frames_ok"] == 0 and s["header_errors"] == 1 and s["skipped_bytes"] == 152
