"""`picodaq record --view` on the emulated board: the page itself, read in headless Chromium over the
DevTools protocol, holds data for every channel, draws the markers at the times the recording's
events list gives them, and shows the gap a board reset forced; and a page that never reads (or
closes) costs the recording nothing while the view counts every column it skipped."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import urllib.request
from pathlib import Path

import numpy as np

from browser import Chromium, need_chromium
from cli_helpers import Lines, events, start_picodaq
from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("PICODAQ_ARTIFACTS", ROOT / "build" / "test-artifacts"))
MARKER_RGB = (214, 39, 40)  # view.js MARKER, #d62728


class Terminal:
    """`picodaq record` on a pseudo-terminal, as a user runs it (--mark-on-key reads the keyboard). A
    thread reads the screen all along: a terminal nobody reads fills up and stalls the writer."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "picodaq.cli.main", *args], stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)
        self.screen = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the process is gone and the pty closed
                return
            if not chunk:
                return
            with self._lock:
                self.screen += chunk

    def text(self) -> str:
        with self._lock:
            return self.screen.decode("utf-8", "replace")

    def press(self, key: str) -> None:
        os.write(self.master, key.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        os.close(self.master)


def view_url(text: str) -> str | None:
    m = re.search(r"live view on (http://127\.0\.0\.1:\d+/)", text)
    return m[1] if m else None


def test_the_page_shows_every_channel_the_markers_and_a_forced_gap(make_board, tmp_path):
    need_chromium()  # fails, saying why, when the browser cannot be had: never a silent skip
    board = make_board()
    npy = tmp_path / "rec.npy"
    term = Terminal(
        "record", "--port", board.port, "--channels", "4", "--rate", "1000", "--mark-on-key",
        "--view", "127.0.0.1:0", "--out", str(npy), "--out", str(tmp_path / "rec.tlv"),
    )  # fmt: skip
    try:
        url = wait_for(lambda: view_url(term.text()), timeout=60, what="the live view's address")
        with Chromium(tmp_path / "chromium") as browser:
            page = browser.open(url)
            page.wait_for(
                "window.picodaq.status === 'live' && window.picodaq.received.perChannel.length === 4"
                " && window.picodaq.received.perChannel.every((n) => n > 20)",
                what="columns for every channel",
            )
            term.press("3")  # MARK, code 3
            page.wait_for("window.picodaq.markers.some((m) => m.code === 3)", what="marker 3")
            page.wait_for("window.picodaq.received.columns > 150", what="more data")
            board.hard_reset()  # the board reboots mid-stream: a gap the recorder rides out
            page.wait_for("window.picodaq.gaps.some((g) => g.label.includes('board restarted'))", what="the gap")
            page.wait_for(
                "(() => { const g = window.picodaq.gaps[0]; const c = window.picodaq.meta.bucket / window.picodaq.meta.rate;"
                " return (window.picodaq.newest + 1) * c > g.end + 1; })()",
                what="a second of data after the gap",
            )
            term.press("5")  # a marker in the new stream
            page.wait_for("window.picodaq.markers.some((m) => m.code === 5)", what="marker 5")
            page.wait_for(
                "window.picodaq.drawn.markers.length === 2 && window.picodaq.drawn.gaps.length === 1",
                what="both markers and the gap drawn",
            )
            state = page.evaluate(
                "JSON.stringify({meta: window.picodaq.meta, received: window.picodaq.received,"
                " markers: window.picodaq.markers, gaps: window.picodaq.gaps, drawn: window.picodaq.drawn})"
            )
            state = json.loads(state)
            # the marker lines are on the canvas where the page says it drew them (the second lane's middle)
            lane = state["drawn"]["channels"]
            for mk in state["drawn"]["markers"]:
                y = page.evaluate("Math.round(document.getElementById('plot').height * 0.4)")
                rgb = page.evaluate(f"window.picodaq.pixel({mk['x']}, {y})")[:3]
                assert tuple(rgb) == MARKER_RGB, (mk, rgb)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = page.screenshot(tmp_path / "live-view.png")
            shutil.copyfile(shot, ARTIFACTS / "live-view.png")
            term.press("q")  # stop and save
            page.wait_for("window.picodaq.status === 'recording ended'", what="the end of the recording")
        wait_for(lambda: term.proc.poll() is not None, timeout=60, what="the recording to stop")
        assert term.proc.returncode == 0, term.text()[-3000:]
    finally:
        term.close()

    # every channel: data received and drawn across the ramp's whole range
    assert state["meta"]["labels"] == ["ch0", "ch1", "ch2", "ch3"]
    assert all(n > 100 for n in state["received"]["perChannel"])
    for ch in lane:
        assert ch["columns"] > 100 and ch["lo"] < -30000 and ch["hi"] > 30000
    # the markers and the gap at the times the recording itself gives them (its events list)
    ev = events(tmp_path / "rec.events.csv")
    marks = [(float(e["t_s"]), int(e["code"])) for e in ev if e["kind"] == "marker"]
    assert [m[1] for m in marks] == [3, 5]
    assert [(round(m["t"], 9), m["code"]) for m in state["markers"]] == marks
    assert [(round(m["t"], 9), m["code"]) for m in state["drawn"]["markers"]] == marks
    (g,) = [e for e in ev if e["kind"] == "gap"]
    assert g["detail"] == "board restarted; timing: host clock"
    (pg,) = state["gaps"]
    assert pg["label"] == "gap: board restarted (host clock)"
    assert round(pg["start"], 9) == float(g["t_s"]) and round(pg["end"] - pg["start"], 9) == float(g["duration_s"])
    (dg,) = state["drawn"]["gaps"]
    assert dg["x1"] > dg["x0"] and dg["label"] == pg["label"]
    # the recording is whole: the ramp before and after the reset
    data = np.load(npy)
    row = int(g["row"])
    assert np.array_equal(data[:row], ramp_counts(0, row, 4, C.FMT_INT16))
    assert np.array_equal(data[row:], ramp_counts(0, len(data) - row, 4, C.FMT_INT16))


def _stats(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url + "stats.json", timeout=10).read())


