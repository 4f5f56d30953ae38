"""Pipeline: Receiver -> Timeline -> outputs, the same for a live link and a replayed capture.

The pipeline registers on the Receiver's public handler lists (block, marker,
hello), places everything with a Timeline and fans the result out to the
outputs. Raw captures get the link bytes through `raw()`: the recorder hangs it
on the Link's raw taps, `replay()` calls it before feeding the same bytes to the
Receiver, so a .tlv replayed gives the outputs of the live recording.

An output that fails (a full disk under one file) is closed and dropped, and the
others go on: one bad disk does not cost the files on the good ones. The failure
is kept and raised by `finish()`, after every other output was finished; only
when no output is left does the failure stop the stream at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.blocks import SamplesBlock
from ..core.receiver import Receiver
from ..errors import PicodaqError, UsageError
from ..protocol.messages import Hello, Marker
from ..protocol.units import ADS1299_DEFAULT_GAIN
from .outputs import Output, OutputError, OutputsFailed
from .timeline import Gap, Layout, MarkerEvent, Timeline

# the counters every --stats-json carries (ARCHITECTURE.md), plus the timeline's
STATS_KEYS = (
    "frames_ok",
    "crc_errors",
    "header_errors",
    "skipped_bytes",
    "seq_lost",
    "duplicates",
    "seq_resets",
    "samples",
    "samples_lost",
    "decode_errors",
)


def pool_hit_rate(receiver: Receiver) -> float:
    """The receiver's buffer-pool hit rate (1.0 before anything was lent)."""
    return receiver.pool_stats.hit_rate


