"""Frames as values, and the writer that turns messages into bytes (PROTOCOL.md)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from . import contracts as C

_HEADER = struct.Struct(C.HEADER_FORMAT)
_CRC = struct.Struct("<I")
_COMMAND = struct.Struct(C.COMMAND_FORMAT)


@dataclass(frozen=True)
class Frame:
    """One accepted frame: its type, sequence number and payload bytes."""

    type: int
    seq: int
    payload: bytes

    @property
    def name(self) -> str:
        return C.MESSAGE_NAMES.get(self.type, f"0x{self.type:02X}")


def encode_frame(mtype: int, seq: int, payload: bytes = b"") -> bytes:
    """The wire bytes of one frame (header, payload, CRC-32)."""
    if len(payload) > C.MAX_PAYLOAD_BY_TYPE.get(mtype, C.MAX_PAYLOAD):
        raise ValueError(f"payload of {len(payload)} bytes exceeds the maximum for type 0x{mtype:02X}")
    head = _HEADER.pack(C.MAGIC, C.PROTOCOL_VERSION, mtype, len(payload), seq & 0xFFFFFFFF)
    body = head + bytes(payload)
    return body + _CRC.pack(zlib.crc32(body))


def encode_command(seq: int, opcode: int, cmd_id: int, args: bytes = b"") -> bytes:
    return encode_frame(C.MSG_COMMAND, seq, _COMMAND.pack(opcode, 0, cmd_id & 0xFFFF) + args)


def configure_args(rate_hz: int, channel_mask: int, source: int, fmt: int, samples_per_frame: int) -> bytes:
    return struct.pack(C.CONFIGURE_ARGS_FORMAT, rate_hz, channel_mask, source, fmt, samples_per_frame)


def samples_payload(first_index: int, t0_us: int, period_ns: int, n_channels: int, fmt: int,
                    n_samples: int, data: bytes) -> bytes:
    head = struct.pack(C.SAMPLES_FORMAT, first_index & 0xFFFFFFFF, t0_us & 0xFFFFFFFF, period_ns,
                       n_channels, fmt, n_samples)
    return head + data
