"""A `.npy` recording with its `<stem>.events.csv`: the array memory-mapped, never read whole.

The .npy holds received instants only; its events list says where each row sits on the grid
(outputs/__init__.py): every gap's row, start and length, so row r lies at grid position r plus
the spans of the gaps before it. The envelope reads each run of rows between gaps straight from the
memory map in chunks, so a 1 GB array costs a pass over the page cache, not a copy.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from .. import contracts as C
from ..protocol.units import scale_for
from ..recording.outputs.events import events_path
from ..recording.timeline import Gap
from .envelope import Envelope
from .model import (
    COUNTS_UNIT,
    ChannelPick,
    GapSpan,
    MarkSpot,
    Picture,
    PlotError,
    Window,
    to_physical,
    window_gaps,
    window_markers,
)

CHUNK_BYTES = 64 << 20
_SEGMENT = re.compile(r"(\d+) channels at (\d+) Hz, ([\w-]+), (\w+)")
_SOURCES = C.SOURCE_CODES
_FORMATS = C.FORMAT_CODES


def _events(path: Path) -> list[dict[str, str]]:
    ev = events_path(path)
    if not ev.is_file():
        raise PlotError(
            f"{path}: its events list {ev.name} is missing (the rate, gaps and markers of a .npy recording are there)"
        )
    try:
        with open(ev, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise PlotError(f"{ev}: cannot read: {e}") from None
    if not rows or not {"kind", "row", "t_s", "detail"} <= set(rows[0]):
        raise PlotError(f"{ev}: not a picodaq events list")
    return rows


def _gap_of(e: dict[str, str], rate: int) -> tuple[int, int, GapSpan]:
    """(row, grid instants it spans, its span in seconds) of a `gap` row."""
    reason, _, timing = e["detail"].partition("; timing: ")
    start = round(float(e["t_s"]) * rate)
    span = round(float(e["duration_s"]) * rate) if e["duration_s"] else 0
    label = Gap(start, int(e["row"]), span, reason, timing, 0).describe()
    return int(e["row"]), span, GapSpan(start / rate, (start + span) / rate, label)


def read_npy(path: Path, window: Window, channels: ChannelPick, columns: int) -> Picture:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise PlotError(f"{path}: not a readable .npy array ({e})") from None
    if data.ndim != 2 or data.dtype.kind not in "iu":
        raise PlotError(
            f"{path}: a {data.dtype} array of shape {data.shape}, not a picodaq recording (instants x channels)"
        )
    rows = _events(path)
    seg = next((_SEGMENT.match(e["detail"]) for e in rows if e["kind"] == "segment"), None)
    if seg is None:
        raise PlotError(f"{events_path(path)}: names no stream (no segment row with its rate)")
    nch, rate, source, fmt = int(seg[1]), int(seg[2]), seg[3], seg[4]
    if nch != data.shape[1]:
        raise PlotError(f"{path}: {data.shape[1]} columns, but its events list says {nch} channels")
    labels = [f"ch{c}" for c in range(nch)]
    pick = channels.indices(labels, path)

    # runs of rows between gaps, each at its grid position
    gaps = sorted((_gap_of(e, rate) for e in rows if e["kind"] == "gap"), key=lambda g: g[0])
    runs: list[tuple[int, int, int]] = []  # (first row, rows, grid position)
    row = shift = 0
    for at, span, _ in gaps:
        if at > row:
            runs.append((row, at - row, row + shift))
        row = max(row, at)
        shift += span
    n = len(data)
    if n > row:
        runs.append((row, n - row, row + shift))
    duration = (n + shift) / rate
    window.check_start(path, duration)
    start, end = window.positions(rate)
    end = min(end if end is not None else n + shift, n + shift)
    if end <= start:
        raise PlotError(f"{path}: nothing recorded between {start / rate:g} s and {end / rate:g} s")
    env = Envelope(len(pick), start=start, end=end, columns=columns)
    all_channels = pick == list(range(nch))
    step = max(1, CHUNK_BYTES // max(1, data.itemsize * nch))
    for r0, k, p0 in runs:
        lo, hi = max(start, p0), min(end, p0 + k)  # the run's part inside the window, on the grid
        for p in range(lo, hi, step):
            q = min(hi, p + step)
            chunk = data[r0 + p - p0 : r0 + q - p0]
            env.add(p, chunk if all_channels else chunk[:, pick])
    pos, lo_c, hi_c = env.columns()
    scale = scale_for(_SOURCES.get(source), _FORMATS.get(fmt, C.FMT_INT32))
    lo_p, hi_p = to_physical(lo_c, hi_c, scale.per_count, 0.0)
    t_from, t_to = start / rate, end / rate
    markers = [MarkSpot(float(e["t_s"]), int(e["code"])) for e in rows if e["kind"] == "marker"]
    notes = []
    if source == "ads1299":
        notes.append("microvolts at the ADS1299's default gain (24): the .npy does not record the gain")
    return Picture(
        path=path,
        kind="npy",
        rate=rate,
        labels=[labels[i] for i in pick],
        unit=scale.dimension or COUNTS_UNIT,
        pos=pos,
        lo=lo_p,
        hi=hi_p,
        bucket=env.bucket,
        duration_s=duration,
        t_from=t_from,
        t_to=t_to,
        gaps=window_gaps([g for _, _, g in gaps], t_from, t_to),
        markers=window_markers(markers, t_from, t_to),
        about=f"{nch} channels at {rate} Hz, {source}, {fmt}",
        notes=notes,
    )
