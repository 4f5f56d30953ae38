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
rows from its first instant on (`record --seconds` ends on a frame
boundary, so within one frame of rate x seconds), with no loss counted.

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
import os
import select
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from .. import contracts as C
from ..recording.config import StreamConfig
from .cyton import N_CHANNELS, CytonBoard, expected_counts
from .damage import Damager, DamageSpec, DamageTruth

RATES = (250, 1000, 4000, 16000)
BRAINFLOW_VERSION = "5.23.0"
DAMAGE = DamageSpec(drop=1e-4, bitflip=1e-4, garbage=1e-4, garbage_max=32)
DAMAGE_SEED = 17
DAMAGE_RATE = 1000
# BrainFlow's Cyton scale at the default gain (24): microvolts per count, computed as its driver does
UV_PER_COUNT = 4.5 / 8388607.0 / 24 * 1000000.0
_LOSS_KEYS = (
    "crc_errors",
    "header_errors",
    "samples_lost",
    "seq_lost",
    "gaps",
    "gap_instants",
    "device_samples_dropped",
)
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_RAMP_INV = pow(C.RAMP_MUL, -1, 1 << 24)  # the ramp's index from one int24 value: n = (v + 2**23 - c*CHAN) / MUL

Say = Callable[[str], None]


class PeerError(RuntimeError):
    """A side of the peer figure could not be measured (the runner reports it as a BenchError)."""


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


# -- CPU of another process over a window --------------------------------------------


def proc_cpu(pid: int) -> tuple[float, float | None, frozenset[str]]:
    """(utime + stime in seconds, the sum of its threads' schedstat run times in seconds or None, thread ids)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    tasks = frozenset(os.listdir(f"/proc/{pid}/task"))
    ns = 0
    try:
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return ticks, None, tasks
    return ticks, ns / 1e9, tasks


@dataclass
class CpuWindow:
    seconds: float
    cpu_seconds: float  # utime + stime
    cpu_seconds_schedstat: float | None  # threads alive at both ends; None when a thread came or went
    threads: int

    def as_dict(self) -> dict[str, Any]:
        s = self.seconds
        fine = self.cpu_seconds_schedstat
        return {
            "seconds": s,
            "cpu_seconds": self.cpu_seconds,
            "cpu_percent": 100 * self.cpu_seconds / s,
            "cpu_percent_schedstat": None if fine is None else 100 * fine / s,
            "threads": self.threads,
        }


def cpu_window(pid: int, seconds: float, alive: Callable[[], bool]) -> CpuWindow:
    """The CPU pid uses over the next `seconds` of wall time."""
    c0, f0, tasks0 = proc_cpu(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    if not alive():
        raise PeerError("the measured process ended inside its window")
    c1, f1, tasks1 = proc_cpu(pid)
    t1 = time.monotonic()
    fine = None if f0 is None or f1 is None or tasks0 != tasks1 else f1 - f0
    return CpuWindow(t1 - t0, c1 - c0, fine, len(tasks1))


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


def cyton_counts(rows: np.ndarray) -> np.ndarray:
    """BrainFlow's EEG microvolts (rows x [package_num, 8 EEG, end byte]) back to int24 counts."""
    return np.rint(rows[:, 1 : 1 + N_CHANNELS] / UV_PER_COUNT).astype(np.int64)


def brainflow_exact(rows: np.ndarray) -> bool:
    """Every row is the next packet, from the first: right values, right package number."""
    n = len(rows)
    if n == 0:
        return False
    nums = rows[:, 0].astype(np.int64)
    return bool(np.array_equal(cyton_counts(rows), expected_counts(0, n)) and np.all(nums == np.arange(n) % 256))


def ramp_at(index: np.ndarray) -> np.ndarray:
    """The int24 ramp (PROTOCOL.md) at each of these instants' indices, instants x 8 channels."""
    c = np.arange(N_CHANNELS, dtype=np.int64)[None, :]
    return (np.asarray(index, dtype=np.int64)[:, None] * C.RAMP_MUL + c * C.RAMP_CHAN_MUL) % (1 << 24) - (1 << 23)


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A picodaq CSV's sample indices and counts (t_s, sample_index, marker, ch0..)."""
    index, counts = [], []
    with open(path) as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split(",")
            index.append(int(parts[1]))
            counts.append([int(x) for x in parts[3 : 3 + N_CHANNELS]])
    return np.array(index, dtype=np.int64), np.array(counts, dtype=np.int64).reshape(-1, N_CHANNELS)


