"""The `picodaq` command line.

Commands are a table from name to (handler, argument setup, help), as in
mpremote; each command lives in its own module (ports, info, record, stream,
replay, emulate, flash, serve, bench). `main()` turns every PicodaqError into
one line on stderr (exit status 2 for a usage mistake, 1 otherwise), a Ctrl-C
into 130, and a closed stdout into a quiet stop; every command lets go of its
board on the way out.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from typing import NamedTuple

from ..errors import PicodaqError, UsageError
from ..plot.command import args_plot, do_plot
from .args import ArgumentParser
from .bench import args_bench, do_bench
from .console import eprint
from .emulate import args_emulate, do_emulate
from .flash import args_flash, do_flash
from .info import args_info, do_info
from .ports import args_ports, do_ports
from .record import args_record, do_record
from .replay import args_replay, do_replay
from .serve import args_serve, do_serve
from .stream import args_stream, do_stream


class Command(NamedTuple):
    handler: Callable[[argparse.Namespace], int]
    setup: Callable[[argparse.ArgumentParser], None]
    help: str


COMMANDS: dict[str, Command] = {
    "ports": Command(do_ports, args_ports, "list serial ports; boards (USB VID 0x2E8A) and emulators marked"),
    "flash": Command(
        do_flash, args_flash, "deploy the firmware to a board, verify it on the board, reset, await HELLO"
    ),
    "info": Command(do_info, args_info, "show the board's HELLO and STATUS"),
    "record": Command(do_record, args_record, "configure, stream and record to files"),
    "stream": Command(do_stream, args_stream, "configure and stream, publishing on LSL only (no files)"),
    "replay": Command(do_replay, args_replay, "decode a .tlv capture through the same pipeline"),
    "emulate": Command(do_emulate, args_emulate, "run an emulated board and print its port"),
    "bench": Command(do_bench, args_bench, "measure throughput, allocations, live rate, CPU, latency and the firmware"),
    "serve": Command(do_serve, args_serve, "export a board on this machine over TCP (RFC 2217, or raw with --raw)"),
    "plot": Command(do_plot, args_plot, "draw a recording (.tlv, .bdf, .npy, .csv): stacked channels, markers, gaps"),
}


def build_parser() -> ArgumentParser:
    ap = ArgumentParser(prog="picodaq", description="picodaq: data acquisition from Pico-class boards")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, command in COMMANDS.items():
        command.setup(sub.add_parser(name, help=command.help, description=command.help))
    return ap


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C stops every command. A script's `picodaq emulate &` starts with SIGINT ignored (so the
    # terminal's Ctrl-C spares background jobs), and Python then never raises KeyboardInterrupt:
    # a `kill -INT` meant to stop it cleanly would do nothing.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    if not args.command:
        build_parser().print_help()
        return 2
    try:
        status = COMMANDS[args.command].handler(args)
        sys.stdout.flush()  # a reader that left shows here, not in Python's exit
        return status
    except PicodaqError as e:
        eprint(f"picodaq: {e}")
        return 2 if isinstance(e, UsageError) else 1
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
