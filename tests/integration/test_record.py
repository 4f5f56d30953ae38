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
    assert b["labels"] == ["ch0", "ch2", "ch5"] and b["dimension"] == [""] * 3
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


@pytest.mark.parametrize(
    "seconds,rate,channels,extra",
    [
        ("5", 1000, 8, []),  # make demo
        ("3", 250, 2, []),
        ("1.5", 1000, 3, ["--samples-per-frame", "7", "--fmt", "int24"]),  # the last frame is cut
    ],
)
def test_seconds_records_exactly_seconds_times_rate_instants(make_board, tmp_path, seconds, rate, channels, extra):
    """--seconds N stopped on the host's timer and kept what was in flight: 5,020 or 5,060
    instants for `make demo`'s 5 s at 1 kHz. Now every output, the summary and --stats-json
    hold N x rate instants from the first one, and the capture replays to the same."""
    board = make_board()
    n = round(float(seconds) * rate)
    p = {s: tmp_path / f"rec.{s}" for s in ("tlv", "npy", "csv", "bdf")}
    outs = [a for f in p.values() for a in ("--out", str(f))]
    r = picodaq(
        "record", "--port", board.port, "--seconds", seconds, "--rate", str(rate), "--channels", str(channels),
        *extra, *outs, "--stats-json", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["samples_lost"] == stats["gaps"] == 0
    assert stats["samples"] == stats["rows"] == n and stats["duration_s"] == float(seconds)
    assert f": {n:,} instants in " in r.stderr and f"{float(seconds):.3f} s of recording" in r.stderr
    fmt = FORMAT["int24" if "int24" in extra else "int16"]
    assert np.array_equal(np.load(p["npy"]), ramp_counts(0, n, channels, fmt))
    assert len(p["csv"].read_text().splitlines()) == n + 1
    assert np.array_equal(read_bdf(p["bdf"])["digital"], ramp_counts(0, n, channels, fmt))  # no padding
    mne = pytest.importorskip("mne")
    assert mne.io.read_raw_bdf(p["bdf"], verbose="error").n_times == n
    r2 = picodaq("replay", str(p["tlv"]), "--out", str(tmp_path / "again.npy"), "--stats-json", "-")
    assert r2.returncode == 0, r2.stderr
    assert comparable(json.loads(r2.stdout)) == comparable(stats)
    assert np.array_equal(np.load(tmp_path / "again.npy"), np.load(p["npy"]))


def test_frames_repeated_on_a_live_link_are_recorded_once(make_board, tmp_path):
    """A link that delivers a SAMPLES frame twice (every 25th): the repeats are dropped and counted
    live, every output holds each instant once, and the capture (which holds the repeats as they
    arrived) replays to the same counters."""
    from relay import FrameRelay, repeat_every

    board = make_board()
    with FrameRelay(board.port, tmp_path / "relay", repeat_every(25)) as relay:
        r = picodaq(
            "record", "--port", relay.port, "--seconds", "2", "--channels", "2",
            "--out", str(tmp_path / "a.tlv"), "--out", str(tmp_path / "a.npy"), "--out", str(tmp_path / "a.bdf"),
            "--stats-json", "-",
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["duplicates"] >= 3 and stats["seq_lost"] == stats["seq_resets"] == stats["gaps"] == 0
    assert stats["samples"] == stats["rows"] == 2000
    assert "duplicate frames dropped" in r.stderr
    assert np.array_equal(np.load(tmp_path / "a.npy"), ramp_counts(0, 2000, 2, C.FMT_INT16))
    assert np.array_equal(read_bdf(tmp_path / "a.bdf")["digital"][:2000], ramp_counts(0, 2000, 2, C.FMT_INT16))
    r2 = picodaq("replay", str(tmp_path / "a.tlv"), "--stats-json", "-", "--quiet")
    assert r2.returncode == 0, r2.stderr
    assert comparable(json.loads(r2.stdout)) == comparable(stats)


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
        (["--source", "adc", "--fmt", "int24"], "UNSUPPORTED"),  # the ADC ships 12-bit codes as int16
        (["--source", "ads1299", "--rate", "300"], "UNSUPPORTED"),  # not a rate the chip runs at
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
        "--overwrite",  # full.csv is there: the link to /dev/full
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.splitlines()[-1]
    assert last.startswith(f"picodaq: 1 output failed: {full}: write failed: No space left on device"), last
    assert "the other files hold the whole recording" in last
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


def test_full_disk_under_two_outputs_names_each_by_its_name_and_what_it_holds(make_board, tmp_path):
    """The closing line named the BDF's hidden spool (.b.bdf.spool) instead of b.bdf, named only the
    first failure, and said the other files held the whole recording while a.csv was cut short."""
    import os

    board = make_board()
    os.symlink("/dev/full", tmp_path / "a.csv")
    os.symlink("/dev/full", tmp_path / ".b.bdf.spool")  # the disk under the BDF's samples is full
    outs = [str(tmp_path / n) for n in ("r.tlv", "a.csv", "b.bdf", "r.npy")]
    r = picodaq(
        "record", "--port", board.port, "--seconds", "2", "--channels", "4",
        *[a for o in outs for a in ("--out", o)], "--stats-json", str(tmp_path / "s.json"), "--overwrite",
    )  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.splitlines()[-1]
    assert last.startswith("picodaq: 2 outputs failed: "), last
    assert ".spool" not in last and f"{tmp_path / 'a.csv'}: write failed: No space left on device" in last
    assert f"{tmp_path / 'b.bdf'}: write failed: No space left on device" in last
    assert last.count("(it holds ") == 2  # what each holds: here nothing, /dev/full takes no byte
    assert last.endswith(f"the other files hold the whole recording ({tmp_path / 'r.tlv'}, {tmp_path / 'r.npy'}, "
                         f"{tmp_path / 'r.events.csv'})")  # fmt: skip
    stats = json.loads((tmp_path / "s.json").read_text())
    failed = stats["failed_outputs"]
    assert sorted(f["path"] for f in failed) == [str(tmp_path / "a.csv"), str(tmp_path / "b.bdf")]
    assert all(f["error"] == "write failed: No space left on device" for f in failed)
    assert all(0 <= f["instants"] < stats["samples"] == 2000 for f in failed)
    assert np.array_equal(np.load(tmp_path / "r.npy"), ramp_counts(0, 2000, 4, C.FMT_INT16))


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


ADC_VOLTS = 3.3 / 4096
ADS_UV = 2 * 4.5 / 2**24 * 1e6  # over the gain


def adc_codes(n: int, nch: int) -> np.ndarray:
    """The emulated board's adc: channel k a triangle of 12-bit codes, t = 16 (k + 1) i mod 8192."""
    t = (np.arange(n)[:, None] * 16 * (np.arange(nch)[None, :] + 1)) % 8192
    return np.where(t < 4096, t, 8191 - t)


def ads_counts(n: int, nch: int, rate: int) -> np.ndarray:
    """The emulated board's ads1299: channel k a 1 Hz square of +-(k + 1) * 2**14 counts, high first."""
    high = (np.arange(n) % rate) < rate // 2
    return np.where(high[:, None], 1, -1) * ((np.arange(nch) + 1) << 14)[None, :]


@pytest.mark.parametrize(
    "source,args,dimension",
    [
        ("adc", ["--channels", "0-3", "--rate", "500"], "V"),
        ("ads1299", ["--channels", "0-7", "--rate", "250", "--gain", "24"], "uV"),
        ("ads1299", ["--channels", "2", "--rate", "500", "--gain", "6"], "uV"),
    ],
)
def test_the_emulated_board_has_an_adc_and_an_ads1299_scaled_end_to_end(make_board, tmp_path, source, args, dimension):
    """`record --source adc` and `--source ads1299` said "source 3 is not on this board": the emulated
    board has both, as deterministic signals in the front ends' own counts, so the BDF's volts and
    microvolts (read by pyedflib and by MNE) check the scaling end to end."""
    board = make_board()
    r = picodaq(
        "record", "--port", board.port, "--source", source, *args, "--seconds", "2",
        "--out", str(tmp_path / "e.npy"), "--out", str(tmp_path / "e.bdf"), "--quiet",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rate = int(args[args.index("--rate") + 1])
    data = np.load(tmp_path / "e.npy")
    n, nch = data.shape
    assert n == 2 * rate
    if source == "adc":
        expected, per_count = adc_codes(n, nch), ADC_VOLTS
    else:
        gain = int(args[args.index("--gain") + 1])
        expected, per_count = ads_counts(n, nch, rate), ADS_UV / gain
    assert np.array_equal(data, expected)
    b = read_bdf(tmp_path / "e.bdf")
    assert b["dimension"] == [dimension] * nch
    assert np.allclose(b["physical"][:n], expected * per_count, rtol=2e-7, atol=1e-9)
    mne = pytest.importorskip("mne")
    volts = mne.io.read_raw_bdf(tmp_path / "e.bdf", verbose="error").get_data().T
    si = per_count * (1e-6 if dimension == "uV" else 1.0)
    assert np.allclose(volts[:n], expected * si, rtol=2e-7, atol=1e-15)


def test_a_source_the_board_lacks_is_refused_by_name_and_info_lists_the_sources(make_board, tmp_path):
    """The refusal said "source 3 is not on this board" (a number); `info` did not say which
    sources a board has."""
    full = make_board()
    r = picodaq("info", "--port", full.port)
    assert r.returncode == 0 and "sources         ramp, sine, adc, ads1299" in r.stdout, r.stdout
    bare = make_board(env={"PICODAQ_SOURCES": "ramp,sine"})  # as a Pico with no ADS1299 wired
    r = picodaq("info", "--port", bare.port, "--json")
    assert json.loads(r.stdout)["hello"]["sources"] == ["ramp", "sine"]
    r = picodaq(
        "record", "--port", bare.port, "--source", "ads1299", "--seconds", "1", "--out", str(tmp_path / "x.npy")
    )
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "picodaq: board refused CONFIGURE (UNSUPPORTED): CONFIGURE: source ads1299 is not on this board"
    )
