"""Synthetic SAMPLES frames for benchmarks and tests, made at memory speed.

`FrameStream` makes K frames per chunk with consecutive seq, sample indices
and device stamps, regenerated in place for every chunk (the CRCs of a
fixed-data stream are patched vectorised, by CRC-32's linearity), so producing
a million frames costs next to nothing. `capture(n)` is n such frames as one
bytes object: a capture as `picodaq record --out x.tlv` would have written it.
`writer_process` runs a process that writes ramp frames into a file
descriptor (a pty master) as fast as it drains.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

from .. import contracts as C
from ..core.blocks import ramp_counts

# frame-relative offsets of the fields a stream changes from frame to frame
_SEQ_AT = 6
_FIRST_AT = C.HEADER_SIZE + 0
_T0_AT = C.HEADER_SIZE + 4
_PATCHED = (
    tuple(range(_SEQ_AT, _SEQ_AT + 4)) + tuple(range(_FIRST_AT, _FIRST_AT + 4)) + tuple(range(_T0_AT, _T0_AT + 4))
)


class FrameStream:
    """Endless SAMPLES frames, `frames_per_chunk` at a time, as PROTOCOL.md lays them out.

    pattern "fixed": the same sample bytes in every frame (cheapest: only seq,
    first_sample_index and t0_us change, and the CRCs are patched with
    numpy); "ramp": the bit-exact ramp test pattern (a CRC per frame).
    """

    def __init__(
        self,
        n_channels: int = 4,
        fmt: int = C.FMT_INT16,
        n_samples: int = 73,
        frames_per_chunk: int = 1000,
        rate_hz: int = 1000,
        pattern: str = "fixed",
        seq: int = 0,
        index: int = 0,
    ) -> None:
        if pattern not in ("fixed", "ramp"):
            raise ValueError("pattern is 'fixed' or 'ramp'")
        bps = C.BYTES_PER_SAMPLE[fmt]
        self.n_channels, self.fmt, self.n_samples, self.pattern = n_channels, fmt, n_samples, pattern
        self.payload_size = 16 + n_channels * n_samples * bps
        if self.payload_size > C.MAX_PAYLOAD_BY_TYPE[C.MSG_SAMPLES]:
            raise ValueError("frame too large for a SAMPLES payload")
        self.frame_size = C.OVERHEAD + self.payload_size
        self.frames_per_chunk = k = frames_per_chunk
        self.period_ns = round(1e9 / rate_hz)
        self.seq = seq
        self.index = index
        self.buffer = bytearray(k * self.frame_size)
        a = self._frames = np.frombuffer(self.buffer, dtype=np.uint8).reshape(k, self.frame_size)
        a[:, 0:2] = np.frombuffer(C.MAGIC, dtype=np.uint8)
        a[:, 2] = C.PROTOCOL_VERSION
        a[:, 3] = C.MSG_SAMPLES
        a[:, 4:6] = np.frombuffer(struct.pack("<H", self.payload_size), dtype=np.uint8)
        fixed = struct.pack("<IBBH", self.period_ns, n_channels, fmt, n_samples)
        a[:, C.HEADER_SIZE + 8 : C.HEADER_SIZE + 16] = np.frombuffer(fixed, dtype=np.uint8)
        self._data = a[:, C.HEADER_SIZE + 16 : C.HEADER_SIZE + self.payload_size]
        self._crc = a[:, C.HEADER_SIZE + self.payload_size :]
        self._views = [
            memoryview(self.buffer)[i * self.frame_size : (i + 1) * self.frame_size - C.CRC_SIZE] for i in range(k)
        ]
        self._offsets = np.arange(k, dtype=np.uint64)
        self.frames = 0  # frames produced so far
        if pattern == "fixed":
            self._data[:] = (np.arange(self._data.shape[1]) % 251).astype(np.uint8)
            self._write_fields()
            self._base_crc = self._crc_loop()
            self._base = a[:, _PATCHED].copy()
            self._tables = self._crc_tables()

    def _crc_tables(self) -> np.ndarray:
        """M[p][v] = crc(v at byte p, zeros elsewhere) ^ crc(zeros): CRC-32 is XOR-linear past its constants."""
        n = self.frame_size - C.CRC_SIZE
        zero = zlib.crc32(bytes(n))
        msg = bytearray(n)
        t = np.zeros((len(_PATCHED), 256), dtype=np.uint32)
        for j, p in enumerate(_PATCHED):
            for v in range(256):
                msg[p] = v
                t[j, v] = zlib.crc32(msg) ^ zero
            msg[p] = 0
        return t

    def _write_fields(self) -> None:
        k = self.frames_per_chunk
        a = self._frames
        seqs = ((self.seq + self._offsets) % (1 << 32)).astype("<u4")
        firsts_abs = self.index + self._offsets * np.uint64(self.n_samples)
        firsts = (firsts_abs % (1 << 32)).astype("<u4")
        t0 = ((firsts_abs * np.uint64(self.period_ns) // np.uint64(1000)) % np.uint64(C.TICKS_PERIOD)).astype("<u4")
        a[:, _SEQ_AT : _SEQ_AT + 4] = seqs.view(np.uint8).reshape(k, 4)
        a[:, _FIRST_AT : _FIRST_AT + 4] = firsts.view(np.uint8).reshape(k, 4)
        a[:, _T0_AT : _T0_AT + 4] = t0.view(np.uint8).reshape(k, 4)

    def _crc_loop(self) -> np.ndarray:
        crc = np.array([zlib.crc32(v) for v in self._views], dtype="<u4")
        self._crc[:] = crc.view(np.uint8).reshape(-1, 4)
        return crc

    def next_chunk(self) -> memoryview:
        """The next frames_per_chunk frames (the same buffer, rewritten: use it before the next call)."""
        self._write_fields()
        if self.pattern == "ramp":
            n = self.frames_per_chunk * self.n_samples
            counts = ramp_counts(self.index, n, self.n_channels, self.fmt)
            self._data[:] = encode_counts(counts, self.fmt).reshape(self.frames_per_chunk, -1)
            self._crc_loop()
        else:
            delta = self._frames[:, _PATCHED] ^ self._base
            crc = self._base_crc.copy()
            for j in range(len(_PATCHED)):
                crc ^= self._tables[j][delta[:, j]]
            self._crc[:] = crc.astype("<u4").view(np.uint8).reshape(-1, 4)
        self.seq += self.frames_per_chunk
        self.index += self.frames_per_chunk * self.n_samples
        self.frames += self.frames_per_chunk
        return memoryview(self.buffer)


def encode_counts(counts: np.ndarray, fmt: int) -> np.ndarray:
    """int32 counts (instants x channels) as the wire's sample bytes (flat uint8)."""
    flat = np.ascontiguousarray(counts, dtype=np.int32).reshape(-1)
    if fmt == C.FMT_INT16:
        return flat.astype("<i2").view(np.uint8)
    if fmt == C.FMT_INT32:
        return flat.astype("<i4").view(np.uint8)
    if fmt == C.FMT_INT24:
        be = flat.astype(">i4").view(np.uint8).reshape(-1, 4)
        return np.ascontiguousarray(be[:, 1:]).reshape(-1)
    raise ValueError(f"unknown sample format {fmt}")


