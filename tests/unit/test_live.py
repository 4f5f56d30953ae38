"""The live view's numbers and wording, from a recording's counters (no board needed)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from fakes import fake_recording
from picodaq.cli.live import LiveView, Meter, key_action, plain_line


def test_pool_hit_rate_is_shown():
    snap = Meter(fake_recording(pool_stats=SimpleNamespace(hit_rate=0.995))).snapshot(2.0)
    assert "pool 99.5%" in plain_line(snap)


def test_plain_line_has_every_number():
    snap = Meter(fake_recording()).snapshot(2.0)
    assert snap.ring_fill == 51 / 1020 and snap.device_dropped == 3 and snap.gaps == 2
    line = plain_line(snap)
    for part in (
        "2.0 s",
        "samples/s/ch",
        "MB/s",
        "frames 120",
        "crc 1",
        "lost 7",
        "ring 5.0%",
        "drops 3",
        "markers 1",
        "[streaming]",
    ):
        assert part in line


def test_plain_mode_prints_periodically_and_quiet_prints_nothing():
    out = io.StringIO()
    view = LiveView(fake_recording(), "t", "plain", stream=out)
    for t in (0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        view.tick(t)
    assert len(out.getvalue().splitlines()) == 2  # at 1 s and 3 s
    quiet = io.StringIO()
    q = LiveView(fake_recording(), "t", "quiet", stream=quiet)
    q.tick(5.0)
    q.event(SimpleNamespace(elapsed=1.0, text="link lost", warning=True))
    assert quiet.getvalue() == ""


def test_rich_panel_renders_every_cell():
    out = io.StringIO()
    rec = fake_recording()
    view = LiveView(rec, "picodaq record: test", "rich", seconds=10, stream=out)
    with view:
        view.tick(1.0)
        view.event(SimpleNamespace(elapsed=1.0, text="link lost: gone", warning=True))
    text = out.getvalue()
    for cell in (
        "elapsed",
        "of 10 s",
        "samples/s",
        "MB/s",
        "frames",
        "CRC",
        "lost",
        "device ring",
        "dropped",
        "pool hit rate",
        "markers",
        "state",
        "link lost: gone",
    ):
        assert cell in text


def test_keys():
    assert key_action("7") == ("mark", 7)
    assert key_action("m") == key_action(" ") == ("mark", 1)
    assert key_action("q") == ("stop", 0)
    assert key_action("x") == ("", 0)
    assert key_action("٣") == ("", 0)  # a non-ASCII digit is not a code


def test_stream_talks_about_streaming_not_files():
    """`picodaq stream` writes no file, but its help said "how long to record" and its panel
    "finished; saving files" and "Ctrl-C stops and saves"."""
    from picodaq.cli.main import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    text = sub["stream"].format_help().split("options:")[1]  # (the description says: no files)
    assert "how long to stream" in text and "record" not in text and "files" not in text
    assert "how long to record" in sub["record"].format_help()
    out = io.StringIO()
    view = LiveView(fake_recording(), "picodaq stream: test", "rich", seconds=10, stream=out, files=False)
    with view:
        view.tick(1.0)
    text = out.getvalue()
    assert "finished" in text and "saving" not in text and "saves" not in text
    out = io.StringIO()
    with LiveView(fake_recording(), "picodaq record: test", "rich", seconds=10, stream=out) as view:
        view.tick(1.0)
    assert "finished; saving files" in out.getvalue()
