#!/usr/bin/env python3
"""Make a large capture and time `picodaq plot` on it (the figure the README and issue 20 quote).

    python tools/plot_big.py DIR [--mb 1024] [--formats tlv,npy,bdf]

DIR/big.tlv: a board's link bytes as `picodaq record --out big.tlv` would write them, 32 channels
of the ramp at 16 kHz in int16 (a 4 KB SAMPLES frame every 63 instants), built byte by byte from
PROTOCOL.md, with a marker every minute and 500 instants lost a third of the way in. The other
formats are made from it with `picodaq replay` (the .npy directly: a replay into it takes long).
Each file is plotted once to warm the page cache and once timed; the times are printed.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import time
from pathlib import Path

from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.protocol.frames import encode_frame, samples_payload

RATE = 16000
NCH = 32
PER_FRAME = 63  # instants of 32 int16 channels in one 4 KB SAMPLES payload


def hello() -> bytes:
    payload = struct.pack(
        C.HELLO_FORMAT,
        0,
        1,
        0,
        C.PROTOCOL_VERSION,
        C.CONTRACT_HASH,
        b"\x42" * 8,
        b"big\0\0\0\0\0",
        32,
        C.SRC_RAMP,
        4_000_000,
        1 << C.SRC_RAMP,  # sources
        0,
        1 << 20,  # ring_bytes
    )
    return encode_frame(C.MSG_HELLO, 0, payload)


def make_capture(path: Path, size: int) -> tuple[int, int]:
    """Write about size bytes of capture; returns (instants received, instants lost)."""
    period_ns = 1_000_000_000 // RATE
    lost_at, lost = None, 500
    seq = 1
    index = received = 0
    frame_bytes = C.OVERHEAD + 16 + PER_FRAME * NCH * 2
    frames = size // frame_bytes
    lost_at = frames // 3 * PER_FRAME
    block = 4096  # frames' worth of ramp made at once
    with open(path, "wb") as f:
        f.write(hello())
        while seq <= frames:
            n = min(block, frames - seq + 1) * PER_FRAME
            ramp = ramp_counts(index, n + lost, NCH, C.FMT_INT16).astype("<i2")
            out = bytearray()
            k = 0
            while k < n:
                if index == lost_at:  # these instants never arrive: a jump in first_sample_index
                    index += lost
                    ramp = ramp[lost:]
                t0 = index * period_ns // 1000
                data = ramp[k : k + PER_FRAME].tobytes()
                out += encode_frame(
                    C.MSG_SAMPLES, seq, samples_payload(index, t0, period_ns, NCH, C.FMT_INT16, PER_FRAME, data)
                )
                if index // (60 * RATE) != (index + PER_FRAME) // (60 * RATE):  # a marker every minute
                    m = (index + PER_FRAME) // (60 * RATE) * 60 * RATE
                    seq += 1
                    out += encode_frame(C.MSG_MARKER, seq, struct.pack(C.MARKER_FORMAT, m, m // (60 * RATE), 0))
                seq += 1
                index += PER_FRAME
                received += PER_FRAME
                k += PER_FRAME
            f.write(out)
    return received, lost


def timed(args: list[str]) -> float:
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "picodaq.cli.main", *args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"picodaq {' '.join(args)} failed:\n{r.stderr}")
    return time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--mb", type=int, default=1024, help="capture size in MB (default 1024: 1 GB)")
    ap.add_argument("--formats", default="tlv,npy", help="which formats to time (tlv, npy, bdf, csv)")
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    tlv = a.dir / "big.tlv"
    t = time.monotonic()
    received, lost = make_capture(tlv, a.mb << 20)
    print(
        f"made {tlv}: {tlv.stat().st_size / 2**30:.2f} GiB, {received:,} instants x {NCH} channels "
        f"({received / RATE:,.0f} s at {RATE} Hz), {lost} lost, in {time.monotonic() - t:.0f} s"
    )
    for fmt in a.formats.split(","):
        src = tlv
        if fmt != "tlv":
            src = a.dir / f"big.{fmt}"
            t = time.monotonic()
            timed(["replay", str(tlv), "--out", str(src), "--quiet"])
            print(
                f"made {src} ({src.stat().st_size / 2**30:.2f} GiB) with picodaq replay in {time.monotonic() - t:.0f} s"
            )
        png = a.dir / f"big.{fmt}.png"
        timed(["plot", str(src), "--out", str(png)])  # the page cache warm, as after recording it
        secs = timed(["plot", str(src), "--out", str(png)])
        print(f"picodaq plot {src.name}: {secs:.1f} s ({src.stat().st_size / 2**30 / secs:.2f} GiB/s) -> {png}")


if __name__ == "__main__":
    main()
