"""The firmware's command input on the unix-port board (main.py, through a pty):
PROTOCOL.md's receiving rules (a rejected header or a CRC mismatch at offset p
resumes the hunt for magic at p + 1, so no intact COMMAND is lost), exact
oracles for which commands a byte stream holds, random and damaged streams
sent to an idle and a streaming board."""
from __future__ import annotations

import pytest

from picodaq import contracts as C
from picodaq.frames import encode_command, encode_frame
from picodaq.link import Link
from picodaq.messages import Ack


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
