"""The decoder on streams built to hit its header and CRC paths: magics, near-headers (magic and
version with a wrong type or length, or a header cut short), frames cut anywhere and frames with a
flipped bit, between intact frames, fed in any chunking, frame by frame and in runs.

Random bytes almost never hold a magic (tests/unit/test_decoder.py), so its damaged-frame paths
would go untried; here every example is made of them. The oracle is written from PROTOCOL.md's
receiving rules alone (find magic; check header; wait for the whole frame; check CRC; on any
failure resume one byte after that magic) and counts bytes, headers, CRCs and truncations the
same way; seq and sample-index losses are checked only where they are plain gaps (the stream
never repeats a seq nor goes back), the duplicate and reset rules being another change's.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hypo import examples
from picodaq import contracts as C
from picodaq.bench.frames import encode_counts
from picodaq.core.blocks import ramp_counts
from picodaq.core.primary import BlockQueue
from picodaq.core.receiver import Receiver
from picodaq.protocol.decoder import FrameDecoder
from picodaq.protocol.frames import encode_frame, samples_payload

_HEAD = struct.Struct(C.HEADER_FORMAT)
NCH, FMT = 2, C.FMT_INT16
U32 = 1 << 32


def reference(stream: bytes) -> tuple[list[tuple[int, int, bytes]], dict[str, int]]:
    """PROTOCOL.md's receiving rules, byte by byte: the frames (type, seq, payload) and the counters."""
    p, out = 0, []
    c = dict(crc_errors=0, header_errors=0, skipped_bytes=0, truncated=0)
    n = len(stream)
    while p < n:
        if stream[p : p + 2] != C.MAGIC:
            c["skipped_bytes"] += 1
            p += 1
            continue
        if n - p < C.HEADER_SIZE:
            c["truncated"] += 1
            p += 1
            continue
        _, version, mtype, length, seq = _HEAD.unpack_from(stream, p)
        if version != C.PROTOCOL_VERSION or length > C.MAX_PAYLOAD_BY_TYPE.get(mtype, -1):
            c["header_errors"] += 1
            p += 1
            continue
        end = p + C.OVERHEAD + length
        if end > n:
            c["truncated"] += 1
            p += 1
            continue
        if zlib.crc32(stream[p : end - 4]) != int.from_bytes(stream[end - 4 : end], "little"):
            c["crc_errors"] += 1
            p += 1
            continue
        out.append((mtype, seq, bytes(stream[p + C.HEADER_SIZE : end - 4])))
        p = end
    return out, c


def losses(frames: list[tuple[int, int, bytes]]) -> tuple[int, int]:
    """seq_lost and samples_lost over delivered frames whose seqs only ever step forward a little."""
    seq_lost = samples_lost = 0
    last_seq = end = None
    for mtype, seq, payload in frames:
        if last_seq is not None:
            d = (seq - last_seq) % U32
            assert 0 < d < U32 // 2  # by construction: no duplicate, no reset
            seq_lost += d - 1
        last_seq = seq
        if mtype == C.MSG_SAMPLES:
            first, n = struct.unpack_from("<I", payload)[0], struct.unpack_from("<H", payload, 14)[0]
            if end is not None:
                samples_lost += (first - end) % U32
            end = first + n
    return seq_lost, samples_lost


# -- the streams -----------------------------------------------------------------------------

KINDS = (C.MSG_SAMPLES, C.MSG_SAMPLES, C.MSG_SAMPLES, C.MSG_STATUS, C.MSG_LOG, C.MSG_MARKER, C.MSG_ACK)


def frame(kind: int, seq: int, first: int, n: int, body: bytes) -> bytes:
    if kind == C.MSG_SAMPLES:
        data = encode_counts(ramp_counts(first, n, NCH, FMT), FMT).tobytes()
        return encode_frame(kind, seq, samples_payload(first, first * 1000, 1_000_000, NCH, FMT, n, data))
    return encode_frame(
        kind, seq, body[: C.MAX_PAYLOAD_BY_TYPE[kind]].ljust(min(8, C.MAX_PAYLOAD_BY_TYPE[kind]), b"\0")
    )


