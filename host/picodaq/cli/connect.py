"""Reaching the board a command works on: picodaq.transport.ports.choose_port says which
(--port, else the one attached board, else an emulated board); this opens it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import NamedTuple

from .. import contracts as C
from ..errors import DeviceError, PicodaqError, UsageError
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
    wake_firmware(link, eprint)
    return Connection(link, choice.usb)


REPL_PROBE = 0.5  # how long the firmware has to answer a PING before the REPL is looked for
SOFT_RESET_WAIT = 10.0


def wake_firmware(link: Link, say: Callable[[str], object]) -> None:
    """A board left at the MicroPython REPL (`mpremote connect PORT fs ls` leaves it there, its
    firmware installed) is soft-reset into its firmware, and `say` tells so; one whose soft reset
    starts no firmware is a DeviceError naming the REPL and what it printed. A board running the
    firmware costs one PING; anything else is left to the commands that follow.

    The PING is inert in a REPL (flash.repl.inert_command: no Enter, no Ctrl-C), so it runs
    nothing there; Ctrl-C then clears the line it typed and shows the prompt; Ctrl-D at the
    friendly or the raw REPL soft-resets the board, which runs main.py: the firmware's HELLO."""
    from ..flash.repl import board_text, inert_command, last_line

    seen = bytearray()

    def tap(chunk: memoryview) -> None:
        seen.extend(chunk)
        del seen[:-4096]

    link.raw_taps.append(tap)
    try:
        probe = inert_command(C.OP_PING)
        cmd_id = int.from_bytes(probe[12:14], "little")
        acks = link.receiver.acks
        acks.pop(cmd_id, None)
        link.write(probe)
        if link.pump_until(lambda: cmd_id in acks, REPL_PROBE):
            acks.pop(cmd_id, None)
            return
        link.write(b"\x03")
        if not link.pump_until(lambda: _at_prompt(seen), REPL_PROBE):
            return  # no firmware, no REPL: the commands say what they find
        say(
            f"picodaq: the board on {link.url} is at the MicroPython REPL (as mpremote leaves it); soft-resetting it into its firmware"
        )
        seen.clear()
        hellos = link.receiver.hellos
        link.write(b"\x04")
        # the firmware's HELLO, or (no main.py, or it failed) the REPL again after the reboot
        link.pump_until(
            lambda: link.receiver.hellos > hellos or b"soft reboot" in seen and _at_prompt(seen), SOFT_RESET_WAIT
        )
        if link.receiver.hellos > hellos:
            return
        text, repl = board_text(bytes(seen))
        why = f"it printed {last_line(text)!r}" if text.strip() else "no main.py ran"
        raise DeviceError(
            f"the board on {link.url} is at the MicroPython REPL, and a soft reset (Ctrl-D) started no picodaq "
            f"firmware ({why}{'; it is back at the REPL' if repl else ''}): `picodaq flash` installs it"
        )
    finally:
        link.raw_taps.remove(tap)


def _at_prompt(seen: bytearray) -> bool:
    """The friendly REPL's prompt, or the raw REPL's banner or prompt, at the end of what arrived."""
    tail = bytes(seen[-64:]).rstrip(b" ")
    return tail.endswith(b">>>") or b"raw REPL" in tail or tail.endswith(b"\n>")


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