def judge_rows(counts: np.ndarray, sent: int) -> dict[str, Any]:
    """Each delivered row of int24 counts against the ramp: which packet it is (the index most of
    its channels imply), and how many of its values are wrong. A row no two channels agree on
    (built from garbage or from two packets' bytes) is spurious: all its values are wrong."""
    r = len(counts)
    c = np.arange(N_CHANNELS, dtype=np.int64)
    implied = ((counts + (1 << 23) - c * C.RAMP_CHAN_MUL) % (1 << 24) * _RAMP_INV) % (1 << 24)
    agree = (implied[:, :, None] == implied[:, None, :]).sum(axis=2)
    best = agree.argmax(axis=1)
    index = implied[np.arange(r), best]
    known = (agree.max(axis=1) >= 2) & (index < sent)
    wrong = np.where(known[:, None], counts != ramp_at(index), True)
    return {"index": np.where(known, index, -1), "wrong": wrong, "known": known}


def judge_brainflow(rows: np.ndarray, sent: int, truth: dict[str, Any] | None, log: dict[str, Any]) -> dict[str, Any]:
    counts = cyton_counts(rows)
    j = judge_rows(counts, sent)
    index, wrong, known = j["index"], j["wrong"], j["known"]
    delivered = index[known]
    got = set(delivered.tolist())
    span = int(delivered.max()) + 1 if len(delivered) else 0  # its last packets were in flight at the stop
    nums = rows[:, 0].astype(np.int64)
    tr = DamageTruth.from_dict(truth) if truth else DamageTruth(units=sent)
    damaged = tr.damaged()
    intact_lost = sum(1 for n in range(span) if n not in damaged and n not in got)
    return {
        "instants_sent": sent,
        "instants_span": span,
        "rows_delivered": int(len(rows)),
        "values_delivered": int(wrong.size),
        "wrong_values": int(wrong.sum()),
        "wrong_values_unflagged": int(wrong.sum()),  # BrainFlow flags no value
        "rows_wrong": int(wrong.any(axis=1).sum()),
        "rows_spurious": int((~known).sum()),
        "rows_wrong_package_num": int((known & (nums != index % 256)).sum()),
        "duplicates": int(len(delivered) - len(np.unique(delivered))),
        "missing_instants": span - len(got),
        "missing_reported": None,  # no counter: a user could only guess from package_num (mod 256)
        "package_num_jumps": int(np.count_nonzero((np.diff(nums) % 256) != 1)),
        "intact_units_lost": intact_lost,
        "reported": log,
    }


# -- picodaq ------------------------------------------------------------------------


def run_picodaq(port: str, rate: float, tmp: Path, warmup: float, window: float, seconds: float) -> dict[str, Any]:
    """`picodaq record` from the emulated board at rate for `seconds`, CPU over a window after warmup."""
    tlv, stats = tmp / f"picodaq-{rate:g}.tlv", tmp / f"picodaq-{rate:g}.json"
    argv = [sys.executable, "-m", "picodaq", "record", "--port", port, "--rate", f"{rate:g}", "--channels", "8"]
    argv += ["--fmt", "int24", "--quiet", "--seconds", f"{seconds:g}", "--out", str(tlv), "--stats-json", str(stats)]
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
        w = cpu_window(p.pid, window, lambda: p.poll() is None)
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
    # `record --seconds` ends on a frame boundary: within one frame of rate x seconds, every instant
    # from the first, each the ramp of its index, nothing counted as lost
    res["exact"] = (
        abs(s["samples"] - expected) < spf and not any(res["lost"].values()) and picodaq_exact(tlv, s["samples"])
    )
    res["_capture"] = tlv
    return res


