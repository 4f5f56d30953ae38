"""The streaming run `picodaq record` and `picodaq stream` share: connect each board,
configure it, record into files and/or LSL with the live view and the keyboard,
ride out resets (--reconnect), stop on time, q or Ctrl-C, and report.

The commands turn their arguments into StreamOptions; run_stream does the rest.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import contracts as C
from ..errors import UsageError
from ..protocol.units import ADS1299_DEFAULT_GAIN
from ..recording.outputs import SUFFIXES, check_outputs, open_outputs
from ..transport.cpu_latency import CpuLatencyRequest, CpuLatencyUnavailable
from ..transport.link import Link
from ..transport.ports import PortInfo, attached_boards
from ..view.attach import open_view
from .args import FORMATS, SOURCES
from .connect import connect
from .console import channels_text, eprint, stats_path
from .lsl import LslOptions, check_lsl, describe, open_lsl
from .report import record_report

if TYPE_CHECKING:
    from ..protocol.messages import Hello
    from ..recording.config import StreamConfig
    from ..recording.group import RecordingGroup
    from ..recording.lsl import LslOutlet
    from ..recording.recorder import Recording
    from .live import KeyReader, LiveView


@dataclass(frozen=True)
class StreamOptions:
    """What record and stream ask of run_stream."""

    command: str  # "record" or "stream": named in the live view and on stderr
    ports: tuple[str | None, ...] = (None,)  # None: the board choose_port finds
    rate: int = 1000
    channels: int = 1  # a channel mask
    source: str = "ramp"  # a name from SOURCES
    fmt: str = "int16"  # a name from FORMATS
    samples_per_frame: int = 0  # 0: about 20 ms a frame
    gain: int = ADS1299_DEFAULT_GAIN
    seconds: float | None = None  # None: until Ctrl-C (or q)
    reconnect: bool = False
    mark_on_key: bool = False
    quiet: bool = False
    stats_json: str | None = None
    out: tuple[Path, ...] = ()
    overwrite: bool = False  # replace --out files that exist
    lsl: LslOptions | None = None
    view: str | None = None  # --view HOST:PORT: a live plot in the browser
    cpu_latency: int | None = None  # --cpu-latency US: a PM QoS request held while streaming

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, command: str, out: Sequence[Path] = (), lsl: LslOptions | None = None
    ) -> StreamOptions:
        """From the options args.add_stream_config defines."""
        return cls(
            command=command,
            ports=tuple(args.port or [None]),
            rate=args.rate,
            channels=args.channels,
            source=args.source,
            fmt=args.fmt or ("int24" if args.source == "ads1299" else "int16"),
            samples_per_frame=args.samples_per_frame or 0,
            gain=args.gain,
            seconds=args.seconds,
            reconnect=args.reconnect,
            mark_on_key=args.mark_on_key,
            quiet=args.quiet,
            stats_json=args.stats_json,
            out=tuple(out),
            view=getattr(args, "view", None),
            overwrite=getattr(args, "overwrite", False),
            lsl=lsl,
            cpu_latency=args.cpu_latency,
        )

    def config(self) -> StreamConfig:
        from ..recording.config import StreamConfig

        return StreamConfig(
            rate=self.rate,
            channel_mask=self.channels,
            source=SOURCES[self.source],
            fmt=FORMATS[self.fmt],
            samples_per_frame=self.samples_per_frame,
        )


class Interrupts:
    """Ctrl-C asks the recording to stop; it never cuts a file write in half. So do SIGTERM
    (`kill`, a service stopping) and SIGHUP (the terminal closed): they would otherwise end the
    process with its BDF never written and the board left streaming.

    The first signal sets `requested`; later ones only say that files are being saved."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.requested = False
        self.on_request: Callable[[], None] | None = None  # wakes whoever must act on it
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: object) -> None:
        if self.requested:
            eprint("picodaq: finishing the files; one moment")
        self.requested = True
        if self.on_request is not None:
            self.on_request()

    def __enter__(self) -> Interrupts:
        for sig in self.SIGNALS:
            self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


KEYS_LOOK = 0.5  # with --mark-on-key: the longest the run's thread waits for a key


@dataclass
class StopRequest:
    """Whether the boards should stop, read by each board's thread: a signal, q pressed, or the
    run's loop left (whatever happened there, every board stops and finishes its files)."""

    interrupts: Interrupts
    by_key: bool = False  # q: a stop asked for, so a short recording is no interruption
    leaving: bool = False
    wake: Callable[[], None] | None = None  # the boards' threads wait for data: this wakes them to stop

    def __call__(self) -> bool:
        return self.interrupts.requested or self.by_key or self.leaving

    def stop_by_key(self) -> None:
        self.by_key = True
        if self.wake is not None:
            self.wake()

    def leave(self) -> None:
        self.leaving = True
        if self.wake is not None:
            self.wake()


@dataclass
class Board:
    """One board of the run, once connected and configured."""

    label: str
    link: Link
    usb: PortInfo | None
    hello: Hello
    paths: list[Path]
    outlet: LslOutlet | None = None  # with --lsl


