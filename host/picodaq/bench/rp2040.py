"""Figure 8: what a Pico (RP2040) sustains, measured on the emulated chip.

The real rp2 port (the vendored RPI_PICO uf2) runs the firmware on rp2040js
(`picodaq.boards.rp2040`), flashed once by `picodaq flash` into a temporary
folder. Time on the emulated chip is its own: instructions' cycles at 125 MHz
(8 ns each), so CPU shares are exact in emulated cycles however loaded this
machine is; the runner reports cycles elapsed and cycles the core executed
(busy) over its control channel.

1. The cycle probe (rp2040_probe.py, run in the raw REPL after a soft reset,
   heap locked as in the streaming loop): cycles per SAMPLES frame of the
   framer per format and frame size, with the Thumb CRC and with the viper CRC
   it replaced (the old framing), in one run; CRC cycles per byte; each source's
   cycles per instant (ramp and sine fills; the ADC's and the ADS1299's DMA
   block handlers); the ring budget (free heap at boot, the ring, what START
   allocates per source).
2. Writing: busy cycles per byte while the firmware writes full frames to the
   USB CDC link and the host reads them.
3. The streaming loop's floor: busy share streaming ramp 10 Hz x 1.
4. Capacity: for each source and format, the highest rate (a ladder of rates,
   at the source's natural channel count, frames of ~20 ms as `picodaq record`
   chooses) that streams `seconds` emulated seconds with zero drops: the
   board's samples_dropped, the host's losses and gaps, every value checked
   against what the source must produce (the ramp, the sine table, the ADC
   model's channel/time codes, the ADS1299 model's ramp) and, for the ADS1299,
   frames the chip held that were not read before the next (the model's count).
   A prediction from 1-3 picks where to start; short runs find the step; the
   full-length run confirms it; the next step up is shown with why it failed.

What the emulation cannot show (said with the results): XIP cache misses
(rp2040js fetches from flash at no cost, so real cycles are higher), real USB
timing (IN transfers complete after a fixed delay; a real host polls), analog
behaviour, bus contention between the DMA and the core, a real ADS1299.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import serial

from .. import contracts as C
from ..core.blocks import SamplesBlock, ramp_counts
from ..errors import PicodaqError
from ..flash.firmware import REPL_ESCAPE, REPL_ESCAPE_PAUSE
from ..recording.config import StreamConfig
from ..transport.link import Link

PROBE = Path(__file__).with_name("rp2040_probe.py")
BUDGET = Path(__file__).with_name("rp2040_budget.py")
CYCLES_PER_S = 125_000_000
LIMITS = (
    "rp2040js: no XIP cache misses (code runs from flash at no cost: real cycles are higher), fixed USB "
    "packet timing (IN transfers complete after 10 us; a real host polls every 1 ms frame, up to 19 "
    "packets), no analog front end (the ADC and ADS1299 are models answering exact codes), no bus "
    "contention between DMA and the core, no second core"
)
# the rates tried per source, at its natural channel count; ADC rates give a whole number of 1/256
# cycles of its 48 MHz clock per conversion at 4 channels
LADDERS = {
    "ramp": (1000, 2000, 4000, 5000, 8000, 10000, 12500, 16000, 20000, 25000),
    "sine": (1000, 2000, 4000, 5000, 8000, 10000, 12500, 16000, 20000, 25000),
    "adc": (1000, 2500, 5000, 10000, 12500, 20000, 25000, 30000, 37500, 40000, 50000),
    "ads1299": (250, 500, 1000, 2000, 4000, 8000, 16000),
}
COMBOS = (
    ("ramp", "int16", 8),
    ("ramp", "int24", 8),
    ("ramp", "int32", 8),
    ("sine", "int16", 8),
    ("sine", "int24", 8),
    ("sine", "int32", 8),
    ("adc", "int16", 4),
    ("ads1299", "int24", 8),
)
QUICK_POINTS = (("ramp", "int16", 8, 1000), ("adc", "int16", 4, 5000))
SAFE_FILES = ("flash.bin", "unique_id")

Say = Callable[[str], None]


class Rp2040BenchError(PicodaqError):
    pass


# -- the emulated Pico -----------------------------------------------------------------


class Pico:
    """A flash image made once by `picodaq flash`; boards started from copies of it."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self._tmp = tempfile.TemporaryDirectory(prefix="picodaq-bench-rp2040-")
        self.root = Path(self._tmp.name)
        self.image = self.root / "template" / "flash.bin"
        self.boards = 0

    def close(self) -> None:
        self._tmp.cleanup()

    def flash(self) -> float:
        from picodaq.boards.rp2040 import Rp2040Board

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

    def enter(self) -> None:
        """Leave the firmware (its escape while idle), enter the raw REPL and soft-reset: a fresh heap."""
        time.sleep(REPL_ESCAPE_PAUSE)
        self.s.write(REPL_ESCAPE)
        self.read_until(b">>> ", 5)
        self.got.clear()
        self.s.write(b"\x01")
        if not self.read_until(self.BANNER, 20):
            raise Rp2040BenchError(f"no raw REPL: {bytes(self.got[-200:])!r}")
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


