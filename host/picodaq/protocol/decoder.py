"""FrameDecoder: bytes in, frames out, with PROTOCOL.md's receiving rules.

No I/O and no threads, like h11: `feed(data)` adds bytes (`feed(b"")` marks the end of input), `next_frame()`
returns the next accepted Frame or NEED_DATA.

Rules implemented (PROTOCOL.md's receiving rules): a frame is accepted only if magic, version, type, length
(within the type's maximum) and CRC-32 all check; on a failure at offset p the error is counted and scanning
resumes at p + 1 (an intact frame after garbage is never lost); bytes passed over count as skipped; the seq step d
(mod 2**32): 1 < d < 2**31 counts d - 1 seq_lost, d = 0 is a duplicate (dropped, counted), d >= 2**31 a
seq_resets and a new base; a SAMPLES frame whose length disagrees with its header is a decode error; a jump in
first_sample_index counts samples_lost, one back starts a new segment; a HELLO with seq 0 is a (re)booted board: a
new base. A frame cut short by a reset: resync_stalled().

Copies: `feed` does not copy. The decoder reads the data in place until `next_frame()` returns NEED_DATA, and only
then keeps a copy of the incomplete frame at its end (at most one largest frame, MAX_FRAME bytes: the length field
is checked against its type's maximum before anything waits). So the caller must not change the data before
NEED_DATA, or before `stash()` (which takes that copy at once). An accepted frame is copied exactly once: into a
buffer lent by `pool` (release each frame), or into a bytes payload. The CRC is checked as CRC-32 over the frame
including its stored CRC, which for an intact frame is the fixed residue 0x2144DF1C: no field to unpack.

Runs (`drain(handler, run_handler)`): after accepting a SAMPLES frame the decoder looks ahead for frames that
continue it and checks them all at once (runs.py); a run is copied once, into one pooled buffer, and handed to
`run_handler(loan, head, n_frames, stride, seq)`. Counters stay exactly those of frame-by-frame decoding: a run
only extends with seq + 1.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator

from .. import contracts as C
from ..buffers.pool import RUN_CLASS, BufferPool, Loaned
from .frames import CRC_RESIDUE as _CRC_RESIDUE
from .frames import LOAN_FRAME_OFFSET, NEED_DATA, Frame, _NeedData, byte_view
from .frames import PAYLOAD_LIMIT as _LIMIT  # largest payload by type; -1: unknown type
from .frames import find_magic as _FIND_MAGIC
from .layouts import SAMPLES_HEAD_SIZE, SAMPLES_KEY, SamplesKey
from .runs import RunChecker
from .stall import intact_frame_from
from .stats import DecoderStats

__all__ = ["NEED_DATA", "DecoderStats", "FrameDecoder", "RunHandler"]

_HEAD = struct.Struct("<BB" + C.HEADER_FORMAT[3:])  # magic as two bytes, version, type, length, seq
assert C.HEADER_FORMAT.startswith("<2s") and _HEAD.size == C.HEADER_SIZE
_SAMPLES_HEAD = SAMPLES_HEAD_SIZE
_SAMPLES_KEY = SAMPLES_KEY  # first_sample_index, n_channels, fmt, n_samples
_U32 = 0xFFFFFFFF
_HALF = 1 << 31
_M0, _M1 = C.MAGIC
_BPS = [0] * 256  # bytes per sample by format code; 0: unknown format
for _f, _n in C.BYTES_PER_SAMPLE.items():
    _BPS[_f] = _n
_HEADER = C.HEADER_SIZE
_VERSION = C.PROTOCOL_VERSION
_SAMPLES_ID = C.MSG_SAMPLES
_HELLO_ID = C.MSG_HELLO
_MAX_CH = C.MAX_CHANNELS
# ready-made ints by payload length: frame size, pooled buffer size (the end of the frame in it)
_TOTAL = [C.OVERHEAD + n for n in range(C.MAX_PAYLOAD + 1)]
_LOAN_SIZE = [LOAN_FRAME_OFFSET + C.OVERHEAD + n for n in range(C.MAX_PAYLOAD + 1)]
_TOPUP = C.MAX_FRAME  # bytes of new data joined to a kept partial frame: enough to finish it


RunHandler = Callable[[Loaned, SamplesKey, int, int, int], object]


class FrameDecoder:
    def __init__(self, pool: BufferPool | None = None) -> None:
        self.pool = pool
        self.stats = DecoderStats()
        self._last_seq: int | None = None
        # sample index tracking: the previous block's first index and length (None: no base yet)
        self._prev_first: int | None = None
        self._prev_ns = 0
        self._run = 0  # SAMPLES frames of the cached layout not yet added to stats.samples
        self._inflight = 0  # during a handler's call: frames accepted by this drain, not yet in stats
        self.truncated_tail = 0  # bytes at the end of input from the first frame it cut short
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
        # runs: how far runs are not tried again (damage was found there), and the checker
        self._no_run_before = 0
        self._run_handler: RunHandler | None = None
        self._runs = RunChecker()
        self.runs = 0  # runs handed to a run handler (frames in them are counted in frames_ok)

    # -- input -------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes (read in place until NEED_DATA); `feed(b"")` marks the end of input."""
        if not len(data):
            self._eof = True
            return
        mv = byte_view(data)
        self._no_run_before = 0  # positions from now on are in other data
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
        # a partial frame is kept: join the start of the new data to it, as much as it needs
        # when its header tells (the rest is then read in place, where runs can be taken)
        k = self._carry_needs(len(mv))
        self._switch_at = len(self._carry)
        self._append(mv[:k])
        if k < len(mv):
            self._next = mv
            self._skip = k

    def _carry_needs(self, most: int) -> int:
        """Bytes the kept partial frame lacks, if its header is whole and fits, else a largest frame's
        worth; at most `most` (no min() or max() here: their two-argument forms allocate an iterator)."""
        carry = self._carry
        n = len(carry)
        need = _TOPUP
        if n >= _HEADER and carry[0] == _M0 and carry[1] == _M1 and carry[2] == _VERSION:
            length = carry[4] | carry[5] << 8
            if length <= _LIMIT[carry[3]]:
                need = _TOTAL[length] - n if _TOTAL[length] > n else 1
        return need if need < most else most

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
        rest = self._src[self._pos :]
        self._src.release()
        self._carry += rest  # the carry is empty: += copies in place (`[:] =` makes a temporary copy)
        rest.release()
        self._src = memoryview(self._carry)
        self._pos = 0
        self._borrowed = False

    def _flatten(self) -> None:
        """Copy the rest of `_next` into the carry (the caller fed twice without draining)."""
        nxt = self._next
        assert nxt is not None
        self._append(nxt[self._skip :])
        self._next = None

    def _compact(self) -> None:
        if self._pos:
            self._src.release()
            del self._carry[: self._pos]
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
        self._prev_first = None

    def resync_stalled(self) -> bool:
        """The link went quiet inside a kept partial frame: if an intact frame starts after its first
        byte, it was cut short (stall.py): count it truncated, rescan from p + 1 (drain() next). True then."""
        src, pos = self._src, self._pos
        if self._next is not None or len(src) - pos < _HEADER or intact_frame_from(src, pos + 1) < 0:
            return False
        self.stats.truncated += 1
        self._pos = pos + 1
        return True

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet consumed."""
        n = len(self._src) - self._pos
        if self._next is not None:
            n += len(self._next) - self._skip
        return n

    # -- output ------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        while True:
            f = self.next_frame()
            if isinstance(f, _NeedData):
                return
            yield f

    def next_frame(self) -> Frame | _NeedData:
        """The next accepted frame (the caller owns it), or NEED_DATA."""
        return self._scan(None)

    def drain(self, handler: Callable[[Frame], object], run_handler: RunHandler | None = None) -> int:
        """Call handler(frame) for every frame the input completes; returns how many frames.

        The Frame passed is one envelope the decoder reuses for the next frame:
        during the call, take what you need (`take_loan()`, `detach()`); the
        router releases what is left. Counters are exact when drain returns.

        With run_handler (a pooled decoder only), runs of SAMPLES frames that continue
        each other go to run_handler(loan, head, n_frames, stride, seq) instead, in
        order with the other frames: loan holds the n_frames frames back to back
        from LOAN_FRAME_OFFSET, each stride bytes; head is the first frame's
        (first_sample_index, n_channels, fmt, n_samples) and seq its seq. The
        handler owns the loan."""
        if run_handler is not None and self.pool is None:
            raise ValueError("runs are copied into pooled buffers: give the decoder a BufferPool")
        self._run_handler = run_handler
        if run_handler is not None and not self._runs.room:
            self._runs.room = min(self.pool.largest, RUN_CLASS) - LOAN_FRAME_OFFSET  # type: ignore[union-attr]
        try:
            self._scan(handler)
        finally:
            self._run_handler = None
        return self._drained

    def _scan(self, handler: Callable[[Frame], object] | None) -> Frame | _NeedData:
        # The hot loop: an intact frame at `pos`, accepted with as little work
        # and allocation as Python allows (every int above 256 is an
        # allocation): counters live in locals until the call ends, frame sizes
        # come from tables of ready-made ints, the CRC is checked by its
        # residue, the SAMPLES layout check is cached. Everything else (a kept
        # partial frame, garbage, a bad header or CRC, too few bytes) goes to
        # _off_path. Locals src/pos/end mirror _src/_pos/len(_src): synced
        # before a helper runs and reloaded after; _pos is written back on exit.
        st = self.stats
        pool = self.pool
        src = self._src
        pos = self._pos
        end = len(src)
        count = 0  # frames accepted by this call
        try:
            while True:
                if self._next is None or pos < self._switch_at:
                    try:
                        m0, m1, version, mtype, length, seq = _HEAD.unpack_from(src, pos)
                    except struct.error:  # fewer than a header's bytes left
                        m0 = -1
                    if m0 == _M0 and m1 == _M1 and version == _VERSION and length <= _LIMIT[mtype]:
                        nxt = pos + _TOTAL[length]
                        if nxt <= end:
                            fv = src[pos:nxt]
                            if zlib.crc32(fv) == _CRC_RESIDUE:
                                pos = nxt
                                # seq: +1 modulo 2**32, else the frames in between were lost
                                last = self._last_seq
                                if mtype == _HELLO_ID and seq == 0:
                                    self._prev_first = None  # the board booted: a new stream starts
                                elif last is not None and seq - last != 1 and (seq or last != _U32):
                                    if self._seq_step(seq, last):
                                        fv.release()  # a duplicate: dropped, never delivered twice
                                        continue
                                self._last_seq = seq
                                head = None
                                if mtype == _SAMPLES_ID:
                                    if length >= _SAMPLES_HEAD:
                                        head = _SAMPLES_KEY.unpack_from(fv, _HEADER)
                                        if (
                                            head[3] != self._layout_ns
                                            or head[1] != self._layout_nch
                                            or head[2] != self._layout_fmt
                                            or length != self._layout_length
                                        ):
                                            head = self._new_layout(head, length)
                                    if head is None:
                                        st.decode_errors += 1  # intact, but its length disagrees with its header
                                        fv.release()
                                        continue
                                    # sample indices: this block should start where the last one ended
                                    first = head[0]
                                    prev = self._prev_first
                                    if prev is not None and first - prev != self._prev_ns:
                                        gap = (first - prev - self._prev_ns) & _U32
                                        if gap < _HALF:  # else backwards: a new stream (START again), a new base
                                            st.samples_lost += gap
                                    self._prev_first = first
                                    self._prev_ns = head[3]
                                    self._run += 1
                                    run = self._run_handler
                                    if run is not None and nxt < end and nxt >= self._no_run_before:
                                        stride = _TOTAL[length]
                                        k, damaged = self._runs.length(src, nxt - stride, stride, seq, head, end)
                                        if damaged:
                                            self._no_run_before = damaged
                                        if k > 1:
                                            loan = self._take_run(src, nxt - stride, stride, k, head, seq)
                                            fv.release()
                                            count += k
                                            pos = nxt - stride + k * stride  # consumed, even if the handler raises
                                            self._inflight = count
                                            run(loan, head, k, stride, seq)
                                            continue
                                count += 1
                                if pool is None:
                                    frame = Frame(mtype, seq, bytes(fv[_HEADER : _HEADER + length]), head=head)
                                else:
                                    loan = pool.acquire(_LOAN_SIZE[length])
                                    loan.view[LOAN_FRAME_OFFSET : _LOAN_SIZE[length]] = fv
                                    if handler is None:
                                        frame = Frame(mtype, seq, None, loan, length, head)
                                    else:
                                        frame = self._envelope
                                        frame.type = mtype
                                        frame.seq = seq
                                        frame.length = length
                                        frame.head = head
                                        frame.loan = loan
                                        frame._payload = None
                                fv.release()
                                if handler is None:
                                    return frame
                                self._inflight = count
                                handler(frame)
                                frame.head = None  # the envelope keeps nothing of the frame alive
                                frame.seq = 0
                                continue
                            fv.release()
                if pos == end and self._borrowed and self._next is None:  # the data ends on a frame's end
                    src.release()  # let go of the caller's data: nothing of it is kept
                    self._src, self._borrowed, pos = memoryview(self._carry), False, 0  # (the carry is empty)
                    return NEED_DATA
                self._pos = pos
                more = self._off_path()
                src, pos = self._src, self._pos
                end = len(src)
                if not more:
                    return NEED_DATA
        finally:
            self._pos = pos
            self._drained = count
            self._inflight = 0
            if count:
                st.frames_ok += count
                self._count_run()

    def counters(self) -> dict[str, int]:
        """The counters, exact in a handler's call too (drain adds its frames to `stats` at the end)."""
        d = self.stats.as_dict()
        d["frames_ok"], d["samples"] = d["frames_ok"] + self._inflight, d["samples"] + self._run * self._layout_ns
        return d

    def _seq_step(self, seq: int, last: int) -> bool:
        """A seq that does not follow the last one (d != 1), by the rules above: True for a duplicate."""
        st = self.stats
        d = (seq - last) & _U32
        if d == 0:
            st.duplicates += 1
            return True
        if d < _HALF:
            st.seq_lost += d - 1
        else:
            st.seq_resets += 1
            self._prev_first = None
        return False

    def _take_run(self, src: memoryview, start: int, stride: int, k: int, head: SamplesKey, seq: int) -> Loaned:
        """Count a checked run of k frames (the first already counted) and copy it into one pooled buffer."""
        self._last_seq = (seq + k - 1) & _U32
        self._prev_first = (head[0] + (k - 1) * head[3]) & _U32
        self._run += k - 1
        self.runs += 1
        size = k * stride
        pool = self.pool
        assert pool is not None
        loan = pool.acquire(LOAN_FRAME_OFFSET + size)
        loan.view[LOAN_FRAME_OFFSET : LOAN_FRAME_OFFSET + size] = src[start : start + size]
        return loan

    def _count_run(self) -> None:
        """Add the SAMPLES frames counted in _run (all of the cached layout) to stats.samples."""
        if self._run:
            self.stats.samples += self._run * self._layout_ns
            self._run = 0

    def _new_layout(self, head: SamplesKey, length: int) -> SamplesKey | None:
        """A SAMPLES header unlike the last: head if its length agrees with it (now cached), else None."""
        _, nch, fmt, ns = head
        bps = _BPS[fmt]
        if not bps or nch < 1 or nch > _MAX_CH or length != _SAMPLES_HEAD + nch * ns * bps:
            return None
        self._count_run()  # the frames counted so far had the old layout
        self._layout_ns, self._layout_nch, self._layout_fmt, self._layout_length = ns, nch, fmt, length
        return head

    def _off_path(self) -> bool:
        """Whatever is at _pos is not an intact frame the hot loop could take.

        Count it and move on: True to scan on, False when more bytes are needed."""
        st = self.stats
        src, pos = self._src, self._pos
        end = len(src)
        if self._next is not None and pos >= self._switch_at:
            self._switch_to_next(pos)  # the kept partial frame is done: read the caller's data in place
            return True
        if end - pos >= 2 and src[pos] == _M0 and src[pos + 1] == _M1:
            if end - pos < _HEADER:
                return self._incomplete(pos)
            _, _, version, mtype, length, _ = _HEAD.unpack_from(src, pos)
            if version != _VERSION or length > _LIMIT[mtype]:
                st.header_errors += 1
            elif end - pos < _TOTAL[length]:
                return self._incomplete(pos)
            else:
                st.crc_errors += 1
            self._pos = pos + 1  # resume the hunt for magic right after this one
            return True
        m = _FIND_MAGIC(src, pos, end)
        if m is not None:
            st.skipped_bytes += m.start() - pos
            self._pos = m.start()
            return True
        # keep a trailing first magic byte: its partner may come next
        keep = 1 if end > pos and src[end - 1] == _M0 and not self._eof else 0
        st.skipped_bytes += end - pos - keep
        self._pos = end - keep
        if self._next is not None and self._pos >= self._switch_at:
            return True  # the rest is the caller's data: read it in place
        return self._more() or self._need()

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
        self._append(nxt[self._skip : self._skip + k])
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
        # end of input inside a frame: it can never complete; rescan past it (and say how much it cut)
        self.truncated_tail = self.truncated_tail or len(self._src) - pos
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
