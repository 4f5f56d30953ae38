"""SAMPLES payloads as numpy arrays of int32 counts, without copying where possible."""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from . import contracts as C

_HEAD = struct.Struct(C.SAMPLES_FORMAT)
_LE16 = np.dtype("<i2")
_LE32 = np.dtype("<i4")


@dataclass(frozen=True)
class SamplesBlock:
    """One SAMPLES block. `counts` is instants x channels, int32."""

    first_index: int
    t0_us: int
    period_ns: int
    n_channels: int
    fmt: int
    n_samples: int
    counts: np.ndarray

    @property
    def channels(self) -> np.ndarray:
        """channels x samples view of the same data."""
        return self.counts.T

    @property
    def indices(self) -> np.ndarray:
        """Absolute sample index of every instant (u32, wrapping)."""
        return (self.first_index + np.arange(self.n_samples, dtype=np.uint64)) % (1 << 32)

    @property
    def device_times_us(self) -> np.ndarray:
        """Device clock of every instant in microseconds (not wrapped)."""
        return self.t0_us + np.arange(self.n_samples, dtype=np.float64) * (self.period_ns / 1000.0)


def decode_counts(data: bytes | memoryview, fmt: int, n_channels: int, n_samples: int) -> np.ndarray:
    """Interleaved samples to an instants x channels int32 array.

    int16 and int32 are views of `data` (int16 is widened, so copied once);
    int24 big-endian is decoded vectorised: three byte planes, shifted, sign-extended.
    """
    shape = (n_samples, n_channels)
    if fmt == C.FMT_INT32:
        return np.frombuffer(data, dtype=_LE32, count=n_samples * n_channels).reshape(shape)
    if fmt == C.FMT_INT16:
        return np.frombuffer(data, dtype=_LE16, count=n_samples * n_channels).reshape(shape).astype(np.int32)
    if fmt == C.FMT_INT24:
        b = np.frombuffer(data, dtype=np.uint8, count=3 * n_samples * n_channels).reshape(-1, 3)
        v = (b[:, 0].astype(np.int32) << 24) | (b[:, 1].astype(np.int32) << 16) | (b[:, 2].astype(np.int32) << 8)
        return (v >> 8).reshape(shape)
    raise ValueError(f"unknown sample format {fmt}")


def decode_block(payload: bytes | memoryview) -> SamplesBlock:
    first, t0, period, nch, fmt, ns = _HEAD.unpack_from(payload)
    data = memoryview(payload)[_HEAD.size:]
    return SamplesBlock(first, t0, period, nch, fmt, ns, decode_counts(data, fmt, nch, ns))


def ramp_counts(first_index: int, n_samples: int, n_channels: int, fmt: int) -> np.ndarray:
    """The ramp test pattern (PROTOCOL.md) for these instants, instants x channels."""
    bits = 8 * C.BYTES_PER_SAMPLE[fmt]
    n = (first_index + np.arange(n_samples, dtype=np.int64)) % (1 << 32)
    c = np.arange(n_channels, dtype=np.int64)
    v = (n[:, None] * C.RAMP_MUL + c[None, :] * C.RAMP_CHAN_MUL) % (1 << bits) - (1 << (bits - 1))
    return v.astype(np.int32)
