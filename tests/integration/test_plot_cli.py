"""`picodaq plot` as users run it: on every format of a recording the emulated board made (a board
reset in the middle: the gap each format keeps), on a capture built byte by byte (markers), with a
window and a channel; what was drawn is read back from the SVG. Bad input is one clear line and a
non-zero exit. The 1 GB case is a soak test (tools/plot_big.py makes and times one too)."""

from __future__ import annotations

import json
import signal
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cli_helpers import (
    Capture,
    Lines,
    assert_one_clear_line,
    file_grows_past,
    picodaq,
    start_picodaq,
    stream_started_again,
)
from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from waiting import wait_for

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[2]


def drawn(svg: Path) -> tuple[set[str], str, dict[str, int]]:
    """(group ids, all text, paths per group id) of a picture picodaq plot wrote."""
    root = ET.parse(svg).getroot()
    groups = {g.get("id"): g for g in root.iter(f"{SVG}g") if g.get("id")}
    text = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    paths = {k: len(list(g.iter(f"{SVG}path"))) for k, g in groups.items()}
    return set(groups), text, paths


@pytest.fixture(scope="module")
def reset_recording(tmp_path_factory):
    """3 channels at 1 kHz into every format, the board reset once in the middle."""
    from picodaq.boards.unix import EmulatedBoard

    d = tmp_path_factory.mktemp("reset")
    paths = {s: d / f"rec.{s}" for s in ("tlv", "npy", "csv", "bdf")}
    with EmulatedBoard() as board:
        board.install_firmware()
        board.start()
        args = [a for p in paths.values() for a in ("--out", str(p))]
        p = start_picodaq("record", "--port", board.port, "--channels", "3", *args, "--stats-json", "-")
        lines = Lines(p.stderr)
        wait_for(file_grows_past(paths["tlv"], 4000), what="data")
        board.hard_reset()
        lines.wait_for("the board reset")
        wait_for(stream_started_again(paths["tlv"]), what="data after the reset")
        p.send_signal(signal.SIGINT)
        out = p.stdout.read()
        assert p.wait(60) == 0, lines.join()
    stats = json.loads(out)
    assert stats["board_restarts"] == 1
    return paths


@pytest.mark.parametrize(
    "fmt,label",
    [
        ("tlv", "gap: board restarted, duration unknown"),  # replayed: no host clock to time it
        ("npy", "gap: board restarted (host clock)"),
        ("csv", "gap: stream restarted"),  # its t_s keeps the gap's length, but not its reason
        ("bdf", "gap: board restarted (host clock)"),
    ],
)
def test_every_format_of_a_recording_is_drawn_with_its_gap(reset_recording, tmp_path, fmt, label):
    out = tmp_path / f"{fmt}.svg"
    r = picodaq("plot", str(reset_recording[fmt]), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"plotted  {reset_recording[fmt]}: 3 channels at 1000 Hz" in r.stderr and f"wrote    {out}" in r.stderr
    ids, text, paths = drawn(out)
    assert {"envelope-ch0", "envelope-ch1", "envelope-ch2"} <= ids or {"signal-ch0", "signal-ch1", "signal-ch2"} <= ids
    assert label in text and "1 gaps" in text
    assert ("gaps-unknown-ch0" in ids) == (fmt == "tlv")  # a dotted line where the length is unknown
    assert ("gaps-ch0" in ids) == (fmt != "tlv")  # a gap with a length: shaded
    assert f"rec.{fmt}: 3 channels at 1000 Hz" in text


def test_the_default_picture_is_a_png_beside_the_recording(reset_recording):
    r = picodaq("plot", str(reset_recording["npy"]), "--quiet")
    assert r.returncode == 0 and r.stderr == ""
    png = reset_recording["npy"].with_name("rec.npy.png")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_markers_a_window_and_channels(tmp_path):
    cap = Capture().hello(C.SRC_RAMP, seq=1).status(1000)
    for k in range(0, 2000, 20):
        cap.samples(k, k * 1000, ramp_counts(k, 20, 4, C.FMT_INT16))
        if k in (400, 1300):
            cap.marker(k + 5, k // 100)
    tlv = cap.write(tmp_path / "m.tlv")
    out = tmp_path / "m.svg"
    r = picodaq(
        "plot", str(tlv), "--channels", "1-2", "--from", "0.3", "--to", "1.5", "--out", str(out), "--columns", "100"
    )
    assert r.returncode == 0, r.stderr
    ids, text, paths = drawn(out)
    assert {"envelope-ch1", "envelope-ch2"} <= ids and not {i for i in ids if i.endswith(("ch0", "ch3"))}
    assert paths["markers-ch1"] == 2 and paths["markers-ch2"] == 2  # at 0.405 and 1.305 s
    assert "0.300 to 1.500 s" in text and "2 markers" in text
    whole = tmp_path / "whole.svg"
    assert picodaq("plot", str(tlv), "--out", str(whole), "--columns", "5000").returncode == 0
    ids, text, _ = drawn(whole)
    assert "signal-ch0" in ids and "the samples" in text  # more columns than instants: the samples themselves


@pytest.mark.parametrize(
    "args,words",
    [
        (["nothing.tlv"], ["picodaq: nothing.tlv: no such file"]),
        (["{d}/notes.txt"], ["notes.txt: not a picodaq recording"]),
        (["{d}/x.tlv", "--from", "99"], ["--from 99 s:", "x.tlv ends at 1.000 s"]),
        (["{d}/x.tlv", "--from", "0.5", "--to", "0.2"], ["--to 0.2 s is not after --from 0.5 s"]),
        (["{d}/x.tlv", "--from", "soon"], ["argument --from: not a number of seconds: 'soon'"]),
        (["{d}/x.tlv", "--out", "{d}/x.jpg"], ["x.jpg: draws into .png, .svg, .pdf"]),
        (["{d}/x.tlv", "--out", "{d}/no/such/x.png"], ["does not exist"]),
        (["{d}/x.tlv", "--channels", "7"], ["x.tlv has no ch7 (it holds ch0, ch1)"]),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, words):
    cap = Capture().hello(C.SRC_RAMP, seq=1)
    for k in range(0, 1000, 50):
        cap.samples(k, k * 1000, ramp_counts(k, 50, 2, C.FMT_INT16))
    cap.write(tmp_path / "x.tlv")
    (tmp_path / "notes.txt").write_text("not a recording\n")
    r = picodaq("plot", *(a.format(d=tmp_path) for a in args), cwd=tmp_path)
    assert_one_clear_line(r, *words)


@pytest.mark.soak
def test_a_1_gb_capture_is_plotted_in_seconds(tmp_path):
    """Measured, not asserted (the machine decides): the time goes into the output (pytest -s -m soak)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import plot_big

    tlv = tmp_path / "big.tlv"
    plot_big.make_capture(tlv, 1 << 30)
    png = tmp_path / "big.png"
    t = time.monotonic()
    r = picodaq("plot", str(tlv), "--out", str(png), timeout=900)
    spent = time.monotonic() - t
    assert r.returncode == 0, r.stderr
    assert "gap: 500 samples lost" in r.stderr or "1 gaps" in r.stderr
    print(f"\npicodaq plot of a {tlv.stat().st_size / 2**30:.2f} GiB capture: {spent:.1f} s")
