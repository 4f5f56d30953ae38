"""`picodaq flash`: the command's handler, its arguments, and its progress display (which
`picodaq emulate` shows too)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from ..errors import UsageError
from ..flash.flasher import BoardNotFound, Flasher, FlashEvent, FlashReport
from ..transport.ports import choose_port, emulated_boards
from .connect import check_port


class RichProgress:
    """A FlashEvent callback: one line per file, a bar while a file is copied.

    On a terminal the bar is live; elsewhere (a log, a pipe) only the lines show.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        # off a terminal the bar is disabled, not only hidden: rich would end it with an empty line
        self.bar = Progress(
            TextColumn("  copying  {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, ev: FlashEvent) -> None:
        path = escape(ev.path)
        if ev.kind == "write":
            if self.task is None:
                self.task = self.bar.add_task(path, total=ev.total)
            self.bar.update(self.task, completed=ev.done, total=ev.total)
            return
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        line = {
            "note": f"picodaq: {escape(ev.text)}",
            "unchanged": f"  [dim]unchanged[/]  {path}",
            "verified": f"  [green]copied[/]     {path}  ({ev.total} bytes, SHA-256 verified on the board)",
            "retry": f"  [yellow]retry[/]      {path}: {escape(ev.text)}",
            "remove": f"  [yellow]removed[/]    {path} ({escape(ev.text)})",
            "differs": f"  [red]differs[/]    {path} ({escape(ev.text)})",
            "hello": f"picodaq: {escape(ev.text)}",
        }.get(ev.kind, f"picodaq: {escape(ev.kind)} {path} {escape(ev.text)}")
        self.console.print(line, soft_wrap=True)


def flash_port(port: str | None) -> str:
    """--port, else the one attached board, else the one running `picodaq emulate`."""
    choice = choose_port(port)
    if choice.port is not None:
        if choice.usb is None:
            return check_port(choice.port)
        print(f"picodaq: flashing the board on {choice.port}", file=sys.stderr)
        return choice.port
    if choice.attached:
        raise UsageError(f"{choice.reason}: pass --port to pick one")
    emulated = emulated_boards()
    if len(emulated) > 1:
        raise UsageError(
            f"{len(emulated)} emulated boards running ({', '.join(b.device for b in emulated)}): "
            "pass --port to pick one"
        )
    if emulated:
        print(f"picodaq: no board attached; flashing the emulated board on {emulated[0].device}", file=sys.stderr)
        return emulated[0].device
    raise BoardNotFound(
        "no board found: plug in a Pico running MicroPython, or pass --port "
        "(`picodaq ports` lists ports; `picodaq emulate --empty` starts an emulated board)"
    )


def install_micropython(args: argparse.Namespace) -> str:
    """--micropython FILE.uf2: MicroPython onto the board through its BOOTSEL drive; the new port.

    The file is checked whole first. A drive already mounted (or --drive) takes it; else a board
    running MicroPython (--port, or the one found) is told to reboot into BOOTSEL first."""
    from pathlib import Path

    from ..flash import bootsel
    from ..flash.uf2 import read_uf2

    image = read_uf2(Path(args.micropython))
    if args.drive:
        drive = bootsel.read_drive(Path(args.drive))
    else:
        drives = bootsel.find_drives()
        if len(drives) > 1:
            raise UsageError(
                f"{len(drives)} BOOTSEL drives are mounted ({', '.join(str(d.path) for d in drives)}): "
                "pass --drive to pick one"
            )
        if drives:
            drive = drives[0]
        else:
            port = flash_port(args.port)
            print(
                f"picodaq: {port} runs MicroPython: rebooting it into BOOTSEL to install {image.path.name}",
                file=sys.stderr,
            )
            bootsel.enter_bootsel(port, timeout=args.timeout)
            drive = bootsel.wait_for_drive(args.timeout + 20)
    image.check_chip(drive.board_id)  # before anything is written
    before = {b.device for b in bootsel.serial_boards()}
    print(
        f"picodaq: installing {image.path.name} ({image.family_name}, {image.image_bytes:,} bytes of flash) "
        f"through the {drive.describe()}",
        file=sys.stderr,
    )
    with RichProgress() as ui:
        bootsel.install(
            image, drive, progress=lambda done, total: ui(FlashEvent("write", image.path.name, done, total))
        )
        ui(FlashEvent("note", text="the board took the image and is rebooting into it"))
    port = args.port if args.port and "://" in args.port else bootsel.wait_for_serial(before, args.timeout + 20)
    print(f"picodaq: MicroPython is up on {port}; now the picodaq firmware", file=sys.stderr)
    return port


def do_flash(args: argparse.Namespace) -> int:
    if args.drive and not args.micropython:
        raise UsageError("--drive goes with --micropython FILE.uf2 (the drive a board shows in BOOTSEL)")
    if args.micropython and args.check:
        raise UsageError("--micropython installs; --check only reads: give one of them")
    port = install_micropython(args) if args.micropython else flash_port(args.port)
    with RichProgress() as ui:
        flasher = Flasher(port, ui, timeout=args.timeout, hello_timeout=args.timeout)
        report = flasher.check() if args.check else flasher.flash(force=args.force)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(summary(report))
    if args.check and report.differences:
        n = len(report.differences)
        print(
            f"picodaq: the board's files differ from this firmware in {n} place{'s' * (n != 1)} "
            f"({', '.join(p for p, _ in report.differences[:3])}{', ...' if n > 3 else ''}): run `picodaq flash`",
            file=sys.stderr,
        )
        return 1
    return 0


def summary(r: FlashReport) -> str:
    head = f"{r.image.firmware_version} ({r.image.target}, contract 0x{r.image.contract_hash:08X}) on {r.port}"
    if r.checked_only:
        state = "verified" if r.ok else "differs"
        return f"{state}: picodaq {head}: {len(r.unchanged)} files match, {len(r.differences)} differ"
    return (
        f"flashed picodaq {head}: {len(r.written)} files copied ({r.bytes_written} bytes), "
        f"{len(r.unchanged)} unchanged, {len(r.removed)} removed, in {r.seconds:.1f} s"
    )


def args_flash(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--port",
        help="serial port or pyserial URL (default: the one attached board, else the one emulated board running)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="verify the board's files against this firmware; write nothing"
    )
    mode.add_argument("--force", action="store_true", help="copy every file, even those already on the board")
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        help="seconds the board may take to answer, and to say HELLO after the reset (default 10)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--micropython",
        metavar="FILE.uf2",
        help="first install MicroPython from this uf2 through the board's BOOTSEL drive (a board already "
        "running MicroPython is rebooted into BOOTSEL), then the picodaq firmware",
    )
    p.add_argument(
        "--drive",
        metavar="PATH",
        help="with --micropython: the folder the board's BOOTSEL drive is mounted at (default: found)",
    )


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v < 3600:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return v
