"""python -m picodaq_hil.faults: a faulty link from the command line.

python -m picodaq_hil.faults proxy --upstream /dev/ttyACM0 --link /tmp/faulty --spec bitflip=1e-5 --seed 7
python -m picodaq_hil.faults replay board.tlv --spec bitflip=1e-5,drop=1e-5 --seed 7 --out host.tlv
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import __doc__ as faults_doc
from .injector import apply_offline
from .proxy import FaultyLinkProxy
from .spec import FaultSpec, fault_seed


def main(argv: list[str] | None = None) -> int:
    from picodaq.errors import PicodaqError

    ap = argparse.ArgumentParser(
        prog="python -m picodaq_hil.faults",
        description=faults_doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("proxy", help="relay a board's port to a faulty pty until Ctrl-C")
    p.add_argument("--upstream", required=True, help="the board's port")
    p.add_argument("--link", required=True, help="stable path (a symlink) for the host's port")
    p.add_argument("--capture", default=None, help="file for everything the board sent")
    r = sub.add_parser("replay", help="apply a seeded fault schedule to a capture of what a board sent")
    r.add_argument("capture")
    r.add_argument("--out", required=True)
    for q in (p, r):
        q.add_argument("--spec", default="", help="e.g. bitflip=1e-5,drop=1e-5,dup=1e-5,stall=1e-6")
        q.add_argument("--seed", type=int, default=None, help="default: a random seed, printed")
    a = ap.parse_args(argv)
    try:
        spec = FaultSpec.parse(a.spec)
        seed = fault_seed(a.seed)
        print(f"picodaq faulty link: spec {spec}, seed {seed}", file=sys.stderr, flush=True)
        if a.cmd == "replay":
            out, faults = apply_offline(Path(a.capture).read_bytes(), spec, seed)
            Path(a.out).write_bytes(out)
            for f in faults:
                print(f"{f.kind} at {f.offset} length {f.length} {f.detail:g}")
            return 0
        import signal

        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly, with the summary
        cap = a.capture or os.devnull
        proxy = FaultyLinkProxy(a.upstream, a.link, spec, seed, cap).start()
        print(proxy.port, flush=True)
        try:
            while proxy._thread is not None and proxy._thread.is_alive():
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            proxy.stop()
            print(f"{len(proxy.faults)} faults: {proxy.counters}", file=sys.stderr)
        return 0
    except (PicodaqError, OSError) as e:
        print(f"picodaq: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
