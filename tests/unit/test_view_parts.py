"""The live view's parts without a board: the observer's columns are the min/max of the right
instants on the grid (gaps from the Timeline or from index jumps), it refuses blocks and counts them
when its ring is full (the TapRegistry counts them too) and never waits; it takes 32 channels
at 16 kHz in the board's frames exactly; the server's pages drop and count columns when behind; the
--view address parses or says what is wrong."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from types import SimpleNamespace as NS

import numpy as np
import pytest

from picodaq import contracts as C
from picodaq.core.blocks import SamplesBlock, ramp_counts
from picodaq.core.taps import TapRegistry
from picodaq.errors import UsageError
from picodaq.plot.envelope import Envelope
from picodaq.view.attach import parse_listen
from picodaq.view.observer import EnvelopeObserver
from picodaq.view.server import PAGE_QUEUE, Page, ViewServer, event
from waiting import wait_for

I16 = C.FMT_INT16


def block(first: int, n: int, nch: int = 3) -> SamplesBlock:
    return SamplesBlock(first, first * 1000, 1_000_000, nch, I16, n, ramp_counts(first, n, nch, I16))


def gap(pos: int, span: int, first_index: int, label: str = "gap: test") -> NS:
    return NS(pos=pos, span=span, first_index=first_index, reason="test", describe=lambda: label)


def test_columns_are_the_min_and_max_of_their_instants_across_gaps():
    obs = EnvelopeObserver(1000, window_s=1, columns=50)  # 20 instants per column
    assert obs.bucket == 20
    want = Envelope(3, end=2000, bucket=20)
    # 0..499 in blocks of 37; 60 instants lost (an index jump no gap reported); a restart at index 0
    # that the Timeline placed at grid 700 (a gap reported before its block)
    for k in range(0, 500, 37):
        n = min(37, 500 - k)
        assert obs.on_block(block(k, n).view) is True
        want.add(k, ramp_counts(k, n, 3, I16))
    for k in range(560, 600, 10):
        obs.on_block(block(k, 10).view)
        want.add(k, ramp_counts(k, 10, 3, I16))
    obs.on_gap(gap(600, 100, 0))
    for k in range(0, 290, 29):
        obs.on_block(block(k, 29).view)
        want.add(700 + k, ramp_counts(k, 29, 3, I16))
    cols, lo, hi = obs.drain()
    pos, wlo, whi = want.columns()
    full = ~np.isnan(wlo[:, 0])
    # every finished column, each once, in order; the last one (still open) is not finished yet
    assert cols.tolist() == [c for c in np.flatnonzero(full).tolist() if c < 49]
    assert np.array_equal(lo, wlo[cols]) and np.array_equal(hi, whi[cols])
    assert [k for k, _ in obs.events] == ["gap"]
    assert obs.stats()["instants"] == 500 + 40 + 290 and obs.stats()["instants_dropped"] == 0


def test_a_full_ring_refuses_blocks_and_counts_them_without_waiting():
    obs = EnvelopeObserver(1000, window_s=1, columns=100, capacity=16)  # 10 instants per column
    taps = TapRegistry()
    tap = taps.add(obs, name="view")
    t = time.monotonic()
    for k in range(0, 1000, 20):  # nobody drains: the ring fills after ~16 columns
        taps.deliver(block(k, 20).view)
    assert time.monotonic() - t < 5  # it never waited for a reader
    s = obs.stats()
    assert s["blocks_dropped"] > 0 and s["instants_dropped"] == 20 * s["blocks_dropped"]
    assert tap.dropped == s["blocks_dropped"] and tap.delivered + tap.dropped == 50
    assert s["instants"] == 1000
    cols, _, _ = obs.drain()
    assert len(cols) <= 16
    # drained: it takes blocks again
    assert obs.on_block(block(1000, 20).view) is True


def test_it_follows_32_channels_at_16_khz_in_the_boards_frames():
    """Two seconds of 32 channels at 16 kHz in the frames the board sends (63 instants, never aligned
    with a column): every block is taken and every finished column is exactly the min/max of its
    instants. What that costs in CPU is a benchmark figure, not a timed unit test."""
    obs = EnvelopeObserver(16000)
    blocks = [block(k, 63, 32) for k in range(0, 32004, 63)]
    cols, los, his = [], [], []
    for b in blocks:
        assert obs.on_block(b.view)
        if obs.pending() > 100:
            c, lo, hi = obs.drain()
            cols.append(c), los.append(lo), his.append(hi)
    c, lo, hi = obs.drain()
    cols.append(c), los.append(lo), his.append(hi)
    col, lo, hi = np.concatenate(cols), np.concatenate(los), np.concatenate(his)
    n = blocks[-1].first_index + 63
    grid = ramp_counts(0, n, 32, I16).astype(np.int32)
    assert np.array_equal(col, np.arange(n // obs.bucket))  # every finished column once, in order
    whole = grid[: len(col) * obs.bucket].reshape(len(col), obs.bucket, 32)
    assert np.array_equal(lo, whole.min(axis=1)) and np.array_equal(hi, whole.max(axis=1))
    assert obs.stats()["instants_dropped"] == 0 and obs.stats()["blocks_dropped"] == 0


def test_a_page_behind_loses_columns_counted_and_keeps_the_rest():
    a, b = socket.socketpair()
    try:
        page = Page(1, a)
        for _ in range(PAGE_QUEUE + 5):
            page.offer(b"x", columns=10, droppable=True)
        page.offer(b"gap", columns=0)  # gaps and markers are never dropped
        assert page.dropped == 50 and page.queued_columns == 10 * PAGE_QUEUE and len(page.queue) == PAGE_QUEUE + 1
        assert page.stats()["columns_offered"] == 10 * (PAGE_QUEUE + 5)
    finally:
        a.close()
        b.close()


def test_the_server_streams_what_the_observer_made_and_welcomes_late_pages():
    obs = EnvelopeObserver(1000, window_s=2, columns=100)
    server = ViewServer(obs, title="unit", layout=lambda: None)
    url = server.start()
    try:
        for k in range(0, 1000, 20):
            obs.on_block(block(k, 20).view)
        obs.on_marker(NS(pos=500, code=4))
        wait_for(lambda: server.columns_published == 50, what="the columns published")
        host, port = server.httpd.server_address[:2]
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"event: cols" not in data:
            data += s.recv(65536)
        s.close()
        text = data.decode()
        assert (
            "text/event-stream" in text
            and "event: meta" in text
            and 'event: marker\ndata: {"pos":500,"code":4}' in text
        )
        cols = json.loads(text.split("event: cols\ndata: ")[1].split("\n")[0])
        assert cols["cols"] == list(range(50)) and len(cols["lo"]) == 3  # the window so far, channel by channel
        assert cols["lo"][0][0] == int(ramp_counts(0, 20, 3, I16)[:, 0].min())
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert (
            "<canvas" in page and "view.js" in page and "http" not in page.split("<body>")[1]
        )  # nothing fetched from elsewhere
        stats = json.loads(urllib.request.urlopen(url + "stats.json", timeout=10).read())
        assert stats["observer"]["columns_made"] == 50 and stats["pages"][0]["columns_offered"] == 50
    finally:
        server.stop()
    assert event("x", {"a": 1}) == b'event: x\ndata: {"a":1}\n\n'


@pytest.mark.parametrize(
    "text,want",
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":0", ("127.0.0.1", 0)),
        ("9000", ("127.0.0.1", 9000)),
        ("0.0.0.0", ("0.0.0.0", 0)),
        ("[::1]:81", ("::1", 81)),
    ],
)
def test_view_addresses(text, want):
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["host:port", "127.0.0.1:70000", "1.2.3.4:-1"])
def test_bad_view_addresses_say_so(text):
    with pytest.raises(UsageError, match=rf"^--view {text}: not HOST:PORT"):
        parse_listen(text)
