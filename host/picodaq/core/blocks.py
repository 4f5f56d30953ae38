"""SAMPLES blocks as zero-copy numpy views of int32 counts.

A block from the receiver lives in a pooled buffer (a `Loaned` holding the
frame's bytes) and is itself a pooled object: `release()` returns both, and a
steady state creates neither. Its numpy views are made once per buffer and
sample layout and cached on the loan (sample_views.py), so binding a block
allocates no arrays.

`counts` is instants x channels (the wire order); `channels` is the same
memory as channels x samples. Whoever holds the block owns it and may change
its data in place (stages.py); observers get `block.view`, a `BlockView`
whose arrays are read-only (views.py). Views of a pooled block are valid until
it is released; `copy()` makes a detached block that owns its data.

A block is one SAMPLES frame, or (from a receiver that takes runs) a run of
frames that continue each other: `n_frames` frames of `frame_samples`
instants each, consecutive in sample index and seq, back to back in one
pooled buffer. Its data is the run's instants as one array; `frame_counts`
shows it frame by frame and `frame_t0_us` has each frame's device clock.

Timestamps: `indices` (u32 sample index of every instant), `device_times_us`
(the device clock, unwrapped across its 2**30 µs period) and, when the
receiver runs a HostClock, `host_t0` / `host_times()`: host monotonic seconds
from a fit of device ticks to host time, free of the host's read jitter.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING

import numpy as np

from .. import contracts as C
from ..buffers.pool import Loaned, PoolError
from ..protocol.frames import LOAN_FRAME_OFFSET
from ..protocol.layouts import SAMPLES_T0_OFFSET, SAMPLES_TIMING, SamplesKey
from .sample_views import DATA_OFFSET, MAX_SAMPLE_VALUES, SampleViews, decode_counts, views_for
from .views import BlockView, FrameSelection

if TYPE_CHECKING:
    from ..buffers.objpool import Pool
    from .clock import HostClock

__all__ = [
    "DATA_OFFSET",
    "MAX_SAMPLE_VALUES",
    "T0_OFFSET",
    "BlockView",
    "FrameSelection",
    "SamplesBlock",
    "decode_block",
    "decode_counts",
    "ramp_counts",
]

_HEAD = struct.Struct(C.SAMPLES_FORMAT)
_HEAD_SIZE = _HEAD.size
# t0_us and period_ns, read from a pooled buffer only when asked for
T0_OFFSET = LOAN_FRAME_OFFSET + C.HEADER_SIZE + SAMPLES_T0_OFFSET
_T0_PERIOD = SAMPLES_TIMING
_U32 = 1 << 32
_NAN = math.nan


class SamplesBlock:
    """One SAMPLES block. `counts` is instants x channels, int32.

    `SamplesBlock(first_index, t0_us, period_ns, n_channels, fmt, n_samples, counts)`
    makes a detached block around an existing counts array.
    """

    __slots__ = (
        "first_index",
        "n_channels",
        "fmt",
        "n_samples",
        "seq",
        "unit",
        "_t0",
        "_period",
        "_device_t0",
        "_host_t0",
        "_clock",
        "_ref_raw",
        "_ref_dev",
        "_loan",
        "_views",
        "_decoded",
        "_counts",
        "_pool",
        "_taken",
        "_view",
        "n_frames",
        "_stride",
    )

    def __init__(
        self,
        first_index: int = 0,
        t0_us: int = 0,
        period_ns: int = 0,
        n_channels: int = 0,
        fmt: int = C.FMT_INT32,
        n_samples: int = 0,
        counts: np.ndarray | None = None,
    ) -> None:
        self.first_index = first_index
        self._t0: int | None = t0_us  # None: read from the buffer when asked
        self._period: int | None = period_ns
        self.n_channels = n_channels
        self.fmt = fmt
        self.n_samples = n_samples
        self.seq = 0
        self.unit = "counts"
        self._device_t0: int | None = t0_us  # detached: the stamps as given
        self._host_t0 = _NAN
        self._clock: HostClock | None = None  # bound: unwrapped lazily against the clock's reference
        self._ref_raw = 0
        self._ref_dev = 0
        self._loan: Loaned | None = None
        self._views: SampleViews | None = None
        self._decoded = True
        self._counts = counts
        self._pool: Pool[SamplesBlock] | None = None
        self._taken = False
        self._view: BlockView | None = None
        self.n_frames = 1
        self._stride = 0  # bytes from one frame to the next in the buffer (runs)

    # -- binding (the receiver) and ownership ------------------------------------

    @classmethod
    def pooled(cls, pool: Pool[SamplesBlock]) -> SamplesBlock:
        """An empty block that belongs to pool (its factory)."""
        b = cls()
        b._pool = pool
        b._view = BlockView(b)
        b._t0 = b._period = b._device_t0 = None  # bind() leaves them unset: read when asked
        return b

    def bind(self, loan: Loaned, head: SamplesKey, seq: int, clock: HostClock | None = None) -> None:
        """Take ownership of loan, a buffer holding a checked SAMPLES frame.

        head is (first_sample_index, n_channels, fmt, n_samples), as the decoder
        read it; t0_us and period_ns are read from the buffer when asked. With a
        clock, the block's device and host times are worked out from it (stamp)."""
        first, nch, fmt, ns = head
        self.first_index = first
        self.n_channels = nch
        self.fmt = fmt
        self.n_samples = ns
        self.seq = seq
        self.unit = "counts"
        self._host_t0 = _NAN
        self._loan = loan
        v = loan.cache
        if v is None or v.n_samples != ns or v.n_channels != nch or v.fmt != fmt or v.frames != 1:  # type: ignore[attr-defined]
            v = views_for(loan, fmt, nch, ns)
        self._views = v  # type: ignore[assignment]
        self._counts = v.counts  # type: ignore[attr-defined]
        self._decoded = fmt == C.FMT_INT32
        self._taken = True
        self.n_frames = 1
        self._stride = 0
        if clock is not None:
            self._clock = clock
            self._ref_raw = clock.ref_raw  # type: ignore[assignment]
            self._ref_dev = clock.ref_dev

    def bind_run(
        self, loan: Loaned, head: SamplesKey, frames: int, stride: int, seq: int, clock: HostClock | None = None
    ) -> None:
        """Take ownership of loan, holding a checked run of frames (decoder.drain's run_handler):
        head and seq are the first frame's; the block holds all frames x n_samples instants."""
        first, nch, fmt, ns = head
        self.first_index = first
        self.n_channels = nch
        self.fmt = fmt
        self.n_samples = ns * frames
        self.n_frames = frames
        self._stride = stride
        self.seq = seq
        self.unit = "counts"
        self._host_t0 = _NAN
        self._loan = loan
        v = views_for(loan, fmt, nch, ns, frames, stride)
        self._views = v
        self._counts = v.counts
        self._decoded = False
        self._taken = True
        if clock is not None:
            self._clock = clock
            self._ref_raw = clock.ref_raw  # type: ignore[assignment]
            self._ref_dev = clock.ref_dev

    @property
    def frame_samples(self) -> int:
        """Instants per frame (a run's frames all have as many)."""
        return self.n_samples // self.n_frames

    @property
    def frame_counts(self) -> np.ndarray:
        """counts frame by frame: frames x frame_samples x channels (the same memory)."""
        return self.counts.reshape(self.n_frames, self.frame_samples, self.n_channels)

    @property
    def frame_t0_us(self) -> np.ndarray:
        """Each frame's device clock (t0_us as sent, wrapping) as u32; one value for a single frame."""
        if self.n_frames == 1:
            return np.array([self.t0_us], dtype=np.uint32)
        if self._loan is None:  # detached: as the nominal period places them
            step = self.frame_samples * self.period_ns // 1000
            return ((self.t0_us + step * np.arange(self.n_frames, dtype=np.int64)) % C.TICKS_PERIOD).astype(np.uint32)
        return np.ndarray((self.n_frames,), np.dtype("<u4"), self._loan.buffer, T0_OFFSET, (self._stride,)).copy()

    @property
    def t0_us(self) -> int:
        """Device clock (ticks_us, wrapping at TICKS_PERIOD) at the first instant."""
        t0 = self._t0
        if t0 is None:
            t0 = self._t0 = _T0_PERIOD.unpack_from(self._buffer(), T0_OFFSET)[0]
        return t0

    @property
    def period_ns(self) -> int:
        """Nominal sample period in nanoseconds."""
        p = self._period
        if p is None:
            p = self._period = _T0_PERIOD.unpack_from(self._buffer(), T0_OFFSET)[1]
        return p

    def _buffer(self) -> bytearray:
        loan = self._loan
        if loan is None:
            raise PoolError("this block was released: its data belongs to another block now")
        return loan.buffer

    @property
    def raw(self) -> memoryview | None:
        """The SAMPLES frame's wire bytes (header, payload, CRC) in its pooled buffer; None if detached."""
        loan = self._loan
        if loan is None:
            return None
        if self.n_frames > 1:
            return loan.view[LOAN_FRAME_OFFSET : LOAN_FRAME_OFFSET + self.n_frames * self._stride]
        end = DATA_OFFSET + self.n_channels * self.n_samples * C.BYTES_PER_SAMPLE[self.fmt] + C.CRC_SIZE
        return loan.view[LOAN_FRAME_OFFSET:end]

    def stamp(self, clock: HostClock) -> None:
        """Time this block with clock: device_t0_us and host_t0 are then worked out when asked."""
        self._clock = clock
        self._ref_raw = clock.ref_raw  # type: ignore[assignment]
        self._ref_dev = clock.ref_dev

    @property
    def device_t0_us(self) -> int:
        """Device clock at the first instant, in microseconds, unwrapped across the ticks period."""
        clock = self._clock
        if clock is None:
            return self._device_t0 if self._device_t0 is not None else self.t0_us
        return clock.unwrap_near(self.t0_us, self._ref_raw, self._ref_dev)

    @property
    def host_t0(self) -> float:
        """Host monotonic seconds at the first instant, from the clock fit (NaN without a clock)."""
        clock = self._clock
        if clock is None:
            return self._host_t0
        return clock.host_time(self.device_t0_us)

    def release(self) -> None:
        """Give the buffer and the block back to their pools (a detached block: nothing to do)."""
        if self._pool is None:
            return
        if not self._taken:
            raise PoolError("this block was already released to its pool")
        self._taken = False
        loan = self._loan
        # drop every per-frame reference: a block waiting in its pool keeps nothing alive
        self._loan = self._views = self._counts = self._clock = None
        self._t0 = self._period = self._device_t0 = None
        self.first_index = self.seq = self._ref_raw = self._ref_dev = 0
        self.n_frames = 1
        if loan is not None:
            loan.release()
        self._pool.give(self)

    def __enter__(self) -> SamplesBlock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # collected while still taken: its loan reports itself leaked; the pool counts the block lost
        if self._taken and self._pool is not None:
            try:
                self._pool.lost()
            except Exception:  # interpreter shutdown
                pass

    @property
    def released(self) -> bool:
        return self._pool is not None and not self._taken

    # -- data ----------------------------------------------------------------------

    @property
    def counts(self) -> np.ndarray:
        """instants x channels int32 counts (the owner's view: writable for pooled blocks)."""
        if not self._decoded:
            self._decode()
        if self.unit != "counts":
            raise ValueError(f"this block's data was converted in place to {self.unit}: use .values")
        c = self._counts
        if c is None:
            raise PoolError("this block was released: its data belongs to another block now")
        return c

    @property
    def channels(self) -> np.ndarray:
        """channels x samples view of the same data."""
        if self._views is not None:
            self.counts  # noqa: B018 (decodes, checks the unit)
            return self._views.channels
        return self.counts.T

    @property
    def values(self) -> np.ndarray:
        """The data after an in-place stage: float32 in `unit`, instants x channels (same memory as counts)."""
        if self.unit == "counts":
            return self.counts
        return self._counts.view(np.float32)  # type: ignore[union-attr]

    def _decode(self) -> None:
        v = self._views
        if v is not None:
            v.decode(self.fmt)
        self._decoded = True

    @property
    def view(self) -> BlockView:
        """The read-only face of this block, for observers (one per block object, reused)."""
        v = self._view
        if v is None:
            v = self._view = BlockView(self)
        return v

    @property
    def indices(self) -> np.ndarray:
        """Absolute sample index of every instant (u32, wrapping)."""
        return (self.first_index + np.arange(self.n_samples, dtype=np.uint64)) % _U32

    @property
    def device_times_us(self) -> np.ndarray:
        """Device clock of every instant in microseconds (unwrapped)."""
        return self.device_t0_us + np.arange(self.n_samples, dtype=np.float64) * (self.period_ns / 1000.0)

    def host_times(self) -> np.ndarray:
        """Host monotonic seconds of every instant, from the receiver's clock fit (NaN without one)."""
        return self.host_t0 + np.arange(self.n_samples, dtype=np.float64) * (self.period_ns * 1e-9)

    def copy(self) -> SamplesBlock:
        """A detached block that owns a copy of the data."""
        return self.detached(self, np.array(self.values, copy=True))

    @classmethod
    def detached(cls, like: SamplesBlock | BlockView | FrameSelection, counts: np.ndarray) -> SamplesBlock:
        """A detached block of counts (owned), with like's indices, timing, seq, frames and unit."""
        b = cls(like.first_index, like.t0_us, like.period_ns, like.n_channels, like.fmt, like.n_samples, counts)
        b.seq = like.seq
        b.n_frames = like.n_frames
        b._device_t0 = int(like.device_t0_us)
        b._host_t0 = like.host_t0
        b.unit = like.unit
        return b

    def head(self, n: int) -> SamplesBlock:
        """A detached block of this block's first n instants, sharing its memory: valid while this
        block is (a recording cut at its last instant hands it to the outputs, which copy it)."""
        b = SamplesBlock(self.first_index, self.t0_us, self.period_ns, self.n_channels, self.fmt, n, self.counts[:n])
        b.seq = self.seq
        b._device_t0 = self.device_t0_us
        b._host_t0 = self.host_t0
        b.unit = self.unit
        return b

    def __repr__(self) -> str:
        fmt = C.FORMAT_NAMES.get(self.fmt, str(self.fmt))
        return (
            f"<SamplesBlock first_index={self.first_index} {self.n_samples}x{self.n_channels} {fmt}"
            f"{' released' if self.released else ''}>"
        )


def decode_block(payload: bytes | memoryview) -> SamplesBlock:
    """A detached block from one SAMPLES payload."""
    first, t0, period, nch, fmt, ns = _HEAD.unpack_from(payload)
    data = memoryview(payload)[_HEAD_SIZE:]
    return SamplesBlock(first, t0, period, nch, fmt, ns, decode_counts(data, fmt, nch, ns))


def ramp_counts(first_index: int, n_samples: int, n_channels: int, fmt: int) -> np.ndarray:
    """The ramp test pattern (PROTOCOL.md) for these instants, instants x channels."""
    bits = 8 * C.BYTES_PER_SAMPLE[fmt]
    n = (first_index + np.arange(n_samples, dtype=np.int64)) % (1 << 32)
    c = np.arange(n_channels, dtype=np.int64)
    v = (n[:, None] * C.RAMP_MUL + c[None, :] * C.RAMP_CHAN_MUL) % (1 << bits) - (1 << (bits - 1))
    return v.astype(np.int32)
