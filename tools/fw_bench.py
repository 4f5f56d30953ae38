#!/usr/bin/env python3
"""Firmware hot-path benchmark on MicroPython's unix port.

    .venv/bin/python tools/fw_bench.py [--frames N] [--repeat R] [--json PATH]

Runs tests/fw/bench_frames.py next to a copy of the firmware: for 8 channels x
32 instants in each sample format, microseconds per SAMPLES frame (ramp fill
into the ring + header, copy and CRC-32 into the frame buffer) with the heap
locked, and the free heap before and after. Reports the best of R runs (the
least disturbed by other load). A host-side number: the rp2 port runs the same
code some 20-50x slower, which only a board can measure.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = {1: "int16", 2: "int24", 3: "int32"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    exe = Path(sys.executable).with_name("micropython")
    best: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "firmware" / "picodaq_fw", Path(tmp) / "picodaq_fw")
        shutil.copy(ROOT / "tests" / "fw" / "bench_frames.py", tmp)
        for _ in range(a.repeat):
            out = subprocess.run([str(exe), "-X", "heapsize=4M", "bench_frames.py", str(a.frames)], cwd=tmp,
                                 capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                r = json.loads(line)
                if r["fmt"] not in best or r["us_per_frame"] < best[r["fmt"]]["us_per_frame"]:
                    best[r["fmt"]] = r
    print(f"{'format':8} {'bytes':>6} {'us/frame':>9} {'fill':>7} {'frame':>7} {'heap before':>12} {'after':>9}")
    for fmt, r in sorted(best.items()):
        print(f"{NAMES[fmt]:8} {r['frame_bytes']:>6} {r['us_per_frame']:>9.2f} {r['us_fill']:>7.2f} "
              f"{r['us_frame']:>7.2f} {r['heap_free_before']:>12} {r['heap_free_after']:>9}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps([best[k] for k in sorted(best)], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
