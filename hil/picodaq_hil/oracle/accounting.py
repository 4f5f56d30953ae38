"""Checking that the host accounted for every frame and every sample.

- `HilReceiver` is picodaq's Receiver, recording what it delivered (type, seq
  and a CRC of the payload of every frame), so the frames can be compared with
  what the board sent.
- `RampCheck` checks every SAMPLES block bit-exactly against the ramp
  (PROTOCOL.md) and tracks sample-index continuity across reconnects.
- `audit_link()` is the oracle for a faulty link. From the capture of what the
  board sent, what the host received in each connection, the frames the host's
  decoder delivered, its counters, and the proxy's fault log, it checks that:
  every frame that reached the host intact was delivered exactly once and
  nothing else was; every frame and sample lost between two delivered frames
  was counted (seq_lost, samples_lost, and across reconnects); and the fault
  log explains the damage exactly (a frame is damaged if and only if a logged
  fault touched it).
"""

from __future__ import annotations

import bisect
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from picodaq import contracts as C
from picodaq.core.blocks import SamplesBlock, ramp_counts
from picodaq.core.receiver import Receiver
from picodaq.protocol.frames import Frame

from ..faults import Fault
from .capture import CapturedFrame
from .capture import frames as scan_frames

_U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Delivered:
    type: int
    seq: int
    crc: int  # CRC-32 of the payload


