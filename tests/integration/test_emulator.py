"""The emulated board behaves like a board across resets: soft reboots driven by
mpremote's own byte sequences, a hard reset, and an unplug."""

from __future__ import annotations

import os
import time

import pytest
from mpremote.transport_serial import SerialTransport

from picodaq import contracts as C
from picodaq.boards.unix import EmulatedBoard
from picodaq.errors import LinkError
from picodaq.transport.link import Link
from waiting import wait_for

BOOT_MAIN = "import sys\nsys.stdout.write('BOOTED-MAIN\\r\\n')\n"


@pytest.fixture
def board():
    b = EmulatedBoard(unplug_seconds=0.5)
    (b.flash / "main.py").write_text(BOOT_MAIN)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def firmware_board():
    """A board with the firmware copied in (install_firmware: tests of flashing use Flasher)."""
    b = EmulatedBoard(unplug_seconds=0.5)
    b.install_firmware()
    b.start()
    yield b
    b.stop()


def test_soft_reboots_follow_the_repl_the_board_is_in(board):
    t = SerialTransport(board.port, exclusive=True, timeout=10)
    try:
        # mpremote's sequence: Ctrl-C, Ctrl-A, then Ctrl-D: a soft reboot that stays in the raw REPL
        t.enter_raw_repl(soft_reset=True)
        assert t.eval("1 + 1") == 2
        # output that looks like the friendly REPL, or a raw banner, must not confuse the supervisor
        t.exec(
            "print('\\n>>> ')\nprint('raw REPL; CTRL-B to exit')\nprint('Type \"help()\" for more information.\\n>>> ')"
        )
        t.exec("open('state', 'w').write('kept')")
        t.read_until(1, b">", timeout=30)  # the prompt after the last command
        t.serial.write(b"\x04")  # Ctrl-D on an empty raw-REPL line
        said = t.read_until(1, b"raw REPL; CTRL-B to exit\r\n>", timeout=30)
        assert b"MPY: soft reboot\r\n" in said and said.endswith(b"raw REPL; CTRL-B to exit\r\n>")
        assert b"BOOTED-MAIN" not in said  # main.py does not run when rebooting in the raw REPL
        t.serial.write(b"\x01")  # back to exec'ing in the (re-entered) raw REPL
        t.read_until(1, b"raw REPL; CTRL-B to exit\r\n", timeout=30)
        assert t.eval("open('state').read()") == "kept"  # the flash survives
        # Ctrl-B then Ctrl-D in the friendly REPL: a soft reboot that runs main.py
        t.exit_raw_repl()
        t.read_until(1, b">>> ", timeout=30)
        t.serial.write(b"\x04")
        said = t.read_until(1, b"BOOTED-MAIN\r\n", timeout=30)
        assert said.endswith(b"MPY: soft reboot\r\nBOOTED-MAIN\r\n")
    finally:
        t.close()


def test_a_hard_reset_reboots_a_streaming_board(firmware_board):
    with Link.open(firmware_board.port) as link:
        link.get_info()
        link.configure(1000, 0x3, C.SRC_RAMP, C.FMT_INT16, 32)
        link.start()
        assert link.pump_until(lambda: link.receiver.stats.samples > 100, 30)
        hellos = link.receiver.hellos
        t_reset = time.monotonic()
        firmware_board.hard_reset()
        assert link.pump_until(lambda: link.receiver.hellos > hellos, 60), "no HELLO after the reset"
        status = link.get_status()
        # a fresh boot: the board has been up for less time than has passed since the reset
        assert status.state == C.STATE_IDLE and status.uptime_ms <= (time.monotonic() - t_reset) * 1000
        before = link.receiver.stats.samples
        link.start()  # the rebooted board streams again, from sample 0
        assert link.pump_until(lambda: link.receiver.stats.samples > before + 100, 30)
        link.stop()


def _identity(path: str) -> tuple[int, int] | None:
    """The port as a file (the symlink itself): a port made again is another one, even at the same path."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_ctime_ns


def test_an_unplug_takes_the_port_and_the_power_away(firmware_board):
    port = firmware_board.port
    before = _identity(port)
    with Link.open(port) as link:
        link.get_info()
        link.configure(1000, 0x1, C.SRC_RAMP, C.FMT_INT16, 32)
        link.start()
        assert link.pump_until(lambda: link.receiver.stats.samples > 50, 60)
        t_unplug = time.monotonic()
        firmware_board.unplug()
        with pytest.raises(LinkError):
            link.pump_until(lambda: False, 60)  # the open port fails, as a vanished ttyACM does
    # the port went away and a new one came back under the same path (however short the unplug
    # was against this test's scheduling: the vanished moment itself is not waited for)
    wait_for(lambda: _identity(port) not in (None, before), 60, what="a new port at the same path")
    with Link.open(port) as link:
        status = link.get_status()
        assert status.state == C.STATE_IDLE and status.uptime_ms <= (time.monotonic() - t_unplug) * 1000  # a fresh boot
        assert link.get_info().contract_hash == C.CONTRACT_HASH


def test_a_hard_reset_is_refused_once_the_board_stopped(board):
    board.stop()
    with pytest.raises(RuntimeError, match="not running"):
        board.hard_reset()


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d))
    return out


def test_the_board_dies_with_a_supervisor_killed_outright(firmware_board):
    """kill -9 of the supervisor gives it no chance to stop its child: the kernel does (issue 16, item 11).
    A streaming firmware would run on, writing into a pty nobody holds."""
    board = firmware_board
    assert board.proc is not None
    child = wait_for(lambda: _children(board.proc.pid), what="the micropython child")[0]
    with Link.open(board.port) as link:
        link.configure(1000, 0xFF, C.SRC_RAMP, C.FMT_INT16, 20)
        link.start()
        wait_for(lambda: link.pump(0.05) and link.receiver.stats.samples > 0, what="samples")
        os.kill(board.proc.pid, 9)
        board.proc.wait()
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or _state(child) == "Z", 10, what="the child to die")


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
