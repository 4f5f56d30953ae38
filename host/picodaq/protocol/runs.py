"""RunChecker: whether the SAMPLES frames after an accepted one form a run, checked at once.

A stream is mostly SAMPLES frames of one layout back to back, each continuing the last
(seq + 1, first_sample_index + n_samples). The frames after an accepted one must repeat its
header but for seq + i and first_sample_index + i * n_samples (magic, version, type, length,
layout; t0 and the period are the device's to set): their headers are compared with the
headers they must have in one numpy comparison, with arrays made once. seq and first_sample_index
are adjacent u32s, so together they are one little-endian u64 that grows by 1 + (n_samples << 32)
a frame: the headers a run must have are one addition and one copy away (no u32 wrap of seq inside
a run: a run stops before it, the low word would carry into the high one). Their CRCs are checked
by one CRC-32 over all of them: CRC-32 is affine, so an intact frame's CRC from any start value
depends only on that value and the frame's length, and k intact frames of one length always
give the same value, tabled from the first frame. A run that fails is cut to its longest intact
first half; what follows goes frame by frame through the decoder's ordinary rules.
"""

from __future__ import annotations

import zlib

import numpy as np

from .. import contracts as C
from ..buffers.pool import RUN_CLASS
from .layouts import SAMPLES_HEAD_SIZE, SamplesKey

