"""The receiver-latency figure's test writer: SAMPLES frames into a pty's host side, each stamped.

    python -m picodaq.bench.pty_writer FD FRAMES_PER_S FRAMES

Runs in its own process (so it shares no interpreter lock with the receiver it measures) and
writes FRAMES frames of 2 channels x 1 int32 instant to the pty master FD at FRAMES_PER_S (frame
k is instant k):
the instant's two samples are time.monotonic_ns() read just before the frame's one write(), low
32 bits then high, so the receiver's callback can tell how long the frame took to reach it.
CLOCK_MONOTONIC is the same clock in every process of the machine.
"""

from __future__ import annotations

import os
import struct
import sys
import time

from .. import contracts as C
from ..protocol.frames import encode_frame, samples_payload


def frame(seq: int, stamp_ns: int) -> bytes:
    data = struct.pack("<Ii", stamp_ns & 0xFFFFFFFF, stamp_ns >> 32)
    return encode_frame(C.MSG_SAMPLES, seq, samples_payload(seq, 0, 1_000_000, 2, C.FMT_INT32, 1, data))


def stamp_of(lo: int, hi: int) -> int:
    """The write time a frame carries, from its two int32 samples."""
    return (hi << 32) | (lo & 0xFFFFFFFF)


def main(argv: list[str]) -> int:
    fd, per_s, frames = int(argv[0]), float(argv[1]), int(argv[2])
    period = 1.0 / per_s
    start = time.monotonic()
    for seq in range(frames):
        due = start + seq * period
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        os.write(fd, frame(seq, time.monotonic_ns()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
