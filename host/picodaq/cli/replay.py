"""`picodaq replay`: a .tlv capture decoded through the same pipeline a recording runs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..recording.outputs import check_outputs, open_outputs
from .args import SOURCES, add_gain, add_out, add_stats_json, channel_mask, mask_channels
from .console import eprint, stats_path, summary, write_stats

if TYPE_CHECKING:
    from ..recording.timeline import Layout


def args_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a .tlv capture")
    add_out(p)
    add_stats_json(p)
    p.add_argument(
        "--source",
        choices=sorted(SOURCES, key=SOURCES.__getitem__),
        help="the source, for physical units (default: as the capture's HELLO says)",
    )
    p.add_argument("--channels", type=channel_mask, help="channel numbers for labels (default 0..N-1)")
    add_gain(p)
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")


def do_replay(args: argparse.Namespace) -> int:
    from ..recording.outputs import Output
    from ..recording.pipeline import check_capture, probe_capture, replay

    src = Path(args.file)
    check_capture(src)
    paths = [Path(p) for p in args.out or []]
    check_outputs(paths, protect=[src], stats=stats_path(args.stats_json), overwrite=args.overwrite)
    probe_capture(src)  # empty, or not one frame: one line, exit 1, nothing made
    outputs = open_outputs(paths)
    t = time.monotonic()
    progress = None if args.quiet else ReplayProgress(src.stat().st_size)
    channels = mask_channels(args.channels) if args.channels else None
    try:
        stats, notes, layout = replay(
            src,
            outputs,
            source=SOURCES[args.source] if args.source else None,
            channels=channels,
            gain=args.gain,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.done()
    notes += replay_notes(src, channels, stats, layout)
    if not args.quiet:
        files = [str(p) for o in outputs if isinstance(o, Output) for p in o.written()]
        summary(stats, time.monotonic() - t, files, layout=layout, notes=notes, replayed=True)
    write_stats(args.stats_json, stats)
    return 0


class ReplayProgress:
    """How far a long replay is, on stderr: said once it has run a second, then every second (a line
    rewritten in place on a terminal, a new line every PLAIN_EVERY seconds otherwise)."""

    PLAIN_EVERY = 5.0

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.start = time.monotonic()
        self.next = self.start + 1.0
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + (1.0 if self.tty else self.PLAIN_EVERY)
        text = (
            f"replaying: {done / self.total:.0%} ({done / 1e6:,.0f} of {self.total / 1e6:,.0f} MB, "
            f"{now - self.start:.0f} s)"
        )
        if self.tty:
            try:
                sys.stderr.write(f"\r{text}\x1b[K")
                sys.stderr.flush()
            except BrokenPipeError:
                pass
        else:
            eprint(text)
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            eprint("\r\x1b[K", end="")


def replay_notes(
    src: Path, channels: tuple[int, ...] | None, stats: dict[str, Any], layout: Layout | None
) -> list[str]:
    """What the user should know about the capture they replayed, beyond the counters."""
    notes = []
    if channels and layout is not None and len(channels) != layout.n_channels:
        notes.append(
            f"--channels names {len(channels)} channels but the capture holds "
            f"{layout.n_channels}: labelled ch0..ch{layout.n_channels - 1} instead"
        )
    if layout is not None and layout.source is None:
        notes.append(
            f"{src}: the capture holds no HELLO (it starts mid-stream), so its source is unknown and "
            "values are counts; --source names it"
        )
    return notes
