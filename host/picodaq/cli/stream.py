"""`picodaq stream`: `record` with an LSL outlet as its only output (no files)."""

from __future__ import annotations

import argparse

from .args import add_stream_config
from .lsl import LslOptions, add_format_arg
from .run import StreamOptions, run_stream


def args_stream(p: argparse.ArgumentParser) -> None:
    add_stream_config(p, files=False)
    p.add_argument("--name", help="the LSL stream name (default picodaq-<board id>); markers go to NAME-markers")
    add_format_arg(p)


def do_stream(args: argparse.Namespace) -> int:
    lsl = LslOptions(args.name or "", args.lsl_format)
    return run_stream(StreamOptions.from_args(args, "stream", lsl=lsl))
