"""What observers get: read-only views of a block, valid only for the observer's call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .blocks import SamplesBlock

_U32 = 1 << 32


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
    n_frames = property(lambda self: self._b.n_frames)
    frame_samples = property(lambda self: self._b.frame_samples)

    @property
    def frame_counts(self) -> np.ndarray:
        """counts frame by frame: frames x frame_samples x channels, read-only."""
        b = self._b
        v = b._views
        if v is not None and b.unit == "counts":
            b.counts  # noqa: B018 (decodes on first use)
            return v.frames_ro
        return self.counts.reshape(b.n_frames, b.frame_samples, b.n_channels)

    def select(self, first: int, step: int) -> BlockView | FrameSelection:
        """Frames first, first + step, ... of this block (a decimating observer's share)."""
        if first == 0 and step == 1:
            return self
        return FrameSelection(self, first, step)

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


class FrameSelection:
    """Some frames of a block, read-only: frames first, first + step, ... (a tap's every-Nth share of a run).

    Its instants are those frames' instants in order, so `indices` has a jump between frames
    when step > 1; `first_index`, `t0_us`, `seq` and the times are its first frame's."""

    __slots__ = ("_v", "_first", "_step", "n_frames", "_counts")

    def __init__(self, view: BlockView, first: int, step: int) -> None:
        self._v = view
        self._first = first
        self._step = step
        self.n_frames = len(range(first, view.n_frames, step))
        self._counts: np.ndarray | None = None

    @property
    def _b(self) -> SamplesBlock:
        return self._v._b

    n_channels = property(lambda self: self._b.n_channels)
    fmt = property(lambda self: self._b.fmt)
    period_ns = property(lambda self: self._b.period_ns)
    unit = property(lambda self: self._b.unit)
    frame_samples = property(lambda self: self._b.frame_samples)

    @property
    def n_samples(self) -> int:
        return self.n_frames * self._b.frame_samples

    @property
    def first_index(self) -> int:
        b = self._b
        return (b.first_index + self._first * b.frame_samples) % _U32

    @property
    def seq(self) -> int:
        return (self._b.seq + self._first) % _U32

    @property
    def t0_us(self) -> int:
        return int(self._b.frame_t0_us[self._first])

    @property
    def device_t0_us(self) -> float:
        b = self._b
        return b.device_t0_us + self._first * b.frame_samples * b.period_ns / 1000.0

    @property
    def host_t0(self) -> float:
        b = self._b
        return b.host_t0 + self._first * b.frame_samples * b.period_ns * 1e-9

    @property
    def frame_counts(self) -> np.ndarray:
        return self._v.frame_counts[self._first :: self._step]

    @property
    def counts(self) -> np.ndarray:
        c = self._counts
        if c is None:
            frames = self.frame_counts  # read-only
            # one frame: a read-only view of it; frames spread out: a copy, the observer's own
            if len(frames) == 1:
                c = frames[0]
            else:
                c = np.empty((frames.shape[0] * frames.shape[1], frames.shape[2]), frames.dtype)
                np.copyto(c.reshape(frames.shape), frames)
            self._counts = c
        return c

    @property
    def channels(self) -> np.ndarray:
        return self.counts.T

    def _rows(self) -> np.ndarray:
        b = self._b
        ns = b.frame_samples
        starts = np.arange(self._first, b.n_frames, self._step, dtype=np.int64) * ns
        return (starts[:, None] + np.arange(ns, dtype=np.int64)[None, :]).reshape(-1)

    @property
    def indices(self) -> np.ndarray:
        return (self._b.first_index + self._rows().astype(np.uint64)) % _U32

    @property
    def device_times_us(self) -> np.ndarray:
        times: np.ndarray = self._b.device_times_us[self._rows()]
        return times

    def host_times(self) -> np.ndarray:
        times: np.ndarray = self._b.host_times()[self._rows()]
        return times

    def copy(self) -> SamplesBlock:
        return type(self._b).detached(self, np.array(self.counts, copy=True))

    def __repr__(self) -> str:
        return f"<FrameSelection frames {self._first}::{self._step} of {self._b!r}>"
