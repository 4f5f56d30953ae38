"""`picodaq serve`: the command's handler and its arguments (the server is picodaq.transport.serve)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from ..errors import UsageError
from ..transport.ports import choose_port, emulated_boards
from ..transport.serve import BoardServer, parse_listen
from .connect import check_port

DEFAULT_LISTEN = "127.0.0.1:2217"


def _log(text: str) -> None:
    print(f"picodaq: {text}", file=sys.stderr, flush=True)


def serve_port(port: str | None) -> str:
    """--port, else the one attached board, else the one emulated board running."""
    choice = choose_port(port)
    if choice.usb is not None:
        return choice.usb.device
    if choice.port is not None:
        # a path that is there but cannot be a serial port; a missing one is the server's to report,
        # after it has checked --listen
        if "://" not in choice.port and os.path.exists(choice.port):
            check_port(choice.port)
        return choice.port
    boards = list(choice.attached) or emulated_boards()
    if len(boards) == 1:
        return boards[0].device
    if boards:
        raise UsageError(
            f"{len(boards)} boards found ({', '.join(b.device for b in boards)}): pass --port to pick the one to serve"
        )
    raise UsageError("no board to serve: plug one in or pass --port (`picodaq emulate` starts an emulated board)")


def do_serve(args: argparse.Namespace) -> int:
    port = serve_port(args.port)
    if "://" in port:
        raise UsageError(f"{port}: serve exports a board attached to this machine (a device path), not a URL")
    server = BoardServer(port, args.listen, raw=args.raw, log=_log)

    def _stop(signum: int, frame: object) -> None:
        server.stop()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    print(server.url, flush=True)  # first line on stdout: what clients pass as --port
    host = args.listen[0]
    exposed = (
        ""
        if host in ("127.0.0.1", "::1", "localhost")
        else "; no authentication: anyone who can reach this port controls the board"
    )
    _log(
        f"serving the board on {port} at {server.url} ({'raw TCP' if args.raw else 'RFC 2217'}, one client "
        f"at a time{exposed}); Ctrl-C stops"
    )
    server.serve()
    _log(f"stopped after {server.clients} client(s)")
    return 0


def _listen(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def args_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port",
        help="the board's serial port on this machine (default: the one attached board, "
        "else the one emulated board running)",
    )
    p.add_argument(
        "--listen",
        type=_listen,
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to accept clients on (default {DEFAULT_LISTEN}; 0.0.0.0:PORT for every "
        "interface; port 0 picks a free one); the URL to use is printed on stdout",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="plain TCP (clients use socket://HOST:PORT) instead of RFC 2217 (rfc2217://HOST:PORT)",
    )