near_header = st.one_of(
    st.just(C.MAGIC),  # a magic alone
    st.builds(lambda b: C.MAGIC + bytes([b]), st.integers(0, 255)),  # a header cut short
    st.builds(  # magic and version, then a type and a length: unknown type, too long, or plausible
        lambda t, n, seq, tail: C.MAGIC + bytes([C.PROTOCOL_VERSION, t]) + struct.pack("<HI", n, seq) + tail,
        st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x05, 0x10, 0x77, 0xFF]),
        st.sampled_from([0, 8, 9, 64, 65, 128, 129, 4096, 4097, 0xFFFF]),
        st.integers(0, U32 - 1),
        st.binary(max_size=12),
    ),
    st.builds(lambda v: C.MAGIC + bytes([v, C.MSG_SAMPLES]) + b"\x10\x00", st.integers(2, 255)),  # bad version
    st.binary(max_size=16).map(lambda b: b.replace(b"\xa5", b"\xa5\x5a")),  # noise full of magics
)

# each piece: garbage before it, then a frame kept, cut (at a point) or with one bit flipped
piece = st.tuples(
    st.lists(near_header, max_size=2).map(b"".join),
    st.sampled_from(KINDS),
    st.integers(1, 12),  # instants of a SAMPLES frame
    st.binary(min_size=8, max_size=40),
    st.sampled_from(["keep", "keep", "keep", "cut", "flip"]),
    st.integers(0, 1 << 16),
)


def build(pieces, seq0: int) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """The stream, and the frames left intact (type, seq, payload). Every frame, kept or not, takes
    the next seq and (SAMPLES) the next instants, as a board's would."""
    stream, intact = bytearray(), []
    seq, first = seq0, 0
    for garbage, kind, n, body, damage, where in pieces:
        stream += garbage
        f = bytearray(frame(kind, seq % U32, first, n, body))
        if damage == "cut":
            f = f[: where % len(f)]
        elif damage == "flip":
            f[where % len(f)] ^= 1 << (where % 8)
        else:
            intact.append((kind, seq % U32, bytes(f[C.HEADER_SIZE : -4])))
        stream += f
        seq += 1
        first += n if kind == C.MSG_SAMPLES else 0
    return bytes(stream), intact


def chunks(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in zip(points, points[1:])]


streams = st.tuples(
    st.lists(piece, min_size=1, max_size=10),
    st.sampled_from([1, 1000, U32 - 3]),  # seqs that wrap too
    st.lists(st.integers(0, 1 << 16), max_size=8),
)


@settings(max_examples=examples(120))
@given(streams)
def test_damaged_streams_decode_as_the_rules_say_in_any_chunking(case):
    pieces, seq0, cuts = case
    stream, intact = build(pieces, seq0)
    want, counts = reference(stream)
    # only a CRC-32 collision could make a frame out of damage: the rules deliver exactly the intact ones
    assert want == intact
    d = FrameDecoder()
    got = []
    for c in chunks(stream, cuts):
        d.feed(c)
        got += [(f.type, f.seq, bytes(f.payload)) for f in d]
    d.feed(b"")
    got += [(f.type, f.seq, bytes(f.payload)) for f in d]
    assert got == want
    s = d.stats.as_dict()
    assert {k: s[k] for k in counts} == counts, (s, counts)
    assert s["frames_ok"] == len(want) and s["decode_errors"] == 0
    assert (s["seq_lost"], s["samples_lost"]) == losses(want)
    assert s["samples"] == sum(struct.unpack_from("<H", p, 14)[0] for t, _, p in want if t == C.MSG_SAMPLES)


@settings(max_examples=examples(80))
@given(streams)
def test_damaged_streams_through_the_receiver_in_runs_deliver_the_intact_instants(case):
    """The batched path (Receiver(runs=True), as record and replay receive): runs of SAMPLES frames
    are checked at once, so a damaged frame inside a run must end the run there, not spoil it."""
    pieces, seq0, cuts = case
    stream, intact = build(pieces, seq0)
    want = [(struct.unpack_from("<I", p)[0], struct.unpack_from("<H", p, 14)[0]) for t, _, p in intact if t == 2]
    q = BlockQueue(maxlen=1_000_000)
    rx = Receiver(primary=q, runs=True, clock=False)
    for c in chunks(stream, cuts):
        rx.receive(c)
    rx.finish()
    got: list[tuple[int, int]] = []

    def take(b) -> None:
        # a block may hold several frames: its instants are the intact frames', each the ramp
        assert np.array_equal(b.counts, ramp_counts(b.first_index, b.n_samples, NCH, FMT))
        got.append((b.first_index, b.n_samples))

    q.poll_each(len(q), take)
    flat = [i for f, n in got for i in range(f, f + n)]
    assert flat == [i for f, n in want for i in range(f, f + n)]
    _, counts = reference(stream)
    s = rx.stats.as_dict()
    assert {k: s[k] for k in counts} == counts
    assert (s["seq_lost"], s["samples_lost"]) == losses(intact)
    assert rx.pool_stats.in_use == 0 and rx.pool_stats.leaked == 0
