"""Figure 1: the host pipeline replaying a capture, next to a naive decoder and the CRC floor.

All three read the same capture from memory (ramp SAMPLES frames with
600-byte payloads: 4 channels x 73 int16 instants), in 64 KiB pieces as the
Link hands its ring over, and do the same work per block: two observers (one
on every block, one on every 10th) read the newest instant, and a primary
consumer takes each block from a queue.

- `pipeline`: the product path as `picodaq record` and `replay` run it,
  `Receiver(runs=True).receive` (the decoder reading in place and checking each
  read's run of frames at once, one copy per run into a pooled buffer, pooled
  blocks of whole runs, TapRegistry, BlockQueue drained with poll_each), and
  as `picodaq replay` without a host clock (a capture has no arrival times);
- `naive`: `NaiveDecoder`, the straightforward way: a growing bytearray, a
  bytes slice per frame, struct.unpack per frame, a new numpy array and block
  object per block, a deque;
- `floor`: one `zlib.crc32` pass over each frame, the least any receiver must do.

The replays are single-threaded and do no I/O, so their rates are given per
second of this process's CPU time (`frames_per_cpu_s`, `mb_per_cpu_s`: what
other load on the machine does not change) as well as per wall-clock second
(`frames_per_s`, `mb_per_s`); the ratios use CPU time.

Every replay starts with a warm-up over the capture's first frames (the pools
grow to their working size), which is not timed; the rest is. The observers
keep a checksum of what they saw, so the pipeline and the naive decoder can
be shown to have decoded the same values, not only the same number of frames.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .. import contracts as C
from ..core.blocks import BlockView, FrameSelection, SamplesBlock, decode_block
from ..core.primary import BlockQueue
from ..core.receiver import Receiver
from ..protocol.frames import CRC_RESIDUE as _CRC_RESIDUE

N_CHANNELS, FMT, N_SAMPLES = 4, C.FMT_INT16, 73  # 16 + 4 * 73 * 2 = 600-byte payloads
PIECE = 1 << 16


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
                del buf[: max(0, len(buf) - 1)]
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
            out.append((mtype, seq, frame[C.HEADER_SIZE : -C.CRC_SIZE]))
        return out


class Observer:
    """Adds the newest instant of every frame it is given to a running sum per channel.

    Allocation-light, as an observer on the receiver's thread should be: one
    numpy view and one in-place ufunc per block (an earlier version copied the
    row into a slice and summed a numpy scalar into a Python int: a third of
    the pipeline's time and five allocations per frame went to the benchmark
    itself). The sums double as a checksum: decoders that agree on every
    value agree on them."""

    def __init__(self) -> None:
        self.blocks = 0
        self.sums: np.ndarray | None = None
        self._row = np.zeros(N_CHANNELS, dtype=np.int32)

    def on_block(self, view: BlockView | FrameSelection | SamplesBlock) -> None:
        frames = view.n_frames
        if frames == 1:
            row = view.counts[-1]
        else:  # a run of frames (or a tap's share of one): the newest instant of each, summed
            row = self._row
            np.add.reduce(view.frame_counts[:, -1], 0, None, row)  # type: ignore[call-overload]  # positional: no keyword dict
        if self.sums is None:  # the first block
            self.sums = row.copy()  # int32, wrapping alike on both sides: a checksum, not a statistic
        else:
            np.add(self.sums, row, self.sums)  # positional out: numpy allocates nothing
        self.blocks += frames

    @property
    def checksum(self) -> int:
        return 0 if self.sums is None else int(self.sums.sum())


@dataclass
class Replay:
    """One timed replay: what came out, and how long it took."""

    frames: int  # frames decoded (timed part)
    samples: int  # instants the primary consumer took
    seconds: float  # wall clock
    cpu_seconds: float  # this process's CPU time: the figure to trust on a busy machine
    wire_bytes: int
    checksum: int = 0  # the every-block observer's checksum (0 for the floor)
    blocks_every: int = 0
    blocks_tenth: int = 0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.wire_bytes / self.seconds / 1e6

    @property
    def frames_per_cpu_s(self) -> float:
        return self.frames / max(self.cpu_seconds, 1e-9)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(
            frames_per_s=self.frames_per_s,
            mb_per_s=self.mb_per_s,
            frames_per_cpu_s=self.frames_per_cpu_s,
            mb_per_cpu_s=self.wire_bytes / max(self.cpu_seconds, 1e-9) / 1e6,
        )
        return d


def frame_size() -> int:
    return C.OVERHEAD + 16 + N_CHANNELS * N_SAMPLES * C.BYTES_PER_SAMPLE[FMT]


def _pieces(data: memoryview, piece: int) -> list[memoryview]:
    return [data[i : i + piece] for i in range(0, len(data), piece)]


def _timed(run: Callable[[], None]) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - t, time.process_time() - c


class PipelineReplay:
    """The product path, set up as `picodaq replay` and a live consumer would have it."""

    def __init__(self) -> None:
        self.queue = BlockQueue(maxlen=4096)
        self.rx = Receiver(primary=self.queue, runs=True, clock=False)
        self.every, self.tenth = Observer(), Observer()
        self.rx.taps.add(self.every, name="every")
        self.rx.taps.add(self.tenth, every=10, name="tenth")
        self.samples = 0

    def _consume(self, block: SamplesBlock) -> None:
        self.samples += block.n_samples

    def feed(self, pieces: list[memoryview]) -> None:
        receive, poll_each, consume = self.rx.receive, self.queue.poll_each, self._consume
        for p in pieces:
            receive(p)
            poll_each(1 << 30, consume)


class NaiveReplay:
    """The same work through NaiveDecoder, decode_block and a deque."""

    def __init__(self) -> None:
        self.dec = NaiveDecoder()
        self.queue: deque[SamplesBlock] = deque()
        self.every, self.tenth = Observer(), Observer()
        self.seen = 0
        self.samples = 0

    def feed(self, pieces: list[memoryview]) -> None:
        queue, every, tenth = self.queue, self.every, self.tenth
        for p in pieces:
            for mtype, _seq, payload in self.dec.feed(p):
                if mtype != C.MSG_SAMPLES:
                    continue
                block = decode_block(payload)
                every.on_block(block)
                if self.seen % 10 == 0:
                    tenth.on_block(block)
                self.seen += 1
                queue.append(block)
            while queue:
                self.samples += queue.popleft().n_samples


def _split(data: bytes, warmup_frames: int) -> tuple[list[memoryview], list[memoryview], int]:
    """The capture as warm-up pieces and timed pieces (cut at a frame boundary), and the timed frames."""
    size = frame_size()
    if len(data) % size:
        raise ValueError("the capture is not whole frames of the benchmark's size")
    cut = min(warmup_frames, len(data) // size // 2) * size
    mv = memoryview(data)
    return _pieces(mv[:cut], PIECE), _pieces(mv[cut:], PIECE), (len(data) - cut) // size


def _replay(
    r: PipelineReplay | NaiveReplay, decoded: Callable[[], int], what: str, data: bytes, warmup_frames: int
) -> Replay:
    """Warm r up on the capture's first frames, then time the rest; every frame must be decoded."""
    warm, timed, frames = _split(data, warmup_frames)
    r.feed(warm)
    base = (r.samples, r.every.checksum, r.every.blocks, r.tenth.blocks, decoded())
    seconds, cpu = _timed(lambda: r.feed(timed))
    if decoded() - base[4] != frames:
        raise RuntimeError(f"{what} decoded {decoded() - base[4]} of {frames} frames")
    return Replay(
        frames,
        r.samples - base[0],
        seconds,
        cpu,
        frames * frame_size(),
        r.every.checksum - base[1],
        r.every.blocks - base[2],
        r.tenth.blocks - base[3],
    )


