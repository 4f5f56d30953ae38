"""Shared fixtures: emulated boards (each test owns its own; safe under -n auto)."""

from __future__ import annotations

import os
import shutil
import signal
import tty
from pathlib import Path

import pytest

import hypo
from picodaq.boards.unix import EmulatedBoard
from picodaq.transport.link import Link

# every hypothesis test runs under one profile: "ci" (derandomized, a fixed number of
# examples) unless HYPOTHESIS_PROFILE=dev asks for more (tests/hypo.py)
HYPOTHESIS_PROFILE = hypo.register()

# The tests stop programs with Ctrl-C (SIGINT), as a user would. A runner that starts the suite
# with SIGINT ignored (a non-interactive shell's `make test &`) passes that on to every child,
# where Python then never raises KeyboardInterrupt: the programs would run on. A handler here is
# reset to the default in each child at exec (an ignored signal would stay ignored).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

FW_DRIVER = Path(__file__).parent / "firmware" / "fw" / "driver.py"


@pytest.fixture
def make_board():
    """make_board(unpaced=False, driver=False, env=None) -> a started EmulatedBoard with firmware.

    The firmware is copied in with install_firmware(), a shortcut for tests that
    only need it running; users flash with `picodaq flash` (tests/test_flash.py).
    """
    boards: list[EmulatedBoard] = []

    def make(unpaced: bool = False, driver: bool = False, env: dict | None = None) -> EmulatedBoard:
        b = EmulatedBoard(unpaced=unpaced, boot="driver.py" if driver else "main.py", env=env)
        boards.append(b)
        b.install_firmware()
        if driver:
            shutil.copyfile(FW_DRIVER, b.flash / "driver.py")
        return b.start()

    yield make
    for b in boards:
        b.stop()


@pytest.fixture
def emu_link(make_board):
    """A Link to a fresh, paced emulated board."""
    board = make_board()
    link = Link.open(board.port)
    yield link
    link.close()


@pytest.fixture
def pty_pair():
    """A raw pty: (master fd, the slave's path) for a Link to open."""
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass
