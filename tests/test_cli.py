"""Bad input on the command line: one clear line on stderr, non-zero exit, no traceback,
and nothing streamed or written before the mistake is reported."""
from __future__ import annotations

import json
import os
import pty

import pytest

from cli_helpers import assert_one_clear_line, picodaq


@pytest.mark.parametrize("args,words", [
    (["record", "--seconds", "-1", "--out", "x.npy"], ["--seconds", "positive"]),
    (["record", "--seconds", "abc", "--out", "x.npy"], ["--seconds", "not a number"]),
    (["record", "--seconds", "1", "--rate", "0", "--out", "x.npy"], ["--rate", "positive"]),
    (["record", "--seconds", "1", "--channels", "40", "--out", "x.npy"], ["channel count"]),
    (["record", "--seconds", "1", "--channels", "3-1", "--out", "x.npy"], ["channels must be within"]),
    (["record", "--seconds", "1", "--channels", "a,b", "--out", "x.npy"], ["not a channel count or list"]),
    (["record", "--seconds", "1", "--source", "laser", "--out", "x.npy"], ["--source", "invalid choice"]),
    (["record", "--seconds", "1", "--fmt", "float", "--out", "x.npy"], ["--fmt", "invalid choice"]),
    (["record", "--seconds", "1", "--gain", "5", "--out", "x.npy"], ["--gain", "invalid choice"]),
    (["record", "--seconds", "1", "--out", "rec.wav"], ["rec.wav", "unknown output format"]),
    (["record", "--seconds", "1", "--out", "rec"], ["unknown output format", "(no suffix)"]),
    (["record", "--seconds", "1", "--out", "/nonexistent-dir/rec.npy"], ["does not exist"]),
    (["record", "--seconds", "1"], ["--out"]),
    (["record", "--seconds", "1", "--out", "a.npy", "--out", "a.npy"], ["a.npy", "written twice"]),
    (["record", "--seconds", "1", "--out", "a.npy", "--out", "a.events.csv"], ["a.events.csv", "written twice"]),
    (["record", "--seconds", "1", "--fmt", "int32", "--out", "a.bdf"], ["BDF stores 24-bit samples"]),
    (["record", "--seconds", "1", "--out", "a.npy", "--stats-json", "/nonexistent-dir/s.json"], ["does not exist"]),
    (["replay", "/nonexistent.tlv"], ["no such file"]),
    (["replay", "."], ["no such file"]),
    (["frobnicate"], ["invalid choice"]),
])
def test_bad_arguments(args, words, tmp_path):
    r = picodaq(*args, cwd=tmp_path)
    assert_one_clear_line(r, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created


def test_unknown_port(tmp_path):
    r = picodaq("record", "--port", str(tmp_path / "ttyNOPE"), "--seconds", "1", "--out", str(tmp_path / "a.npy"))
    assert_one_clear_line(r, "cannot open port", "ttyNOPE")
    assert not (tmp_path / "a.npy").exists()


def test_unwritable_output(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/picodaq-test.npy"  # not even root creates files in /proc
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = str(ro / "a.npy")
    r = picodaq("record", "--seconds", "1", "--out", str(tmp_path / "fine.tlv"), "--out", target)
    assert_one_clear_line(r, "not writable")
    assert not (tmp_path / "fine.tlv").exists()  # refused before anything streamed


def test_output_that_is_a_directory_fails_before_streaming(tmp_path):
    d = tmp_path / "d.npy"
    d.mkdir()
    r = picodaq("record", "--seconds", "1", "--out", str(d))
    assert_one_clear_line(r, "is a directory")


def test_events_file_of_a_npy_that_is_a_directory(tmp_path):
    (tmp_path / "d.events.csv").mkdir()
    r = picodaq("record", "--seconds", "1", "--out", str(tmp_path / "d.npy"))
    assert_one_clear_line(r, "d.events.csv", "is a directory")


def test_port_that_is_not_a_board(tmp_path):
    # a pty nobody answers on: the command times out with advice, not a traceback
    m, s = pty.openpty()
    try:
        r = picodaq("info", "--port", os.ttyname(s), timeout=60)
    finally:
        os.close(m)
        os.close(s)
    assert_one_clear_line(r, "no answer", "picodaq flash")


def test_replay_refuses_to_overwrite_its_capture(tmp_path):
    cap = tmp_path / "cap.tlv"
    cap.write_bytes(b"")
    r = picodaq("replay", str(cap), "--out", str(cap))
    assert_one_clear_line(r, "would overwrite the capture")


def test_replay_of_garbage_reports_counters(tmp_path):
    f = tmp_path / "junk.tlv"
    f.write_bytes(b"\x00" * 100 + b"\xa5\x5a\x09" + b"\x01" * 50)
    r = picodaq("replay", str(f), "--stats-json", "-", "--quiet")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["frames_ok"] == 0 and s["header_errors"] == 1 and s["skipped_bytes"] == 152
    for key in ("frames_ok", "crc_errors", "header_errors", "skipped_bytes", "seq_lost", "samples", "samples_lost",
                "decode_errors", "markers", "gaps"):
        assert key in s


def test_help_lists_every_command():
    r = picodaq("--help")
    assert r.returncode == 0
    for cmd in ("ports", "info", "record", "replay", "emulate"):
        assert cmd in r.stdout


def test_ports_marks_boards_by_usb_vendor_id(monkeypatch, capsys):
    from types import SimpleNamespace

    import serial.tools.list_ports

    from picodaq import ports
    from picodaq.cli import main

    fake = [SimpleNamespace(device="/dev/ttyUSB0", description="FT232R USB UART", vid=0x0403, serial_number="A1"),
            SimpleNamespace(device="/dev/ttyACM0", description="Board in FS mode", vid=0x2E8A,
                            serial_number="E66058388B4F2A2F")]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: fake)
    monkeypatch.setattr(ports, "emulated_boards", lambda: [])
    monkeypatch.setattr("picodaq.cli.emulated_boards", lambda: [])
    assert main(["ports"]) == 0
    lines = capsys.readouterr().out.splitlines()
    acm = next(line for line in lines if "/dev/ttyACM0" in line)
    usb = next(line for line in lines if "/dev/ttyUSB0" in line)
    assert acm.startswith("* ") and "board" in acm and "E66058388B4F2A2F" in acm
    assert usb.startswith("  ") and "board" not in usb
    assert main(["ports", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["device"], r["is_board"]) for r in rows] == [("/dev/ttyACM0", True), ("/dev/ttyUSB0", False)]
