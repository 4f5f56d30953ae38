"""Runs the benchmark's figures, one after the other in this process, into one JSON-ready dict.

Each figure is a function of the settings (full or --quick) that returns a
dict with the command reproducing it, how many runs its medians are over,
and its numbers. Timings are medians of `runs` runs; ratios are taken within
each run (round) and their median reported, so a machine that gets busier
halfway does not bias one side of a comparison. Counts (allocations, losses)
are not medians: they are exact, summed over the rounds.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from ..errors import PicodaqError

SCHEMA = "picodaq-bench/1"


class BenchError(PicodaqError):
    """A figure could not be measured, or its cross-check failed."""


@dataclass(frozen=True)
class Settings:
    quick: bool
    runs: int  # rounds of the timed figures (pipeline, firmware)
    live_runs: int  # rounds of the live figure (receiver, then raw drain, on one emulated board)
    cpu_runs: int
    pipeline_frames: int
    alloc_frames: int
    growth_frames: int
    live_seconds: float
    cpu_seconds: float
    latency_seconds: float
    latency_rounds: int  # turns of the receiver-latency figure's readers, side by side, per load
    fw_frames: int
    peer_runs: int  # rounds of the peer figure: every rate, BrainFlow and picodaq
    peer_rates: tuple[int, ...]
    peer_warmup: float  # seconds of stream before the CPU window opens
    peer_window: float
    rp2040_seconds: float  # emulated seconds a capacity point must stream with zero drops
    rp2040_short: float  # emulated seconds of the short runs that find the step


FULL = Settings(
    quick=False,
    runs=5,
    live_runs=5,
    cpu_runs=3,
    pipeline_frames=100_000,
    alloc_frames=20_000,
    growth_frames=1_000_000,
    live_seconds=2.0,
    cpu_seconds=5.0,
    latency_seconds=60.0,
    latency_rounds=6,
    fw_frames=5000,
    peer_runs=2,
    peer_rates=(250, 1000, 4000, 16000),
    peer_warmup=2.0,
    peer_window=10.0,
    rp2040_seconds=30.0,
    rp2040_short=3.0,
)
QUICK = Settings(
    quick=True,
    runs=3,
    live_runs=2,
    cpu_runs=2,
    pipeline_frames=6000,
    alloc_frames=3000,
    growth_frames=20_000,
    live_seconds=0.5,
    cpu_seconds=0.5,
    latency_seconds=1.5,
    latency_rounds=1,
    fw_frames=300,
    peer_runs=1,
    peer_rates=(1000,),
    peer_warmup=0.5,
    peer_window=1.0,
    rp2040_seconds=0.5,
    rp2040_short=0.5,
)

Progress = Callable[[str], None]


def _median_fields(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: median(r[k] for r in rows) for k in keys if all(r.get(k) is not None for r in rows)}


def _command(name: str, s: Settings) -> str:
    return f"picodaq bench --only {name}" + (" --quick" if s.quick else "")


# -- the figures -----------------------------------------------------------------


def fig_pipeline(s: Settings, say: Progress) -> dict[str, Any]:
    from . import pipeline as P
    from .frames import capture

    say(f"making a capture of {s.pipeline_frames:,} ramp frames (600-byte payloads)")
    data = capture(s.pipeline_frames, P.N_CHANNELS, P.FMT, P.N_SAMPLES, pattern="ramp")
    rounds: list[dict[str, Any]] = []
    for i in range(s.runs):
        say(f"round {i + 1}/{s.runs}: pipeline, naive, CRC floor")
        r = {
            name: fn(data).as_dict()
            for name, fn in (("pipeline", P.replay_pipeline), ("naive", P.replay_naive), ("floor", P.replay_floor))
        }
        # CPU time: a single-threaded replay's own cost, whatever else the machine runs
        r["ratio_pipeline_naive"] = r["pipeline"]["frames_per_cpu_s"] / r["naive"]["frames_per_cpu_s"]
        r["ratio_pipeline_floor"] = r["pipeline"]["frames_per_cpu_s"] / r["floor"]["frames_per_cpu_s"]
        rounds.append(r)
    keys = ("frames_per_cpu_s", "mb_per_cpu_s", "frames_per_s", "mb_per_s", "seconds", "cpu_seconds")
    same = all(
        r["pipeline"][k] == r["naive"][k]
        for r in rounds
        for k in ("frames", "samples", "checksum", "blocks_every", "blocks_tenth")
    )
    if not same:
        raise BenchError("pipeline: the naive decoder and the pipeline disagree on what the capture holds")
    first = rounds[0]
    out: dict[str, Any] = {
        "command": _command("pipeline", s),
        "runs": s.runs,
        "frames": first["pipeline"]["frames"],
        "frame_bytes": P.frame_size(),
        "payload_bytes": P.frame_size() - 14,
    }
    for name in ("pipeline", "naive", "floor"):
        d = _median_fields([r[name] for r in rounds], keys)
        d.update({k: first[name][k] for k in ("frames", "samples", "checksum", "blocks_every", "blocks_tenth")})
        out[name] = d
    out["ratio_pipeline_naive"] = median(r["ratio_pipeline_naive"] for r in rounds)
    out["ratio_pipeline_floor"] = median(r["ratio_pipeline_floor"] for r in rounds)
    out["same_output"] = same
    out["rounds"] = [{n: round(r[n]["frames_per_cpu_s"]) for n in ("pipeline", "naive", "floor")} for r in rounds]
    return out


def fig_alloc(s: Settings, say: Progress) -> dict[str, Any]:
    from . import alloc as A
    from . import pipeline as P
    from .frames import capture

    data = capture(s.alloc_frames + 2000, P.N_CHANNELS, P.FMT, P.N_SAMPLES, pattern="ramp")
    say(f"memray: allocations over {s.alloc_frames:,} frames, pipeline and naive")
    try:
        memray = A.allocations_per_frame(data)
    except PicodaqError as e:  # memray missing: say so, measure the rest
        memray = {"error": str(e)}
    say(f"tracemalloc: retained growth over {s.growth_frames:,} frames")
    growth = A.retained_growth(s.growth_frames)
    return {
        "command": _command("alloc", s),
        "runs": 1,
        "memray": memray,
        "growth": growth,
        "pool_hit_rate": growth["pool_hit_rate"],
    }


def fig_live(s: Settings, say: Progress) -> dict[str, Any]:
    from . import live as L
    from .session import EmulatedSession

    say("starting an unpaced emulated board")
    rounds: list[dict[str, Any]] = []
    with EmulatedSession(unpaced=True) as session:
        for i in range(s.live_runs):
            say(f"round {i + 1}/{s.live_runs}: receiver {s.live_seconds:g} s, then raw pty drain {s.live_seconds:g} s")
            rounds.append(L.live_round(session, s.live_seconds))
    rx_keys = ("mb_per_s", "instants_per_s", "samples_per_s", "cpu_percent", "seconds")
    cfg = L.CONFIG
    return {
        "command": _command("live", s),
        "runs": s.live_runs,
        "config": {
            "n_channels": cfg.n_channels,
            "fmt": "int24",
            "samples_per_frame": cfg.samples_per_frame,
            "payload_bytes": 16 + cfg.n_channels * 3 * cfg.samples_per_frame,
        },
        "receiver": _median_fields([r["receiver"] for r in rounds], rx_keys),
        "raw": _median_fields([r["raw"] for r in rounds], ("mb_per_s", "cpu_percent", "seconds")),
        "ratio_live_raw": median(r["ratio_live_raw"] for r in rounds),
        "lost": sum(r["receiver"]["lost"] for r in rounds),
        "losses": {k: sum(r["receiver"]["losses"][k] for r in rounds) for k in rounds[0]["receiver"]["losses"]},
        "instants": sum(r["receiver"]["instants"] for r in rounds),
        "rounds": [
            {
                "receiver_mb_per_s": r["receiver"]["mb_per_s"],
                "raw_mb_per_s": r["raw"]["mb_per_s"],
                "lost": r["receiver"]["lost"],
            }
            for r in rounds
        ],
    }


def fig_cpu(s: Settings, say: Progress) -> dict[str, Any]:
    from ..recording.config import BATCH_LATEST
    from . import cpu as U
    from .session import EmulatedSession

    cfg = U.line_rate_config()
    say(f"starting a paced emulated board: 8 x int16 at {cfg.rate:,} Hz = 1.2 MB/s")
    rounds: list[dict[str, Any]] = []
    with EmulatedSession(unpaced=False) as session:
        for i in range(s.cpu_runs):
            say(f"round {i + 1}/{s.cpu_runs}: {s.cpu_seconds:g} s at the line rate")
            rounds.append(U.cpu_round(session, s.cpu_seconds))
    out = {"command": _command("cpu", s), "runs": s.cpu_runs}
    out.update(
        _median_fields(
            rounds,
            (
                "cpu_percent",
                "kernel_cpu_percent",
                "read_floor_cpu_percent",
                "c_read_floor_cpu_percent",
                "c_tty_cpu_percent",
                "c_pipe_cpu_percent",
                "mb_per_s",
                "samples_per_s",
                "instants_per_s",
                "seconds",
            ),
        )
    )
    out.update(
        rate=cfg.rate,
        n_channels=cfg.n_channels,
        fmt="int16",
        samples_per_frame=cfg.samples_per_frame,
        target_mb_per_s=U.LINE_RATE / 1e6,
        batch_latest_s=BATCH_LATEST,
        lost=sum(r["lost"] for r in rounds),
        c_read_floor_dropped=sum(r["c_read_floor_dropped"] or 0 for r in rounds),
        losses={k: sum(r["losses"][k] for r in rounds) for k in rounds[0]["losses"]},
        instants=sum(r["instants"] for r in rounds),
    )
    return out


# figure 5a's readers (latency.READERS) by the key each one's results go under
_LATENCY_KEYS = (("default", "receiver"), ("inline", "receiver_inline"), ("bare", "receiver_bare"))


def fig_latency(s: Settings, say: Progress) -> dict[str, Any]:
    from picodaq.boards.unix import micropython_executable

    from ..transport.cpu_latency import CpuLatencyUnavailable
    from . import latency as T
    from .session import EmulatedSession

    check = T.clock_check(micropython_executable())
    if not check["same_clock"]:
        raise BenchError(f"latency: the unix port's ticks_us is not the host's monotonic clock here: {check}")
    out: dict[str, Any] = {"command": _command("latency", s), "runs": 1, "seconds": s.latency_seconds}
    say(
        f"the receiver alone: frames written into a pty, 500 a second, read by a bare loop, a Link and an "
        f"inline Link in turns, {s.latency_seconds:g} s each, the machine idle"
    )
    idle = T.receiver_latency(s.latency_seconds, burners=0, rounds=s.latency_rounds)
    say("... and again with two CPU burners running")
    loaded = T.receiver_latency(s.latency_seconds, burners=2, rounds=s.latency_rounds)
    for reader, key in _LATENCY_KEYS:
        out[key], out[key + "_loaded"] = idle[reader], loaded[reader]
    say("... and idle again, holding a CPU latency request of 0 us (`--cpu-latency 0`: idle CPUs poll)")
    try:
        held = T.receiver_latency(s.latency_seconds, burners=0, rounds=s.latency_rounds, cpu_latency_us=0)
    except CpuLatencyUnavailable as e:
        out["receiver_cpu_latency"] = {"unavailable": str(e)}
    else:
        for reader, key in _LATENCY_KEYS:
            out[key + "_cpu_latency"] = held[reader]
    say(f"end to end: a paced emulated board, 8 ch x 1 kHz, read bare then by picodaq, {s.latency_seconds:g} s each")
    out["clock_check"] = check
    with EmulatedSession(unpaced=False) as session:
        out["emulator"] = T.raw_board_latency(session, s.latency_seconds)
        r = T.latency_run(session, s.latency_seconds)
    out["end_to_end"] = {k: v for k, v in r.items() if k != "window"}
    out["end_to_end"]["lost"] = r["window"]["lost"]
    return out


def fig_firmware(s: Settings, say: Progress) -> dict[str, Any]:
    from picodaq.boards.unix import micropython_executable

    from . import firmware as F

    say(f"{s.runs} runs of {s.fw_frames:,} frames per format on the unix port")
    formats = F.summarise(F.run_rounds(s.fw_frames, s.runs, micropython_executable()))
    if not all(f["same_bytes"] for f in formats.values()):
        raise BenchError("firmware: the optimised and the straightforward framer built different frames")
    return {
        "command": _command("firmware", s),
        "runs": s.runs,
        "n_channels": 8,
        "samples_per_frame": 32,
        "formats": formats,
        "heap_allocations": max(f["heap_allocations"] for f in formats.values()),
    }


def fig_peer(s: Settings, say: Progress) -> dict[str, Any]:
    from . import peer as Q

    out: dict[str, Any] = {"command": _command("peer", s), "runs": s.peer_runs}
    out.update(Q.measure(s.peer_rates, s.peer_runs, s.peer_warmup, s.peer_window, say))
    return out


def fig_rp2040(s: Settings, say: Progress) -> dict[str, Any]:
    from . import rp2040 as R

    out: dict[str, Any] = {"command": _command("rp2040", s), "runs": 1, "seconds": s.rp2040_seconds}
    out.update(R.measure(s.quick, s.rp2040_seconds, s.rp2040_short, say))
    return out


FIGURES: dict[str, tuple[str, Callable[[Settings, Progress], dict[str, Any]]]] = {
    "pipeline": ("host pipeline, offline replay", fig_pipeline),
    "alloc": ("allocations on the hot path", fig_alloc),
    "live": ("unpaced emulated board through a pty, next to a raw drain", fig_live),
    "cpu": ("host CPU at 1.2 MB/s", fig_cpu),
    "latency": ("latency, device instant to consumer", fig_latency),
    "firmware": ("firmware framing on the unix port", fig_firmware),
    "peer": ("beside BrainFlow's Cyton driver: CPU per rate, the same damage", fig_peer),
    "rp2040": ("what a Pico (RP2040) sustains, on the emulated chip: capacity and cycles", fig_rp2040),
}


# -- the machine -------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    from picodaq.boards.unix import micropython_executable

    from .firmware import micropython_version

    try:
        mpy = micropython_version(micropython_executable())
    except (OSError, RuntimeError, ValueError) as e:
        mpy = f"unavailable ({e})"
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "micropython": mpy,
        "os": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def run(names: list[str], settings: Settings, say: Progress) -> dict[str, Any]:
    """Measure the named figures; returns the results document."""
    started = time.monotonic()
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": settings.quick,
        "command": "picodaq bench" + (" --quick" if settings.quick else ""),
        "machine": machine(),
        "figures": {},
    }
    for i, name in enumerate(names, 1):
        title, fn = FIGURES[name]
        t = time.monotonic()
        prefix = f"bench [{i}/{len(names)}] {name}"
        say(f"{prefix}: {title}")
        try:
            doc["figures"][name] = fn(settings, functools.partial(_prefixed, say, prefix))
        except RuntimeError as e:  # a cross-check inside a figure, a board that did not start
            raise BenchError(f"{name}: {e}") from None
        doc["figures"][name]["stage_seconds"] = round(time.monotonic() - t, 2)
        say(f"{prefix}: done in {time.monotonic() - t:.1f} s")
    doc["seconds"] = round(time.monotonic() - started, 2)
    return doc


def stderr_progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _prefixed(say: Callable[[str], None], prefix: str, text: str) -> None:
    say(f"{prefix}: {text}")
