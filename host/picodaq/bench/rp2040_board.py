"""The emulated Pico the rp2040 figure runs on (rp2040.py says what it measures).

One flash image made by `picodaq flash`; boards started from copies of it. The
board's raw REPL (mpremote's, reached as the flasher reaches it), the MicroPython
probe scripts run there (device/rp2040_probe.py, device/rp2040_budget.py), and the
write test: busy cycles per byte the firmware spends writing to the USB CDC link
while the host reads.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from ..errors import PicodaqError
from ..flash.repl import enter_raw_repl
from ..transport.link import Link

PROBE = Path(__file__).with_name("device") / "rp2040_probe.py"
BUDGET = Path(__file__).with_name("device") / "rp2040_budget.py"

Say = Callable[[str], None]


class Rp2040BenchError(PicodaqError):
    pass


class Pico:
    """A flash image made once by `picodaq flash` (or given: one that `picodaq flash` made of this
    firmware, as the rp2040 tests' session image); boards started from copies of it."""

    def __init__(self, say: Say, image: Path | None = None) -> None:
        self.say = say
        self._tmp = tempfile.TemporaryDirectory(prefix="picodaq-bench-rp2040-")
        self.root = Path(self._tmp.name)
        self.given = image
        self.image = image or self.root / "template" / "flash.bin"
        self.boards = 0

    def close(self) -> None:
        self._tmp.cleanup()

    def flash(self) -> float:
        """Seconds `picodaq flash` took on an empty emulated Pico (0 with an image given)."""
        from picodaq.boards.rp2040 import Rp2040Board

        if self.given is not None:
            if not self.given.is_file():
                raise Rp2040BenchError(f"no flash image at {self.given}")
            return 0.0
        t0 = time.monotonic()
        with Rp2040Board(flash=self.root / "template") as board:
            board.start()
            r = subprocess.run(
                [sys.executable, "-m", "picodaq", "flash", "--port", board.port, "--timeout", "90"],
                capture_output=True,
                text=True,
                timeout=300,
            )
        if r.returncode:
            raise Rp2040BenchError(f"picodaq flash on the emulated RP2040 failed: {r.stderr.strip()[-300:]}")
        return time.monotonic() - t0

    def board(self) -> Any:
        from picodaq.boards.rp2040 import Rp2040Board

        self.boards += 1
        folder = self.root / f"board{self.boards}"
        folder.mkdir()
        shutil.copyfile(self.image, folder / "flash.bin")
        board = Rp2040Board(flash=folder).start()
        _wait_for_firmware(board.port)
        return board


def _wait_for_firmware(port: str, timeout: float = 120.0) -> None:
    from picodaq.errors import CommandTimeout

    deadline = time.monotonic() + timeout
    with Link.open(port) as link:
        while not link.pump_until(lambda: link.receiver.hellos > 0, 2.0):
            try:
                link.get_info()
                return
            except CommandTimeout:
                if time.monotonic() > deadline:
                    raise Rp2040BenchError(f"the firmware on {port} never answered") from None


class RawRepl:
    """The board's raw REPL through mpremote's serial transport, reached as `picodaq flash` reaches
    it (flash.repl.enter_raw_repl: the firmware stopped, the raw REPL, a soft reset: a fresh heap)."""

    def __init__(self, port: str) -> None:
        self.port = port
        self.said = io.StringIO()  # what mpremote prints when a try fails
        self.t = SerialTransport(port, baudrate=115200, exclusive=True, timeout=30.0)  # a read of its answers
        self.fd = self.t.serial.fileno()

    def close(self) -> None:
        try:
            self.t.close()
        except OSError:  # the port went away (a reset): mpremote's close sets RTS and DTR first
            self.t.serial.close()

    def enter(self, timeout: float = 60.0) -> None:
        with contextlib.redirect_stdout(self.said):
            if not enter_raw_repl(self.t, self.port, timeout, "run the benchmark"):
                raise Rp2040BenchError(f"no raw REPL within {timeout:g} s: {self.said.getvalue().strip()[-200:]}")

    def exec(self, code: bytes, timeout: float) -> str:
        """Run code; its output (a traceback is a Rp2040BenchError)."""
        try:
            out, err = self.t.exec_raw(code, timeout=timeout)
        except TransportError as e:
            raise Rp2040BenchError(f"the board did not finish: {e}") from None
        if err.strip():
            raise Rp2040BenchError(f"the probe failed on the board: {err.decode(errors='replace').strip()[-400:]}")
        return out.decode(errors="replace")

    def start(self, code: bytes) -> None:
        """Start code and return at once: its output is the caller's to read from fd, up to b"\\x04>"."""
        try:
            self.t.exec_raw_no_follow(code)
        except TransportError as e:
            raise Rp2040BenchError(f"the board refused the code: {e}") from None


# -- 1 and 2: the probe, and writing ---------------------------------------------------


def run_probe(board: Any, quick: bool, script: Path) -> list[dict[str, Any]]:
    repl = RawRepl(board.port)
    try:
        repl.enter()
        code = f"PROBE_QUICK = {quick!r}\n".encode() + script.read_bytes()
        text = repl.exec(code, timeout=600)
    finally:
        repl.close()
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    if not rows or not rows[-1].get("done"):
        raise Rp2040BenchError(f"the probe stopped early: {text[-300:]!r}")
    return rows[:-1]


WRITER = """
import sys, micropython
def go(n, size):
    out = sys.stdout.buffer
    buf = bytearray(size)
    for i in range(size):
        buf[i] = 0x41 + i % 26
    micropython.heap_lock()
    for i in range(n):
        k = 0
        while k < size:
            w = out.write(buf, k, size - k)
            if w:
                k += w
    micropython.heap_unlock()
go(N_WRITES, WRITE_SIZE)
"""


def write_cost(board: Any, size: int, total: int) -> dict[str, Any]:
    """Busy cycles per byte while the firmware writes blocks of `size` bytes and the host reads:
    between the first tenth and nine tenths of `total` bytes (the rest is start and end)."""
    repl = RawRepl(board.port)
    try:
        repl.enter()
        repl.start(WRITER.replace("N_WRITES", str(total // size)).replace("WRITE_SIZE", str(size)).encode())
        got = 0
        marks: list[tuple[int, dict[str, Any]]] = []
        deadline = time.monotonic() + 600
        tail = b""
        while b"\x04>" not in tail:
            if time.monotonic() > deadline:
                raise Rp2040BenchError("the write test did not finish")
            r, _, _ = select.select([repl.fd], [], [], 0.05)
            if r:
                chunk = os.read(repl.fd, 65536)
                got += len(chunk)
                tail = (tail + chunk)[-8:]
            if not marks and got > total // 10 or len(marks) == 1 and got > total * 9 // 10:
                marks.append((got, board.control("time")))
    finally:
        repl.close()
    (g0, t0), (g1, t1) = marks
    busy = t1["busy"] - t0["busy"]
    return {
        "write_bytes": size,
        "bytes": g1 - g0,
        "busy_cycles_per_byte": round(busy / (g1 - g0), 2),
        "busy_share": round(busy / (t1["cycles"] - t0["cycles"]), 4),
        "emulated_mb_per_s": round((g1 - g0) / ((t1["ns"] - t0["ns"]) / 1e9) / 1e6, 3),
    }
