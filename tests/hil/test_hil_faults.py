"""The fault injector (seeded, chunking-independent, every fault logged and re-playable) and the
exact-accounting oracle that judges a faulty link, on synthetic board streams (no I/O)."""

from __future__ import annotations

import random
import zlib

import pytest

from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.errors import UsageError
from picodaq.protocol.frames import encode_frame, samples_payload
from picodaq_hil.faults import Disconnect, Fault, FaultInjector, FaultSpec, Piece, Stall, apply_offline
from picodaq_hil.oracle.accounting import Connection, Delivered, HilReceiver, RampCheck, audit_link
from picodaq_hil.oracle.capture import frames as scan_frames


def board_stream(
    n_frames: int, spf: int = 20, nch: int = 4, board_gaps: dict[int, int] | None = None, first_seq: int = 0
) -> bytes:
    """HELLO (a boot) then SAMPLES frames of the ramp; board_gaps {seq: instants the board skipped}."""
    out = bytearray(encode_frame(C.MSG_HELLO, first_seq, bytes(30)))
    idx = 0
    for s in range(first_seq + 1, first_seq + n_frames):
        idx += (board_gaps or {}).get(s, 0)
        data = ramp_counts(idx, spf, nch, C.FMT_INT16).astype("<i2").tobytes()
        out += encode_frame(C.MSG_SAMPLES, s, samples_payload(idx, 0, 1_000_000, nch, C.FMT_INT16, spf, data))
        idx += spf
    return bytes(out)


def chunked(data: bytes, rng: random.Random, most: int = 5000):
    i = 0
    while i < len(data):
        k = rng.randint(1, most)
        yield data[i : i + k]
        i += k


def reference_apply(data: bytes, faults: list[Fault]) -> bytes:
    """An independent model of what the fault log says happened to the stream."""
    buf = bytearray(data)
    for f in faults:
        if f.kind == "bitflip":
            buf[f.offset] ^= 1 << int(f.detail)
    dropped = [False] * len(buf)
    inserts: dict[int, bytes] = {}
    for f in faults:
        if f.kind == "drop":
            for i in range(f.offset, min(f.offset + f.length, len(buf))):
                dropped[i] = True
        elif f.kind == "dup":
            inserts[f.offset] = bytes(buf[f.offset - f.length : f.offset])
    out = bytearray()
    for i, b in enumerate(buf):
        if i in inserts:
            out += inserts[i]
        if not dropped[i]:
            out.append(b)
    return bytes(out)


ALL = FaultSpec(bitflip=3e-4, drop=3e-4, dup=3e-4, stall=1e-4, disconnect=5e-5)


def test_spec_parses_prints_and_refuses_nonsense():
    s = FaultSpec.parse("bitflip=1e-5, drop=2e-6,dup=0,stall=1e-6,stall_ms=10-20,disconnect=1e-7,disconnect_s=0.2")
    assert (s.bitflip, s.drop, s.dup, s.stall_min_ms, s.stall_max_ms, s.disconnect_s) == (1e-5, 2e-6, 0, 10, 20, 0.2)
    assert FaultSpec.parse(str(s)) == s
    assert not FaultSpec.parse("none").active and FaultSpec.parse("").active is False
    for bad in ("bitflip", "laser=1", "bitflip=x", "bitflip=2", "max_run=14", "stall_ms=5-1"):
        with pytest.raises(UsageError):
            FaultSpec.parse(bad)


def test_same_seed_same_faults_whatever_the_chunking():
    data = board_stream(3000)
    whole, log = apply_offline(data, ALL, seed=99)
    rng = random.Random(5)
    for _ in range(3):
        inj = FaultInjector(ALL, 99)
        out = bytearray()
        events = []
        for chunk in chunked(data, rng, most=rng.choice([7, 300, 9000])):
            for a in inj.process(chunk):
                if isinstance(a, Piece):
                    out += a.data
                else:
                    events.append(a)
        assert bytes(out) == whole and inj.faults == log
        assert [type(e) for e in events] == [
            Stall if f.kind == "stall" else Disconnect for f in log if f.kind in ("stall", "disconnect")
        ]
    other, other_log = apply_offline(data, ALL, seed=100)
    assert other_log != log and other != whole


def test_the_fault_log_says_exactly_what_happened():
    data = board_stream(3000)
    out, log = apply_offline(data, ALL, seed=3)
    kinds = {f.kind for f in log}
    assert kinds == {"bitflip", "drop", "dup", "stall", "disconnect"}
    assert reference_apply(data, log) == out


def test_rates_are_per_byte():
    data = bytes(1 << 20)
    _, log = apply_offline(data, FaultSpec(bitflip=1e-3, drop=2e-4), seed=1)
    flips = sum(f.kind == "bitflip" for f in log)
    drops = sum(f.kind == "drop" for f in log)
    assert abs(flips - 1049) < 5 * 1049**0.5 and abs(drops - 210) < 5 * 210**0.5
    assert max(f.length for f in log if f.kind == "drop") <= 8


def test_a_disabled_injector_keeps_its_schedule():
    data = board_stream(2000)
    _, full = apply_offline(data, ALL, seed=11)
    inj = FaultInjector(ALL, 11, enabled=False)
    half = len(data) // 2
    assert all(isinstance(a, Piece) for a in inj.process(data[:half]))
    assert inj.faults == []
    inj.enabled = True
    inj.process(data[half:])
    assert inj.faults == [f for f in full if f.offset >= half]


