"""The firmware's command input on the unix-port board (main.py, through a pty):
PROTOCOL.md's receiving rules (a rejected header or a CRC mismatch at offset p
resumes the hunt for magic at p + 1, so no intact COMMAND is lost), the escape
to the REPL (a pause, then CR Ctrl-C CR, while idle; firmware/README.md) and
the tools that use it, and random and damaged streams sent to an idle and a
streaming board, with the exact list of commands each one holds as the oracle."""
from __future__ import annotations

import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import Phase, assume, example, given, settings
from hypothesis import strategies as st

from cli_helpers import picodaq
from fwhelpers import Recording, stop_stream
from hypo import examples
from picodaq import contracts as C
from picodaq.flash.firmware import REPL_ESCAPE, REPL_ESCAPE_PAUSE
from picodaq.flash.flasher import Flasher
from picodaq.protocol.frames import encode_command, encode_frame
from picodaq.transport.link import Link
from picodaq.protocol.messages import Ack

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

    def until_acked(self, cmd_id: int, timeout: float = 30.0) -> bool:
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


THE_ESCAPE = {
    "mpremote's": (b"", REPL_ESCAPE),
    "pyboard.py's older, with two Ctrl-C": (b"", b"\r\x03\x03\r"),
    "with a cut command held (a host killed mid-write)": (b"\xa5\x5a\x01\x10\x20\x00\x05", REPL_ESCAPE),
}


@pytest.mark.parametrize("before, escape", THE_ESCAPE.values(), ids=THE_ESCAPE.keys())
def test_the_escape_then_ctrl_a_reaches_the_raw_repl(idle_board, before, escape):
    said = Said(idle_board.link)
    idle_board.send(before)
    pause()
    idle_board.send(escape + b"\x01")
    assert idle_board.link.pump_until(lambda: b"raw REPL; CTRL-B to exit\r\n>" in said.buf, 30), bytes(said.buf)


def test_a_human_at_a_terminal_reaches_the_repl_and_ctrl_d_restarts_the_firmware(idle_board):
    link = idle_board.link
    said = Said(link)
    pause()
    for key in (b"\r", b"\x03", b"\r"):  # Enter, Ctrl-C, Enter, typed by hand
        link.write(key)
        pause()
    assert link.pump_until(lambda: b">>> " in said.buf, 30), bytes(said.buf)
    hellos = link.receiver.hellos
    link.write(b"\x04")  # Ctrl-D: a soft reboot runs main.py
    assert link.pump_until(lambda: link.receiver.hellos > hellos, 30)
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
        assert link.pump_until(lambda: len(rec.first) >= 20, 30)
        pause()
        assert cmds.exchange(REPL_ESCAPE + b"\x01" + ping(0x0505), 0x0505) == [0x0505]
        assert link.pump_until(lambda: len(rec.first) >= 60, 30)
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
        assert link.pump_until(lambda: link.receiver.stats.samples > 4000, 30)
    # a host that died without STOP: the board streams on
    r = picodaq("flash", "--check", "--port", board.port)
    assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr
    with Link.open(board.port) as link:
        assert link.ping().status == C.ST_OK and link.get_status().state == C.STATE_IDLE
    r = _mpremote(board.port, "fs", "ls", ":picodaq_fw")
    assert r.returncode == 0 and "app.mpy" in r.stdout, r.stdout + r.stderr


# -- random and damaged command streams ------------------------------------------------------

def commands_in(data: bytes) -> list[int]:
    """The cmd_ids of the COMMANDs in data, in order, found by PROTOCOL.md's receiving
    rules over the one type the firmware accepts (a COMMAND of 4..32 payload bytes):
    a failure at offset p resumes the hunt at p + 1; a candidate still incomplete at
    the end waits for more bytes. Written from PROTOCOL.md, not from the firmware."""
    found = []
    p = 0
    while (p := data.find(C.MAGIC, p)) >= 0 and p + 6 <= len(data):
        length = data[p + 4] | data[p + 5] << 8
        if data[p + 2] != C.PROTOCOL_VERSION or data[p + 3] != C.MSG_COMMAND or not 4 <= length <= 32:
            p += 1
            continue
        end = p + C.OVERHEAD + length
        if end > len(data):
            break
        if zlib.crc32(data[p:end - 4]) == int.from_bytes(data[end - 4:end], "little"):
            found.append(int.from_bytes(data[p + 12:p + 14], "little"))
            p = end
        else:
            p += 1
    return found


# commands that change nothing a later example depends on (no START, STOP, CONFIGURE)
HARMLESS = (C.OP_PING, C.OP_GET_STATUS, C.OP_GET_INFO, C.OP_MARK, 0x63)
CONTROL = (b"\x03", b"\x01", b"\r", b"\x04", b"\r\x03", REPL_ESCAPE, REPL_ESCAPE + b"\x01")
ESCAPE_AT_START = re.compile(rb"\r\x03+\r")
FINAL_IDS = 0xF000  # the PINGs that end each example; junk uses ids below


@st.composite
def a_command(draw) -> bytes:
    op = draw(st.sampled_from(HARMLESS))
    args = draw(st.binary(min_size=2, max_size=2)) if op == C.OP_MARK else b""
    return encode_command(draw(st.integers(0, 0xFFFFFFFF)), op, draw(st.integers(0, FINAL_IDS - 1)), args)