# -- 3 and 4: streams ----------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    source: str
    fmt: str
    channels: int
    rate: int

    @property
    def config(self) -> StreamConfig:
        return StreamConfig(
            self.rate, (1 << self.channels) - 1, _code(self.source, C.SOURCE_NAMES), _code(self.fmt, C.FORMAT_NAMES)
        )

    def name(self) -> str:
        return f"{self.source} {self.rate} Hz x {self.channels} {self.fmt}"


def _code(name: str, names: dict[int, str]) -> int:
    return next(k for k, v in names.items() if v == name)


class Checker:
    """Every block against what the source must have produced there."""

    def __init__(self, p: Point) -> None:
        self.p = p
        self.fmt = _code(p.fmt, C.FORMAT_NAMES)
        self.instants = 0
        self.bad_blocks = 0
        self.blocks = 0
        self.last_end: int | None = None
        self.gaps = 0
        if p.source == "sine":
            self.table = np.array([int(29490 * math.sin(2 * math.pi * k / 256)) for k in range(256)], dtype=np.int64)
            self.steps = []
            for c in range(p.channels):
                f = (c + 1) * 5
                while 2 * f >= p.rate and f > 1:
                    f //= 2
                self.steps.append((f << 32) // p.rate)

    def expected(self, first: int, n: int) -> tuple[np.ndarray, int]:
        p = self.p
        if p.source == "ramp" or p.source == "ads1299":
            return ramp_counts(first, n, p.channels, self.fmt).astype(np.int64), 0
        k = first + np.arange(n, dtype=np.int64)[:, None]
        if p.source == "adc":  # the ADC model's codes: conversion j of the stream, channel c
            j = k * p.channels + np.arange(p.channels)[None, :]
            return (np.arange(p.channels)[None, :] << 9) | (j % 512), 0
        bits = 8 * C.BYTES_PER_SAMPLE[self.fmt]
        out = np.empty((n, p.channels), dtype=np.int64)
        idx = (first + np.arange(n)).astype(np.uint64)
        for c, step in enumerate(self.steps):
            phase = (idx * np.uint64(step)) & np.uint64(0xFFFFFFFF)
            out[:, c] = self.table[(phase >> np.uint64(24)).astype(np.int64)] << (bits - 16)
        # the board's table comes from single-precision math.sin: one 16-bit count either way
        return out, 1 << (bits - 16)

    def __call__(self, block: SamplesBlock) -> None:
        self.blocks += 1
        first, n = block.first_index, block.n_samples
        if self.last_end is not None and first != self.last_end:
            self.gaps += 1
        self.last_end = first + n
        want, tol = self.expected(first, n)
        got = np.asarray(block.counts, dtype=np.int64)
        if got.shape != want.shape or np.abs(got - want).max(initial=0) > tol:
            self.bad_blocks += 1
        self.instants += n


def stream(board: Any, link: Link, p: Point, seconds: float) -> dict[str, Any]:
    """Stream p for `seconds` of the chip's time after 0.5 s of settling; what it cost and lost."""
    cfg = p.config
    spf = cfg.frame_samples()
    out: dict[str, Any] = {
        "source": p.source,
        "fmt": p.fmt,
        "channels": p.channels,
        "rate": p.rate,
        "samples_per_frame": spf,
        "seconds": seconds,
    }
    if p.source == "adc":
        board.control("adc", mode="code", unit_ns=1e9 / (p.rate * p.channels), origin="first")
    try:
        link.configure(p.rate, cfg.channel_mask, cfg.source, cfg.fmt, spf)
    except PicodaqError as e:
        out.update(ok=False, why=str(e))
        return out
    check = Checker(p)
    link.receiver.block_handlers.append(check)
    base = link.receiver.stats.as_dict()
    missed0 = board.control("ads1299").get("missed", 0) if p.source == "ads1299" else 0
    try:
        link.start()
        a = board.control("time")
        while board.control("time")["ns"] - a["ns"] < 0.5e9:
            link.pump_until(lambda: False, 0.1)
        a, sa, w0 = board.control("time"), link.get_status(), time.monotonic()
        while board.control("time")["ns"] - a["ns"] < seconds * 1e9:
            link.pump_until(lambda: False, 0.2)
        z, sz, w1 = board.control("time"), link.get_status(), time.monotonic()
        missed = board.control("ads1299").get("missed", 0) - missed0 if p.source == "ads1299" else 0
        final = link.stop()
    finally:
        link.receiver.block_handlers.remove(check)
    stats = link.receiver.stats.as_dict()
    losses = {k: stats[k] - base.get(k, 0) for k in ("crc_errors", "seq_lost", "samples_lost", "decode_errors")}
    busy = z["busy"] - a["busy"]
    cycles = z["cycles"] - a["cycles"]
    frames = sz.frames_sent - sa.frames_sent
    dropped = final.samples_dropped if final is not None else -1
    out.update(
        busy_share=round(busy / cycles, 4),
        cycles_per_frame=round(busy / max(1, frames)),
        frames_per_s=round(frames / (cycles / CYCLES_PER_S), 2),
        wire_bytes_per_s=round(cfg.bytes_per_second()),
        samples_per_s=p.rate * p.channels,
        dropped=dropped,
        losses=losses,
        gaps=check.gaps,
        instants=check.instants,
        bad_blocks=check.bad_blocks,
        missed_frames=missed,
        ring_high_water=final.ring_high_water if final is not None else None,
        ring_capacity=final.ring_capacity if final is not None else None,
        free_heap=sz.free_heap,
        last_error=C.STATUS_NAMES.get(final.last_error, str(final.last_error)) if final is not None else None,
        emulated_per_wall=round((z["ns"] - a["ns"]) / 1e9 / (w1 - w0), 3),
    )
    why = []
    if dropped:
        why.append(f"{dropped} instants dropped by the board")
    if sum(losses.values()):
        why.append(f"host losses {losses}")
    if check.gaps:
        why.append(f"{check.gaps} gaps")
    if check.bad_blocks:
        why.append(f"{check.bad_blocks} blocks with wrong values")
    if missed:
        why.append(f"{missed} ADS1299 frames not read before the next")
    if out["busy_share"] >= 0.995:
        why.append("the CPU never slept (busy 100 %)")
    if check.instants < p.rate * seconds * 0.9:
        why.append(f"only {check.instants} instants arrived of ~{int(p.rate * seconds)}")
    out.update(ok=not why, why="; ".join(why))
    return out


# -- the cost model ------------------------------------------------------------------------


class Costs:
    """Cycles of each part of the hot path, from the probe and the write test."""

    def __init__(self, probe: list[dict[str, Any]], write: dict[str, Any], floor: float) -> None:
        self.floor = floor
        self.write = write["busy_cycles_per_byte"]
        self.sources = {
            (r["source"], r["fmt"]): r["cycles_per_instant"] / r["channels"] for r in probe if r.get("kind") == "source"
        }
        self.framing: dict[int, tuple[float, float]] = {}  # fmt -> (cycles per frame, per byte), new framing
        for fmt in (1, 2, 3):
            pts = [(r["frame_bytes"], r["cycles_new"]) for r in probe if r.get("kind") == "framing" and r["fmt"] == fmt]
            if len(pts) >= 2:
                (x0, y0), (x1, y1) = min(pts), max(pts)
                slope = (y1 - y0) / (x1 - x0)
                self.framing[fmt] = (y0 - slope * x0, slope)

    def parts(self, p: Point) -> dict[str, float]:
        """Cycles per second of each part at p (the rest of a measured total is the loop and IRQ entries)."""
        cfg = p.config
        spf = cfg.frame_samples()
        fps = p.rate / spf
        frame = C.OVERHEAD + 16 + spf * p.channels * C.BYTES_PER_SAMPLE[cfg.fmt]
        fmt = cfg.fmt
        per_sample = self.sources.get((p.source, fmt)) or self.sources.get((p.source, 1)) or 0.0
        a, b = self.framing.get(fmt, (0.0, 0.0))
        return {
            "source": p.rate * p.channels * per_sample,
            "framing": fps * (a + b * frame),
            "writing": fps * frame * self.write,
        }

    def predict(self, p: Point) -> float:
        return self.floor + sum(self.parts(p).values()) / CYCLES_PER_S


def breakdown(costs: Costs, run: dict[str, Any]) -> dict[str, float]:
    p = Point(run["source"], run["fmt"], run["channels"], run["rate"])
    parts = {k: v / CYCLES_PER_S for k, v in costs.parts(p).items()}
    parts["loop, IRQ entries, USB interrupts (the rest)"] = run["busy_share"] - sum(parts.values())
    return {k: round(v, 4) for k, v in parts.items()}


# -- the figure ------------------------------------------------------------------------------


def capacity(
    board: Any,
    link: Link,
    costs: Costs,
    combo: tuple[str, str, int],
    seconds: float,
    short: float,
    max_rate: int,
    say: Say,
) -> dict[str, Any]:
    source, fmt, nch = combo
    ladder = [r for r in LADDERS[source] if r * nch <= max_rate]
    # start at the highest step the cost model expects to fit
    i = max([k for k, r in enumerate(ladder) if costs.predict(Point(source, fmt, nch, r)) < 0.95] or [0])
    tried: dict[int, dict[str, Any]] = {}

    def short_run(k: int) -> dict[str, Any]:
        if k not in tried:
            say(f"{source} {fmt} x {nch}: {ladder[k]} Hz for {short:g} emulated s")
            tried[k] = stream(board, link, Point(source, fmt, nch, ladder[k]), short)
        return tried[k]

    if short_run(i)["ok"]:
        while i + 1 < len(ladder) and short_run(i + 1)["ok"]:
            i += 1
    else:
        while i > 0 and not short_run(i)["ok"]:
            i -= 1
    best: dict[str, Any] | None = None
    fail: dict[str, Any] | None = tried.get(i + 1)
    while i >= 0 and short_run(i)["ok"]:
        say(f"{source} {fmt} x {nch}: {ladder[i]} Hz for {seconds:g} emulated s")
        run = stream(board, link, Point(source, fmt, nch, ladder[i]), seconds)
        if run["ok"]:
            best = run
            break
        fail = run
        i -= 1
    out: dict[str, Any] = {"source": source, "fmt": fmt, "channels": nch, "ladder": ladder}
    if best is None:
        out.update(ok=False, why=(fail or short_run(0))["why"])
        return out
    out.update(ok=True, **{k: best[k] for k in best if k not in ("ok", "why")})
    out["breakdown"] = breakdown(costs, best)
    out["predicted_busy"] = round(costs.predict(Point(source, fmt, nch, best["rate"])), 4)
    if fail is not None:
        out["next"] = {
            "rate": fail["rate"],
            "seconds": fail["seconds"],
            "why": fail["why"],
            "busy_share": fail.get("busy_share"),
        }
    else:
        out["next"] = {"rate": None, "why": f"the firmware's limit: {max_rate:,} samples/s in all"}
    return out


def measure(quick: bool, seconds: float, short: float, say: Say) -> dict[str, Any]:
    pico = Pico(say)
    out: dict[str, Any] = {"limits": LIMITS, "quick": quick}
    try:
        say("flashing an emulated RP2040 with picodaq flash")
        out["flash_seconds"] = round(pico.flash(), 1)
        board = pico.board()
        try:
            say("ring budget (raw REPL: main.py's boot, then START of each source)")
            out["budget"] = run_probe(board, quick, BUDGET)
            say("cycle probe (raw REPL, heap locked)")
            probe = run_probe(board, quick, PROBE)
            say("writing cost: full frames to the USB CDC link")
            write = write_cost(board, 4110, 200_000 if quick else 1_000_000)
        finally:
            board.stop()
        out["probe"] = probe
        out["write"] = write
        board = pico.board()
        try:
            with Link.open(board.port) as link:
                hello = link.get_info()
                out["ring_bytes"] = hello.ring_bytes
                out["max_rate"] = hello.max_rate
                say("the streaming loop's floor: ramp 10 Hz x 1")
                floor = stream(board, link, Point("ramp", "int16", 1, 10), 1.0 if quick else 5.0)
                out["floor"] = floor
                costs = Costs(probe, write, floor["busy_share"])
                rows = []
                if quick:
                    for src, fmt, nch, rate in QUICK_POINTS:
                        say(f"{src} {fmt} x {nch} at {rate} Hz for {seconds:g} emulated s")
                        run = stream(board, link, Point(src, fmt, nch, rate), seconds)
                        run["breakdown"] = breakdown(costs, run)
                        rows.append(run)
                else:
                    for combo in COMBOS:
                        rows.append(capacity(board, link, costs, combo, seconds, short, hello.max_rate, say))
                out["capacity"] = rows
        finally:
            board.stop()
    finally:
        pico.close()
    out["framing_ratio_old_new"] = _framing_ratio(out["probe"])
    return out


def _framing_ratio(probe: list[dict[str, Any]]) -> dict[str, Any]:
    """Old (viper CRC) over new (Thumb CRC) cycles per frame, for the largest frame of each format."""
    res = {}
    for fmt in (1, 2, 3):
        rows = [r for r in probe if r.get("kind") == "framing" and r["fmt"] == fmt]
        if rows:
            r = max(rows, key=lambda r: r["frame_bytes"])
            res[C.FORMAT_NAMES[fmt]] = {
                "frame_bytes": r["frame_bytes"],
                "cycles_old": r["cycles_old"],
                "cycles_new": r["cycles_new"],
                "ratio": round(r["cycles_old"] / r["cycles_new"], 2),
            }
    return res