def picodaq_exact(tlv: Path, expected: int) -> bool:
    """Replay the capture into .npy: exactly `expected` instants, each the ramp of its index."""
    npy = tlv.with_suffix(".npy")
    r = subprocess.run(
        [sys.executable, "-m", "picodaq", "replay", str(tlv), "--out", str(npy), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if r.returncode != 0:
        raise PeerError(f"picodaq replay {tlv.name} failed: {r.stderr.strip()[-300:]}")
    got = np.load(npy)
    return bool(got.shape == (expected, N_CHANNELS) and np.array_equal(got, expected_counts(0, expected)))


# -- damage on a picodaq capture -------------------------------------------------------

_HEAD = C.HEADER_SIZE
_CRC_RESIDUE = 0x2144DF1C  # zlib.crc32 over an intact frame including its stored (little-endian) CRC


def frames(capture: bytes) -> list[tuple[bytes, int]]:
    """A clean capture cut into pieces: (frame bytes, type) for each frame whose CRC holds,
    (bytes, -1) for anything between frames."""
    out: list[tuple[bytes, int]] = []
    pos = loose = 0
    n = len(capture)
    while pos + _HEAD + 4 <= n:
        if capture[pos : pos + 2] == C.MAGIC:
            length = int.from_bytes(capture[pos + 4 : pos + 6], "little")
            end = pos + _HEAD + length + 4
            if end <= n and zlib.crc32(capture[pos:end]) == _CRC_RESIDUE:
                if loose < pos:
                    out.append((capture[loose:pos], -1))
                out.append((capture[pos:end], capture[pos + 3]))
                pos = loose = end
                continue
        pos += 1
    if loose < n:
        out.append((capture[loose:], -1))
    return out


def damage_capture(capture: bytes, spec: DamageSpec, seed: int) -> tuple[bytes, DamageTruth, list[tuple[int, int]]]:
    """The capture with every SAMPLES frame passed through a Damager (the rest untouched); the truth;
    and each unit's (first_sample_index, n_samples)."""
    d = Damager(spec, seed)
    out = bytearray()
    units: list[tuple[int, int]] = []
    for data, kind in frames(capture):
        if kind == C.MSG_SAMPLES:
            p = data[_HEAD:]
            units.append((int.from_bytes(p[0:4], "little"), int.from_bytes(p[14:16], "little")))
            out += d.unit(data)
        else:
            out += data
    return bytes(out), d.truth, units


def judge_picodaq(capture: Path, tmp: Path, spec: DamageSpec, seed: int) -> dict[str, Any]:
    damaged, truth, units = damage_capture(capture.read_bytes(), spec, seed)
    src = tmp / "picodaq-damaged.tlv"
    src.write_bytes(damaged)
    csv, stats = tmp / "picodaq-damaged.csv", tmp / "picodaq-damaged.json"
    r = subprocess.run(
        [sys.executable, "-m", "picodaq", "replay", str(src), "--out", str(csv), "--stats-json", str(stats), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0:
        raise PeerError(f"picodaq replay of the damaged capture failed: {r.stderr.strip()[-300:]}")
    s = json.loads(stats.read_text())
    index, counts = read_csv(csv)
    wrong = counts != ramp_at(index)
    sent = {n for first, k in units for n in range(first, first + k)}
    damaged_units = truth.damaged()
    intact = {n for u, (first, k) in enumerate(units) if u not in damaged_units for n in range(first, first + k)}
    got = set(index.tolist())
    reported = {
        k: s[k]
        for k in ("crc_errors", "header_errors", "skipped_bytes", "samples_lost", "seq_lost", "gaps", "gap_instants")
    }
    reported.update({k: s[k] for k in ("decode_errors", "truncated") if s.get(k)})
    return {
        "instants_sent": len(sent),
        "instants_span": len(sent),
        "rows_delivered": int(len(index)),
        "values_delivered": int(wrong.size),
        "wrong_values": int(wrong.sum()),
        "wrong_values_unflagged": int(wrong.sum()),  # no value is flagged: a wrong one passed every check
        "rows_wrong": int(wrong.any(axis=1).sum()),
        "rows_spurious": int(len(got - sent)),
        "duplicates": int(len(index) - len(got)),
        "missing_instants": len(sent - got),
        "missing_reported": s["samples_lost"],
        "intact_units_lost": len(intact - got),
        "reported": reported,
        "_truth": truth,
        "_units": len(units),
    }


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
    seconds = warmup + window + 2.0  # picodaq's --seconds (and the damaged streams' length): the window, a margin
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