def board_labels(n: int) -> list[str]:
    """Names for the boards of one recording, in --port order: board1, board2, ..."""
    return [f"board{i + 1}" for i in range(n)]


def board_paths(paths: Sequence[Path], labels: list[str]) -> list[list[Path]]:
    """Each board's outputs. One board writes the files as named; several write one set each,
    the label before the suffix: run.npy -> run.board1.npy, run.board2.npy (and their
    run.board1.events.csv, ...)."""
    if len(labels) == 1:
        return [list(paths)]
    return [[p.with_name(f"{p.stem}.{label}{p.suffix}") for p in paths] for label in labels]


def run_stream(opts: StreamOptions) -> int:
    """Record one board, or several at once (a thread each, their own files, one host clock)."""
    from ..recording.group import RecordingGroup
    from ..recording.recorder import prepare_board
    from .live import KeyReader, LiveView, keys_hint, stop_hint

    if not opts.out and opts.lsl is None:
        raise UsageError("nothing to record into: give --out FILE (" + ", ".join(SUFFIXES) + ") or --lsl")
    check_lsl(opts.lsl)
    _check_ports(opts.ports)
    labels = board_labels(len(opts.ports))
    plans = board_paths(opts.out, labels)
    check_outputs([p for plan in plans for p in plan], stats=stats_path(opts.stats_json), overwrite=opts.overwrite)
    cfg = opts.config()
    _check_bdf_fmt(plans[0], cfg.fmt)
    _check_frame_fits(cfg, opts.fmt)

    with ExitStack() as stack:
        if opts.cpu_latency is not None:
            hold_cpu_latency(opts.cpu_latency, stack, opts.quiet)
        keys = stack.enter_context(KeyReader()) if opts.mark_on_key else None
        boards = []
        for label, port, paths in zip(labels, opts.ports, plans):
            link, usb = connect(port, stack)
            boards.append(Board(label, link, usb, prepare_board(link, cfg), paths))  # checked before any file is made
        stop = StopRequest(stack.enter_context(Interrupts()))
        # several boards: one host instant all their files are placed against
        clock_origin = time.time() if len(boards) > 1 else None
        recs = _open_recordings(opts, cfg, boards, clock_origin, stack)

        mode = LiveView.mode_for(opts.quiet)
        files = bool(opts.out)
        hint = keys_hint(files) if keys else stop_hint(files)
        title = _title(opts, cfg, boards)
        open_view(opts.view, recs, stack, title, opts.quiet)
        view = LiveView(recs, title, mode, opts.seconds, hint, labels=labels, files=files)
        for i, rec in enumerate(recs):
            rec.on_event = view.events_of(i)
        if mode == "plain":
            _announce(opts, cfg, boards, recs)
        group = RecordingGroup(list(zip(labels, recs)), opts.seconds, stop)
        stop.wake = stop.interrupts.on_request = group.nudge
        try:
            _run(group, view, keys, stop)
        finally:
            stop.leave()  # whatever happened here, every board stops and finishes its files
            group.join()
        crash = next((m.crash for m in group.members if m.crash is not None), None)
        if crash is not None:
            raise crash
        return record_report(group, clock_origin, opts.quiet, opts.stats_json, opts.seconds, stop.by_key)


def hold_cpu_latency(max_us: int, stack: ExitStack, quiet: bool) -> None:
    """--cpu-latency: hold the request while the stack is open; where it cannot be made, say why
    on stderr and stream all the same (the data matters more than how soon it arrives)."""
    request = CpuLatencyRequest(max_us)
    try:
        stack.enter_context(request)
    except CpuLatencyUnavailable as e:
        eprint(f"warning: {e}; streaming without it")
        return
    if not quiet:
        now = request.in_force_us()
        in_force = "" if now is None else f" (in force, the strictest of all requests: {now} us)"
        eprint(f"holding a CPU latency request of {max_us} us while streaming{in_force}")


def _open_recordings(
    opts: StreamOptions, cfg: StreamConfig, boards: list[Board], clock_origin: float | None, stack: ExitStack
) -> list[Recording]:
    """A Recording per board, its files open (and its LSL outlet, with --lsl); on a failure the
    files opened so far are closed."""
    from ..recording.recorder import Recording

    several = len(boards) > 1
    recs: list[Recording] = []
    try:
        for b in boards:
            rec = Recording(
                b.link,
                cfg,
                open_outputs(b.paths),
                reconnect=opts.reconnect,
                gain=opts.gain,
                find_port=_same_board_finder(b.usb),
                clock_origin=clock_origin,
            )
            rec.hello = b.hello
            recs.append(rec)
            stack.callback(_close_link_of, rec)
            if opts.lsl is not None:
                suffix = b.label if several else None
                b.outlet = open_lsl(opts.lsl, rec, b.hello, stack, gain=opts.gain, quiet=opts.quiet, suffix=suffix)
                if b.outlet is not None:
                    rec.batching = False  # LSL's timestamps want each read's arrival time
    except BaseException:
        for rec in recs:
            for o in rec.pipeline.outputs:
                o.close()
        raise
    return recs


