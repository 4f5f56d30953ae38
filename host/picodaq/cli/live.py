"""What `picodaq record` shows while it records, and the keyboard it listens to.

- On a terminal (stderr is a TTY): a rich live panel, redrawn 4 times a second.
- Otherwise (a pipe, a log file): one plain line every PLAIN_EVERY seconds.
- `--quiet`: nothing until the summary.

Events (a lost link, a reconnect, a board reset) are printed as lines above the
panel in every mode but quiet, where they are kept for the summary.

Several boards recorded at once get a row each: a table instead of the panel, and
one plain line per board prefixed with its label. Events come from the boards'
threads; printing them is serialised.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import UsageError
from ..recording.pipeline import pool_hit_rate

if TYPE_CHECKING:
    from rich.panel import Panel
    from rich.table import Table

    from ..recording.recorder import Event, Recording

PLAIN_EVERY = 2.0
RICH_EVERY = 0.25  # the panel's refresh
_WINDOW = 1.0  # seconds over which the rates are measured


@dataclass
class Snapshot:
    elapsed: float
    samples: int
    samples_per_s: float  # per channel (sample instants per second)
    mb_per_s: float
    frames: int
    crc_errors: int
    header_errors: int
    samples_lost: int
    gaps: int
    ring_fill: float | None  # high water / capacity of the device ring, this stream
    ring_text: str
    device_dropped: int
    pool_hit_rate: float | None
    markers: int
    last_marker: str
    state: str


class Meter:
    """Rates over the last second, from the recording's running counters."""

    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self._hist: list[tuple[float, int, int]] = []

    def snapshot(self, elapsed: float) -> Snapshot:
        rec = self.rec
        st = rec.receiver.stats
        now = time.monotonic()
        nbytes = rec.bytes_in
        self._hist.append((now, st.samples, nbytes))
        while len(self._hist) > 2 and now - self._hist[1][0] >= _WINDOW:
            self._hist.pop(0)
        t0, s0, b0 = self._hist[0]
        dt = now - t0
        # nothing sensible to say before a fifth of a second has been measured
        sps = (st.samples - s0) / dt if dt >= 0.2 else 0.0
        mbs = (nbytes - b0) / dt / 1e6 if dt >= 0.2 else 0.0
        status = rec.receiver.status
        fill, ring = None, "-"
        if status is not None and status.ring_capacity:
            fill = status.ring_high_water / status.ring_capacity
            ring = f"{fill:.0%} (high water {status.ring_high_water}/{status.ring_capacity})"
        tc = rec.pipeline.timeline.counts
        lay = rec.pipeline.layout
        lm = rec.pipeline.last_marker
        last = f"code {lm.code} at {lm.pos / lay.rate:.3f} s" if lm is not None and lay is not None else ""
        return Snapshot(
            elapsed,
            st.samples,
            sps,
            mbs,
            st.frames_ok,
            st.crc_errors,
            st.header_errors,
            st.samples_lost,
            tc.gaps,
            fill,
            ring,
            rec.device_dropped,
            pool_hit_rate(rec.receiver),
            tc.markers,
            last,
            rec.state,
        )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def plain_line(s: Snapshot) -> str:
    return (
        f"{s.elapsed:7.1f} s  {s.samples_per_s:9.0f} samples/s/ch  {s.mb_per_s:7.3f} MB/s  "
        f"frames {s.frames}  crc {s.crc_errors}  lost {s.samples_lost}  ring {_pct(s.ring_fill)}  "
        f"drops {s.device_dropped}  pool {_pct(s.pool_hit_rate)}  markers {s.markers}  [{s.state}]"
    )


