"""Figure 3: the emulated board, unpaced, into the receiver through a pty, next to a raw drain of the same pty.

`receiver`: the board streams ramp frames (8 channels, int24, 25 instants:
616-byte payloads) as fast as the link drains, into a Link (reader thread,
ring, receiver, and its primary output calling the consumer back); the window's wire
MB/s and samples/s, with every loss counter (must be zero).

`raw`: the same board, the same stream, but the port read by a plain loop
into one discarded buffer (non-blocking reads, poll() when drained: what the
Link's reader does, with no ring, decoder or consumer behind it). The rate at
which the emulator and the pty deliver bytes: the ceiling for the receiver.
"""

from __future__ import annotations

import io
import os
import select
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import contracts as C
from ..protocol.messages import Status
from ..recording.config import StreamConfig
from .session import EmulatedSession

CONFIG = StreamConfig(rate=20_000, channel_mask=0xFF, source=C.SRC_RAMP, fmt=C.FMT_INT24, samples_per_frame=25)


@contextmanager
def raw_stream(session: EmulatedSession, config: StreamConfig) -> Iterator[tuple[int, list[Status | None]]]:
    """Start the stream, let go of the port and hold it open raw (fd) for another reader; then stop
    the stream again, its STOP's STATUS in the list yielded (the board's drop count)."""
    from ..recording.recorder import prepare_board

    link = session.link
    assert link is not None
    prepare_board(link, config)
    link.start()
    port = session.let_go()  # the board streams on; a host that is not reading gets nothing
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    status: list[Status | None] = []
    try:
        tty.setraw(fd)
        yield fd, status
    finally:
        os.close(fd)
    status.append(session.open().stop())


def raw_drain(
    session: EmulatedSession, config: StreamConfig, seconds: float, warmup: float = 0.3, batch_seconds: float = 0.0
) -> dict[str, Any]:
    """Start the stream, let go of the port, and read it raw for seconds; then stop the stream again.
    batch_seconds: read in bursts as the Link's batching reader does (a burst ends when the port
    stays silent for a millisecond, then the loop sleeps this long): what reading the tty costs at all."""
    with raw_stream(session, config) as (fd, _):
        buf = bytearray(1 << 16)
        room = len(buf)
        readinto = io.FileIO(fd, "rb", closefd=False).readinto
        port_poll = select.poll()
        port_poll.register(fd, select.POLLIN)
        count = [0]

        def drain(until: float) -> None:
            n = 0
            while True:
                got = readinto(buf)
                if got:
                    n += got
                    if got == room:
                        continue  # a short read drained the port: no read to hear EAGAIN
                if time.monotonic() >= until:
                    break
                if batch_seconds and not port_poll.poll(1):
                    time.sleep(batch_seconds)  # the burst is over
                port_poll.poll(50)
            count[0] = n

        drain(time.monotonic() + warmup)
        t0, c0 = time.monotonic(), time.process_time()
        drain(t0 + seconds)
        t1, c1 = time.monotonic(), time.process_time()
    return {
        "seconds": t1 - t0,
        "wire_bytes": count[0],
        "mb_per_s": count[0] / (t1 - t0) / 1e6,
        "cpu_percent": 100 * (c1 - c0) / (t1 - t0),
    }


def live_round(session: EmulatedSession, seconds: float) -> dict[str, Any]:
    """One receiver window and one raw window, back to back; the ratio is within the round."""
    rx = session.stream(CONFIG, seconds).as_dict()
    raw = raw_drain(session, CONFIG, seconds)
    return {"receiver": rx, "raw": raw, "ratio_live_raw": rx["mb_per_s"] / raw["mb_per_s"]}
