"""Benchmark of the receiver core against a naive decoder.

    python -m picodaq.corebench [--frames N] [--json PATH]
    python -m picodaq.corebench --pty SECONDS     the whole path through a real pty

Both pipelines take the same bytes from memory (no port, no threads), a
stream of SAMPLES frames with 600-byte payloads (4 channels x 73 int16
instants) by default, and do the same work per block: two observers (one
on every block, one on every 10th) read the counts, and a primary consumer
takes each block from a queue. Reported per pipeline: frames/s, MB/s of wire
bytes, and the allocations and bytes allocated per frame (memray, when
installed: the test extras).

- `core`: `Receiver.receive` (decoder reading in place, one copy per frame
  into a pooled buffer, pooled blocks, router, TapRegistry, BlockQueue);
- `naive`: `NaiveDecoder`, the straightforward way: a growing bytearray,
  a bytes slice per frame, a new numpy array and block object per block.

`FrameStream` makes the input: K frames per chunk with consecutive seq,
sample indices and device stamps, regenerated in place for every chunk (the
CRCs of a fixed-data stream are patched vectorised, by CRC-32's linearity),
so producing a million frames costs next to nothing. The benchmark command
(`picodaq bench`) and the tests use it as well.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import threading
import time
import tty
import zlib
from collections import deque
from typing import Any, Callable

import numpy as np

from . import contracts as C
from .blocks import BlockView, SamplesBlock, decode_block, ramp_counts
from .primary import BlockQueue
from .receiver import Receiver

# frame-relative offsets of the fields a stream changes from frame to frame
_SEQ_AT = 6
_FIRST_AT = C.HEADER_SIZE + 0
_T0_AT = C.HEADER_SIZE + 4
_PATCHED = tuple(range(_SEQ_AT, _SEQ_AT + 4)) + tuple(range(_FIRST_AT, _FIRST_AT + 4)) + \
    tuple(range(_T0_AT, _T0_AT + 4))


class FrameStream:
    """Endless SAMPLES frames, `frames_per_chunk` at a time, as PROTOCOL.md lays them out.

    pattern "fixed": the same sample bytes in every frame (cheapest: only seq,
    first_sample_index and t0_us change, and the CRCs are patched with
    numpy); "ramp": the bit-exact ramp test pattern (a CRC per frame).
    """

    def __init__(self, n_channels: int = 4, fmt: int = C.FMT_INT16, n_samples: int = 73,
                 frames_per_chunk: int = 1000, rate_hz: int = 1000, pattern: str = "fixed",
                 seq: int = 0, index: int = 0) -> None:
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
        a[:, C.HEADER_SIZE + 8:C.HEADER_SIZE + 16] = np.frombuffer(fixed, dtype=np.uint8)
        self._data = a[:, C.HEADER_SIZE + 16:C.HEADER_SIZE + self.payload_size]
        self._crc = a[:, C.HEADER_SIZE + self.payload_size:]
        self._views = [memoryview(self.buffer)[i * self.frame_size:(i + 1) * self.frame_size - C.CRC_SIZE]
                       for i in range(k)]
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
        a[:, _SEQ_AT:_SEQ_AT + 4] = seqs.view(np.uint8).reshape(k, 4)
        a[:, _FIRST_AT:_FIRST_AT + 4] = firsts.view(np.uint8).reshape(k, 4)
        a[:, _T0_AT:_T0_AT + 4] = t0.view(np.uint8).reshape(k, 4)

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


class NaiveDecoder:
    """The baseline: decode the way a first version would, slicing bytes per frame.

    Not part of the product path; it exists to be measured against. It keeps
    PROTOCOL.md's acceptance rules (magic, version, type, length, CRC) so the
    comparison is like for like, and yields (type, seq, payload bytes).
    """

    _HEADER = struct.Struct(C.HEADER_FORMAT)

    def __init__(self) -> None:
        self.buf = bytearray()
        self.frames_ok = 0

    def feed(self, data: bytes | memoryview) -> list[tuple[int, int, bytes]]:
        buf = self.buf
        buf += data
        out = []
        while True:
            i = buf.find(C.MAGIC)
            if i < 0:
                del buf[:max(0, len(buf) - 1)]
                break
            del buf[:i]
            if len(buf) < C.HEADER_SIZE:
                break
            _, version, mtype, length, seq = self._HEADER.unpack_from(buf)
            if version != C.PROTOCOL_VERSION or length > C.MAX_PAYLOAD_BY_TYPE.get(mtype, -1):
                del buf[:1]
                continue
            total = C.OVERHEAD + length
            if len(buf) < total:
                break
            frame = bytes(buf[:total])
            if zlib.crc32(frame[:-4]) != struct.unpack("<I", frame[-4:])[0]:
                del buf[:1]
                continue
            del buf[:total]
            self.frames_ok += 1
            out.append((mtype, seq, frame[C.HEADER_SIZE:-C.CRC_SIZE]))
        return out


# -- the work both pipelines do per block ------------------------------------------

class _Observer:
    """Reads one value of every block it is given (an allocation-light observer)."""

    def __init__(self) -> None:
        self.blocks = 0
        self.last = np.zeros(C.MAX_CHANNELS, dtype=np.int64)

    def on_block(self, view: BlockView | SamplesBlock) -> None:
        counts = view.counts
        self.last[:counts.shape[1]] = counts[-1]
        self.blocks += 1


def run_core(stream: FrameStream, chunks: int, piece: int = 1 << 16) -> dict[str, Any]:
    """Push chunks of stream through the core pipeline; returns counters and timings."""
    queue = BlockQueue(maxlen=4096)
    rx = Receiver(primary=queue, clock=False)
    every, tenth = _Observer(), _Observer()
    rx.taps.add(every, name="every")
    rx.taps.add(tenth, every=10, name="tenth")
    consumed = [0]

    def consume(block: SamplesBlock) -> None:
        consumed[0] += block.n_samples

    def work(n: int) -> None:
        for _ in range(n):
            chunk = stream.next_chunk()
            for i in range(0, len(chunk), piece):
                rx.receive(chunk[i:i + piece])
                queue.poll_each(1 << 30, consume)

    work(2)  # warm up: the pools grow to their working size
    return _measure(work, chunks, stream, rx=rx, observers=(every, tenth))


def run_naive(stream: FrameStream, chunks: int, piece: int = 1 << 16) -> dict[str, Any]:
    """The same work through NaiveDecoder, decode_block and a deque."""
    dec = NaiveDecoder()
    queue: deque[SamplesBlock] = deque()
    every, tenth = _Observer(), _Observer()
    seen = [0]
    consumed = [0]

    def work(n: int) -> None:
        for _ in range(n):
            chunk = stream.next_chunk()
            for i in range(0, len(chunk), piece):
                for mtype, _seq, payload in dec.feed(chunk[i:i + piece]):
                    if mtype != C.MSG_SAMPLES:
                        continue
                    block = decode_block(payload)
                    every.on_block(block)
                    if seen[0] % 10 == 0:
                        tenth.on_block(block)
                    seen[0] += 1
                    queue.append(block)
                while queue:
                    consumed[0] += queue.popleft().n_samples

    work(2)
    return _measure(work, chunks, stream, frames_ok=lambda: dec.frames_ok)


def _measure(work: Callable[[int], None], chunks: int, stream: FrameStream, rx: Receiver | None = None,
             observers: tuple = (), frames_ok: Callable[[], int] | None = None) -> dict[str, Any]:
    frames = chunks * stream.frames_per_chunk
    t, c = time.perf_counter(), time.process_time()
    work(chunks)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    result: dict[str, Any] = {
        "frames": frames,
        "seconds": seconds,
        "cpu_seconds": cpu,  # this process's CPU time: the figure to trust on a busy machine
        "frames_per_s": frames / seconds,
        "mb_per_s": frames * stream.frame_size / seconds / 1e6,
        "frames_per_cpu_s": frames / cpu if cpu > 0 else None,
        "frame_bytes": stream.frame_size,
        "payload_bytes": stream.payload_size,
    }
    # allocations on a shorter run (memray slows every allocation down)
    alloc_chunks = max(1, min(chunks, 20))
    try:
        from .alloc import count_allocations

        a = count_allocations(lambda: work(alloc_chunks))
        n = alloc_chunks * stream.frames_per_chunk
        result["allocations_per_frame"], result["bytes_allocated_per_frame"] = a.per(n)
    except Exception as e:  # memray missing: report the speed alone
        result["allocations_per_frame"] = result["bytes_allocated_per_frame"] = None
        result["allocation_note"] = str(e)
    if rx is not None:
        result["pool_hit_rate"] = rx.pool_stats.hit_rate
        result["decoder"] = rx.stats.as_dict()
    return result


def compare(frames: int = 200_000, n_channels: int = 4, fmt: int = C.FMT_INT16, n_samples: int = 73,
            frames_per_chunk: int = 1000) -> dict[str, dict[str, Any]]:
    """Run both pipelines on the same kind of stream, one after the other, in this process."""
    chunks = max(1, frames // frames_per_chunk)
    out = {}
    for name, run in (("core", run_core), ("naive", run_naive)):
        stream = FrameStream(n_channels, fmt, n_samples, frames_per_chunk)
        out[name] = run(stream, chunks)
    return out


# -- the whole path through a real pseudo-terminal ----------------------------------

def write_frames(fd: int, seconds: float) -> FrameStream:
    """Write ramp SAMPLES frames (int24, 8 channels x 25 instants: 616-byte payloads)
    to fd as fast as it drains, in whole chunks, until seconds have passed."""
    stream = FrameStream(n_channels=8, fmt=C.FMT_INT24, n_samples=25, frames_per_chunk=200, pattern="ramp")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        view = stream.next_chunk()
        while len(view):
            view = view[os.write(fd, view):]
    return stream


def writer_process(fd: int, seconds: float) -> subprocess.Popen:
    """A process running write_frames into fd (a pty master). It prints "frames frame_size" when
    done, then waits for its stdin to close: closing the master earlier would hang up the pty
    and throw away bytes the reader has not read yet."""
    return subprocess.Popen([sys.executable, "-m", "picodaq.corebench", "--write-fd", str(fd), "--seconds",
                             str(seconds)], pass_fds=[fd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def through_pty(seconds: float = 10.0) -> dict[str, Any]:
    """Frames from a writer process through a pty, the Link's reader thread and ring, the
    receiver and a BlockQueue to a consumer in this thread; returns rates and counters."""
    from .link import Link

    master, slave = os.openpty()
    tty.setraw(slave)
    queue = BlockQueue(maxlen=2048)
    link = Link.open(os.ttyname(slave), receiver=Receiver(primary=queue))
    writer = writer_process(master, seconds)
    report: list[str] = []
    threading.Thread(target=lambda: report.append(writer.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    t, c = time.monotonic(), time.process_time()
    try:
        while True:
            link.poll_each(1 << 20, _ignore, timeout=0.2)
            if report and link.receiver.stats.frames_ok >= int(report[0].split()[0]) and not len(queue):
                break
            if writer.poll() is not None and not report:
                raise RuntimeError("the writer process died")
        seconds_taken, cpu = time.monotonic() - t, time.process_time() - c
    finally:
        writer.stdin.close()  # type: ignore[union-attr]
        try:
            writer.wait(5)
        except subprocess.TimeoutExpired:
            writer.kill()
        link.close()
        os.close(master)
        os.close(slave)
    frames, size = map(int, report[0].split())
    return {"frames": frames, "frame_bytes": size, "seconds": seconds_taken, "consumer_cpu_seconds": cpu,
            "frames_per_s": frames / seconds_taken, "mb_per_s": frames * size / seconds_taken / 1e6,
            "decoder": link.receiver.stats.as_dict(), "pool_hit_rate": link.pool_stats.hit_rate,
            "ring": link.ring.stats(), "queue": queue.stats()}


def _ignore(block: SamplesBlock) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m picodaq.corebench", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=200_000)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--samples", type=int, default=73, help="instants per frame")
    p.add_argument("--fmt", choices=sorted(C.FORMAT_NAMES.values()), default="int16")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--pty", type=float, metavar="SECONDS",
                   help="instead, stream ramp frames through a real pty and the Link for SECONDS")
    p.add_argument("--write-fd", type=int, help=argparse.SUPPRESS)  # the --pty writer process
    p.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.write_fd is not None:
        stream = write_frames(args.write_fd, args.seconds)
        print(stream.frames, stream.frame_size, flush=True)
        sys.stdin.read()
        return 0
    if args.pty:
        r = through_pty(args.pty)
        print(f"through a pty: {r['frames']} frames of {r['frame_bytes']} B in {r['seconds']:.1f} s: "
              f"{r['frames_per_s']:.0f} frames/s, {r['mb_per_s']:.1f} MB/s (consumer CPU {r['consumer_cpu_seconds']:.1f} s)")
        print(f"decoder {r['decoder']}, pool hit rate {r['pool_hit_rate']:.5f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(r, f, indent=2)
        return 0
    fmt = {v: k for k, v in C.FORMAT_NAMES.items()}[args.fmt]
    res = compare(args.frames, args.channels, fmt, args.samples)
    s = FrameStream(args.channels, fmt, args.samples, 1)
    print(f"SAMPLES payload {s.payload_size} B ({args.channels} ch x {args.samples} x {args.fmt}), "
          f"frame {s.frame_size} B, {args.frames} frames")
    print(f"{'pipeline':<8} {'frames/s':>10} {'MB/s':>8} {'frames/cpu-s':>13} {'allocs/frame':>13} "
          f"{'bytes alloc/frame':>18}")
    for name, r in res.items():
        a = r["allocations_per_frame"]
        b = r["bytes_allocated_per_frame"]
        print(f"{name:<8} {r['frames_per_s']:>10.0f} {r['mb_per_s']:>8.1f} {r['frames_per_cpu_s'] or 0:>13.0f} "
              f"{'n/a' if a is None else f'{a:.1f}':>13} {'n/a' if b is None else f'{b:.0f}':>18}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
