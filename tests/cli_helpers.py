"""Helpers for the CLI and recording tests: running `picodaq`, building captures
byte by byte from PROTOCOL.md, reading BDF files back, waiting on conditions."""

from __future__ import annotations

import json
import re
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.protocol.frames import encode_frame, samples_payload


def picodaq(
    *args: str, cwd: Path | None = None, timeout: float = 120, stdin=subprocess.DEVNULL
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "picodaq.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=stdin,
    )


def start_picodaq(*args: str, cwd: Path | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "picodaq.cli.main", *args],
        cwd=cwd,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def assert_one_clear_line(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def outs(d: Path, stem: str = "rec") -> tuple[dict[str, Path], list[str]]:
    """A recording in every format: the paths by suffix, and the --out arguments naming them."""
    paths = {s: d / f"{stem}.{s}" for s in ("tlv", "npy", "csv", "bdf")}
    return paths, [a for p in paths.values() for a in ("--out", str(p))]


def file_grows_past(path: Path, size: int):
    def grown() -> bool:
        try:  # checking that an output is writable, record creates it and may delete it again
            return path.stat().st_size > size
        except FileNotFoundError:
            return False

    return grown


# -- captures, byte by byte --------------------------------------------------------


def encode_counts(counts: np.ndarray, fmt: int) -> bytes:
    """instants x channels int counts as the SAMPLES payload encodes them."""
    flat = np.asarray(counts, dtype=np.int64).ravel()
    if fmt == C.FMT_INT16:
        return flat.astype("<i2").tobytes()
    if fmt == C.FMT_INT32:
        return flat.astype("<i4").tobytes()
    u = (flat & 0xFFFFFF).astype(np.uint32)
    out = np.empty((flat.size, 3), dtype=np.uint8)
    out[:, 0] = (u >> 16) & 0xFF
    out[:, 1] = (u >> 8) & 0xFF
    out[:, 2] = u & 0xFF
    return out.tobytes()


class Capture:
    """Device-to-host frames as a board would send them (seq counted per frame)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.seq = 0

    def frame(self, mtype: int, payload: bytes, seq: int | None = None) -> Capture:
        if seq is not None:
            self.seq = seq
        self.data += encode_frame(mtype, self.seq, payload)
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return self

    def hello(self, source: int = C.SRC_RAMP, seq: int | None = None, board_id: bytes = b"\x01" * 8) -> Capture:
        payload = struct.pack(
            C.HELLO_FORMAT,
            0,
            1,
            0,
            C.PROTOCOL_VERSION,
            C.CONTRACT_HASH,
            board_id,
            b"test\0\0\0\0",
            32,
            source,
            4_000_000,
            0b1111,  # sources
            0,
            1 << 20,  # ring_bytes
        )
        return self.frame(C.MSG_HELLO, payload, seq)

    def status(self, uptime_ms: int, state: int = C.STATE_STREAMING, dropped: int = 0) -> Capture:
        payload = struct.pack(C.STATUS_FORMAT, uptime_ms, self.seq, dropped, 10, 100, 50000, 0, state)
        return self.frame(C.MSG_STATUS, payload)

    def marker(self, index: int, code: int) -> Capture:
        return self.frame(C.MSG_MARKER, struct.pack(C.MARKER_FORMAT, index, code, 0))

    def samples(
        self, first: int, t0_us: int, counts: np.ndarray, fmt: int = C.FMT_INT16, period_ns: int = 1_000_000
    ) -> Capture:
        n, nch = counts.shape
        payload = samples_payload(first, t0_us, period_ns, nch, fmt, n, encode_counts(counts, fmt))
        return self.frame(C.MSG_SAMPLES, payload)

    def write(self, path: Path) -> Path:
        path.write_bytes(bytes(self.data))
        return path


# -- reading BDF back --------------------------------------------------------------


def read_bdf(path: Path) -> dict:
    import pyedflib

    with pyedflib.EdfReader(str(path)) as r:
        n = r.signals_in_file
        onsets, durations, texts = r.readAnnotations()
        return {
            "labels": r.getSignalLabels(),
            "rates": list(r.getSampleFrequencies()),
            "dimension": [r.getPhysicalDimension(i) for i in range(n)],
            "digital": np.array([r.readSignal(i, digital=True) for i in range(n)]).T,
            "physical": np.array([r.readSignal(i) for i in range(n)]).T,
            "pmin": [r.getPhysicalMinimum(i) for i in range(n)],
            "pmax": [r.getPhysicalMaximum(i) for i in range(n)],
            "dmin": [r.getDigitalMinimum(i) for i in range(n)],
            "dmax": [r.getDigitalMaximum(i) for i in range(n)],
            "annotations": [(float(o), float(d), str(t)) for o, d, t in zip(onsets, durations, texts)],
            "filetype": r.filetype,
        }


def physical_to_counts(bdf: dict) -> np.ndarray:
    """Physical values back to counts with the header's own mapping, as any BDF reader does."""
    out = np.empty_like(bdf["physical"])
    for i in range(out.shape[1]):
        gain = (bdf["pmax"][i] - bdf["pmin"][i]) / (bdf["dmax"][i] - bdf["dmin"][i])
        out[:, i] = (bdf["physical"][:, i] - bdf["pmin"][i]) / gain + bdf["dmin"][i]
    return np.round(out).astype(np.int64)


def events(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Lines:
    """Lines of a text stream, collected by a thread as they come (with their arrival time)."""

    def __init__(self, stream) -> None:
        import threading

        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._t.start()

    def _run(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self.lines.append((time.monotonic(), None))  # end of stream
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 60.0) -> float:
        """The arrival time of the first line containing text."""
        return self.wait_for_match(re.compile(re.escape(text)), timeout)

    def wait_for_match(self, pattern: re.Pattern[str], timeout: float = 60.0) -> float:
        """The arrival time of the first line pattern finds something in."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, line in self.lines:
                    if line is not None and pattern.search(line):
                        return t
                if self.lines and self.lines[-1][1] is None:
                    raise AssertionError(f"{pattern.pattern!r} never came; got:\n{self.text()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {pattern.pattern!r}; got:\n{self.text()}")
                self._cond.wait(left)

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines if line is not None)

    def join(self, timeout: float = 10.0) -> str:
        self._t.join(timeout)
        return self.text()


def ramp_value(index: np.ndarray, n_channels: int, fmt: int) -> np.ndarray:
    """PROTOCOL.md's ramp for absolute sample indices (any order, any jumps), instants x channels."""
    bits = 8 * C.BYTES_PER_SAMPLE[fmt]
    n = np.asarray(index, dtype=np.int64)[:, None]
    c = np.arange(n_channels, dtype=np.int64)[None, :]
    return (n * C.RAMP_MUL + c * C.RAMP_CHAN_MUL) % (1 << bits) - (1 << (bits - 1))


def sine_value(index: np.ndarray, n_channels: int, rate: int, fmt: int) -> np.ndarray:
    """The firmware's sine source (firmware/picodaq_fw/sources.py, Sine) for absolute sample indices,
    instants x channels: stream slot c is (c + 1) * 5 Hz (halved until under Nyquist), a 256-entry
    int16 table of 29490 * sin, read at the top byte of a u32 phase that steps (f << 32) // rate
    per instant, shifted up to the format's width."""
    import math

    table = np.array([int(29490 * math.sin(2 * math.pi * k / 256)) for k in range(256)], dtype=np.int64)
    n = np.asarray(index, dtype=np.int64)
    out = np.empty((len(n), n_channels), dtype=np.int64)
    for c in range(n_channels):
        f = (c + 1) * 5
        while 2 * f >= rate and f > 1:
            f //= 2
        phase = (n * ((f << 32) // rate)) & 0xFFFFFFFF
        out[:, c] = table[phase >> 24] << (8 * C.BYTES_PER_SAMPLE[fmt] - 16)
    return out


def read_csv_rows(path: Path) -> np.ndarray:
    """A picodaq CSV as floats: t_s, sample_index, marker (-1 when empty, the first code otherwise), counts."""
    import csv

    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        rows = [[float(x[0]), int(x[1]), int(x[2].split(";")[0]) if x[2] else -1, *map(int, x[3:])] for x in r]
    return np.array(rows, dtype=np.float64)


def assert_csv_rows_are_the_ramp(path: Path, fmt: int = C.FMT_INT16) -> np.ndarray:
    """Every CSV row holds the ramp of its own sample_index; returns the rows."""
    rows = read_csv_rows(path)
    assert len(rows), f"{path} has no rows"
    counts = rows[:, 3:].astype(np.int64)
    assert np.array_equal(counts, ramp_value(rows[:, 1].astype(np.int64), counts.shape[1], fmt))
    assert np.all(np.diff(rows[:, 0]) > 0)  # t_s only moves forward, gaps included
    return rows


# -- picodaq serve ----------------------------------------------------------------


class Served:
    """A `picodaq serve` subprocess: its URL (the first stdout line) and its log lines."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Lines) -> None:
        self.proc = proc
        self.url = url
        self.log = log


@contextmanager
def serve(port: str, *extra: str) -> Iterator[Served]:
    proc = start_picodaq("serve", "--port", port, "--listen", "127.0.0.1:0", *extra)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        log = Lines(proc.stderr)
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "picodaq serve printed no URL within 60 s:\n" + log.text()
        url = proc.stdout.readline().strip()
        assert url.startswith(("rfc2217://127.0.0.1:", "socket://127.0.0.1:")), (url, log.text())
        yield Served(proc, url, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def assert_exact_recording(
    r: subprocess.CompletedProcess, npy: Path, n_channels: int, seconds: float, rate: int = 1000, fmt: int = C.FMT_INT16
) -> dict:
    """Exit 0, zero loss in the counters, and every sample of every channel is the ramp."""
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["crc_errors"] == stats["samples_lost"] == stats["seq_lost"] == stats["gaps"] == 0
    assert stats["header_errors"] == stats["decode_errors"] == stats["skipped_bytes"] == 0
    assert stats["device_samples_dropped"] == 0
    data = np.load(npy)
    assert data.shape == (stats["samples"], n_channels)
    assert data.shape[0] >= 0.75 * rate * seconds
    assert np.array_equal(data, ramp_counts(0, data.shape[0], n_channels, fmt))
    return stats


# -- a recording's exact content: the grid every format shares -------------------------

PADDING_NOTE = "no data: padding to a whole record"


def _gap_label(detail: str, span: int) -> str:
    """The BDF annotation of a gap from its events-list detail (timeline.Gap.describe)."""
    reason, _, timing = detail.partition("; timing: ")
    if reason == "samples lost":
        return f"gap: {span} samples lost"
    if timing == "unknown":
        return f"gap: {reason}, duration unknown"
    if timing == "host clock":
        return f"gap: {reason} (host clock)"
    return f"gap: {reason}"


def expected_grid(npy: Path, rate: int, fmt: int | None = C.FMT_INT16) -> tuple[np.ndarray, list, np.ndarray]:
    """A recording's instants on its time grid, rebuilt from its `.npy` and `.events.csv` alone:
    (counts on the grid with each gap zero-filled over its span, the annotations its BDF must hold
    apart from the padding, the device sample index of every row).

    With fmt, every row must be the PROTOCOL.md ramp of its index, the index counting on from its
    segment's first sample_index across lost instants (a `samples lost` gap of span n skips n)."""
    data = np.load(npy)
    rows = events(events_path_of(npy))
    gaps = [e for e in rows if e["kind"] == "gap"]
    segments = [e for e in rows if e["kind"] == "segment"]
    pieces, notes, at, pos = [], [], 0, 0
    index = np.empty(len(data), dtype=np.int64)
    seg_iter = iter(segments)
    seg = next(seg_iter)
    next_index = int(seg["sample_index"]) if data.shape[0] else 0
    for g in gaps:
        r = int(g["row"])
        pieces.append(data[at:r])
        index[at:r] = next_index + np.arange(r - at)
        next_index += r - at
        pos += r - at
        assert float(g["t_s"]) == round(pos / rate, 9), (g, pos)  # the gap sits where its rows end
        span = round(float(g["duration_s"]) * rate) if g["duration_s"] else 0
        pieces.append(np.zeros((span, data.shape[1]), dtype=data.dtype))
        notes.append((pos / rate, span / rate if g["duration_s"] else -1.0, _gap_label(g["detail"], span)))
        pos += span
        if g["detail"].startswith("samples lost"):
            next_index += span
        else:  # a new stream: its segment row says where its indices start
            seg = next(seg_iter)
            assert int(seg["row"]) == r and float(seg["t_s"]) == round(pos / rate, 9), (seg, r, pos)
            next_index = int(seg["sample_index"])
        at = r
    pieces.append(data[at:])
    index[at:] = next_index + np.arange(len(data) - at)
    notes += [(float(e["t_s"]), -1.0, f"marker {e['code']}") for e in rows if e["kind"] == "marker"]
    grid = np.concatenate(pieces) if pieces else data
    if fmt is not None and len(data):
        assert np.array_equal(data, ramp_value(index & 0xFFFFFFFF, data.shape[1], fmt)), "rows are not the ramp"
    return grid, notes, index


def events_path_of(npy: Path) -> Path:
    return npy.with_name(npy.stem + ".events.csv")


def assert_bdf_is_the_recording(bdf_path: Path, npy: Path, rate: int, fmt: int | None = C.FMT_INT16) -> dict:
    """The BDF holds exactly the recording, sample by sample: each received instant at its place on
    the grid (the ramp, with fmt), each gap zero-filled over exactly its span and annotated with its
    onset, duration and reason, each marker annotated, the last record padded with zeros and that
    padding annotated; nothing else. Returns the BDF as read."""
    grid, notes, _ = expected_grid(npy, rate, fmt)
    b = read_bdf(bdf_path)
    dig = b["digital"].astype(np.int64)
    total = grid.shape[0]
    assert dig.shape[1] == grid.shape[1] and dig.shape[0] >= max(total, 1), (dig.shape, grid.shape)
    assert np.array_equal(dig[:total], grid), "the BDF's samples differ from the recording on the grid"
    assert not dig[total:].any(), "the padding is not zeros"
    pad = dig.shape[0] - total
    want = sorted(notes + ([(total / rate, pad / rate, PADDING_NOTE)] if pad else []))
    want.sort(key=lambda n: (round(n[0], 6), n[2]))
    got = sorted(
        ((o, d, t) for o, d, t in b["annotations"] if not t.startswith("sample 0 at run start")),
        key=lambda n: (round(n[0], 6), n[2]),
    )  # the clock note of several boards recorded at once is checked by their own tests
    assert [t for _, _, t in got] == [t for _, _, t in want], (got, want)
    for (o, d, t), (wo, wd, _) in zip(got, want):
        # as pyedflib's writeAnnotation stores them: in units of 0.1 ms (exact at 10 kHz and below
        # only where the instant falls on one; the zero fill above is exact to the sample)
        assert abs(o - wo) < 1e-4 + 1e-9 and abs(d - wd) < 1e-4 + 1e-9, (t, (o, d), (wo, wd))
    return b


def stream_started_again(tlv: Path):
    """A wait_for condition: the `.tlv` capture holds a second stream's first frame (SAMPLES from
    sample index 0 again), so what came after a restart, reset or reconnect has been received.
    Not the capture's size: its writes reach the file up to a second late, and growth after the
    restart's line was once only bytes from before it (no restart recorded yet, under load)."""
    from picodaq.protocol.decoder import FrameDecoder

    def seen() -> bool:
        try:
            data = tlv.read_bytes()
        except FileNotFoundError:
            return False
        dec = FrameDecoder()
        dec.feed(data)
        return sum(f.type == C.MSG_SAMPLES and f.head[0] == 0 for f in dec) >= 2

    return seen


def captured(tlv: Path):
    """A `.tlv` capture as written so far, decoded (a Receiver: stats.samples, statuses, markers, ...)."""
    from picodaq.core.receiver import Receiver

    rx = Receiver()
    try:
        data = tlv.read_bytes()
    except FileNotFoundError:  # not written yet, or between a recorder's attempts
        return rx
    rx.receive(data)
    return rx
