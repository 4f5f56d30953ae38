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

Copies: `feed` does not copy. The decoder reads the data in place until
`next_frame()` returns NEED_DATA, and only then keeps a copy of the
incomplete frame at its end (at most one largest frame, MAX_FRAME bytes: the
length field is checked against its type's maximum before anything waits).
So the caller must not change the data before NEED_DATA, or before calling
`stash()`, which takes that copy at once. An accepted frame is copied exactly
once: into a buffer lent by `pool` (a pooled decoder: release each frame), or
into a bytes payload (a decoder without a pool: frames own their bytes).

The CRC is checked as CRC-32 over the frame including its stored CRC, which
for an intact frame is the fixed residue 0x2144DF1C: no field to unpack.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import asdict, dataclass
from typing import Callable

from . import contracts as C
from .frames import LOAN_FRAME_OFFSET, Frame
from .pool import BufferPool


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()

_HEAD = struct.Struct("<BB" + C.HEADER_FORMAT[3:])  # magic as two bytes, version, type, length, seq
assert C.HEADER_FORMAT.startswith("<2s") and _HEAD.size == C.HEADER_SIZE
_SAMPLES = struct.Struct(C.SAMPLES_FORMAT)
_SAMPLES_HEAD = _SAMPLES.size
_U32 = 0xFFFFFFFF
_HALF = 1 << 31
_CRC_RESIDUE = 0x2144DF1C
_M0, _M1 = C.MAGIC
_FIND_MAGIC = re.compile(re.escape(C.MAGIC)).search  # works on any buffer, memoryviews included
_LIMIT = [-1] * 256  # largest payload by type; -1: unknown type
for _t, _n in C.MAX_PAYLOAD_BY_TYPE.items():
    _LIMIT[_t] = _n
_BPS = [0] * 256  # bytes per sample by format code; 0: unknown format
for _f, _n in C.BYTES_PER_SAMPLE.items():
    _BPS[_f] = _n
_HEADER = C.HEADER_SIZE
_OVERHEAD = C.OVERHEAD
_VERSION = C.PROTOCOL_VERSION
_SAMPLES_ID = C.MSG_SAMPLES
_HELLO_ID = C.MSG_HELLO
_MAX_CH = C.MAX_CHANNELS
# ready-made ints by payload length: frame size, pooled buffer size, end of the frame in it
_TOTAL = [C.OVERHEAD + n for n in range(C.MAX_PAYLOAD + 1)]
_LOAN_SIZE = [LOAN_FRAME_OFFSET + C.OVERHEAD + n for n in range(C.MAX_PAYLOAD + 1)]
_LOAN_END = _LOAN_SIZE
_TOPUP = C.MAX_FRAME  # bytes of new data joined to a kept partial frame: enough to finish it


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
    if len(payload) < _SAMPLES_HEAD:
        return False
    _, _, _, nch, fmt, ns = _SAMPLES.unpack_from(payload)
    bps = _BPS[fmt]
    if not bps or not 1 <= nch <= _MAX_CH:
        return False
    return len(payload) == _SAMPLES_HEAD + nch * ns * bps


def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    mv = memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1 or mv.format not in ("B", "b", "c"):
        mv = mv.cast("B")
    return mv


class FrameDecoder:
    def __init__(self, pool: BufferPool | None = None) -> None:
        self.pool = pool
        self.stats = DecoderStats()
        self._last_seq: int | None = None
        self._next_index: int | None = None
        self._eof = False
        # Input. `_src` is what is being scanned, from `_pos`: either a view of
        # the caller's data (borrowed) or of `_carry`, the decoder's own copy
        # of a partial frame. While the carry is scanned, `_next` may hold the
        # caller's data that follows it; its first `_skip` bytes were copied to
        # the end of the carry, starting at carry offset `_switch_at`, so carry
        # offset p >= _switch_at is `_next[p - _switch_at]`.
        self._carry = bytearray()
        self._src: memoryview = memoryview(self._carry)
        self._borrowed = False
        self._pos = 0
        self._next: memoryview | None = None
        self._skip = 0
        self._switch_at = 0
        self._envelope = Frame(0, 0, None)  # drain()'s reused frame
        self._drained = 0
        # the last SAMPLES layout that checked out (a cache: most frames repeat it)
        self._layout_ns = self._layout_nch = self._layout_fmt = self._layout_length = -1

    # -- input -------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes (read in place until NEED_DATA); `feed(b"")` marks the end of input."""
        if not len(data):
            self._eof = True
            return
        mv = _byte_view(data)
        if self._borrowed:
            if self._pos >= len(self._src):  # drained: read the new data in place
                self._src.release()
                self._src = mv
                self._pos = 0
                return
            self._stash()  # fed again before draining: keep the unread rest
        if self._next is not None:
            self._flatten()
        self._compact()
        if not len(self._carry):
            self._src.release()
            self._src = mv
            self._pos = 0
            self._borrowed = True
            return
        # a partial frame is kept: join the start of the new data to it
        k = min(len(mv), _TOPUP)
        self._switch_at = len(self._carry)
        self._append(mv[:k])
        if k < len(mv):
            self._next = mv
            self._skip = k

    def stash(self) -> None:
        """Copy what the decoder still needs of the data it reads in place.

        After this the caller may reuse the buffers it fed. Nothing needs it
        once next_frame() has returned NEED_DATA."""
        if self._borrowed:
            self._stash()
        if self._next is not None:
            self._flatten()

    def _append(self, data: memoryview) -> None:
        self._src.release()
        self._carry += data
        self._src = memoryview(self._carry)

    def _stash(self) -> None:
        """Borrowed -> carry: keep the unread rest of the caller's data (the carry is empty)."""
        rest = self._src[self._pos:]
        self._src.release()
        self._carry[:] = rest
        rest.release()
        self._src = memoryview(self._carry)
        self._pos = 0
        self._borrowed = False

    def _flatten(self) -> None:
        """Copy the rest of `_next` into the carry (the caller fed twice without draining)."""
        nxt = self._next
        assert nxt is not None
        self._append(nxt[self._skip:])
        self._next = None

    def _compact(self) -> None:
        if self._pos:
            self._src.release()
            del self._carry[:self._pos]
            self._src = memoryview(self._carry)
            self._pos = 0

    def reset_link(self) -> None:
        """A reconnect: drop partial input; the next frame sets the seq base."""
        self._src.release()
        self._carry.clear()
        self._src = memoryview(self._carry)
        self._borrowed = False
        self._next = None
        self._pos = 0
        self._last_seq = None
        self._next_index = None

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet consumed."""
        n = len(self._src) - self._pos
        if self._next is not None:
            n += len(self._next) - self._skip
        return n

    # -- output ------------------------------------------------------------

    def __iter__(self):
        while True:
            f = self.next_frame()
            if f is NEED_DATA:
                return
            yield f

    def next_frame(self) -> Frame | _NeedData:
        """The next accepted frame (the caller owns it), or NEED_DATA."""
        return self._scan(None)

    def drain(self, handler: Callable[[Frame], object]) -> int:
        """Call handler(frame) for every frame the input completes; returns how many.

        The Frame passed is one envelope the decoder reuses for the next frame:
        during the call, take what you need (`take_loan()`, `detach()`); the
        router releases what is left. Counters are exact when drain returns."""
        self._scan(handler)
        return self._drained

    def _scan(self, handler: Callable[[Frame], object] | None) -> Frame | _NeedData:
        # The hot loop. Allocation matters here (every Python int above 256 is
        # one): counters are kept in locals and added to `stats` once per call,
        # the SAMPLES layout check is cached, frame sizes come from tables of
        # ready-made ints, and the CRC is checked by its residue. Locals `src`,
        # `pos` and `end` mirror `_src`, `_pos` and `len(_src)`: synced before
        # a helper runs and reloaded after, and `_pos` is written back on exit.
        st = self.stats
        pool = self.pool
        envelope = self._envelope
        src = self._src
        pos = self._pos
        end = len(src)
        count = 0  # frames accepted by this call
        samples = 0
        try:
            while True:
                if self._next is not None and pos >= self._switch_at:
                    # the kept partial frame is done: go on reading the caller's data in place
                    self._switch_to_next(pos)
                    src, pos = self._src, self._pos
                    end = len(src)
                    continue
                try:
                    m0, m1, version, mtype, length, seq = _HEAD.unpack_from(src, pos)
                except struct.error:  # fewer than a header's bytes left
                    m0 = m1 = -1
                if m0 != _M0 or m1 != _M1:
                    m = _FIND_MAGIC(src, pos, end)
                    if m is not None and m.start() > pos:
                        st.skipped_bytes += m.start() - pos
                        pos = m.start()
                        continue
                    if m is None:
                        # keep a trailing first magic byte: its partner may come next
                        keep = 1 if end > pos and src[end - 1] == _M0 and not self._eof else 0
                        st.skipped_bytes += end - pos - keep
                        pos = end - keep
                        if self._next is not None and pos >= self._switch_at:
                            continue  # the rest is the caller's data: read it in place
                        self._pos = pos
                        more = self._more() or self._need()
                    else:  # magic at pos, the header not all here yet
                        self._pos = pos
                        more = self._incomplete(pos)
                    src, pos = self._src, self._pos
                    end = len(src)
                    if more:
                        continue
                    return NEED_DATA
                if version != _VERSION or length > _LIMIT[mtype]:
                    st.header_errors += 1
                    pos += 1
                    continue
                nxt = pos + _TOTAL[length]
                if nxt > end:
                    self._pos = pos
                    more = self._incomplete(pos)
                    src, pos = self._src, self._pos
                    end = len(src)
                    if more:
                        continue
                    return NEED_DATA
                fv = src[pos:nxt]
                if zlib.crc32(fv) != _CRC_RESIDUE:
                    fv.release()
                    st.crc_errors += 1
                    pos += 1
                    continue
                pos = nxt
                # sequence: +1 modulo 2**32, or the frames in between were lost
                last = self._last_seq
                if mtype == _HELLO_ID and seq == 0:
                    self._next_index = None  # the board booted: seq and sample indices start anew
                elif last is not None and seq - last != 1 and not (seq == 0 and last == _U32):
                    st.seq_lost += (seq - last - 1) & _U32
                self._last_seq = seq
                head = None
                if mtype == _SAMPLES_ID:
                    if length < _SAMPLES_HEAD:
                        st.decode_errors += 1
                        fv.release()
                        continue
                    head = _SAMPLES.unpack_from(fv, _HEADER)
                    first, _, _, nch, fmt, ns = head
                    if ns != self._layout_ns or nch != self._layout_nch or fmt != self._layout_fmt \
                            or length != self._layout_length:
                        bps = _BPS[fmt]
                        if not bps or nch < 1 or nch > _MAX_CH or length != _SAMPLES_HEAD + nch * ns * bps:
                            st.decode_errors += 1  # intact, but its length disagrees with its header
                            fv.release()
                            continue
                        self._layout_ns, self._layout_nch, self._layout_fmt = ns, nch, fmt
                        self._layout_length = length
                    expected = self._next_index
                    if expected is not None and first != expected:
                        gap = (first - expected) & _U32
                        if gap < _HALF:
                            st.samples_lost += gap
                        # a backwards jump is a new stream (START again): it sets the base
                    after = first + ns
                    self._next_index = after if after <= _U32 else after & _U32
                    samples += ns
                count += 1
                if pool is None:
                    frame = Frame(mtype, seq, bytes(fv[_HEADER:_HEADER + length]), head=head)
                else:
                    loan = pool.acquire(_LOAN_SIZE[length])
                    loan.view[LOAN_FRAME_OFFSET:_LOAN_END[length]] = fv
                    if handler is None:
                        frame = Frame(mtype, seq, None, loan, length, head)
                    else:
                        frame = envelope
                        frame.type = mtype
                        frame.seq = seq
                        frame.length = length
                        frame.head = head
                        frame.loan = loan
                        frame._payload = None
                fv.release()
                if handler is None:
                    return frame
                handler(frame)
        finally:
            self._pos = pos
            self._drained = count
            if count:
                st.frames_ok += count
                st.samples += samples

    def _switch_to_next(self, pos: int) -> None:
        nxt = self._next
        assert nxt is not None
        self._next = None
        self._pos = pos - self._switch_at
        self._src.release()
        self._carry.clear()
        self._src = nxt
        self._borrowed = True

    def _more(self) -> bool:
        """Bring more of `_next` into the carry; False when there is none."""
        nxt = self._next
        if nxt is None:
            return False
        k = min(len(nxt) - self._skip, _TOPUP)
        self._append(nxt[self._skip:self._skip + k])
        self._skip += k
        if self._skip >= len(nxt):
            self._next = None
        return True

    def _incomplete(self, pos: int) -> bool:
        """A frame at pos needs more bytes: True to scan on, False for NEED_DATA."""
        if self._more():
            return True
        if not self._eof:
            return self._need()
        # end of input inside a frame: it can never complete; rescan past it
        self.stats.truncated += 1
        self._pos = pos + 1
        return True

    def _need(self) -> bool:
        """Out of bytes: keep the unread rest (at most one partial frame); False (scan no more)."""
        if self._borrowed:
            self._stash()
        else:
            self._compact()
        return False
