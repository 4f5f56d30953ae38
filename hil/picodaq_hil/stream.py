"""Streaming from the board under test, with every block checked and every loss accounted.

A `StreamSession` configures the board, starts it, pumps the link (surviving
reconnects when the port drops out: an unplug, a faulty link's disconnect)
in picodaq's own session loop (picodaq.recording.session, as `picodaq record`),
and stops it, collecting a `StreamResult`: the decoder counters summed over
every connection, the ramp check of every block, the board's final STATUS,
markers, reboots seen mid-stream, and, for a faulty link, the bytes each
connection received (for accounting.audit_link). Recordings go through
picodaq's own Pipeline (timeline, outputs), as `picodaq record` writes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from typing import TYPE_CHECKING

from picodaq import contracts as C
from picodaq.core.receiver import Receiver
from picodaq.errors import CommandTimeout, LinkError, UsageError
from picodaq.protocol.messages import Hello, Marker, Status
from picodaq.protocol.stats import DecoderStats
from picodaq.recording.config import StreamConfig
from picodaq.recording.outputs import Output, open_outputs
from picodaq.recording.pipeline import Pipeline
from picodaq.recording.session import Session, SessionState
from picodaq.transport.link import Link

from .oracle.accounting import Connection, HilReceiver, LinkAudit, RampCheck, audit_link

if TYPE_CHECKING:
    from .boards.board import Board

FORMATS = C.FORMAT_CODES
SOURCES = C.SOURCE_CODES
_COUNTERS = tuple(f.name for f in fields(DecoderStats))  # every counter of the receiving rules


def stream_config(
    rate: int = 1000,
    channels: int = 1,
    fmt: str | int = "int16",
    source: str | int = "ramp",
    samples_per_frame: int = 0,
) -> StreamConfig:
    """A StreamConfig from friendly values: a channel count, format and source by name."""
    rate, channels, samples_per_frame = int(rate), int(channels), int(samples_per_frame)
    if not 1 <= channels <= C.MAX_CHANNELS:
        raise UsageError(f"channel count must be 1..{C.MAX_CHANNELS}, got {channels}")
    if rate <= 0:
        raise UsageError(f"rate must be positive, got {rate}")
    f = FORMATS.get(fmt, fmt) if isinstance(fmt, str) else fmt
    s = SOURCES.get(source, source) if isinstance(source, str) else source
    if f not in C.FORMAT_NAMES:
        raise UsageError(f"unknown sample format {fmt!r}; use {', '.join(FORMATS)}")
    if s not in C.SOURCE_NAMES:
        raise UsageError(f"unknown source {source!r}; use {', '.join(SOURCES)}")
    return StreamConfig(
        rate=rate, channel_mask=(1 << channels) - 1, source=s, fmt=f, samples_per_frame=samples_per_frame
    )


@dataclass
class StreamResult:
    config: StreamConfig
    seconds: float
    stats: dict[str, int]
    connections: list[Connection]
    ramp: RampCheck | None
    status: Status | None  # the board's STATUS at the end of the stream
    hello: Hello | None
    reboots: int = 0  # HELLO seq 0 seen while streaming
    reconnects: int = 0
    markers: list[Marker] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return self.stats["samples"]

    @property
    def samples_lost(self) -> int:
        """Every instant missing between the first and the last block, across reconnects too."""
        return self.ramp.gap_samples if self.ramp is not None else self.stats["samples_lost"]

    @property
    def board_dropped(self) -> int:
        return self.status.samples_dropped if self.status is not None else 0

    def summary(self) -> str:
        c = self.config
        s = self.stats
        ramp = ""
        if self.ramp is not None:
            ramp = (
                f"; ramp {'bit-exact' if self.ramp.bit_exact else 'MISMATCHED'} over {self.ramp.blocks} blocks"
                f" ({self.ramp.mismatched_blocks} bad)"
            )
        return (
            f"{c.n_channels} ch x {c.rate} Hz {C.FORMAT_NAMES[c.fmt]} for {self.seconds:.2f} s: "
            f"{s['frames_ok']} frames, {s['samples']} samples, {self.samples_lost} lost "
            f"(board dropped {self.board_dropped}), seq_lost {s['seq_lost']}, crc {s['crc_errors']}, "
            f"header {s['header_errors']}, decode {s['decode_errors']}, skipped {s['skipped_bytes']} bytes; "
            f"{self.reconnects} reconnects, {self.reboots} reboots{ramp}"
        )

    def problems(self, allow_board_drops: bool = False, min_fraction: float = 0.0) -> list[str]:
        """What makes this stream over a clean link less than complete and exact.

        Always: blocks arrived, every one bit-exact (ramp), no CRC/header/decode
        error and no frame lost on the link, and every missing instant counted.
        Missing instants are allowed only with allow_board_drops, and then only
        as many as the board itself reported dropping (its ring overflowed).

        The stream is judged by its content, not by instants per wall second: an emulated
        RP2040 runs at a fraction of a real one, and a loaded machine slows any board.
        min_fraction > 0 (a caller's choice) also asks for that share of rate x seconds."""
        out = []
        s = self.stats
        if not s["samples"]:
            out.append("no samples arrived")
        if self.ramp is not None:
            if self.ramp.mismatched_blocks:
                out.append(
                    f"{self.ramp.mismatched_blocks} blocks differ from the ramp: " + "; ".join(self.ramp.mismatches)
                )
            if self.ramp.restarts:
                out.append(f"the sample index restarted {self.ramp.restarts} times")
        for k in ("crc_errors", "header_errors", "decode_errors", "seq_lost"):
            if s[k]:
                out.append(f"{k}={s[k]} on a clean link")
        if self.ramp is not None and not self.reconnects and s["samples_lost"] != self.ramp.gap_samples:
            out.append(
                f"decoder counted samples_lost={s['samples_lost']}, the blocks skip {self.ramp.gap_samples} instants"
            )
        if self.samples_lost:
            if not allow_board_drops:
                out.append(f"{self.samples_lost} samples lost")
            elif self.samples_lost > self.board_dropped:
                out.append(
                    f"{self.samples_lost} samples lost but the board reported dropping only {self.board_dropped}"
                )
        span = self.samples + self.samples_lost
        if self.seconds > 0 and span < min_fraction * self.config.rate * self.seconds:
            out.append(f"only {span} instants in {self.seconds:.2f} s at {self.config.rate} Hz")
        return out

    def audit(self, board_bytes: bytes, faults) -> LinkAudit:
        """The faulty-link oracle over this stream (needs keep_bytes=True)."""
        return audit_link(
            board_bytes, self.connections, faults, self.ramp.gap_samples if self.ramp is not None else None
        )


BOOT_WAIT = 30.0  # s: a rebooting board's HELLO (a Pico's in about 1 s, the emulated RP2040's in 3.5 s to over 10 s)


def _booted(link: Link, seen: int) -> bool:
    """Wait up to BOOT_WAIT for a HELLO after the first `seen` (the board has booted and answers)."""
    return link.pump_until(lambda: link.receiver.hellos > seen, BOOT_WAIT)


def _stopped(rx: Receiver) -> bool:
    return rx.status is not None and rx.status.state != C.STATE_STREAMING


class StreamSession(Session):
    """Configure, start, pump and stop one stream on a Board (see the module docstring).

    The pumping and reconnecting is picodaq's own session loop (picodaq.recording.session);
    this layer adds what the oracles need: a receiver per connection (its bytes, the frames it
    delivered and its counters, for accounting.audit_link), the ramp check, reboots counted.
    It only watches: a board that reboots or a link that drops is not restarted (the
    recorder does that), and a board lost near the end is still waited for."""

    wait_past_deadline = True

    def __init__(
        self,
        board: Board,
        config: StreamConfig,
        outputs: list[Output] | None = None,
        keep_bytes: bool = False,
        reconnect_timeout: float = 10.0,
    ) -> None:
        super().__init__(board.need_link(), config, reconnect=True)
        self.board = board
        self.outputs = list(outputs or [])
        self.keep_bytes = keep_bytes
        self.reconnect_timeout = reconnect_timeout
        self.ramp = RampCheck() if config.source == C.SRC_RAMP else None
        self.connections: list[Connection] = []
        self.markers: list[Marker] = []
        self.reboots = 0
        self.hello: Hello | None = None
        self.pipeline: Pipeline | None = None
        self.warnings: list[str] = []
        self._rx: HilReceiver | None = None
        self._bytes: bytearray | None = None
        self._taps: list[Callable[[memoryview], None]] = []
        self._deadline = 0.0

    @classmethod
    def with_files(cls, board: Board, config: StreamConfig, paths: list[str], **kw) -> StreamSession:
        from pathlib import Path

        return cls(board, config, open_outputs([Path(p) for p in paths]), **kw)

    @property
    def running(self) -> bool:
        return self.state in (SessionState.STREAMING, SessionState.RECONNECTING)

    # -- connections -----------------------------------------------------------------

    def _open_connection(self) -> None:
        link = self.link = self.board.need_link()
        rx = self.board.fresh_receiver()
        if self.ramp is not None:
            rx.block_handlers.append(self.ramp.on_block)
        rx.hello_handlers.append(self._on_hello)
        self._taps = []
        if self.outputs:
            cfg = self.config
            if self.pipeline is None:
                self.pipeline = Pipeline(
                    rx, self.outputs, rate=cfg.rate, source=cfg.source, channels=tuple(range(cfg.n_channels)), live=True
                )
            self.pipeline.attach(rx)  # one recording across reconnects: the same timeline and files
            self._taps.append(self.pipeline.raw)
        if self.keep_bytes:
            self._bytes = bytearray()
            self._taps.append(self._bytes.extend)
        link.raw_taps.extend(self._taps)
        self._rx = rx

    def _close_connection(self) -> None:
        rx = self._rx
        if rx is None:
            return
        self._rx = None
        rx.finish()  # end of this connection's input: a frame cut off by it is counted, not waited for
        if self.pipeline is not None:
            self.pipeline.detach()
        link = self.board.link
        if link is not None:
            for t in self._taps:
                if t in link.raw_taps:
                    link.raw_taps.remove(t)
        self.markers += rx.markers
        self.connections.append(Connection(bytes(self._bytes or b""), rx.delivered, rx.stats.as_dict()))
        self._bytes = None

    def _on_hello(self, hello: Hello) -> None:
        if self.running:
            self.reboots += 1
            self.board.note("HELLO while streaming: the board rebooted")

    # -- the session loop's hooks --------------------------------------------------------

    def _step(self, timeout: float) -> None:
        self._need_link().pump(min(timeout, max(0.0, self._deadline - time.monotonic())))

    def _lost(self, error: LinkError) -> None:
        if self.reconnect:  # else the error goes to the test as it is, the link left as it was
            self._drop_connection()

    def _drop_connection(self) -> None:
        self._close_connection()
        self.board.note("the link dropped while streaming; reconnecting")
        self._drop_link()

    def _drop_link(self) -> None:
        self.board.disconnect()
        self.link = None

    def _reopen(self) -> Link | None:
        return self.board.reconnect(self.reconnect_timeout)  # BoardLost when it does not come back

    def _resume(self) -> None:
        self._open_connection()

    # -- the stream ------------------------------------------------------------------

    def start(self) -> Hello:
        board = self.board
        link = self.link = board.need_link()
        self.hello = link.get_info()
        cfg = self.config
        link.configure(cfg.rate, cfg.channel_mask, cfg.source, cfg.fmt, cfg.frame_samples())
        board.drain(quiet=0.02)
        self._open_connection()
        board.note(
            f"stream starts: {cfg.n_channels} ch x {cfg.rate} Hz, {C.FORMAT_NAMES[cfg.fmt]}, "
            f"{C.SOURCE_NAMES[cfg.source]}, {cfg.frame_samples()} samples per frame"
        )
        self.started = time.monotonic()
        self.state = SessionState.STREAMING
        link.start()
        return self.hello

    def run(self, seconds: float, reconnect: bool = True, until: Callable[[], bool] | None = None) -> None:
        """Pump for `seconds` (or until `until()`), reconnecting if the port drops out."""
        self.reconnect = reconnect
        self._deadline = time.monotonic() + float(seconds)
        self.run_until(self._deadline, should_stop=until)

    def mark(self, code: int) -> None:
        self.board.need_link().mark(int(code))

    def stop(self) -> StreamResult:
        """STOP (faults off first, so the end of the stream is judged on clean frames), wait for the
        board's final STATUS, and collect the result."""
        board = self.board
        if board.proxy is not None:
            board.proxy.set_enabled(False)
        seconds = time.monotonic() - self.started
        for attempt in range(3):
            try:
                link = board.need_link()
                hellos = link.receiver.hellos
                link.stop(wait_status=0.5)
                if not link.pump_until(partial(_stopped, link.receiver), 1.0):
                    link.get_status()  # an idle board (e.g. rebooted mid-stream) sends no STATUS on STOP
                board.drain()
                break
            except CommandTimeout:
                # a board that rebooted (its cable carries its power) answers once it has booted:
                # the emulated RP2040 took 3.8 s after its port came back on a loaded machine
                if attempt == 2 or not _booted(link, hellos):
                    raise
            except LinkError:
                if attempt == 2:
                    raise
                self._drop_connection()
                self._reconnect(None, None, None)
        self.state = SessionState.STOPPED
        status = self._rx.status if self._rx is not None else None
        self._close_connection()
        board.fresh_receiver()
        if self.pipeline is not None:
            self.warnings = self.pipeline.finish()
        stats = {k: sum(c.stats.get(k, 0) for c in self.connections) for k in _COUNTERS}
        result = StreamResult(
            self.config,
            seconds,
            stats,
            self.connections,
            self.ramp,
            status,
            self.hello,
            self.reboots,
            self.reconnects,
            self.markers,
        )
        board.note("stream stopped: " + result.summary())
        return result
