"""SAMPLES blocks as zero-copy numpy views of int32 counts.

A block from the receiver lives in a pooled buffer (a `Loaned` holding the
frame's bytes) and is itself a pooled object: `release()` returns both, and a
steady state creates neither. Its numpy views are made once per buffer and
sample layout and cached on the loan, so binding a block allocates no arrays:

- int32 samples: `counts` is a view of the frame's bytes (aligned: the frame
  sits in its buffer so the samples start at offset 32);
- int16 and int24 big-endian (ADS1299 order) are decoded, vectorised and on
  first use of `counts`, into an int32 array kept with the buffer. int24 is
  one `np.take` that moves the three bytes of each sample into the top of an
  int32 (byte order by host) and one arithmetic shift that sign-extends.

`counts` is instants x channels (the wire order); `channels` is the same
memory as channels x samples. Whoever holds the block owns it and may change
its data in place (stages.py); observers get `block.view`, a `BlockView`
whose arrays are read-only. Views of a pooled block are valid until it is
released; `copy()` makes a detached block that owns its data.

Timestamps: `indices` (u32 sample index of every instant), `device_times_us`
(the device clock, unwrapped across its 2**30 µs period) and, when the
receiver runs a HostClock, `host_t0` / `host_times()`: host monotonic seconds
from a fit of device ticks to host time, free of the host's read jitter.
"""

from __future__ import annotations

import math
import struct
import sys
from typing import TYPE_CHECKING

import numpy as np

from .. import contracts as C
from ..buffers.pool import Loaned, PoolError
from ..protocol.frames import LOAN_FRAME_OFFSET
from ..protocol.layouts import SAMPLES_T0_OFFSET, SAMPLES_TIMING, SamplesKey

if TYPE_CHECKING:
    from ..buffers.objpool import Pool
    from .clock import HostClock

_HEAD = struct.Struct(C.SAMPLES_FORMAT)
_HEAD_SIZE = _HEAD.size
_LE16 = np.dtype("<i2")
_LE32 = np.dtype("<i4")
_I32 = np.dtype(np.int32)
_U8 = np.dtype(np.uint8)
# sample data's offset in a pooled buffer: frame offset + frame header + SAMPLES header
DATA_OFFSET = LOAN_FRAME_OFFSET + C.HEADER_SIZE + _HEAD_SIZE
# t0_us and period_ns, read from a pooled buffer only when asked for
T0_OFFSET = LOAN_FRAME_OFFSET + C.HEADER_SIZE + SAMPLES_T0_OFFSET
_T0_PERIOD = SAMPLES_TIMING
MAX_SAMPLE_VALUES = (C.MAX_PAYLOAD_BY_TYPE[C.MSG_SAMPLES] - _HEAD_SIZE) // min(C.BYTES_PER_SAMPLE.values())
_U32 = 1 << 32
_NAN = math.nan
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


class _Views:
    """numpy views of one buffer for one sample layout (cached on the loan)."""

    __slots__ = (
        "fmt",
        "n_channels",
        "n_samples",
        "counts",
        "counts_ro",
        "channels",
        "channels_ro",
        "wire",
        "flat",
        "flat_u8",
        "store",
        "index",
    )

    def __init__(
        self,
        data: bytearray | bytes | memoryview,
        offset: int,
        fmt: int,
        n_channels: int,
        n_samples: int,
        store: np.ndarray | None,
    ) -> None:
        n = n_channels * n_samples
        shape = (n_samples, n_channels)
        self.fmt = fmt
        self.n_channels = n_channels
        self.n_samples = n_samples
        self.index = None
        if fmt == C.FMT_INT32:
            flat = np.frombuffer(data, dtype=_LE32, count=n, offset=offset)
            self.wire = flat
        else:
            if store is None or len(store) < n:
                store = np.empty(max(n, 1), dtype=_I32)
            flat = store[:n]
            if fmt == C.FMT_INT16:
                self.wire = np.frombuffer(data, dtype=_LE16, count=n, offset=offset)
            elif fmt == C.FMT_INT24:
                self.wire = np.frombuffer(data, dtype=_U8, count=3 * n, offset=offset)
                self.index = int24_index(n)
            else:
                raise ValueError(f"unknown sample format {fmt}")
        self.store = store
        self.flat = flat
        self.flat_u8 = flat.view(_U8)
        self.counts = flat.reshape(shape)
        ro = self.counts.view()
        ro.flags.writeable = False
        self.counts_ro = ro
        self.channels = self.counts.T
        self.channels_ro = ro.T

    def decode(self, fmt: int) -> None:
        # positional arguments and a ready-made shift operand: numpy then allocates nothing
        if fmt == C.FMT_INT16:
            np.copyto(self.flat, self.wire)
        elif fmt == C.FMT_INT24:
            self.wire.take(self.index, None, self.flat_u8, "clip")  # type: ignore[call-overload]
            np.right_shift(self.flat, _EIGHT, self.flat)


