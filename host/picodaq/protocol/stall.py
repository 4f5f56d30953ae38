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

import struct
import zlib

from .. import contracts as C
from .frames import CRC_RESIDUE, PAYLOAD_LIMIT, find_magic

_HEAD = struct.Struct("<BBBBH")  # magic as two bytes, version, type, length


def intact_frame_from(buf: bytes | bytearray | memoryview, start: int) -> int:
    """Offset of the first intact frame in buf that starts at or after start, or -1."""
    end = len(buf)
    m = find_magic(buf, start)
    while m is not None:
        p = m.start()
        if end - p < C.OVERHEAD:
            return -1
        _, _, version, mtype, length = _HEAD.unpack_from(buf, p)
        stop = p + C.OVERHEAD + length
        if version == C.PROTOCOL_VERSION and length <= PAYLOAD_LIMIT[mtype] and stop <= end:
            if zlib.crc32(memoryview(buf)[p:stop]) == CRC_RESIDUE:
                return p
        m = find_magic(buf, p + 1)
    return -1
