"""When the input stops inside a frame: was that frame cut short?

A board that resets or loses power in the middle of sending a frame leaves its
first bytes on the wire; its next frames (the HELLO of the new boot, an ACK)
then land inside the length the cut frame declared. A decoder reading by the
rules waits for those L bytes, finds a CRC error and rescans, so nothing is
lost, but only once enough later bytes have come: a board that boots and then
waits in silence would have its HELLO held back for good.

The evidence that a waiting frame was cut, without guessing from time: an
intact frame (magic, header, length and CRC all check) that starts after its
first byte. A frame whose payload happened to hold a whole CRC-checked frame
is vanishingly rare, and is only judged so when the link has gone quiet
mid-frame (the I/O layer asks, FrameDecoder.resync_stalled)."""

from __future__ import annotations

import re
import struct
import zlib

from .. import contracts as C

_HEAD = struct.Struct("<BBBBH")  # magic as two bytes, version, type, length
_FIND_MAGIC = re.compile(re.escape(C.MAGIC)).search
_LIMIT = [-1] * 256  # largest payload by type; -1: unknown type
for _t, _n in C.MAX_PAYLOAD_BY_TYPE.items():
    _LIMIT[_t] = _n
_CRC_RESIDUE = 0x2144DF1C  # CRC-32 over an intact frame including its stored CRC


def intact_frame_from(buf: bytes | bytearray | memoryview, start: int) -> int:
    """Offset of the first intact frame in buf that starts at or after start, or -1."""
    end = len(buf)
    m = _FIND_MAGIC(buf, start)
    while m is not None:
        p = m.start()
        if end - p < C.OVERHEAD:
            return -1
        _, _, version, mtype, length = _HEAD.unpack_from(buf, p)
        stop = p + C.OVERHEAD + length
        if version == C.PROTOCOL_VERSION and length <= _LIMIT[mtype] and stop <= end:
            if zlib.crc32(memoryview(buf)[p:stop]) == _CRC_RESIDUE:
                return p
        m = _FIND_MAGIC(buf, p + 1)
    return -1
