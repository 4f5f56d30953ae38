"""Reading link captures: a strict, independent frame scanner and a readable log.

`scan(data)` walks a byte capture and yields every intact frame and every run
of bytes between frames. It is deliberately a second, plain implementation of
PROTOCOL.md's framing (find magic, check header, CRC): the HIL suite uses it as
an oracle next to picodaq's FrameDecoder, and to turn a device capture into a
log a person can read (`describe`).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from picodaq import contracts as C

_HEADER = struct.Struct(C.HEADER_FORMAT)
_SAMPLES = struct.Struct(C.SAMPLES_FORMAT)
_U32 = struct.Struct("<I")


@dataclass(frozen=True)
class CapturedFrame:
    """An intact frame found at [start, end) of a capture."""

    start: int
    end: int
    type: int
    seq: int
    payload: bytes

    @property
    def name(self) -> str:
        return C.MESSAGE_NAMES.get(self.type, f"0x{self.type:02X}")

    @property
    def samples(self) -> tuple[int, int] | None:
        """(first_sample_index, n_samples) of a SAMPLES frame, else None."""
        if self.type != C.MSG_SAMPLES or len(self.payload) < _SAMPLES.size:
            return None
        first, _, _, _, _, n = _SAMPLES.unpack_from(self.payload)
        return first, n


@dataclass(frozen=True)
class Gap:
    """Bytes between frames: REPL text, garbage, or a damaged frame."""

    start: int
    data: bytes


def _frame_at(data: bytes | memoryview, i: int) -> CapturedFrame | None:
    if len(data) - i < C.OVERHEAD:
        return None
    magic, version, mtype, length, seq = _HEADER.unpack_from(data, i)
    limit = C.MAX_PAYLOAD_BY_TYPE.get(mtype)
    if magic != C.MAGIC or version != C.PROTOCOL_VERSION or limit is None or length > limit:
        return None
    end = i + C.OVERHEAD + length
    if end > len(data):
        return None
    with memoryview(data) as mv:
        crc = zlib.crc32(mv[i : end - C.CRC_SIZE])
    if crc != _U32.unpack_from(data, end - C.CRC_SIZE)[0]:
        return None
    return CapturedFrame(i, end, mtype, seq, bytes(data[i + C.HEADER_SIZE : end - C.CRC_SIZE]))


def scan(data: bytes | memoryview) -> Iterator[CapturedFrame | Gap]:
    """Every intact frame of a capture, in order, and the bytes between them."""
    data = bytes(data)
    pos = 0
    gap_start = 0
    n = len(data)
    while pos < n:
        i = data.find(C.MAGIC, pos)
        if i < 0:
            break
        frame = _frame_at(data, i)
        if frame is None:
            pos = i + 1
            continue
        if i > gap_start:
            yield Gap(gap_start, data[gap_start:i])
        yield frame
        pos = gap_start = frame.end
    if gap_start < n:
        yield Gap(gap_start, data[gap_start:])


def frames(data: bytes | memoryview) -> list[CapturedFrame]:
    return [f for f in scan(data) if isinstance(f, CapturedFrame)]


def _text(raw: bytes) -> str:
    """Printable text as is, anything else as \\x escapes (so REPL output and tracebacks read)."""
    out = []
    for b in raw:
        if b in (9, 10) or 32 <= b < 127:
            out.append(chr(b))
        elif b == 13:
            continue
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _describe_gap(raw: bytes) -> str:
    """Text (REPL output, a traceback) in full up to 2000 characters; binary (damaged frames) as a
    byte count and its first bytes in hex."""
    printable = sum(1 for b in raw if b in (9, 10, 13) or 32 <= b < 127)
    if printable >= 0.8 * len(raw):
        text = _text(raw)
        cut = f" ... ({len(text) - 2000} more characters)" if len(text) > 2000 else ""
        return f"{len(raw)} bytes of text outside frames: {text[:2000]}{cut}"
    head = raw[:24].hex(" ")
    return f"{len(raw)} bytes outside frames (damaged frames or garbage): {head}{' ...' if len(raw) > 24 else ''}"


def describe_frame(f: CapturedFrame) -> str:
    from picodaq.protocol.messages import Ack, Hello, Log, Marker, Status

    p = f.payload
    try:
        if f.type == C.MSG_HELLO:
            h = Hello.parse(p)
            return (
                f"HELLO   seq {f.seq}: firmware {'.'.join(map(str, h.firmware_version))} on {h.platform}, "
                f"board {h.board_id}, contract 0x{h.contract_hash:08X}"
            )
        if f.type == C.MSG_STATUS:
            s = Status.parse(p)
            return (
                f"STATUS  seq {f.seq}: {s.state_name}, last error {s.error_name}, {s.frames_sent} frames sent, "
                f"{s.samples_dropped} dropped, ring {s.ring_high_water}/{s.ring_capacity}, "
                f"free heap {s.free_heap}, uptime {s.uptime_ms} ms"
            )
        if f.type == C.MSG_LOG:
            log = Log.parse(p)
            return f"LOG     seq {f.seq}: [{log.level}] {log.text}"
        if f.type == C.MSG_ACK:
            a = Ack.parse(p)
            return (
                f"ACK     seq {f.seq}: {C.OPCODE_NAMES.get(a.opcode, a.opcode)} #{a.cmd_id} "
                f"{C.STATUS_NAMES.get(a.status, a.status)}"
            )
        if f.type == C.MSG_MARKER:
            m = Marker.parse(p)
            return f"MARKER  seq {f.seq}: code {m.code} at sample {m.sample_index}"
        if f.type == C.MSG_COMMAND:
            return f"COMMAND seq {f.seq}: {C.OPCODE_NAMES.get(p[0], p[0]) if p else '?'}"
    except (struct.error, IndexError, ValueError):
        pass
    return f"{f.name:<7} seq {f.seq}: {len(p)} payload bytes"


def describe_items(data: bytes | memoryview) -> list[tuple[int, str]]:
    """(capture offset, line) for every frame, with runs of consecutive SAMPLES folded into one
    line, and the text between frames (REPL output, tracebacks, garbage) shown as text."""
    items: list[tuple[int, str]] = []
    run: list[CapturedFrame] = []

    def flush_run() -> None:
        if not run:
            return
        a, b = run[0], run[-1]
        sa, sb = a.samples, b.samples
        span = f", instants {sa[0]}..{sb[0] + sb[1] - 1}" if sa and sb else ""
        items.append((a.start, f"SAMPLES seq {a.seq}..{b.seq} ({len(run)} frames{span})"))
        run.clear()

    for item in scan(data):
        if isinstance(item, CapturedFrame):
            if item.type == C.MSG_SAMPLES:
                if run and (item.seq - run[-1].seq) & 0xFFFFFFFF != 1:
                    flush_run()
                run.append(item)
                continue
            flush_run()
            items.append((item.start, describe_frame(item)))
        else:
            flush_run()
            items.append((item.start, _describe_gap(item.data)))
    flush_run()
    return items


def describe(data: bytes | memoryview, limit_lines: int = 5000) -> str:
    """describe_items() as text, one `@offset line` per item."""
    lines = [f"@{off:<9} {text}" for off, text in describe_items(data)]
    if len(lines) > limit_lines:
        cut = len(lines) - limit_lines
        lines = lines[: limit_lines // 2] + [f"... {cut} lines left out ..."] + lines[-limit_lines // 2 :]
    return "\n".join(lines) + ("\n" if lines else "")
