"""Look at an LSL stream as a consumer sees it: its metadata, then what arrives.

    .venv/bin/python tools/lsl_inlet.py NAME [--seconds 2]

Resolves the stream NAME (and NAME-markers, if there is one), prints the
inlet's view of its metadata (`inlet.info().as_xml()`), pulls for a while and
says how many samples arrived, their timestamps' spacing and how far behind
`local_clock()` the newest one was.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="the LSL stream name")
    ap.add_argument("--seconds", type=float, default=2.0, help="how long to pull (default 2)")
    ap.add_argument("--timeout", type=float, default=10.0, help="how long to look for the stream (default 10)")
    args = ap.parse_args(argv)
    import pylsl

    found = pylsl.resolve_byprop("name", args.name, 1, args.timeout)
    if not found:
        print(f"lsl_inlet: no LSL stream named {args.name!r} within {args.timeout:g} s", file=sys.stderr)
        return 1
    inlet = pylsl.StreamInlet(found[0], processing_flags=0)
    print(inlet.info(args.timeout).as_xml())
    markers = pylsl.resolve_byprop("name", args.name + "-markers", 1, 1.0)
    minlet = pylsl.StreamInlet(markers[0], processing_flags=0) if markers else None
    inlet.open_stream(args.timeout)
    samples: list = []
    stamps: list = []
    marks: list = []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        s, t = inlet.pull_chunk(timeout=0.1)
        samples += s
        stamps += t
        if minlet is not None:
            m, mt = minlet.pull_chunk(timeout=0.0)
            marks += list(zip(mt, m))
    if not samples:
        print("no samples arrived")
        return 1
    ts = np.array(stamps)
    d = np.diff(ts) if len(ts) > 1 else np.zeros(1)
    print(f"{len(samples)} samples in {args.seconds:g} s; first {samples[0]}, last {samples[-1]}")
    print(
        f"timestamps {ts[0]:.6f} .. {ts[-1]:.6f} (local_clock), spacing {d.min() * 1e3:.4f} .. "
        f"{d.max() * 1e3:.4f} ms, strictly increasing: {bool(np.all(d > 0))}; newest "
        f"{(pylsl.local_clock() - ts[-1]) * 1e3:.1f} ms before local_clock() at the end"
    )
    for t, m in marks:
        print(f"marker {m[0]} at {t:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
