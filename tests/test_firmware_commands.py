"""The firmware's command input on the unix-port board (main.py, through a pty):
PROTOCOL.md's receiving rules (a rejected header or a CRC mismatch at offset p
resumes the hunt for magic at p + 1, so no intact COMMAND is lost), the escape
to the REPL (a pause, then CR Ctrl-C CR, while idle; firmware/README.md) and
the tools that use it."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import picodaq
from fwhelpers import Recording, stop_stream
from picodaq import contracts as C
from picodaq.firmware import REPL_ESCAPE, REPL_ESCAPE_PAUSE
from picodaq.flash import Flasher
from picodaq.frames import encode_command, encode_frame
from picodaq.link import Link
from picodaq.messages import Ack

MPREMOTE = str(Path(sys.executable).with_name("mpremote"))


def ping(cmd_id: int, seq: int = 0x7000) -> bytes:
    return encode_command(seq, C.OP_PING, cmd_id)


def broken_crc(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x55])


class Commands:
    """A Link to a board, with the cmd_id of every ACK in the order they came."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.acked: list[int] = []
        link.receiver.frame_handlers.append(self._seen)

    def _seen(self, frame) -> None:
        if frame.type == C.MSG_ACK:
            self.acked.append(Ack.parse(frame.payload).cmd_id)

    def send(self, data: bytes) -> None:
        self.link.write(data)

    def until_acked(self, cmd_id: int, timeout: float = 10.0) -> bool:
        """Wait for the ACK to cmd_id: every command sent before it is answered by then."""
        return self.link.pump_until(lambda: cmd_id in self.acked, timeout)

    def exchange(self, data: bytes, last: int) -> list[int]:
        """Send data (ending in a command whose cmd_id is last); the ACKs it brought, in order."""
        before = len(self.acked)
        self.send(data)
        assert self.until_acked(last), f"no ACK to {last:#06x}; ACKs seen: {[hex(i) for i in self.acked[before:]]}"
        return self.acked[before:]


@pytest.fixture
def idle_board(make_board):
    """Commands to a fresh board running main.py, synchronised by one PING."""
    board = make_board()
    with Link.open(board.port) as link:
        cmds = Commands(link)
        assert cmds.exchange(ping(0x0001), 0x0001) == [0x0001]
        yield cmds


# -- the receiving rules, case by case ---------------------------------------------------

A, B, D = 0x0A0A, 0x0B0B, 0x0D0D
HIDDEN = {
    # a COMMAND whose magic sits inside a header rejected before its end
    "as the version byte": (b"\xa5\x5a" + ping(A), [A]),
    "as the type byte": (b"\xa5\x5a\x01" + ping(A), [A]),
    "as the length field": (b"\xa5\x5a\x01\x10" + ping(A), [A]),  # length 0x5AA5 > 32
    "after a lone magic byte": (b"\xa5" + ping(A), [A]),
    "after a length under 4": (b"\xa5\x5a\x01\x10\x02\x00" + ping(A), [A]),
    "after a length over 32": (b"\xa5\x5a\x01\x10\x21\x00" + ping(A), [A]),
    "in the payload of an intact LOG frame (not a COMMAND)": (encode_frame(C.MSG_LOG, 7, b"\x14" + ping(A)), [A]),
    # a COMMAND after, or starting inside, a frame whose CRC fails
    "after a bad CRC": (broken_crc(ping(A)) + ping(B), [B]),
    "inside a COMMAND whose CRC fails": (broken_crc(encode_command(9, 0x63, A, ping(B))), [B]),
    "two, inside a header whose length swallows both": (
        b"\xa5\x5a\x01\x10\x20\x00\x00\x00\x00\x00" + ping(A) + ping(B), [A, B]),
    # a COMMAND header whose payload holds a PING and whose CRC field is the next PING's start
    "inside a bad CRC, then one across its end": (
        b"\xa5\x5a\x01\x10\x16\x00\x09\x00\x00\x00" + b"\x63\x00\x0a\x0a" + ping(B) + ping(D), [B, D]),
    # issue 19: these four bytes, then a PING whose seq and cmd_id hold 0x03 and 0x01
    "after A5 5A 07 10": (b"\xa5\x5a\x07\x10" + encode_command(0x01030103, C.OP_PING, 0x0103), [0x0103]),
}


