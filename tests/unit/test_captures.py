"""Repeated, reordered and joined captures (issue 16, item 1), replayed through the CLI: every
instant is delivered once, nothing is counted as billions of lost frames, and no output grows
past the data it holds plus the gaps something vouches for."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import Capture, events, read_bdf
from picodaq import contracts as C
from picodaq.cli.main import main
from picodaq.core.blocks import ramp_counts

I16 = C.FMT_INT16
NCH = 2


def replay(capsys, cap, tmp_path, *suffixes: str) -> dict:
    outs = [a for s in suffixes for a in ("--out", str(tmp_path / f"r.{s}"))]
    code = main(["replay", str(cap), *outs, "--stats-json", "-"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def recording(cap: Capture, seconds: int, t0_us: int = 50_000_000, uptime_ms: int = 90_000) -> Capture:
    """One recording as `picodaq record` captures it: HELLO, STATUS twice a second, blocks of 20
    instants at 1 kHz, and the STATUS after STOP."""
    cap.hello(C.SRC_RAMP, seq=cap.seq or 7)
    for k in range(0, seconds * 1000, 20):
        if k % 500 == 0:
            cap.status(uptime_ms + k)
        cap.samples(k, t0_us + 1000 * k, ramp_counts(k, 20, NCH, I16))
    cap.status(uptime_ms + seconds * 1000 + 30, C.STATE_IDLE)
    return cap


def test_a_repeated_frame_is_dropped_not_4_billion_frames_lost(tmp_path, capsys):
    cap = recording(Capture(), 1)
    # repeat one SAMPLES frame in the middle, byte for byte, as a .tlv with a doubled write would
    data = bytes(cap.data)
    frame = encode_at(data, 30)
    at = data.index(frame) + len(frame)
    (tmp_path / "cap.tlv").write_bytes(data[:at] + frame + data[at:])
    s = replay(capsys, tmp_path / "cap.tlv", tmp_path, "npy", "bdf", "csv")
    assert s["duplicates"] == 1 and s["seq_lost"] == 0 and s["seq_resets"] == 0
    assert s["gaps"] == 0 and s["samples"] == s["rows"] == 1000 and s["duration_s"] == 1.0
    assert np.array_equal(np.load(tmp_path / "r.npy"), ramp_counts(0, 1000, NCH, I16))  # each instant once
    b = read_bdf(tmp_path / "r.bdf")
    assert len(b["digital"]) == 1000 and not [a for a in b["annotations"] if a[2].startswith("gap")]


def encode_at(data: bytes, k: int) -> bytes:
    """The k-th SAMPLES frame of a capture, as its bytes."""
    from picodaq.protocol.decoder import FrameDecoder

    seen = 0
    p = 0
    while True:
        p = data.index(C.MAGIC, p)
        length = int.from_bytes(data[p + 4 : p + 6], "little")
        if data[p + 3] == C.MSG_SAMPLES:
            if seen == k:
                frame = data[p : p + 14 + length]
                d = FrameDecoder()
                d.feed(frame)
                assert d.next_frame().type == C.MSG_SAMPLES
                return frame
            seen += 1
        p += 14 + length


@pytest.mark.parametrize("copies", [2, 400])
def test_a_capture_joined_to_itself_holds_its_data_and_no_phantom_gap(tmp_path, capsys, copies):
    """The issue's 400x joined capture replayed into a 5.4 GB BDF with 428,426 s of recording:
    each join was read as a ~1,070 s device-clock gap (its clock went back by the capture's length)."""
    one = bytes(recording(Capture(), 1).data)
    (tmp_path / "joined.tlv").write_bytes(one * copies)
    s = replay(capsys, tmp_path / "joined.tlv", tmp_path, "npy", "bdf", "csv")
    assert s["seq_resets"] == copies - 1 and s["seq_lost"] == 0 and s["duplicates"] == 0
    assert s["samples_lost"] == 0 and s["samples"] == s["rows"] == 1000 * copies
    assert s["gaps"] == s["stream_restarts"] == copies - 1 and s["gap_instants"] == 0
    assert s["duration_s"] == copies  # the data, and no gap anyone can vouch for
    gaps = [e for e in events(tmp_path / "r.events.csv") if e["kind"] == "gap"]
    assert len(gaps) == copies - 1 and all(g["duration_s"] == "" and "unknown" in g["detail"] for g in gaps)
    # no output is longer than its data: the BDF holds the instants (plus under a record of padding)
    bdf = tmp_path / "r.bdf"
    data_bytes = 1000 * copies * NCH * 3
    assert bdf.stat().st_size < 1.2 * data_bytes + 64 * 1024
    if copies == 2:
        b = read_bdf(bdf)
        assert np.array_equal(b["digital"][:2000], np.vstack([ramp_counts(0, 1000, NCH, I16)] * 2))
        (gap,) = [a for a in b["annotations"] if a[2].startswith("gap")]
        assert gap[:2] == (1.0, -1.0) and gap[2].endswith("restarted, duration unknown")
    t = np.loadtxt(tmp_path / "r.csv", delimiter=",", skiprows=1, usecols=0)
    assert len(t) == 1000 * copies and t[-1] == pytest.approx(copies - 0.001)


def test_reordered_frames_are_each_delivered_once_with_no_long_gap(tmp_path, capsys):
    cap = Capture().hello(C.SRC_RAMP, seq=3).status(5000)
    frames = []
    for k in range(0, 100, 10):
        before = len(cap.data)
        cap.samples(k, 1_000_000 + 1000 * k, ramp_counts(k, 10, NCH, I16))
        frames.append(bytes(cap.data[before:]))
    head = bytes(cap.data[: len(cap.data) - sum(map(len, frames))])
    frames[4], frames[5] = frames[5], frames[4]  # two frames swapped on the way
    (tmp_path / "cap.tlv").write_bytes(head + b"".join(frames))
    s = replay(capsys, tmp_path / "cap.tlv", tmp_path, "npy", "bdf")
    assert s["samples"] == 100 and s["duplicates"] == 0 and s["seq_resets"] == 1 and s["seq_lost"] == 2
    a = np.load(tmp_path / "r.npy")
    assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, ramp_counts(0, 100, NCH, I16).tolist()))
    # the frame that went back starts a new segment whose distance nothing vouches for: not filled
    assert s["duration_s"] <= 0.12


