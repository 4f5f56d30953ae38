"""Talking to a board's REPL around its firmware: commands that are inert in a REPL,
waiting for a board to fall quiet, and reading what it printed or raised."""

from __future__ import annotations

import contextlib
import errno
import io
import re
import select
import time

import serial
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from .. import contracts as C
from ..errors import DeviceError
from ..protocol.frames import encode_command
from .firmware import REPL_ESCAPE_PAUSE

ESCAPE_TRY = 3.0  # seconds one try to reach the raw REPL waits for its banner


def inert_command(opcode: int, seq: int = 0x20202020) -> bytes:
    """A COMMAND frame for the firmware that does nothing in a REPL that reads it instead.

    The bytes the host chooses (seq, cmd_id) and the CRC they lead to are all
    printable ASCII, so the frame holds no Enter (nothing gets executed), no
    Ctrl-C (older firmware's way back to the REPL), no ESC; the only control
    bytes left are the header's and the opcode, which edit a line at most. A
    Ctrl-C after it then discards whatever line it typed.
    """
    if opcode in (0x03, 0x0A, 0x0D, 0x1B):
        raise ValueError(f"opcode {opcode} is itself a control key in a REPL")
    for cmd_id in range(0x2020, 0x7F7F):
        if not _printable(cmd_id.to_bytes(2, "little")):
            continue
        frame = encode_command(seq, opcode, cmd_id)
        if _printable(frame[6:10]) and _printable(frame[12:]):
            return frame
    raise AssertionError("no REPL-safe command id")  # pragma: no cover (one in ~50 ids qualifies)


def _printable(b: bytes) -> bool:
    return all(0x20 <= x <= 0x7E for x in b)


def drain(port: serial.SerialBase, quiet: float, limit: float) -> tuple[bytes, bool]:
    """Read and drop input until none came for `quiet` seconds, for at most `limit`
    seconds; returns the last bytes read and whether the line went quiet."""
    got = bytearray()
    fd = None
    with contextlib.suppress(AttributeError, NotImplementedError, io.UnsupportedOperation, serial.SerialException):
        fd = port.fileno()
    end = time.monotonic() + limit
    last = time.monotonic()
    while True:
        now = time.monotonic()
        if now - last >= quiet:
            return bytes(got), True
        if now >= end:
            return bytes(got), False
        if fd is not None:
            select.select([fd], [], [], min(quiet - (now - last), end - now))
        n = port.in_waiting
        if n:
            got += port.read(n)
            del got[:-4096]
            last = time.monotonic()
        elif fd is None:
            time.sleep(0.01)


def errno_of(error_output: str) -> int | None:
    """The errno of an OSError in a MicroPython traceback ("OSError: [Errno 28] ENOSPC" or "OSError: 28")."""
    m = re.search(r"OSError: (?:\[Errno )?(\d+)", error_output)
    if m:
        return int(m.group(1))
    m = re.search(r"OSError: .*?\b(E[A-Z]+)\b", error_output)
    return getattr(errno, m.group(1), None) if m else None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"


def board_text(raw: bytes) -> tuple[str, bool]:
    """The readable lines a board printed after its reboot (frames, control bytes,
    the reboot line, REPL banners and prompts dropped), and whether it reached its REPL."""
    text = raw.decode("utf-8", "replace").replace("\r", "")
    text = text.rsplit("soft reboot\n", 1)[-1]
    text = re.sub(r"[^\x20-\x7e\n]+", " ", text)
    lines = [line.strip() for line in text.splitlines()]
    in_repl = any(line.startswith('Type "help()"') for line in lines) or (bool(lines) and lines[-1] == ">>>")
    keep = [
        line
        for line in lines
        if line
        and line not in (">>>", ">")
        and not line.startswith('Type "help()"')
        and not line.startswith("MicroPython ")
    ]
    return "\n".join(keep), in_repl


def snippet(text: str, n: int = 160) -> str:
    """The last line of text (where a traceback says what went wrong), shortened."""
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else text
    return repr(last if len(last) <= n else "..." + last[-n:])


def quiet_board(port: serial.SerialBase, name: str, limit: float, then: str) -> None:
    """End a stream, then wait for quiet: the pause the firmware's escape to the REPL needs.

    The Ctrl-Cs are for what else may run there: a program that takes Ctrl-C, or firmware
    older than the escape (it left on a bare Ctrl-C). mpremote empties the input before
    entering the raw REPL for as long as bytes keep coming: a board that never falls silent
    would hold it forever. then: what to try again after resetting ("flash", ...)."""
    port.write(b"\x03" + inert_command(C.OP_STOP) + b"\x03")
    port.flush()
    said, quiet = drain(port, quiet=REPL_ESCAPE_PAUSE, limit=limit)
    if not quiet:
        text, _ = board_text(said)
        raise DeviceError(
            f"the board on {name} keeps sending after STOP and Ctrl-C (a program that "
            f"ignores Ctrl-C?); reset or unplug it, then {then} again" + (f"; it says {snippet(text)}" if text else "")
        )


def enter_raw_repl(t: SerialTransport, name: str, timeout: float, then: str) -> bool:
    """Stop the firmware (quiet_board), then enter the raw REPL with a soft reset (mpremote's); False
    if none answered within timeout. A board that was just plugged in (or reset) may still be loading
    its firmware: what is sent meanwhile waits, and reaches the app in one piece, with no pause
    before the escape in it. So a try that gets no raw REPL stops the firmware again (its STOP then
    finds the app up) and tries again, until the timeout; a board that keeps talking is named so
    (DeviceError), at the first try or after the last. mpremote prints what it got when a try
    fails: the caller keeps stdout for that (the flasher's error says it)."""
    quiet_board(t.serial, name, max(3.0, timeout), then)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            t.enter_raw_repl(soft_reset=True, timeout_overall=max(0.5, min(left, ESCAPE_TRY)))
            return True
        except TransportError:
            # a board still talking is why none answered (quiet_board says so, even after the last
            # try: a lull of a starved board may have let the first one pass); a quiet one may
            # have been loading its firmware, and gets another try until the timeout
            quiet_board(t.serial, name, max(3.0, timeout), then)
            if deadline - time.monotonic() <= 0:
                return False
