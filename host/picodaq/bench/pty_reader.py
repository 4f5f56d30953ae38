"""The receiver-latency figure's bare reader: the floor any reader of the pty pays, no picodaq.

    python -m picodaq.bench.pty_reader PATH FRAME_BYTES STAMP_OFFSET FRAMES SKIP

Runs in its own process: opens the pty's device side PATH, says `ready`, then for FRAMES frames of
FRAME_BYTES bytes each (all the same size, as pty_writer.py writes them) sleeps in select(),
reads what the tty has and takes the time once per read; each whole frame's latency is that
time minus the write time it carries at STAMP_OFFSET (pty_writer.py's stamp, low 32 bits then
high). Prints the latencies of the frames after the first SKIP, in ns, on one line. Standard
library only on the reading path: what a reader in a few lines of Python costs, so the figure
can say what picodaq adds to it (and what the scheduler and the tty cost anyone).
"""

from __future__ import annotations

import os
import select
import sys
import time
import tty


def main(argv: list[str]) -> int:
    path, size, off, frames, skip = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    print("ready", flush=True)
    buf = bytearray()
    out: list[int] = []
    n = 0
    while n < frames:
        if not select.select([fd], [], [], 5.0)[0]:
            break  # the writer stopped early: what came is the answer
        try:
            buf += os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        now = time.monotonic_ns()
        whole = len(buf) // size
        for k in range(whole):
            if n >= skip:
                at = k * size + off
                out.append(now - int.from_bytes(buf[at : at + 8], "little", signed=True))
            n += 1
        del buf[: whole * size]
    os.close(fd)
    print(" ".join(map(str, out)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
