"""No lost data: unplugs, resets, emulator death and Ctrl-C during `picodaq record`,
each against an emulated board; every file must come out complete and valid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_helpers import (
    Lines,
    assert_bdf_is_the_recording,
    assert_csv_rows_are_the_ramp,
    captured,
    events,
    expected_grid,
    file_grows_past,
    outs,
    picodaq,
    read_bdf,
    start_picodaq,
    stream_started_again,
)
from picodaq import contracts as C
from picodaq.boards.unix import EmulatedBoard
from picodaq.cli.console import comparable_stats as comparable
from picodaq.core.receiver import Receiver
from waiting import wait_for


def recording(board, d, *extra):
    paths, args = outs(d)
    p = start_picodaq(
        "record", "--port", board.port, "--channels", "3", "--rate", "1000", *args, "--stats-json", "-", *extra
    )
    return p, paths, Lines(p.stderr)


def finish(p, lines, timeout=60):
    out = p.stdout.read()
    p.wait(timeout)
    return p.returncode, out, lines.join()


def check_files(paths, tmp_path):
    """Every output valid and complete, and the capture replays to the same samples: the CSV and
    .npy rows the ramp of their indices, the BDF that same data sample by sample on the time grid
    with every gap zero-filled over its span and annotated (assert_bdf_is_the_recording)."""
    rows = assert_csv_rows_are_the_ramp(paths["csv"])
    a = np.load(paths["npy"])
    assert a.shape == (len(rows), 3) and np.array_equal(a, rows[:, 3:].astype(np.int64))
    _, _, index = expected_grid(paths["npy"], 1000)
    assert np.array_equal(index, rows[:, 1].astype(np.int64))  # the events list explains every index jump
    b = assert_bdf_is_the_recording(paths["bdf"], paths["npy"], 1000)
    assert b["digital"].shape[0] >= len(rows)
    r = picodaq("replay", str(paths["tlv"]), "--out", str(tmp_path / "again.npy"), "--stats-json", "-")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "again.npy"), a)
    return a, b, json.loads(r.stdout)


def test_unplug_without_reconnect_stops_and_saves(make_board, tmp_path):
    board = make_board()
    p, paths, lines = recording(board, tmp_path)
    wait_for(file_grows_past(paths["tlv"], 3000), what="data")
    t_unplug = time.monotonic()
    board.unplug()
    t_seen = lines.wait_for("link lost")
    code, out, err = finish(p, lines)
    print(f"unplug noticed after {t_seen - t_unplug:.3f} s")
    assert code == 1
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("picodaq: port ") and "what was received is saved" in err
    a, b, replay_stats = check_files(paths, tmp_path)
    stats = json.loads(out)
    assert stats["samples"] == len(a) > 0 and stats["reconnects"] == 0
    assert comparable(replay_stats) == comparable(stats)


def test_unplug_with_reconnect_resumes_into_the_same_files(make_board, tmp_path):
    board = make_board()
    p, paths, lines = recording(board, tmp_path, "--reconnect")
    wait_for(file_grows_past(paths["tlv"], 3000), what="data")
    t_unplug = time.monotonic()
    board.unplug()
    lines.wait_for("link lost")
    lines.wait_for("reconnected")
    wait_for(stream_started_again(paths["tlv"]), what="data after the reconnect")
    p.send_signal(signal.SIGINT)
    code, out, err = finish(p, lines)
    t_end = time.monotonic()
    assert code == 0, err
    stats = json.loads(out)
    # unplugging a USB-powered Pico cuts its power too: it comes back rebooted, and only that
    assert stats["reconnects"] == 1 and stats["gaps"] == 1, stats
    assert stats["board_restarts"] == 1 and stats["stream_restarts"] == 1 and stats["samples_lost"] == 0, stats
    a, b, _ = check_files(paths, tmp_path)
    ev = events(tmp_path / "rec.events.csv")
    (gap,) = [e for e in ev if e["kind"] == "gap"]
    assert gap["detail"] == "board restarted; timing: host clock"
    # the board was gone for the 0.5 s unplug at least, timed by the host clock (and BDF fills it)
    assert 0.5 <= float(gap["duration_s"]) < t_end - t_unplug
    assert "gap: board restarted (host clock)" in [t for _, _, t in b["annotations"]]
    # after the restart the board counts from 0 again: rows are the ramp of index 0, 1, 2 ...
    rows = np.loadtxt(paths["csv"], delimiter=",", skiprows=1, usecols=1, dtype=np.int64)
    first_new = int(gap["row"])
    assert rows[first_new] == 0 and rows[first_new - 1] > 0
    assert np.array_equal(rows[first_new:], np.arange(len(rows) - first_new))


def test_a_board_reset_mid_stream_is_a_gap_not_garbage(make_board, tmp_path):
    board = make_board()
    p, paths, lines = recording(board, tmp_path)
    wait_for(lambda: captured(paths["tlv"]).stats.samples > 0, what="data")
    board.hard_reset()
    lines.wait_for("the board reset")
    wait_for(stream_started_again(paths["tlv"]), what="data after the reset")
    p.send_signal(signal.SIGINT)
    code, out, err = finish(p, lines)
    assert code == 0, err
    stats = json.loads(out)
    assert stats["board_resets"] == 1 and stats["board_restarts"] == 1
    assert stats["crc_errors"] == stats["decode_errors"] == stats["header_errors"] == 0
    a, b, replay_stats = check_files(paths, tmp_path)
    assert "gap: board restarted (host clock)" in [t for _, _, t in b["annotations"]]
    gap = [e for e in events(tmp_path / "rec.events.csv") if e["kind"] == "gap"]
    assert [e["detail"] for e in gap] == ["board restarted; timing: host clock"]
    # a replay has no host clock: the same gap, with its length unknown
    again = [e for e in events(tmp_path / "again.events.csv") if e["kind"] == "gap"]
    assert [(e["row"], e["detail"]) for e in again] == [(gap[0]["row"], "board restarted; timing: unknown")]
    assert replay_stats["board_restarts"] == 1 and replay_stats["samples"] == stats["samples"]
    # why the restart kind is certain: the stream's first frame after the HELLO is a STATUS (the
    # firmware's periodic one is due at once), so its uptime is known before any block; a reboot
    # is an uptime going back, told from a stream restart however early it comes
    kinds = []
    rx = Receiver()
    rx.frame_handlers.append(lambda f: kinds.append(f.type))
    rx.receive(paths["tlv"].read_bytes())
    said = [k for k in kinds if k != C.MSG_ACK]
    assert said[:3] == [C.MSG_HELLO, C.MSG_STATUS, C.MSG_SAMPLES], kinds[:8]


def test_emulator_death_while_waiting_to_reconnect_then_ctrl_c(make_board, tmp_path):
    board = make_board()
    p, paths, lines = recording(board, tmp_path, "--reconnect")
    wait_for(file_grows_past(paths["tlv"], 3000), what="data")
    board.stop()  # the supervisor dies: the port never comes back
    lines.wait_for("waiting for")
    p.send_signal(signal.SIGINT)
    code, out, err = finish(p, lines)
    assert code == 1
    assert "did not come back" in err.splitlines()[-1] and "Traceback" not in err
    check_files(paths, tmp_path)


def test_emulator_death_without_reconnect(make_board, tmp_path):
    board = make_board()
    p, paths, lines = recording(board, tmp_path, "--seconds", "60")
    wait_for(file_grows_past(paths["tlv"], 3000), what="data")
    board.stop()
    code, out, err = finish(p, lines)
    assert code == 1 and "what was received is saved" in err
    check_files(paths, tmp_path)


@pytest.mark.parametrize("seconds,expected", [(None, 0), ("60", 130)])
def test_ctrl_c_finalises_every_file(make_board, tmp_path, seconds, expected):
    board = make_board()
    p, paths, lines = recording(board, tmp_path, *(["--seconds", seconds] if seconds else []))
    wait_for(file_grows_past(paths["tlv"], 4000), what="data")
    p.send_signal(signal.SIGINT)
    code, out, err = finish(p, lines)
    assert code == expected, err
    stats = json.loads(out)
    a, b, replay_stats = check_files(paths, tmp_path)
    # the capture ends on a whole frame: nothing truncated, nothing skipped
    assert replay_stats["truncated"] == replay_stats["skipped_bytes"] == replay_stats["crc_errors"] == 0
    assert comparable(replay_stats) == comparable(stats)
    assert b["labels"] == ["ch0", "ch1", "ch2"]


def test_contract_mismatch_is_refused_with_both_hashes(tmp_path):
    board = EmulatedBoard()
    try:
        board.install_firmware()
        gen = board.flash / "picodaq_fw" / "contracts.py"
        gen.write_text(gen.read_text().replace(repr(C.CONTRACT_HASH.to_bytes(4, "little")), repr(b"\x01\x02\x03\x04")))
        board.start()
        want = f"0x{C.CONTRACT_HASH:08X}"
        r = picodaq("record", "--port", board.port, "--seconds", "1", "--out", str(tmp_path / "x.npy"))
        assert r.returncode == 1 and "Traceback" not in r.stderr
        line = r.stderr.splitlines()[-1]
        assert "contract mismatch" in line and "0x04030201" in line and want in line and "picodaq flash" in line
        assert not (tmp_path / "x.npy").exists()  # refused before any file was made
        info = picodaq("info", "--port", board.port)
        assert info.returncode == 1 and "contract mismatch" in info.stderr
        assert f"0x04030201 (this host has {want})" in info.stdout
        j = picodaq("info", "--port", board.port, "--json")
        assert j.returncode == 1 and json.loads(j.stdout)["contract_ok"] is False
    finally:
        board.stop()


def test_info_in_words_and_json(make_board):
    board = make_board()
    r = picodaq("info", "--port", board.port)
    assert r.returncode == 0, r.stderr
    for words in (
        "(matches this host)",
        "state           idle; last error: OK",
        "up to 32 channels",
        "ring ",
        "free heap",
        board.board_id,
    ):
        assert words in r.stdout
    j = json.loads(picodaq("info", "--port", board.port, "--json").stdout)
    assert j["contract_ok"] is True and j["hello"]["board_id"] == board.board_id
    assert j["status"]["state"] == "idle"


def test_ports_lists_running_emulators(tmp_path):
    p = subprocess.Popen(
        [sys.executable, "-m", "picodaq.cli.main", "emulate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = p.stdout.readline().strip()
        assert port
        listed = json.loads(picodaq("ports", "--json").stdout)
        mine = [row for row in listed if row["device"] == port]
        assert len(mine) == 1 and mine[0]["emulated"] and mine[0]["is_board"]
        text = picodaq("ports").stdout
        assert any(line.startswith("* ") and port in line and "emulated" in line for line in text.splitlines())
    finally:
        p.send_signal(signal.SIGTERM)  # as `kill` would: the emulated board must stop with it
        p.wait(60)
    assert p.returncode == 0
    assert port not in picodaq("ports").stdout and not os.path.exists(port)


def test_mark_on_key_in_a_terminal(make_board, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    board = make_board()
    paths, args = outs(tmp_path, "k")
    m, s = pty.openpty()
    fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
    before = termios.tcgetattr(s)
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "picodaq.cli.main",
            "record",
            "--port",
            board.port,
            "--channels",
            "3",
            "--mark-on-key",
            *args,
        ],
        stdin=s,
        stdout=s,
        stderr=s,
    )
    screen = bytearray()

    def read_screen() -> str:
        import select

        while select.select([m], [], [], 0)[0]:
            try:
                chunk = os.read(m, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen.extend(chunk)
        return screen.decode("utf-8", "replace")

    try:
        wait_for(lambda: "samples/s" in read_screen() and "device ring" in read_screen(), what="the live view")
        os.write(m, b"3")
        wait_for(lambda: "last: code 3" in read_screen(), what="marker 3 in the live view")
        os.write(m, b"m")
        wait_for(lambda: "last: code 1" in read_screen(), what="marker 1 in the live view")
        os.write(m, b"q")  # stops and saves
        wait_for(lambda: read_screen() is not None and p.poll() is not None, timeout=30, what="the recording to stop")
        read_screen()
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(60)
    text = screen.decode("utf-8", "replace")
    assert p.returncode == 0, text
    for cell in ("elapsed", "MB/s", "frames", "CRC", "lost", "device ring", "dropped", "pool hit rate", "markers"):
        assert cell in text
    assert termios.tcgetattr(s) == before  # the terminal is given back as it was
    os.close(s)
    os.close(m)
    marks = [(int(e["code"]), e["sample_index"]) for e in events(tmp_path / "k.events.csv") if e["kind"] == "marker"]
    assert [c for c, _ in marks] == [3, 1]
    assert [t for _, _, t in read_bdf(paths["bdf"])["annotations"] if t.startswith("marker")] == [
        "marker 3",
        "marker 1",
    ]
    rows = assert_csv_rows_are_the_ramp(paths["csv"])
    assert sorted(int(x) for x in rows[:, 2] if x >= 0) == [1, 3]


def test_mark_on_key_needs_a_terminal(tmp_path):
    r = picodaq("record", "--seconds", "1", "--mark-on-key", "--out", str(tmp_path / "a.npy"))
    assert r.returncode == 2 and r.stderr.strip() == "picodaq: --mark-on-key needs a terminal on stdin"


@pytest.mark.soak
def test_unplug_detection_latency(make_board, tmp_path):
    """Measured, not asserted in the default run: how soon an unplug is reported (the issue asks < 1 s)."""
    times = []
    for k in range(5):
        board = make_board()
        (tmp_path / f"u{k}").mkdir()
        p, paths, lines = recording(board, tmp_path / f"u{k}")
        wait_for(file_grows_past(paths["tlv"], 3000), what="data")
        t = time.monotonic()
        board.unplug()
        times.append(lines.wait_for("link lost") - t)
        finish(p, lines)
    print("unplug detection latency (s):", ", ".join(f"{x:.3f}" for x in times))
    assert max(times) < 1.0


def test_reconnect_finds_the_board_where_it_came_back(make_board, tmp_path):
    """A real board may re-enumerate under another name; the recorder asks find_port where it is."""
    from picodaq.recording.config import StreamConfig
    from picodaq.recording.outputs import open_outputs
    from picodaq.recording.recorder import Recording
    from picodaq.transport.link import Link

    board = make_board()
    alias = tmp_path / "ttyACM1"
    alias.symlink_to(board.port)
    link = Link.open(board.port)
    rec = Recording(
        link,
        StreamConfig(rate=1000, channel_mask=0b11),
        open_outputs([tmp_path / "f.npy"]),
        reconnect=True,
        find_port=lambda: str(alias),
    )
    try:
        rec.prepare()
        rec.start()
        state = {"unplugged": False}

        def poll():
            if not state["unplugged"] and rec.receiver.stats.samples > 200:
                board.unplug()
                state["unplugged"] = True

        ended = rec.run(30, poll=poll, should_stop=lambda: rec.reconnects == 1 and rec.receiver.stats.samples > 600)
        result = rec.finish(ended)
    finally:
        if rec.link is not None:
            rec.link.close()
        link.close()
    assert ended == "stopped" and rec.url == str(alias)
    assert any(f"came back on {alias}" in e.text for e in result.events)
    assert result.stats["reconnects"] == 1 and np.load(tmp_path / "f.npy").shape[0] == result.stats["samples"]


def test_a_firmware_fault_mid_stream_restarts_the_stream(make_board, tmp_path):
    """An allocation under the heap lock faults the stream (STATUS faulted + LOG); the recorder says
    why, restarts the stream and annotates the gap."""
    board = make_board(driver=True, env={"FWTEST_INJECT_AT": "3000"})
    p, paths, lines = recording(board, tmp_path)
    lines.wait_for("the board stopped streaming")
    wait_for(stream_started_again(paths["tlv"]), what="data after the restart")
    p.send_signal(signal.SIGINT)
    code, out, err = finish(p, lines)
    assert code == 0, err
    line = next(x for x in err.splitlines() if "the board stopped streaming" in x)
    assert "faulted" in line and "MemoryError" in line
    stats = json.loads(out)
    assert stats["stream_restarts"] >= 1 and stats["board_resets"] == 0
    a, b, _ = check_files(paths, tmp_path)
    assert "gap: stream restarted" in [t for _, _, t in b["annotations"]]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_kill_or_a_closed_terminal_stops_and_saves_like_ctrl_c(make_board, tmp_path, sig):
    """SIGTERM (`kill`, a service stopping) and SIGHUP (the terminal closed) used to end the process
    on the spot: no BDF at all, a .npy header behind its data, the board left streaming."""
    board = make_board()
    p, paths, lines = recording(board, tmp_path)
    wait_for(file_grows_past(paths["tlv"], 3000), what="data")
    p.send_signal(sig)
    code, out, err = finish(p, lines)
    assert code == 0, err  # an open-ended recording, ended on request
    assert "Traceback" not in err and f"wrote    {paths['bdf']}" in err
    stats = json.loads(out)
    a, _, replay_stats = check_files(paths, tmp_path)
    assert len(a) == stats["samples"] == replay_stats["samples"]
