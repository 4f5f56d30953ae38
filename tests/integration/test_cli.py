"""Bad input on the command line: one clear line on stderr, non-zero exit, no traceback,
and nothing streamed or written before the mistake is reported."""

from __future__ import annotations

import json
import os
import pty

import numpy as np
import pytest

from cli_helpers import Capture, assert_one_clear_line, picodaq, start_picodaq


@pytest.mark.parametrize(
    "args,words",
    [
        (["record", "--seconds", "-1", "--out", "x.npy"], ["--seconds", "positive"]),
        (["record", "--seconds", "abc", "--out", "x.npy"], ["--seconds", "not a number"]),
        (["record", "--seconds", "1", "--rate", "0", "--out", "x.npy"], ["--rate", "positive"]),
        (["record", "--seconds", "1", "--channels", "40", "--out", "x.npy"], ["channel count"]),
        (["record", "--seconds", "1", "--channels", "3-1", "--out", "x.npy"], ["low to high", "1-3"]),
        (["record", "--seconds", "1", "--channels", "1-32", "--out", "x.npy"], ["channels must be within 0..31"]),
        (["record", "--seconds", "1", "--channels", "0-", "--out", "x.npy"], ["not a channel count or list", "'0-'"]),
        (["record", "--seconds", "1", "--channels", "1,1", "--out", "x.npy"], ["channel 1 is named twice"]),
        (["record", "--seconds", "1", "--channels", "0-3,2", "--out", "x.npy"], ["channel 2 is named twice"]),
        (
            ["record", "--seconds", "1", "--channels", "8", "--samples-per-frame", "300", "--out", "x.npy"],
            ["--samples-per-frame 300", "at most 255 instants of 8 channels"],
        ),
        (
            ["record", "--seconds", "1", "--fmt", "int32", "--samples-per-frame", "1021", "--out", "x.npy"],
            ["at most 1020 instants of 1 channel in int32"],
        ),
        (
            ["record", "--seconds", "1", "--out", "x.csv", "--stats-json", "x.csv"],
            ["x.csv", "written twice", "--stats-json"],
        ),
        (
            ["record", "--seconds", "1", "--out", "a.npy", "--stats-json", "a.events.csv"],
            ["a.events.csv", "written twice"],
        ),
        (["record", "--seconds", "1", "--channels", "a,b", "--out", "x.npy"], ["not a channel count or list"]),
        (["record", "--seconds", "1", "--source", "laser", "--out", "x.npy"], ["--source", "invalid choice"]),
        (["record", "--seconds", "1", "--fmt", "float", "--out", "x.npy"], ["--fmt", "invalid choice"]),
        (["record", "--seconds", "1", "--gain", "5", "--out", "x.npy"], ["--gain", "invalid choice"]),
        (
            ["record", "--seconds", "1", "--cpu-latency", "-1", "--out", "x.npy"],
            ["--cpu-latency", "0 to 2,000,000,000"],
        ),
        (["stream", "--seconds", "1", "--cpu-latency", "5us", "--lsl", "x"], ["--cpu-latency", "not a whole number"]),
        (["record", "--seconds", "1", "--out", "rec.wav"], ["rec.wav", "unknown output format"]),
        (["record", "--seconds", "1", "--out", "rec"], ["unknown output format", "(no suffix)"]),
        (["record", "--seconds", "1", "--out", "/nonexistent-dir/rec.npy"], ["does not exist"]),
        (["record", "--seconds", "1"], ["--out"]),
        (["record", "--seconds", "1", "--out", "a.npy", "--out", "a.npy"], ["a.npy", "written twice"]),
        (["record", "--seconds", "1", "--out", "a.npy", "--out", "a.events.csv"], ["a.events.csv", "written twice"]),
        (["record", "--seconds", "1", "--fmt", "int32", "--out", "a.bdf"], ["BDF stores 24-bit samples"]),
        (["record", "--seconds", "1", "--out", "a.npy", "--stats-json", "/nonexistent-dir/s.json"], ["does not exist"]),
        (["replay", "/nonexistent.tlv"], ["no such file"]),
        (["replay", "."], ["is a directory"]),
        (["emulate", "--flash", "/nonexistent-dir/flash"], ["--flash", "folder /nonexistent-dir does not exist"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_arguments(args, words, tmp_path):
    r = picodaq(*args, cwd=tmp_path)
    assert_one_clear_line(r, *words)
    assert r.returncode == 2  # a usage mistake
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
    cap.write_bytes(b"\x00")
    r = picodaq("replay", str(cap), "--out", str(cap))
    assert_one_clear_line(r, "would overwrite the capture")
    assert cap.read_bytes() == b"\x00"


def test_replay_never_writes_its_stats_over_the_capture_or_an_output(tmp_path):
    cap = Capture().hello().samples(0, 0, np.zeros((20, 1), dtype=np.int64)).write(tmp_path / "cap.tlv")
    before = cap.read_bytes()
    r = picodaq("replay", str(cap), "--stats-json", str(cap), "--quiet")
    assert_one_clear_line(r, "cap.tlv", "would overwrite the capture")
    r = picodaq("replay", str(cap), "--out", str(tmp_path / "a.csv"), "--stats-json", str(tmp_path / "." / "a.csv"))
    assert_one_clear_line(r, "a.csv", "written twice", "--stats-json")
    assert r.returncode == 2 and cap.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cap.tlv"]


@pytest.mark.parametrize(
    "name,data,words",
    [
        ("run.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<i4'", ["a .npy array, not a .tlv capture"]),
        ("run.bdf", b"\xffBIOSEMI" + b" " * 248, ["a BDF file, not a .tlv capture"]),
        ("run.csv", b"t_s,sample_index,marker,ch0\n0.0,0,,1\n", ["a picodaq CSV, not a .tlv capture"]),
    ],
)
def test_replay_of_a_file_that_is_no_capture_is_one_line_and_makes_nothing(tmp_path, name, data, words):
    (tmp_path / name).write_bytes(data)
    r = picodaq("replay", name, "--out", "again.npy", "--out", "again.bdf", cwd=tmp_path)
    assert_one_clear_line(r, name, *words)
    assert r.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_replay_of_garbage_or_an_empty_file_is_one_line_exit_1_and_makes_nothing(tmp_path):
    """They exited 0 and wrote empty outputs (and counters of nothing)."""
    junk = tmp_path / "junk.tlv"
    junk.write_bytes(bytes(range(256)) * 4)
    outs = ["--out", str(tmp_path / "a.npy"), "--out", str(tmp_path / "a.bdf"), "--stats-json", "-"]
    r = picodaq("replay", str(junk), *outs)
    assert_one_clear_line(r, "no picodaq frame in its 1,024 bytes")
    assert r.returncode == 1 and r.stdout == ""
    (tmp_path / "empty.tlv").write_bytes(b"")
    r = picodaq("replay", str(tmp_path / "empty.tlv"), *outs)
    assert_one_clear_line(r, "empty.tlv: empty: nothing was captured")
    assert r.returncode == 1 and r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.tlv", "junk.tlv"]


def test_a_truncated_capture_says_how_many_bytes_at_its_end_were_a_cut_frame(tmp_path):
    cap = Capture().hello()
    for k in range(0, 100, 10):
        cap.samples(k, 1000 * k, np.zeros((10, 2), dtype=np.int64))
    data = bytes(cap.data)
    (tmp_path / "cut.tlv").write_bytes(data[:-25])  # the last frame (70 bytes) cut 25 bytes short
    r = picodaq("replay", str(tmp_path / "cut.tlv"), "--out", str(tmp_path / "a.npy"), "--stats-json", "-")
    assert r.returncode == 0, r.stderr
    assert "the last 45 bytes are an incomplete frame" in r.stderr
    assert json.loads(r.stdout)["samples"] == 90 and np.load(tmp_path / "a.npy").shape == (90, 2)


def test_replay_warns_when_no_hello_was_found(tmp_path):
    # a capture cut from the middle of a stream: decoded, and said to lack its source
    mid = Capture().samples(100, 0, np.ones((20, 2), dtype=np.int64)).write(tmp_path / "mid.tlv")
    r = picodaq("replay", str(mid), "--out", str(tmp_path / "mid.npy"))
    assert r.returncode == 0, r.stderr
    assert "holds no HELLO" in r.stderr and "--source" in r.stderr
    assert np.load(tmp_path / "mid.npy").shape == (20, 2)
    r = picodaq("replay", str(mid), "--source", "ramp")
    assert r.returncode == 0 and "warning" not in r.stderr
    one = Capture().hello().samples(0, 0, np.zeros((20, 1), dtype=np.int64)).write(tmp_path / "one.tlv")
    r = picodaq("replay", str(one))
    assert r.returncode == 0 and "replayed 1 channel at 1000 Hz" in r.stderr
    r = picodaq("replay", str(mid), "--source", "ramp", "--channels", "4")
    assert r.returncode == 0 and "--channels names 4 channels but the capture holds 2" in r.stderr


def test_emulate_refuses_a_flash_folder_that_is_a_file(tmp_path):
    (tmp_path / "flash").write_text("not a folder")
    r = picodaq("emulate", "--flash", str(tmp_path / "flash"), timeout=30)
    assert_one_clear_line(r, "--flash", "not a folder")
    assert r.returncode == 2


def test_replay_of_a_damaged_capture_reports_counters(tmp_path):
    f = tmp_path / "junk.tlv"
    f.write_bytes(b"\x00" * 100 + b"\xa5\x5a\x09" + b"\x01" * 50 + bytes(Capture().hello().data))
    r = picodaq("replay", str(f), "--stats-json", "-", "--quiet")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["frames_ok"] == 1 and s["header_errors"] == 1 and s["skipped_bytes"] == 152
    for key in (
        "frames_ok",
        "crc_errors",
        "header_errors",
        "skipped_bytes",
        "seq_lost",
        "samples",
        "samples_lost",
        "decode_errors",
        "markers",
        "gaps",
    ):
        assert key in s


@pytest.mark.parametrize("command", ["info", "flash", "serve"])
def test_a_port_that_cannot_be_a_serial_port_is_named_so(tmp_path, command):
    (tmp_path / "notes.txt").write_text("hello")
    for port, words in (
        (tmp_path / "notes.txt", ["a regular file, not a serial port"]),
        (tmp_path, ["a directory, not a serial port"]),
        (tmp_path / "ttyNOPE", ["no such port"]),
        ("/dev/null", ["not a serial port"]),
    ):
        r = picodaq(command, "--port", str(port), timeout=30)
        if command == "serve" and words == ["no such port"]:  # serve checks --listen first, then says so
            assert_one_clear_line(r, f"cannot open port {port}")
            continue
        assert_one_clear_line(r, f"cannot open port {port}: ", *words)
        assert r.returncode == 2


def test_a_reader_that_leaves_early_is_no_traceback(tmp_path):
    """`picodaq replay cap.tlv --stats-json - | head -c1`: stdout's reader is gone before picodaq writes."""
    cap = Capture().hello().samples(0, 0, np.zeros((20, 1), dtype=np.int64)).write(tmp_path / "cap.tlv")
    for args in (["replay", str(cap), "--stats-json", "-", "--quiet"], ["ports", "--json"], ["ports"]):
        p = start_picodaq(*args)
        p.stdout.close()  # the reader leaves at once
        err = p.stderr.read()
        assert p.wait(60) == 141 and err == "", (args, err)  # as a command killed by SIGPIPE


def test_help_lists_every_command():
    r = picodaq("--help")
    assert r.returncode == 0
    for cmd in ("ports", "info", "record", "replay", "emulate"):
        assert cmd in r.stdout


def test_ports_marks_boards_by_usb_vendor_id(monkeypatch, capsys):
    from types import SimpleNamespace

    import serial.tools.list_ports

    from picodaq.cli.main import main
    from picodaq.transport import ports

    fake = [
        SimpleNamespace(device="/dev/ttyUSB0", description="FT232R USB UART", vid=0x0403, serial_number="A1"),
        SimpleNamespace(
            device="/dev/ttyACM0", description="Board in FS mode", vid=0x2E8A, serial_number="E66058388B4F2A2F"
        ),
    ]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: fake)
    monkeypatch.setattr(ports, "emulated_boards", lambda: [])
    monkeypatch.setattr("picodaq.cli.ports.emulated_boards", lambda: [])
    assert main(["ports"]) == 0
    lines = capsys.readouterr().out.splitlines()
    acm = next(line for line in lines if "/dev/ttyACM0" in line)
    usb = next(line for line in lines if "/dev/ttyUSB0" in line)
    assert acm.startswith("* ") and "board" in acm and "E66058388B4F2A2F" in acm
    assert usb.startswith("  ") and "board" not in usb
    assert main(["ports", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["device"], r["is_board"]) for r in rows] == [("/dev/ttyACM0", True), ("/dev/ttyUSB0", False)]


def test_ctrl_c_while_the_command_is_still_loading_is_one_line(monkeypatch, capsys):
    """The `picodaq` script enters through picodaq.__main__, which catches a Ctrl-C that lands
    while picodaq.cli.main and its imports load (before cli.main could)."""
    import sys

    import picodaq.__main__ as entry

    class InterruptedImport:
        def find_spec(self, name, path=None, target=None):
            if name == "picodaq.cli.main":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "picodaq.cli.main", raising=False)
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])
    assert entry.main() == 130
    assert capsys.readouterr().err == "picodaq: interrupted\n"