def replay_pipeline(data: bytes, warmup_frames: int = 2000) -> Replay:
    r = PipelineReplay()
    return _replay(r, lambda: r.rx.stats.frames_ok, "the pipeline", data, warmup_frames)


def replay_naive(data: bytes, warmup_frames: int = 2000) -> Replay:
    r = NaiveReplay()
    return _replay(r, lambda: r.dec.frames_ok, "the naive decoder", data, warmup_frames)


def replay_floor(data: bytes, warmup_frames: int = 2000) -> Replay:
    """zlib.crc32 over each timed frame, checking the CRC residue (no decoding, no copies)."""
    _, timed, frames = _split(data, warmup_frames)
    size = frame_size()
    ok = [0]

    def run() -> None:
        crc32 = zlib.crc32
        good = 0
        for p in timed:
            for i in range(0, len(p) - size + 1, size):
                if crc32(p[i : i + size]) == _CRC_RESIDUE:
                    good += 1
        ok[0] = good

    # PIECE is not a multiple of the frame size: the floor walks whole frames of the timed bytes
    timed = [memoryview(b"".join(timed))]
    seconds, cpu = _timed(run)
    if ok[0] != frames:
        raise RuntimeError(f"the CRC floor found {ok[0]} of {frames} frames intact")
    return Replay(frames, 0, seconds, cpu, frames * size)