def test_which_frames_a_fault_damages():
    assert Fault("bitflip", 10, 1).damages(10, 24) and not Fault("bitflip", 24, 1).damages(10, 24)
    assert Fault("drop", 5, 6).damages(10, 24) and not Fault("drop", 4, 6).damages(10, 24)
    # a duplicate at a frame boundary leaves both frames intact, and so does one whose copied
    # run began at or before the frame's start: its second copy carries the frame on whole
    assert not Fault("dup", 10, 4).damages(10, 24) and not Fault("dup", 24, 4).damages(10, 24)
    assert not Fault("dup", 13, 4).damages(10, 24) and not Fault("dup", 14, 4).damages(10, 24)
    assert Fault("dup", 15, 4).damages(10, 24) and Fault("dup", 23, 4).damages(10, 24)
    assert not Fault("stall", 12, 0, 0.1).damages(10, 24)


def receive(data: bytes, seed: int = 0):
    rx = HilReceiver()
    ramp = RampCheck()
    rx.block_handlers.append(ramp.on_block)
    for chunk in chunked(data, random.Random(seed), most=3000):
        rx.receive(chunk)
    rx.finish()
    return rx, ramp


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_audit_passes_picodaqs_receiver_through_every_fault(seed):
    data = board_stream(4000, board_gaps={500: 7, 2500: 1000})
    spec = FaultSpec(bitflip=5e-5, drop=5e-5, dup=5e-5)
    host, log = apply_offline(data, spec, seed)
    rx, ramp = receive(host, seed)
    audit = audit_link(data, [Connection(host, rx.delivered, rx.stats.as_dict())], log, ramp.gap_samples)
    assert audit.ok, audit.problems
    assert audit.lost_frames > 10 and audit.lost_frames == audit.counted_frames == rx.stats.seq_lost
    assert audit.board_dropped == 1007 and audit.lost_samples == rx.stats.samples_lost == ramp.gap_samples
    assert audit.delivered == rx.stats.frames_ok and ramp.bit_exact


def test_audit_accounts_across_reconnects():
    data = board_stream(3000)
    frames = scan_frames(data)
    cut1, cut2 = frames[900].start + 5, frames[1700].end + 3  # the link drops mid-frame, twice
    back1, back2 = frames[1000].start - 40, frames[1800].start - 1
    faults = [
        Fault("disconnect", cut1),
        Fault("offline", cut1, back1 - cut1),
        Fault("disconnect", cut2),
        Fault("offline", cut2, back2 - cut2),
    ]
    parts = [data[:cut1], data[back1:cut2], data[back2:]]
    conns = []
    ramp = RampCheck()
    for p in parts:
        rx = HilReceiver()
        rx.block_handlers.append(ramp.on_block)
        rx.receive(p)
        rx.finish()
        conns.append(Connection(p, rx.delivered, rx.stats.as_dict()))
    audit = audit_link(data, conns, faults, ramp.gap_samples)
    assert audit.ok, audit.problems
    assert audit.lost_frames == audit.counted_frames == (1000 - 900) + (1800 - 1701)
    assert audit.lost_samples == ramp.gap_samples == audit.lost_frames * 20


def test_audit_catches_a_receiver_that_loses_or_miscounts():
    data = board_stream(2000)
    spec = FaultSpec(bitflip=5e-5, drop=5e-5)
    host, log = apply_offline(data, spec, 8)
    rx, ramp = receive(host)
    stats = rx.stats.as_dict()

    # an intact frame silently lost
    lossy = list(rx.delivered)
    del lossy[700]
    audit = audit_link(data, [Connection(host, lossy, stats)], log, ramp.gap_samples)
    assert any("not delivered" in p for p in audit.problems)

    # a frame delivered twice
    twice = list(rx.delivered)
    twice.insert(300, twice[300])
    assert not audit_link(data, [Connection(host, twice, stats)], log).ok

    # a frame the board never sent
    phantom = list(rx.delivered) + [Delivered(C.MSG_STATUS, 12345, zlib.crc32(b"x"))]
    assert any("never sent" in p for p in audit_link(data, [Connection(host, phantom, stats)], log).problems)

    # losses miscounted
    for key in ("seq_lost", "samples_lost", "samples"):
        wrong = dict(stats, **{key: stats[key] + 1})
        assert not audit_link(data, [Connection(host, rx.delivered, wrong)], log).ok, key
    assert not audit_link(data, [Connection(host, rx.delivered, stats)], log, ramp.gap_samples + 20).ok

    # a fault log that does not explain the damage (one fault left out)
    first_damaging = next(i for i, f in enumerate(log) if f.kind in ("bitflip", "drop"))
    assert not audit_link(
        data, [Connection(host, rx.delivered, stats)], log[:first_damaging] + log[first_damaging + 1 :]
    ).ok
    assert audit_link(data, [Connection(host, rx.delivered, stats)], log, ramp.gap_samples).ok


def test_ramp_check_finds_a_wrong_sample():
    data = bytearray(board_stream(50))
    f = scan_frames(bytes(data))[10]
    payload = bytearray(f.payload)
    payload[16 + 2 * 5] ^= 1  # instant 1, channel 1
    data[f.start : f.end] = encode_frame(f.type, f.seq, bytes(payload))
    _, ramp = receive(bytes(data))
    assert not ramp.bit_exact and ramp.mismatched_blocks == 1
    assert "channel 1" in ramp.mismatches[0]


def test_audit_holds_over_many_seeds_and_run_lengths():
    """Dense faults, where drops, copies and flips land next to each other and bytes coincide."""
    data = board_stream(400, board_gaps={50: 7})
    for seed in range(120):
        spec = FaultSpec(bitflip=4e-4, drop=4e-4, dup=4e-4, max_run=1 + seed % 13)
        host, log = apply_offline(data, spec, seed)
        assert reference_apply(data, log) == host, seed
        rx, ramp = receive(host, seed)
        audit = audit_link(data, [Connection(host, rx.delivered, rx.stats.as_dict())], log, ramp.gap_samples)
        assert audit.ok, (seed, audit.problems)
