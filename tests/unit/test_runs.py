"""Receiver(runs=True): runs of frames checked and delivered at once must deliver exactly what
frame-by-frame delivery does (the same instants, indices, counters and observer shares), whatever
the stream holds and however it is cut into reads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypo import examples
from picodaq import contracts as C
from picodaq.bench.frames import encode_counts
from picodaq.core.blocks import ramp_counts
from picodaq.core.primary import BlockQueue
from picodaq.core.receiver import Receiver
from picodaq.protocol.frames import encode_frame, samples_payload


def samples(seq: int, first: int, n: int, nch: int, fmt: int, t0: int = 0) -> bytes:
    data = encode_counts(ramp_counts(first, n, nch, fmt), fmt).tobytes()
    return encode_frame(C.MSG_SAMPLES, seq, samples_payload(first, t0, 1_000_000, nch, fmt, n, data))


class Watch:
    """What one receiver delivered: the primary's instants, each observer's rows, the counters."""

    def __init__(self, runs: bool) -> None:
        self.queue = BlockQueue(maxlen=1_000_000)
        self.rx = Receiver(primary=self.queue, runs=runs)
        self.seen: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"every": [], "third": []}
        self.handled: list[tuple[int, int]] = []
        self.rx.taps.add(lambda v: self._saw("every", v), name="every")
        self.rx.taps.add(lambda v: self._saw("third", v), every=3, name="third")
        self.rx.block_handlers.append(lambda b: self.handled.append((b.first_index, b.n_samples)))

    def _saw(self, name: str, view) -> None:
        assert view.n_samples == view.n_frames * view.frame_samples == len(view.counts)
        assert view.frame_counts.shape == (view.n_frames, view.frame_samples, view.n_channels)
        assert not view.counts.flags.writeable or view.counts.flags.owndata  # read-only, or a copy of its own
        self.seen[name].append((view.indices.astype(np.int64), np.array(view.counts)))

    def feed(self, data: bytes, cuts: list[int]) -> None:
        at = 0
        for c in sorted(set(cuts)) + [len(data)]:
            if c > at:
                self.rx.receive(data[at:c])
                at = c
        self.rx.finish()

    def result(self) -> dict:
        rows: list[tuple[np.ndarray, np.ndarray]] = []

        def take(b) -> None:
            assert b.n_samples == b.n_frames * b.frame_samples
            assert (b.frame_counts.reshape(-1, b.n_channels) == b.counts).all()
            assert len(b.frame_t0_us) == b.n_frames
            rows.append((b.indices.astype(np.int64), b.counts.copy()))

        self.queue.poll_each(1 << 30, take)
        cat = _concat(rows)
        return {
            "instants": cat,
            "stats": self.rx.stats.as_dict(),
            "taps": [(t.name, t.delivered, t.dropped) for t in self.rx.taps],
            "every": _concat(self.seen["every"]),
            "third": _concat(self.seen["third"]),
            "handled": sum(n for _, n in self.handled),
            "markers": [(m.sample_index, m.code) for m in self.rx.markers],
            "statuses": self.rx.statuses,
            "in_use": self.rx.pool_stats.in_use,
            "blocks_in_use": self.rx.block_stats.in_use,
        }


def _concat(rows):
    if not rows:
        return ([], [])
    return (np.concatenate([r[0] for r in rows]).tolist(), np.concatenate([r[1].ravel() for r in rows]).tolist())


def both(data: bytes, cuts: list[int]) -> tuple[dict, dict, int]:
    one, many = Watch(runs=False), Watch(runs=True)
    one.feed(data, cuts)
    many.feed(data, cuts)
    return one.result(), many.result(), many.rx.decoder.runs


# A stream: segments of SAMPLES frames that continue each other, with what breaks runs between
# and inside them: other messages, layout changes, lost frames, jumps, restarts, damage, garbage.
segment = st.tuples(
    st.integers(1, 30),  # frames
    st.sampled_from([(1, C.FMT_INT16), (3, C.FMT_INT24), (2, C.FMT_INT32), (8, C.FMT_INT16)]),
    st.integers(1, 12),  # instants per frame
    st.sampled_from(["continue", "lose_frames", "jump", "restart", "hello", "repeat", "seq_back", "joined"]),
    st.lists(
        st.sampled_from(["status", "marker", "log", "garbage", "flip", "cut", "duplicate", "swap", "again"]),
        max_size=3,
    ),
    st.integers(0, 10_000),  # where damage and interruptions go
)


def build(segments) -> bytes:
    out = bytearray()
    seq, first = 0, 0
    for frames, (nch, fmt), n, start, extras, where in segments:
        if start == "lose_frames":
            seq += 2
            first += 2 * n
        elif start == "jump":
            first += 1 + where % 50
        elif start == "restart":
            first = 0
        elif start == "hello":
            out += encode_frame(C.MSG_HELLO, 0, bytes(30))
            seq, first = 1, 0
        elif start == "repeat" and out:
            out += out[-min(len(out), 200) :]
        elif start == "seq_back":  # the sender restarted without a HELLO: seq and index go back
            seq, first = max(0, seq - 7), 0
        elif start == "joined" and 0 < len(out) < 30_000:  # a copy of the capture so far, joined on
            out += bytes(out)
        body = [samples(seq + i, first + i * n, n, nch, fmt, t0=1000 * i) for i in range(frames)]
        seq += frames
        first += frames * n
        for j, extra in enumerate(extras):
            k = (where + 7 * j) % len(body)
            f = bytearray(body[k])
            if extra == "flip":
                f[(where + j) % len(f)] ^= 1 << (j % 8)
            elif extra == "cut":
                f = f[: (where + j) % len(f)]
            elif extra == "status":
                f += encode_frame(C.MSG_STATUS, seq, bytes(24))
                seq += 1
            elif extra == "marker":
                f += encode_frame(C.MSG_MARKER, seq, (first + 3).to_bytes(4, "little") + b"\x05\x00\x00\x00")
                seq += 1
            elif extra == "log":
                f += encode_frame(C.MSG_LOG, seq, b"\x14hello")
                seq += 1
            elif extra == "duplicate":  # the frame twice (d = 0: the second is dropped)
                f += bytes(f)
            elif extra == "again":  # an earlier frame again, later (d >= 2**31: a reset)
                f += body[(k + where) % len(body)]
            elif extra == "swap":  # this frame and the next one, reordered
                if k + 1 < len(body):
                    f, body[k + 1] = bytearray(body[k + 1]), bytes(f)
            else:
                f = bytes(range(where % 7, where % 7 + 5)) + f
            body[k] = bytes(f)
        out += b"".join(body)
    return bytes(out)


@settings(max_examples=examples(100))
@given(st.lists(segment, min_size=1, max_size=6), st.lists(st.integers(0, 20_000), max_size=6))
def test_runs_deliver_exactly_what_frames_do(segments, cuts):
    data = build(segments)
    one, many, _ = both(data, cuts)
    assert many == one
    assert one["in_use"] == 0 or one["in_use"] == len(one["instants"][0]) * 0  # the queue was drained


def test_a_clean_stream_is_taken_in_runs_and_matches_the_ramp():
    data = b"".join(samples(i, 10 * i, 10, 4, C.FMT_INT24) for i in range(500))
    cuts = list(range(4000, len(data), 4000))
    one, many, runs = both(data, cuts)
    assert many == one and runs == len(cuts) + 1  # each read's frames went as one run
    assert one["stats"]["frames_ok"] == 500 and one["stats"]["samples"] == 5000
    idx, values = many["instants"]
    assert idx == list(range(5000))
    assert values == ramp_counts(0, 5000, 4, C.FMT_INT24).ravel().tolist()


@pytest.mark.parametrize("damage", ["flip_payload", "flip_seq", "drop_frame", "swap_layout"])
def test_damage_inside_a_run_breaks_it_where_the_rules_say(damage):
    frames = [bytearray(samples(i, 8 * i, 8, 2, C.FMT_INT16)) for i in range(40)]
    if damage == "flip_payload":
        frames[17][40] ^= 0x01  # CRC error: the frame is lost, its neighbours are not
    elif damage == "flip_seq":
        frames[17] = bytearray(samples(99, 8 * 17, 8, 2, C.FMT_INT16))  # intact, but seq jumps ahead
    elif damage == "drop_frame":
        frames[17] = bytearray()
    else:
        frames[17] = bytearray(samples(17, 8 * 17, 4, 4, C.FMT_INT16))  # same length, other layout
    one, many, runs = both(b"".join(frames), [])
    assert many == one and runs >= 1
    s = one["stats"]
    if damage == "flip_payload":
        assert s["crc_errors"] == 1 and s["frames_ok"] == 39 and s["samples_lost"] == 8 and s["seq_lost"] == 1


def test_a_duplicate_inside_a_run_is_dropped_and_a_joined_copy_is_a_new_base():
    frames = [samples(i, 8 * i, 8, 2, C.FMT_INT16) for i in range(40)]
    copy = b"".join(frames[:20] + [frames[19]] + frames[20:])  # frame 19 twice
    one, many, runs = both(copy + copy, [])
    assert many == one and runs >= 2
    s = many["stats"]
    assert s["duplicates"] == 2 and s["seq_resets"] == 1
    assert s["seq_lost"] == s["samples_lost"] == 0 and s["frames_ok"] == 80
    idx, _ = many["instants"]
    assert idx == list(range(320)) * 2  # each copy's instants once: none delivered twice in a row
