"""The sans-I/O FaultInjector: bytes of the board's stream in, actions for the host out.

Where a fault happens depends only on the seed and on the offset in the board's
stream (never on timing or on how the stream was chunked), so the same seed
over the same bytes gives the same output, byte for byte. Every fault is
recorded as a `Fault` in upstream offsets, so a test can tell exactly which
frames reached the host intact. `apply_offline` runs a whole capture through it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .spec import KINDS, FaultSpec

_NEVER = 1 << 62


@dataclass(frozen=True)
class Fault:
    """One fault, in offsets of the board's stream.

    bitflip: byte `offset` had bit `detail` inverted. drop: bytes
    [offset, offset+length) never reached the host. dup: bytes
    [offset-length, offset) were sent twice in a row. stall: nothing
    moved for `detail` seconds from `offset` on. disconnect: the host's port
    vanished at `offset` for `detail` seconds. offline: bytes
    [offset, offset+length) were discarded because no host had the port open.
    """

    kind: str
    offset: int
    length: int = 0
    detail: float = 0.0

    def damages(self, start: int, end: int) -> bool:
        """Whether a frame occupying [start, end) of the board's stream cannot reach the host intact."""
        if self.kind == "bitflip":
            return start <= self.offset < end
        if self.kind in ("drop", "offline"):
            return self.length > 0 and self.offset < end and self.offset + self.length > start
        if self.kind == "dup":
            # the copy lands strictly inside the frame; but when the copied run began at or before
            # the frame's start, the second copy carries the frame on intact
            return self.offset - self.length > start and self.offset < end
        return False


@dataclass(frozen=True)
class Piece:
    """Bytes for the host, and the range of the board's stream they stand for.

    A duplicate is an insertion (an empty range at the insertion point) that
    carries the `fault` it was logged as: if the proxy discards the bytes it
    copies (no host), it trims the copy and the log entry together, so a
    duplicate never brings discarded bytes back."""

    data: bytes
    start: int
    end: int
    fault: Fault | None = None


@dataclass(frozen=True)
class Stall:
    seconds: float


@dataclass(frozen=True)
class Disconnect:
    seconds: float


Action = Piece | Stall | Disconnect


class FaultInjector:
    """Applies a FaultSpec's seeded schedule to a byte stream (no I/O, no clock)."""

    def __init__(self, spec: FaultSpec, seed: int, enabled: bool = True) -> None:
        self.spec = spec
        self.seed = seed
        self.enabled = enabled
        self.offset = 0  # bytes of the board's stream consumed so far
        self.faults: list[Fault] = []
        self._rng = {k: random.Random(f"picodaq-faults/{seed}/{k}") for k in KINDS}
        self._next = {k: self._draw(k, -1) for k in KINDS}
        self._drop_left = 0
        self._history = b""
        self._clean_from = 0  # bytes from here on reached the output without a drop

    def _draw(self, kind: str, after: int) -> int:
        p = getattr(self.spec, kind)
        if p <= 0:
            return _NEVER
        u = 1.0 - self._rng[kind].random()  # (0, 1]
        return after + 1 + int(math.log(u) / math.log1p(-p))

    def _params(self, kind: str) -> tuple[int, float]:
        """The fault's size, drawn whether or not it is applied, so the schedule never shifts."""
        rng = self._rng[kind]
        if kind == "bitflip":
            return 1, float(rng.randrange(8))
        if kind in ("drop", "dup"):
            return rng.randint(1, self.spec.max_run), 0.0
        if kind == "stall":
            return 0, rng.uniform(self.spec.stall_min_ms, self.spec.stall_max_ms) / 1000.0
        return 0, self.spec.disconnect_s

    def process(self, data: bytes | bytearray | memoryview) -> list[Action]:
        """The actions that deliver `data` (the next bytes of the board's stream) to the host."""
        base = self.offset
        buf = bytearray(data)
        n = len(buf)
        out: list[Action] = []
        pos = 0  # first byte of buf not yet handed out or dropped
        if self._drop_left:
            k = min(self._drop_left, n)
            self._drop_left -= k
            pos = k

        def emit(upto: int) -> None:
            nonlocal pos
            if upto > pos:
                out.append(Piece(bytes(buf[pos:upto]), base + pos, base + upto))
                pos = upto

        while True:
            kind = min(KINDS, key=lambda k: self._next[k])
            at = self._next[kind]
            if at >= base + n:
                break
            self._next[kind] = self._draw(kind, at)
            size, detail = self._params(kind)
            i = at - base
            if not self.enabled:
                continue
            if kind in ("bitflip", "drop", "dup") and i < pos:
                continue  # inside a run already dropped: there is nothing left to damage
            if kind == "bitflip":
                buf[i] ^= 1 << int(detail)
                self.faults.append(Fault("bitflip", at, 1, detail))
            elif kind == "drop":
                emit(i)
                self.faults.append(Fault("drop", at, size))
                self._clean_from = at + size
                if i + size <= n:
                    pos = i + size
                else:
                    self._drop_left = i + size - n
                    pos = n
            elif kind == "dup":
                # copy only bytes that went out: never resurrect what a drop removed
                size = min(size, at - self._clean_from)
                if size <= 0:
                    continue
                emit(i)
                src = (self._history + bytes(buf[:i]))[-size:]
                fault = Fault("dup", at, len(src))
                out.append(Piece(src, at, at, fault))
                self.faults.append(fault)
            elif kind == "stall":
                emit(max(i, pos))
                out.append(Stall(detail))
                self.faults.append(Fault("stall", at, 0, detail))
            else:
                emit(max(i, pos))
                out.append(Disconnect(detail))
                self.faults.append(Fault("disconnect", at, 0, detail))
        emit(n)
        self._history = (self._history + bytes(buf))[-self.spec.max_run :]
        self.offset = base + n
        return out


def apply_offline(data: bytes, spec: FaultSpec, seed: int) -> tuple[bytes, list[Fault]]:
    """What the host receives when `data` passes a faulty link with this seed, without
    the timing: stalls only delay, and a disconnect is logged but loses nothing here.
    Any chunking of `data` gives the same result."""
    inj = FaultInjector(spec, seed)
    out = bytearray()
    for a in inj.process(data):
        if isinstance(a, Piece):
            out += a.data
    return bytes(out), inj.faults
