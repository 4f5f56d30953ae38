"""Figure 5: latency, measured where it arises.

(a) The receiver alone (`receiver_latency`): a test writer in another process writes SAMPLES
frames into the host side of a pty, each stamped with CLOCK_MONOTONIC just before its write()
(bench/pty_writer.py); a Link on the other side, its receiver's primary output a CallbackOutput,
takes them as a program using picodaq would (a thread pumping the link); the latency of a frame
is the time from its write to the consumer's callback. Measured on an otherwise idle machine and
again with two CPU burners running (one per core of a 2-core machine). Both for the default
Link (a reader thread, which lends the port to the consumer while it waits in pump(): one woken
thread; a hand-over from the reader thread to a woken consumer waited out the scheduler's slice
under the burners, p99 3 ms) and an inline one (no thread: the consumer's pump reads the port),
and for a bare reader beside them (bench/pty_reader.py: select, read, the stamps; no picodaq),
whose figure is what the scheduler and the tty cost any reader: the three take turns under the
same load, as that load's cost changes from run to run.

(b) End to end on the emulated board (`latency_run`), the emulator's share apart: from a
block's last sample instant, on the device clock, to the primary consumer's callback; and the
same board read by a bare reader in its own process (`raw_latency`: select, read, find the
frame, no picodaq), whose latency is the emulator's and the pty's share (the pacer noticing an
instant is due, framing, the relay process). The difference is what picodaq adds.

The emulated board (paced, 8 channels x 1 kHz, 20 instants per frame) stamps
each block with t0_us, its first instant's scheduled time on `ticks_us()`
masked to 30 bits (firmware/picodaq_fw/pacer.py; PROTOCOL.md's 2**30 us
ticks period). On the unix port `time.ticks_us()` is CLOCK_MONOTONIC in
microseconds (MicroPython's mp_hal_ticks_us), and so is CPython's
`time.monotonic()` on Linux: the device clock is the host's, so

    device ticks = (time.monotonic_ns() // 1000) mod 2**30

and the latency of a block is (now_us - last_us) mod 2**30, with last_us =
t0_us + (n_samples - 1) * period_ns / 1000, taken in the consumer's callback
(the receiver's primary output, a CallbackOutput, as Link.pump routes the block). `clock_check` verifies the mapping
before measuring: a ticks_us() read by the unix port falls between two host
readings. The latency covers the pacer noticing the instant is due (it
sleeps up to 1 ms between checks), framing, the pty, the emulator's relay
process, the Link's reader thread and ring, decoding and routing.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
import tty
from contextlib import ExitStack
from typing import Any

import numpy as np

from .. import contracts as C
from ..core.blocks import SamplesBlock
from ..core.primary import CallbackOutput
from ..core.receiver import Receiver
from ..recording.config import StreamConfig
from ..transport.cpu_latency import CpuLatencyRequest
from ..transport.link import Link
from .pty_writer import frame, stamp_of
from .session import EmulatedSession

CONFIG = StreamConfig(rate=1000, channel_mask=0xFF, source=C.SRC_RAMP, fmt=C.FMT_INT24)
_MASK = C.TICKS_PERIOD - 1
_HALF = C.TICKS_PERIOD // 2


def now_ticks() -> int:
    """The host's monotonic clock as the unix-port board's ticks_us reads it (30 bits)."""
    return (time.monotonic_ns() // 1000) & _MASK


def clock_check(exe: str) -> dict[str, Any]:
    """Read ticks_us on the unix port between two host readings: the mapping holds if it falls between."""
    before = now_ticks()
    out = subprocess.run(
        [exe, "-c", "import time; print(time.ticks_us())"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    after = now_ticks()
    device = int(out) & _MASK
    ok = ((device - before) & _MASK) <= ((after - before) & _MASK)
    return {"host_before_us": before, "device_us": device, "host_after_us": after, "same_clock": ok}


def latency_run(session: EmulatedSession, seconds: float) -> dict[str, Any]:
    lat: list[int] = []

    def on_block(block: SamplesBlock) -> None:
        now = now_ticks()
        last = block.t0_us + (block.n_samples - 1) * block.period_ns // 1000
        d = (now - last) & _MASK
        lat.append(d - C.TICKS_PERIOD if d >= _HALF else d)

    w = session.stream(CONFIG, seconds, on_block=on_block)
    a = np.array(lat, dtype=np.float64) / 1000.0  # ms; the warm-up's blocks included
    return {
        "blocks": len(lat),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "min_ms": float(a.min()),
        "rate": CONFIG.rate,
        "n_channels": CONFIG.n_channels,
        "samples_per_frame": CONFIG.frame_samples(),
        "fmt": C.FORMAT_NAMES[CONFIG.fmt],
        "window": w.as_dict(),
    }


def _summary_us(values_ns: list[int]) -> dict[str, Any]:
    a = np.array(values_ns, dtype=np.float64) / 1000.0
    if not len(a):
        return {"frames": 0}
    return {
        "frames": len(a),
        "p50_us": float(np.percentile(a, 50)),
        "p99_us": float(np.percentile(a, 99)),
        "p999_us": float(np.percentile(a, 99.9)),
        "max_us": float(a.max()),
    }


READERS = ("bare", "default", "inline")  # (a)'s readers: pty_reader.py, Link.open(), Link.open(inline=True)


def receiver_latency(
    seconds: float,
    frames_per_s: float = 500.0,
    burners: int = 0,
    warmup: float = 0.5,
    rounds: int = 1,
    cpu_latency_us: int | None = None,
) -> dict[str, dict[str, Any]]:
    """(a): write-to-callback latency of frames through a pty (see the module's text), for each of
    READERS side by side: rounds of (burners started afresh, then each reader for seconds / rounds
    after its warm-up, in an order turned by one each round), each reader's latencies pooled. Side
    by side because a loaded machine's scheduler changes its mind between runs (the same reader's
    p99 under two burners was 0.1 ms in one run and 3 ms in the next): what a reader adds to the
    bare floor shows only in turns taken under the same load. cpu_latency_us: hold a PM QoS CPU
    latency request of that many us throughout (CpuLatencyRequest; CpuLatencyUnavailable if not here)."""
    per = seconds / rounds
    lat: dict[str, list[int]] = {r: [] for r in READERS}
    lost = dict.fromkeys(READERS, 0)
    request = None if cpu_latency_us is None else CpuLatencyRequest(cpu_latency_us)
    for k in range(rounds):
        with ExitStack() as stack:
            if request is not None:
                stack.enter_context(request)
            for p in [_burner() for _ in range(burners)]:
                stack.callback(_stop, p)
            for reader in READERS[k % len(READERS) :] + READERS[: k % len(READERS)]:
                got, gone = _one_reader(reader, per, frames_per_s, warmup)
                lat[reader] += got
                lost[reader] += gone
    return {
        r: dict(
            _summary_us(lat[r]),
            reader=r,
            frames_per_s=frames_per_s,
            burners=burners,
            inline=r == "inline",
            cpu_latency_us=cpu_latency_us,
            seconds=per * rounds,
            rounds=rounds,
            lost=lost[r],
        )
        for r in READERS
    }


def _one_reader(reader: str, seconds: float, frames_per_s: float, warmup: float) -> tuple[list[int], int]:
    """One turn: the test writer into a fresh pty, reader on its other side; the latencies (ns)
    after the warm-up, and how many of those frames did not reach it (or came damaged)."""
    skip = round(warmup * frames_per_s)  # the warm-up's frames
    total = skip + round(seconds * frames_per_s)
    lat: list[int] = []

    def on_block(block: SamplesBlock) -> None:
        now = time.monotonic_ns()
        first = block.first_index  # frame k is instant k
        for i, (lo, hi) in enumerate(block.frame_counts[:, 0, :].tolist()):  # each frame's stamp
            if first + i >= skip:
                lat.append(now - stamp_of(lo, hi))

    with ExitStack() as stack:
        master, slave = pty.openpty()
        tty.setraw(slave)
        stack.callback(os.close, master)
        path = os.ttyname(slave)
        if reader == "bare":
            bare = _bare_reader(stack, path, total, skip)
        else:
            link = Link.open(
                path, receiver=Receiver(primary=CallbackOutput(on_block), runs=True), inline=reader == "inline"
            )
            stack.callback(link.close)
        os.close(slave)  # the reader has its own
        writer = subprocess.Popen(
            [sys.executable, "-m", "picodaq.bench.pty_writer", str(master), str(frames_per_s), str(total)],
            pass_fds=(master,),
        )
        stack.callback(_stop, writer)
        if reader == "bare":
            assert bare.stdout is not None
            lat = [int(x) for x in bare.stdout.read().split()]  # once it has read every frame
            return lat, total - skip - len(lat)
        while writer.poll() is None:
            link.pump(0.2)
        link.pump(0.2)  # what was still in flight
        stats = link.receiver.stats
        return lat, stats.seq_lost + stats.crc_errors + stats.samples_lost + (total - skip - len(lat))


def _bare_reader(stack: ExitStack, path: str, total: int, skip: int) -> subprocess.Popen[str]:
    """pty_reader.py on path, once it has the port open."""
    probe = frame(0, 0x1122334455667788)
    at = probe.find((0x55667788).to_bytes(4, "little"))  # the stamp's place in every frame
    p = subprocess.Popen(
        [sys.executable, "-m", "picodaq.bench.pty_reader", path, str(len(probe)), str(at), str(total), str(skip)],
        stdout=subprocess.PIPE,
        text=True,
    )
    stack.callback(_stop, p)
    assert p.stdout is not None
    if p.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the bare reader could not open {path}")
    return p


def raw_board_latency(session: EmulatedSession, seconds: float) -> dict[str, Any]:
    """(b), the emulator's share: the session's board streaming CONFIG into the bare reader; then
    the session's link is open again, the board stopped."""
    from ..recording.recorder import prepare_board

    link = session.link
    assert link is not None
    prepare_board(link, CONFIG)
    link.start()
    out = raw_latency(session.let_go(), seconds)
    session.open().stop()
    return out


