"""Reaching the board a command works on: picodaq.transport.ports.choose_port says which
(--port, else the one attached board, else an emulated board); this opens it."""

from __future__ import annotations

from contextlib import ExitStack
from typing import NamedTuple

from ..errors import PicodaqError, UsageError
from ..transport.link import Link
from ..transport.ports import PortInfo, choose_port, port_problem
from .console import eprint


class Connection(NamedTuple):
    link: Link
    usb: PortInfo | None  # the board, when found by USB id: to find it again after an unplug


def check_port(port: str) -> str:
    """port, if it can be a board's serial port; else the one line that says why not."""
    if why := port_problem(port):
        raise UsageError(f"cannot open port {port}: {why}")
    return port


def connect(port: str | None, stack: ExitStack) -> Connection:
    """A Link to port, else to the one attached board, else to a freshly flashed emulated board
    (said on stderr); closed, and the emulated board stopped, when the stack unwinds."""
    choice = choose_port(port)
    if choice.port is not None:
        target = choice.port
        if choice.usb is not None:
            eprint(f"picodaq: using the board on {target}")
    else:
        if choice.attached:
            eprint(f"picodaq: {choice.reason}; pass --port to pick one. Using an emulated board instead.")
        target = start_emulated(stack)
        why = "" if choice.attached else "no board attached; "
        eprint(f"picodaq: {why}using an emulated board on {target}, freshly flashed")
    check_port(target)
    link = Link.open(target)
    stack.callback(link.close)
    return Connection(link, choice.usb)


def start_emulated(stack: ExitStack) -> str:
    """Start an emulated board of the PICODAQ_TIER tier (unix by default; rp2040: the real rp2 port
    on an emulated RP2040), flash it (it starts without the firmware, as a new Pico does), and
    return its port; it stops when the stack unwinds."""
    from ..boards.tier import emulated_tier
    from ..flash.flasher import Flasher

    if emulated_tier() == "rp2040":
        from ..boards.node import NodeUnavailable, ensure_rp2040js, find_node
        from ..boards.rp2040 import Rp2040Board

        try:
            ensure_rp2040js(find_node())
        except NodeUnavailable as e:
            raise PicodaqError(f"PICODAQ_TIER=rp2040: {e}") from None
        eprint("picodaq: PICODAQ_TIER=rp2040: the emulated board is an RP2040 running the real rp2 port")
        rp2 = Rp2040Board()
        stack.callback(rp2.stop)
        rp2.start()
        port, timeout = rp2.port, 60.0  # a chip at a fraction of real speed, on a loaded machine too
    else:
        from ..boards.unix import EmulatedBoard

        board = EmulatedBoard(unpaced=False)
        stack.callback(board.stop)
        board.start()
        port, timeout = board.port, 10.0
    Flasher(port, timeout=timeout, hello_timeout=timeout).flash()
    return port
