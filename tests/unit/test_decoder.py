"""FrameDecoder against PROTOCOL.md's receiving rules.

Every stream is decoded three ways, as h11's tests do: all at once, byte by
byte, and with trailing garbage. Exact counters come from hand-built streams
and from a naive reference decoder written straight from the rules.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picodaq import contracts as C
from picodaq.buffers.pool import BufferPool
from picodaq.protocol.decoder import NEED_DATA, FrameDecoder
from picodaq.protocol.frames import encode_frame, samples_payload


def samples_frame(seq: int, first: int, n: int = 4, nch: int = 2, fmt: int = C.FMT_INT16) -> bytes:
    data = bytes(range(nch * n * C.BYTES_PER_SAMPLE[fmt]))
    return encode_frame(C.MSG_SAMPLES, seq, samples_payload(first, 1000, 1_000_000, nch, fmt, n, data))


def decode(stream: bytes, how: str) -> tuple[list, dict]:
    d = FrameDecoder()
    out = []
    if how == "all":
        d.feed(stream)
        out += list(d)
    elif how == "bytewise":
        for i in range(len(stream)):
            d.feed(stream[i : i + 1])
            out += list(d)
    elif how == "trailing":
        d.feed(stream + b"\x00garbage\xa5")
        out += list(d)
    d.feed(b"")
    out += list(d)
    return out, d.stats.as_dict()


WAYS = ["all", "bytewise", "trailing"]


@pytest.mark.parametrize("how", WAYS)
def test_clean_stream(how):
    frames = [samples_frame(i, 4 * i) for i in range(5)]
    out, s = decode(b"".join(frames), how)
    assert [f.seq for f in out] == list(range(5))
    assert s["frames_ok"] == 5 and s["samples"] == 20
    assert s["crc_errors"] == s["header_errors"] == s["seq_lost"] == s["samples_lost"] == s["decode_errors"] == 0
    assert s["skipped_bytes"] == (len(b"\x00garbage\xa5") if how == "trailing" else 0)


@pytest.mark.parametrize("how", WAYS)
def test_garbage_flips_truncation_and_oversize(how):
    f = [samples_frame(i, 4 * i) for i in range(6)]
    flipped = bytearray(f[2])
    flipped[20] ^= 0x10  # a payload bit: CRC error at its magic
    oversized = bytearray(encode_frame(C.MSG_MARKER, 99, b"\0" * 8))
    oversized[4:6] = struct.pack("<H", 9)  # MARKER max is 8: header error
    garbage = b"\x01\x02\x03"
    stream = garbage + f[0] + f[1] + bytes(flipped) + f[3][:17] + f[4] + bytes(oversized[:10]) + f[5]
    out, s = decode(stream, how)
    assert [f.seq for f in out] == [0, 1, 4, 5]  # every intact frame, once, in order
    # flipped f[2]: CRC error, its other len-1 bytes skipped. Truncated f[3] claims 14+24 bytes,
    # so its CRC spans into f[4]: CRC error, then f[3]'s 16 remaining bytes skipped before f[4].
    assert s["crc_errors"] == 2
    assert s["header_errors"] == 1  # the oversized MARKER; its 9 other header bytes are skipped
    tail = len(b"\x00garbage\xa5") if how == "trailing" else 0
    assert s["skipped_bytes"] == len(garbage) + (len(flipped) - 1) + 16 + 9 + tail
    assert s["seq_lost"] == 2  # 1 -> 4: the difference minus one
    assert s["samples_lost"] == 8  # blocks 2 and 3, four instants each


def test_seq_gap_counts_difference_minus_one():
    stream = samples_frame(10, 0) + samples_frame(11, 4) + samples_frame(15, 8)
    _, s = decode(stream, "all")
    assert s["seq_lost"] == 3 and s["samples_lost"] == 0


def test_seq_wraps_at_2_32():
    stream = samples_frame(0xFFFFFFFF, 0) + samples_frame(0, 4) + samples_frame(1, 8)
    _, s = decode(stream, "all")
    assert s["seq_lost"] == 0 and s["frames_ok"] == 3


def test_sample_index_wraps_and_gaps():
    stream = samples_frame(0, 0xFFFFFFFE) + samples_frame(1, 2) + samples_frame(2, 10)
    _, s = decode(stream, "all")
    assert s["samples_lost"] == 4  # 0xFFFFFFFE+4 wraps to 2: no loss; then 6 -> 10 loses 4


def test_samples_length_disagreeing_with_header_is_a_decode_error():
    good = samples_payload(0, 0, 1000, 2, C.FMT_INT16, 4, bytes(16))
    bad = samples_payload(4, 0, 1000, 2, C.FMT_INT16, 5, bytes(16))  # says 5 instants, carries 4
    stream = encode_frame(C.MSG_SAMPLES, 0, good) + encode_frame(C.MSG_SAMPLES, 1, bad) + samples_frame(2, 8)
    out, s = decode(stream, "all")
    assert [f.seq for f in out] == [0, 2]
    assert s["decode_errors"] == 1 and s["crc_errors"] == 0 and s["skipped_bytes"] == 0
    assert s["seq_lost"] == 0  # the dropped frame still arrived intact


def test_hello_with_seq_zero_is_a_reboot_not_a_gap():
    hello = encode_frame(C.MSG_HELLO, 0, bytes(64))
    stream = samples_frame(500, 1000) + hello + samples_frame(1, 0)
    _, s = decode(stream, "all")
    assert s["seq_lost"] == 0 and s["samples_lost"] == 0


@pytest.mark.parametrize("how", WAYS)
def test_a_repeated_frame_is_a_duplicate_dropped_once(how):
    # the capture: one SAMPLES frame repeated replayed as 4294967295 frames lost and
    # its instants delivered twice
    f = [samples_frame(i, 4 * i) for i in range(4)]
    out, s = decode(f[0] + f[1] + f[1] + f[1] + f[2] + f[3], how)
    assert [x.seq for x in out] == [0, 1, 2, 3]  # never delivered twice
    assert s["duplicates"] == 2 and s["frames_ok"] == 4 and s["samples"] == 16
    assert s["seq_lost"] == s["samples_lost"] == s["seq_resets"] == 0


@pytest.mark.parametrize("how", WAYS)
def test_a_seq_going_back_is_a_reset_never_loss(how):
    # a capture joined to itself: the second copy's seqs and indices go back
    copy = b"".join(samples_frame(10 + i, 4 * i) for i in range(5))
    out, s = decode(copy + copy + copy, how)
    assert [x.seq for x in out] == list(range(10, 15)) * 3
    assert s["seq_resets"] == 2 and s["seq_lost"] == 0 and s["samples_lost"] == 0 and s["duplicates"] == 0
    assert s["frames_ok"] == 15 and s["samples"] == 60


def test_a_seq_reset_is_a_new_base_for_sample_indices_too():
    # a sender restarted without a HELLO: seq back to 0, its index starts further on; no loss
    stream = samples_frame(500, 0) + samples_frame(501, 4) + samples_frame(0, 1000) + samples_frame(1, 1004)
    _, s = decode(stream, "all")
    assert s["seq_resets"] == 1 and s["seq_lost"] == 0 and s["samples_lost"] == 0


def test_reordered_frames_count_a_reset_not_4_billion_lost():
    f = [samples_frame(i, 4 * i) for i in range(4)]
    out, s = decode(f[0] + f[2] + f[1] + f[3], "all")
    assert [x.seq for x in out] == [0, 2, 1, 3]
    # 0 -> 2 loses one, 2 -> 1 goes back (a reset), 1 -> 3 loses one: by the rules, frame by frame
    assert s["seq_lost"] == 2 and s["seq_resets"] == 1 and s["duplicates"] == 0
    assert s["samples_lost"] == 8  # 0..3 then 8: 4 lost; 4 (a new segment) then 12: 4 lost


def test_a_duplicate_marker_is_not_routed_twice():
    m = encode_frame(C.MSG_MARKER, 7, struct.pack(C.MARKER_FORMAT, 10, 3, 0))
    out, s = decode(samples_frame(6, 0) + m + m + samples_frame(8, 4), "all")
    assert [(x.type, x.seq) for x in out] == [(C.MSG_SAMPLES, 6), (C.MSG_MARKER, 7), (C.MSG_SAMPLES, 8)]
    assert s["duplicates"] == 1 and s["seq_lost"] == 0


def test_incomplete_frame_waits_then_completes():
    f = samples_frame(0, 0)
    d = FrameDecoder()
    d.feed(f[:-1])
    assert d.next_frame() is NEED_DATA
    assert d.buffered == len(f) - 1
    d.feed(f[-1:])
    assert d.next_frame().seq == 0


def test_end_of_input_inside_a_frame_frees_the_frames_it_covered():
    # a header claiming 4000 bytes, then an intact frame, then the end
    bogus = struct.pack("<2sBBHI", C.MAGIC, 1, C.MSG_SAMPLES, 4000, 7)
    f = samples_frame(1, 0)
    d = FrameDecoder()
    d.feed(bogus + f)
    assert list(d) == []  # still waiting for 4014 bytes
    d.feed(b"")
    assert [x.seq for x in d] == [1]
    assert d.stats.truncated == 1 and d.stats.skipped_bytes == len(bogus) - 1


# -- property tests ------------------------------------------------------------


def reference_decode(stream: bytes) -> tuple[list[tuple[int, int, bytes]], dict]:
    """PROTOCOL.md's receiving rules, byte by byte, as plainly as possible: the frames delivered
    (type, seq, payload) and every counter."""
    p, accepted = 0, []
    c = dict(frames_ok=0, crc_errors=0, header_errors=0, skipped_bytes=0, truncated=0)
    while p < len(stream):
        if stream[p : p + 2] != C.MAGIC:
            c["skipped_bytes"] += 1
            p += 1
            continue
        if len(stream) - p < 10:
            c["truncated"] += 1
            p += 1
            continue
        _, ver, typ, length, seq = struct.unpack_from("<2sBBHI", stream, p)
        if ver != 1 or typ not in C.MAX_PAYLOAD_BY_TYPE or length > C.MAX_PAYLOAD_BY_TYPE[typ]:
            c["header_errors"] += 1
            p += 1
            continue
        if len(stream) - p < 14 + length:
            c["truncated"] += 1
            p += 1
            continue
        body = stream[p : p + 10 + length]
        if zlib.crc32(body) != struct.unpack_from("<I", stream, p + 10 + length)[0]:
            c["crc_errors"] += 1
            p += 1
            continue
        accepted.append((typ, seq, bytes(stream[p + 10 : p + 10 + length])))
        p += 14 + length
    # the sequence and sample rules, over the accepted frames
    c.update(duplicates=0, seq_lost=0, seq_resets=0, decode_errors=0, samples=0, samples_lost=0)
    delivered = []
    last = prev_first = None
    prev_n = 0
    for typ, seq, payload in accepted:
        if typ == C.MSG_HELLO and seq == 0:
            prev_first = None  # a (re)booted board: a new base
        elif last is not None:
            d = (seq - last) % (1 << 32)
            if d == 0:
                c["duplicates"] += 1  # dropped before anything else
                continue
            if d < 1 << 31:
                c["seq_lost"] += d - 1
            else:
                c["seq_resets"] += 1
                prev_first = None
        last = seq
        if typ == C.MSG_SAMPLES:
            ok = len(payload) >= 16
            if ok:
                first, _, _, nch, fmt, n = struct.unpack_from("<IIIBBH", payload)
                bps = C.BYTES_PER_SAMPLE.get(fmt, 0)
                ok = bool(bps) and 1 <= nch <= C.MAX_CHANNELS and len(payload) == 16 + nch * n * bps
            if not ok:
                c["decode_errors"] += 1
                continue
            if prev_first is not None:
                e = (first - prev_first - prev_n) % (1 << 32)
                if e < 1 << 31:
                    c["samples_lost"] += e
            prev_first, prev_n = first, n
            c["samples"] += n
        delivered.append((typ, seq, payload))
        c["frames_ok"] += 1
    return delivered, c


def _frame_for(kind: int, seq: int, first: int, body: bytes) -> bytes:
    if kind == C.MSG_SAMPLES:
        n = max(len(body) // 4, 1)
        return samples_frame(seq, first, n=n, nch=2)
    return encode_frame(kind, seq, body[: C.MAX_PAYLOAD_BY_TYPE[kind]])


def build_stream(parts) -> tuple[bytearray, list[int]]:
    """Frames after garbage, each kept, bit-flipped or cut; their seqs go on by one, repeat the
    last (a duplicate), go back or jump ahead, their sample indices go on, jump or go back.
    Returns the stream and the positions of the frames left intact."""
    stream = bytearray()
    intact = []
    seq = first = 0
    prev = b""
    for i, (kind, body, garbage, damage, where, step) in enumerate(parts):
        stream += garbage
        if step == "repeat" and prev:
            f = bytearray(prev)  # the same frame again, byte for byte
        else:
            seq = (seq + {"next": 1, "repeat": 1, "back": -3, "jump": 5, "wrap": (1 << 32) - 2}[step]) % (1 << 32)
            first = (first + {"back": -40, "jump": 9}.get(step, 0)) % (1 << 32)
            f = bytearray(_frame_for(kind, seq, first, body))
            if kind == C.MSG_SAMPLES:
                first = (first + max(len(body) // 4, 1)) % (1 << 32)
        prev = bytes(f)
        if damage == "flip":
            f[where % len(f)] ^= 1 << (where % 8)
        elif damage == "cut":
            f = f[: where % len(f)]
        else:
            intact.append(i)
        stream += f
    return stream, intact


frame_kinds = st.sampled_from([C.MSG_SAMPLES, C.MSG_STATUS, C.MSG_LOG, C.MSG_ACK, C.MSG_MARKER])
pieces = st.lists(
    st.tuples(
        frame_kinds,
        st.binary(max_size=40),
        st.binary(max_size=30),
        st.sampled_from(["keep", "flip", "cut"]),
        st.integers(0, 10_000),
        st.sampled_from(["next", "next", "next", "repeat", "back", "jump", "wrap"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces)
def test_any_mix_yields_exactly_what_the_rules_say(parts):
    """Frames, damage, garbage, duplicates, resets and jumps: the frames delivered and every
    counter (seq_lost, duplicates, seq_resets, samples, samples_lost, decode_errors, ...) are
    those of the reference decoder written straight from the rules."""
    stream, _ = build_stream(parts)
    ref_frames, ref = reference_decode(bytes(stream))
    for how in ("all", "bytewise"):
        out, s = decode(bytes(stream), how)
        assert [(f.type, f.seq, bytes(f.payload)) for f in out] == ref_frames
        assert s == ref, how


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces)
def test_every_intact_frame_is_delivered_unless_it_repeats_the_last(parts):
    """Damage aside (a CRC collision could only add a frame), every intact frame comes out, and the
    only intact frames held back are duplicates and decode errors, each counted."""
    stream, intact = build_stream(parts)
    out, s = decode(bytes(stream), "all")
    assert len(out) + s["duplicates"] + s["decode_errors"] >= len(intact)
    seqs = [f.seq for f in out]
    assert all(a != b for a, b in zip(seqs, seqs[1:]))  # never the same frame twice in a row


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_arbitrary_bytes_never_crash_and_every_byte_is_accounted(data, chunk):
    d = FrameDecoder()
    for i in range(0, len(data), chunk):
        d.feed(data[i : i + chunk])
        list(d)
    d.feed(b"")
    list(d)
    assert d.buffered == 0
    _, ref = reference_decode(data)
    assert d.stats.as_dict() == ref


# -- in place, pooled, chunked ---------------------------------------------------------


def _chunked(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in zip(points, points[1:])]


def _decode_all(pieces: list[bytes], pool: BufferPool | None, mutable: bool) -> tuple[list, dict]:
    """Feed pieces (as bytearrays that are wiped once the decoder says NEED_DATA, if mutable)."""
    d = FrameDecoder(pool)
    out = []

    def take(frame):
        with frame:
            out.append((frame.type, frame.seq, bytes(frame.payload)))

    for p in pieces:
        buf = bytearray(p) if mutable else p
        d.feed(buf)
        d.drain(take)
        if mutable:
            buf[:] = b"\xa5" * len(buf)  # the decoder must have kept what it still needs
    d.feed(b"")
    d.drain(take)
    return out, d.stats.as_dict()


intact_or_garbage = st.lists(
    st.one_of(
        st.tuples(
            st.just("frame"),
            st.sampled_from([C.MSG_SAMPLES, C.MSG_STATUS, C.MSG_LOG, C.MSG_ACK, C.MSG_MARKER, C.MSG_HELLO]),
            st.binary(max_size=64),
        ),
        st.tuples(st.just("garbage"), st.just(0), st.binary(min_size=1, max_size=40)),
        # garbage that looks like the start of a frame: magic, version, a type and a length
        st.tuples(
            st.just("garbage"),
            st.just(0),
            st.builds(
                lambda t, n, tail: C.MAGIC + bytes([1, t]) + n.to_bytes(2, "little") + tail,
                st.sampled_from([1, 2, 3, 5, 9]),
                st.integers(0, 300),
                st.binary(max_size=20),
            ),
        ),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intact_or_garbage, st.lists(st.integers(0, 10_000), max_size=8), st.booleans(), st.booleans())
def test_intact_frames_among_any_garbage_come_out_exactly_in_order(parts, cuts, pooled, mutable):
    stream = bytearray()
    expected = []
    seq = 0
    for kind, mtype, body in parts:
        if kind == "garbage":
            stream += body
            continue
        if mtype == C.MSG_SAMPLES:
            n = max(1, len(body) // 4)
            payload = samples_payload(4096 * seq, 0, 1000, 2, C.FMT_INT16, n, bytes(range(4 * n)))
        else:
            payload = body[: C.MAX_PAYLOAD_BY_TYPE[mtype]]
        seq += 1
        expected.append((mtype, seq, bytes(payload)))
        stream += encode_frame(mtype, seq, payload)
    pool = BufferPool() if pooled else None
    got, s = _decode_all(_chunked(bytes(stream), cuts), pool, mutable)
    # garbage can only add frames by a CRC-32 collision: every intact frame comes out, once, in order
    assert got == expected
    assert s["frames_ok"] == len(expected)
    if pool is not None:
        s = pool.stats
        assert s.in_use == 0 and s.leaked == 0 and s.acquires == len(expected)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces, st.lists(st.integers(0, 10_000), max_size=10))
def test_pooled_and_detached_decoders_agree_on_any_chunking(parts, cuts):
    stream, _ = build_stream(parts)
    ref_out, ref_stats = decode(bytes(stream), "all")
    pool = BufferPool()
    out, s = _decode_all(_chunked(bytes(stream), cuts), pool, mutable=True)
    assert [(t, q) for t, q, _ in out] == [(f.type, f.seq) for f in ref_out]
    assert [p for _, _, p in out] == [bytes(f.payload) for f in ref_out]
    assert s == ref_stats


def test_drain_lends_one_envelope_and_the_pool_gets_every_buffer_back():
    pool = BufferPool()
    d = FrameDecoder(pool)
    frames = b"".join(samples_frame(i, 4 * i) for i in range(50))
    seen = set()
    kept = []

    def handler(frame):
        seen.add(id(frame))
        if frame.seq % 10 == 0:
            kept.append(frame.take_loan())  # handed on: the caller releases it later
        else:
            frame.release()

    d.feed(frames)
    assert d.drain(handler) == 50
    assert len(seen) == 1  # the same envelope each time
    assert pool.stats.in_use == 5
    for loan in kept:
        loan.release()
    s = pool.stats
    assert s.in_use == 0 and s.acquires == 50 and s.allocations == 6  # 5 kept + 1 in flight


def test_next_frame_with_a_pool_hands_over_frames_that_must_be_released():
    pool = BufferPool()
    d = FrameDecoder(pool)
    d.feed(samples_frame(7, 0) + encode_frame(C.MSG_LOG, 8, b"\x14hello"))
    f1, f2 = d.next_frame(), d.next_frame()
    assert d.next_frame() is NEED_DATA
    with f1, f2:
        assert f1.head == (0, 2, C.FMT_INT16, 4)  # first index, channels, format, instants
        assert bytes(f2.payload) == b"\x14hello" and f2.raw[:2] == C.MAGIC
        assert pool.stats.in_use == 2
    assert pool.stats.in_use == 0
    with pytest.raises(ValueError):
        f1.payload  # noqa: B018


def test_stash_lets_the_caller_reuse_its_buffer_mid_stream():
    frames = [samples_frame(i, 4 * i) for i in range(4)]
    buf = bytearray(b"".join(frames) + frames[0][:5])
    d = FrameDecoder()
    d.feed(buf)
    assert d.next_frame().seq == 0  # three complete frames and a partial one are still unread
    d.stash()
    buf[:] = bytes(len(buf))
    assert [f.seq for f in d] == [1, 2, 3]
    d.feed(frames[0][5:])
    assert d.next_frame().seq == 0 and d.buffered == 0


def test_feeding_again_before_draining_keeps_everything():
    frames = [samples_frame(i, 4 * i) for i in range(6)]
    d = FrameDecoder()
    d.feed(frames[0] + frames[1][:7])
    d.feed(frames[1][7:] + frames[2])
    d.feed(frames[3] + frames[4] + frames[5][:3])
    assert [f.seq for f in d] == [0, 1, 2, 3, 4]
    assert d.buffered == 3
    d.feed(frames[5][3:])
    assert [f.seq for f in d] == [5]
    assert d.stats.frames_ok == 6 and d.stats.skipped_bytes == 0
