"""Fault rates (FaultSpec), parsed from `bitflip=1e-5,drop=1e-5,...`, and the seed that
places the faults: given, else PICODAQ_FAULT_SEED, else random (and then printed)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, fields

from ..errors import FaultSpecError

KINDS = ("bitflip", "drop", "dup", "stall", "disconnect")


@dataclass(frozen=True)
class FaultSpec:
    """Fault rates, each the probability per byte of the board's stream that a fault starts there.

    Runs of dropped or duplicated bytes are 1..max_run bytes long; max_run stays
    below the 14-byte frame overhead, so a duplicate never repeats a whole frame.
    """

    bitflip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    stall: float = 0.0
    disconnect: float = 0.0
    max_run: int = 8
    stall_min_ms: float = 20.0
    stall_max_ms: float = 200.0
    disconnect_s: float = 0.5

    def __post_init__(self) -> None:
        for k in KINDS:
            p = getattr(self, k)
            if not 0.0 <= p < 1.0:
                raise FaultSpecError(f"fault rate {k}={p} must be within [0, 1)")
        if not 1 <= self.max_run <= 13:
            raise FaultSpecError(f"max_run={self.max_run} must be within 1..13 (below a frame's overhead)")
        if not 0 <= self.stall_min_ms <= self.stall_max_ms:
            raise FaultSpecError("stall_min_ms must be >= 0 and <= stall_max_ms")
        if not self.disconnect_s > 0:
            raise FaultSpecError("disconnect_s must be positive")

    @property
    def active(self) -> bool:
        return any(getattr(self, k) > 0 for k in KINDS)

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """`bitflip=1e-5,drop=2e-6,dup=1e-6,stall=1e-6,disconnect=0,max_run=8,stall_ms=20-200,disconnect_s=0.5`;
        an empty string or `none` means a clean link."""
        text = (text or "").strip()
        if text.lower() in ("", "none", "off", "clean"):
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, object] = {}
        for part in text.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip().replace("-", "_")
            if not sep:
                raise FaultSpecError(f"fault spec {text!r}: {part!r} is not NAME=VALUE")
            try:
                if name == "stall_ms":
                    lo, _, hi = value.partition("-")
                    values["stall_min_ms"] = float(lo)
                    values["stall_max_ms"] = float(hi or lo)
                elif name not in known:
                    raise FaultSpecError(
                        f"fault spec {text!r}: unknown name {name!r}; "
                        f"use {', '.join(KINDS)}, max_run, stall_ms, disconnect_s"
                    )
                elif name == "max_run":
                    values[name] = int(value)
                else:
                    values[name] = float(value)
            except ValueError:
                raise FaultSpecError(f"fault spec {text!r}: {value!r} is not a number") from None
        return cls(**values)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = [f"{k}={getattr(self, k):g}" for k in KINDS if getattr(self, k)]
        if not parts:
            return "none"
        if self.drop or self.dup:
            parts.append(f"max_run={self.max_run}")
        if self.stall:
            parts.append(f"stall_ms={self.stall_min_ms:g}-{self.stall_max_ms:g}")
        if self.disconnect:
            parts.append(f"disconnect_s={self.disconnect_s:g}")
        return ",".join(parts)


def fault_seed(given: int | str | None = None) -> int:
    """The seed for a faulty link: `given` if any, else $PICODAQ_FAULT_SEED, else a random one."""
    if given not in (None, "", "None"):
        return int(given)
    text = os.environ.get("PICODAQ_FAULT_SEED")
    if text:
        try:
            return int(text)
        except ValueError:
            raise FaultSpecError(
                f"PICODAQ_FAULT_SEED={text!r} is not a whole number (a fault seed, as printed with each "
                "faulty-link test)"
            ) from None
    return random.SystemRandom().randrange(1 << 31)