@st.composite
def a_damaged_command(draw) -> bytes:
    frame = bytearray(draw(a_command()))
    how = draw(st.sampled_from(("flip", "cut", "magic", "swallow")))
    if how == "flip":  # bit errors
        for _ in range(draw(st.integers(1, 4))):
            frame[draw(st.integers(0, len(frame) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif how == "cut":  # bytes lost at the head, the tail or inside
        a = draw(st.integers(0, len(frame) - 1))
        b = draw(st.integers(a + 1, len(frame)))
        del frame[a:b]
    elif how == "magic":  # a magic (or a whole header start) injected inside it
        at = draw(st.integers(0, len(frame)))
        frame[at:at] = draw(st.sampled_from((C.MAGIC, C.MAGIC * 2, C.MAGIC + b"\x01\x10")))
    else:  # its header repeated: the first copy's length swallows what follows
        frame[0:0] = frame[:draw(st.integers(2, 10))]
    return bytes(frame)


pieces = st.one_of(
    a_command(),
    a_damaged_command(),
    st.binary(max_size=48),
    st.sampled_from((C.MAGIC, C.MAGIC + b"\x01\x10", C.MAGIC + b"\x01\x10\x20\x00", b"\xa5\x5a\x07\x10")),
    st.lists(st.sampled_from(CONTROL), min_size=1, max_size=4).map(b"".join),
)


@st.composite
def junk(draw) -> bytes:
    data = bytearray(b"".join(draw(st.lists(pieces, max_size=6))))
    for _ in range(draw(st.integers(0, 5))):  # control bytes sprinkled anywhere
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.sampled_from(CONTROL))
    return bytes(data)


# the suite's profile (tests/hypo.py: derandomized, the same examples on every run), few
# enough examples for ~20 s
DAMAGE = settings(max_examples=examples(60),
                  phases=[Phase.explicit, Phase.generate])  # no shrinking: the board carries state


def _send_junk(cmds: Commands, data: bytes, after_pause: bool, final: int) -> None:
    """data, then a PING with cmd_id final (again, until the rules find one), in one write;
    the board must answer exactly the commands the receiving rules find in it."""
    if after_pause:
        pause()  # a host that was silent, then sends this
        out = data
    else:
        out = ping(final - 1) + data  # right behind a command: no pause before the junk
    out += ping(final)
    while not commands_in(out) or commands_in(out)[-1] != final:
        out += ping(final)  # a host's retry: the junk held a header whose length swallowed it
    expected = commands_in(out)
    before = len(cmds.acked)
    cmds.send(out)
    got = lambda: cmds.acked[before:]
    assert cmds.link.pump_until(lambda: len(got()) >= len(expected), 30), (out.hex(), expected, got())
    assert got() == expected, (out.hex(), expected, got())


def test_random_and_damaged_streams_leave_the_idle_board_answering(idle_board):
    said = Said(idle_board.link)
    finals = iter(range(FINAL_IDS, 0x10000, 2))

    @DAMAGE
    @given(data=junk(), after_pause=st.booleans())
    @example(data=b"\xa5\x5a\x07\x10" + encode_command(0x01030103, C.OP_PING, 0x0103), after_pause=True)
    @example(data=REPL_ESCAPE + b"\x01", after_pause=False)
    def run(data: bytes, after_pause: bool) -> None:
        # after a pause, CR Ctrl-C CR first is the escape itself (the one way out, by design)
        assume(not (after_pause and ESCAPE_AT_START.match(data)))
        _send_junk(idle_board, data, after_pause, next(finals) + 1)
        assert not said.left_the_firmware(), bytes(said.buf[-200:])

    run()
    assert idle_board.link.get_status().state == C.STATE_IDLE


def test_random_and_damaged_streams_leave_a_stream_exact(make_board):
    """While streaming the escape is off: no stream, not even the escape after a pause,
    ends it. Every frame still arrives exact, every command in the junk is answered."""
    board = make_board()
    finals = iter(range(FINAL_IDS, 0x10000, 2))
    with Link.open(board.port) as link:
        cmds = Commands(link)
        said = Said(link)
        link.configure(2000, 0x3, C.SRC_RAMP, C.FMT_INT16, 32)
        rec = Recording(C.FMT_INT16, 2)
        link.receiver.block_handlers.append(rec)
        link.start()
        assert link.pump_until(lambda: len(rec.first) >= 2, 30)
        s0 = link.receiver.stats.as_dict()

        @DAMAGE
        @given(data=junk(), after_pause=st.booleans())
        @example(data=REPL_ESCAPE + b"\x01", after_pause=True)
        def run(data: bytes, after_pause: bool) -> None:
            _send_junk(cmds, data, after_pause, next(finals) + 1)

        run()
        n = len(rec.first)
        assert link.pump_until(lambda: len(rec.first) >= n + 10, 30), "the stream stopped"
        final = stop_stream(link)
        assert final.last_error == C.ST_OK and final.samples_dropped == 0
        assert rec.bad == [] and rec.gaps() == []
        s = link.receiver.stats.as_dict()
        for k in ("crc_errors", "header_errors", "skipped_bytes", "seq_lost", "samples_lost", "decode_errors"):
            assert s[k] == s0[k], (k, s0, s)
        assert not said.left_the_firmware()