class HilReceiver(Receiver):
    """A picodaq Receiver that also records every frame it routes."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[Delivered] = []
        self.frame_handlers.append(self._record)

    def _record(self, frame: Frame) -> None:
        self.delivered.append(Delivered(frame.type, frame.seq, zlib.crc32(frame.payload)))


class RampCheck:
    """A block handler: every block compared with the ramp; gaps and restarts in the index counted."""

    def __init__(self, keep_mismatches: int = 5) -> None:
        self.blocks = 0
        self.samples = 0
        self.mismatched_blocks = 0
        self.mismatches: list[str] = []
        self.keep = keep_mismatches
        self.first_index: int | None = None
        self.end_index: int | None = None  # index after the last block
        self.gap_samples = 0  # instants skipped between consecutive blocks
        self.restarts = 0  # the index went backwards: a new stream (the board rebooted or restarted)
        self.n_channels: int | None = None

    def on_block(self, block: SamplesBlock) -> None:
        self.blocks += 1
        self.samples += block.n_samples
        self.n_channels = block.n_channels
        if self.end_index is None:
            self.first_index = block.first_index
        else:
            gap = (block.first_index - self.end_index) & _U32
            if gap < 1 << 31:
                self.gap_samples += gap
            else:
                self.restarts += 1
        self.end_index = (block.first_index + block.n_samples) & _U32
        expected = ramp_counts(block.first_index, block.n_samples, block.n_channels, block.fmt)
        if not np.array_equal(block.counts, expected):
            self.mismatched_blocks += 1
            if len(self.mismatches) < self.keep:
                bad = np.argwhere(block.counts != expected)[0]
                i, c = int(bad[0]), int(bad[1])
                self.mismatches.append(
                    f"block at sample {block.first_index}: instant {block.first_index + i} channel {c} is "
                    f"{int(block.counts[i, c])}, the ramp says {int(expected[i, c])}"
                )

    @property
    def bit_exact(self) -> bool:
        return self.blocks > 0 and self.mismatched_blocks == 0


@dataclass
class Connection:
    """One host connection during a stream: the bytes it received and what its decoder did."""

    received: bytes
    delivered: list[Delivered]
    stats: dict[str, int]


@dataclass
class LinkAudit:
    board_frames: int = 0
    intact: int = 0
    delivered: int = 0
    lost_frames: int = 0  # frames the board sent between the first and last delivered, not delivered
    counted_frames: int = 0  # what the host counted for them: seq_lost plus gaps across reconnects
    lost_samples: int = 0  # instants of those frames, plus instants the board itself dropped
    counted_samples: int = 0
    board_dropped: int = 0  # instants missing from the board's own stream (its ring overflowed)
    connections: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        faults = ", ".join(f"{n} {k}" for k, n in sorted(self.faults.items())) or "no faults"
        return (
            f"board sent {self.board_frames} frames; {self.intact} reached the host intact over "
            f"{self.connections} connection(s), {self.delivered} delivered; {self.lost_frames} frames and "
            f"{self.lost_samples} samples lost (host counted {self.counted_frames} and {self.counted_samples}; "
            f"{self.board_dropped} dropped on the board); faults: {faults}"
        )


class _FaultIndex:
    """Which logged faults damage a frame: short faults by bisection, long offline runs directly."""

    def __init__(self, faults: list[Fault]) -> None:
        short = sorted((f for f in faults if f.kind in ("bitflip", "drop", "dup")), key=lambda f: f.offset)
        self.short = short
        self.offsets = [f.offset for f in short]
        self.reach = max((f.length for f in short), default=0) + 1
        self.long = [f for f in faults if f.kind == "offline"]
        self.breaks = sorted(f.offset for f in faults if f.kind in ("disconnect", "offline"))

    def near(self, start: int, end: int) -> list[Fault]:
        lo = bisect.bisect_left(self.offsets, start - self.reach)
        hi = bisect.bisect_left(self.offsets, end + 1)
        return self.short[lo:hi] + [f for f in self.long if f.offset < end and f.offset + f.length > start]

    def damaged(self, data: bytes, start: int, end: int) -> bool:
        """Whether the logged faults leave the frame at [start, end) of the board's stream damaged.
        Offsets decide, except where the bytes coincide (a byte dropped next to its twin, a copy
        equal to what follows): then the faults are replayed on the frame to see what arrives."""
        near = self.near(start, end)
        if not any(f.damages(start, end) for f in near):
            return False
        return _replay(data, start, end, near).find(data[start:end]) < 0

    def break_between(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.breaks, start)
        return i < len(self.breaks) and self.breaks[i] < end


def _replay(data: bytes, start: int, end: int, faults: list[Fault]) -> bytes:
    """What the host receives of data[start-16:end+16] under these faults: an independent
    model of the fault log (flip, then drop and discard, then insert the copies)."""
    lo, hi = max(0, start - 16), min(len(data), end + 16)
    seg = bytearray(data[lo:hi])
    for f in faults:
        if f.kind == "bitflip" and lo <= f.offset < hi:
            seg[f.offset - lo] ^= 1 << int(f.detail)
    keep = [True] * len(seg)
    inserts: dict[int, bytes] = {}
    for f in faults:
        if f.kind in ("drop", "offline"):
            for i in range(max(f.offset, lo), min(f.offset + f.length, hi)):
                keep[i - lo] = False
        elif f.kind == "dup" and lo <= f.offset - f.length and f.offset < hi:
            inserts[f.offset - lo] = bytes(seg[f.offset - f.length - lo : f.offset - lo])
    out = bytearray()
    for i, b in enumerate(seg):
        out += inserts.get(i, b"")
        if keep[i]:
            out.append(b)
    return bytes(out)


def _n_samples(f: CapturedFrame) -> int:
    s = f.samples
    return s[1] if s is not None else 0


def _first_index(f: CapturedFrame) -> int:
    s = f.samples
    return s[0] if s is not None else 0


def _is_boot(f: CapturedFrame) -> bool:
    return f.type == C.MSG_HELLO and f.seq == 0


def audit_link(
    board_bytes: bytes, connections: list[Connection], faults: list[Fault], host_samples_gap: int | None = None
) -> LinkAudit:
    """The exact-accounting oracle for a stream over a faulty link (see the module docstring)."""
    up = scan_frames(board_bytes)
    key = [(f.type, f.seq, zlib.crc32(f.payload)) for f in up]
    index = _FaultIndex(faults)
    audit = LinkAudit(board_frames=len(up), connections=len(connections), faults=dict(Counter(f.kind for f in faults)))
    problems = audit.problems

    def where(k: int) -> str:
        f = up[k]
        return f"{f.name} seq {f.seq} at board offset {f.start}"

    # the board's own stream must follow the protocol: seq +1 per frame, except at a boot
    for fa, fb in zip(up, up[1:]):
        if not _is_boot(fb) and fb.seq != (fa.seq + 1) & _U32:
            problems.append(f"the board's own stream skips from seq {fa.seq} to {fb.seq} at offset {fb.start}")
            break

    def match(items, start: int, what: str) -> list[int]:
        """Map (type, seq, crc) items to board frames, in order, from index start."""
        out = []
        j = start
        for it in items:
            k = j
            while k < len(key) and key[k] != it:
                k += 1
            if k == len(key):
                problems.append(
                    f"{what}: a {C.MESSAGE_NAMES.get(it[0], it[0])} frame seq {it[1]} that the board "
                    "never sent (or out of order)"
                )
                continue
            out.append(k)
            j = k + 1
        return out

    prev_last: int | None = None
    prev_seq = 0
    all_samples: list[tuple[int, int]] = []  # (board frame, connection) of every delivered SAMPLES frame
    decoder_samples_lost: dict[int, int] = {}
    for n, conn in enumerate(connections, 1):
        start = 0 if prev_last is None else prev_last + 1
        host_frames = scan_frames(conn.received)
        intact = match([(f.type, f.seq, zlib.crc32(f.payload)) for f in host_frames], start, f"connection {n} received")
        delivered = match([(d.type, d.seq, d.crc) for d in conn.delivered], start, f"connection {n} delivered")
        audit.intact += len(intact)
        audit.delivered += len(delivered)
        if delivered != intact:
            missing = sorted(set(intact) - set(delivered))
            extra = sorted(set(delivered) - set(intact))
            dups = len(delivered) - len(set(delivered))
            if missing:
                problems.append(
                    f"connection {n}: {len(missing)} intact frame(s) not delivered, first {where(missing[0])}"
                )
            if extra:
                problems.append(
                    f"connection {n}: {len(extra)} frame(s) delivered that did not arrive intact, "
                    f"first {where(extra[0])}"
                )
            if dups:
                problems.append(f"connection {n}: {dups} frame(s) delivered twice")
        if not delivered:
            continue
        first, last = delivered[0], delivered[-1]
        if prev_last is not None:
            # across a reconnect the host counts from seq (it knows the last one it had)
            between = first - prev_last - 1
            counted = 0 if _is_boot(up[first]) else (up[first].seq - prev_seq - 1) & _U32
            audit.lost_frames += between
            audit.counted_frames += counted
            if counted != between:
                problems.append(f"reconnect before connection {n}: {between} frames lost, host counted {counted}")
            if between and not index.break_between(up[prev_last].end, up[first].start + 1):
                problems.append(f"reconnect before connection {n}: frames lost with no disconnect in the fault log")
        # within the connection: seq gaps
        lost = 0
        expected_seq_lost = 0
        for a, b in zip(delivered, delivered[1:]):
            lost += b - a - 1
            if not _is_boot(up[b]):
                expected_seq_lost += b - a - 1
        audit.lost_frames += lost
        audit.counted_frames += conn.stats["seq_lost"]
        decoder_samples_lost[n] = conn.stats["samples_lost"]
        if conn.stats["seq_lost"] != expected_seq_lost:
            problems.append(
                f"connection {n}: {expected_seq_lost} frames lost between delivered frames, "
                f"decoder counted seq_lost={conn.stats['seq_lost']}"
            )
        samples_frames = [k for k in delivered if up[k].type == C.MSG_SAMPLES]
        delivered_samples = sum(_n_samples(up[k]) for k in samples_frames)
        if conn.stats["samples"] != delivered_samples:
            problems.append(
                f"connection {n}: decoder counted {conn.stats['samples']} samples, "
                f"delivered frames hold {delivered_samples}"
            )
        all_samples += [(k, n) for k in samples_frames]
        # the fault log explains exactly which frames were damaged
        intact_set = set(intact)
        for k in range(first, last + 1):
            damaged = index.damaged(board_bytes, up[k].start, up[k].end)
            if damaged == (k in intact_set):
                problems.append(
                    f"connection {n}: {where(k)} {'arrived intact' if damaged else 'was damaged'} "
                    f"but the fault log says {'it was hit' if damaged else 'nothing touched it'}"
                )
                break
        prev_last, prev_seq = last, up[last].seq
    _audit_samples(up, all_samples, decoder_samples_lost, host_samples_gap, audit)
    if audit.delivered == 0:
        problems.append("no frame was delivered at all")
    return audit


def _audit_samples(
    up: list[CapturedFrame],
    delivered: list[tuple[int, int]],
    decoder: dict[int, int],
    host_gap: int | None,
    audit: LinkAudit,
) -> None:
    """Samples between consecutive delivered blocks: lost on the wire (blocks not delivered) or on
    the board (a jump in its own stream); each connection's decoder must count its own exactly,
    and the host's total (RampCheck.gap_samples), if given, those across reconnects too."""
    within: dict[int, int] = {n: 0 for n in decoder}
    total = 0
    for (a, na_conn), (b, nb_conn) in zip(delivered, delivered[1:]):
        if any(_is_boot(up[k]) for k in range(a + 1, b + 1)):
            continue  # the board rebooted: a new stream, a new base
        jump = (_first_index(up[b]) - _first_index(up[a]) - _n_samples(up[a])) & _U32
        if jump >= 1 << 31:
            continue  # a new START: the index went back
        wire = sum(_n_samples(up[k]) for k in range(a + 1, b))
        if wire > jump:
            audit.problems.append(f"the board's own stream overlaps itself before {up[b].name} seq {up[b].seq}")
        audit.board_dropped += jump - wire
        total += jump
        if na_conn == nb_conn:
            within[na_conn] += jump
    audit.lost_samples = total
    for n, expected in within.items():
        if decoder[n] != expected:
            audit.problems.append(
                f"connection {n}: {expected} samples lost between delivered blocks, "
                f"decoder counted samples_lost={decoder[n]}"
            )
    audit.counted_samples = sum(decoder.values()) if host_gap is None else host_gap
    if host_gap is not None and host_gap != total:
        audit.problems.append(f"{total} samples lost in all, the host counted {host_gap} (across reconnects too)")
