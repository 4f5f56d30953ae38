"""`picodaq emulate`: run an emulated board (picodaq.boards) and print its port."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PicodaqError, UsageError
from .console import eprint

if TYPE_CHECKING:
    from ..boards.rp2040 import Rp2040Board


def args_emulate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--chip",
        choices=("unix", "rp2040"),
        default="unix",
        help="unix: MicroPython's unix port (default); rp2040: the real rp2 port on an emulated RP2040 "
        "(rp2040js; needs Node.js >= 18)",
    )
    p.add_argument("--flash", help="the board's flash folder (default: a fresh temporary one)")
    p.add_argument("--empty", action="store_true", help="start with empty flash (to try `picodaq flash`)")
    p.add_argument(
        "--blank",
        action="store_true",
        help="--chip rp2040: nothing in flash, not even MicroPython: the chip starts in BOOTSEL and shows its "
        "drive (to try `picodaq flash --micropython FILE.uf2`)",
    )
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
    board: EmulatedBoard | Rp2040Board
    rp2: Rp2040Board | None = None
    if args.chip == "rp2040":
        from ..boards.node import NodeUnavailable, ensure_rp2040js, find_node
        from ..boards.rp2040 import Rp2040Board

        if args.unpaced or args.flash_size:
            raise UsageError("--unpaced and --flash-size are for --chip unix: the RP2040's flash is its own 2 MB")
        if args.blank and args.empty:
            raise UsageError("--blank (nothing in flash) or --empty (MicroPython, no firmware): give one of them")
        try:
            ensure_rp2040js(find_node())
        except NodeUnavailable as e:
            raise PicodaqError(str(e)) from None
        rp2 = Rp2040Board(flash=flash, blank=args.blank)
        board = rp2
        running = f"picodaq: emulated RP2040 (unique id {rp2.board_id}) running; Ctrl-C stops it"
    else:
        if args.blank:
            raise UsageError("--blank is for --chip rp2040 (a chip with a boot ROM and a BOOTSEL drive)")
        board = EmulatedBoard(flash=flash, unpaced=args.unpaced, flash_size=args.flash_size)
        running = "picodaq: emulated board running; Ctrl-C stops it"

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM/SIGHUP (kill, a closed terminal) stop the board like Ctrl-C

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        board.start()
        if not (args.empty or args.blank):
            with RichProgress() as ui:
                Flasher(board.port, ui).flash()
        board.register()
        print(board.port, flush=True)
        eprint(running)
        if rp2 is not None:
            eprint(f"picodaq: its control channel is {rp2.control_path}")
        if rp2 is not None and args.blank:
            eprint(
                f"picodaq: nothing in its flash: it is in BOOTSEL, its drive at {rp2.drive} "
                f"(INFO_UF2.TXT, Board-ID RPI-RP2); `picodaq flash --micropython FILE.uf2` installs MicroPython "
                f"there, then the firmware, and its port is then {board.port}"
            )
        board.wait()  # until the board's supervisor ends (Ctrl-C and the signals above end this wait)
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
