"""The `picodaq` command line.

Commands are a table from name to (handler, argument setup, help), as in
mpremote; `main()` turns every PicodaqError into one line on stderr and exit
status 1, and always lets go of the board.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from . import contracts as C
from .cli_bench import args_bench, do_bench
from .cli_flash import args_flash, do_flash
from .cli_stream import add_lsl_args, args_stream, check_lsl, describe, do_stream, open_lsl
from .cli_serve import args_serve, do_serve
from .errors import ContractMismatch, PicodaqError, UsageError
from .link import Link
from .outputs import SUFFIXES, check_outputs, open_outputs
from .ports import PortInfo, attached_boards, emulated_boards, port_problem, serial_ports
from .units import ADS1299_DEFAULT_GAIN, ADS1299_GAINS

if TYPE_CHECKING:
    from .lsl import LslOutlet
    from .recorder import Recording, StreamConfig
    from .recording_group import RecordingGroup

SOURCES = {name: code for code, name in C.SOURCE_NAMES.items()}
FORMATS = {name: code for code, name in C.FORMAT_NAMES.items()}
# --stats-json keys that only a live recording has (a replay of its capture has all the others)
HOST_ONLY_STATS = ("seconds", "reconnects", "board_resets", "device_samples_dropped", "pool")


def comparable_stats(stats: dict) -> dict:
    """The counters a replay of a recording's .tlv reproduces (host-side ones left out)."""
    return {k: v for k, v in stats.items() if k not in HOST_ONLY_STATS}


def eprint(*args: object, sep: str = " ", end: str = "\n") -> None:
    """A line on stderr; if nobody reads stderr any more (`2>&1 | head`), the work goes on without it."""
    try:
        print(*args, sep=sep, end=end, file=sys.stderr, flush=True)
    except BrokenPipeError:
        pass


# -- argument types: each turns a bad value into one clear line ------------------

def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return v


