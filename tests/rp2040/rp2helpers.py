"""Helpers for the rp2040-tier tests: the board's raw REPL, streams collected
whole, and the ADC code model's expected values (rp2040js/adc.mjs)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from picodaq import contracts as C
from picodaq.bench.rp2040_board import RawRepl
from picodaq.boards.rp2040 import Rp2040Board
from picodaq.core.blocks import SamplesBlock
from picodaq.protocol.decoder import FrameDecoder
from picodaq.protocol.frames import NEED_DATA, Frame
from picodaq.protocol.messages import Hello, Status
from picodaq.transport.link import Link

MARKER_PIN = 15
BOARD_JSON = {"marker_pin": MARKER_PIN}


def run(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def picodaq(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "picodaq", *args, timeout=timeout)


def record_instants(port: str, out: Path, instants: int, *args: str, timeout: float = 300) -> dict:
    """`picodaq record ARGS --out OUT` (and a .tlv beside it) until `instants` instants have arrived,
    then Ctrl-C: a count of instants, never a count per wall second (the emulated chip runs at a
    fraction of a real one, less on a loaded machine). Exit status 0 (an open-ended recording ended
    by Ctrl-C); returns the stats."""
    import json
    import signal

    from cli_helpers import captured, start_picodaq
    from waiting import wait_for

    tlv = out.with_suffix(".tlv")
    p = start_picodaq(
        "record", "--port", port, "--quiet", "--out", str(out), "--out", str(tlv), "--stats-json", "-", *args
    )
    try:
        wait_for(
            lambda: p.poll() is not None or captured(tlv).stats.samples >= instants,
            timeout,
            what=f"{instants} instants",
        )
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, stderr
    return json.loads(stdout)


def mpremote(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """mpremote itself, as a user runs it. Its way into the raw REPL gives up after a few wall
    seconds, which the emulated chip on a loaded machine can take to answer (a fresh-clone run
    once met "could not enter raw repl"): run again, up to timeout, while that is why it failed."""
    exe = str(Path(sys.executable).with_name("mpremote"))
    deadline = time.monotonic() + timeout
    while True:
        r = run(exe, *args, timeout=max(1.0, deadline - time.monotonic()))
        if r.returncode == 0 or "could not enter raw repl" not in r.stderr or time.monotonic() >= deadline:
            return r


def ads1299_test_signal_board(rp2040, tmp_path: Path) -> Rp2040Board:
    """An emulated Pico whose ADS1299 model plays its internal test signal, configured for it in
    picodaq_board.json (input "test", gain 24), rebooted and answering."""
    import json

    board = rp2040(ads1299="signal")
    cfg = tmp_path / "picodaq_board.json"
    cfg.write_text(json.dumps({**BOARD_JSON, "ads1299": {"input": "test", "gain": 24}}))
    r = mpremote("connect", board.port, "fs", "cp", str(cfg), ":picodaq_board.json")
    assert r.returncode == 0, r.stderr
    board.hard_reset()
    wait_for_firmware(board)
    return board


def wait_for_firmware(board: Rp2040Board, timeout: float = 90.0) -> None:
    """Until the firmware answers a command (the port is there a second of the chip's time
    before main.py has loaded the app, slower on a loaded machine; its boot HELLO alone once
    came seconds before the app answered GET_INFO on a loaded machine)."""
    from picodaq.errors import CommandTimeout

    deadline = time.monotonic() + timeout
    with Link.open(board.port) as link:
        while True:
            try:
                link.get_info()
                return
            except CommandTimeout:
                assert time.monotonic() < deadline, f"the firmware on {board.port} never answered"


class Repl(RawRepl):
    """The bench's way onto the board's raw REPL (mpremote's serial transport, entered as `picodaq
    flash` enters it), with what the tests read back by hand: an App's frames, or a test's output."""

    def __init__(self, port: str) -> None:
        super().__init__(port)
        self.s = self.t.serial
        self.got = bytearray()

    def _read(self, wait: float) -> bool:
        """What has arrived, waiting up to `wait` s for the first byte; False once the port is gone."""
        r, _, _ = select.select([self.fd], [], [], wait)
        if r:
            try:
                self.got += os.read(self.fd, 65536)
            except OSError:
                return False
        return True

    def read_until(self, token: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while token not in self.got:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.05)):
                return False
        return True

    def raw_repl(self, timeout: float = 60.0) -> None:
        self.enter(timeout)
        self.got.clear()

    def start_app(self, code: bytes, timeout: float = 60.0) -> Hello:
        """Run code that starts an App from the raw REPL, and wait for that App's boot HELLO: the
        App sends it once App.run() has switched keyboard interrupts off (hal.begin()). Until then
        a 0x03 byte from the host (CONFIGURE's opcode, any byte of a seq, cmd_id or CRC) raises
        KeyboardInterrupt in the code still importing, and the command bytes that follow land in
        the REPL: GET_INFO's opcode is Ctrl-B (the friendly REPL), its length byte Ctrl-D (a soft
        reset, into main.py's App). So nothing may be sent before this returns. Fails, showing
        what the board said, if the code ends first (its traceback and the raw REPL's EOT)."""
        self.got.clear()
        self.start(code)  # returns once the board has taken the code whole
        deadline = time.monotonic() + timeout
        decoder = FrameDecoder()
        fed = 0
        while True:
            if len(self.got) > fed:
                decoder.feed(bytes(self.got[fed:]))
                fed = len(self.got)
            while (frame := decoder.next_frame()) is not NEED_DATA:
                assert isinstance(frame, Frame)
                if frame.type == C.MSG_HELLO:
                    return Hello.parse(bytes(frame.payload))
            # the code ended (its traceback, then the raw REPL's EOT and prompt) before any frame
            assert b"\x04>" not in self.got or b"\xa5\x5a" in self.got, f"the App never started: {bytes(self.got)!r}"
            left = deadline - time.monotonic()
            assert left > 0, f"no HELLO from the App in {timeout} s: {bytes(self.got)!r}"
            assert self._read(min(left, 0.05)), f"the port went away: {bytes(self.got)!r}"

    def exec_in_one_piece(self, code: bytes, timeout: float = 30.0) -> bytes | None:
        """Run code in the raw REPL, written in one piece (not mpremote's paced write: gap 1's test
        is what a whole write does to the chip's CDC FIFO); what it answered from the raw REPL's "OK" on, or
        None if it never finished."""
        assert self.read_until(b">", timeout), f"no raw REPL prompt: {bytes(self.got[-200:])!r}"
        self.got.clear()
        self.s.write(code + b"\x04")
        if not self.read_until(b"\x04>", timeout):
            return None
        out = bytes(self.got)
        self.got.clear()
        return out


def port_exists(port: str) -> bool:
    return os.path.exists(port)


@dataclass
class Stream:
    """A stream collected whole: counts (instants x channels), block indices, the final STATUS."""

    counts: np.ndarray
    firsts: list[int]
    sizes: list[int]
    final: Status
    stats: dict
    markers: list = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def gaps(self) -> list[tuple[int, int]]:
        out = []
        for i in range(1, len(self.firsts)):
            end = self.firsts[i - 1] + self.sizes[i - 1]
            if self.firsts[i] != end:
                out.append((end, (self.firsts[i] - end) % (1 << 32)))
        return out


class Collector:
    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.firsts: list[int] = []
        self.sizes: list[int] = []
        self.n = 0

    def __call__(self, block: SamplesBlock) -> None:
        self.parts.append(np.array(block.counts, dtype=np.int64))  # blocks are pooled: copy
        self.firsts.append(block.first_index)
        self.sizes.append(block.n_samples)
        self.n += block.n_samples


def stream(
    link: Link,
    rate: int,
    mask: int,
    source: int = C.SRC_RAMP,
    fmt: int = C.FMT_INT16,
    spf: int = 20,
    instants: int = 1000,
    timeout: float = 120.0,
    during=None,
) -> Stream:
    """CONFIGURE, START, collect until `instants` arrived (calling during(collector) meanwhile), STOP."""
    ack = link.command(C.OP_CONFIGURE, _configure_args(rate, mask, source, fmt, spf), timeout=5)
    assert ack.status == C.ST_OK, link.log_texts()
    col = Collector()
    link.receiver.block_handlers.append(col)
    assert link.command(C.OP_START, timeout=5).status == C.ST_OK, link.log_texts()
    deadline = time.monotonic() + timeout
    while col.n < instants:
        assert time.monotonic() < deadline, f"only {col.n} of {instants} instants in {timeout} s"
        link.pump_until(lambda: col.n >= instants, 0.2)
        if during is not None:
            during(col)
    final = stop(link)
    link.receiver.block_handlers.remove(col)
    counts = np.concatenate(col.parts) if col.parts else np.zeros((0, bin(mask).count("1")), dtype=np.int64)
    return Stream(
        counts,
        col.firsts,
        col.sizes,
        final,
        link.receiver.stats.as_dict(),
        list(link.receiver.markers),
        link.log_texts(),
    )


def _configure_args(rate: int, mask: int, source: int, fmt: int, spf: int) -> bytes:
    import struct

    return struct.pack("<IIBBH", rate, mask, source, fmt, spf)


def stop(link: Link, timeout: float = 10.0) -> Status:
    """STOP, then the STATUS the board sends once the stream has ended (not one from before)."""
    n = link.receiver.statuses
    link.command(C.OP_STOP, timeout=5)
    assert link.pump_until(
        lambda: link.receiver.statuses > n and link.receiver.status.state != C.STATE_STREAMING, timeout
    ), "stream did not end"
    return link.receiver.status


# -- the ADC code model (rp2040js/adc.mjs) ------------------------------------------


def code_channel(counts: np.ndarray) -> np.ndarray:
    return (counts >> 9) & 7


def code_time(counts: np.ndarray) -> np.ndarray:
    return counts & 0x1FF


def dma_codes(chans: list[int], first: int, n: int) -> np.ndarray:
    """DMA path, unit_ns = the conversion period, origin = the stream's first conversion:
    instant k, slot i is conversion j = k * nch + i of channel chans[i]."""
    nch = len(chans)
    k = first + np.arange(n)[:, None]
    j = k * nch + np.arange(nch)[None, :]
    return (np.array(chans)[None, :] << 9) | (j % 512)


def timer_codes(chans: list[int], first: int, n: int) -> np.ndarray:
    """Timer path, unit_ns = the instant period: every conversion of instant k reads k mod 512."""
    k = first + np.arange(n)[:, None]
    return (np.array(chans)[None, :] << 9) | (k % 512) + 0 * np.arange(len(chans))[None, :]


# -- a test driver, run from the raw REPL instead of main.py ------------------------------

DRIVER = """\
# the real App and hal_rp2 with a test hook, run from the raw REPL (test-only)
from picodaq_fw.hal_rp2 import Hal
import picodaq_fw.app as A
INJECT_AT = %(inject_at)d
NEAR_LIMITS = %(near_limits)d
hal = Hal()
app = A.App(hal)
class Hook:
    # bound methods, not closures: calling a closure may allocate under the heap lock
    def __init__(self):
        self.n = 0
        self.keep = []
        self.service0 = hal.service
        self.reset0 = app.ring.reset
    def service(self, ring, src):
        self.n += 1
        if self.n == INJECT_AT:
            self.keep.append(bytearray(16))  # an allocation in the streaming path
        return self.service0(ring, src)
    def reset(self):
        # START: the sample index 1000 short of 2**30 (as u16 halves)
        self.reset0()
        app.ring.counts[0] = 0xFC18
        app.ring.counts[1] = 0x3FFF
hook = Hook()
if INJECT_AT:
    hal.service = hook.service
if NEAR_LIMITS:
    app.framer.seq[0] = 0xFFF0  # 16 frames short of 2**32
    app.framer.seq[1] = 0xFFFF
    app.uptime[0] = 0xFFF0  # 16 ms short of 2**30 ms
    app.uptime[1] = 0x3FFF
    app.ring.reset = hook.reset
app.run()
"""


def run_driver(board, inject_at: int = 0, near_limits: bool = False) -> None:
    """Leave main.py's app, and run the driver from the raw REPL (it runs until the board resets)."""
    repl = Repl(board.port)
    try:
        repl.raw_repl()
        repl.start_app((DRIVER % {"inject_at": inject_at, "near_limits": int(near_limits)}).encode())
    finally:
        repl.close()