class Pipeline:
    def __init__(
        self,
        receiver: Receiver,
        outputs: list[Output],
        *,
        rate: int | None = None,
        source: int | None = None,
        channels: tuple[int, ...] | None = None,
        gain: int = ADS1299_DEFAULT_GAIN,
        live: bool = False,
        clock_origin: float | None = None,
        limit: int | None = None,
    ) -> None:
        """limit: the instants the recording holds from its first one (`--seconds` x rate): the
        outputs get exactly those (fewer only where instants were lost), a raw capture ends
        with the frame holding the last of them, cut to it, and the counters are those of a
        replay of that capture. `complete` says when it is reached."""
        self.receiver = receiver
        self.outputs = list(outputs)
        self.raw_outputs = [o for o in self.outputs if o.wants_raw]
        self.timeline = Timeline(
            self,
            rate=rate,
            source=source,
            channels=channels,
            gain=gain,
            clock=time.monotonic if live else None,
            wall=time.time if live else None,
            clock_origin=clock_origin,
            limit=limit,
        )
        self._final: dict[str, int] | None = None  # the decoder's counters as of the last instant kept
        self.hello_listeners: list[Callable[[Hello], None]] = []
        self.marker_listeners: list[Callable[[MarkerEvent], None]] = []
        self.gap_listeners: list[Callable[[Gap], None]] = []
        self.failure_listeners: list[Callable[[OutputError], None]] = []
        self.failures: list[OutputError] = []  # outputs dropped on the way, first first
        self.failed: list[dict[str, Any]] = []  # each failed output: path, error, what it holds (stats)
        self.last_marker: MarkerEvent | None = None
        self._attached = False
        self._seq_resets = receiver.stats.seq_resets  # seq resets seen: each may start a new stream

    # -- wiring ------------------------------------------------------------------

    def attach(self, receiver: Receiver | None = None) -> Pipeline:
        """Hang the pipeline on its receiver, or move it to `receiver` (detached from the old one
        first): one recording, with one timeline and the same files, across receivers (the HIL
        suite gives each connection its own, to account for each)."""
        if receiver is not None and receiver is not self.receiver:
            self.detach()
            self.receiver = receiver
        r = self.receiver
        self._seq_resets = r.stats.seq_resets
        r.block_handlers.append(self._on_block)
        r.marker_handlers.append(self._on_marker)
        r.hello_handlers.append(self._on_hello)
        self._attached = True
        return self

    def detach(self) -> None:
        if not self._attached:
            return
        r = self.receiver
        pairs: tuple[tuple[list, Callable], ...] = (
            (r.block_handlers, self._on_block),
            (r.marker_handlers, self._on_marker),
            (r.hello_handlers, self._on_hello),
        )
        for lst, h in pairs:
            if h in lst:
                lst.remove(h)
        self._attached = False

    def limit_to(self, instants: int) -> None:
        """Hold exactly this many instants from the first one (set before any block arrives)."""
        self.timeline.limit = max(1, instants)

    @property
    def complete(self) -> bool:
        """The limit is reached: nothing more goes to the outputs, the recording can stop."""
        return self.timeline.complete

    @property
    def kept(self) -> int:
        """Instants of the latest block that went to the outputs (observers publish as many)."""
        return self.timeline.kept

    def _on_block(self, block: SamplesBlock) -> None:
        tl = self.timeline
        if tl.complete:
            tl.kept = 0
            return
        resets = self.receiver.stats.seq_resets
        if resets != self._seq_resets:
            self._seq_resets = resets
            tl.sender_reset()
        tl.block(block, self.receiver.status)
        if tl.complete:
            self._cut(block, tl.kept)

    def _cut(self, block: SamplesBlock, kept: int) -> None:
        """The limit was reached in block, of which kept instants went out: the recording ends
        with the frame holding the last of them (with none when a gap ended it first)."""
        per = block.n_samples // max(block.n_frames, 1)
        j = (kept - 1) // per if kept else 0  # the frame of the block that ends the recording
        counters = self.receiver.decoder.counters()
        counters["frames_ok"] -= block.n_frames - 1 - j  # a run's frames after it are not in the capture
        counters["samples"] -= block.n_samples - kept
        self._final = counters
        first = (block.first_index + j * per) % (1 << 32)
        for o in self.raw_outputs:
            o.cut((block.seq + j) & 0xFFFFFFFF, first, kept - j * per)

    def _on_marker(self, marker: Marker) -> None:
        if not self.timeline.complete:
            self.timeline.marker(marker)

    def _on_hello(self, hello: Hello) -> None:
        if self.timeline.complete:
            return
        self.timeline.hello(hello)
        for f in self.hello_listeners:
            f(hello)

    def raw(self, chunk: memoryview) -> None:
        if self.timeline.complete:
            return  # what follows the last instant kept is no part of the recording
        for o in self.raw_outputs:
            try:
                o.on_raw(chunk)
            except OutputError as e:
                self._drop(o, e)

    def _drop(self, output: Output, error: OutputError) -> None:
        """output failed: close what can be closed of it, go on with the others (new lists, so a
        loop over the old ones finishes undisturbed); with none left, the failure stops the stream."""
        self.outputs = [o for o in self.outputs if o is not output]
        self.raw_outputs = [o for o in self.raw_outputs if o is not output]
        try:
            output.close()
        except (PicodaqError, OSError):
            pass  # the disk that failed it fails its close too; the first error is the one to report
        self.failures.append(error)
        self.failed.append(self._failed_entry(output, error))
        for f in self.failure_listeners:
            f(error)
        if not self.outputs:
            raise OutputsFailed(self.failed)

    def _failed_entry(self, output: Output, error: OutputError) -> dict[str, Any]:
        """A failed output by its real name, why, and what it holds: the instants placed before the
        failure at most (less where its last writes were lost too), or nothing."""
        path = error.path or output.path
        rows = self.timeline.rows
        lay = self.timeline.layout
        seconds = round(self.timeline.pos / lay.rate, 6) if lay else 0.0
        try:
            empty = path.stat().st_size == 0
        except OSError:
            empty = True
        holds = (
            "it holds nothing"
            if empty or not rows
            else f"it holds at most the first {rows:,} instants, to {seconds:.3f} s"
        )
        return {
            "path": str(path),
            "error": error.reason,
            "instants": 0 if empty else rows,
            "seconds": seconds,
            "holds": holds,
        }

    # -- the Timeline's sink -------------------------------------------------------

    def on_layout(self, layout: Layout) -> None:
        for o in self.outputs:
            try:
                o.on_layout(layout)
            except OutputError as e:
                self._drop(o, e)

    def on_samples(self, pos: int, row: int, block: SamplesBlock) -> None:
        for o in self.outputs:
            try:
                o.on_samples(pos, row, block)
            except OutputError as e:
                self._drop(o, e)

    def on_gap(self, gap: Gap) -> None:
        for o in self.outputs:
            try:
                o.on_gap(gap)
            except OutputError as e:
                self._drop(o, e)
        for f in self.gap_listeners:
            f(gap)

    def on_marker(self, marker: MarkerEvent) -> None:
        self.last_marker = marker
        for o in self.outputs:
            try:
                o.on_marker(marker)
            except OutputError as e:
                self._drop(o, e)
        for f in self.marker_listeners:
            f(marker)

    # -- lifetime --------------------------------------------------------------------

    @property
    def layout(self) -> Layout | None:
        return self.timeline.layout

    def flush(self) -> None:
        for o in self.outputs:
            try:
                o.flush()
            except OutputError as e:
                self._drop(o, e)

    def finish(self, end_time: float | None = None) -> list[str]:
        """Place what is pending and close every output, even if one fails; returns warnings.

        The first failure (an output dropped on the way included) is raised after all outputs
        were given their chance to close."""
        self.detach()
        error: BaseException | None = None
        try:
            self.timeline.finish()
        except PicodaqError as e:
            error = e
        for o in list(self.outputs):
            try:
                o.on_end(end_time)
                o.close()
            except OutputError as e:  # it failed as it was finished: it is a failed output too
                self.outputs = [x for x in self.outputs if x is not o]
                self.raw_outputs = [x for x in self.raw_outputs if x is not o]
                self.failures.append(e)
                self.failed.append(self._failed_entry(o, e))
            except PicodaqError as e:
                error = error or e
        if error is not None:
            raise error
        if self.failed:
            raise OutputsFailed(self.failed)
        return [w for o in self.outputs for w in o.warnings]

    def written(self) -> list[Path]:
        return [p for o in self.outputs for p in o.written()]

    def stats(self) -> dict[str, Any]:
        """Decoder counters (the keys every --stats-json has), the timeline's, and the pool's when offered."""
        d: dict[str, Any] = dict(self._final if self._final is not None else self.receiver.stats.as_dict())
        tc = self.timeline.counts
        lay = self.timeline.layout
        d.update(
            markers=tc.markers,
            gaps=tc.gaps,
            gap_instants=tc.gap_instants,
            stream_restarts=tc.restarts,
            board_restarts=tc.board_restarts,
            rows=self.timeline.rows,
            duration_s=round(self.timeline.pos / lay.rate, 6) if lay else 0.0,
        )
        d["failed_outputs"] = [{k: v for k, v in f.items() if k != "holds"} for f in self.failed]
        d["pool"] = self.receiver.pool_stats.as_dict()  # host-side: differs between record and replay
        return d


