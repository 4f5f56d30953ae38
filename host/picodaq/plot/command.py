"""`picodaq plot FILE`: the command's arguments and handler (the CLI's table names them).

    picodaq plot run.tlv                          -> run.tlv.png, every channel, the whole recording
    picodaq plot run.bdf --channels 0-3 --from 10 --to 12.5 --out zoom.svg

Errors are PlotErrors (UsageErrors): the CLI prints them as one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..recording.outputs.base import check_writable
from .draw import FORMATS, caption, out_format, save
from .load import COLUMNS, KINDS, load


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return v


def args_plot(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help=f"a recording: {KINDS}")
    p.add_argument(
        "--channels",
        help="channels to draw, by number or range as the recording labels them (0,2,4-7), or by label (default: all)",
    )
    p.add_argument("--from", dest="t_from", type=_seconds, metavar="S", help="start, in seconds (default: 0)")
    p.add_argument("--to", dest="t_to", type=_seconds, metavar="S", help="end, in seconds (default: the end)")
    p.add_argument(
        "--out",
        metavar="FILE",
        help=f"the picture, by suffix: {', '.join('.' + f for f in FORMATS)} (default: FILE.png beside the recording)",
    )
    p.add_argument("--width", type=float, default=12.0, help="figure width in inches (default 12)")
    p.add_argument("--dpi", type=_count, default=100, help="PNG pixels per inch (default 100)")
    p.add_argument(
        "--columns",
        type=_count,
        default=COLUMNS,
        help=f"min/max columns across the window (default {COLUMNS}; more than the window's instants: every sample)",
    )
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")


def do_plot(args: argparse.Namespace) -> int:
    src = Path(args.file)
    out = Path(args.out) if args.out else src.with_name(src.name + ".png")
    out_format(out)
    check_writable(out)  # before a long read, not after it
    t = time.monotonic()
    pic = load(src, args.channels, args.t_from, args.t_to, args.columns)
    save(pic, out, width=args.width, dpi=args.dpi)
    if not args.quiet:
        lines = [
            f"plotted  {src}: {pic.about}",
            f"         {caption(pic)}; {time.monotonic() - t:.1f} s",
            *(f"note     {n}" for n in pic.notes),
            f"wrote    {out}",
        ]
        try:
            print("\n".join(lines), file=sys.stderr, flush=True)
        except BrokenPipeError:
            pass
    return 0