def test_a_page_that_never_reads_costs_the_recording_nothing(make_board, tmp_path):
    """32 channels at 16 kHz with two pages: one stops reading (its socket's buffers full), one closes
    at once. The recording stays bit-exact with nothing lost; the view saw every instant and counts the
    columns it dropped for the stalled page."""
    board = make_board()
    npy = tmp_path / "fast.npy"
    # until Ctrl-C, once the drop is seen: a fixed 8 s recording once ended (its server closing,
    # the stats request reset) before a loaded machine's view had dropped a column
    p = start_picodaq(
        "record", "--port", board.port, "--rate", "16000", "--channels", "32",
        "--view", "--out", str(npy), "--stats-json", "-",
    )  # fmt: skip
    lines = Lines(p.stderr)
    stalled = None
    try:
        lines.wait_for("live view on", timeout=60)
        url = view_url(lines.text())
        host, port = url[len("http://") : -1].split(":")
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and it never reads
        stalled.connect((host, int(port)))
        stalled.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        # page 1 before the other connects: their handler threads race, and the closing page once
        # joined first, so the page watched below (then pages[0]) was the one that never drops
        wait_for(lambda: _stats(url)["pages"], timeout=30, what="the stalled page joining")
        with socket.create_connection((host, int(port))) as closing:
            closing.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            closing.recv(100)  # connected, then gone

        def stalled_page() -> dict | None:
            (page,) = [x for x in _stats(url)["pages"] if x["page"] == 1]
            return page if page["columns_dropped"] > 0 else None

        page = wait_for(stalled_page, timeout=60, what="the view dropping columns for the page that does not read")
        accounted = ("columns_sent", "columns_dropped", "columns_queued", "columns_writing")
        assert page["columns_offered"] == sum(page[k] for k in accounted)
        p.send_signal(signal.SIGINT)
        out = p.stdout.read()
        assert p.wait(60) == 0, lines.join()
    finally:
        if stalled is not None:
            stalled.close()
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            p.wait(30)
    err = lines.join()
    stats = json.loads(out)
    assert stats["samples_lost"] == stats["seq_lost"] == stats["crc_errors"] == stats["gaps"] == 0
    assert stats["device_samples_dropped"] == 0
    data = np.load(npy)
    assert data.shape == (stats["samples"], 32) and data.shape[0] > 0
    assert np.array_equal(data, ramp_counts(0, len(data), 32, C.FMT_INT16))
    (line,) = [x for x in err.splitlines() if x.startswith("view     ")]
    m = re.match(
        r"view     ([\d,]+) instants in ([\d,]+) columns of 160 to 2 page\(s\); ([\d,]+) instants skipped "
        r"\(the view behind\), ([\d,]+) columns dropped for pages too slow",
        line,
    )
    assert m, line
    instants, _, skipped, dropped = (int(x.replace(",", "")) for x in m.groups())
    assert instants == stats["samples"]  # the observer was handed every block
    assert skipped == 0  # and kept up with 32 channels at 16 kHz
    assert dropped >= page["columns_dropped"] > 0  # what the stalled page missed, counted
