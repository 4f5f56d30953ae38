"""`picodaq ports`: the serial ports, boards and running emulated boards marked."""

from __future__ import annotations

import argparse
import json

from ..transport.ports import emulated_boards, serial_ports
from .args import add_json


def args_ports(p: argparse.ArgumentParser) -> None:
    add_json(p)


def do_ports(args: argparse.Namespace) -> int:
    rows = serial_ports() + emulated_boards()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    _drives()
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


def _drives() -> None:
    """Boards in BOOTSEL have no port: their drives, where MicroPython can be installed."""
    from ..flash.bootsel import find_drives

    for d in find_drives():
        print(f"  BOOTSEL {d.describe()}: `picodaq flash --micropython FILE.uf2` installs MicroPython")