def raw_latency(port: str, seconds: float) -> dict[str, Any]:
    """(b), the emulator's share: a bare reader in its own process, no picodaq on the path."""
    r = subprocess.run(
        [sys.executable, "-c", _RAW_READER, port, str(seconds)], capture_output=True, text=True, timeout=seconds + 30
    )
    if r.returncode:
        raise RuntimeError(f"the bare reader failed: {r.stderr.strip()[-300:]}")
    values = [int(x) for x in r.stdout.split()]
    return _summary_us(values)


# select + read + find each SAMPLES frame's last instant on the device clock (ticks_us, 30 bits, the
# host's monotonic clock on the unix port): what any reader pays, picodaq or not
_RAW_READER = r"""
import os, select, struct, sys, time, termios, tty
port, seconds = sys.argv[1], float(sys.argv[2])
fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
tty.setraw(fd)
buf = bytearray()
out = []
end = time.monotonic() + seconds
MASK = (1 << 30) - 1
MAGIC = bytes([0xA5, 0x5A])
while time.monotonic() < end:
    select.select([fd], [], [], 0.5)
    try:
        buf += os.read(fd, 1 << 16)
    except BlockingIOError:
        continue
    now = (time.monotonic_ns() // 1000) & MASK
    while True:
        i = buf.find(MAGIC)
        if i < 0 or len(buf) - i < 10:
            break
        length = buf[i + 4] | buf[i + 5] << 8
        if len(buf) - i < 14 + length:
            break
        if buf[i + 3] == 2 and length >= 16:
            t0, period, nch, fmt, ns = struct.unpack_from("<IIBBH", buf, i + 14)
            last = t0 + (ns - 1) * period // 1000
            d = (now - last) & MASK
            out.append((d - (1 << 30) if d >= 1 << 29 else d) * 1000)
        del buf[: i + 14 + length]
print(" ".join(map(str, out)))
"""


def _burner() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while 1: pass"])


def _stop(p: subprocess.Popen[Any]) -> None:
    if p.poll() is None:
        p.kill()
    p.wait()