# Runs: as many frames as the pool's largest buffer holds (RUN_CLASS when the pool has it)
_STEPS = np.arange(1, RUN_CLASS // (C.OVERHEAD + SAMPLES_HEAD_SIZE) + 1, dtype=np.uint32)  # 1, 2, 3, ...
_U1 = np.dtype(np.uint8)
_U8 = np.dtype("<u8")
_SEQ_END = 1 << 32  # seq wraps here: a run stops short of it
# offsets in a SAMPLES frame's first _RUN_HEAD bytes (frame header, then SAMPLES header): seq, first
# sample index, t0 and period, then n_channels, fmt and n_samples to the end
_RUN_HEAD = C.HEADER_SIZE + SAMPLES_HEAD_SIZE
_AT_SEQ = 6
_AT_FIRST = C.HEADER_SIZE
_AT_T0 = C.HEADER_SIZE + 4
_AT_SHAPE = C.HEADER_SIZE + 12
_RUN_MOST = len(_STEPS)
_FREE = np.ones((_RUN_MOST, _RUN_HEAD), np.bool_)  # the header bytes a run's frames must repeat
_FREE[:, _AT_T0:_AT_SHAPE] = False  # t0 and the period: the device's to set


# Fewer frames than this go one by one: checking a run costs a few numpy calls, which a couple
# of frames taken singly cost less than (a slow stream read every few frames, live)
MIN_RUN = 4


class RunChecker:
    """The arrays and CRC tables one decoder uses to check runs (made once; `room`: bytes a run may fill)."""

    def __init__(self) -> None:
        self.room = 0
        self._crcs: dict[int, list[int]] = {}  # CRC-32 of 0..k intact frames, by stride
        self._want = np.zeros((_RUN_MOST, _RUN_HEAD), _U1)  # the headers a run's frames must have
        self._diff = np.zeros((_RUN_MOST, _RUN_HEAD), np.bool_)  # where they differ
        # seq and first_sample_index of frames 1, 2, ... of a run: (seq, first) of frame 0 as one u64
        # plus i * (1 + n_samples << 32), made in aligned arrays (no ufunc buffers), then copied in
        self._steps = np.zeros(_RUN_MOST, _U8)  # i * (1 + n_samples << 32), per layout
        self._base = np.zeros((), _U8)
        self._seq_first = np.zeros(_RUN_MOST, _U8)
        self._seq_first_bytes = self._seq_first.view(_U1).reshape(_RUN_MOST, 8)
        self._want_seq_first = self._want[:, _AT_SEQ : _AT_FIRST + 4]
        self._want_stride = 0
        self._want_layout: tuple[int, ...] = ()
        self._rows: dict[int, tuple[np.ndarray, ...]] = {}  # per run length: row views

    def length(self, src: memoryview, start: int, stride: int, seq: int, head: SamplesKey, end: int) -> tuple[int, int]:
        """How many frames from start (an accepted SAMPLES frame) form a run that checks out whole (1:
        none), and where damage found in the frames after it ends (0: none found).

        The frames after the first must repeat its header but for seq + i and first_sample_index
        + i * n_samples (magic, version, type, length, layout; t0 and the period are free), and be
        intact: their headers are compared with the headers they must have in one comparison
        (arrays made once, per run length), and their CRCs are checked by one CRC-32 over all of
        them. This is the per-run cost that replaces a per-frame one: it allocates a handful
        of objects, not one per frame."""
        most = (end - start if end - start < self.room else self.room) // stride  # not min(): no iterator
        if most < MIN_RUN:
            return 1, 0
        n = most - 1
        if seq + n >= _SEQ_END:  # seq wraps inside: the run stops before it
            n = _SEQ_END - 1 - seq
            if n < MIN_RUN - 1:
                return 1, 0
        at = start + stride
        if stride != self._want_stride or head[1:] != self._want_layout:
            self._expect_layout(src, start, stride, head)
        rows = self._rows.get(n)
        if rows is None:
            rows = self._rows[n] = self._row_views(n)
        want, diff, free, steps, seq_first, want_seq_first, seq_first_bytes = rows
        # only the n rows this run has (the arrays hold the longest run's: 2,184 rows)
        self._base.fill(seq | head[0] << 32)
        np.add(steps, self._base, seq_first)  # wraps mod 2**64: first_sample_index mod 2**32
        np.copyto(want_seq_first, seq_first_bytes)
        np.not_equal(np.ndarray((n, _RUN_HEAD), _U1, src, at, (stride, 1)), want, diff)
        np.logical_and(diff, free, diff)  # t0 and the period may differ
        if np.count_nonzero(diff):  # not diff.any(): a reduction allocates its iterator
            k = int(diff.any(1).argmax())  # frames before the first that breaks the run
            if k == 0:
                return 1, 0
        else:
            k = n
        crcs = self._crcs.get(stride)
        if crcs is None or len(crcs) <= k:
            crcs = self._extend_crcs(src[start : start + stride], k)
        tried = k
        while k:
            body = src[at : at + k * stride]
            intact = zlib.crc32(body) == crcs[k]
            body.release()
            if intact:
                break
            k >>= 1  # something in there is damaged: the longest intact first half goes as a run
        if k < tried:
            # the frames after it go one by one (the rules find what is wrong), with no run tried
            # on them again: a damaged stream costs a few CRC passes more, not one per frame
            return k + 1, at + tried * stride
        return k + 1, 0

    def _row_views(self, n: int) -> tuple[np.ndarray, ...]:
        """Views of the first n rows of every array a run of n frames (after the first) uses."""
        return (
            self._want[:n],
            self._diff[:n],
            _FREE[:n],
            self._steps[:n],
            self._seq_first[:n],
            self._want_seq_first[:n],
            self._seq_first_bytes[:n],
        )

    def _expect_layout(self, src: memoryview, start: int, stride: int, head: SamplesKey) -> None:
        """The header bytes every frame of a run of this layout repeats (when the layout changes)."""
        want = self._want
        want[:, :_AT_SEQ] = np.frombuffer(src, _U1, _AT_SEQ, start)  # magic, version, type, length
        want[:, _AT_SHAPE:] = np.frombuffer(src, _U1, _RUN_HEAD - _AT_SHAPE, start + _AT_SHAPE)
        np.multiply(_STEPS, 1 + (head[3] << 32), self._steps, dtype=_U8)
        self._want_stride = stride
        self._want_layout = head[1:]

    def _extend_crcs(self, template: memoryview, k: int) -> list[int]:
        """CRC-32 of 0..k intact frames of template's length, back to back (template: one intact frame)."""
        stride = len(template)
        crcs = self._crcs.get(stride)
        if crcs is None:
            if len(self._crcs) >= 64:  # a stream changing layouts all the time: start over
                self._crcs.clear()
            crcs = self._crcs[stride] = [0]
        while len(crcs) <= k:
            crcs.append(zlib.crc32(template, crcs[-1]))
        template.release()
        return crcs
