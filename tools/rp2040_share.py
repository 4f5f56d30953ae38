"""Emulated CPU share of the firmware on the emulated RP2040, per source and rate.

    .venv/bin/python tools/rp2040_share.py [--seconds S] [--json PATH] [SOURCE:RATExCH[:FMT] ...]

Starts an emulated Pico in a temporary folder, flashes it with `picodaq flash`
(timed: time to flash an empty board), restarts it from that flash (timed: time
from start to the firmware's HELLO), then streams each configuration for S
seconds of the chip's own time (default 3) and reports, from the runner's
control channel: busy share (cycles the core executed / cycles elapsed at
125 MHz), emulated seconds per wall second, busy cycles per SAMPLES frame, and
the board's drops. Default configurations: ramp, sine and adc at a few rates.
Figures are the emulator's: no XIP cache misses, fixed USB timing (see
notes/rp2040-tier.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from picodaq import contracts as C
from picodaq.boards.rp2040 import Rp2040Board
from picodaq.transport.link import Link

DEFAULT = [
    "ramp:250x4",
    "ramp:1000x4",
    "ramp:2000x8",
    "sine:1000x4:int24",
    "sine:2000x4:int24",
    "adc:100x4",
    "adc:1000x4",
    "adc:5000x4",
    "adc:7500x4",
]
SOURCES = {"ramp": C.SRC_RAMP, "sine": C.SRC_SINE, "adc": C.SRC_ADC}
FMTS = {"int16": C.FMT_INT16, "int24": C.FMT_INT24, "int32": C.FMT_INT32}


def parse(spec: str) -> tuple[str, int, int, str]:
    parts = spec.split(":")
    rate, ch = parts[1].split("x")
    return parts[0], int(rate), int(ch), parts[2] if len(parts) > 2 else "int16"


def until_hello(port: str, timeout: float = 120.0) -> float:
    t0 = time.monotonic()
    with Link.open(port) as link:
        while not link.pump_until(lambda: link.receiver.hellos > 0, 1.0):
            try:
                link.get_info()
                break
            except Exception:
                if time.monotonic() - t0 > timeout:
                    raise
    return time.monotonic() - t0


def measure(board: Rp2040Board, link: Link, spec: str, seconds: float) -> dict:
    src, rate, nch, fmt = parse(spec)
    spf = max(1, rate // 50)  # ~20 ms frames, as picodaq record chooses
    link.configure(rate, (1 << nch) - 1, SOURCES[src], FMTS[fmt], spf)
    link.start()
    link.pump_until(lambda: False, 0.5)  # settle
    a, sa, w0 = board.control("time"), link.get_status(), time.monotonic()
    while board.control("time")["ns"] - a["ns"] < seconds * 1e9:
        link.pump_until(lambda: False, 0.2)
    z, sz, w1 = board.control("time"), link.get_status(), time.monotonic()
    final = link.stop()
    busy = z["busy"] - a["busy"]
    cycles = z["cycles"] - a["cycles"]
    frames = sz.frames_sent - sa.frames_sent
    return {
        "config": spec,
        "samples_per_frame": spf,
        "busy_share": round(busy / cycles, 3),
        "emulated_per_wall": round((z["ns"] - a["ns"]) / 1e9 / (w1 - w0), 3),
        "busy_cycles_per_frame": round(busy / max(1, frames)),
        "frames": frames,
        "dropped": final.samples_dropped if final else None,
        "last_error": final.last_error if final else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="*", default=DEFAULT)
    ap.add_argument("--seconds", type=float, default=3.0, help="emulated seconds per configuration")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    out: dict = {"configs": []}
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "pico"
        with Rp2040Board(flash=folder) as board:
            t0 = time.monotonic()
            board.start()
            out["start_blank_s"] = round(time.monotonic() - t0, 2)
            t0 = time.monotonic()
            r = subprocess.run(
                [sys.executable, "-m", "picodaq", "flash", "--port", board.port, "--timeout", "60"],
                capture_output=True,
                text=True,
            )
            out["flash_empty_s"] = round(time.monotonic() - t0, 2)
            if r.returncode:
                print(r.stderr, file=sys.stderr)
                return 1
        with Rp2040Board(flash=folder) as board:
            t0 = time.monotonic()
            board.start()
            out["start_to_port_s"] = round(time.monotonic() - t0, 2)
            out["start_to_hello_s"] = round(out["start_to_port_s"] + until_hello(board.port), 2)
            with Link.open(board.port) as link:
                link.get_info()
                for spec in a.configs:
                    m = measure(board, link, spec, a.seconds)
                    out["configs"].append(m)
                    print(json.dumps(m), flush=True)
    print(json.dumps({k: v for k, v in out.items() if k != "configs"}))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
