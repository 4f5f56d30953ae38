"""The peer figure's oracles: every value BrainFlow and picodaq delivered, checked against the ramp
both emulators send, and a picodaq capture damaged as the Cyton stream is (bench/damage.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .. import contracts as C
from ..protocol.frames import CRC_RESIDUE as _CRC_RESIDUE
from .cyton import N_CHANNELS, expected_counts
from .damage import Damager, DamageSpec, DamageTruth

UV_PER_COUNT = 4.5 / 8388607.0 / 24 * 1000000.0
_RAMP_INV = pow(C.RAMP_MUL, -1, 1 << 24)  # the ramp's index from one int24 value: n = (v + 2**23 - c*CHAN) / MUL


class PeerError(RuntimeError):
    """The peer figure could not be measured (a process failed, a tool is missing)."""


def cyton_counts(rows: np.ndarray) -> np.ndarray:
    """BrainFlow's EEG microvolts (rows x [package_num, 8 EEG, end byte]) back to int24 counts."""
    return np.rint(rows[:, 1 : 1 + N_CHANNELS] / UV_PER_COUNT).astype(np.int64)


def brainflow_exact(rows: np.ndarray) -> bool:
    """Every row is the next packet, from the first: right values, right package number."""
    n = len(rows)
    if n == 0:
        return False
    nums = rows[:, 0].astype(np.int64)
    return bool(np.array_equal(cyton_counts(rows), expected_counts(0, n)) and np.all(nums == np.arange(n) % 256))


def ramp_at(index: np.ndarray) -> np.ndarray:
    """The int24 ramp (PROTOCOL.md) at each of these instants' indices, instants x 8 channels."""
    c = np.arange(N_CHANNELS, dtype=np.int64)[None, :]
    return (np.asarray(index, dtype=np.int64)[:, None] * C.RAMP_MUL + c * C.RAMP_CHAN_MUL) % (1 << 24) - (1 << 23)


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A picodaq CSV's sample indices and counts (t_s, sample_index, marker, ch0..)."""
    index, counts = [], []
    with open(path) as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split(",")
            index.append(int(parts[1]))
            counts.append([int(x) for x in parts[3 : 3 + N_CHANNELS]])
    return np.array(index, dtype=np.int64), np.array(counts, dtype=np.int64).reshape(-1, N_CHANNELS)


def judge_rows(counts: np.ndarray, sent: int) -> dict[str, Any]:
    """Each delivered row of int24 counts against the ramp: which packet it is (the index most of
    its channels imply), and how many of its values are wrong. A row no two channels agree on
    (built from garbage or from two packets' bytes) is spurious: all its values are wrong."""
    r = len(counts)
    c = np.arange(N_CHANNELS, dtype=np.int64)
    implied = ((counts + (1 << 23) - c * C.RAMP_CHAN_MUL) % (1 << 24) * _RAMP_INV) % (1 << 24)
    agree = (implied[:, :, None] == implied[:, None, :]).sum(axis=2)
    best = agree.argmax(axis=1)
    index = implied[np.arange(r), best]
    known = (agree.max(axis=1) >= 2) & (index < sent)
    wrong = np.where(known[:, None], counts != ramp_at(index), True)
    return {"index": np.where(known, index, -1), "wrong": wrong, "known": known}


def judge_brainflow(rows: np.ndarray, sent: int, truth: dict[str, Any] | None, log: dict[str, Any]) -> dict[str, Any]:
    counts = cyton_counts(rows)
    j = judge_rows(counts, sent)
    index, wrong, known = j["index"], j["wrong"], j["known"]
    delivered = index[known]
    got = set(delivered.tolist())
    span = int(delivered.max()) + 1 if len(delivered) else 0  # its last packets were in flight at the stop
    nums = rows[:, 0].astype(np.int64)
    tr = DamageTruth.from_dict(truth) if truth else DamageTruth(units=sent)
    damaged = tr.damaged()
    intact_lost = sum(1 for n in range(span) if n not in damaged and n not in got)
    return {
        "instants_sent": sent,
        "instants_span": span,
        "rows_delivered": int(len(rows)),
        "values_delivered": int(wrong.size),
        "wrong_values": int(wrong.sum()),
        "wrong_values_unflagged": int(wrong.sum()),  # BrainFlow flags no value
        "rows_wrong": int(wrong.any(axis=1).sum()),
        "rows_spurious": int((~known).sum()),
        "rows_wrong_package_num": int((known & (nums != index % 256)).sum()),
        "duplicates": int(len(delivered) - len(np.unique(delivered))),
        "missing_instants": span - len(got),
        "missing_reported": None,  # no counter: a user could only guess from package_num (mod 256)
        "package_num_jumps": int(np.count_nonzero((np.diff(nums) % 256) != 1)),
        "intact_units_lost": intact_lost,
        "reported": log,
    }


