"""BDF+ output, written with pyedflib.

What lands in the file:

- One signal per channel, labelled by the board's channel number (`ch0`,
  `ch5`, ...), at the recording's rate, in the source's physical unit
  (units.py): digital values are the counts as received, physical minimum and
  maximum follow from the scale.
- Time comes from the device: instants sit on the grid the Timeline computes
  (sample index and device clock), not on host arrival times. The header's
  start time is the host's wall clock at the first instant (live) or, for a
  replay, the capture's modification time minus the recording's length.
- BDF+ as pyedflib writes it is continuous (BDF+C), so a gap is filled with
  zeros over its measured span *and* annotated (`gap: 120 samples lost`,
  `gap: stream restarted`, `gap: board restarted, duration unknown`, ...);
  nothing is glued silently. Markers are annotated `marker <code>`.
- Data records (plan_records): a recording of whole seconds has 1 s records and no
  padding; otherwise a record length that divides the recording is taken if
  edflib can write it, and only when none can is the last record padded with
  zeros, as little as possible, and the padding annotated ("no data: padding to
  a whole record"). Readers (MNE, pyedflib, edfio) read those zeros as samples.

pyedflib stores annotations in a fixed number of slots per data record, chosen
before the first record is written, and silently drops any that do not fit.
So the samples are spooled to a hidden file beside the output while
recording, and the BDF is written when the recording ends, with exactly as
many annotation slots as the annotations need. Ctrl-C, an unplugged board and
a full stop all end in `close()`, which writes a complete, valid file; if the
process is killed outright, the .tlv capture (`picodaq replay rec.tlv --out
rec.bdf`) rebuilds it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from ...core.blocks import SamplesBlock
from ..timeline import UNKNOWN, Gap, Layout, MarkerEvent
from .base import Output, OutputError, flush_file, open_file, write

BDF_DIGITAL_MIN = -(1 << 23)
BDF_DIGITAL_MAX = (1 << 23) - 1
_MAX_RECORD_BYTES = 4 << 20
_MAX_ANNOTATION_SIGNALS = 64  # edflib's limit; each holds one annotation per record
_ANNOTATION_BYTES = 114  # what one annotation signal adds to every data record (edflib, BDF+)
# records shorter than this much sample data are avoided where a longer one does as well: each
# record carries its annotation signals, so short ones cost more in annotations than they hold
_RECORD_DATA_MIN = 10 * _ANNOTATION_BYTES
_TEXT_MAX = 40  # edflib cuts annotation texts at 40 bytes
_DATA, _FILL = 0, 1
_SCAN = 100_000  # record lengths tried, at most, when none divides the recording


def _divisors(n: int) -> list[int]:
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
        d += 1
    return small + large[::-1]


def _duration_text(spr: int, rate: int) -> str:
    """A record's duration as the header holds it: whole 10 us, no trailing zeros."""
    units = spr * 100_000 // rate
    whole, frac = divmod(units, 100_000)
    return f"{whole}.{frac:05d}".rstrip("0").rstrip(".")


