"""What the commands write for people: lines on stderr, the end-of-recording summary, the
--stats-json counters."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..protocol.messages import Status
    from ..recording.timeline import Layout

# --stats-json keys that only a live recording has (a replay of its capture has all the others)
HOST_ONLY_STATS = ("seconds", "reconnects", "board_resets", "device_samples_dropped", "pool", "failed_outputs")


def comparable_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """The counters a replay of a recording's .tlv reproduces (host-side ones left out)."""
    return {k: v for k, v in stats.items() if k not in HOST_ONLY_STATS}


def eprint(*args: object, sep: str = " ", end: str = "\n") -> None:
    """A line on stderr; if nobody reads stderr any more (`2>&1 | head`), the work goes on without it."""
    try:
        print(*args, sep=sep, end=end, file=sys.stderr, flush=True)
    except BrokenPipeError:
        pass


def channels_text(n: int) -> str:
    """`1 channel`, `8 channels`."""
    return f"{n} channel{'s' * (n != 1)}"


def stats_path(target: str | None) -> Path | None:
    """--stats-json as a file to check (None for none, or - for stdout)."""
    return Path(target) if target and target != "-" else None


def write_stats(target: str | None, stats: dict[str, Any]) -> None:
    """--stats-json: the counters to PATH, or to stdout for -."""
    if not target:
        return
    text = json.dumps(stats, indent=2, sort_keys=True)
    if target == "-":
        print(text, flush=True)
    else:
        try:
            Path(target).write_text(text + "\n")
        except OSError as e:
            raise UsageError(f"{target}: cannot write the stats: {e.strerror or e}") from None


def summary(
    stats: dict[str, Any],
    seconds: float,
    files: Sequence[str],
    *,
    layout: Layout | None = None,
    status: Status | None = None,
    notes: Sequence[str] = (),
    indent: str = "",
    replayed: bool = False,
) -> None:
    """What was received, how the link did, what was written: a few lines on stderr, each
    indented by indent (one board among several). seconds: how long the recording ran, or,
    replayed, how long the replay took (said apart from the recording's duration)."""

    def line(text: str) -> None:
        eprint(indent, text, sep="")

    per_ch = stats["samples"]
    what = (
        f"{channels_text(layout.n_channels)} at {layout.rate} Hz ({layout.source_name}, {layout.fmt_name})"
        if layout
        else "no samples"
    )
    duration = stats.get("duration_s", 0)
    if replayed:
        line(f"replayed {what}: {per_ch:,} instants, {duration:.3f} s of recording (replayed in {seconds:.2f} s)")
    else:
        line(f"received {what}: {per_ch:,} instants in {seconds:.2f} s, {duration:.3f} s of recording")
    line(
        f"link     {stats['frames_ok']:,} frames; {stats['crc_errors']} CRC errors, "
        f"{stats['header_errors']} header errors, {stats['decode_errors']} decode errors, "
        f"{stats['skipped_bytes']} bytes skipped, {stats['seq_lost']} frames lost"
        + (f", {stats['duplicates']} duplicate frames dropped" if stats.get("duplicates") else "")
        + (f", {stats['seq_resets']} seq resets (the sender went back)" if stats.get("seq_resets") else "")
    )
    line(
        f"gaps     {stats['samples_lost']:,} samples lost, {stats.get('gaps', 0)} gaps "
        f"({stats.get('stream_restarts', 0)} stream restarts, {stats.get('board_restarts', 0)} board restarts)"
        + (f", {stats['reconnects']} reconnects" if "reconnects" in stats else "")
    )
    if status is not None:
        line(
            f"device   {stats.get('device_samples_dropped', status.samples_dropped):,} instants dropped on "
            f"the board; ring high water {status.ring_high_water}/{status.ring_capacity}"
        )
    line(f"markers  {stats.get('markers', 0)}")
    for n in notes:
        line(f"warning  {n}")
    for f in files:
        line(f"wrote    {f}")
