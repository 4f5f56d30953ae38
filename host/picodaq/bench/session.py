"""An emulated board streaming into a Link, measured over a window: the live figures' common part.

`EmulatedSession` starts an emulated board (MicroPython's unix port running
the real firmware behind a pty; paced in real time, or unpaced: as fast as the
link drains) and opens a Link to it whose receiver's primary output is a
CallbackOutput: the consumer's callback gets each block as it is routed, in
this thread, while it pumps the link. (A BlockQueue would drop the blocks
that arrive while `stop()` waits for its ACK and nobody polls; an unpaced
board sends thousands then.) `stream()` configures the board, starts it,
pumps for a warm-up and then a measured window, stops the board and returns
what the window saw: wire bytes, instants and blocks the consumer took, this
process's CPU time, and every loss counter over the whole stream (the
decoder's, blocks the primary refused, and the board's own count of dropped
instants).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.blocks import SamplesBlock
from ..core.primary import CallbackOutput
from ..core.receiver import Receiver
from ..recording.config import BATCH_LATEST, StreamConfig
from ..recording.recorder import prepare_board
from ..transport.link import Link
from ..transport.port_reader import WAKE_LATEST

_LOSS_KEYS = ("crc_errors", "header_errors", "seq_lost", "samples_lost", "decode_errors")


@dataclass
class Window:
    """What one measured window of a stream saw."""

    seconds: float
    cpu_seconds: float  # this process's CPU time (reader thread and consumer)
    kernel_seconds: float  # ... of which in the kernel (system time: the port's reads, poll(), wake-ups)
    wire_bytes: int
    instants: int  # instants (rows) the primary consumer took
    blocks: int
    n_channels: int
    losses: dict[str, int]  # the decoder's loss counters over the whole stream, and the board's drops

    @property
    def lost(self) -> int:
        return sum(self.losses.values())

    def as_dict(self) -> dict[str, Any]:
        s = self.seconds
        return {
            "seconds": s,
            "cpu_seconds": self.cpu_seconds,
            "wire_bytes": self.wire_bytes,
            "instants": self.instants,
            "blocks": self.blocks,
            "mb_per_s": self.wire_bytes / s / 1e6,
            "instants_per_s": self.instants / s,
            "samples_per_s": self.instants * self.n_channels / s,
            "cpu_percent": 100 * self.cpu_seconds / s,
            "kernel_cpu_percent": 100 * self.kernel_seconds / s,
            "losses": self.losses,
            "lost": self.lost,
        }


class EmulatedSession:
    def __init__(self, unpaced: bool) -> None:
        from picodaq.boards.unix import EmulatedBoard

        self.board = EmulatedBoard(unpaced=unpaced)
        self.link: Link | None = None
        self.consumer: Callable[[SamplesBlock], object] = _ignore

    def __enter__(self) -> EmulatedSession:
        try:
            self.board.install_firmware()
            self.board.start()
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> Link:
        self.link = Link.open(self.board.port, receiver=Receiver(primary=CallbackOutput(self._deliver), runs=True))
        return self.link

    def let_go(self) -> str:
        """Close the link (the board goes on as it was) and return the port, for another reader."""
        if self.link is not None:
            self.link.close()
            self.link = None
        return self.board.port

    def _deliver(self, block: SamplesBlock) -> None:
        self.consumer(block)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None
        self.board.stop()

    def stream(
        self,
        config: StreamConfig,
        seconds: float,
        warmup: float = 0.5,
        on_block: Callable[[SamplesBlock], object] | None = None,
        batch: bool = False,
    ) -> Window:
        """Stream config for warmup + seconds; the window is the last `seconds`. batch: the link
        reads in batches as a recording's does (config.batch_seconds(), decoded BATCH_LATEST apart),
        else as soon as bytes come."""
        link = self.link
        assert link is not None
        link.batch_seconds = config.batch_seconds() if batch else 0.0
        link.batch_latest = BATCH_LATEST if batch else WAKE_LATEST
        prepare_board(link, config)
        rx = link.receiver
        lost0 = {k: getattr(rx.stats, k) for k in _LOSS_KEYS}
        dropped0 = rx.blocks_dropped
        took = [0, 0]  # instants, blocks

        def consume(block: SamplesBlock) -> None:
            took[0] += block.n_samples
            took[1] += 1
            if on_block is not None:
                on_block(block)

        pump = link.pump
        self.consumer = consume
        try:
            link.start()
            start = time.monotonic()
            while (left := start + warmup - time.monotonic()) > 0:
                pump(left)
            i0, b0, bytes0 = took[0], took[1], link.bytes_in
            t0, c0, k0 = time.monotonic(), time.process_time(), _system_time()
            end = t0 + seconds
            while (left := end - time.monotonic()) > 0:
                pump(left)  # wakes for data only
            t1, c1, k1 = time.monotonic(), time.process_time(), _system_time()
            window = (t1 - t0, c1 - c0, k1 - k0, link.bytes_in - bytes0, took[0] - i0, took[1] - b0)
            status = link.stop()  # what is in flight still reaches the consumer
        finally:
            self.consumer = _ignore
        losses = {k: getattr(rx.stats, k) - lost0[k] for k in _LOSS_KEYS}
        losses["primary_refused"] = rx.blocks_dropped - dropped0
        if status is None:
            raise RuntimeError("the emulated board sent no STATUS after STOP")
        losses["device_dropped"] = status.samples_dropped
        return Window(*window, n_channels=config.n_channels, losses=losses)


def _system_time() -> float:
    """This process's system time, every thread (Linux splits its exact run time by tick samples)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _ignore(block: SamplesBlock) -> None:
    pass