# what picodaq's other outputs begin with: given to `replay` by mistake, each is named
_NOT_CAPTURES = (
    (b"\x93NUMPY", "a .npy array"),
    (b"\xffBIOSEMI", "a BDF file"),
    (b"t_s,sample_index,", "a picodaq CSV"),
    (b"kind,row,t_s,", "an events list"),
)


def check_capture(path: Path) -> None:
    """UsageError, before any output is made, when path is plainly not a capture to replay:
    missing, a folder, unreadable, or another of picodaq's outputs. (Other bytes are decoded:
    a damaged capture still gives its counters, an empty one its empty outputs.)"""
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not a .tlv capture")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None
    for magic, what in _NOT_CAPTURES:
        if head.startswith(magic):
            raise UsageError(
                f"{path}: {what}, not a .tlv capture (replay reads what `picodaq record --out NAME.tlv` wrote)"
            )


class NotACapture(PicodaqError):
    """A file replay cannot make anything of: empty, or without one intact frame."""


def probe_capture(path: Path, chunk: int = 1 << 20) -> None:
    """NotACapture, before any output is made, unless path holds at least one intact frame."""
    from ..protocol.decoder import FrameDecoder

    d = FrameDecoder()
    size = 0
    with open(path, "rb") as f:
        while data := f.read(chunk):
            size += len(data)
            d.feed(data)
            if next(iter(d), None) is not None:
                return
    d.feed(b"")
    if next(iter(d), None) is not None:
        return
    if not size:
        raise NotACapture(f"{path}: empty: nothing was captured")
    raise NotACapture(
        f"{path}: no picodaq frame in its {size:,} bytes: not a capture "
        "(`picodaq record --out NAME.tlv` writes one), or damaged beyond reading"
    )


def replay(
    path: Path,
    outputs: list[Output],
    *,
    source: int | None = None,
    channels: tuple[int, ...] | None = None,
    gain: int = ADS1299_DEFAULT_GAIN,
    chunk: int = 1 << 20,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, float], list[str], Layout | None]:
    """Decode a capture through the pipeline into outputs, as fast as it reads.

    progress(bytes_done) after each chunk. Returns (stats, warnings, layout)."""
    # runs: whole reads' frames at once; no host clock: a capture has no arrival times to fit
    receiver = Receiver(runs=True, clock=False)
    pipe = Pipeline(receiver, outputs, source=source, channels=channels, gain=gain).attach()
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None
    ok = False
    try:
        with f:
            buf = bytearray(chunk)
            view = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                part = view[:n]
                pipe.raw(part)
                receiver.receive(part)
                if progress is not None:
                    progress(f.tell())
        receiver.finish()
        tail = receiver.decoder.truncated_tail
        ok = True
    finally:
        try:
            notes = pipe.finish(end_time=os.stat(path).st_mtime)
        except PicodaqError:
            if ok:
                raise
            notes = []
    if tail:
        notes.append(f"{path}: the last {tail:,} bytes are an incomplete frame (the capture was cut short there)")
    return pipe.stats(), notes, pipe.layout
