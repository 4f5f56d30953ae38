"""A device stand-in for test_link.py: writes SAMPLES frames (the ramp, int24, 8 channels)
to a pty's master as fast as the reader drains it, for a given time.

    python pty_writer.py FD SECONDS

Writes whole chunks only, then prints how many frames it wrote and waits for
stdin to close before exiting (so the master stays open until the reader has
read everything: closing it would hang up the pty and flush unread bytes).
"""
from __future__ import annotations

import os
import sys
import time

from picodaq import contracts as C
from picodaq.corebench import FrameStream


def main() -> int:
    fd, seconds = int(sys.argv[1]), float(sys.argv[2])
    stream = FrameStream(n_channels=8, fmt=C.FMT_INT24, n_samples=25, frames_per_chunk=200, pattern="ramp")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = stream.next_chunk()
        while len(view):
            n = os.write(fd, view)
            view = view[n:]
    print(stream.frames, stream.frame_size, flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
