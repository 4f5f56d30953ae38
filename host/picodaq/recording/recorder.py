"""Recording: configure a board, stream it into a Pipeline, ride out resets and unplugs, stop cleanly.

The recorder owns the Link's lifecycle during a recording:

- `prepare()`: stop any stream left running, check the contract (HELLO), configure.
- `start()`: hang the pipeline on the link (raw bytes and routed messages),
  ask for a HELLO so the capture itself says which board and source it holds,
  and START.
- `run()`: pump until the time is up or `should_stop()` says so. Meanwhile:
  - a HELLO nobody asked for is a board that reset: re-handshake (STOP,
    GET_INFO, CONFIGURE, GET_STATUS, START) and carry on; the Timeline turns
    the restart into an annotated gap.
  - a STATUS saying the board stopped streaming (a fault) does the same, at
    most a few times in a row before giving up with the board's own words.
  - no byte for STALL_SECONDS (STATUS comes at least once a second): ask
    GET_STATUS; silence means the link is dead.
  - the port vanishing (LinkError from pump, seen within one reader select of
    200 ms) ends the run, or with `reconnect=True` waits for the same port to
    come back, reopens it with the same Receiver, re-handshakes and continues
    into the same outputs.
- `finish()`: STOP (draining what is in flight into the outputs), then close
  every output, even after a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import contracts as C
from ..errors import CommandTimeout, DeviceError, LinkError, PicodaqError
from ..protocol.decoder import FrameDecoder
from ..protocol.messages import Hello, Status
from ..protocol.units import ADS1299_DEFAULT_GAIN
from ..transport.link import Link
from .config import BATCH_LATEST, StreamConfig
from .outputs import Output
from .pipeline import Pipeline
from .session import TIME, Session, SessionState

__all__ = [
    "Event",
    "Recording",
    "RecordingResult",
    "SessionState",
    "StreamConfig",
    "fresh_counters",
    "prepare_board",
]

STALL_SECONDS = 2.0
MAX_QUICK_RESTARTS = 3  # stream restarts within RESTART_WINDOW before the recorder gives up
RESTART_WINDOW = 10.0


@dataclass
class Event:
    elapsed: float
    text: str
    warning: bool = False


@dataclass
class RecordingResult:
    seconds: float
    stats: dict
    hello: Hello | None
    status: Status | None
    ended: str  # TIME, STOPPED or LOST (session.py): "time", "stopped", "lost"
    outputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    failure: PicodaqError | None = None  # an output that could not be finished (the others were)

    @property
    def samples(self) -> int:
        return self.stats["samples"]


def prepare_board(link: Link, config: StreamConfig) -> Hello:
    """Stop any stream left running, check the contract (HELLO), configure."""
    link.stop(wait_status=0.3)
    hello = link.get_info()
    link.configure(config.rate, config.channel_mask, config.source, config.fmt, config.frame_samples())
    return hello


def fresh_counters(link: Link) -> None:
    """Start the decoder's counters at a frame boundary, as a replay of the capture will.

    The receiver core may grow its own reset for this; until then, a new decoder does it."""
    link.receiver.decoder = FrameDecoder()


class Recording(Session):
    """A recording: the shared session loop (session.py), supervising the stream and
    restarting it after a reset, a fault or a reconnect (see the module docstring)."""

    def __init__(
        self,
        link: Link,
        config: StreamConfig,
        outputs: list[Output],
        *,
        reconnect: bool = False,
        gain: int = ADS1299_DEFAULT_GAIN,
        on_event: Callable[[Event], None] | None = None,
        find_port: Callable[[], str | None] | None = None,
        clock_origin: float | None = None,
    ) -> None:
        """find_port: where the board is now, for reconnecting (default: the same port again).
        clock_origin: the host epoch time several boards recorded together share (noted in the files)."""
        super().__init__(link, config, reconnect=reconnect)
        self._find_port = find_port
        self.receiver = link.receiver
        self.pipeline = Pipeline(
            self.receiver,
            outputs,
            rate=config.rate,
            source=config.source,
            channels=config.channels,
            gain=gain,
            live=True,
            clock_origin=clock_origin,
        )
        self.pipeline.hello_listeners.append(self._on_hello)
        self.pipeline.failure_listeners.append(self._output_failed)
        self.on_event = on_event
        self.events: list[Event] = []
        self.hello: Hello | None = None
        self.board_resets = 0
        self.stream_restarts = 0
        self._bytes_closed = 0  # bytes received on links already closed
        self._handshaking = False
        self._reset_seen = False
        self._last_data = 0.0
        self._last_status: Status | None = None
        self._dropped_before = 0  # device drops in streams that already ended
        self._dropped_now = 0
        self._restart_times: list[float] = []
        self._logs_seen = 0  # LOG frames already explained
        # the link reads in batches (StreamConfig.batch_seconds), unless something needs each
        # frame's arrival time: an LSL outlet's timestamps come from the host clock's fit of them
        self.batching = True

    # -- what the live view reads -------------------------------------------------

    @property
    def bytes_in(self) -> int:
        return self._bytes_closed + (self.link.bytes_in if self.link else 0)

    @property
    def device_dropped(self) -> int:
        return self._dropped_before + self._dropped_now

    def _output_failed(self, error: PicodaqError) -> None:
        if self.pipeline.outputs:  # else the failure stops the recording and is reported as such
            kept = ", ".join(str(o.path) for o in self.pipeline.outputs)
            self._event(f"{error}; that file is closed, recording goes on into {kept}", True)

    def _event(self, text: str, warning: bool = False) -> None:
        ev = Event(round(self.elapsed, 3), text, warning)
        self.events.append(ev)
        if self.on_event:
            self.on_event(ev)

    # -- setting up ------------------------------------------------------------------

    def prepare(self) -> Hello:
        """Stop any stream left running, check the contract, configure."""
        self.hello = prepare_board(self._need_link(), self.config)
        return self.hello

    @property
    def batch_seconds(self) -> float:
        return self.config.batch_seconds() if self.batching else 0.0

    def _read_in_batches(self, link: Link) -> None:
        """Batches batch_seconds apart, decoded BATCH_LATEST apart (unless batching is off)."""
        link.batch_seconds = self.batch_seconds
        link.batch_latest = BATCH_LATEST

    def start(self, seconds: float | None = None) -> None:
        """Hang the pipeline on the link, ask for a HELLO, START. seconds: the recording holds
        exactly seconds x rate instants from its first one (the board's instants, not the
        host's timer), and run() ends once they are in."""
        if seconds:
            self.pipeline.limit_to(round(seconds * self.config.rate))
        link = self._need_link()
        self._read_in_batches(link)
        link.pump(0.05)
        fresh_counters(link)
        self.pipeline.attach()
        link.raw_taps.append(self.pipeline.raw)
        self._handshaking = True
        try:
            link.get_info()  # the capture opens with the board's HELLO: replays know board and source
            link.start()
        finally:
            self._handshaking = False
        self.started = self._last_data = time.monotonic()
        self._last_status = self.receiver.status
        self._logs_seen = self.receiver.log_count
        self.state = SessionState.STREAMING

    # -- running ---------------------------------------------------------------------

    def run(
        self,
        seconds: float | None = None,
        tick: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        poll: Callable[[], None] | None = None,
    ) -> str:
        """Record until the instants start(seconds) asked for are in, or should_stop(); returns
        "time", "stopped" or "lost" (Session.run_until). The host's timer only bounds a board
        that stops delivering: seconds plus a grace of its own."""
        pipe = self.pipeline

        def done() -> bool:
            return pipe.complete or bool(should_stop and should_stop())

        deadline = self.started + seconds + max(2.0, seconds / 10) if seconds else None
        ended = self.run_until(deadline, tick, done, poll)
        return TIME if pipe.complete else ended

    def _flush(self) -> None:
        self.pipeline.flush()

    def _step(self, timeout: float) -> None:
        link = self._need_link()
        silent_for = time.monotonic() - self._last_data
        if link.pump(min(timeout, max(0.0, STALL_SECONDS - silent_for) + 0.01)):
            self._last_data = time.monotonic()
        status = self.receiver.status
        if status is not self._last_status and status is not None:
            self._last_status = status
            if status.state == C.STATE_STREAMING:
                self._dropped_now = status.samples_dropped
            elif not self._handshaking:
                self._event(
                    f"the board stopped streaming ({status.state_name}: {self._why(link, status)}); restarting", True
                )
                self._restream()
                return
        if self._reset_seen:
            self._reset_seen = False
            self.board_resets += 1
            self._event("the board reset (a new HELLO); restarting the stream", True)
            self._restream()
        elif time.monotonic() - self._last_data > STALL_SECONDS:
            self._probe()

    def _why(self, link: Link, status: Status) -> str:
        """The board's LOG that explains a fault (it follows the STATUS), else the error code's name."""
        r = self.receiver
        link.pump_until(lambda: r.log_count > self._logs_seen, 0.3)
        text = r.logs[-1].text if r.log_count > self._logs_seen and r.logs else status.error_name
        self._logs_seen = r.log_count
        return text

    def _on_hello(self, hello: Hello) -> None:
        if not self._handshaking and self.state == SessionState.STREAMING:
            self._reset_seen = True

    def _probe(self) -> None:
        """Silence: is the board still there, still streaming?"""
        link = self._need_link()
        try:
            st = link.get_status()
        except CommandTimeout:
            raise LinkError(
                f"the board on {self.url} went silent (no data for {STALL_SECONDS:g} s)", port=self.url
            ) from None
        self._last_data = time.monotonic()
        self._last_status = st
        if st.state != C.STATE_STREAMING:
            self._event(f"the board is {st.state_name}, not streaming; restarting", True)
            self._restream()

    def _restream(self) -> None:
        """Re-handshake and START again: after a reset, a fault or a reconnect."""
        now = time.monotonic()
        self._restart_times = [t for t in self._restart_times if now - t < RESTART_WINDOW] + [now]
        if len(self._restart_times) > MAX_QUICK_RESTARTS:
            why = self.receiver.logs[-1].text if self.receiver.logs else "no reason given"
            self._logs_seen = self.receiver.log_count
            raise DeviceError(
                f"the board stopped streaming {len(self._restart_times)} times within "
                f"{RESTART_WINDOW:g} s (last: {why}); giving up"
            )
        link = self._need_link()
        cfg = self.config
        self._handshaking = True
        try:
            link.stop(wait_status=0.3)
            self.hello = link.get_info()
            link.configure(cfg.rate, cfg.channel_mask, cfg.source, cfg.fmt, cfg.frame_samples())
            link.get_status()  # the capture shows the board's uptime before the new stream
            link.start()
        except CommandTimeout as e:
            raise LinkError(f"the board on {self.url} stopped answering: {e}", port=self.url) from None
        finally:
            self._handshaking = False
        self._reset_seen = False
        self._dropped_before += self._dropped_now
        self._dropped_now = 0
        self._last_status = self.receiver.status
        self._last_data = time.monotonic()
        self.stream_restarts += 1
        self.state = SessionState.STREAMING

    # -- losing and finding the board ----------------------------------------------------

    def _lost(self, error: LinkError) -> None:
        self._event(f"link lost: {error}", True)
        self._drop_link()

    def _drop_link(self) -> None:
        link, self.link = self.link, None
        if link is None:
            return
        if self.pipeline.raw in link.raw_taps:
            link.raw_taps.remove(self.pipeline.raw)
        self._bytes_closed += link.bytes_in
        link.close()

    def _waiting(self) -> None:
        self._event(f"waiting for {self.url} to come back (Ctrl-C stops and saves)")

    def _reopen(self) -> Link | None:
        """The same port once it is back (or where find_port says the board is now), with the same Receiver."""
        url = (self._find_port() if self._find_port else None) or self.url
        if "://" not in url and not os.path.exists(url):
            time.sleep(0.05)
            return None
        try:
            link = Link.open(url, receiver=self.receiver)
        except LinkError:
            time.sleep(0.2)
            return None
        self._read_in_batches(link)
        # a new connection: its first frame sets the seq base (the board's boot HELLO, which
        # resets it, may have gone to nobody: a server forwards nothing while no client is on)
        self.receiver.decoder.reset_link()
        if url != self.url:
            self._event(f"the board came back on {url}")
            self.url = url
        return link

    def _resume(self) -> None:
        self._need_link().raw_taps.append(self.pipeline.raw)
        self._restream()

    def _back(self, seconds: float) -> None:
        self._event(f"reconnected after {seconds:.1f} s; the stream restarted")

    def mark(self, code: int) -> bool:
        """Ask the board for a MARKER at its current sample; False if it cannot be sent now."""
        if self.link is None or self.state != SessionState.STREAMING:
            self._event(f"marker {code} not sent: the board is not connected", True)
            return False
        try:
            self.link.mark(code)
        except DeviceError as e:
            self._event(f"marker {code} not sent: {e}", True)
            return False
        return True

    # -- ending --------------------------------------------------------------------------

    def finish(self, ended: str = "time") -> RecordingResult:
        """STOP the board (what is in flight still lands in the outputs), then close every output."""
        status = None
        seconds = self.elapsed
        if self.link is not None:
            try:
                status = self.link.stop(wait_status=1.0)
            except PicodaqError as e:
                self._event(f"could not stop the board cleanly: {e}", True)
            if self.pipeline.raw in self.link.raw_taps:
                self.link.raw_taps.remove(self.pipeline.raw)
        self.state = SessionState.STOPPED
        failure = None
        try:
            warnings = self.pipeline.finish(end_time=time.time())
        except PicodaqError as e:  # every other output is finished: keep the counters and say which failed
            warnings, failure = [w for o in self.pipeline.outputs for w in o.warnings], e
        if status is not None and status.state != C.STATE_STREAMING:
            self._dropped_now = max(self._dropped_now, status.samples_dropped)
        stats = self.pipeline.stats()
        stats.update(
            seconds=round(seconds, 3),
            reconnects=self.reconnects,
            board_resets=self.board_resets,
            device_samples_dropped=self.device_dropped,
        )
        return RecordingResult(
            seconds,
            stats,
            self.hello,
            status or self.receiver.status,
            ended,
            [str(p) for p in self.pipeline.written()],
            warnings,
            self.events,
            failure,
        )
