"""A picodaq `.csv` (`t_s,sample_index,marker,ch...`, counts), read in chunks of lines.

The file says everything needed, row by row: t_s is the grid time (gaps included), so the rate is
the rows of an unbroken run over the time they span, and a gap is a row whose grid position jumps
or whose device index does not follow the previous one. A jump the index shares is samples lost;
any other break is a new stream (the CSV cannot tell a board reset from a restart). Markers are
the codes in the marker column. Values are counts: a CSV records no source, so no unit either.
"""

from __future__ import annotations

import io
from itertools import islice
from pathlib import Path

import numpy as np

from ..recording.timeline import DEVICE_CLOCK, EXACT, LOST, RESTART, UNKNOWN, Gap
from .envelope import Envelope
from .model import COUNTS_UNIT, ChannelPick, GapSpan, MarkSpot, Picture, PlotError, Window, window_gaps, window_markers

HEADER = "t_s,sample_index,marker,"
CHUNK_LINES = 100_000
_U32 = 1 << 32


def _rate(t: np.ndarray, idx: np.ndarray) -> int:
    """Instants per second, from the longest unbroken run of rows (indices one apart)."""
    brk = np.flatnonzero((np.diff(idx) % _U32) != 1) + 1
    edges = np.concatenate(([0], brk, [len(idx)]))
    k = int(np.argmax(np.diff(edges)))
    a, b = edges[k], edges[k + 1] - 1
    if b <= a or t[b] <= t[a]:
        raise PlotError("too few rows in a row to tell the rate")
    return max(1, round(float((b - a) / (t[b] - t[a]))))


def read_csv(path: Path, window: Window, channels: ChannelPick, columns: int) -> Picture:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        header = f.readline().rstrip("\r\n")
        if not header.startswith(HEADER):
            raise PlotError(f"{path}: not a picodaq CSV (its first line is not t_s,sample_index,marker,ch...)")
        labels = header.split(",")[3:]
        pick = channels.indices(labels, path)
        usecols = [0, 1] + [3 + i for i in pick]
        rate = 0
        env: Envelope | None = None
        start = 0
        end: int | None = None
        gaps: list[GapSpan] = []
        markers: list[MarkSpot] = []
        last_pos: int | None = None
        last_idx = 0
        row = 0
        while True:
            lines = list(islice(f, CHUNK_LINES))
            if not lines:
                break
            try:
                table = np.loadtxt(io.StringIO("".join(lines)), delimiter=",", usecols=usecols, ndmin=2)
            except ValueError as e:
                raise PlotError(f"{path}: a damaged row after row {row}: {e}") from None
            t, idx = table[:, 0], table[:, 1].astype(np.int64)
            if not rate:
                try:
                    rate = _rate(t, idx)
                except PlotError as e:
                    raise PlotError(f"{path}: {e}") from None
                start, end = window.positions(rate)
                env = Envelope(len(pick), start=start, end=end, columns=columns)
            pos = np.rint(t * rate).astype(np.int64)
            prev_pos = np.concatenate(([last_pos if last_pos is not None else pos[0] - 1], pos[:-1]))
            prev_idx = np.concatenate(([last_idx if last_pos is not None else idx[0] - 1], idx[:-1]))
            dpos, didx = pos - prev_pos, (idx - prev_idx) % _U32
            for i in np.flatnonzero((dpos != 1) | (didx != 1)):
                span = int(dpos[i]) - 1
                if span > 0 and didx[i] == dpos[i]:
                    g = Gap(int(prev_pos[i]) + 1, row + int(i), span, LOST, EXACT, int(idx[i]))
                else:
                    span = max(span, 0)
                    g = Gap(int(prev_pos[i]) + 1, row + int(i), span, RESTART, DEVICE_CLOCK if span else UNKNOWN, 0)
                gaps.append(GapSpan(g.pos / rate, (g.pos + g.span) / rate, g.describe()))
            for j, line in enumerate(lines):
                cell = line.split(",", 3)[2]
                if cell:
                    for code in cell.split(";"):
                        markers.append(MarkSpot(float(pos[j]) / rate, int(code)))
            assert env is not None
            # runs of consecutive grid positions go to the envelope in one piece each
            cuts = np.concatenate(([0], np.flatnonzero(np.diff(pos) != 1) + 1, [len(pos)]))
            vals = table[:, 2:]
            for a, b in zip(cuts[:-1], cuts[1:]):
                env.add(int(pos[a]), vals[a:b])
            last_pos, last_idx = int(pos[-1]), int(idx[-1])
            row += len(lines)
            if end is not None and last_pos >= end:
                break
    if env is None or last_pos is None:
        raise PlotError(f"{path}: a CSV without rows: nothing to draw")
    duration = (last_pos + 1) / rate
    window.check_start(path, duration)
    pos_c, lo, hi = env.columns()
    t_from = start / rate
    t_to = end / rate if end is not None else duration
    return Picture(
        path=path,
        kind="csv",
        rate=rate,
        labels=[labels[i] for i in pick],
        unit=COUNTS_UNIT,
        pos=pos_c,
        lo=lo,
        hi=hi,
        bucket=env.bucket,
        duration_s=duration,
        t_from=t_from,
        t_to=t_to,
        gaps=window_gaps(gaps, t_from, t_to),
        markers=window_markers(markers, t_from, t_to),
        about=f"{len(labels)} channels at {rate} Hz (from its t_s column)",
        notes=["a .csv holds counts and no source: values are drawn as counts"],
    )