@pytest.mark.parametrize("stream, expected", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_command_hidden_in_a_rejected_candidate_is_answered(idle_board, stream, expected):
    assert idle_board.exchange(stream, expected[-1]) == expected
    assert idle_board.exchange(ping(0x0E0E), 0x0E0E) == [0x0E0E]  # and the board is still there


# -- the escape to the REPL ---------------------------------------------------------------

def pause() -> None:
    """The stimulus, not a wait: a host sending nothing for REPL_ESCAPE_PAUSE (the firmware needs 50 ms)."""
    time.sleep(REPL_ESCAPE_PAUSE)


class Said:
    """A raw tap keeping what the board printed, to see whether a REPL answered."""

    def __init__(self, link: Link) -> None:
        self.buf = bytearray()
        link.raw_taps.append(self)

    def __call__(self, chunk: memoryview) -> None:
        self.buf += chunk
        del self.buf[:-65536]

    def left_the_firmware(self) -> bool:
        return b"raw REPL" in self.buf or b"MicroPython " in self.buf


NOT_THE_ESCAPE = {
    "no pause before it": (False, REPL_ESCAPE + b"\x01"),
    "Ctrl-C alone": (True, b"\x03\x01"),
    "CR Ctrl-C, no second CR": (True, b"\r\x03\x01"),
    "CR Ctrl-C Ctrl-C, then a command": (True, b"\r\x03\x03"),
    "Ctrl-C CR": (True, b"\x03\r\x01"),
    "two CRs at once, Ctrl-C, CR": (True, b"\r\r\x03\r\x01"),
    "CR LF Ctrl-C CR": (True, b"\r\n\x03\r\x01"),
}


@pytest.mark.parametrize("after_pause, data", NOT_THE_ESCAPE.values(), ids=NOT_THE_ESCAPE.keys())
def test_only_the_escape_leaves_the_idle_firmware(idle_board, after_pause, data):
    said = Said(idle_board.link)
    if after_pause:
        pause()
        idle_board.send(data + ping(0x0202))  # one write: no pause inside it
    else:
        idle_board.send(ping(0x0101) + data + ping(0x0202))
    assert idle_board.until_acked(0x0202)
    assert idle_board.exchange(ping(0x0303), 0x0303) == [0x0303]
    assert not said.left_the_firmware(), bytes(said.buf)


def test_a_human_at_a_terminal_reaches_the_repl_and_ctrl_d_restarts_the_firmware(idle_board):
    link = idle_board.link
    said = Said(link)
    pause()
    for key in (b"\r", b"\x03", b"\r"):  # Enter, Ctrl-C, Enter, typed by hand
        link.write(key)
        pause()
    assert link.pump_until(lambda: b">>> " in said.buf, 10), bytes(said.buf)
    hellos = link.receiver.hellos
    link.write(b"\x04")  # Ctrl-D: a soft reboot runs main.py
    assert link.pump_until(lambda: link.receiver.hellos > hellos, 10)
    assert idle_board.exchange(ping(0x0404), 0x0404) == [0x0404]


def test_the_escape_does_not_end_a_stream(make_board):
    board = make_board()
    with Link.open(board.port) as link:
        cmds = Commands(link)
        said = Said(link)
        link.configure(2000, 0x3, C.SRC_RAMP, C.FMT_INT16, 32)
        rec = Recording(C.FMT_INT16, 2)
        link.receiver.block_handlers.append(rec)
        link.start()
        assert link.pump_until(lambda: len(rec.first) >= 20, 10)
        pause()
        assert cmds.exchange(REPL_ESCAPE + b"\x01" + ping(0x0505), 0x0505) == [0x0505]
        assert link.pump_until(lambda: len(rec.first) >= 60, 10)
        final = stop_stream(link)
        assert final.last_error == C.ST_OK and final.samples_dropped == 0
        assert rec.bad == [] and rec.gaps() == []
        assert not said.left_the_firmware()


def _mpremote(port: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=60)


def test_mpremote_and_flash_check_reach_the_running_firmware(make_board):
    """Unmodified mpremote, and `picodaq flash --check`, against the firmware as it runs:
    idle right after answering a command, and (flash, which sends STOP first) streaming."""
    board = make_board()
    Flasher(board.port, hello_timeout=10).flash()  # the image --check compares with
    with Link.open(board.port) as link:
        assert link.ping().status == C.ST_OK
    r = picodaq("flash", "--check", "--port", board.port)
    assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr
    with Link.open(board.port) as link:  # --check resets the board into its firmware again
        assert link.ping().status == C.ST_OK
        link.configure(4000, 0xF, C.SRC_RAMP, C.FMT_INT16, 32)
        link.start()
        assert link.pump_until(lambda: link.receiver.stats.samples > 4000, 10)
    # a host that died without STOP: the board streams on
    r = picodaq("flash", "--check", "--port", board.port)
    assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr
    with Link.open(board.port) as link:
        assert link.ping().status == C.ST_OK and link.get_status().state == C.STATE_IDLE
    r = _mpremote(board.port, "fs", "ls", ":picodaq_fw")
    assert r.returncode == 0 and "app.mpy" in r.stdout, r.stdout + r.stderr

