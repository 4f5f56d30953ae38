"""Argument types and the options several commands share.

Each type turns a bad value into one clear line (argparse prints it with the
command's name and exits with status 2)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .. import contracts as C
from ..protocol.units import ADS1299_DEFAULT_GAIN, ADS1299_GAINS
from ..recording.outputs import SUFFIXES
from ..transport.cpu_latency import MAX_US
from ..view.attach import add_view_arg
from .console import eprint

SOURCES = C.SOURCE_CODES
FORMATS = C.FORMAT_CODES
PORT_HELP = "serial port or pyserial URL (default: the one attached board, else an emulator)"


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        eprint(f"{self.prog}: {message}")
        raise SystemExit(2)


# -- types ------------------------------------------------------------------------


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return v


def positive_int(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def microseconds(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of microseconds: {text!r}") from None
    if not 0 <= v <= MAX_US:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_US:,} microseconds, got {text}")
    return v


def channel_mask(text: str) -> int:
    """`8` means channels 0-7; `0,2,5` or `0-3,6` name channels."""
    try:
        if "," not in text and "-" not in text:
            n = int(text)
            if not 1 <= n <= C.MAX_CHANNELS:
                raise argparse.ArgumentTypeError(f"channel count must be 1..{C.MAX_CHANNELS}, got {n}")
            return (1 << n) - 1
        mask = 0
        for part in text.split(","):
            lo, dash, hi = part.partition("-")
            a, b = int(lo), int(hi) if dash else int(lo)  # "0-" has no end: int("") refuses it
            if not (0 <= a < C.MAX_CHANNELS and 0 <= b < C.MAX_CHANNELS):
                raise argparse.ArgumentTypeError(f"channels must be within 0..{C.MAX_CHANNELS - 1}: {part!r}")
            if a > b:
                raise argparse.ArgumentTypeError(f"a channel range goes from low to high: {part!r} (write {b}-{a})")
            for c in range(a, b + 1):
                if mask >> c & 1:  # the board sends each channel once: a repeat is a typo
                    raise argparse.ArgumentTypeError(f"channel {c} is named twice in {text!r}")
                mask |= 1 << c
        return mask
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a channel count or list: {text!r}") from None


def mask_channels(mask: int) -> tuple[int, ...]:
    return tuple(c for c in range(C.MAX_CHANNELS) if mask >> c & 1)


# -- options ----------------------------------------------------------------------


def add_port(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", help=PORT_HELP)


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_gain(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gain",
        type=int,
        choices=ADS1299_GAINS,
        default=ADS1299_DEFAULT_GAIN,
        help=f"ADS1299 PGA gain, for the microvolt scale (default {ADS1299_DEFAULT_GAIN})",
    )


def add_stats_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stats-json", metavar="PATH", help="write the counters as JSON to PATH, or - for stdout")


def add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", action="append", metavar="FILE", help="output file by suffix: " + ", ".join(SUFFIXES) + " (repeatable)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace --out files that exist (else they are refused, untouched)"
    )


def add_stream_config(p: argparse.ArgumentParser, files: bool = True) -> None:
    """What record and stream share: the board, the stream's configuration, how to run.
    files: the command records into files (record); stream only publishes on LSL."""
    several = (
        "record several boards at once, each into its own files (run.npy -> run.board1.npy, "
        "run.board2.npy, ... in --port order)"
        if files
        else "stream several boards at once, each on its own LSL stream (NAME-board1, ... in --port order)"
    )
    p.add_argument("--port", action="append", help=f"{PORT_HELP}; repeat to {several}")
    p.add_argument(
        "--seconds",
        type=positive_float,
        help=f"how long to {'record' if files else 'stream'}: exactly SECONDS x rate instants (default: until Ctrl-C)",
    )
    p.add_argument("--rate", type=positive_int, default=1000, help="sample instants per second (default 1000)")
    p.add_argument("--channels", type=channel_mask, default=1, help="channel count (8) or list (0,2,4-7)")
    p.add_argument("--source", choices=sorted(SOURCES, key=SOURCES.__getitem__), default="ramp")
    p.add_argument(
        "--fmt",
        choices=sorted(FORMATS, key=FORMATS.__getitem__),
        help="sample format (default: int24 for ads1299, as the chip sends it; int16 otherwise)",
    )
    add_gain(p)
    p.add_argument("--samples-per-frame", type=positive_int, help="instants per SAMPLES frame (default: ~20 ms)")
    add_stats_json(p)
    p.add_argument(
        "--reconnect",
        action="store_true",
        help="when the board is unplugged or dies, wait for its port to return and resume "
        + ("into the same files (the gap is annotated)" if files else "the same LSL stream"),
    )
    p.add_argument(
        "--mark-on-key",
        action="store_true",
        help="a key press sends MARK: 0-9 with that code, m/space with code 1; q stops",
    )
    p.add_argument(
        "--cpu-latency",
        type=microseconds,
        metavar="US",
        help="while streaming, keep the CPUs out of idle states slower than US microseconds to wake "
        "from (Linux PM QoS, /dev/cpu_dma_latency: root or a udev rule): on an idle machine frames reach "
        + ("an --lsl outlet" if files else "LSL")
        + " sooner, for more power (0: idle CPUs poll)",
    )
    p.add_argument("--quiet", action="store_true", help="no live view and no summary")
    add_view_arg(p)
