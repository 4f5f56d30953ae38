"""numpy views of the samples in a pooled buffer, and their decoding to int32 counts.

The views are made once per buffer and layout and cached on the loan (`views_for`),
so binding a block allocates no arrays:

- int32 samples of a single frame: the counts are a view of the frame's bytes
  (aligned: the frame sits in its buffer so the samples start at offset 32);
- int16, int24 big-endian (ADS1299 order) and runs of several frames are decoded,
  vectorised and on first use of the counts, into an int32 array kept with the
  buffer. int24 is one `np.take` that moves the three bytes of each sample into
  the top of an int32 (byte order by host) and one arithmetic shift that
  sign-extends; a run reads each frame's samples past the headers between them.
"""

from __future__ import annotations

import sys

import numpy as np

from .. import contracts as C
from ..buffers.pool import Loaned
from ..protocol.frames import LOAN_FRAME_OFFSET
from ..protocol.layouts import SAMPLES_HEAD_SIZE

_LE16 = np.dtype("<i2")
_LE32 = np.dtype("<i4")
_I32 = np.dtype(np.int32)
_U8 = np.dtype(np.uint8)
# sample data's offset in a pooled buffer: frame offset + frame header + SAMPLES header
DATA_OFFSET = LOAN_FRAME_OFFSET + C.HEADER_SIZE + SAMPLES_HEAD_SIZE
MAX_SAMPLE_VALUES = (C.MAX_PAYLOAD_BY_TYPE[C.MSG_SAMPLES] - SAMPLES_HEAD_SIZE) // min(C.BYTES_PER_SAMPLE.values())
_EIGHT = np.array(8, dtype=np.int32)


def _int24_index(n: int) -> np.ndarray:
    """Gather index that turns n big-endian 3-byte samples into n int32 values << 8."""
    i = np.arange(n, dtype=np.intp) * 3
    # the int32's bytes from least to most significant: (any), low, middle, high byte
    order = (i + 2, i + 2, i + 1, i) if sys.byteorder == "little" else (i, i + 1, i + 2, i + 2)
    return np.stack(order, axis=1).reshape(-1)


_INT24_INDEX: dict[int, np.ndarray] = {}


def int24_index(n: int) -> np.ndarray:
    idx = _INT24_INDEX.get(n)
    if idx is None:
        if len(_INT24_INDEX) > 64:
            _INT24_INDEX.clear()
        idx = _INT24_INDEX[n] = _int24_index(n)
    return idx


class SampleViews:
    """numpy views of one buffer for one sample layout (cached on the loan)."""

    __slots__ = (
        "fmt",
        "n_channels",
        "n_samples",
        "counts",
        "counts_ro",
        "frames_ro",
        "channels",
        "channels_ro",
        "wire",
        "flat",
        "flat_u8",
        "store",
        "index",
        "frames",
        "stride",
        "dest",
    )

    def __init__(
        self,
        data: bytearray | bytes | memoryview,
        offset: int,
        fmt: int,
        n_channels: int,
        n_samples: int,
        store: np.ndarray | None,
        frames: int = 1,
        stride: int = 0,
    ) -> None:
        n = n_channels * n_samples  # values per frame
        total = n * frames
        shape = (n_samples * frames, n_channels)
        self.fmt = fmt
        self.n_channels = n_channels
        self.n_samples = n_samples  # per frame
        self.frames = frames
        self.stride = stride
        self.index = None
        if fmt == C.FMT_INT32 and frames == 1:
            flat = np.frombuffer(data, dtype=_LE32, count=n, offset=offset)
            self.wire = flat
        else:
            if store is None or len(store) < total:
                store = np.empty(max(total, 1), dtype=_I32)
            flat = store[:total]
            if fmt == C.FMT_INT16 or fmt == C.FMT_INT32:
                dtype = _LE16 if fmt == C.FMT_INT16 else _LE32
                if frames == 1:
                    self.wire = np.frombuffer(data, dtype=dtype, count=n, offset=offset)
                else:  # each frame's samples, one row per frame, skipping the headers between them
                    self.wire = np.ndarray((frames, n), dtype, data, offset, (stride, dtype.itemsize))
            elif fmt == C.FMT_INT24:
                self.wire = np.frombuffer(data, dtype=_U8, count=(frames - 1) * stride + 3 * n, offset=offset)
                self.index = int24_index(n) if frames == 1 else _run_index(n, frames, stride)
            else:
                raise ValueError(f"unknown sample format {fmt}")
        self.store = store
        self.flat = flat
        self.dest = flat if frames == 1 else flat.reshape(frames, n)
        self.flat_u8 = flat.view(_U8)
        self.counts = flat.reshape(shape)
        ro = self.counts.view()
        ro.flags.writeable = False
        self.counts_ro = ro
        self.frames_ro = ro.reshape(frames, n_samples, n_channels)  # frame by frame, read-only
        self.channels = self.counts.T
        self.channels_ro = ro.T

    def decode(self, fmt: int) -> None:
        # positional arguments and a ready-made shift operand: numpy then allocates nothing
        if fmt == C.FMT_INT24:
            self.wire.take(self.index, None, self.flat_u8, "clip")  # type: ignore[call-overload]
            np.right_shift(self.flat, _EIGHT, self.flat)
        else:
            np.copyto(self.dest, self.wire)


