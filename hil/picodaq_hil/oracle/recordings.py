"""Reading picodaq's recordings back, independently of the outputs that wrote them, and
checking them against the stream they came from: the ramp, and `picodaq replay`.

Each check raises AssertionError naming the file and what differs, and returns a
line for the log when the recording holds up.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from picodaq.core.blocks import ramp_counts

if TYPE_CHECKING:
    from ..stream import StreamResult


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(sample indices, counts) of a picodaq CSV recording (t_s, sample_index, marker, channels...)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    if head[:3] != ["t_s", "sample_index", "marker"]:
        raise AssertionError(f"{path}: unexpected columns {head[:3]}")
    idx = np.array([int(r[1]) for r in body], dtype=np.int64)
    data = np.array([[int(v) for v in r[3:]] for r in body], dtype=np.int64).reshape(len(body), len(head) - 3)
    return idx, data


def read_bdf(path: Path, n: int) -> np.ndarray:
    """The first n digital values of every signal of a BDF file, instants x channels."""
    import pyedflib

    f = pyedflib.EdfReader(str(path))
    try:
        return np.stack([f.readSignal(c, digital=True)[:n] for c in range(f.signals_in_file)], axis=1)
    finally:
        f.close()


def read_recording(path: Path, n: int) -> tuple[np.ndarray | None, np.ndarray]:
    """(sample indices if the file has them, counts: instants x channels) of a .npy, .csv or .bdf
    recording; n is how many instants to read from a BDF (its records are padded)."""
    if path.suffix == ".npy":
        return None, np.load(path)
    if path.suffix == ".csv":
        return read_csv(path)
    if path.suffix == ".bdf":
        return None, read_bdf(path, n)
    raise AssertionError(f"{path}: not a .npy, .csv or .bdf recording")


def check_matches_ramp(result: StreamResult, path: str | Path) -> str:
    """The recording holds exactly the ramp for the stream's channels and format, from its first
    sample index, with no gap (BDF: the digital values, for formats that fit its 24 bits)."""
    p = Path(path)
    cfg = result.config
    idx, data = read_recording(p, result.samples)
    first = result.ramp.first_index if result.ramp is not None and result.ramp.first_index is not None else 0
    if data.shape != (result.samples, cfg.n_channels):
        raise AssertionError(f"{p}: shape {data.shape}, the stream delivered {result.samples} x {cfg.n_channels}")
    if result.samples_lost:
        raise AssertionError(f"the stream lost {result.samples_lost} samples; a gapless ramp cannot be expected")
    if not np.array_equal(data, ramp_counts(first, result.samples, cfg.n_channels, cfg.fmt)):
        raise AssertionError(f"{p}: differs from the ramp")
    if idx is not None and not np.array_equal(idx, first + np.arange(result.samples)):
        raise AssertionError(f"{p}: sample indices are not consecutive from {first}")
    return f"{p}: {data.shape[0]} x {data.shape[1]} samples equal the ramp"


def check_replay(result: StreamResult, capture: str, recording: str) -> dict[str, Any]:
    """`picodaq replay CAPTURE.tlv` (the real CLI) decodes the raw capture into the same samples as
    the live `recording` (.npy), with the same counters as the live stream; returns its counters."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "replay.npy"
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "picodaq.cli.main",
                "replay",
                capture,
                "--out",
                str(out),
                "--stats-json",
                "-",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if p.returncode != 0:
            raise AssertionError(f"picodaq replay failed: {p.stderr.strip()}")
        stats = json.loads(p.stdout)
        if not np.array_equal(np.load(out), np.load(recording)):
            raise AssertionError(f"replaying {capture} gives other samples than {recording}")
    for k in ("samples", "samples_lost", "seq_lost", "crc_errors"):
        if stats[k] != result.stats[k]:
            raise AssertionError(f"replay counted {k}={stats[k]}, live {result.stats[k]}")
    return stats