# -- damage on a picodaq capture -------------------------------------------------------

_HEAD = C.HEADER_SIZE


def frames(capture: bytes) -> list[tuple[bytes, int]]:
    """A clean capture cut into pieces: (frame bytes, type) for each frame whose CRC holds,
    (bytes, -1) for anything between frames."""
    out: list[tuple[bytes, int]] = []
    pos = loose = 0
    n = len(capture)
    while pos + _HEAD + 4 <= n:
        if capture[pos : pos + 2] == C.MAGIC:
            length = int.from_bytes(capture[pos + 4 : pos + 6], "little")
            end = pos + _HEAD + length + 4
            if end <= n and zlib.crc32(capture[pos:end]) == _CRC_RESIDUE:
                if loose < pos:
                    out.append((capture[loose:pos], -1))
                out.append((capture[pos:end], capture[pos + 3]))
                pos = loose = end
                continue
        pos += 1
    if loose < n:
        out.append((capture[loose:], -1))
    return out


def damage_capture(capture: bytes, spec: DamageSpec, seed: int) -> tuple[bytes, DamageTruth, list[tuple[int, int]]]:
    """The capture with every SAMPLES frame passed through a Damager (the rest untouched); the truth;
    and each unit's (first_sample_index, n_samples)."""
    d = Damager(spec, seed)
    out = bytearray()
    units: list[tuple[int, int]] = []
    for data, kind in frames(capture):
        if kind == C.MSG_SAMPLES:
            p = data[_HEAD:]
            units.append((int.from_bytes(p[0:4], "little"), int.from_bytes(p[14:16], "little")))
            out += d.unit(data)
        else:
            out += data
    return bytes(out), d.truth, units


def judge_picodaq(capture: Path, tmp: Path, spec: DamageSpec, seed: int) -> dict[str, Any]:
    damaged, truth, units = damage_capture(capture.read_bytes(), spec, seed)
    src = tmp / "picodaq-damaged.tlv"
    src.write_bytes(damaged)
    csv, stats = tmp / "picodaq-damaged.csv", tmp / "picodaq-damaged.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "picodaq",
            "replay",
            str(src),
            "--out",
            str(csv),
            "--stats-json",
            str(stats),
            "--quiet",
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0:
        raise PeerError(f"picodaq replay of the damaged capture failed: {r.stderr.strip()[-300:]}")
    s = json.loads(stats.read_text())
    index, counts = read_csv(csv)
    wrong = counts != ramp_at(index)
    sent = {n for first, k in units for n in range(first, first + k)}
    damaged_units = truth.damaged()
    intact = {n for u, (first, k) in enumerate(units) if u not in damaged_units for n in range(first, first + k)}
    got = set(index.tolist())
    reported = {
        k: s[k]
        for k in ("crc_errors", "header_errors", "skipped_bytes", "samples_lost", "seq_lost", "gaps", "gap_instants")
    }
    reported.update({k: s[k] for k in ("decode_errors", "truncated") if s.get(k)})
    return {
        "instants_sent": len(sent),
        "instants_span": len(sent),
        "rows_delivered": int(len(index)),
        "values_delivered": int(wrong.size),
        "wrong_values": int(wrong.sum()),
        "wrong_values_unflagged": int(wrong.sum()),  # no value is flagged: a wrong one passed every check
        "rows_wrong": int(wrong.any(axis=1).sum()),
        "rows_spurious": int(len(got - sent)),
        "duplicates": int(len(index) - len(got)),
        "missing_instants": len(sent - got),
        "missing_reported": s["samples_lost"],
        "intact_units_lost": len(intact - got),
        "reported": reported,
        "_truth": truth,
        "_units": len(units),
    }
