"""LSL for `picodaq stream` and `picodaq record --lsl`: a board's samples and markers published
on Lab Streaming Layer.

run_stream (cli.run) calls the two hooks here: `check_lsl(...)` before it touches
the board and `open_lsl(...)` once each Recording exists.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PicodaqError
from ..protocol.messages import Hello
from ..recording.lsl import VALUE_FORMATS, LslOutlet, StreamSpec, check_name, default_name, load_pylsl

if TYPE_CHECKING:
    from ..recording.recorder import Recording

FORMAT_HELP = (
    "LSL values: int32 counts or float32 in the source's unit (default auto: counts for the "
    "synthetic sources, microvolts for the ADS1299, volts for the ADC)"
)


@dataclass(frozen=True)
class LslOptions:
    name: str = ""  # "": picodaq-<board id>
    value_format: str = "auto"  # one of VALUE_FORMATS


def add_format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lsl-format", choices=VALUE_FORMATS, default="auto", help=FORMAT_HELP)


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
    add_format_arg(p)


def check_lsl(lsl: LslOptions | None) -> None:
    """Refuse a bad stream name or a missing liblsl before anything is opened."""
    if lsl is None:
        return
    if lsl.name:
        check_name(lsl.name)
    load_pylsl()


def open_lsl(
    lsl: LslOptions,
    rec: Recording,
    hello: Hello,
    stack: ExitStack,
    *,
    gain: int,
    quiet: bool,
    suffix: str | None = None,
) -> LslOutlet:
    """Open the outlets, hang them on the recording, close them when stack unwinds.
    With several boards each gets its own stream: the default name already holds the board id,
    a given NAME becomes NAME-<suffix> (NAME-board1, ...)."""
    name = f"{lsl.name}-{suffix}" if lsl.name and suffix else lsl.name
    cfg = rec.config
    spec = StreamSpec.build(
        name or default_name(hello),
        hello,
        rate=cfg.rate,
        channels=cfg.channels,
        source=cfg.source,
        fmt=cfg.fmt,
        gain=gain,
        value_format=lsl.value_format,
    )
    try:
        outlet = LslOutlet(spec)
    except (RuntimeError, OSError, ValueError) as e:  # liblsl's own failures (no network stack, say)
        raise PicodaqError(f"could not open the LSL outlet '{spec.name}': {e}") from None
    stack.callback(_close, outlet, quiet)
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
