"""A `.bdf` recording (BDF+, as outputs/bdf.py writes it; plain EDF/BDF too): the data records
memory-mapped and decoded in chunks, the annotations read from their TAL bytes.

What the file says, and how it is drawn:
- each signal's digital values become physical ones with the header's own limits
  (physical = (digital - dmin) * (pmax - pmin) / (dmax - dmin) + pmin), in its dimension;
- `gap: ...` annotations are the recording's gaps: picodaq fills them with zeros to keep BDF+
  continuous, so their span is shaded and left out of the envelope (a fill is not data);
- `marker N` annotations are markers; `no data: padding to a whole record` ends the data.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

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

CHUNK_BYTES = 32 << 20
_PADDING = "no data: padding to a whole record"
_MARKER = re.compile(r"marker (-?\d+)$")


class _Header:
    def __init__(self, path: Path, head: bytes, size: int) -> None:
        def field(a: int, b: int) -> str:
            return head[a:b].decode("ascii", "replace").strip()

        self.bdf = head[:8] == b"\xffBIOSEMI"
        if not self.bdf and head[:8] != b"0       ":
            raise PlotError(f"{path}: not a BDF or EDF file")
        try:
            self.header_bytes = int(field(184, 192))
            self.records = int(field(236, 244))
            self.record_s = float(field(244, 252))
            ns = int(field(252, 256))
        except ValueError:
            raise PlotError(f"{path}: a damaged BDF header") from None
        if len(head) < 256 * (ns + 1):
            raise PlotError(f"{path}: a damaged BDF header (cut short)")
        self.reserved = field(192, 236)

        def column(offset: int, width: int) -> list[str]:
            base = 256 + offset * ns
            return [
                head[base + i * width : base + (i + 1) * width].decode("ascii", "replace").strip() for i in range(ns)
            ]

        o = 0
        widths = (16, 80, 8, 8, 8, 8, 8, 80, 8)
        cols = []
        for w in widths:
            cols.append(column(o, w))
            o += w
        self.labels, _, self.dims, pmin, pmax, dmin, dmax, _, spr = cols
        try:
            self.pmin = np.array([float(x) for x in pmin])
            self.pmax = np.array([float(x) for x in pmax])
            self.dmin = np.array([float(x) for x in dmin])
            self.dmax = np.array([float(x) for x in dmax])
            self.spr = [int(x) for x in spr]
        except ValueError:
            raise PlotError(f"{path}: a damaged BDF header (signal limits)") from None
        self.width = 3 if self.bdf else 2
        self.record_bytes = sum(self.spr) * self.width
        if self.records < 0:  # still being written: count the records on disk
            self.records = (size - self.header_bytes) // max(1, self.record_bytes)
        self.annotation = [lab.endswith("Annotations") for lab in self.labels]
        self.data = [i for i, a in enumerate(self.annotation) if not a]
        self.offsets = np.cumsum([0] + self.spr)[:-1] * self.width


def _tals(raw: bytes) -> list[tuple[float, float, str]]:
    """(onset, duration or -1, text) of every annotation in TAL bytes (EDF+ section 2.2.2)."""
    out = []
    for tal in raw.split(b"\x00"):
        if not tal or tal[:1] not in b"+-":
            continue
        head, *texts = tal.split(b"\x14")
        onset, _, duration = head.partition(b"\x15")
        try:
            t = float(onset)
            d = float(duration) if duration else -1.0
        except ValueError:
            continue
        for text in texts:
            if text:
                out.append((t, d, text.decode("utf-8", "replace")))
    return out


def read_bdf(path: Path, window: Window, channels: ChannelPick, columns: int) -> Picture:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        try:
            ns = int(head[252:256].decode("ascii").strip()) if len(head) == 256 else -1
        except (UnicodeDecodeError, ValueError):
            ns = -1
        if ns < 0:
            raise PlotError(f"{path}: not a BDF or EDF file")
        head += f.read(256 * ns)
    h = _Header(path, head, size)
    if not h.data:
        raise PlotError(f"{path}: no signals in it, only annotations")
    spr = h.spr[h.data[0]]
    if any(h.spr[i] != spr for i in h.data):
        raise PlotError(f"{path}: signals at different rates; picodaq plots recordings whose channels share one rate")
    rate = spr / h.record_s
    rate = round(rate) if abs(rate - round(rate)) < 1e-9 else rate
    records = min(h.records, (size - h.header_bytes) // max(1, h.record_bytes))
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=h.header_bytes, shape=(records, h.record_bytes))

    notes_raw: list[tuple[float, float, str]] = []
    for i, is_note in enumerate(h.annotation):
        if is_note:
            a = h.offsets[i]
            notes_raw += _tals(mm[:, a : a + h.spr[i] * h.width].tobytes())
    total = records * spr
    gaps: list[GapSpan] = []
    markers: list[MarkSpot] = []
    holes: list[tuple[int, int]] = []  # grid spans without data (gaps filled with zeros, the padding)
    for onset, duration, text in notes_raw:
        if text == _PADDING:
            total = min(total, round(onset * rate))
        elif text.startswith("gap:"):
            d = max(duration, 0.0)
            gaps.append(GapSpan(onset, onset + d, text))
            if d:
                holes.append((round(onset * rate), round((onset + d) * rate)))
        elif m := _MARKER.match(text):
            markers.append(MarkSpot(onset, int(m[1])))
    duration_s = total / rate
    window.check_start(path, duration_s)

    labels = [h.labels[i] for i in h.data]
    pick = channels.indices(labels, path)
    sig = [h.data[i] for i in pick]
    start, end = window.positions(rate)
    end = min(end if end is not None else total, total)
    env = Envelope(len(sig), start=start, end=end, columns=columns)
    # data runs: the window minus the holes
    runs, at = [], start
    for a, b in sorted(holes):
        if a > at:
            runs.append((at, min(a, end)))
        at = max(at, b)
    if at < end:
        runs.append((at, end))
    step = max(1, CHUNK_BYTES // h.record_bytes)  # records per chunk
    gather, shift = _gather(h, sig, spr)
    for a, b in runs:
        for r0 in range(a // spr, (b - 1) // spr + 1, step):
            r1 = min(records, r0 + step, (b - 1) // spr + 1)
            vals = _decode(mm[r0:r1], gather, shift, len(sig))  # instants x channels
            p0 = r0 * spr
            lo, hi = max(a, p0), min(b, r1 * spr)
            env.add(lo, vals[lo - p0 : hi - p0])
    pos, lo_d, hi_d = env.columns()
    idx = np.array(sig)
    gain = (h.pmax[idx] - h.pmin[idx]) / (h.dmax[idx] - h.dmin[idx])
    offset = h.pmin[idx] - h.dmin[idx] * gain
    lo_p, hi_p = to_physical(lo_d, hi_d, gain, offset)
    dims = {h.dims[i] for i in sig}
    t_from, t_to = start / rate, end / rate
    return Picture(
        path=path,
        kind="bdf",
        rate=rate,
        labels=[labels[i] for i in pick],
        unit=(dims.pop() or COUNTS_UNIT) if len(dims) == 1 else "mixed units",
        pos=pos,
        lo=lo_p,
        hi=hi_p,
        bucket=env.bucket,
        duration_s=duration_s,
        t_from=t_from,
        t_to=t_to,
        gaps=window_gaps(gaps, t_from, t_to),
        markers=window_markers(markers, t_from, t_to),
        about=f"{len(h.data)} channels at {rate:g} Hz, {'BDF' if h.bdf else 'EDF'}"
        + (f" ({h.reserved})" if h.reserved else ""),
    )


def _gather(h: _Header, sig: list[int], spr: int) -> tuple[np.ndarray, int]:
    """Byte positions within a record that make little-endian int32s, sample by sample and channel by
    channel, out of the chosen signals' 24-bit (or 16-bit) samples; and the shift that sign-extends
    them. Each value's bytes land in the top of its int32 (the byte below them is a spare copy)."""
    base = h.offsets[np.array(sig)][None, :] + np.arange(spr)[:, None] * h.width  # (sample, channel)
    if h.width == 3:
        parts, shift = (base, base, base + 1, base + 2), 8
    else:
        parts, shift = (base, base, base, base + 1), 16
    return np.stack(parts, axis=-1).reshape(-1), shift


def _decode(raw: np.ndarray, gather: np.ndarray, shift: int, nch: int) -> np.ndarray:
    """Digital values from records raw (records x record bytes), instants x channels: one gather of
    the bytes into place, one arithmetic shift (numpy's strided 3-byte copies were 5x slower)."""
    wide = np.ascontiguousarray(raw).take(gather, axis=1)
    values = wide.view("<i4")
    values >>= shift
    return values.reshape(-1, nch)
