"""Helpers for the firmware tests: emulated boards that boot tests/fw/driver.py
(with its test hooks and, for hal_rp2, the simulated rp2 peripherals), a raw
port whose reading the test controls, and checks on a recorded stream."""

from __future__ import annotations

import json
import os
import select
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import serial

from picodaq import contracts as C
from picodaq.boards.unix import EmulatedBoard
from picodaq.core.blocks import SamplesBlock, ramp_counts
from picodaq.core.receiver import Receiver
from picodaq.protocol.frames import encode_command
from picodaq.protocol.messages import Ack, Status
from picodaq.transport.link import Link

FW_TEST_DIR = Path(__file__).parent / "firmware" / "fw"


def boot_board(
    boards: list[EmulatedBoard],
    env: dict[str, str] | None = None,
    unpaced: bool = False,
    board_json: dict | None = None,
) -> EmulatedBoard:
    """An emulated board running tests/fw/driver.py; appended to boards for cleanup."""
    b = EmulatedBoard(unpaced=unpaced, boot="driver.py", env=env)
    boards.append(b)
    b.install_firmware()
    for f in FW_TEST_DIR.glob("*.py"):
        shutil.copyfile(f, b.flash / f.name)
    if board_json is not None:
        (b.flash / "picodaq_board.json").write_text(json.dumps(board_json))
    return b.start()


def configure_args(
    rate: int = 1000, mask: int = 0xFF, source: int = C.SRC_RAMP, fmt: int = C.FMT_INT16, spf: int = 32
) -> bytes:
    return struct.pack("<IIBBH", rate, mask, source, fmt, spf)


class RawPort:
    """The board's port without a reader thread: bytes are read only when the
    test says so, so it can stop reading as a stalled host would."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, baudrate=115200, timeout=0, exclusive=True)
        self.fd = self.port.fileno()
        self.rx = Receiver()
        self._seq = 0
        self._cmd_id = 0
        # decoder counters once the first command is answered: the port may
        # have been opened in the middle of the board's boot HELLO
        self.baseline: dict[str, int] | None = None

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._read_once(min(left, 0.05))

    def read_until(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._read_once(min(left, 0.05))
        return True

    def _read_once(self, timeout: float) -> None:
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            self.rx.receive(os.read(self.fd, 1 << 16))

    def command(self, opcode: int, args: bytes = b"", timeout: float = 30.0) -> Ack:
        self._cmd_id += 1
        cmd_id = self._cmd_id
        self.port.write(encode_command(self._seq, opcode, cmd_id, args))
        self._seq += 1
        assert self.read_until(lambda: cmd_id in self.rx.acks, timeout), f"no ACK to opcode {opcode}"
        if self.baseline is None:
            self.baseline = self.rx.stats.as_dict()
        return self.rx.acks.pop(cmd_id)

    def close(self) -> None:
        self.port.close()


def stop_stream(link: Link, timeout: float = 30.0) -> Status:
    """STOP, then the STATUS the board sends once the stream has ended (a
    periodic STATUS may arrive between the ACK and that one)."""
    link.stop()
    assert link.pump_until(lambda: link.receiver.status.state != C.STATE_STREAMING, timeout), "stream did not end"
    return link.receiver.status


@dataclass
class Recording:
    """SAMPLES blocks as they arrive: indices kept, samples checked against the
    expected pattern (the ramp), on every block or every check_every-th."""

    fmt: int
    n_channels: int
    expected: Callable[[int, int, int, int], np.ndarray] = ramp_counts
    check_every: int = 1
    first: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)
    checked: int = 0

    def __call__(self, block: SamplesBlock) -> None:
        self.first.append(block.first_index)
        self.sizes.append(block.n_samples)
        if block.n_channels != self.n_channels or block.fmt != self.fmt:
            self.bad.append(block.first_index)
        elif len(self.first) % self.check_every == 0:
            self.checked += 1
            want = self.expected(block.first_index, block.n_samples, self.n_channels, self.fmt)
            if not np.array_equal(block.counts, want):
                self.bad.append(block.first_index)

    def gaps(self) -> list[tuple[int, int]]:
        """(where, how many instants) for every jump in first_sample_index."""
        out = []
        for i in range(1, len(self.first)):
            end = self.first[i - 1] + self.sizes[i - 1]
            if self.first[i] != end:
                out.append((end, (self.first[i] - end) % (1 << 32)))
        return out


def instants_after_last_gap(rec: Recording) -> int:
    """Instants received after the last jump in first_sample_index (0 while there is none)."""
    gaps = rec.gaps()
    if not gaps:
        return 0
    where = gaps[-1][0]
    return sum(n for f, n in zip(rec.first, rec.sizes) if f > where)


def read_until_resumed(port: RawPort, rec: Recording, capacity_share: float = 0.5, timeout: float = 120) -> None:
    """Read until the stream overflowed (a jump in first_sample_index) and went on for
    capacity_share of the ring after it: the condition check_overflow checks, waited for
    instead of read for a fixed time (timeout is only a hang guard for a loaded machine)."""

    def resumed() -> bool:
        st = port.rx.status
        return st is not None and instants_after_last_gap(rec) >= st.ring_capacity * capacity_share

    assert port.read_until(resumed, timeout), (
        f"no overflow then {capacity_share} of the ring after it within {timeout} s: gaps {rec.gaps()}"
    )


def stop_raw(port: RawPort, timeout: float = 30) -> Status:
    """STOP, then the STATUS the board sends once the stream has ended."""
    n = port.rx.statuses
    assert port.command(C.OP_STOP, timeout=timeout).status == C.ST_OK
    assert port.read_until(lambda: port.rx.statuses > n and port.rx.status.state == C.STATE_IDLE, timeout)
    return port.rx.status


def check_overflow(port: RawPort, rec: Recording, final: Status, capacity_share: float = 0.5) -> None:
    """A stream that overflowed: every dropped instant shows as a jump in
    first_sample_index, the stream went on after it, no frame was split."""
    s = port.rx.stats
    gaps = rec.gaps()
    assert final.state == C.STATE_IDLE and final.last_error == C.ST_OVERRUN
    assert final.samples_dropped > 0
    assert gaps, "samples were dropped but first_sample_index never jumped"
    assert sum(n for _, n in gaps) == final.samples_dropped  # every dropped instant accounted for
    assert s.samples_lost == final.samples_dropped
    where = gaps[-1][0]
    after = sum(n for f, n in zip(rec.first, rec.sizes) if f > where)
    assert after >= final.ring_capacity * capacity_share, "the stream did not continue after the gap"
    assert rec.bad == []  # data on both sides of the gap is intact
    base = port.baseline or {}
    for k in ("crc_errors", "seq_lost", "decode_errors", "skipped_bytes", "header_errors"):
        assert getattr(s, k) == base.get(k, 0), f"{k}: a frame was split or lost"  # no half frame
    assert any("ring overflowed" in log.text for log in port.rx.logs)
