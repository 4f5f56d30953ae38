"""Timeline: where every received instant, gap and marker lies in a recording.

Sans-I/O, like the decoder: it is fed what the Receiver routes, in arrival
order (SAMPLES blocks with the latest STATUS, MARKERs, HELLOs), and tells a
sink where things go:

    sink.on_layout(layout)            once, before the first samples
    sink.on_gap(gap)                  before the samples that follow a gap
    sink.on_marker(marker)
    sink.on_samples(pos, row, block)

Two coordinates place everything:

- `pos`, the position on the recording's continuous sample grid: instants
  since the first one, gaps included, so t = pos / rate seconds. BDF fills a
  gap's span; annotations and the CSV's t_s column use it.
- `row`, the count of instants received before: the row in .npy and .csv,
  which hold received instants only.

How gaps are found and timed (only from the bytes, so a replayed capture gives
the same answer as the live recording, except where the host clock is said to
be used):

- The block's first_sample_index continues the previous block: contiguous
  (after a HELLO the device clock must agree too, else it is a new stream).
- It jumps forward and the device clock (t0_us) agrees with the jump: the board
  or the link lost those instants ("samples lost"); the gap spans exactly them.
- Anything else (the index went back, or the clock disagrees, or the sender's
  seq went back: a restart without a HELLO, or two captures joined) is a new
  stream: a STOP/START, a reconnect's re-handshake, or a board reset. The latest
  STATUS tells which: its uptime going backwards means the board restarted.
  - Same boot: the device clock runs on across streams, but t0_us is only
    known modulo its ticks period (2**30 us, 17.9 min), so its step is taken
    only when something vouches for it (PROTOCOL.md): a STATUS sent between
    the two streams whose uptime advanced by as much (it also picks the right
    multiple of the period for long gaps), or, live, the host clock. The
    device clock then times the gap ("device clock").
  - Board restarted: the device clock restarted too. Live, the host clock
    estimates the gap (arrival times, +- a frame's latency).
  - Live, a device clock step the host clock disagrees with gives way to the
    host clock. In a replay, where no host clock exists, a gap nothing vouches
    for (a board restart, a clock step no STATUS confirms, as in a capture
    joined to itself) has no measurable length: "duration unknown", zero span,
    and no output fills it. So a file is never longer than the data it holds
    plus the gaps that were measured.

A marker's sample_index belongs to the stream that was running when it was
sent; one that arrives after a HELLO (a handshake or reset) waits for the next
block, so it is placed in the new stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .. import contracts as C
from ..core.blocks import SamplesBlock
from ..errors import DeviceError
from ..protocol.messages import Hello, Marker, Status
from ..protocol.units import ADS1299_DEFAULT_GAIN, Scale, scale_for

_U32 = 1 << 32
_HALF = 1 << 31
_TICKS_NS = C.TICKS_PERIOD * 1000  # the device clock wraps at 2**30 us
_VOUCH_TOLERANCE_NS = 1_500_000_000  # how far a voucher may be from the device clock's step

LOST = "samples lost"
RESTART = "stream restarted"
REBOOT = "board restarted"

EXACT = "exact"  # counted instants
DEVICE_CLOCK = "device clock"
HOST_CLOCK = "host clock"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Layout:
    """What one recording holds; fixed for its whole length."""

    n_channels: int
    rate: int  # sample instants per second
    period_ns: int
    fmt: int
    source: int | None  # None when no HELLO said and no hint was given
    channels: tuple[int, ...]  # the board's channel numbers, for labels
    scale: Scale
    device: str = ""  # "linux 1dc46f6349039df5 fw 0.1.0", when a HELLO was seen
    start_time: float | None = None  # host wall clock (epoch s) at pos 0, when known
    clock_origin: float | None = None  # host wall clock (epoch s) several boards' recordings share

    def clock_note(self) -> str | None:
        """Where sample 0 sits against the shared origin (several boards recorded at once)."""
        if self.clock_origin is None or self.start_time is None:
            return None
        return f"sample 0 at run start {self.start_time - self.clock_origin:+.6f} s"

    @property
    def labels(self) -> list[str]:
        return [f"ch{c}" for c in self.channels]

    @property
    def source_name(self) -> str:
        return C.SOURCE_NAMES.get(self.source, "unknown") if self.source is not None else "unknown"

    @property
    def fmt_name(self) -> str:
        return C.FORMAT_NAMES.get(self.fmt, str(self.fmt))


@dataclass(frozen=True)
class Gap:
    pos: int  # grid position where the gap starts
    row: int  # the row of the first instant after it
    span: int  # instants the gap covers on the grid (0 when its length is unknown)
    reason: str  # LOST, RESTART or REBOOT
    timing: str  # how span was measured: EXACT, DEVICE_CLOCK, HOST_CLOCK or UNKNOWN
    first_index: int  # device sample index of the first instant after the gap

    def describe(self) -> str:
        """A short label (BDF annotations hold 40 characters)."""
        if self.reason == LOST:
            return f"gap: {self.span} samples lost"
        if self.timing == UNKNOWN:
            return f"gap: {self.reason}, duration unknown"
        if self.timing == HOST_CLOCK:
            return f"gap: {self.reason} (host clock)"
        return f"gap: {self.reason}"


@dataclass(frozen=True)
class MarkerEvent:
    pos: int  # grid position of the marked instant
    code: int
    sample_index: int  # the device's index for it, as sent


class Sink(Protocol):
    def on_layout(self, layout: Layout) -> None: ...
    def on_samples(self, pos: int, row: int, block: SamplesBlock) -> None: ...
    def on_gap(self, gap: Gap) -> None: ...
    def on_marker(self, marker: MarkerEvent) -> None: ...


class LayoutChanged(DeviceError):
    """The stream changed channels, format or rate mid-recording."""


def infer_rate(period_ns: int) -> int:
    """The integer rate whose period the firmware computed as 1e9 // rate.

    Above ~30 kHz several rates share a period; the roundest (most trailing
    zeros) is taken, as people configure 44100 rather than 44101. A live
    recording knows its rate and never guesses."""
    if period_ns <= 0:
        return 1
    lo, hi = 10**9 // (period_ns + 1) + 1, 10**9 // period_ns
    if lo > hi:
        return max(1, round(1e9 / period_ns))

    def zeros(r: int) -> int:
        z = 0
        while r % 10 == 0:
            r //= 10
            z += 1
        return z

    return max(range(lo, hi + 1), key=lambda r: (zeros(r), -abs(r - 1e9 / period_ns)))


def _vouched(d: int, *vouchers: int | None) -> int | None:
    """The device clock's step d (ns, modulo its ticks period) as a gap length, if a voucher (ns:
    the device's uptime, the host clock) agrees with d plus some whole number of periods; else None.

    The uptime comes from STATUS frames sent up to half a second before each stream's edge, the
    host clock from arrival times: each agrees with the true gap to within a second or so."""
    for v in vouchers:
        if v is None:
            continue
        k = max(0, round((v - d) / _TICKS_NS))
        candidate = d + k * _TICKS_NS
        if abs(candidate - v) <= _VOUCH_TOLERANCE_NS + v // 1000:
            return candidate
    return None


def _signed32(x: int) -> int:
    x %= _U32
    return x - _U32 if x >= _HALF else x


@dataclass
class TimelineCounts:
    gaps: int = 0
    gap_instants: int = 0  # grid instants spanned by gaps
    restarts: int = 0  # new streams (each also counted as a gap)
    board_restarts: int = 0
    markers: int = 0


class Timeline:
    def __init__(
        self,
        sink: Sink,
        *,
        rate: int | None = None,
        source: int | None = None,
        channels: tuple[int, ...] | None = None,
        gain: int = ADS1299_DEFAULT_GAIN,
        clock=None,
        wall=None,
        clock_origin: float | None = None,
        limit: int | None = None,
    ) -> None:
        """rate/source/channels: what the host configured, when known (else from the stream).
        clock (monotonic seconds) and wall (epoch seconds) exist live only; clock_origin (epoch
        seconds) is the start several boards recorded together share. limit: the grid instants
        the recording holds (`--seconds` x rate), None for all."""
        self.sink = sink
        self.limit = limit
        self.complete = False  # the limit is reached: nothing more is placed
        self.kept = 0  # instants of the latest block placed (fewer than it holds at the limit)
        self._hints = (rate, source, channels)
        self._gain = gain
        self._clock = clock
        self._wall = wall
        self._clock_origin = clock_origin
        self.layout: Layout | None = None
        self.counts = TimelineCounts()
        self.pos = 0  # grid position of the next expected instant
        self.rows = 0
        self._seg_pos = 0  # grid position where the current stream began
        self._next_index = 0  # device index of the next expected instant
        self._t_end_ns = 0  # device clock at the next expected instant, ns mod 2**30 us
        self._uptime: int | None = None  # the latest STATUS uptime seen with a block
        self._arrival: float | None = None  # host clock when the last block arrived
        self._hello: Hello | None = None
        self._after_hello = False  # a HELLO since the last block
        self._pending: list[Marker] = []

    # -- input ----------------------------------------------------------------

    def hello(self, hello: Hello) -> None:
        self._hello = hello
        if self.layout is not None:
            self._after_hello = True

    def sender_reset(self) -> None:
        """The sender's seq went back (a restart without a HELLO, or two captures joined): the next
        block continues this stream only if the device clock agrees, as after a HELLO."""
        if self.layout is not None:
            self._after_hello = True

    def marker(self, marker: Marker) -> None:
        if self.complete:
            return
        self.counts.markers += 1
        if self.layout is None or self._after_hello:
            self._pending.append(marker)
        else:
            self._emit_marker(marker)

    def block(self, block: SamplesBlock, status: Status | None = None) -> None:
        """Place a block (and the gap before it); with a limit, only the instants within it:
        `kept` says how many of the block's, `complete` that the limit is reached. A gap that
        reaches the limit ends the recording where it starts. A block of no instants (the last
        frame of a capture cut at a gap) places nothing."""
        self.kept = 0
        if self.complete or not block.n_samples:
            return
        now = self._clock() if self._clock else None
        if self.layout is None:
            self._begin(block, now)
        else:
            self._check_layout(block)
            gap = self._place(block, status, now)
            if gap is not None:
                if self.limit is not None and gap.pos + gap.span >= self.limit:
                    self.complete = True  # the limit falls in the gap: the recording ends before it
                    return
                self._gap(gap)
        self._next_index = block.first_index  # self.pos is where this block's first instant goes
        self._after_hello = False
        if self._pending:
            pending, self._pending = self._pending, []
            for m in pending:
                self._emit_marker(m)
        n = block.n_samples
        kept = n
        if self.limit is not None and self.pos + n >= self.limit:
            kept = self.limit - self.pos
            self.complete = True
        self.kept = kept
        self.sink.on_samples(self.pos, self.rows, block if kept == n else block.head(kept))
        self.pos += kept
        self.rows += kept
        self._next_index = (block.first_index + n) % _U32
        self._t_end_ns = (block.t0_us * 1000 + n * block.period_ns) % _TICKS_NS
        if status is not None:
            self._uptime = status.uptime_ms
        self._arrival = now

    def finish(self) -> None:
        """End of input: place markers still waiting for a block."""
        pending, self._pending = self._pending, []
        if self.layout is not None:
            for m in pending:
                self._emit_marker(m)

    # -- placing ---------------------------------------------------------------

    def _begin(self, block: SamplesBlock, now: float | None) -> None:
        rate_hint, source_hint, channels_hint = self._hints
        rate = rate_hint or infer_rate(block.period_ns)
        hello = self._hello
        source = source_hint if source_hint is not None else (hello.source if hello else None)
        nch = block.n_channels
        channels = tuple(channels_hint) if channels_hint and len(channels_hint) == nch else tuple(range(nch))
        device = ""
        if hello is not None:
            device = f"{hello.platform} {hello.board_id} fw {'.'.join(map(str, hello.firmware_version))}"
        start = None
        if self._wall is not None:
            start = self._wall() - block.n_samples / rate  # the block arrives once its last instant is taken
        self.layout = Layout(
            nch,
            rate,
            block.period_ns,
            block.fmt,
            source,
            channels,
            scale_for(source, block.fmt, self._gain),
            device,
            start,
            self._clock_origin if start is not None else None,
        )
        self.sink.on_layout(self.layout)
        self._next_index = block.first_index
        self._t_end_ns = block.t0_us * 1000 % _TICKS_NS

    def _check_layout(self, block: SamplesBlock) -> None:
        lay = self.layout
        assert lay is not None
        if (block.n_channels, block.fmt, block.period_ns) != (lay.n_channels, lay.fmt, lay.period_ns):
            raise LayoutChanged(
                f"the stream changed from {lay.n_channels} channels {lay.fmt_name} every {lay.period_ns} ns "
                f"to {block.n_channels} channels {C.FORMAT_NAMES.get(block.fmt, block.fmt)} every "
                f"{block.period_ns} ns; one recording holds one layout"
            )

    def _place(self, block: SamplesBlock, status: Status | None, now: float | None) -> Gap | None:
        """The gap before this block, if any (not yet emitted)."""
        period = block.period_ns
        jump = (block.first_index - self._next_index) % _U32
        if jump == 0 and not self._after_hello:
            return None  # the index continues: contiguous, whatever jitter the clock stamps carry
        if jump < _HALF:
            expected = (self._t_end_ns + jump * period) % _TICKS_NS
            off = (block.t0_us * 1000 - expected) % _TICKS_NS
            off = min(off, _TICKS_NS - off)
            # jitter, plus drift up to 100 ppm, capped: a clock that agrees only loosely modulo the
            # ticks period is no proof of a long loss
            tolerance = 2 * period + 1_000_000 + min(jump * period // 10_000, 50_000_000)
            if off <= tolerance:
                return Gap(self.pos, self.rows, jump, LOST, EXACT, block.first_index) if jump else None
        return self._new_stream(block, status, now)

    def _new_stream(self, block: SamplesBlock, status: Status | None, now: float | None) -> Gap:
        rate = self.layout.rate  # type: ignore[union-attr]
        # what can vouch for the gap's length, in ns: the device's uptime, when a STATUS came
        # between the two streams, and the host clock, live
        uptime_ns = None
        rebooted = False
        if status is not None and self._uptime is not None and status.uptime_ms != self._uptime:
            up = (status.uptime_ms - self._uptime) % _U32
            rebooted = up >= _HALF
            uptime_ns = up * 1_000_000
        host_ns = None
        if now is not None and self._arrival is not None:
            host_ns = max(0, round(((now - block.n_samples / rate) - self._arrival) * 1e9))
        if uptime_ns is not None and host_ns is not None and uptime_ns + _VOUCH_TOLERANCE_NS < host_ns:
            # a board that kept running counted at least the host's time; this one counted less: it
            # booted again (after a loss longer than it had been up, its uptime passed the old one)
            rebooted = True
        reason, timing, ns = REBOOT, UNKNOWN, 0
        if not rebooted:
            reason = RESTART
            d = (block.t0_us * 1000 - self._t_end_ns) % _TICKS_NS
            if d > _TICKS_NS - (2 * block.period_ns + 1_000_000):
                d = 0  # starts a hair before the old stream's end: rounding, not a 17-minute gap
            vouched = _vouched(d, uptime_ns, host_ns)
            if vouched is not None:
                timing, ns = DEVICE_CLOCK, vouched
        if timing == UNKNOWN and host_ns is not None:
            timing, ns = HOST_CLOCK, host_ns
        span = (ns * rate + 500_000_000) // 1_000_000_000
        return Gap(self.pos, self.rows, span, reason, timing, block.first_index)

    def _gap(self, gap: Gap) -> None:
        self.counts.gaps += 1
        self.counts.gap_instants += gap.span
        self.sink.on_gap(gap)
        self.pos += gap.span
        if gap.reason != LOST:  # a new stream
            self.counts.restarts += 1
            if gap.reason == REBOOT:
                self.counts.board_restarts += 1
            self._seg_pos = self.pos

    def _emit_marker(self, m: Marker) -> None:
        # relative to the next expected instant: exact across u32 index wraps
        pos = self.pos + _signed32(m.sample_index - self._next_index)
        self.sink.on_marker(MarkerEvent(max(pos, self._seg_pos), m.code, m.sample_index))
