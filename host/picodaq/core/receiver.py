"""Receiver: the sans-I/O core from link bytes to routed messages.

    bytes -> FrameDecoder -> BufferPool loans -> Router -> SAMPLES: blocks
          (Pool[SamplesBlock]) -> block handlers, observers (TapRegistry),
          primary output (ownership) / control messages: latest state + handlers

`receive(data)` is the one entry point that takes bytes (the Link feeds it
from its ring, replay from a file, benchmarks from memory); it reads data in
place and keeps nothing of it after returning. No ports, no threads.

For each SAMPLES frame the decoder copies the frame once, into a pooled
buffer; the buffer becomes a pooled block (numpy views cached per buffer); the
block goes, in order, to the `block_handlers` (called synchronously with the
block: their exceptions propagate, as a recording output's must), to the
observers (read-only views, isolated), and then to the primary output, which
owns it from then on. With no primary output the block is released at once.
ACK, HELLO, STATUS, MARKER and LOG update the receiver's state and call their
handlers. Counters: `stats` (the decoder's, PROTOCOL.md's), `pool_stats`,
`block_stats`, router errors, `blocks_dropped` (refused by the primary).

`Receiver(runs=True)` takes runs (decoder.drain's run handler): SAMPLES frames
that continue each other and arrive in one read are checked and copied at once
and become ONE block of all their instants (`block.n_frames` frames), so the
per-frame work (a pooled buffer, a block, its handlers, observers and the
primary) is done once per read instead of once per frame. What is delivered
is the same: the same instants with the same indices, the same counters
(observers count and decimate by frames); only the block boundaries differ.
`picodaq record` and `replay` receive this way. With frame handlers (audits)
the receiver goes frame by frame.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import contracts as C
from ..buffers.objpool import ObjectPoolStats, Pool
from ..buffers.pool import RUN_CLASSES, BufferPool, Loaned, PoolStats
from ..errors import UsageError
from ..protocol.decoder import FrameDecoder
from ..protocol.frames import LOAN_FRAME_OFFSET, Frame
from ..protocol.layouts import SAMPLES_KEY, SAMPLES_TIMING_AND_SHAPE, SamplesKey
from ..protocol.messages import Ack, Hello, Log, Marker, Status
from ..protocol.stats import DecoderStats
from .blocks import T0_OFFSET, SamplesBlock
from .clock import HostClock
from .primary import BlockQueue, PrimaryOutput
from .router import BAD_PAYLOAD, PRIMARY_FULL, RouteError, Router
from .taps import TapRegistry

BlockHandler = Callable[[SamplesBlock], None]
_T0_TO_NS = SAMPLES_TIMING_AND_SHAPE  # t0_us, period_ns, n_channels, fmt, n_samples


class Receiver:
    def __init__(
        self,
        pool: BufferPool | None = None,
        primary: PrimaryOutput | None = None,
        clock: HostClock | bool = True,
        block_cap: int = 4096,
        runs: bool = False,
    ) -> None:
        self.pool = pool if pool is not None else BufferPool(RUN_CLASSES if runs else None)
        self.runs = runs
        self._decoder = FrameDecoder(self.pool)
        self.blocks: Pool[SamplesBlock] = Pool(self._new_block, cap=block_cap)
        self.router = Router()
        self.taps = TapRegistry()
        self.primary = primary
        self.clock: HostClock | None = HostClock() if clock is True else (clock or None)
        self.blocks_dropped = 0  # blocks the primary output refused
        self.bytes_received = 0
        self._clock_loan: Loaned | None = None  # buffer of the newest block in this receive()
        self._clock_at = T0_OFFSET  # where in it the newest frame's t0_us is
        # control-message state (the latest of each, and counts)
        self.acks: dict[int, Ack] = {}
        self.hello: Hello | None = None
        self.hellos = 0  # HELLO frames seen: a new one means the board (re)booted
        self.status: Status | None = None
        self.statuses = 0
        self.logs: deque[Log] = deque(maxlen=256)
        self.log_count = 0
        self.markers: list[Marker] = []
        self.block_handlers: list[BlockHandler] = []
        self.marker_handlers: list[Callable[[Marker], None]] = []
        self.log_handlers: list[Callable[[Log], None]] = []
        self.hello_handlers: list[Callable[[Hello], None]] = []
        # every accepted frame, before it is routed (audits, device logs); empty on the hot path
        self.frame_handlers: list[Callable[[Frame], None]] = []
        r = self.router
        self._route = r.route
        self._take_run = self._on_run  # bound once: receive() passes it on every call
        r.on(C.MSG_SAMPLES, self._on_samples)
        r.on(C.MSG_ACK, self._on_ack)
        r.on(C.MSG_STATUS, self._on_status)
        r.on(C.MSG_HELLO, self._on_hello)
        r.on(C.MSG_MARKER, self._on_marker)
        r.on(C.MSG_LOG, self._on_log)

    def _new_block(self) -> SamplesBlock:
        return SamplesBlock.pooled(self.blocks)

    # -- the decoder -------------------------------------------------------------

    @property
    def decoder(self) -> FrameDecoder:
        return self._decoder

    @decoder.setter
    def decoder(self, decoder: FrameDecoder) -> None:
        """Install a fresh decoder (new counters), drawing from this receiver's pool."""
        self._decoder.stash()
        if decoder.pool is None:
            decoder.pool = self.pool
        self._decoder = decoder

    @property
    def stats(self) -> DecoderStats:
        return self._decoder.stats

    @property
    def pool_stats(self) -> PoolStats:
        return self.pool.stats

    @property
    def block_stats(self) -> ObjectPoolStats:
        return self.blocks.stats

    def counters(self) -> dict[str, Any]:
        """Every counter of the pipeline, as one JSON-ready dict."""
        d: dict[str, Any] = dict(self.stats.as_dict())
        d["bytes"] = self.bytes_received
        d["blocks_dropped"] = self.blocks_dropped
        d["pool"] = self.pool_stats.as_dict()
        d["block_pool"] = self.block_stats.as_dict()
        d["router"] = self.router.counts()
        d["taps"] = self.taps.stats()
        stats = getattr(self.primary, "stats", None)
        if callable(stats):
            d["primary"] = stats()
        return d

    # -- bytes in ----------------------------------------------------------------

    def receive(self, data: bytes | bytearray | memoryview, arrival: float | None = None) -> int:
        """Decode and route everything data completes; returns frames routed.

        arrival: host monotonic time the data was read (now, if None), for the clock fit.
        """
        dec = self._decoder
        dec.feed(data)
        self.bytes_received += len(data)
        return self._route_input(dec, arrival)

    def resync_stalled(self, arrival: float | None = None) -> int:
        """The link went quiet inside a frame: if that frame was cut short (a board reset or unplugged
        while sending it; FrameDecoder.resync_stalled), route what followed it now; returns frames routed.
        arrival: when the bytes held back were read."""
        n = 0
        dec = self._decoder
        while dec.resync_stalled():
            n += self._route_input(dec, arrival)
        return n

    def _route_input(self, dec: FrameDecoder, arrival: float | None) -> int:
        try:
            if self.frame_handlers:
                n = dec.drain(self._route_watched)
            else:
                n = dec.drain(self._route, self._take_run if self.runs else None)
        finally:
            dec.stash()  # if a handler raised, keep nothing of data (a no-op after NEED_DATA)
        loan = self._clock_loan
        if loan is not None:
            # One clock observation per read: the newest block's last instant had arrived by now.
            # Its buffer still holds its bytes even if the block was released meanwhile: only a
            # later SAMPLES frame could take the buffer again, and this was the last one.
            self._clock_loan = None
            clock = self.clock
            assert clock is not None
            t0, period, _, _, ns = _T0_TO_NS.unpack_from(loan.buffer, self._clock_at)
            end = clock.unwrap(t0) + (ns - 1) * period // 1000
            clock.observe(end, time.monotonic() if arrival is None else arrival)
        return n

    def finish(self) -> int:
        """End of input: route whatever the remaining bytes still hold."""
        return self.receive(b"")

    def route(self, frame: Frame) -> RouteError | None:
        """Route one frame (a detached one, too); returns the router's outcome."""
        return self.router.route(frame)

    def _route_watched(self, frame: Frame) -> RouteError | None:
        for h in self.frame_handlers:
            h(frame)
        return self._route(frame)

    # -- handlers ----------------------------------------------------------------

    def _on_samples(self, frame: Frame) -> RouteError | None:
        loan = frame.loan  # the block takes the frame's buffer over
        frame.loan = None
        head = frame.head
        if loan is None:  # a detached frame: give it a pooled buffer like any other
            payload = frame.payload
            loan = self.pool.acquire(LOAN_FRAME_OFFSET + C.OVERHEAD + len(payload))
            start = LOAN_FRAME_OFFSET + C.HEADER_SIZE
            loan.view[start : start + len(payload)] = payload
            if head is None:
                head = SAMPLES_KEY.unpack_from(payload)
        block = self.blocks.take()
        clock = self.clock
        if clock is not None:
            self._clock_loan = loan
            self._clock_at = T0_OFFSET
            if clock.ref_raw is None:  # the first block sets the unwrapping reference
                clock.unwrap(_T0_TO_NS.unpack_from(loan.buffer, T0_OFFSET)[0])
        block.bind(loan, head, frame.seq, clock)  # type: ignore[arg-type]
        return self._deliver(block, 1)

    def _on_run(self, loan: Loaned, head: SamplesKey, frames: int, stride: int, seq: int) -> None:
        """A run of SAMPLES frames from the decoder: one block of all their instants."""
        block = self.blocks.take()
        clock = self.clock
        if clock is not None:
            self._clock_loan = loan
            self._clock_at = T0_OFFSET + (frames - 1) * stride  # the run's newest frame
            if clock.ref_raw is None:
                clock.unwrap(_T0_TO_NS.unpack_from(loan.buffer, T0_OFFSET)[0])
        block.bind_run(loan, head, frames, stride, seq, clock)
        if self._deliver(block, frames) is PRIMARY_FULL:
            self.router.errors[PRIMARY_FULL.code] += 1  # as the router counts a refused single frame
            self.router.last_error = PRIMARY_FULL

    def _deliver(self, block: SamplesBlock, frames: int) -> RouteError | None:
        """A bound block to the block handlers, the observers, then the primary output."""
        handlers = self.block_handlers
        if handlers:
            try:
                for h in handlers:
                    h(block)
            except BaseException:
                block.release()
                raise
        taps = self.taps
        if taps:
            taps.deliver(block._view, frames)
        primary = self.primary
        if primary is None:
            block.release()
            return None
        if primary.offer(block):
            return None
        self.blocks_dropped += 1
        block.release()
        return PRIMARY_FULL

    def _on_ack(self, frame: Frame) -> RouteError | None:
        try:
            ack = Ack.parse(frame.payload)
        except struct.error:
            return BAD_PAYLOAD
        self.acks[ack.cmd_id] = ack
        return None

    def _on_status(self, frame: Frame) -> RouteError | None:
        try:
            self.status = Status.parse(frame.payload)
        except struct.error:
            return BAD_PAYLOAD
        self.statuses += 1
        return None

    def _on_hello(self, frame: Frame) -> RouteError | None:
        try:
            hello = Hello.parse(frame.payload)
        except struct.error:
            return BAD_PAYLOAD
        self.hello = hello
        self.hellos += 1
        if frame.seq == 0 and self.clock is not None:
            self.clock.restart()  # the board booted: its clock restarted
        for h in self.hello_handlers:
            h(hello)
        return None

    def _on_marker(self, frame: Frame) -> RouteError | None:
        try:
            m = Marker.parse(frame.payload)
        except struct.error:
            return BAD_PAYLOAD
        self.markers.append(m)
        for h in self.marker_handlers:
            h(m)
        return None

    def _on_log(self, frame: Frame) -> RouteError | None:
        log = Log.parse(frame.payload)
        self.logs.append(log)
        self.log_count += 1
        for h in self.log_handlers:
            h(log)
        return None

    # -- polling the primary output --------------------------------------------------

    @property
    def queue(self) -> BlockQueue:
        """The primary output when it is a BlockQueue (what the polling APIs read)."""
        q = self.primary
        if not isinstance(q, BlockQueue):
            raise UsageError(
                "polling needs a BlockQueue as the receiver's primary output (Receiver(primary=BlockQueue()))"
            )
        return q

    def poll_into(self, out: np.ndarray, max: int | None = None, indices: np.ndarray | None = None) -> int:
        return self.queue.poll_into(out, max, indices)

    def poll_each(self, max: int, fn: Callable[[SamplesBlock], object]) -> int:
        return self.queue.poll_each(max, fn)

    def poll(self, max: int | None = None) -> list[SamplesBlock]:
        return self.queue.poll(max)