# -- the whole path through a real pseudo-terminal ----------------------------------


def capture(
    n_frames: int, n_channels: int = 4, fmt: int = C.FMT_INT16, n_samples: int = 73, pattern: str = "fixed"
) -> bytes:
    """n_frames consecutive SAMPLES frames as one bytes object (default: 600-byte payloads)."""
    k = min(n_frames, 1000)
    stream = FrameStream(n_channels, fmt, n_samples, frames_per_chunk=k, pattern=pattern)
    out = bytearray()
    while stream.frames + k <= n_frames:
        out += stream.next_chunk()
    rest = n_frames - stream.frames
    if rest:
        out += stream.next_chunk()[: rest * stream.frame_size]
    return bytes(out)


def write_frames(fd: int, seconds: float) -> FrameStream:
    """Write ramp SAMPLES frames (int24, 8 channels x 25 instants: 616-byte payloads)
    to fd as fast as it drains, in whole chunks, until seconds have passed."""
    stream = FrameStream(n_channels=8, fmt=C.FMT_INT24, n_samples=25, frames_per_chunk=200, pattern="ramp")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = stream.next_chunk()
        while len(view):
            view = view[os.write(fd, view) :]
    return stream


def writer_process(fd: int, seconds: float) -> subprocess.Popen:
    """A process running write_frames into fd (a pty master). It prints "frames frame_size" when
    done, then waits for its stdin to close: closing the master earlier would hang up the pty
    and throw away bytes the reader has not read yet."""
    return subprocess.Popen(
        [sys.executable, "-m", "picodaq.bench.frames", "--write-fd", str(fd), "--seconds", str(seconds)],
        pass_fds=[fd],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def main(argv: list[str] | None = None) -> int:
    """The writer process of writer_process()."""
    p = argparse.ArgumentParser(prog="python -m picodaq.bench.frames")
    p.add_argument("--write-fd", type=int, required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args(argv)
    stream = write_frames(args.write_fd, args.seconds)
    print(stream.frames, stream.frame_size, flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
