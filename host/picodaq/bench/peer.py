"""Figure 7: picodaq beside a C++ peer, BrainFlow's OpenBCI Cyton driver, at the same rates and the same damage.

CPU. For each rate (250 Hz, 1, 4 and 16 kHz, 8 channels), two receiving
processes run one after the other, each fed in real time by an emulator in
its own process:

- BrainFlow: a BrainFlow user's program (peer_client.py: BoardShim with
  BoardIds.CYTON_BOARD on the pty, get_board_data() every 100 ms) reading
  packets from the Cyton emulator (cyton.py) paced at the rate;
- picodaq: `python -m picodaq record --rate R --channels 8 --fmt int24
  --quiet --out x.tlv` from an emulated picodaq board (MicroPython's unix
  port running the firmware), paced.

Each process's CPU is read from /proc/<pid>/stat (utime + stime: every
thread's, dead ones included) at the start and at the end of a steady
window that opens `warmup` seconds after the stream started (BrainFlow's
program says when; picodaq's .tlv file starts to fill), so start-up never
counts; CPU% is their difference over the window's wall time, in % of one
core. /proc/stat counts in clock ticks (10 ms), so the same window is also
read from every thread's /proc/<pid>/task/*/schedstat (nanoseconds) as a
finer cross-check. The ratio picodaq / BrainFlow is taken within each
round; the rounds alternate which side runs first. Each side's samples are
counted and checked value by value against the ramp: BrainFlow's rows
against the packets the emulator sent (its last few packets are in flight
when it stops: its driver stops reading before it sends `s`), picodaq's
rows from its first instant on (`record --seconds` holds exactly rate x
seconds instants), with no loss counted.

Damage. The same seeded damage (damage.py: dropped packets, bit flips and
inserted garbage, each a probability per byte of the data stream, the same
numbers and seed) is fed to both: to BrainFlow by the Cyton emulator, live,
on every packet; to picodaq on every SAMPLES frame of the figure's clean
capture at the same rate, which `picodaq replay` (the same receiving
pipeline as `record`) then decodes. For each: what it reported (picodaq's
--stats-json counters; BrainFlow's log lines at warning level and above),
and every delivered value compared with the ramp: neither marks a single
value as suspect, so each wrong value delivered is one delivered without a
warning.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from .. import contracts as C
from ..recording.config import StreamConfig
from .cyton import N_CHANNELS, CytonBoard, expected_counts
from .damage import DamageSpec, DamageTruth
from .peer_judge import (
    PeerError,
    brainflow_exact,
    judge_brainflow,
    judge_picodaq,
)
from .proc_cpu import cpu_window

RATES = (250, 1000, 4000, 16000)
BRAINFLOW_VERSION = "5.23.0"
DAMAGE = DamageSpec(drop=1e-4, bitflip=1e-4, garbage=1e-4, garbage_max=32)
DAMAGE_SEED = 17
DAMAGE_RATE = 1000
# BrainFlow's Cyton scale at the default gain (24): microvolts per count, computed as its driver does
_LOSS_KEYS = (
    "crc_errors",
    "header_errors",
    "samples_lost",
    "seq_lost",
    "gaps",
    "gap_instants",
    "device_samples_dropped",
)

Say = Callable[[str], None]


def brainflow_missing() -> str | None:
    """Why BrainFlow cannot run here, or None."""
    try:
        import brainflow.board_shim  # noqa: F401
    except (ImportError, OSError) as e:  # not installed, or its native library does not load
        return (
            f"brainflow is not installed ({type(e).__name__}: {e}): the BrainFlow side was not measured "
            f"(`pip install 'picodaq[bench]'` installs brainflow=={BRAINFLOW_VERSION}; `make bench` does)"
        )
    return None


def brainflow_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("brainflow")
    except Exception:
        return None


# -- BrainFlow --------------------------------------------------------------------------


def _log_tail(path: Path, n: int = 6) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def brainflow_log(path: Path) -> dict[str, Any]:
    """BrainFlow's log lines at warning level and above: how many, and each message's count."""
    counts: dict[str, int] = {}
    n = 0
    for line in path.read_text(errors="replace").splitlines():
        for level in ("[warning]", "[error]", "[critical]"):
            if level in line:
                n += 1
                msg = line.split(level, 1)[1].strip()
                key = " ".join(w for w in msg.split() if not w.lstrip("-").isdigit())  # numbers out
                counts[f"{level.strip('[]')}: {key}"] = counts.get(f"{level.strip('[]')}: {key}", 0) + 1
    return {"warnings": n, "messages": counts}


def run_brainflow(
    rate: float,
    tmp: Path,
    warmup: float,
    window: float | None,
    stream_seconds: float | None = None,
    damage: DamageSpec | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """BrainFlow's Cyton driver on the emulator at rate: CPU over a window (or a plain run of stream_seconds)."""
    tag = f"brainflow-{rate:g}" + ("-damaged" if damage and damage.active else "")
    out, log = tmp / f"{tag}.npz", tmp / f"{tag}.log"
    cyton = CytonBoard(rate, damage, seed).start()
    try:
        with open(log, "w") as err:
            p = subprocess.Popen(
                [sys.executable, "-m", "picodaq.bench.peer_client", "--port", cyton.port, "--out", str(out)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert p.stdin is not None and p.stdout is not None
        try:
            r, _, _ = select.select([p.stdout], [], [], 30)
            line = p.stdout.readline() if r else ""
            if not line.startswith("streaming"):
                raise PeerError(f"BrainFlow did not start streaming: {_log_tail(log)}")
            time.sleep(warmup)
            w = cpu_window(p.pid, window, lambda: p.poll() is None) if window else None
            if stream_seconds:
                time.sleep(max(0.0, stream_seconds - warmup - (window or 0.0)))
            p.stdin.close()
            p.wait(30)
            if p.returncode != 0:
                raise PeerError(f"BrainFlow's program failed ({p.returncode}): {_log_tail(log)}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
    finally:
        streams = cyton.stop()
        cyton.close()
    if len(streams) != 1:
        raise PeerError(f"the Cyton emulator saw {len(streams)} streams, not 1")
    stream = streams[0]
    data = np.load(out)
    rows = data["rows"]
    res: dict[str, Any] = {"rate": rate, "sent": stream["sent"], "received": int(len(rows))}
    if w is not None:
        res.update(w.as_dict())
    res["log"] = brainflow_log(log)
    res["backlog_max_bytes"] = stream["backlog_max_bytes"]
    res["_rows"] = rows
    res["_truth"] = stream["truth"]
    return res


# -- picodaq ------------------------------------------------------------------------


def run_picodaq(port: str, rate: float, tmp: Path, warmup: float, window: float, seconds: float) -> dict[str, Any]:
    """`picodaq record` from the emulated board at rate for `seconds`, CPU over a window after warmup."""
    tlv, stats = tmp / f"picodaq-{rate:g}.tlv", tmp / f"picodaq-{rate:g}.json"
    argv = [sys.executable, "-m", "picodaq", "record", "--port", port, "--rate", f"{rate:g}", "--channels", "8"]
    argv += ["--fmt", "int24", "--quiet", "--seconds", f"{seconds:g}", "--out", str(tlv), "--stats-json", str(stats)]
    argv += ["--overwrite"]  # the next round at this rate writes the same files
    err = tmp / f"picodaq-{rate:g}.log"
    with open(err, "w") as e:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e)
    try:
        deadline = time.monotonic() + 30
        while not (tlv.exists() and tlv.stat().st_size > 0):
            if p.poll() is not None or time.monotonic() > deadline:
                raise PeerError(f"picodaq record did not start streaming: {_log_tail(err)}")
            time.sleep(0.05)
        time.sleep(warmup)
        try:
            w = cpu_window(p.pid, window, lambda: p.poll() is None)
        except ProcessLookupError:
            raise PeerError(f"picodaq record ended inside its CPU window ({p.poll()}): {_log_tail(err)}") from None
        p.wait(seconds + 30)
        if p.returncode != 0:
            raise PeerError(f"picodaq record failed ({p.returncode}): {_log_tail(err)}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    s = json.loads(stats.read_text())
    spf = StreamConfig(rate=int(rate), channel_mask=0xFF, source=C.SRC_RAMP, fmt=C.FMT_INT24).frame_samples()
    expected = round(rate * seconds)
    res: dict[str, Any] = {"rate": rate, "expected": expected, "received": s["samples"], "frame_instants": spf}
    res.update(w.as_dict())
    res["lost"] = {k: s[k] for k in _LOSS_KEYS}
    # `record --seconds` holds exactly rate x seconds instants (counted on the board's own indices,
    # however late the STOP reaches it): every one from the first, each the ramp of its index,
    # nothing counted as lost
    res["exact"] = s["samples"] == expected and not any(res["lost"].values()) and picodaq_exact(tlv, expected)
    res["_capture"] = tlv
    return res


def picodaq_exact(tlv: Path, expected: int) -> bool:
    """Replay the capture into .npy: exactly `expected` instants, each the ramp of its index."""
    npy = tlv.with_suffix(".npy")
    r = subprocess.run(
        [sys.executable, "-m", "picodaq", "replay", str(tlv), "--out", str(npy), "--quiet", "--overwrite"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if r.returncode != 0:
        raise PeerError(f"picodaq replay {tlv.name} failed: {r.stderr.strip()[-300:]}")
    got = np.load(npy)
    return bool(got.shape == (expected, N_CHANNELS) and np.array_equal(got, expected_counts(0, expected)))


# -- the figure --------------------------------------------------------------------------


def _public(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def measure(
    rates: tuple[int, ...],
    runs: int,
    warmup: float,
    window: float,
    say: Say,
) -> dict[str, Any]:
    from ..boards.unix import EmulatedBoard

    missing = brainflow_missing()
    # picodaq's --seconds (and the damaged streams' length): the window and a margin for the start, which
    # `record` counts from the board's first instant and this side sees only once the capture is flushed
    seconds = warmup + window + 5.0
    rounds: list[dict[int, dict[str, Any]]] = []
    captures: dict[int, Path] = {}
    with tempfile.TemporaryDirectory(prefix="picodaq-peer-") as tmpname:
        tmp = Path(tmpname)
        say("starting a paced emulated picodaq board")
        board = EmulatedBoard(unpaced=False)
        try:
            board.install_firmware()
            board.start()
            for i in range(runs):
                per: dict[int, dict[str, Any]] = {}
                order = ("brainflow", "picodaq") if i % 2 == 0 else ("picodaq", "brainflow")
                for rate in rates:
                    per[rate] = {}
                    for side in order:
                        if side == "brainflow" and missing:
                            continue
                        say(f"round {i + 1}/{runs}: {side} at {rate:,} Hz x 8 ch, {window:g} s window")
                        if side == "brainflow":
                            bf = run_brainflow(rate, tmp, warmup, window)
                            bf["exact"] = brainflow_exact(bf.pop("_rows"))
                            bf.pop("_truth")
                            per[rate]["brainflow"] = bf
                        else:
                            pd = run_picodaq(board.port, rate, tmp, warmup, window, seconds)
                            captures[rate] = pd.pop("_capture")
                            per[rate]["picodaq"] = pd
                    if "brainflow" in per[rate]:
                        per[rate]["ratio"] = per[rate]["picodaq"]["cpu_percent"] / max(
                            per[rate]["brainflow"]["cpu_percent"], 1e-9
                        )
                rounds.append(per)
            dmg_rate = DAMAGE_RATE if DAMAGE_RATE in captures else rates[0]
            say(f"damage ({DAMAGE}, seed {DAMAGE_SEED}) on picodaq's {dmg_rate:,} Hz capture, through picodaq replay")
            damage: dict[str, Any] = {
                "spec": DAMAGE.as_dict(),
                "text": str(DAMAGE),
                "seed": DAMAGE_SEED,
                "rate": dmg_rate,
            }
            pj = judge_picodaq(captures[dmg_rate], tmp, DAMAGE, DAMAGE_SEED)
            damage["picodaq"] = _public(pj) | {"truth": _truth_summary(pj["_truth"])}
            if not missing:
                say(f"damage: BrainFlow from the Cyton emulator at {dmg_rate:,} Hz for {seconds:g} s")
                bf = run_brainflow(dmg_rate, tmp, 0.0, None, seconds, DAMAGE, DAMAGE_SEED)
                bj = judge_brainflow(bf["_rows"], bf["sent"], bf["_truth"], bf["log"])
                damage["brainflow"] = bj | {"truth": _truth_summary(DamageTruth.from_dict(bf["_truth"]))}
        finally:
            board.stop()
    return _summarise(rates, runs, warmup, window, rounds, damage, missing)


def _truth_summary(t: DamageTruth) -> dict[str, Any]:
    return {
        "units": t.units,
        "bytes": t.bytes,
        "intact": t.intact,
        "dropped": len(t.dropped),
        "flipped": len(t.flipped),
        "split": len(t.split),
        "bits_flipped": t.bits_flipped,
        "garbage_runs": t.garbage_runs,
        "garbage_bytes": t.garbage_bytes,
    }


def _summarise(
    rates: tuple[int, ...],
    runs: int,
    warmup: float,
    window: float,
    rounds: list[dict[int, dict[str, Any]]],
    damage: dict[str, Any],
    missing: str | None,
) -> dict[str, Any]:
    per_rate = []
    keys = ("cpu_percent", "cpu_percent_schedstat", "seconds")
    for rate in rates:
        row: dict[str, Any] = {"rate": rate}
        for side in ("brainflow", "picodaq"):
            got = [r[rate][side] for r in rounds if side in r[rate]]
            if not got:
                row[side] = None
                continue
            d = {k: median(g[k] for g in got) for k in keys if all(g.get(k) is not None for g in got)}
            d.setdefault("cpu_percent_schedstat", None)
            d["received"] = sum(g["received"] for g in got)
            d["expected" if side == "picodaq" else "sent"] = sum(
                g["expected" if side == "picodaq" else "sent"] for g in got
            )
            d["exact"] = all(g["exact"] for g in got)
            if side == "picodaq":
                d["frame_instants"] = got[0]["frame_instants"]
                d["lost"] = {k: sum(g["lost"][k] for g in got) for k in got[0]["lost"]}
            else:
                d["warnings"] = sum(g["log"]["warnings"] for g in got)
            row[side] = d
        ratios = [r[rate]["ratio"] for r in rounds if "ratio" in r[rate]]
        row["ratio"] = median(ratios) if ratios else None
        row["ratios"] = ratios
        per_rate.append(row)
    return {
        "n_channels": N_CHANNELS,
        "fmt": "int24",
        "warmup_seconds": warmup,
        "window_seconds": window,
        "brainflow": brainflow_version(),
        "brainflow_missing": missing,
        "rates": per_rate,
        "damage": damage,
    }
