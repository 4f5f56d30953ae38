"""`.tlv`: the raw link bytes as received, replayable through `picodaq replay`.

A recording limited to a number of instants (`--seconds`) ends with the frame holding its
last instant: what arrived after that frame is cut off when the file is closed, and that
frame itself is re-framed (new length and CRC) to hold only the instants the recording
kept, so the capture replays to exactly the recording's outputs and counters."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from ... import contracts as C
from ...protocol.frames import encode_frame
from .base import Output, OutputError, close_file, flush_file, open_file, write

_HEAD = struct.Struct(C.HEADER_FORMAT)
_SAMPLES = struct.Struct(C.SAMPLES_FORMAT)


class TlvOutput(Output):
    """The raw link bytes: replayable through `picodaq replay`."""

    wants_raw = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self._f: BinaryIO = open_file(path, "w+b")
        self.bytes = 0
        self._chunk_at = 0  # where the latest chunk starts in the file
        self._cut: tuple[int, int, int, int] | None = None  # seq, first index, instants, where to look from

    def on_raw(self, chunk: memoryview) -> None:
        self._chunk_at = self.bytes
        write(self._f, chunk, self.path)
        self.bytes += len(chunk)

    def cut(self, seq: int, first_index: int, instants: int) -> None:
        # the frame was decoded from the latest chunk; it may have begun in the one before
        self._cut = (seq, first_index, instants, max(0, self._chunk_at - C.MAX_FRAME))

    def flush(self) -> None:
        flush_file(self._f, self.path)

    def close(self) -> None:
        if self._cut is not None and not self._f.closed:
            try:
                self._apply_cut(*self._cut)
            except OSError as e:
                raise OutputError(f"{self.path}: write failed: {e.strerror or e}", self.path) from None
            finally:
                self._cut = None
        close_file(self._f, self.path)

    def _apply_cut(self, seq: int, first_index: int, instants: int, start: int) -> None:
        f = self._f
        f.flush()
        f.seek(start)
        tail = f.read()
        at = _find_samples(tail, seq, first_index)
        if at is None:  # cannot happen with the bytes the decoder read; keep them all rather than guess
            self.warnings.append(f"{self.path}: the recording's last frame was not found; the capture runs on")
            f.seek(0, os.SEEK_END)
            return
        length = _HEAD.unpack_from(tail, at)[3]
        payload = bytearray(tail[at + C.HEADER_SIZE : at + C.HEADER_SIZE + length])
        fields = list(_SAMPLES.unpack_from(payload))
        nch, fmt = fields[3], fields[4]
        fields[5] = instants
        _SAMPLES.pack_into(payload, 0, *fields)
        keep = _SAMPLES.size + instants * nch * C.BYTES_PER_SAMPLE[fmt]
        frame = encode_frame(C.MSG_SAMPLES, seq, bytes(payload[:keep]))
        f.seek(start + at)
        f.truncate()
        f.write(frame)
        self.bytes = start + at + len(frame)


def _find_samples(data: bytes, seq: int, first_index: int) -> int | None:
    """Where in data the first intact SAMPLES frame with this seq and first index starts."""
    p = 0
    while True:
        p = data.find(C.MAGIC, p)
        if p < 0 or len(data) - p < C.OVERHEAD:
            return None
        _, version, mtype, length, s = _HEAD.unpack_from(data, p)
        end = p + C.OVERHEAD + length
        if (
            version == C.PROTOCOL_VERSION
            and mtype == C.MSG_SAMPLES
            and s == seq
            and length >= _SAMPLES.size
            and end <= len(data)
            and zlib.crc32(data[p : end - C.CRC_SIZE]) == int.from_bytes(data[end - C.CRC_SIZE : end], "little")
            and _SAMPLES.unpack_from(data, p + C.HEADER_SIZE)[0] == first_index
        ):
            return p
        p += 1