_RUN_INDEX: dict[tuple[int, int, int], np.ndarray] = {}


def _run_index(n: int, frames: int, stride: int) -> np.ndarray:
    """int24_index for a run: each frame's samples, frames stride bytes apart."""
    key = (n, frames, stride)
    idx = _RUN_INDEX.get(key)
    if idx is None:
        if len(_RUN_INDEX) > 256:
            _RUN_INDEX.clear()
        idx = _RUN_INDEX[key] = (np.arange(frames, dtype=np.intp)[:, None] * stride + int24_index(n)[None, :]).reshape(
            -1
        )
    return idx


def views_for(loan: Loaned, fmt: int, nch: int, ns: int, frames: int = 1, stride: int = 0) -> SampleViews:
    """The views of loan's buffer for this layout, made once and kept on the loan."""
    if frames > 1:
        return _run_views_for(loan, fmt, nch, ns, frames, stride)
    v: SampleViews | None = loan.cache  # type: ignore[assignment]
    if v is None or v.n_samples != ns or v.n_channels != nch or v.fmt != fmt or v.frames != 1:
        store = v.store if v is not None else _store(loan, fmt, frames)
        v = loan.cache = SampleViews(loan.buffer, DATA_OFFSET, fmt, nch, ns, store)
    return v


_RUN_LAYOUTS_KEPT = 8  # run lengths vary from read to read: a few layouts per buffer are kept


def _run_views_for(loan: Loaned, fmt: int, nch: int, ns: int, frames: int, stride: int) -> SampleViews:
    cache = loan.run_cache
    if cache is None:
        cache = loan.run_cache = {}
    key = (fmt, nch, ns, frames, stride)
    v: SampleViews | None = cache.get(key)  # type: ignore[assignment]
    if v is None:
        store = next(iter(cache.values())).store if cache else _store(loan, fmt, frames)  # type: ignore[attr-defined]
        if len(cache) >= _RUN_LAYOUTS_KEPT:
            cache.clear()
        v = cache[key] = SampleViews(loan.buffer, DATA_OFFSET, fmt, nch, ns, store, frames, stride)
    return v


def _store(loan: Loaned, fmt: int, frames: int) -> np.ndarray | None:
    """The int32 array a pooled buffer's samples decode into: one per buffer, for good, as many
    values as the buffer holds samples (None: a single int32 frame, viewed in place, needs none)."""
    if (fmt == C.FMT_INT32 and frames == 1) or not loan.pooled:
        return None
    return np.empty(max(MAX_SAMPLE_VALUES, len(loan.buffer) // 2), dtype=_I32)


def decode_counts(data: bytes | memoryview, fmt: int, n_channels: int, n_samples: int) -> np.ndarray:
    """Interleaved samples to a new instants x channels int32 array (a view for int32 input)."""
    v = SampleViews(data, 0, fmt, n_channels, n_samples, None)
    v.decode(fmt)
    return v.counts
