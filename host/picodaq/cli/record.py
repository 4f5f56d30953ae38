"""`picodaq record`: configure, stream and record to files (and/or LSL with --lsl)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import add_out, add_stream_config
from .lsl import LslOptions, add_lsl_args
from .run import StreamOptions, run_stream


def args_record(p: argparse.ArgumentParser) -> None:
    add_stream_config(p)
    add_out(p)
    add_lsl_args(p)


def do_record(args: argparse.Namespace) -> int:
    lsl = None if args.lsl is None else LslOptions(args.lsl, args.lsl_format)
    out = [Path(p) for p in args.out or []]
    return run_stream(StreamOptions.from_args(args, "record", out=out, lsl=lsl))