def positive_int(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def channel_mask(text: str) -> int:
    """`8` means channels 0-7; `0,2,5` or `0-3,6` name channels."""
    try:
        if "," not in text and "-" not in text:
            n = int(text)
            if not 1 <= n <= C.MAX_CHANNELS:
                raise argparse.ArgumentTypeError(f"channel count must be 1..{C.MAX_CHANNELS}, got {n}")
            return (1 << n) - 1
        mask = 0
        for part in text.split(","):
            lo, dash, hi = part.partition("-")
            a, b = int(lo), int(hi) if dash else int(lo)  # "0-" has no end: int("") refuses it
            if not (0 <= a < C.MAX_CHANNELS and 0 <= b < C.MAX_CHANNELS):
                raise argparse.ArgumentTypeError(f"channels must be within 0..{C.MAX_CHANNELS - 1}: {part!r}")
            if a > b:
                raise argparse.ArgumentTypeError(f"a channel range goes from low to high: {part!r} (write {b}-{a})")
            for c in range(a, b + 1):
                if mask >> c & 1:  # the board sends each channel once: a repeat is a typo
                    raise argparse.ArgumentTypeError(f"channel {c} is named twice in {text!r}")
                mask |= 1 << c
        return mask
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a channel count or list: {text!r}") from None


def mask_channels(mask: int) -> tuple[int, ...]:
    return tuple(c for c in range(C.MAX_CHANNELS) if mask >> c & 1)


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        eprint(f"{self.prog}: {message}")
        raise SystemExit(2)


# -- connecting -----------------------------------------------------------------

def connect(args: argparse.Namespace, stack: ExitStack) -> Link:
    """--port, else the one attached board, else an emulated board (said on stderr)."""
    link, args.found_board = connect_port(getattr(args, "port", None), stack)
    return link


def connect_port(port: str | None, stack: ExitStack) -> tuple[Link, PortInfo | None]:
    """A Link to port, else to the one attached board (also returned, to find it again after an
    unplug), else to a freshly flashed emulated board; closed when the stack unwinds."""
    found = None
    if not port:
        boards = attached_boards()
        if len(boards) == 1:
            port = boards[0].device
            found = boards[0]
            eprint(f"picodaq: using the board on {port}")
        else:
            from picodaq_hil.emulator import EmulatedBoard

            if boards:
                eprint(f"picodaq: {len(boards)} boards attached ({', '.join(b.device for b in boards)}); "
                       "pass --port to pick one. Using an emulated board instead.")
            from .flash import Flasher

            board = EmulatedBoard(unpaced=False)
            stack.callback(board.stop)
            board.start()
            Flasher(board.port).flash()  # an emulated board starts empty, as a new Pico does
            port = board.port
            eprint(f"picodaq: no board attached; using an emulated board on {port}, freshly flashed")
    if why := port_problem(port):
        raise UsageError(f"cannot open port {port}: {why}")
    link = Link.open(port)
    stack.callback(link.close)
    return link, found


class Interrupts:
    """Ctrl-C asks the recording to stop; it never cuts a file write in half. So do SIGTERM
    (`kill`, a service stopping) and SIGHUP (the terminal closed): they would otherwise end the
    process with its BDF never written and the board left streaming.

    The first signal sets `requested`; later ones only say that files are being saved."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: object) -> None:
        if self.requested:
            eprint("picodaq: finishing the files; one moment")
        self.requested = True

    def __enter__(self) -> "Interrupts":
        for sig in self.SIGNALS:
            self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


# -- commands -------------------------------------------------------------------

def do_ports(args: argparse.Namespace) -> int:
    rows = serial_ports() + emulated_boards()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    if not rows:
        print("no serial ports found (`picodaq emulate` starts an emulated board)")
        return 0
    print(f"  {'PORT':<40} {'KIND':<9} DESCRIPTION")
    for r in rows:
        mark = "*" if r.is_board else " "
        kind = "emulated" if r.emulated else ("board" if r.is_board else "")
        serial_no = f" (serial {r.serial_number})" if r.serial_number and not r.emulated else ""
        print(f"{mark} {r.device:<40} {kind:<9} {r.description}{serial_no}")
    print("* a board picodaq can talk to (USB VID 0x2E8A, or an emulated board still running)")
    return 0


def _duration(ms: int) -> str:
    s = ms // 1000
    h, m = divmod(s // 60, 60)
    return (f"{h} h {m:02d} min {s % 60:02d} s" if h else f"{m} min {s % 60:02d} s" if m
            else f"{ms / 1000:.1f} s")


def do_info(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        link = connect(args, stack)
        link.stop(wait_status=0.3)
        hello = link.get_info(check_contract=False)
        status = link.get_status()
        ok = hello.contract_hash == C.CONTRACT_HASH
        if args.json:
            print(json.dumps({"port": link.url, "hello": hello.as_dict(), "status": status.as_dict(),
                              "host_contract_hash": f"0x{C.CONTRACT_HASH:08X}", "contract_ok": ok}, indent=2))
        else:
            h = hello.as_dict()
            fill = status.ring_high_water / status.ring_capacity if status.ring_capacity else 0.0
            print(f"port            {link.url}")
            print(f"board           {h['platform']}, unique id {h['board_id']}")
            print(f"firmware        version {h['firmware_version']}, protocol {hello.protocol_version}")
            print(f"contract        {h['contract_hash']} "
                  + ("(matches this host)" if ok else f"(this host has 0x{C.CONTRACT_HASH:08X})"))
            print(f"capabilities    up to {hello.max_channels} channels, "
                  f"{hello.max_rate:,} samples/s across all channels")
            print(f"source          {h['source']} (as last configured)")
            print(f"state           {status.state_name}; last error: {status.error_name}")
            print(f"uptime          {_duration(status.uptime_ms)}; {status.frames_sent:,} frames sent")
            print(f"ring            {status.ring_capacity:,} instants; high water {status.ring_high_water:,} "
                  f"({fill:.0%}); {status.samples_dropped:,} instants dropped in the last stream")
            print(f"free heap       {status.free_heap:,} bytes")
        if not ok:
            raise ContractMismatch(hello.contract_hash, C.CONTRACT_HASH)
        return 0


def _write_stats(target: str | None, stats: dict) -> None:
    if not target:
        return
    text = json.dumps(stats, indent=2, sort_keys=True)
    if target == "-":
        print(text, flush=True)
    else:
        try:
            Path(target).write_text(text + "\n")
        except OSError as e:
            raise UsageError(f"{target}: cannot write the stats: {e.strerror or e}") from None


def _channels(n: int) -> str:
    return f"{n} channel{'s' * (n != 1)}"


def _summary(stats: dict, seconds: float, files: list[str], *, layout=None, status=None,
             notes: list[str] | tuple[str, ...] = (), indent: str = "") -> None:
    def eprint(*a: object) -> None:  # noqa: F811 (each line indented: one board among several)
        try:
            print(indent, *a, sep="", file=sys.stderr, flush=True)
        except BrokenPipeError:  # as the module's eprint: nobody reads stderr any more
            pass

    per_ch = stats["samples"]
    what = (f"{_channels(layout.n_channels)} at {layout.rate} Hz ({layout.source_name}, {layout.fmt_name})"
            if layout else "no samples")
    eprint(f"received {what}: {per_ch:,} instants in {seconds:.2f} s, "
           f"{stats.get('duration_s', 0):.3f} s of recording")
    eprint(f"link     {stats['frames_ok']:,} frames; {stats['crc_errors']} CRC errors, "
           f"{stats['header_errors']} header errors, {stats['decode_errors']} decode errors, "
           f"{stats['skipped_bytes']} bytes skipped, {stats['seq_lost']} frames lost")
    eprint(f"gaps     {stats['samples_lost']:,} samples lost, {stats.get('gaps', 0)} gaps "
           f"({stats.get('stream_restarts', 0)} stream restarts, {stats.get('board_restarts', 0)} board restarts)"
           + (f", {stats['reconnects']} reconnects" if "reconnects" in stats else ""))
    if status is not None:
        eprint(f"device   {stats.get('device_samples_dropped', status.samples_dropped):,} instants dropped on "
               f"the board; ring high water {status.ring_high_water}/{status.ring_capacity}")
    eprint(f"markers  {stats.get('markers', 0)}")
    for n in notes:
        eprint(f"warning  {n}")
    for f in files:
        eprint(f"wrote    {f}")


def _stats_path(args: argparse.Namespace) -> Path | None:
    """--stats-json as a file to check (None for none, or - for stdout)."""
    return Path(args.stats_json) if args.stats_json and args.stats_json != "-" else None


def _check_frame_fits(cfg: StreamConfig, args: argparse.Namespace) -> None:
    """--samples-per-frame beyond one frame's payload, refused before the board is touched."""
    most = cfg.max_frame_samples()
    if cfg.samples_per_frame > most:
        raise UsageError(f"--samples-per-frame {cfg.samples_per_frame}: a SAMPLES frame holds at most {most} instants "
                         f"of {_channels(cfg.n_channels)} in {args.fmt} "
                         f"({C.MAX_PAYLOAD_BY_TYPE[C.MSG_SAMPLES]}-byte payload)")


def _check_bdf_fmt(paths: list[Path], fmt: int) -> None:
    if fmt == C.FMT_INT32 and any(p.suffix.lower() == ".bdf" for p in paths):
        raise UsageError("BDF stores 24-bit samples: record .bdf with --fmt int16 or int24 "
                         "(int32 fits .npy, .csv and .tlv)")


def _same_board_finder(found) -> Callable[[], str | None] | None:
    """For a board found by USB id: after an unplug it may come back under another name
    (ttyACM0 -> ttyACM1); its USB serial number finds it."""
    if found is None or not found.serial_number:
        return None

    def find() -> str | None:
        for b in attached_boards():
            if b.serial_number == found.serial_number:
                return b.device
        return None
    return find


def board_labels(n: int) -> list[str]:
    """Names for the boards of one recording, in --port order: board1, board2, ..."""
    return [f"board{i + 1}" for i in range(n)]


def board_paths(paths: list[Path], labels: list[str]) -> list[list[Path]]:
    """Each board's outputs. One board writes the files as named; several write one set each,
    the label before the suffix: run.npy -> run.board1.npy, run.board2.npy (and their
    run.board1.events.csv, ...)."""
    if len(labels) == 1:
        return [list(paths)]
    return [[p.with_name(f"{p.stem}.{label}{p.suffix}") for p in paths] for label in labels]


def _check_ports(ports: list[str | None]) -> None:
    seen: dict[str, str] = {}
    for p in ports:
        if p is None:
            continue
        key = p.lower() if "://" in p else os.path.realpath(p)
        if key in seen:
            raise UsageError(f"--port {p}: the same board as --port {seen[key]}; give each board once")
        seen[key] = p


def _close_link_of(rec: Recording) -> None:
    if rec.link is not None:  # the recording's own: it may have reopened the port
        rec.link.close()


def do_record(args: argparse.Namespace) -> int:
    """Record one board, or several at once (a thread each, their own files, one host clock)."""
    from .live import KEYS_HINT, KeyReader, LiveView, key_action
    from .recorder import Recording, StreamConfig, prepare_board
    from .recording_group import RecordingGroup

    if not args.out and getattr(args, "lsl", None) is None:
        raise UsageError("nothing to record into: give --out FILE (" + ", ".join(SUFFIXES) + ") or --lsl")
    check_lsl(args)
    ports: list[str | None] = list(args.port or [None])
    _check_ports(ports)
    labels = board_labels(len(ports))
    plans = board_paths([Path(p) for p in args.out or []], labels)
    check_outputs([p for plan in plans for p in plan], stats=_stats_path(args))
    cfg = StreamConfig(rate=args.rate, channel_mask=args.channels, source=SOURCES[args.source],
                       fmt=FORMATS[args.fmt], samples_per_frame=args.samples_per_frame or 0)
    _check_bdf_fmt(plans[0], cfg.fmt)
    _check_frame_fits(cfg, args)
    several = len(ports) > 1

    with ExitStack() as stack:
        keys = stack.enter_context(KeyReader()) if args.mark_on_key else None
        prepared = []
        for port in ports:
            link, found = connect_port(port, stack)
            prepared.append((link, found, prepare_board(link, cfg)))  # checked before any file is made
        intr = stack.enter_context(Interrupts())
        # several boards: one host instant all their files are placed against
        clock_origin = time.time() if several else None
        recs: list[Recording] = []
        outlets: list[LslOutlet] = []
        try:
            for label, (link, found, hello), paths in zip(labels, prepared, plans):
                rec = Recording(link, cfg, open_outputs(paths), reconnect=args.reconnect, gain=args.gain,
                                find_port=_same_board_finder(found), clock_origin=clock_origin)
                rec.hello = hello
                recs.append(rec)
                stack.callback(_close_link_of, rec)
                lsl = open_lsl(args, rec, hello, stack, suffix=label if several else None)
                if lsl is not None:
                    outlets.append(lsl)
        except BaseException:
            for rec in recs:
                for o in rec.pipeline.outputs:
                    o.close()
            raise

        hello = prepared[0][2]
        command = getattr(args, "command", None) or "record"
        if several:
            title = (f"picodaq {command}: {len(recs)} boards, {cfg.n_channels} ch at {cfg.rate} Hz each, "
                     f"{args.source} {args.fmt}")
        else:
            title = (f"picodaq {command}: {cfg.n_channels} ch at {cfg.rate} Hz, {args.source} {args.fmt} "
                     f"from {hello.platform} {hello.board_id}")
        mode = LiveView.mode_for(args.quiet)
        view = LiveView(recs, title, mode, args.seconds, KEYS_HINT if keys else "Ctrl-C stops and saves",
                        labels=labels)
        for i, rec in enumerate(recs):
            rec.on_event = view.events_of(i)
        if mode == "plain":
            until = f" for {args.seconds:g} s" if args.seconds else " until Ctrl-C"
            doing = "streaming" if command == "stream" else "recording"
            sinks = [[str(p) for p in paths] + ([describe(o)] if o is not None else [])
                     for paths, o in zip(plans, outlets or [None] * len(plans))]
            if not several:
                eprint(f"{doing} {_channels(cfg.n_channels)} at {cfg.rate} Hz ({args.source}, {args.fmt}) from "
                       f"{hello.platform} board {hello.board_id} into {', '.join(sinks[0])}{until}")
            else:
                eprint(f"{doing} {len(recs)} boards, {_channels(cfg.n_channels)} at {cfg.rate} Hz each "
                       f"({args.source}, {args.fmt}){until}")
                for label, rec, (_, _, h), sink in zip(labels, recs, prepared, sinks):
                    eprint(f"{label}  {rec.url}: {h.platform} board {h.board_id} into {', '.join(sink)}")
        stop_key = [False]
        abort = [False]
        group = RecordingGroup(list(zip(labels, recs)), args.seconds,
                               lambda: intr.requested or stop_key[0] or abort[0])

        def poll() -> None:
            for ch in keys.read():  # type: ignore[union-attr]
                action, code = key_action(ch)
                if action == "mark":
                    group.mark(code)
                elif action == "stop":
                    stop_key[0] = True

        try:
            with view:
                group.start()
                next_tick = 0.0
                while not group.wait_recorded(0.05):
                    if keys:
                        poll()
                    if time.monotonic() >= next_tick:
                        view.tick(group.elapsed)
                        next_tick = time.monotonic() + 0.25
                view.tick(group.elapsed)
        finally:
            abort[0] = True  # whatever happened here, every board stops and finishes its files
            group.join()
        crash = next((m.crash for m in group.members if m.crash is not None), None)
        if crash is not None:
            raise crash
        return _record_report(args, group, clock_origin, stop_key[0])


def _record_report(args: argparse.Namespace, group: RecordingGroup, clock_origin: float | None,
                   stopped_by_key: bool) -> int:
    """The summary, the --stats-json, the failures; the exit status."""
    several = len(group.members) > 1
    for m in group.members:
        r = m.result
        if r is None:
            continue
        if not args.quiet:
            if several:
                eprint(f"{m.label}  {m.rec.url}" + (f" ({r.hello.platform} board {r.hello.board_id})"
                                                     if r.hello else ""))
            _summary(r.stats, r.seconds, r.outputs, layout=m.rec.pipeline.layout, status=r.status,
                     notes=r.warnings, indent="  " if several else "")
        else:
            for n in r.warnings:
                eprint(f"picodaq: warning: {m.label + ': ' if several else ''}{n}")
    if several:
        boards: dict[str, Any] = {}
        for m in group.members:
            entry: dict[str, Any] = {"port": m.rec.url, "ended": m.ended,
                                     "error": str(m.failure) if m.failure else None}
            if m.result is not None:
                lay = m.rec.pipeline.layout
                entry.update(m.result.stats, board_id=m.result.hello.board_id if m.result.hello else None,
                             outputs=m.result.outputs,
                             start_time=lay.start_time if lay else None,
                             start_offset_s=round(lay.start_time - clock_origin, 6)
                             if lay and lay.start_time is not None and clock_origin is not None else None)
            boards[m.label] = entry
        _write_stats(args.stats_json, {"clock_origin": clock_origin, "boards": boards})
    elif group.members[0].result is not None:
        _write_stats(args.stats_json, group.members[0].result.stats)

    status = 0
    for m in group.members:
        who = f"{m.label} ({m.rec.url}): " if several else ""
        if m.failure is not None:
            if m.result is None:
                saved = ""
            elif m.ended == "failed":
                saved = "; recording stopped, what was received is saved"
            else:  # an output dropped on the way: the others ran to the end
                saved = "; the other files hold the whole recording" if m.result.outputs else ""
            eprint(f"picodaq: {who}{m.failure}{saved}")
            status = 1
        elif m.result is not None and m.result.ended == "lost":
            eprint(f"picodaq: {who}the board on {m.rec.url} did not come back before the recording ended; "
                   "what was received is saved")
            status = 1
    if status:
        return status
    if any(m.ended == "stopped" for m in group.members) and args.seconds and not stopped_by_key:
        return 130  # Ctrl-C before the time was up: saved, but shorter than asked
    return 0


class ReplayProgress:
    """How far a long replay is, on stderr: said once it has run a second, then every second (a line
    rewritten in place on a terminal, a new line every PLAIN_EVERY seconds otherwise)."""

    PLAIN_EVERY = 5.0

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.start = time.monotonic()
        self.next = self.start + 1.0
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + (1.0 if self.tty else self.PLAIN_EVERY)
        text = (f"replaying: {done / self.total:.0%} ({done / 1e6:,.0f} of {self.total / 1e6:,.0f} MB, "
                f"{now - self.start:.0f} s)")
        if self.tty:
            try:
                sys.stderr.write(f"\r{text}\x1b[K")
                sys.stderr.flush()
            except BrokenPipeError:
                pass
        else:
            eprint(text)
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            eprint("\r\x1b[K", end="")


def _replay_notes(src: Path, args: argparse.Namespace, stats: dict, layout) -> list[str]:
    """What the user should know about the capture they replayed, beyond the counters."""
    notes = []
    if args.channels and layout is not None and len(mask_channels(args.channels)) != layout.n_channels:
        notes.append(f"--channels names {len(mask_channels(args.channels))} channels but the capture holds "
                     f"{layout.n_channels}: labelled ch0..ch{layout.n_channels - 1} instead")
    size = src.stat().st_size
    if not size:
        notes.append(f"{src}: empty: nothing was captured")
    elif not stats["frames_ok"]:
        notes.append(f"{src}: no picodaq frame in its {size:,} bytes: not a capture "
                     "(`picodaq record --out NAME.tlv` writes one), or damaged beyond reading")
    elif layout is not None and layout.source is None:
        notes.append(f"{src}: the capture holds no HELLO (it starts mid-stream), so its source is unknown and "
                     "values are counts; --source names it")
    return notes


def do_replay(args: argparse.Namespace) -> int:
    from .pipeline import check_capture, replay

    src = Path(args.file)
    check_capture(src)
    paths = [Path(p) for p in args.out or []]
    check_outputs(paths, protect=[src], stats=_stats_path(args))
    outputs = open_outputs(paths)
    t = time.monotonic()
    progress = None if args.quiet else ReplayProgress(src.stat().st_size)
    try:
        stats, notes, layout = replay(src, outputs, source=SOURCES[args.source] if args.source else None,
                                      channels=mask_channels(args.channels) if args.channels else None,
                                      gain=args.gain, progress=progress)
    finally:
        if progress is not None:
            progress.done()
    notes += _replay_notes(src, args, stats, layout)
    if not args.quiet:
        from .outputs import Output

        files = [str(p) for o in outputs if isinstance(o, Output) for p in o.written()]
        _summary(stats, time.monotonic() - t, files, layout=layout, notes=notes)
    _write_stats(args.stats_json, stats)
    return 0


def _check_flash_folder(folder: Path) -> None:
    """emulate --flash: a folder, or a new one in a folder that exists (its port goes beside it)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--flash {folder}: not a folder (the emulated board keeps its files in one)")
    if not folder.parent.is_dir():
        raise UsageError(f"--flash {folder}: folder {folder.parent} does not exist")


def do_emulate(args: argparse.Namespace) -> int:
    from picodaq_hil.emulator import EmulatedBoard

    from .cli_flash import RichProgress
    from .flash import Flasher

    if args.flash:
        _check_flash_folder(Path(args.flash))
    if args.chip == "rp2040":
        from .boards.node import NodeUnavailable, ensure_rp2040js, find_node
        from .boards.rp2040 import Rp2040Board

        if args.unpaced or args.flash_size:
            raise UsageError("--unpaced and --flash-size are for --chip unix: the RP2040's flash is its own 2 MB")
        try:
            ensure_rp2040js(find_node())
        except NodeUnavailable as e:
            raise PicodaqError(str(e)) from None
        board = Rp2040Board(flash=Path(args.flash) if args.flash else None)
    else:
        board = EmulatedBoard(flash=Path(args.flash) if args.flash else None, unpaced=args.unpaced,
                              flash_size=args.flash_size)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM/SIGHUP (kill, a closed terminal) stop the board like Ctrl-C

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        board.start()
        if not args.empty:
            with RichProgress() as ui:
                Flasher(board.port, ui).flash()
        board.register()
        print(board.port, flush=True)
        if args.chip == "rp2040":
            eprint(f"picodaq: emulated RP2040 (unique id {board.board_id}) running; control channel "
                   f"{board.control_path}; Ctrl-C stops it")
        else:
            eprint("picodaq: emulated board running; Ctrl-C stops it")
        while board.running:
            time.sleep(0.2)
        raise PicodaqError("the emulated board stopped unexpectedly")
    except KeyboardInterrupt:
        return 0
    finally:
        board.stop()


# -- the table ------------------------------------------------------------------

def _port_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", help="serial port or pyserial URL (default: the one attached board, else an emulator)")


def _args_ports(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _args_info(p: argparse.ArgumentParser) -> None:
    _port_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _gain_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gain", type=int, choices=ADS1299_GAINS, default=ADS1299_DEFAULT_GAIN,
                   help=f"ADS1299 PGA gain, for the microvolt scale (default {ADS1299_DEFAULT_GAIN})")


def args_stream_config(p: argparse.ArgumentParser) -> None:
    """What record and stream share: the board, the stream's configuration, how to run."""
    p.add_argument("--port", action="append",
                   help="serial port or pyserial URL (default: the one attached board, else an emulator); repeat "
                        "to record several boards at once, each into its own files (run.npy -> run.board1.npy, "
                        "run.board2.npy, ... in --port order)")
    p.add_argument("--seconds", type=positive_float, help="how long to record (default: until Ctrl-C)")
    p.add_argument("--rate", type=positive_int, default=1000, help="sample instants per second (default 1000)")
    p.add_argument("--channels", type=channel_mask, default=1, help="channel count (8) or list (0,2,4-7)")
    p.add_argument("--source", choices=sorted(SOURCES, key=SOURCES.__getitem__), default="ramp")
    p.add_argument("--fmt", choices=sorted(FORMATS, key=FORMATS.__getitem__), default="int16")
    _gain_arg(p)
    p.add_argument("--samples-per-frame", type=positive_int, help="instants per SAMPLES frame (default: ~20 ms)")
    p.add_argument("--stats-json", metavar="PATH", help="write the counters as JSON to PATH, or - for stdout")
    p.add_argument("--reconnect", action="store_true",
                   help="when the board is unplugged or dies, wait for its port to return and resume into the "
                        "same files (the gap is annotated)")
    p.add_argument("--mark-on-key", action="store_true",
                   help="a key press sends MARK: 0-9 with that code, m/space with code 1; q stops")
    p.add_argument("--quiet", action="store_true", help="no live view and no summary")


def _args_record(p: argparse.ArgumentParser) -> None:
    args_stream_config(p)
    p.add_argument("--out", action="append", metavar="FILE", help="output file by suffix: " + ", ".join(SUFFIXES)
                   + " (repeatable)")
    add_lsl_args(p)


def _args_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a .tlv capture")
    p.add_argument("--out", action="append", metavar="FILE", help="output file by suffix: " + ", ".join(SUFFIXES)
                   + " (repeatable)")
    p.add_argument("--stats-json", metavar="PATH", help="write the counters as JSON to PATH, or - for stdout")
    p.add_argument("--source", choices=sorted(SOURCES, key=SOURCES.__getitem__),
                   help="the source, for physical units (default: as the capture's HELLO says)")
    p.add_argument("--channels", type=channel_mask, help="channel numbers for labels (default 0..N-1)")
    _gain_arg(p)
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")


def _args_emulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--chip", choices=("unix", "rp2040"), default="unix",
                   help="unix: MicroPython's unix port (default); rp2040: the real rp2 port on an emulated RP2040 "
                        "(rp2040js; needs Node.js >= 18)")
    p.add_argument("--flash", help="the board's flash folder (default: a fresh temporary one)")
    p.add_argument("--empty", action="store_true", help="start with empty flash (to try `picodaq flash`)")
    p.add_argument("--unpaced", action="store_true", help="sources run as fast as the link drains")
    p.add_argument("--flash-size", type=_flash_size, metavar="BYTES",
                   help="give the board a littlefs flash of this size (e.g. 848k, as a Pico), not a host folder")


