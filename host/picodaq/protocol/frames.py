"""Frames as values, and the writer that turns messages into bytes (PROTOCOL.md)."""

from __future__ import annotations

import re
import struct
import zlib
from typing import TYPE_CHECKING

from .. import contracts as C

if TYPE_CHECKING:
    from ..buffers.pool import Loaned
    from .layouts import SamplesKey

_HEADER = struct.Struct(C.HEADER_FORMAT)
_CRC = struct.Struct("<I")
_COMMAND = struct.Struct(C.COMMAND_FORMAT)

# What receivers check a frame with: CRC-32 over an intact frame including its stored CRC is this
# fixed residue (no field to unpack); the largest payload by type (-1: an unknown type); a search
# for the magic that works on any buffer, memoryviews included
CRC_RESIDUE = 0x2144DF1C
PAYLOAD_LIMIT = [-1] * 256
for _t, _n in C.MAX_PAYLOAD_BY_TYPE.items():
    PAYLOAD_LIMIT[_t] = _n
find_magic = re.compile(re.escape(C.MAGIC)).search


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()  # what a decoder returns when the bytes fed so far end inside a frame


def byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """data as a flat view of unsigned bytes."""
    mv = memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1 or mv.format not in ("B", "b", "c"):
        mv = mv.cast("B")
    return mv


# Where a frame starts inside a pooled buffer: 6 puts a SAMPLES frame's sample
# data (frame offset 26) at buffer offset 32, so numpy views of it are aligned.
LOAN_FRAME_OFFSET = 6


class Frame:
    """One accepted frame: its type, sequence number and payload.

    A detached frame owns its payload bytes. A frame from a pooled decoder
    holds a `Loaned` buffer with the frame's wire bytes at LOAN_FRAME_OFFSET;
    its payload is a view into that buffer, valid until `release()` (or the
    end of a `with` block) returns the buffer; `take_loan()` hands the buffer
    on instead (the SAMPLES route gives it to a block). `head` is what the
    decoder read and checked of a SAMPLES header, (first_sample_index,
    n_channels, fmt, n_samples), or None.
    """

    __slots__ = ("type", "seq", "length", "head", "loan", "_payload")

    def __init__(
        self,
        type: int,
        seq: int,
        payload: bytes | None = None,
        loan: Loaned | None = None,
        length: int = 0,
        head: SamplesKey | None = None,
    ) -> None:
        self.type = type
        self.seq = seq
        self.loan = loan
        self.head = head
        self._payload: bytes | memoryview | None = payload
        self.length = len(payload) if payload is not None else length

    @property
    def payload(self) -> bytes | memoryview:
        p = self._payload
        if p is None:
            loan = self.loan
            if loan is None:
                raise ValueError("this frame's buffer was released or handed on")
            start = LOAN_FRAME_OFFSET + C.HEADER_SIZE
            p = self._payload = loan.view[start : start + self.length]
        return p

    @property
    def raw(self) -> bytes | memoryview:
        """The frame's wire bytes: header, payload, CRC."""
        loan = self.loan
        if loan is not None:
            return loan.view[LOAN_FRAME_OFFSET : LOAN_FRAME_OFFSET + C.OVERHEAD + self.length]
        return encode_frame(self.type, self.seq, bytes(self.payload))

    @property
    def name(self) -> str:
        return C.MESSAGE_NAMES.get(self.type, f"0x{self.type:02X}")

    def take_loan(self) -> Loaned | None:
        """Hand the frame's buffer to the caller, who must release it."""
        loan = self.loan
        self.loan = None
        self._payload = None
        return loan

    def release(self) -> None:
        """Return a pooled frame's buffer (no-op for a detached frame or a second call)."""
        loan = self.loan
        if loan is not None:
            self.loan = None
            self._payload = None
            loan.release()

    def detach(self) -> Frame:
        """A copy that owns its payload bytes (the buffer, if any, stays with this frame)."""
        return Frame(self.type, self.seq, bytes(self.payload), head=self.head)

    def __enter__(self) -> Frame:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Frame({self.name}, seq={self.seq}, {self.length} bytes{', loaned' if self.loan else ''})"


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


def samples_payload(
    first_index: int, t0_us: int, period_ns: int, n_channels: int, fmt: int, n_samples: int, data: bytes
) -> bytes:
    head = struct.pack(
        C.SAMPLES_FORMAT, first_index & 0xFFFFFFFF, t0_us & 0xFFFFFFFF, period_ns, n_channels, fmt, n_samples
    )
    return head + data