class LiveView:
    """mode: "rich", "plain" or "quiet"; `mode_for()` picks rich or plain by whether stderr is a TTY.

    rec: one recording, or several (then labels names each, e.g. "board1")."""

    def __init__(
        self,
        rec: Recording | Sequence[Recording],
        title: str,
        mode: str,
        seconds: float | None = None,
        keys_hint: str = "",
        stream: TextIO | None = None,
        labels: Sequence[str] = (),
        files: bool = True,
    ) -> None:
        self.recs: list[Recording] = list(rec) if isinstance(rec, (list, tuple)) else [rec]  # type: ignore[list-item]
        self.rec = self.recs[0]
        self.labels = list(labels) or [f"board{i + 1}" for i in range(len(self.recs))]
        self.title = title
        self.mode = mode
        self.seconds = seconds
        self.keys_hint = keys_hint
        self.files = files  # the recording writes files (record), or only publishes (stream)
        self.stream = stream or sys.stderr
        self.meters = [Meter(r) for r in self.recs]
        self.meter = self.meters[0]
        self._live: Any = None
        self._next_plain = 1.0
        self._lock = threading.Lock()  # events come from the boards' threads
        self.last: Snapshot | None = None
        self.lasts: list[Snapshot | None] = [None] * len(self.recs)

    @property
    def several(self) -> bool:
        return len(self.recs) > 1

    @staticmethod
    def mode_for(quiet: bool, stream: TextIO | None = None) -> str:
        if quiet:
            return "quiet"
        s = stream or sys.stderr
        return "rich" if s.isatty() else "plain"

    def __enter__(self) -> LiveView:
        if self.mode == "rich":
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._live = Live(
                self._renderable(),
                console=console,
                auto_refresh=False,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._live is not None:
                for snap in self.lasts:
                    if snap is not None:
                        snap.state = (
                            ("saving" if self.several else "finished; saving files") if self.files else "finished"
                        )
                self._live.update(self._renderable(), refresh=True)
                self._live.__exit__(None, None, None)
                self._live = None

    @property
    def interval(self) -> float | None:
        """How often tick() has something to show: 4 times a second on a terminal, every
        PLAIN_EVERY seconds as plain lines, never when quiet."""
        return None if self.mode == "quiet" else RICH_EVERY if self.mode == "rich" else PLAIN_EVERY

    def tick(self, elapsed: float) -> None:
        if self.mode == "quiet":
            return
        self.lasts = [m.snapshot(elapsed) for m in self.meters]
        self.last = self.lasts[0]
        with self._lock:
            if self._live is not None:
                self._live.update(self._renderable(), refresh=True)
            elif self.mode == "plain" and elapsed >= self._next_plain:
                self._next_plain = elapsed + PLAIN_EVERY
                for label, snap in zip(self.labels, self.lasts):
                    assert snap is not None
                    self._print(f"{label}  {plain_line(snap)}" if self.several else plain_line(snap))

    def event(self, ev: Event, label: str = "") -> None:
        if self.mode == "quiet":
            return
        text = f"{ev.elapsed:7.1f} s  " + (f"{label}: " if label else "") + ev.text
        with self._lock:
            if self._live is not None:
                self._live.console.print(text, style="yellow" if ev.warning else None, markup=False, highlight=False)
            else:
                self._print(text)

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:  # nobody reads the view any more (`2>&1 | head`): keep recording
            self.mode = "quiet"

    def events_of(self, i: int) -> Callable[[Event], None]:
        """The event callback for recording i (its label in front when there are several)."""
        label = self.labels[i] if self.several else ""
        return lambda ev: self.event(ev, label)

    def _renderable(self) -> Table | Panel:
        return self._render_table() if self.several else self._render(self.last)

    def _render_table(self) -> Table:
        from rich.table import Table

        first = next((s for s in self.lasts if s is not None), None)
        of = f" of {self.seconds:g} s" if self.seconds else ""
        caption = f"elapsed {first.elapsed:.1f} s{of}" if first is not None else "starting"
        t = Table(
            title=self.title,
            caption=caption,
            caption_justify="left",
            expand=False,
            box=None,
            padding=(0, 1, 0, 0),
            pad_edge=False,
            header_style="bold underline",
        )
        # compact headers: a row per board must fit an 80-column terminal
        for name in (
            "board",
            "samples/s",
            "received",
            "MB/s",
            "CRC",
            "lost",
            "gaps",
            "ring",
            "drops",
            "markers",
            "state",
        ):
            t.add_column(name, justify="left" if name in ("board", "state") else "right", no_wrap=True)
        for label, s in zip(self.labels, self.lasts):
            if s is None:
                t.add_row(label, *[""] * 9, "starting")
                continue
            style = {"streaming": "green", "reconnecting": "bold red"}.get(s.state, "yellow")
            t.add_row(
                label,
                f"{s.samples_per_s:,.0f}",
                f"{s.samples:,}",
                f"{s.mb_per_s:.3f}",
                str(s.crc_errors),
                f"{s.samples_lost:,}",
                str(s.gaps),
                _pct(s.ring_fill),
                f"{s.device_dropped:,}",
                str(s.markers),
                f"[{style}]{s.state}[/]",
            )
        t.caption = f"{caption}   ·   {self.keys_hint or stop_hint(self.files)}"
        return t

    def _render(self, s: Snapshot | None) -> Panel:
        from rich.panel import Panel
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", justify="right")
        t.add_column()
        if s is None:
            t.add_row("state", "starting")
        else:
            of = f" of {self.seconds:g} s" if self.seconds else ""
            t.add_row("elapsed", f"{s.elapsed:.1f} s{of}")
            t.add_row("samples/s", f"{s.samples_per_s:,.0f} per channel   ({s.samples:,} received)")
            t.add_row("link", f"{s.mb_per_s:.3f} MB/s   {s.frames:,} frames")
            t.add_row("errors", f"{s.crc_errors} CRC   {s.header_errors} header")
            t.add_row("lost", f"{s.samples_lost:,} samples   {s.gaps} gaps")
            t.add_row("device ring", f"{s.ring_text}   {s.device_dropped:,} dropped")
            t.add_row("pool hit rate", _pct(s.pool_hit_rate))
            t.add_row("markers", f"{s.markers}" + (f"   last: {s.last_marker}" if s.last_marker else ""))
            style = {"streaming": "green", "reconnecting": "bold red"}.get(s.state, "yellow")
            t.add_row("state", f"[{style}]{s.state}[/]")
        subtitle = self.keys_hint or stop_hint(self.files)
        return Panel(t, title=self.title, subtitle=subtitle, expand=False)


class KeyReader:
    """Single key presses from the terminal on stdin, without echo or Enter.

    The terminal is put in cbreak mode (Ctrl-C still interrupts) and restored on exit."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdin
        self._fd = -1
        self._saved: Any = None

    def __enter__(self) -> KeyReader:
        try:
            fd = self.stream.fileno()
        except (AttributeError, ValueError, OSError):
            fd = -1
        if fd < 0 or not os.isatty(fd):
            raise UsageError("--mark-on-key needs a terminal on stdin")
        self._fd = fd
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def wait(self, timeout: float | None) -> bool:
        """Wait up to timeout for a key press; True when there is one to read()."""
        return bool(select.select([self._fd], [], [], timeout)[0])

    def read(self) -> str:
        """The keys pressed since the last call ("" if none); never blocks."""
        out = []
        while select.select([self._fd], [], [], 0)[0]:
            data = os.read(self._fd, 64)
            if not data:
                break
            out.append(data.decode("utf-8", "replace"))
        return "".join(out)


def key_action(key: str) -> tuple[str, int]:
    """("mark", code), ("stop", 0) or ("", 0) for one key."""
    if key.isdigit() and key.isascii():
        return "mark", int(key)
    if key in ("m", "M", " ", "\r", "\n"):
        return "mark", 1
    if key in ("q", "Q"):
        return "stop", 0
    return "", 0


KEYS_HINT = "keys: 0-9 mark with that code · m/space mark 1 · q stop & save"


def stop_hint(files: bool) -> str:
    return "Ctrl-C stops and saves" if files else "Ctrl-C stops"


def keys_hint(files: bool) -> str:
    return KEYS_HINT if files else KEYS_HINT.replace("q stop & save", "q stop")
