"""Typed views of the device's control messages (HELLO, STATUS, ACK, MARKER, LOG)."""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass
from typing import Any

from .. import contracts as C

_HELLO = struct.Struct(C.HELLO_FORMAT)
# PROTOCOL.md defines a HELLO's first 30 bytes (through max_rate); picodaq's firmware goes on with
# sources, a reserved byte and ring_bytes in the bytes it calls reserved. A HELLO of only the 30
# defined bytes (another firmware) is accepted: those fields are then unknown (None).
_HELLO_CORE = struct.Struct("<" + "".join(re.findall(r"\d*[a-zA-Z]", C.HELLO_FORMAT[1:])[:10]))
assert _HELLO_CORE.size == 30 and C.HELLO_FIELDS[10:] == ("sources", "reserved", "ring_bytes")
_STATUS = struct.Struct(C.STATUS_FORMAT)
_ACK = struct.Struct(C.ACK_FORMAT)
_MARKER = struct.Struct(C.MARKER_FORMAT)


def _ascii(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("ascii", "replace")


@dataclass(frozen=True)
class Hello:
    firmware_version: tuple[int, int, int]
    protocol_version: int
    contract_hash: int
    board_id: str
    platform: str
    max_channels: int
    source: int
    max_rate: int
    sources: int | None = None  # bit k: source kind k is on this board; None: the HELLO does not say
    ring_bytes: int | None = None  # bytes of the firmware's sample ring; None: the HELLO does not say

    @classmethod
    def parse(cls, payload: bytes | memoryview) -> Hello:
        ma, mi, pa, proto, h, bid, plat, maxch, src, rate = _HELLO_CORE.unpack_from(payload)
        sources = ring = None
        if len(payload) >= _HELLO.size:
            sources, _, ring = _HELLO.unpack_from(payload)[10:]
        return cls((ma, mi, pa), proto, h, bid.hex(), _ascii(plat), maxch, src, rate, sources, ring)

    @property
    def source_names(self) -> list[str] | None:
        """The sources this board has, by name (None: its HELLO does not say)."""
        if self.sources is None:
            return None
        return [C.SOURCE_NAMES.get(k, str(k)) for k in range(8) if self.sources >> k & 1]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["firmware_version"] = ".".join(map(str, self.firmware_version))
        d["contract_hash"] = f"0x{self.contract_hash:08X}"
        d["source"] = C.SOURCE_NAMES.get(self.source, str(self.source))
        d["sources"] = self.source_names
        return d


@dataclass(frozen=True)
class Status:
    uptime_ms: int
    frames_sent: int
    samples_dropped: int
    ring_high_water: int
    ring_capacity: int
    free_heap: int
    last_error: int
    state: int

    @classmethod
    def parse(cls, payload: bytes | memoryview) -> Status:
        return cls(*_STATUS.unpack_from(payload))

    @property
    def state_name(self) -> str:
        return C.STATE_NAMES.get(self.state, str(self.state))

    @property
    def error_name(self) -> str:
        return C.STATUS_NAMES.get(self.last_error, str(self.last_error))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state_name
        d["last_error"] = self.error_name
        return d


@dataclass(frozen=True)
class Ack:
    cmd_id: int
    opcode: int
    status: int

    @classmethod
    def parse(cls, payload: bytes | memoryview) -> Ack:
        return cls(*_ACK.unpack_from(payload))


@dataclass(frozen=True)
class Marker:
    sample_index: int
    code: int

    @classmethod
    def parse(cls, payload: bytes | memoryview) -> Marker:
        idx, code, _ = _MARKER.unpack_from(payload)
        return cls(idx, code)


@dataclass(frozen=True)
class Log:
    level: int
    text: str

    @classmethod
    def parse(cls, payload: bytes | memoryview) -> Log:
        return cls(payload[0] if payload else 0, bytes(payload[1:]).decode("utf-8", "replace"))
