"""Recording: configure a board, stream into outputs, stop, and account for every sample."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from . import contracts as C
from .blocks import SamplesBlock
from .decoder import FrameDecoder
from .link import Link
from .messages import Hello, Status
from .outputs import Output


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

    def frame_samples(self) -> int:
        if self.samples_per_frame:
            return self.samples_per_frame
        bps = C.BYTES_PER_SAMPLE[self.fmt]
        fit = (C.MAX_PAYLOAD_BY_TYPE[C.MSG_SAMPLES] - 16) // (self.n_channels * bps)
        return max(1, min(fit, max(1, self.rate // 50)))


@dataclass
class RecordingResult:
    seconds: float
    stats: dict[str, int]
    hello: Hello | None
    status: Status | None
    interrupted: bool = False
    outputs: list[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return self.stats["samples"]


class Recording:
    """Streams from a connected board into outputs until stopped."""

    def __init__(self, link: Link, config: StreamConfig, outputs: list[Output]) -> None:
        self.link = link
        self.config = config
        self.outputs = outputs
        self.hello: Hello | None = None
        self.started = 0.0
        self.blocks = 0

    def prepare(self) -> Hello:
        """Stop any stream left running, check the contract, configure."""
        link = self.link
        link.stop(wait_status=0.3)
        self.hello = link.get_info()
        cfg = self.config
        link.configure(cfg.rate, cfg.channel_mask, cfg.source, cfg.fmt, cfg.frame_samples())
        return self.hello

    def _on_block(self, block: SamplesBlock) -> None:
        self.blocks += 1
        for out in self.outputs:
            out.on_block(block)

    def start(self) -> None:
        link = self.link
        link.pump(0.05)
        # a fresh decoder at a frame boundary: the live counters then equal a replay's of the capture
        link.receiver.decoder = FrameDecoder()
        for out in self.outputs:
            link.raw_taps.append(out.on_raw)
        link.receiver.block_handlers.append(self._on_block)
        self.started = time.monotonic()
        link.start()

    def run(self, seconds: float | None, tick: Callable[[float], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> None:
        """Pump until seconds have passed (or forever); tick(elapsed) about 4 times a second."""
        link = self.link
        next_tick = 0.0
        next_flush = 1.0
        while True:
            elapsed = time.monotonic() - self.started
            if seconds is not None and elapsed >= seconds:
                return
            if should_stop and should_stop():
                return
            link.pump(0.05)
            if tick and elapsed >= next_tick:
                tick(elapsed)
                next_tick = elapsed + 0.25
            if elapsed >= next_flush:
                for out in self.outputs:
                    out.flush()
                next_flush = elapsed + 1.0

    def finish(self, interrupted: bool = False, board_alive: bool = True) -> RecordingResult:
        status = None
        if board_alive:
            status = self.link.stop()
        for out in self.outputs:
            out.close()
        return RecordingResult(time.monotonic() - self.started, self.link.receiver.stats.as_dict(),
                               self.hello, status or self.link.receiver.status, interrupted,
                               [str(o.path) for o in self.outputs])
