"""FrameDecoder: bytes in, frames out, with PROTOCOL.md's receiving rules.

No I/O and no threads, like h11: `feed(data)` adds bytes (`feed(b"")` marks
the end of input), `next_frame()` returns the next accepted Frame or NEED_DATA.

Rules implemented:
- a frame is accepted only if magic, version, type, length (within the type's
  maximum) and CRC-32 all check; on a failure at offset p the error is
  counted and scanning resumes at p + 1, so an intact frame after garbage or a
  corrupted frame is never lost;
- bytes passed over while hunting for magic count as skipped;
- a jump in seq counts the missing frames as seq_lost; a SAMPLES frame whose
  length disagrees with its own header is a decode error; a jump in
  first_sample_index past the previous block's end counts samples_lost.
- a HELLO with seq 0 is a board that (re)booted: seq and sample indices take a
  new base instead of counting a bogus gap.

An incomplete frame buffers at most one largest frame (MAX_FRAME bytes): the
length field is checked against its type's maximum before anything waits.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import asdict, dataclass

from . import contracts as C
from .frames import Frame


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()

_HEADER = struct.Struct(C.HEADER_FORMAT)
_CRC = struct.Struct("<I")
_SAMPLES = struct.Struct(C.SAMPLES_FORMAT)
_U32 = 0xFFFFFFFF
_COMPACT_AT = 1 << 16


@dataclass
class DecoderStats:
    frames_ok: int = 0
    crc_errors: int = 0
    header_errors: int = 0
    skipped_bytes: int = 0
    seq_lost: int = 0
    samples: int = 0
    samples_lost: int = 0
    decode_errors: int = 0
    truncated: int = 0  # an incomplete frame cut off by the end of input

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def samples_layout_ok(payload: bytes | memoryview) -> bool:
    """True when a SAMPLES payload's length agrees with its own header."""
    if len(payload) < _SAMPLES.size:
        return False
    _, _, _, nch, fmt, ns = _SAMPLES.unpack_from(payload)
    bps = C.BYTES_PER_SAMPLE.get(fmt)
    if bps is None or not 1 <= nch <= C.MAX_CHANNELS:
        return False
    return len(payload) == _SAMPLES.size + nch * ns * bps


class FrameDecoder:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self.stats = DecoderStats()
        self._last_seq: int | None = None
        self._next_index: int | None = None

    # -- input -------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            self._eof = True
            return
        if self._pos >= _COMPACT_AT:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def reset_link(self) -> None:
        """A reconnect: drop partial input; the next frame sets the seq base."""
        self._buf.clear()
        self._pos = 0
        self._last_seq = None
        self._next_index = None

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    # -- output ------------------------------------------------------------

    def __iter__(self):
        while True:
            f = self.next_frame()
            if f is NEED_DATA:
                return
            yield f

    def next_frame(self) -> Frame | _NeedData:
        buf = self._buf
        st = self.stats
        while True:
            pos = self._pos
            end = len(buf)
            i = buf.find(C.MAGIC, pos)
            if i < 0:
                # keep a trailing first magic byte: its partner may come next
                keep = 1 if end > pos and buf[end - 1] == C.MAGIC[0] and not self._eof else 0
                st.skipped_bytes += end - pos - keep
                self._pos = end - keep
                return NEED_DATA
            st.skipped_bytes += i - pos
            self._pos = pos = i
            if end - pos < C.HEADER_SIZE:
                return self._incomplete(pos)
            _, version, mtype, length, seq = _HEADER.unpack_from(buf, pos)
            limit = C.MAX_PAYLOAD_BY_TYPE.get(mtype)
            if version != C.PROTOCOL_VERSION or limit is None or length > limit:
                st.header_errors += 1
                self._pos = pos + 1
                continue
            total = C.OVERHEAD + length
            if end - pos < total:
                return self._incomplete(pos)
            body_end = pos + C.HEADER_SIZE + length
            with memoryview(buf) as mv:
                crc_ok = zlib.crc32(mv[pos:body_end]) == _CRC.unpack_from(buf, body_end)[0]
            if not crc_ok:
                st.crc_errors += 1
                self._pos = pos + 1
                continue
            self._pos = pos + total
            payload = bytes(buf[pos + C.HEADER_SIZE: body_end])
            self._track_seq(mtype, seq)
            if mtype == C.MSG_SAMPLES:
                if not samples_layout_ok(payload):
                    st.decode_errors += 1
                    continue
                self._track_samples(payload)
            st.frames_ok += 1
            return Frame(mtype, seq, payload)

    def _incomplete(self, pos: int) -> Frame | _NeedData:
        if not self._eof:
            return NEED_DATA
        # end of input inside a frame: it can never complete; rescan past it
        self.stats.truncated += 1
        self._pos = pos + 1
        return self.next_frame()

    def _track_seq(self, mtype: int, seq: int) -> None:
        last = self._last_seq
        if mtype == C.MSG_HELLO and seq == 0:
            self._next_index = None  # the board booted: a new stream starts
        elif last is not None and seq != (last + 1) & _U32:
            self.stats.seq_lost += (seq - last - 1) & _U32
        self._last_seq = seq

    def _track_samples(self, payload: bytes) -> None:
        first, _, _, _, _, n = _SAMPLES.unpack_from(payload)
        st = self.stats
        expected = self._next_index
        if expected is not None:
            gap = (first - expected) & _U32
            if gap < 1 << 31:
                st.samples_lost += gap
            # a backwards jump is a new stream (START again): it sets the base
        st.samples += n
        self._next_index = (first + n) & _U32
