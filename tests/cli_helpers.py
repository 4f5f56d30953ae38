"""Helpers for the CLI and recording tests: running `picodaq`, building captures
byte by byte from PROTOCOL.md, reading BDF files back, waiting on conditions."""

from __future__ import annotations

import json
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


def file_grows_past(path: Path, size: int):
    return lambda: path.exists() and path.stat().st_size > size


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

    def wait_for(self, text: str, timeout: float = 30.0) -> float:
        """The arrival time of the first line containing text."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, line in self.lines:
                    if line is not None and text in line:
                        return t
                if self.lines and self.lines[-1][1] is None:
                    raise AssertionError(f"{text!r} never came; got:\n{self.text()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {text!r}; got:\n{self.text()}")
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
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "picodaq serve printed no URL within 20 s:\n" + log.text()
        url = proc.stdout.readline().strip()
        assert url.startswith(("rfc2217://127.0.0.1:", "socket://127.0.0.1:")), (url, log.text())
        yield Served(proc, url, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
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