def _limited(tmp_path, data: bytes, limit: int, reads: int) -> tuple[dict, np.ndarray]:
    """Feed data as a link would (in `reads` pieces) through a pipeline limited to `limit`
    instants, into a .tlv and a .npy; return the counters and the array."""
    from picodaq.core.receiver import Receiver
    from picodaq.recording.outputs import open_outputs
    from picodaq.recording.pipeline import Pipeline

    rx = Receiver(runs=True, clock=False)
    pipe = Pipeline(rx, open_outputs([tmp_path / "live.tlv", tmp_path / "live.npy"]), limit=limit).attach()
    step = -(-len(data) // reads)
    for i in range(0, len(data), step):
        piece = memoryview(data)[i : i + step]
        pipe.raw(piece)
        rx.receive(piece)
    pipe.finish()
    assert pipe.complete
    return pipe.stats(), np.load(tmp_path / "live.npy")


@pytest.mark.parametrize("per,limit,reads", [(20, 5000, 1), (7, 1000, 3), (7, 1000, 40), (1, 3, 1), (50, 50, 2)])
def test_a_limited_recording_ends_with_its_last_instant_and_its_capture_replays_the_same(
    tmp_path, capsys, per, limit, reads
):
    """--seconds: exactly limit instants, whatever frames and reads they came in (runs cut
    inside, the last frame cut, frames after it dropped), and the .tlv says the same."""
    cap = Capture().hello(C.SRC_RAMP, seq=9).status(1000)
    for k in range(0, limit + 20 * per, per):
        cap.samples(k, 1000 * k, ramp_counts(k, per, NCH, I16))
        if k % 500 < per:
            cap.status(1000 + k).marker(k + 1, 4)
    cap.status(1000 + limit + 20 * per + 5, C.STATE_IDLE)
    stats, a = _limited(tmp_path, bytes(cap.data), limit, reads)
    assert stats["samples"] == stats["rows"] == len(a) == limit and stats["duration_s"] == limit / 1000
    assert np.array_equal(a, ramp_counts(0, limit, NCH, I16))
    again = replay(capsys, tmp_path / "live.tlv", tmp_path, "npy")
    assert {k: v for k, v in again.items() if k != "pool"} == {k: v for k, v in stats.items() if k != "pool"}
    assert np.array_equal(np.load(tmp_path / "r.npy"), a)
    assert again["truncated"] == again["skipped_bytes"] == 0


def test_a_limit_that_falls_in_a_gap_ends_the_recording_before_it(tmp_path, capsys):
    cap = Capture().hello(C.SRC_RAMP, seq=9).status(1000)
    for k in range(0, 100, 10):
        cap.samples(k, 1000 * k, ramp_counts(k, 10, NCH, I16))
    for k in range(300, 400, 10):  # 200 instants lost: the limit of 150 falls among them
        cap.samples(k, 1000 * k, ramp_counts(k, 10, NCH, I16))
    stats, a = _limited(tmp_path, bytes(cap.data), 150, 1)
    assert len(a) == stats["samples"] == 100 and stats["gaps"] == 0 and stats["duration_s"] == 0.1
    assert stats["samples_lost"] == 200  # the loss that ended it is reported
    again = replay(capsys, tmp_path / "live.tlv", tmp_path, "npy")
    assert {k: v for k, v in again.items() if k != "pool"} == {k: v for k, v in stats.items() if k != "pool"}