def plan_records(total: int, rate: int, n_channels: int, annotations: int) -> tuple[float, int, int, int]:
    """(record seconds, samples per record, records, annotation signals) for `total` instants.

    edflib writes a record duration in whole 10 us between 1 ms and 60 s, so a record holds a
    multiple of q = rate / gcd(rate, 100000) instants. Chosen, in this order: annotations that
    fit (at most 64 per record); the least padding (none when a record length divides the
    recording: a recording of whole seconds gets 1 s records); records that tile whole seconds;
    the length nearest 1 s. Records holding less than ~1 kB of samples are taken only when no
    longer one does as well (a 1 s record, or one record for it all, always counts as long
    enough)."""
    q = rate // math.gcd(rate, 100_000)
    lo = q * max(1, -(-rate // (1000 * q)))  # 1 ms at least
    hi = min(60 * rate, max(lo, _MAX_RECORD_BYTES // (3 * n_channels))) // q * q
    floor = -(-_RECORD_DATA_MIN // (3 * n_channels))
    floor = q * max(1, -(-floor // q))
    need = annotations

    def key(spr: int) -> tuple[bool, int, bool, float]:
        records = max(1, -(-total // spr))
        return (
            -(-need // records) > _MAX_ANNOTATION_SIGNALS,
            records * spr - total,
            not (rate % spr == 0 or spr % rate == 0),
            abs(math.log(spr / rate)),
        )

    def candidates(first: int) -> set[int]:
        first = max(lo, q * -(-first // q))
        out = {d for d in _divisors(max(total, 1)) if first <= d <= hi and d % q == 0}
        out |= {k * rate for k in range(1, 61) if lo <= k * rate <= hi}
        out |= {d for d in _divisors(rate) if first <= d <= hi and d % q == 0}
        out |= set(range(first, min(hi, first + _SCAN * q) + 1, q))
        # readers take the rate as samples per record over the header's duration (MNE in floats)
        exact = {d for d in out if d / float(_duration_text(d, rate)) == rate}
        return exact or out or {lo}

    # one record holding it all costs one record's annotations, however short
    long_enough = candidates(min(floor, rate if rate % q == 0 else floor, max(total, 1)))
    best = min(long_enough, key=key)
    if key(best)[0]:  # too many annotations for records that long: shorter ones
        best = min(candidates(lo), key=key)
    records = max(1, -(-total // best))
    slots = min(_MAX_ANNOTATION_SIGNALS, max(1, -(-need // records)))
    return best / rate, best, records, slots


class BdfOutput(Output):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []
        self.spool_path = path.with_name("." + path.name + ".spool")
        self._spool = open_file(self.spool_path, "w+b")  # a hidden file: its failures name self.path
        self.layout: Layout | None = None
        self.pos = 0  # grid instants so far, data and fill
        self._runs: list[list[int]] = []  # [kind, instants]
        self.annotations: list[tuple[float, float, str]] = []
        self.clipped = 0
        self.dropped_annotations = 0
        self.end_time: float | None = None
        self._closed = False
        self._empty = False

    # -- while recording ---------------------------------------------------------

    def on_layout(self, layout: Layout) -> None:
        s = layout.scale
        if s.digital_min < BDF_DIGITAL_MIN or s.digital_max > BDF_DIGITAL_MAX:
            raise OutputError(
                f"{self.path}: BDF stores 24-bit samples and this stream is "
                f"{layout.fmt_name}; record with --fmt int16 or int24, or use .npy/.csv",
                self.path,
            )
        self.layout = layout
        note = layout.clock_note()
        if note is not None:
            self.annotations.append((0.0, -1.0, note))

    def _run(self, kind: int, n: int) -> None:
        if self._runs and self._runs[-1][0] == kind:
            self._runs[-1][1] += n
        else:
            self._runs.append([kind, n])
        self.pos += n

    def on_samples(self, pos: int, row: int, block: SamplesBlock) -> None:
        if pos > self.pos:  # the Timeline sends gaps first; this keeps the grid whole regardless
            self._run(_FILL, pos - self.pos)
        counts = block.counts
        s = self.layout.scale  # type: ignore[union-attr]
        if counts.size and (counts.min() < s.digital_min or counts.max() > s.digital_max):
            outside = int(np.count_nonzero((counts < s.digital_min) | (counts > s.digital_max)))
            self.clipped += outside
            counts = np.clip(counts, s.digital_min, s.digital_max)
        # a failure names the BDF, not the hidden spool it is written through
        write(self._spool, np.ascontiguousarray(counts, dtype="<i4").data, self.path)
        self._run(_DATA, block.n_samples)

    def on_gap(self, gap: Gap) -> None:
        if gap.span:
            self._run(_FILL, gap.span)
        rate = self.layout.rate  # type: ignore[union-attr]
        duration = -1.0 if gap.timing == UNKNOWN else gap.span / rate
        self.annotations.append((gap.pos / rate, duration, gap.describe()))

    def on_marker(self, marker: MarkerEvent) -> None:
        if self.layout is not None:
            self.annotations.append((marker.pos / self.layout.rate, -1.0, f"marker {marker.code}"))

    def on_end(self, end_time: float | None) -> None:
        self.end_time = end_time

    def flush(self) -> None:
        flush_file(self._spool, self.path)

    # -- at the end ----------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            flush_file(self._spool, self.path)
            if self.layout is None:
                self._empty = True
                self.warnings.append(f"{self.path}: no samples arrived, so no BDF was written")
                return
            self._write_bdf()
        finally:
            try:
                self._spool.close()
            except OSError:
                pass
            self.spool_path.unlink(missing_ok=True)

    def written(self) -> list[Path]:
        return [] if self._empty else [self.path]

    def _plan(self) -> tuple[float, int, int, int]:
        """(record seconds, samples per record, records, annotation signals): plan_records."""
        lay = self.layout
        assert lay is not None
        return plan_records(self.pos, lay.rate, lay.n_channels, len(self.annotations) + 1)  # + a padding note

    def _write_bdf(self) -> None:
        from pyedflib import FILETYPE_BDFPLUS, EdfWriter

        lay = self.layout
        assert lay is not None
        seconds, spr, records, slots = self._plan()
        total = self.pos
        pad = records * spr - total
        notes = sorted(self.annotations)
        if pad:
            notes.append((total / lay.rate, pad / lay.rate, "no data: padding to a whole record"))
        if len(notes) > records * slots:
            self.dropped_annotations = len(notes) - records * slots
            self.warnings.append(
                f"{self.path}: {self.dropped_annotations} annotations did not fit "
                "the BDF (they are in the .tlv capture)"
            )
            notes = notes[: records * slots]
        start = lay.start_time
        if start is None:
            start = (self.end_time if self.end_time is not None else time.time()) - total / lay.rate
        if self.clipped:
            self.warnings.append(f"{self.path}: {self.clipped} samples outside the digital range were clipped")

        pmin, pmax = lay.scale.bdf_limits()
        try:
            w = EdfWriter(str(self.path), lay.n_channels, file_type=FILETYPE_BDFPLUS)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write the BDF: {e}", self.path) from None
        try:
            w.set_number_of_annotation_signals(slots)
            # whole seconds, as the BDF header holds them: edflib's sub-second start shifts every
            # annotation onset when the file is read back (seen: -80 us), and onsets must stay exact
            w.setStartdatetime(datetime.fromtimestamp(start).replace(microsecond=0))
            # EDF+ allows 80 characters for "Startdate dd-MMM-yyyy admincode technician equipment additional"
            platform, _, rest = lay.device.partition(" ")
            equipment = _field(f"picodaq_{platform or 'board'}")[:20]
            w.setEquipment(equipment)
            w.setRecordingAdditional(
                _field(
                    f"{lay.source_name}_{lay.fmt_name}_{lay.rate}Hz" + (f"_id_{rest.split(' ')[0]}" if rest else "")
                )[: 57 - len(equipment)]
            )
            w.setSignalHeaders(
                [
                    {
                        "label": label,
                        "dimension": lay.scale.dimension,
                        "sample_frequency": lay.rate,
                        "physical_min": pmin,
                        "physical_max": pmax,
                        "digital_min": lay.scale.digital_min,
                        "digital_max": lay.scale.digital_max,
                        "transducer": lay.scale.transducer[:80],
                        "prefilter": "",
                    }
                    for label in lay.labels
                ]
            )
            # after the signals: every header update before it checks the record against pyedflib's
            # default 100 Hz, which a record like 0.997 s cannot hold (and warns)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyedflib warns whenever the record length is set
                # edflib keeps whole 10 us and truncates: a hair over, so 0.29 s is not 0.28999 s
                w.setDatarecordDuration(spr * 100_000 // lay.rate / 100_000 + 1e-9)
            for record in self._records(spr, lay.n_channels):
                if w.blockWriteDigitalSamples(record) < 0:
                    raise OutputError(f"{self.path}: writing a data record failed", self.path)
            for onset, duration, text in notes:
                w.writeAnnotation(onset, duration, text[:_TEXT_MAX])
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write the BDF: {e}", self.path) from None
        finally:
            w.close()

    def _records(self, spr: int, nch: int) -> Iterator[np.ndarray]:
        """Data records, channel-major, from the spool and the fill runs; the last one zero-padded."""
        rec = np.zeros((spr, nch), dtype=np.int32)
        filled = 0
        self._spool.seek(0)
        for kind, n in self._runs:
            while n:
                take = min(n, spr - filled)
                if kind == _DATA:
                    raw = self._spool.read(take * nch * 4)
                    rec[filled : filled + take] = np.frombuffer(raw, dtype="<i4").reshape(take, nch)
                else:
                    rec[filled : filled + take] = 0
                filled += take
                n -= take
                if filled == spr:
                    yield np.ascontiguousarray(rec.T).ravel()
                    filled = 0
        if filled or not self.pos:
            rec[filled:] = 0
            yield np.ascontiguousarray(rec.T).ravel()


def _field(text: str) -> str:
    """EDF+ header subfields: printable ASCII, no spaces inside a subfield."""
    return "".join(ch if 33 <= ord(ch) < 127 else "_" for ch in text)[:60]
