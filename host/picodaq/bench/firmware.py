"""Figure 6: the firmware's framing hot path on MicroPython's unix port.

Runs fw_frames.py (a MicroPython script beside this module) next to a copy
of the firmware: for 8 channels x 32 instants in each sample format,
microseconds per SAMPLES frame for the optimised framer
(firmware/picodaq_fw/framer.py: ring fill + header, copy and CRC-32 in
viper, into a preallocated buffer) with the heap locked, next to a
straightforward framer (struct.pack, bytes slices and concatenation,
binascii.crc32) on the same ring; the heap allocations of each; and whether
both built the same bytes. A host-side number: the rp2 port runs the same
code some 20-50x slower, which only a board can measure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

from .. import contracts as C
from ..flash.firmware import firmware_dir

SCRIPT = Path(__file__).with_name("fw_frames.py")
_TIMES = ("us_per_frame", "us_fill", "us_frame", "naive_us_frame")


def micropython_version(exe: str) -> str:
    """The unix port's version, as MicroPython reports it (e.g. "1.29.0-preview, build 2026-07-05")."""
    out = subprocess.run(
        [
            exe,
            "-c",
            "import sys; v = sys.implementation.version; "
            "print('.'.join(str(x) for x in v[:3]) + ('-' + v[3] if len(v) > 3 and v[3] else ''), "
            "sys.version.split(' on ')[-1])",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.split()
    return f"{out[0]}, build {out[1]}" if len(out) > 1 else out[0]


def run_rounds(frames: int, rounds: int, exe: str) -> list[list[dict[str, Any]]]:
    """rounds runs of the script; each gives one record per format."""
    results = []
    with tempfile.TemporaryDirectory(prefix="picodaq-fwbench-") as tmp:
        shutil.copytree(firmware_dir() / "picodaq_fw", Path(tmp) / "picodaq_fw")
        shutil.copy(SCRIPT, tmp)
        for _ in range(rounds):
            p = subprocess.run(
                [exe, "-X", "heapsize=4M", SCRIPT.name, str(frames)],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if p.returncode != 0:
                raise RuntimeError(f"the firmware benchmark failed on the unix port: {p.stderr.strip()[-400:]}")
            results.append([json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")])
    return results


def summarise(rounds: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Per format: the median of each time over the rounds; allocations and checks from every round."""
    by_fmt: dict[int, list[dict[str, Any]]] = {}
    for records in rounds:
        for r in records:
            by_fmt.setdefault(r["fmt"], []).append(r)
    out = {}
    for fmt, rs in sorted(by_fmt.items()):
        d: dict[str, Any] = {k: median(r[k] for r in rs) for k in _TIMES}
        d["speedup_framing"] = d["naive_us_frame"] / d["us_frame"] if d["us_frame"] else None
        d.update(
            frame_bytes=rs[0]["frame_bytes"],
            frames=rs[0]["frames"],
            rounds=len(rs),
            heap_allocations=max(r["heap_alloc_errors"] + (1 if r["heap_bytes_allocated"] else 0) for r in rs),
            heap_bytes_allocated=max(r["heap_bytes_allocated"] for r in rs),
            naive_bytes_per_frame=median(r["naive_bytes_per_frame"] for r in rs),
            same_bytes=all(r["same_bytes"] for r in rs),
            heap_free_before=rs[0]["heap_free_before"],
            heap_free_after=rs[0]["heap_free_after"],
        )
        out[C.FORMAT_NAMES[fmt]] = d
    return out