def test_damaged_emulator_registry_entries_are_skipped(monkeypatch, tmp_path):
    """`picodaq ports` (and flash/serve without --port) read every entry `picodaq emulate` wrote;
    one half-written or foreign is skipped, not a traceback, and never removed."""
    from picodaq.transport.ports import emulated_boards, registry_dir

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    d = registry_dir()
    d.mkdir(parents=True)
    bad = {"a.json": '{"pid": "x"}', "b.json": "[1, 2]", "c.json": f'{{"pid": {os.getpid()}}}', "d.json": '{"po'}
    for name, text in bad.items():
        (d / name).write_text(text)
    assert emulated_boards() == []
    assert sorted(p.name for p in d.iterdir()) == sorted(bad)


def test_a_long_replay_says_how_far_it_is(monkeypatch, capsys):
    """Off a terminal: nothing in the first second, then a line every PLAIN_EVERY seconds."""
    import time

    from picodaq.cli.replay import ReplayProgress

    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    p = ReplayProgress(400_000_000)
    for t, done in ((100.5, 10_000_000), (101.2, 100_000_000), (103.0, 200_000_000), (106.5, 300_000_000)):
        now[0] = t
        p(done)
    p.done()
    assert capsys.readouterr().err.splitlines() == [
        "replaying: 25% (100 of 400 MB, 1 s)",
        "replaying: 75% (300 of 400 MB, 6 s)",
    ]