def _title(opts: StreamOptions, cfg: StreamConfig, boards: list[Board]) -> str:
    if len(boards) > 1:
        return (
            f"picodaq {opts.command}: {len(boards)} boards, {cfg.n_channels} ch at {cfg.rate} Hz each, "
            f"{opts.source} {opts.fmt}"
        )
    hello = boards[0].hello
    return (
        f"picodaq {opts.command}: {cfg.n_channels} ch at {cfg.rate} Hz, {opts.source} {opts.fmt} "
        f"from {hello.platform} {hello.board_id}"
    )


def _announce(opts: StreamOptions, cfg: StreamConfig, boards: list[Board], recs: list[Recording]) -> None:
    """Off a terminal, where the live view is a line now and then: what is recorded into what."""
    until = f" for {opts.seconds:g} s" if opts.seconds else " until Ctrl-C"
    doing = "streaming" if opts.command == "stream" else "recording"
    sinks = [[str(p) for p in b.paths] + ([describe(b.outlet)] if b.outlet is not None else []) for b in boards]
    what = f"{channels_text(cfg.n_channels)} at {cfg.rate} Hz"
    if len(boards) == 1:
        hello = boards[0].hello
        eprint(
            f"{doing} {what} ({opts.source}, {opts.fmt}) from "
            f"{hello.platform} board {hello.board_id} into {', '.join(sinks[0])}{until}"
        )
        return
    eprint(f"{doing} {len(boards)} boards, {what} each ({opts.source}, {opts.fmt}){until}")
    for b, rec, sink in zip(boards, recs, sinks):
        eprint(f"{b.label}  {rec.url}: {b.hello.platform} board {b.hello.board_id} into {', '.join(sink)}")


def _run(group: RecordingGroup, view: LiveView, keys: KeyReader | None, stop: StopRequest) -> None:
    """Start every board and keep the live view and the keyboard until the recording is over."""
    from .live import key_action

    # This thread sleeps until there is something to do: a key, the view's next refresh (none
    # when quiet), the boards done. A signal's handler runs here and wakes the boards itself.
    interval = view.interval
    with view:
        group.start()
        next_tick = 0.0
        while True:
            wait = None if interval is None else max(0.0, next_tick - time.monotonic())
            if keys is not None:
                # the terminal and the boards cannot be waited for at once: look at the boards
                # between keys at least twice a second
                if keys.wait(KEYS_LOOK if wait is None else min(wait, KEYS_LOOK)):
                    for ch in keys.read():
                        action, code = key_action(ch)
                        if action == "mark":
                            group.mark(code)
                        elif action == "stop":
                            stop.stop_by_key()
                if group.wait_recorded(0):
                    break
            elif group.wait_recorded(wait):
                break
            if interval is not None and time.monotonic() >= next_tick:
                view.tick(group.elapsed)
                next_tick = time.monotonic() + interval
        view.tick(group.elapsed)


def _check_ports(ports: Sequence[str | None]) -> None:
    seen: dict[str, str] = {}
    for p in ports:
        if p is None:
            continue
        key = p.lower() if "://" in p else os.path.realpath(p)
        if key in seen:
            raise UsageError(f"--port {p}: the same board as --port {seen[key]}; give each board once")
        seen[key] = p


def _check_frame_fits(cfg: StreamConfig, fmt: str) -> None:
    """--samples-per-frame beyond one frame's payload, refused before the board is touched."""
    most = cfg.max_frame_samples()
    if cfg.samples_per_frame > most:
        raise UsageError(
            f"--samples-per-frame {cfg.samples_per_frame}: a SAMPLES frame holds at most {most} instants "
            f"of {channels_text(cfg.n_channels)} in {fmt} "
            f"({C.MAX_PAYLOAD_BY_TYPE[C.MSG_SAMPLES]}-byte payload)"
        )


def _check_bdf_fmt(paths: list[Path], fmt: int) -> None:
    if fmt == C.FMT_INT32 and any(p.suffix.lower() == ".bdf" for p in paths):
        raise UsageError(
            "BDF stores 24-bit samples: record .bdf with --fmt int16 or int24 (int32 fits .npy, .csv and .tlv)"
        )


def _same_board_finder(found: PortInfo | None) -> Callable[[], str | None] | None:
    """For a board found by USB id: after an unplug it may come back under another name
    (ttyACM0 -> ttyACM1); its USB serial number finds it."""
    if found is None or not found.serial_number:
        return None
    serial_number = found.serial_number

    def find() -> str | None:
        for b in attached_boards():
            if b.serial_number == serial_number:
                return b.device
        return None

    return find


def _close_link_of(rec: Recording) -> None:
    if rec.link is not None:  # the recording's own: it may have reopened the port
        rec.link.close()
