"""`picodaq emulate`: run an emulated board (picodaq.boards) and print its port."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from ..errors import PicodaqError, UsageError
from .console import eprint


def args_emulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flash", help="the board's flash folder (default: a fresh temporary one)")
    p.add_argument("--empty", action="store_true", help="start with empty flash (to try `picodaq flash`)")
    p.add_argument("--unpaced", action="store_true", help="sources run as fast as the link drains")
    p.add_argument(
        "--flash-size",
        type=flash_size,
        metavar="BYTES",
        help="give the board a littlefs flash of this size (e.g. 848k, as a Pico), not a host folder",
    )


def flash_size(text: str) -> int:
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:].lower(), 1)
    try:
        v = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if v < 32 * 1024 or v % 4096:
        raise argparse.ArgumentTypeError(f"must be a multiple of 4k and at least 32k, got {text}")
    return v


def do_emulate(args: argparse.Namespace) -> int:
    from ..boards.unix import EmulatedBoard
    from ..flash.flasher import Flasher
    from .flash import RichProgress

    flash = Path(args.flash) if args.flash else None
    if flash is not None:
        _check_flash_folder(flash)
    board = EmulatedBoard(flash=flash, unpaced=args.unpaced, flash_size=args.flash_size)

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
        eprint("picodaq: emulated board running; Ctrl-C stops it")
        while board.running:
            time.sleep(0.2)
        raise PicodaqError("the emulated board stopped unexpectedly")
    except KeyboardInterrupt:
        return 0
    finally:
        board.stop()


def _check_flash_folder(folder: Path) -> None:
    """emulate --flash: a folder, or a new one in a folder that exists (its port goes beside it)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--flash {folder}: not a folder (the emulated board keeps its files in one)")
    if not folder.parent.is_dir():
        raise UsageError(f"--flash {folder}: folder {folder.parent} does not exist")