def test_recording_over_existing_files_is_refused_naming_them_unless_overwrite(make_board, tmp_path):
    """A repeated command line replaced yesterday's recording silently: now it is refused before
    the board is touched, naming every file that exists, and --overwrite replaces them."""
    board = make_board()
    old = {tmp_path / "run.npy": b"yesterday", tmp_path / "run.events.csv": b"kind", tmp_path / "run.bdf": b"x"}
    for f, data in old.items():
        f.write_bytes(data)
    outs = ["--out", str(tmp_path / "run.npy"), "--out", str(tmp_path / "run.bdf"), "--out", str(tmp_path / "new.csv")]
    r = picodaq("record", "--port", board.port, "--seconds", "1", *outs)
    assert_one_clear_line(r, "run.npy", "run.events.csv", "run.bdf", "already exist", "--overwrite")
    assert r.returncode == 2 and "new.csv" not in r.stderr
    assert all(f.read_bytes() == data for f, data in old.items()) and not (tmp_path / "new.csv").exists()
    r = picodaq("record", "--port", board.port, "--seconds", "1", *outs, "--overwrite", "--quiet")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "run.npy").shape == (1000, 1)
    # replay too: its outputs are files like any other
    cap = Capture().hello().write(tmp_path / "c.tlv")
    r = picodaq("replay", str(cap), "--out", str(tmp_path / "run.npy"))
    assert_one_clear_line(r, "run.npy", "already exist", "--overwrite")


