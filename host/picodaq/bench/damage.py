"""Seeded link damage with a known ground truth, fed alike to picodaq and to its peer (figure 7).

A data stream is a sequence of units, each one packet as its sender framed it
(a Cyton packet of 33 bytes, a picodaq SAMPLES frame). `Damager` turns each
unit into what the receiver gets, applying three kinds of damage whose rates
are probabilities per byte of the data stream, the same numbers for every
protocol:

- drop: the unit holding that byte never arrives (a lost USB or radio packet);
- bitflip: one bit of that byte is inverted;
- garbage: a run of 1..garbage_max random bytes is inserted before that byte.

Where damage falls depends only on the seed and on byte offsets in the clean
stream (each kind has its own random generator, and a fault's size is drawn
whether or not it can apply), never on timing: the same seed over the same
units damages them the same way. `DamageTruth` records what happened to
every unit, so a test can count exactly which units reached the receiver
intact. Garbage exactly at a unit's first byte lands between units and leaves
the unit itself intact; garbage after its first byte splits it.

No I/O here: the Cyton emulator (cyton.py) applies it to the packets it sends,
peer.py to the SAMPLES frames of a picodaq capture.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields
from typing import Any

KINDS = ("drop", "bitflip", "garbage")
_NEVER = 1 << 62


@dataclass(frozen=True)
class DamageSpec:
    """Damage rates, each a probability per byte of the data stream."""

    drop: float = 0.0
    bitflip: float = 0.0
    garbage: float = 0.0
    garbage_max: int = 32

    def __post_init__(self) -> None:
        for k in KINDS:
            if not 0.0 <= getattr(self, k) < 1.0:
                raise ValueError(f"damage rate {k}={getattr(self, k)} must be within [0, 1)")
        if self.garbage_max < 1:
            raise ValueError("garbage_max must be at least 1")

    @property
    def active(self) -> bool:
        return any(getattr(self, k) > 0 for k in KINDS)

    @classmethod
    def parse(cls, text: str) -> DamageSpec:
        """`drop=1e-4,bitflip=1e-4,garbage=1e-4,garbage_max=32`; empty or `none` is no damage."""
        text = (text or "").strip()
        if text.lower() in ("", "none"):
            return cls()
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep or name.strip() not in names:
                raise ValueError(f"damage spec {text!r}: {part!r} is not one of {', '.join(sorted(names))}=VALUE")
            name = name.strip()
            values[name] = int(value) if name == "garbage_max" else float(value)
        return cls(**values)

    def __str__(self) -> str:
        parts = [f"{k}={getattr(self, k):g}" for k in KINDS if getattr(self, k)]
        if self.garbage:
            parts.append(f"garbage_max={self.garbage_max}")
        return ",".join(parts) or "none"

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class DamageTruth:
    """What happened to each unit, by unit number (0 = the stream's first unit)."""

    units: int = 0
    bytes: int = 0
    dropped: list[int] = field(default_factory=list)
    flipped: list[int] = field(default_factory=list)  # arrived with >= 1 inverted bit (not dropped)
    split: list[int] = field(default_factory=list)  # arrived with garbage inside it (not dropped)
    bits_flipped: int = 0  # in units that arrived
    garbage_runs: int = 0
    garbage_bytes: int = 0

    def damaged(self) -> set[int]:
        return set(self.dropped) | set(self.flipped) | set(self.split)

    @property
    def intact(self) -> int:
        return self.units - len(self.damaged())

    def as_dict(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "bytes": self.bytes,
            "intact": self.intact,
            "dropped": self.dropped,
            "flipped": self.flipped,
            "split": self.split,
            "bits_flipped": self.bits_flipped,
            "garbage_runs": self.garbage_runs,
            "garbage_bytes": self.garbage_bytes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DamageTruth:
        return cls(**{k: d[k] for k in (f.name for f in fields(cls))})


class Damager:
    """Applies a DamageSpec's seeded schedule to a stream of units (no I/O, no clock)."""

    def __init__(self, spec: DamageSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.truth = DamageTruth()
        self._rng = {k: random.Random(f"picodaq-peer-damage/{seed}/{k}") for k in KINDS}
        self._next = {k: self._draw(k, -1) for k in KINDS}

    def _draw(self, kind: str, after: int) -> int:
        p: float = getattr(self.spec, kind)
        if p <= 0:
            return _NEVER
        u = 1.0 - self._rng[kind].random()  # (0, 1]
        return after + 1 + int(math.log(u) / math.log1p(-p))

    def _events(self, kind: str, end: int) -> list[int]:
        out = []
        while self._next[kind] < end:
            out.append(self._next[kind])
            self._next[kind] = self._draw(kind, self._next[kind])
        return out

    def unit(self, data: bytes | bytearray | memoryview) -> bytes:
        """The bytes the receiver gets for the next unit of the stream."""
        t = self.truth
        number, start = t.units, t.bytes
        end = start + len(data)
        t.units += 1
        t.bytes = end
        drops = self._events("drop", end)
        flips = [(at, self._rng["bitflip"].randrange(8)) for at in self._events("bitflip", end)]
        garbage = []
        for at in self._events("garbage", end):
            rng = self._rng["garbage"]
            garbage.append((at, rng.randbytes(rng.randint(1, self.spec.garbage_max))))
        t.garbage_runs += len(garbage)
        t.garbage_bytes += sum(len(g) for _, g in garbage)
        if drops:
            t.dropped.append(number)
            return b"".join(g for _, g in garbage)
        if not flips and not garbage:
            return bytes(data)
        buf = bytearray(data)
        for at, bit in flips:
            buf[at - start] ^= 1 << bit
        if flips:
            t.flipped.append(number)
            t.bits_flipped += len(flips)
        if any(at > start for at, _ in garbage):
            t.split.append(number)
        out = bytearray()
        pos = 0
        for at, g in garbage:
            out += buf[pos : at - start]
            out += g
            pos = at - start
        out += buf[pos:]
        return bytes(out)