def _views_for(loan: Loaned, fmt: int, nch: int, ns: int) -> _Views:
    v: _Views | None = loan.cache  # type: ignore[assignment]
    if v is None or v.n_samples != ns or v.n_channels != nch or v.fmt != fmt:
        store = v.store if v is not None else None
        if store is None and fmt != C.FMT_INT32 and loan.pooled:
            store = np.empty(MAX_SAMPLE_VALUES, dtype=_I32)  # one per pooled buffer, for good
        v = loan.cache = _Views(loan.buffer, DATA_OFFSET, fmt, nch, ns, store)
    return v


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
        self._views: _Views | None = None
        self._decoded = True
        self._counts = counts
        self._pool: Pool[SamplesBlock] | None = None
        self._taken = False
        self._view: BlockView | None = None

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
        if v is None or v.n_samples != ns or v.n_channels != nch or v.fmt != fmt:  # type: ignore[attr-defined]
            v = _views_for(loan, fmt, nch, ns)
        self._views = v  # type: ignore[assignment]
        self._counts = v.counts  # type: ignore[attr-defined]
        self._decoded = fmt == C.FMT_INT32
        self._taken = True
        if clock is not None:
            self._clock = clock
            self._ref_raw = clock.ref_raw  # type: ignore[assignment]
            self._ref_dev = clock.ref_dev

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
        b = SamplesBlock(
            self.first_index,
            self.t0_us,
            self.period_ns,
            self.n_channels,
            self.fmt,
            self.n_samples,
            np.array(self.values, copy=True),
        )
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


class BlockView:
    """A read-only view of a SamplesBlock, valid only while the observer's call lasts."""

    __slots__ = ("_b",)

    def __init__(self, block: SamplesBlock) -> None:
        self._b = block

    first_index = property(lambda self: self._b.first_index)
    t0_us = property(lambda self: self._b.t0_us)
    period_ns = property(lambda self: self._b.period_ns)
    n_channels = property(lambda self: self._b.n_channels)
    fmt = property(lambda self: self._b.fmt)
    n_samples = property(lambda self: self._b.n_samples)
    seq = property(lambda self: self._b.seq)
    device_t0_us = property(lambda self: self._b.device_t0_us)
    host_t0 = property(lambda self: self._b.host_t0)
    unit = property(lambda self: self._b.unit)

    @property
    def counts(self) -> np.ndarray:
        b = self._b
        c = b.counts
        v = b._views
        if v is not None:
            return v.counts_ro
        if c.flags.writeable:
            c = c.view()
            c.flags.writeable = False
        return c

    @property
    def channels(self) -> np.ndarray:
        return self.counts.T

    @property
    def indices(self) -> np.ndarray:
        return self._b.indices

    @property
    def device_times_us(self) -> np.ndarray:
        return self._b.device_times_us

    def host_times(self) -> np.ndarray:
        return self._b.host_times()

    def copy(self) -> SamplesBlock:
        return self._b.copy()

    def __repr__(self) -> str:
        return f"<BlockView of {self._b!r}>"


def decode_counts(data: bytes | memoryview, fmt: int, n_channels: int, n_samples: int) -> np.ndarray:
    """Interleaved samples to a new instants x channels int32 array (a view for int32 input)."""
    v = _Views(data, 0, fmt, n_channels, n_samples, None)
    v.decode(fmt)
    return v.counts


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