def test_a_recording_holds_its_cpu_latency_request_or_says_why_it_cannot(make_board, tmp_path):
    """--cpu-latency: held while streaming where /dev/cpu_dma_latency is writable (the line says the
    bound in force), else one warning line naming the device; the recording is whole either way."""
    board = make_board()
    r = picodaq(
        "record", "--port", board.port, "--seconds", "1", "--cpu-latency", "0", "--out", str(tmp_path / "r.npy")
    )
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "r.npy").shape == (1000, 1)
    first = r.stderr.splitlines()[0]
    if os.access("/dev/cpu_dma_latency", os.W_OK):
        assert (
            first
            == "holding a CPU latency request of 0 us while streaming (in force, the strictest of all requests: 0 us)"
        )
    else:
        assert first.startswith("warning: cannot hold a CPU latency request of 0 us: /dev/cpu_dma_latency ")
        assert first.endswith("; streaming without it")
    assert "Traceback" not in r.stderr


def test_replay_says_the_recordings_duration_and_its_own_run_time_apart(tmp_path):
    """It said "3,540 instants in 0.00 s": the replay's run time where the recording's belongs."""
    cap = Capture().hello().status(100)
    for k in range(0, 3540, 20):
        cap.samples(k, 1000 * k, np.zeros((20, 1), dtype=np.int64))
    r = picodaq("replay", str(cap.write(tmp_path / "c.tlv")))
    assert r.returncode == 0, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("replayed 1 channel at 1000 Hz (ramp, int16): 3,540 instants, 3.540 s of recording")
    assert "(replayed in " in first and "instants in" not in first