def _flash_size(text: str) -> int:
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:].lower(), 1)
    try:
        v = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if v < 32 * 1024 or v % 4096:
        raise argparse.ArgumentTypeError(f"must be a multiple of 4k and at least 32k, got {text}")
    return v


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None], str]] = {
    "ports": (do_ports, _args_ports, "list serial ports; boards (USB VID 0x2E8A) and emulators marked"),
    "flash": (do_flash, args_flash, "deploy the firmware to a board, verify it on the board, reset, await HELLO"),
    "info": (do_info, _args_info, "show the board's HELLO and STATUS"),
    "record": (do_record, _args_record, "configure, stream and record to files"),
    "stream": (do_stream, args_stream, "configure and stream, publishing on LSL only (no files)"),
    "replay": (do_replay, _args_replay, "decode a .tlv capture through the same pipeline"),
    "emulate": (do_emulate, _args_emulate, "run an emulated board and print its port"),
    "bench": (do_bench, args_bench, "measure throughput, allocations, live rate, CPU, latency and the firmware"),
    "serve": (do_serve, args_serve, "export a board on this machine over TCP (RFC 2217, or raw with --raw)"),
}


def build_parser() -> ArgumentParser:
    ap = ArgumentParser(prog="picodaq", description="picodaq: data acquisition from Pico-class boards")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, (_, setup, help_text) in COMMANDS.items():
        setup(sub.add_parser(name, help=help_text, description=help_text))
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.command:
        build_parser().print_help()
        return 2
    handler = COMMANDS[args.command][0]
    try:
        status = handler(args)
        sys.stdout.flush()  # a reader that left shows here, not in Python's exit
        return status
    except UsageError as e:
        eprint(f"picodaq: {e}")
        return 2
    except PicodaqError as e:
        eprint(f"picodaq: {e}")
        return 1
    except KeyboardInterrupt:
        eprint("picodaq: interrupted")
        return 130
    except BrokenPipeError:
        return _reader_left()


def _reader_left() -> int:
    """stdout's reader went away (`picodaq info | head -1`): stop quietly, as `cat` would.

    Python would complain again when it flushes stdout at exit; point it at /dev/null first."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
