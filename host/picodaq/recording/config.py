"""What a stream is asked for: rate, channels, source, sample format, frame size."""

from __future__ import annotations

from dataclasses import dataclass

from .. import contracts as C

# The firmware's sample ring (firmware/picodaq_fw/ring.py): a stream uses as many whole frames of
# the ring's bytes as fit, at most the board's RING_SLOTS frames (RING_MAX_FRAMES on a Pico, more
# on the unix port: RING_FRAMES_BY_PLATFORM), and is refused below RING_FLOOR_S of itself.
RING_MAX_FRAMES = 128
RING_FRAMES_BY_PLATFORM = {"linux": 1024}
RING_FLOOR_S = 0.1


def ring_max_frames(platform: str) -> int:
    """The most frames a board's ring is cut into, by the platform its HELLO names."""
    return RING_FRAMES_BY_PLATFORM.get(platform, RING_MAX_FRAMES)


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

    def ring_frames(self, ring_bytes: int, most: int = RING_MAX_FRAMES) -> int:
        """How many frames of this stream a ring of ring_bytes cut into at most `most` holds (the firmware's rule)."""
        frame = self.frame_samples() * self.n_channels * C.BYTES_PER_SAMPLE[self.fmt]
        return min(most, ring_bytes // frame)

    def ring_seconds(self, ring_bytes: int, most: int = RING_MAX_FRAMES) -> float:
        """How much of this stream a ring of ring_bytes holds; below RING_FLOOR_S the board refuses it."""
        return self.ring_frames(ring_bytes, most) * self.frame_samples() / self.rate

    def frame_bytes(self) -> int:
        """One SAMPLES frame of this stream on the wire: header, samples' header, samples, CRC."""
        return C.OVERHEAD + 16 + self.frame_samples() * self.n_channels * C.BYTES_PER_SAMPLE[self.fmt]

    def bytes_per_second(self) -> float:
        """What the stream puts on the link: its SAMPLES frames, headers and CRCs included."""
        return self.rate / self.frame_samples() * self.frame_bytes()

    def batch_seconds(self) -> float:
        """How long a recording's link reader may let bytes gather before it wakes (Link.batch_seconds):
        BATCH_MOST, or less when the stream would fill BATCH_ROOM bytes of the port's buffer sooner."""
        return min(BATCH_MOST, BATCH_ROOM / self.bytes_per_second())


# A recording writes files (and the live view): 50 ms late is as good as at once, and a reader
# woken a few times a second costs far less than one woken for every frame. The port's buffer holds
# what arrives meanwhile: a pty 20 KiB (measured; the emulated board's relay 4 KiB more, then its ring), a USB
# CDC port 64 KiB (then the board's USB endpoint waits, and its ring).
BATCH_MOST = 0.05
BATCH_ROOM = 32768
# ... and its decoding waits for the batches of this long (Link.batch_latest): a recording's view and
# progress are redrawn every 0.25 s, its files flushed every second; each wake of the decoder costs
# more than the bytes it decodes (at the line rate, side by side: 1.4 % of a core at 0.05 s, 1.1 % at 0.2 s)
BATCH_LATEST = 0.2
