"""What a stream is asked for: rate, channels, source, sample format, frame size."""

from __future__ import annotations

from dataclasses import dataclass

from .. import contracts as C


@dataclass
class StreamConfig:
    rate: int = 1000
    channel_mask: int = 1
    source: int = C.SRC_RAMP
    fmt: int = C.FMT_INT16
    samples_per_frame: int = 0  # 0: chosen so a frame carries about 20 ms

    @property
    def n_channels(self) -> int:
        return bin(self.channel_mask).count("1")

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(c for c in range(32) if self.channel_mask >> c & 1)

    def max_frame_samples(self) -> int:
        """The most instants one SAMPLES frame holds with these channels and format."""
        return (C.MAX_PAYLOAD_BY_TYPE[C.MSG_SAMPLES] - 16) // (self.n_channels * C.BYTES_PER_SAMPLE[self.fmt])

    def frame_samples(self) -> int:
        if self.samples_per_frame:
            return self.samples_per_frame
        return max(1, min(self.max_frame_samples(), max(1, self.rate // 50)))
