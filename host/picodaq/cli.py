"""The `picodaq` command line.

Commands are a table from name to (handler, argument setup), as in mpremote;
`main()` turns every PicodaqError into one line on stderr and exit status 1,
and always lets go of the board.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from . import contracts as C
from .cli_flash import args_flash, do_flash
from .errors import LinkError, PicodaqError, UsageError
from .link import Link
from .outputs import SUFFIXES, check_output_path, open_output
from .ports import attached_boards, emulated_boards, serial_ports
from .receiver import Receiver
from .recorder import Recording, StreamConfig

SOURCES = {name: code for code, name in C.SOURCE_NAMES.items()}
FORMATS = {name: code for code, name in C.FORMAT_NAMES.items()}


def eprint(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


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
            lo, _, hi = part.partition("-")
            a, b = int(lo), int(hi or lo)
            if not 0 <= a <= b < C.MAX_CHANNELS:
                raise argparse.ArgumentTypeError(f"channels must be within 0..{C.MAX_CHANNELS - 1}: {part!r}")
            for c in range(a, b + 1):
                mask |= 1 << c
        return mask
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a channel count or list: {text!r}") from None


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        eprint(f"{self.prog}: {message}")
        raise SystemExit(2)


# -- connecting -----------------------------------------------------------------

def connect(args: argparse.Namespace, stack: ExitStack) -> Link:
    """--port, else the one attached board, else an emulated board (said on stderr)."""
    port = getattr(args, "port", None)
    if not port:
        boards = attached_boards()
        if len(boards) == 1:
            port = boards[0].device
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
    link = Link.open(port)
    stack.callback(link.close)
    return link


# -- commands -------------------------------------------------------------------

def do_ports(args: argparse.Namespace) -> int:
    rows = serial_ports() + emulated_boards()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    if not rows:
        print("no serial ports found")
    for r in rows:
        mark = "*" if r.is_board else " "
        kind = "emulated" if r.emulated else ("board" if r.is_board else "")
        print(f"{mark} {r.device:<28} {kind:<9} {r.description}")
    return 0


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
            print(f"port            {link.url}")
            print(f"board           {h['platform']}  id {h['board_id']}")
            print(f"firmware        {h['firmware_version']}  protocol {hello.protocol_version}")
            print(f"contract        {h['contract_hash']} "
                  + ("(matches this host)" if ok else f"(this host has 0x{C.CONTRACT_HASH:08X}: run `picodaq flash`)"))
            print(f"capabilities    {hello.max_channels} channels, {hello.max_rate} samples/s aggregate")
            print(f"state           {status.state_name}, last error {status.error_name}")
            print(f"uptime          {status.uptime_ms / 1000:.1f} s, {status.frames_sent} frames sent")
            print(f"ring            {status.ring_capacity} instants, high water {status.ring_high_water}, "
                  f"{status.samples_dropped} dropped")
            print(f"free heap       {status.free_heap} bytes")
        return 0 if ok else 1


def _write_stats(target: str | None, stats: dict) -> None:
    if not target:
        return
    text = json.dumps(stats, indent=2, sort_keys=True)
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text + "\n")


def _summary(stats: dict, seconds: float, outputs: list[str], status=None) -> None:
    rate = stats["samples"] / seconds if seconds > 0 else 0.0
    eprint(f"received {stats['frames_ok']} frames, {stats['samples']} samples in {seconds:.2f} s "
           f"({rate:.0f} samples/s per channel)")
    eprint(f"losses   {stats['samples_lost']} samples lost, {stats['seq_lost']} frames lost, "
           f"{stats['crc_errors']} CRC errors, {stats['header_errors']} header errors, "
           f"{stats['decode_errors']} decode errors, {stats['skipped_bytes']} bytes skipped")
    if status is not None:
        eprint(f"device   {status.samples_dropped} samples dropped on the board, ring high water "
               f"{status.ring_high_water}/{status.ring_capacity}")
    for o in outputs:
        eprint(f"wrote    {o}")


def do_record(args: argparse.Namespace) -> int:
    if not args.out:
        raise UsageError("nothing to record into: give --out FILE (" + ", ".join(SUFFIXES) + ")")
    paths = [Path(p) for p in args.out]
    for p in paths:
        check_output_path(p)
    if args.stats_json and args.stats_json != "-":
        check_output_path_json(Path(args.stats_json))
    cfg = StreamConfig(rate=args.rate, channel_mask=args.channels, source=SOURCES[args.source],
                       fmt=FORMATS[args.fmt], samples_per_frame=args.samples_per_frame or 0)
    with ExitStack() as stack:
        link = connect(args, stack)
        outputs = []
        try:
            rec_outputs = [open_output(p) for p in paths]
            outputs = rec_outputs
            rec = Recording(link, cfg, outputs)
            hello = rec.prepare()
            eprint(f"recording {cfg.n_channels} channels at {cfg.rate} Hz ({args.source}, {args.fmt}) from "
                   f"{hello.platform} board {hello.board_id}"
                   + (f" for {args.seconds:g} s" if args.seconds else " until Ctrl-C"))
            rec.start()
        except BaseException:
            for o in outputs:
                o.close()
            raise
        interrupted = False
        board_alive = True
        tick = None if args.quiet else _progress(link, cfg)
        try:
            rec.run(args.seconds, tick)
        except KeyboardInterrupt:
            interrupted = True
        except LinkError as e:
            board_alive = False
            result = rec.finish(interrupted=True, board_alive=False)
            _summary(result.stats, result.seconds, result.outputs)
            _write_stats(args.stats_json, result.stats)
            raise LinkError(f"{e} (recording stopped; what was received is saved)", port=e.port) from None
        if tick:
            eprint("")
        with _no_interrupts():
            result = rec.finish(interrupted=interrupted, board_alive=board_alive)
        _summary(result.stats, result.seconds, result.outputs, result.status)
        _write_stats(args.stats_json, dict(result.stats, seconds=round(result.seconds, 3)))
        return 130 if interrupted and args.seconds else 0


def check_output_path_json(path: Path) -> None:
    if path.is_dir() or not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise UsageError(f"{path}: cannot write the stats file there")


class _no_interrupts:
    """Let finalising files finish even if Ctrl-C is pressed again."""

    def __enter__(self) -> None:
        self._old = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._old)


def _progress(link: Link, cfg: StreamConfig) -> Callable[[float], None]:
    tty = sys.stderr.isatty()

    def tick(elapsed: float) -> None:
        st = link.receiver.stats
        rate = st.samples / elapsed if elapsed > 0 else 0.0
        line = (f"{elapsed:6.1f} s  {st.samples:>9} samples  {rate:8.0f} samples/s/ch  "
                f"{link.bytes_in / max(elapsed, 1e-9) / 1e6:6.3f} MB/s  lost {st.samples_lost}  crc {st.crc_errors}")
        if tty:
            sys.stderr.write("\r" + line)
            sys.stderr.flush()
    return tick


def do_replay(args: argparse.Namespace) -> int:
    src = Path(args.file)
    if not src.is_file():
        raise UsageError(f"{src}: no such file")
    paths = [Path(p) for p in args.out or []]
    for p in paths:
        check_output_path(p)
        if p.resolve() == src.resolve():
            raise UsageError(f"{p}: would overwrite the capture being replayed")
    outputs = [open_output(p) for p in paths]
    receiver = Receiver()
    for o in outputs:
        receiver.block_handlers.append(o.on_block)
    t = time.monotonic()
    try:
        with open(src, "rb") as f:
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                chunk = view[:n]
                for o in outputs:
                    o.on_raw(chunk)
                receiver.receive(chunk)
        receiver.finish()
    finally:
        for o in outputs:
            o.close()
    stats = receiver.stats.as_dict()
    if not args.quiet:
        _summary(stats, time.monotonic() - t, [str(p) for p in paths])
    _write_stats(args.stats_json, stats)
    return 0


def do_emulate(args: argparse.Namespace) -> int:
    from picodaq_hil.emulator import EmulatedBoard

    from .cli_flash import RichProgress
    from .flash import Flasher

    board = EmulatedBoard(flash=Path(args.flash) if args.flash else None, unpaced=args.unpaced,
                          flash_size=args.flash_size)

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the board as Ctrl-C does, never orphaning it

    signal.signal(signal.SIGTERM, _terminate)
    try:
        board.start()
        if not args.empty:
            with RichProgress() as ui:
                Flasher(board.port, ui).flash()
        board.register()
        print(board.port, flush=True)
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


def _args_record(p: argparse.ArgumentParser) -> None:
    _port_arg(p)
    p.add_argument("--seconds", type=positive_float, help="how long to record (default: until Ctrl-C)")
    p.add_argument("--rate", type=positive_int, default=1000, help="sample instants per second (default 1000)")
    p.add_argument("--channels", type=channel_mask, default=1, help="channel count (8) or list (0,2,4-7)")
    p.add_argument("--source", choices=sorted(SOURCES, key=SOURCES.get), default="ramp")
    p.add_argument("--fmt", choices=sorted(FORMATS, key=FORMATS.get), default="int16")
    p.add_argument("--samples-per-frame", type=positive_int, help="instants per SAMPLES frame (default: ~20 ms)")
    p.add_argument("--out", action="append", metavar="FILE", help="output file by suffix: " + ", ".join(SUFFIXES)
                   + " (repeatable)")
    p.add_argument("--stats-json", metavar="PATH", help="write the counters as JSON to PATH, or - for stdout")
    p.add_argument("--quiet", action="store_true", help="no live progress")


def _args_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a .tlv capture")
    p.add_argument("--out", action="append", metavar="FILE", help="output file by suffix (repeatable)")
    p.add_argument("--stats-json", metavar="PATH", help="write the counters as JSON to PATH, or - for stdout")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")


def _args_emulate(p: argparse.ArgumentParser) -> None:
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
    "replay": (do_replay, _args_replay, "decode a .tlv capture through the same pipeline"),
    "emulate": (do_emulate, _args_emulate, "run an emulated board and print its port"),
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
        return handler(args)
    except PicodaqError as e:
        eprint(f"picodaq: {e}")
        return 1
    except KeyboardInterrupt:
        eprint("picodaq: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
