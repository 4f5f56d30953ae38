"""What the board tier changes in the HIL harness: its name in reports, and the hard reset
of an emulated RP2040 by machine.reset(), as on a Pico."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from ..errors import BoardLost

if TYPE_CHECKING:
    from picodaq.protocol.messages import Hello

    from .board import Board


def board_tier(emulated: bool) -> str:
    """ "rp2040" (MicroPython's rp2 port on an emulated RP2040), "unix" (its unix port), or
    "board" (a real one): PICODAQ_TIER for an emulated board."""
    if not emulated:
        return "board"
    from picodaq.boards.tier import emulated_tier

    return emulated_tier()


def machine_reset(board: Board, timeout: float) -> Hello | None:
    """machine.reset() typed at the REPL of an emulated RP2040, as on a Pico: the chip reboots from
    its flash, its port goes away and comes back (each noted in the device log); the new HELLO.
    None when the REPL does not answer (the caller resets it another way)."""
    board.connect()
    if not board._to_repl():
        return None
    board.need_link().write(b"import machine\rmachine.reset()\r")
    board.disconnect()
    deadline = time.monotonic() + timeout
    while board.port and os.path.lexists(board.port):
        if time.monotonic() > deadline:
            raise BoardLost(f"{board.name}: machine.reset() did not take the port away within {timeout:g} s")
        time.sleep(0.02)
    board.note("machine.reset(): the port went away (the chip re-enumerates)")
    board.reconnect(timeout=timeout)
    board.note("machine.reset(): the port came back")
    return board.sync()
