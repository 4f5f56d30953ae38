"""`picodaq stream` and `picodaq record --lsl`: a board's samples and markers published on LSL.

`stream` is `record` with an LSL outlet as its only output: the same board
handling (connect, configure, ride out resets, --reconnect, the live view,
Ctrl-C) runs through cli.do_record, which calls the two hooks here:
`check_lsl(args)` before it touches the board and `open_lsl(...)` once the
Recording exists.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING

from ..errors import PicodaqError
from ..protocol.messages import Hello
from ..recording.lsl import VALUE_FORMATS, LslOutlet, StreamSpec, check_name, default_name, load_pylsl

if TYPE_CHECKING:
    from ..recording.recorder import Recording

_FORMAT_HELP = (
    "LSL values: int32 counts or float32 in the source's unit (default auto: counts for the "
    "synthetic sources, microvolts for the ADS1299, volts for the ADC)"
)


def add_lsl_args(p: argparse.ArgumentParser) -> None:
    """record's --lsl [NAME] and --lsl-format."""
    p.add_argument(
        "--lsl",
        nargs="?",
        const="",
        metavar="NAME",
        help="also publish the stream on LSL as NAME (default picodaq-<board id>), with a "
        "NAME-markers stream for MARKERs; --out is then optional",
    )
    p.add_argument("--lsl-format", choices=VALUE_FORMATS, default="auto", help=_FORMAT_HELP)


def check_lsl(args: argparse.Namespace) -> None:
    """Refuse a bad stream name or a missing liblsl before anything is opened."""
    name = getattr(args, "lsl", None)
    if name is None:
        return
    if name:
        check_name(name)
    load_pylsl()


def open_lsl(
    args: argparse.Namespace, rec: Recording, hello: Hello, stack: ExitStack, suffix: str | None = None
) -> LslOutlet | None:
    """With --lsl: open the outlets, hang them on the recording, close them when stack unwinds.
    With several boards each gets its own stream: the default name already holds the board id,
    a given NAME becomes NAME-<suffix> (NAME-board1, ...)."""
    name = getattr(args, "lsl", None)
    if name is None:
        return None
    if name and suffix:
        name = f"{name}-{suffix}"
    cfg = rec.config
    spec = StreamSpec.build(
        name or default_name(hello),
        hello,
        rate=cfg.rate,
        channels=cfg.channels,
        source=cfg.source,
        fmt=cfg.fmt,
        gain=args.gain,
        value_format=args.lsl_format,
    )
    try:
        outlet = LslOutlet(spec)
    except (RuntimeError, OSError, ValueError) as e:  # liblsl's own failures (no network stack, say)
        raise PicodaqError(f"could not open the LSL outlet '{spec.name}': {e}") from None
    stack.callback(_close, outlet, bool(args.quiet))
    outlet.attach(rec.receiver, rec.pipeline)
    return outlet


def describe(outlet: LslOutlet) -> str:
    s = outlet.spec
    return f"LSL stream '{s.name}' ({s.channel_format}, {s.unit}; markers on '{s.marker_name}')"


def _close(outlet: LslOutlet, quiet: bool) -> None:
    outlet.close()
    st = outlet.stats
    if st.refused or st.push_errors or not quiet:
        print(
            f"lsl      {st.samples:,} instants in {st.blocks:,} blocks and {st.markers} markers published to "
            f"'{outlet.spec.name}'; {st.refused} refused (queue full), {st.push_errors} push errors",
            file=sys.stderr,
            flush=True,
        )


# -- picodaq stream --------------------------------------------------------------


def args_stream(p: argparse.ArgumentParser) -> None:
    from .main import args_stream_config

    args_stream_config(p)
    p.add_argument("--name", help="the LSL stream name (default picodaq-<board id>); markers go to NAME-markers")
    p.add_argument("--lsl-format", choices=VALUE_FORMATS, default="auto", help=_FORMAT_HELP)


def do_stream(args: argparse.Namespace) -> int:
    from .main import do_record

    args.out = None
    args.lsl = "" if args.name is None else args.name
    return do_record(args)
