#!/usr/bin/env python3
"""Firmware hot-path benchmark on MicroPython's unix port (figure 6 of `picodaq bench`).

    .venv/bin/python tools/fw_bench.py [--frames N] [--repeat R] [--json PATH]

The same measurement as `picodaq bench --only firmware` (picodaq.bench.firmware),
alone: for 8 channels x 32 instants in each sample format, microseconds per
SAMPLES frame of the optimised framer with the heap locked, next to a
straightforward struct.pack framer, and the heap allocations of each. Reports
the median of R runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from picodaq.bench.firmware import run_rounds, summarise
from picodaq.boards.unix import micropython_executable


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    res = summarise(run_rounds(a.frames, a.repeat, micropython_executable()))
    print(
        f"{'format':8} {'bytes':>6} {'us/frame':>9} {'fill':>7} {'frame':>7} {'naive':>7} {'heap allocs':>12} "
        f"{'naive B/frame':>14}"
    )
    for name, r in res.items():
        print(
            f"{name:8} {r['frame_bytes']:>6} {r['us_per_frame']:>9.2f} {r['us_fill']:>7.2f} {r['us_frame']:>7.2f} "
            f"{r['naive_us_frame']:>7.2f} {r['heap_allocations']:>12} {r['naive_bytes_per_frame']:>14.0f}"
        )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
