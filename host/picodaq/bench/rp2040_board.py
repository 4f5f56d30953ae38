"""The emulated Pico the rp2040 figure runs on (rp2040.py says what it measures).

One flash image made by `picodaq flash`; boards started from copies of it. The
board's raw REPL by hand (the firmware's escape, the raw REPL, a soft reset,
exec), the MicroPython probe scripts run there (device/rp2040_probe.py,
device/rp2040_budget.py), and the write test: busy cycles per byte the firmware spends
writing to the USB CDC link while the host reads.
"""

from __future__ import annotations

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

import serial

from ..errors import PicodaqError
from ..flash.firmware import REPL_ESCAPE, REPL_ESCAPE_PAUSE
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
    """The board's REPL by hand: the firmware's escape, the raw REPL, a soft reset, exec."""

    BANNER = b"raw REPL; CTRL-B to exit\r\n>"

    def __init__(self, port: str) -> None:
        self.s = serial.serial_for_url(port, timeout=0, exclusive=True)
        self.fd = self.s.fileno()
        self.got = bytearray()

    def close(self) -> None:
        self.s.close()

    def read_until(self, token: bytes, timeout: float, keep: int = 1 << 20) -> bool:
        deadline = time.monotonic() + timeout
        while token not in self.got[-len(token) - 65536 :]:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if r:
                self.got += os.read(self.fd, 65536)
                if len(self.got) > keep:
                    del self.got[: len(self.got) - keep]
        return True

    def enter(self, timeout: float = 60.0) -> None:
        """Leave the firmware (its escape while idle), enter the raw REPL and soft-reset: a fresh heap.
        A board still loading its firmware takes what was sent meanwhile in one piece, with no pause
        before the escape (as the flasher finds): so escape and CTRL-A go again, each after the
        escape's pause, until the raw REPL answers or timeout (a loaded machine's emulated chip
        gave nothing in 20 s to one try)."""
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(REPL_ESCAPE_PAUSE)
            self.s.write(REPL_ESCAPE)
            self.read_until(b">>> ", 5)  # none from a board already in the raw REPL (a probe's before)
            self.got.clear()
            self.s.write(b"\x01")
            if self.read_until(self.BANNER, min(10.0, max(0.5, deadline - time.monotonic()))):
                break
            if time.monotonic() >= deadline:
                raise Rp2040BenchError(f"no raw REPL within {timeout:g} s: {bytes(self.got[-200:])!r}")
        self.got.clear()
        self.s.write(b"\x04")  # soft reset: in the raw REPL main.py does not run again
        if not self.read_until(self.BANNER, 20):
            raise Rp2040BenchError(f"no soft reset: {bytes(self.got[-200:])!r}")
        self.got.clear()

    def exec(self, code: bytes, timeout: float) -> str:
        self.got.clear()
        self.s.write(code + b"\x04")
        if not self.read_until(b"\x04>", timeout):
            raise Rp2040BenchError(f"the board did not finish: {bytes(self.got[-300:])!r}")
        out = bytes(self.got).decode(errors="replace")
        self.got.clear()
        if not out.startswith("OK"):
            raise Rp2040BenchError(f"the board refused the code: {out[:300]!r}")
        text, _, err = out[2:].partition("\x04")
        if err.strip("\x04>").strip():
            raise Rp2040BenchError(f"the probe failed on the board: {err.strip()[-400:]}")
        return text


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
        repl.s.write(WRITER.replace("N_WRITES", str(total // size)).replace("WRITE_SIZE", str(size)).encode() + b"\x04")
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
