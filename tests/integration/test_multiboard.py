"""Several boards recorded at once (`record --port A --port B`): each into its own files, each
bit-exact; one host clock origin noted in each; one board failing or Ctrl-C loses nothing of
the others; a board on another machine (RFC 2217) recorded alongside a local one."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from cli_helpers import (
    Lines,
    assert_bdf_is_the_recording,
    assert_one_clear_line,
    captured,
    events,
    picodaq,
    read_csv_rows,
    serve,
    start_picodaq,
)
from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.recording.outputs import read_npy_shape
from waiting import wait_for


def assert_board_exact(stats: dict, npy, n_channels: int, min_rows: int) -> np.ndarray:
    assert stats["crc_errors"] == stats["samples_lost"] == stats["seq_lost"] == stats["gaps"] == 0, stats
    assert stats["header_errors"] == stats["decode_errors"] == stats["skipped_bytes"] == 0
    data = np.load(npy)
    assert data.shape == (stats["samples"], n_channels) and data.shape[0] >= min_rows
    assert np.array_equal(data, ramp_counts(0, data.shape[0], n_channels, C.FMT_INT16))
    return data


def clock_row(path) -> dict:
    (row,) = [e for e in events(path) if e["kind"] == "clock"]
    return row


def test_two_boards_recorded_at_once_each_exact(make_board, tmp_path):
    a, b = make_board(), make_board()
    run = tmp_path / "run.npy"
    r = picodaq(
        "record",
        "--port",
        a.port,
        "--port",
        b.port,
        "--seconds",
        "2",
        "--channels",
        "8",
        "--out",
        str(run),
        "--out",
        str(tmp_path / "run.csv"),
        "--out",
        str(tmp_path / "run.tlv"),
        "--stats-json",
        "-",
    )
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert set(stats["boards"]) == {"board1", "board2"}
    origin = stats["clock_origin"]
    for label, board in (("board1", a), ("board2", b)):
        s = stats["boards"][label]
        assert s["port"] == board.port and s["board_id"] == board.board_id and s["ended"] == "time"
        data = assert_board_exact(s, tmp_path / f"run.{label}.npy", 8, 1500)
        rows = read_csv_rows(tmp_path / f"run.{label}.csv")
        assert np.array_equal(rows[:, 3:].astype(np.int64), data)
        assert sorted(s["outputs"]) == sorted(
            str(tmp_path / f"run.{label}.{x}") for x in ("npy", "events.csv", "csv", "tlv")
        )
        # one host clock: each file says where its sample 0 is against the shared start
        assert 0 <= s["start_offset_s"] < 5 and s["start_time"] == pytest.approx(origin + s["start_offset_s"])
        row = clock_row(tmp_path / f"run.{label}.events.csv")
        assert f"sample 0 at run start {s['start_offset_s']:+.6f} s" in row["detail"]
        assert f"run start {origin:.6f}" in row["detail"]
        # each capture replays to its own board's samples
        r2 = picodaq("replay", str(tmp_path / f"run.{label}.tlv"), "--out", str(tmp_path / f"re.{label}.npy"))
        assert r2.returncode == 0 and np.array_equal(np.load(tmp_path / f"re.{label}.npy"), data)
    assert not run.exists()  # only the per-board files
    # the summary has a section per board
    assert "board1  " + a.port in r.stderr and "board2  " + b.port in r.stderr
    assert r.stderr.count("received 8 channels at 1000 Hz") == 2


def test_a_local_board_and_a_remote_one_together(make_board, tmp_path):
    local, remote = make_board(), make_board()
    with serve(remote.port) as srv:
        r = picodaq(
            "record",
            "--port",
            local.port,
            "--port",
            srv.url,
            "--seconds",
            "2",
            "--channels",
            "4",
            "--out",
            str(tmp_path / "mix.npy"),
            "--stats-json",
            "-",
        )
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)["boards"]
    assert stats["board2"]["port"] == srv.url and stats["board2"]["board_id"] == remote.board_id
    for label in ("board1", "board2"):
        assert_board_exact(stats[label], tmp_path / f"mix.{label}.npy", 4, 1500)


def test_one_board_lost_does_not_stop_or_lose_the_other(make_board, tmp_path):
    steady, lost = make_board(), make_board()
    rec = start_picodaq(
        "record",
        "--port",
        steady.port,
        "--port",
        lost.port,
        "--seconds",
        "4",
        "--channels",
        "2",
        "--out",
        str(tmp_path / "r.npy"),
        "--stats-json",
        "-",
    )
    err = Lines(rec.stderr)
    err.wait_for("board2      ")  # both streaming (a plain progress line per board)
    lost.unplug()  # no --reconnect: board2's recording ends here, board1's goes on
    stdout = rec.stdout.read()  # stderr is Lines' to read
    rec.wait(60)
    text = err.join()
    assert rec.returncode == 1, text
    stats = json.loads(stdout)["boards"]
    assert stats["board1"]["ended"] == "time" and stats["board1"]["error"] is None
    assert_board_exact(stats["board1"], tmp_path / "r.board1.npy", 2, 3000)  # the whole 4 s
    b2 = stats["board2"]
    assert b2["ended"] == "failed" and f"{lost.port}" in b2["error"]
    # what board2 sent before it went is saved, exact
    assert_board_exact(b2, tmp_path / "r.board2.npy", 2, 200)
    assert b2["samples"] < stats["board1"]["samples"]
    lines = [line for line in text.splitlines() if line.startswith("picodaq: board2")]
    assert len(lines) == 1 and "what was received is saved" in lines[0] and "Traceback" not in text


def test_ctrl_c_finishes_every_boards_files(make_board, tmp_path):
    a, b = make_board(), make_board()
    rec = start_picodaq(
        "record",
        "--port",
        a.port,
        "--port",
        b.port,
        "--channels",
        "3",
        "--out",
        str(tmp_path / "c.npy"),
        "--out",
        str(tmp_path / "c.bdf"),
        "--out",
        str(tmp_path / "c.tlv"),
        "--stats-json",
        "-",
    )
    err = Lines(rec.stderr)
    err.wait_for("board2      ")
    for tlv in (tmp_path / "c.board1.tlv", tmp_path / "c.board2.tlv"):  # both streaming into their files
        wait_for(lambda tlv=tlv: captured(tlv).stats.samples >= 500, what=f"data in {tlv.name}")
    rec.send_signal(signal.SIGINT)
    stdout = rec.stdout.read()  # stderr is Lines' to read
    rec.wait(60)
    assert rec.returncode == 0, err.join()  # no --seconds: Ctrl-C is how it ends
    stats = json.loads(stdout)["boards"]
    for label in ("board1", "board2"):
        assert stats[label]["ended"] == "stopped"
        data = assert_board_exact(stats[label], tmp_path / f"c.{label}.npy", 3, 500)
        assert read_npy_shape(tmp_path / f"c.{label}.npy") == data.shape
        # the BDF by content: this board's ramp sample by sample, the padding zeros and annotated,
        # and where its sample 0 sits against the shared start
        b = assert_bdf_is_the_recording(tmp_path / f"c.{label}.bdf", tmp_path / f"c.{label}.npy", 1000)
        assert b["labels"] == ["ch0", "ch1", "ch2"]
        note = f"sample 0 at run start {stats[label]['start_offset_s']:+.6f} s"
        assert [(o, t) for o, _, t in b["annotations"] if t.startswith("sample 0")] == [(0.0, note)]


def test_several_boards_usage_errors(make_board, tmp_path):
    a = make_board()
    r = picodaq("record", "--port", a.port, "--port", a.port, "--seconds", "1", "--out", str(tmp_path / "x.npy"))
    assert_one_clear_line(r, "the same board", a.port)
    r = picodaq(
        "record",
        "--port",
        a.port,
        "--port",
        "/dev/none-such",
        "--seconds",
        "1",
        "--out",
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "x.npy"),
    )
    assert_one_clear_line(r, "x.board1.npy", "written twice")
    r = picodaq(
        "record", "--port", a.port, "--port", "/dev/none-such", "--seconds", "1", "--out", str(tmp_path / "y.npy")
    )
    assert_one_clear_line(r, "/dev/none-such")
    assert list(tmp_path.iterdir()) == []  # nothing made before every board was ready


def test_the_live_view_has_a_row_per_board():
    import io
    from types import SimpleNamespace

    from fakes import fake_recording
    from picodaq.cli.live import LiveView

    recs = [fake_recording(), fake_recording()]
    out = io.StringIO()
    view = LiveView(recs, "picodaq record: 2 boards", "plain", stream=out, labels=["board1", "board2"])
    view.tick(1.0)
    view.events_of(1)(SimpleNamespace(elapsed=1.5, text="link lost: gone", warning=True))
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["board1", "board2"] and "samples/s/ch" in lines[0]
    assert lines[2].endswith("board2: link lost: gone")

    out = io.StringIO()
    view = LiveView(recs, "picodaq record: 2 boards", "rich", seconds=10, stream=out, labels=["board1", "board2"])
    with view:
        view.tick(2.0)
    text = out.getvalue()
    for cell in (
        "board1",
        "board2",
        "samples/s",
        "received",
        "MB/s",
        "CRC",
        "lost",
        "gaps",
        "ring",
        "drops",
        "markers",
        "saving",
        "of 10 s",
        "Ctrl-C stops and saves",
    ):
        assert cell in text, cell
