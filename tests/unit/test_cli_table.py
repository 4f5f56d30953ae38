"""The `picodaq` command table: every command has working --help that names each of its options;
and what record says when it cannot pick a board."""

from __future__ import annotations

import argparse
import os

import pytest

from picodaq.cli.main import COMMANDS, main
from picodaq.transport.ports import PortInfo

PICO = PortInfo("/dev/ttyACM0", "Board in FS mode", True, "E6614C311B7A1234")
PICO2 = PortInfo("/dev/ttyACM1", "Board in FS mode", True, "E6614C311B7A9999")


def test_the_table_has_every_command():
    assert sorted(COMMANDS) == sorted(
        ["ports", "flash", "info", "record", "stream", "replay", "plot", "emulate", "bench", "serve"]
    )


def _options(name: str) -> list[str]:
    """What the command's setup defines: every option string, and the positionals' names."""
    p = argparse.ArgumentParser(prog=f"picodaq {name}")
    COMMANDS[name].setup(p)
    names = []
    for action in p._actions:  # argparse keeps no public list; the help it prints is what is checked
        names += action.option_strings or [action.dest]
    return names


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_of_every_command_names_each_option(name, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as ended:
        main([name, "--help"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: picodaq {name}")
    assert COMMANDS[name].help in out
    options = _options(name)
    assert len(options) > 1  # --help and at least one of its own
    for option in options:
        assert option in out, f"picodaq {name} --help does not show {option}"


def test_record_with_several_boards_attached_says_why_it_uses_an_emulated_board(monkeypatch, capsys):
    """Several boards and no --port: record never guesses, it says so and records from an emulated
    board (here a pty standing in for one; nothing is opened)."""
    from contextlib import ExitStack

    from picodaq.cli import connect as cli_connect

    primary, secondary = os.openpty()
    tty = os.ttyname(secondary)
    opened = []

    class FakeLink:
        @staticmethod
        def open(port):
            opened.append(port)
            return FakeLink()

        def close(self):
            pass

    monkeypatch.setattr("picodaq.transport.ports.serial_ports", lambda: [PICO, PICO2])
    monkeypatch.setattr(cli_connect, "start_emulated", lambda stack: tty)
    monkeypatch.setattr(cli_connect, "Link", FakeLink)
    monkeypatch.setattr(cli_connect, "wake_firmware", lambda link, say: None)  # no firmware to PING here
    try:
        with ExitStack() as stack:
            link, usb = cli_connect.connect(None, stack)
    finally:
        os.close(primary)
        os.close(secondary)
    assert opened == [tty] and usb is None
    assert capsys.readouterr().err.splitlines() == [
        "picodaq: 2 boards attached (/dev/ttyACM0, /dev/ttyACM1); pass --port to pick one. "
        "Using an emulated board instead.",
        f"picodaq: using an emulated board on {tty}, freshly flashed",
    ]
