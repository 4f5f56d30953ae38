"""End to end: `picodaq record` from an emulated board through a real pty into
every format, every sample of every channel checked against the ramp, then the
.tlv replayed to identical outputs and counters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import events, physical_to_counts, picodaq, read_bdf, read_csv_rows, sine_value, start_picodaq
from picodaq import contracts as C
from picodaq.cli.console import comparable_stats as comparable
from picodaq.core.blocks import ramp_counts
from picodaq.recording.outputs import read_npy_shape

FORMAT = C.FORMAT_CODES


@pytest.mark.parametrize("fmt", ["int16", "int24", "int32"])
def test_record_is_bit_exact_in_every_format(make_board, tmp_path, fmt):
    board = make_board()
    p = {s: tmp_path / f"rec.{s}" for s in ("npy", "tlv", "csv", "bdf")}
    outs = [p["npy"], p["tlv"], p["csv"]] + ([p["bdf"]] if fmt != "int32" else [])
    args = [a for o in outs for a in ("--out", str(o))]
    r = picodaq(
        "record",
        "--port",
        board.port,
        "--seconds",
        "2",
        "--rate",
        "1000",
        "--channels",
        "8",
        "--fmt",
        fmt,
        *args,
        "--stats-json",
        "-",
    )
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["crc_errors"] == stats["samples_lost"] == stats["seq_lost"] == stats["gaps"] == 0
    assert stats["header_errors"] == stats["decode_errors"] == stats["skipped_bytes"] == 0
    code = FORMAT[fmt]
    data = np.load(p["npy"])
    assert data.dtype == np.int32 and data.shape[1] == 8
    assert 1500 <= data.shape[0] == stats["samples"] == stats["rows"]
    assert np.array_equal(data, ramp_counts(0, data.shape[0], 8, code))

    rows = np.loadtxt(p["csv"], delimiter=",", skiprows=1, dtype=np.float64, converters={2: lambda s: -1})
    assert np.array_equal(rows[:, 1], np.arange(data.shape[0]))  # sample_index
    assert np.allclose(rows[:, 0], np.arange(data.shape[0]) / 1000)  # t_s on the device's grid
    assert np.array_equal(rows[:, 3:].astype(np.int64), data)

    if fmt != "int32":
        b = read_bdf(p["bdf"])
        assert b["labels"] == [f"ch{c}" for c in range(8)] and b["rates"] == [1000.0] * 8
        n = data.shape[0]
        assert np.array_equal(b["digital"][:n], data)
        # the physical values, scaled back with the header's own limits, are the ramp
        assert np.array_equal(physical_to_counts(b)[:n], ramp_counts(0, n, 8, code))
        assert all(t == "no data: padding to a whole record" for _, _, t in b["annotations"])

    # the capture replays to the same outputs and the same counters
    replayed = tmp_path / "replay.npy"
    r2 = picodaq(
        "replay", str(p["tlv"]), "--out", str(replayed), "--out", str(tmp_path / "replay.csv"), "--stats-json", "-"
    )
    assert r2.returncode == 0, r2.stderr
    assert comparable(json.loads(r2.stdout)) == comparable(stats)
    assert np.array_equal(np.load(replayed), data)
    assert (tmp_path / "replay.csv").read_bytes() == p["csv"].read_bytes()
    assert (tmp_path / "replay.events.csv").read_text() == (tmp_path / "rec.events.csv").read_text()


def test_a_channel_list_and_the_sine_source(make_board, tmp_path):
    board = make_board()
    bdf, csv = tmp_path / "s.bdf", tmp_path / "s.csv"
    r = picodaq(
        "record",
        "--port",
        board.port,
        "--seconds",
        "1",
        "--rate",
        "500",
        "--channels",
        "0,2,5",
        "--source",
        "sine",
        "--fmt",
        "int24",
        "--out",
        str(bdf),
        "--out",
        str(csv),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet: nothing but errors
    assert csv.read_text().splitlines()[0] == "t_s,sample_index,marker,ch0,ch2,ch5"
    b = read_bdf(bdf)
    assert b["labels"] == ["ch0", "ch2", "ch5"] and b["dimension"] == ["count"] * 3
    sig = b["digital"]
    # a sine at 90 % of full scale, 5 Hz on the first channel: it swings both ways
    assert sig[:, 0].max() > 0.8 * 2**23 and sig[:, 0].min() < -0.8 * 2**23
    # ... and every sample is the firmware's table (sources.py) at its instant, in the CSV and the BDF:
    # 5, 10 and 15 Hz by stream slot, no gap, the BDF's padding zeros
    rows = read_csv_rows(csv)
    index = rows[:, 1].astype(np.int64)
    assert len(rows) >= 400 and np.array_equal(index, np.arange(len(rows)))
    want = sine_value(index, 3, 500, C.FMT_INT24)
    assert np.array_equal(rows[:, 3:].astype(np.int64), want)
    assert np.array_equal(sig[: len(rows)], want) and not sig[len(rows) :].any()


def test_record_without_port_starts_an_emulated_board_and_says_so(tmp_path):
    out = tmp_path / "a.npy"
    r = picodaq("record", "--seconds", "1", "--channels", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "emulated board" in r.stderr
    assert read_npy_shape(out)[1] == 2
    assert [e["kind"] for e in events(tmp_path / "a.events.csv")] == ["segment"]


def test_plain_progress_lines_when_stderr_is_not_a_terminal(make_board, tmp_path):
    board = make_board()
    r = picodaq("record", "--port", board.port, "--seconds", "2.5", "--channels", "4", "--out", str(tmp_path / "p.npy"))
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "samples/s/ch" in line]
    assert lines, r.stderr
    for word in ("MB/s", "frames", "crc", "lost", "ring", "drops", "pool ", "markers", "[streaming]"):
        assert word in lines[-1]
    assert "received 4 channels at 1000 Hz" in r.stderr and "wrote    " in r.stderr


@pytest.mark.parametrize(
    "args,status",
    [
        (["--rate", "1000000", "--channels", "8"], "BAD_ARGUMENT"),  # beyond the board's aggregate rate
        (["--source", "adc"], "UNSUPPORTED"),  # the emulated board has no ADC
    ],
)
def test_a_configuration_the_board_refuses_is_one_line_with_its_reason(make_board, tmp_path, args, status):
    board = make_board()
    r = picodaq(
        "record",
        "--port",
        board.port,
        "--seconds",
        "1",
        *args,
        "--out",
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "x.bdf"),
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (line,) = r.stderr.splitlines()
    prefix = f"picodaq: board refused CONFIGURE ({status}): "
    assert line.startswith(prefix) and len(line) > len(prefix) + 10  # the board's own reason follows
    assert list(tmp_path.iterdir()) == []  # refused before any file was made


def test_a_reader_of_stderr_leaving_does_not_cut_the_recording_short(make_board, tmp_path):
    """`picodaq record ... 2>&1 | head -2`: the live view loses its reader; the recording runs its course."""
    board = make_board()
    p = start_picodaq(
        "record",
        "--port",
        board.port,
        "--seconds",
        "3",
        "--out",
        str(tmp_path / "r.npy"),
        "--stats-json",
        str(tmp_path / "s.json"),
    )
    p.stderr.close()  # before the first progress line: every later line meets a closed pipe
    assert p.wait(60) == 0
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["samples"] == np.load(tmp_path / "r.npy").shape[0] >= 3000
    assert stats["samples_lost"] == 0


def test_an_output_failing_mid_recording_costs_only_that_file(make_board, tmp_path):
    """A full disk under one output (/dev/full behind a .csv): that file is dropped and named, the
    recording goes on to its end into the others (the .tlv and the .npy hold every sample, each
    once), the summary and --stats-json still come, and the exit status says something failed."""
    import os

    board = make_board()
    full = tmp_path / "full.csv"
    os.symlink("/dev/full", full)
    r = picodaq(
        "record",
        "--port",
        board.port,
        "--seconds",
        "3",
        "--channels",
        "8",
        "--out",
        str(tmp_path / "r.tlv"),
        "--out",
        str(full),
        "--out",
        str(tmp_path / "r.npy"),
        "--stats-json",
        str(tmp_path / "s.json"),
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.splitlines()[-1]
    assert last.startswith(f"picodaq: {full}: write failed: No space left on device"), last
    assert last.endswith("the other files hold the whole recording")
    assert "recording goes on into" in r.stderr and str(tmp_path / "r.npy") in r.stderr  # said when it happened
    assert "received 8 channels at 1000 Hz" in r.stderr  # the summary
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["seq_lost"] == stats["samples_lost"] == 0
    assert stats["samples"] >= 2400  # the whole 3 s, not up to the failure
    data = np.load(tmp_path / "r.npy")
    assert np.array_equal(data, ramp_counts(0, stats["samples"], 8, C.FMT_INT16))
    again = picodaq("replay", str(tmp_path / "r.tlv"), "--stats-json", "-", "--quiet")
    replayed = json.loads(again.stdout)
    assert replayed["seq_lost"] == 0 and replayed["samples"] == stats["samples"]


def test_a_port_another_program_holds_is_named_busy(make_board, tmp_path):
    """pyserial's own words were "Could not exclusively lock port ...: [Errno 11] Resource temporarily unavailable"."""
    import fcntl
    import os

    board = make_board()
    fd = os.open(board.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as pyserial, mpremote or a running `picodaq record` holds it
    try:
        for args in (
            ["info"],
            ["record", "--seconds", "1", "--out", str(tmp_path / "r.npy")],
            ["serve", "--listen", "127.0.0.1:0"],
        ):
            r = picodaq(*args, "--port", board.port, timeout=60)
            assert r.returncode == 1 and "Traceback" not in r.stderr
            assert r.stderr.strip() == (
                f"picodaq: port {board.port} is busy: another program has it open "
                "(a `picodaq record` or `serve`, mpremote or a terminal?)"
            ), args
    finally:
        os.close(fd)
    assert not (tmp_path / "r.npy").exists()
    r = picodaq("info", "--port", board.port, timeout=60)  # let go: the board answers again
    assert r.returncode == 0, r.stderr
