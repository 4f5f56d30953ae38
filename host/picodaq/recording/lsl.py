"""LSL (Lab Streaming Layer) outlets: a recording's samples and markers, published on the network.

Two layers:

- sans-I/O: `StreamSpec` says what the stream is (name, rate, channels, value
  format, units, board) and writes it as XDF-style metadata; `SampleMapper`
  turns one block view into (values, timestamps) and a MARKER into a timestamp.
- I/O: `LslOutlet` owns the pylsl outlets (samples, and a string marker stream)
  and a worker thread. It is an observer: `on_block` is a TapRegistry observer,
  `on_marker` a Pipeline marker listener; both copy what they need into a
  bounded queue and return, and the worker pushes. A slow or failing push never
  holds up the receiver; a full queue refuses the block (the tap counts it
  dropped) and a push that raises is counted and logged once.

Values: counts as int32 (exact; the default for the synthetic sources, whose
unit is one count), or float32 in the source's physical unit (the default for
the ADS1299, microvolts, and the ADC, volts), per units.py.

Timestamps: the receiver's HostClock fits the device's tick stamps to the
host's monotonic clock (time.monotonic, CLOCK_MONOTONIC on Linux), so a block's
`host_times()` are the device clock's instants on the host's time base, free of
the link's read jitter. LSL stamps with `local_clock()`, which liblsl takes from
std::chrono::steady_clock: CLOCK_MONOTONIC on Linux as well. The two are not
assumed equal: their offset is measured once when the outlet opens (on Linux it
is below a microsecond) and added. Before the clock fit has seen a block (the
stream's first read, and after a board restart) a block is stamped from its
arrival: its last instant is taken to have arrived just now. The stamps are
kept strictly increasing: when the fit lowers its line (it found a less
delayed arrival), the next instants are pushed at least half a period apart
until they are back on the line, rather than stepping back in time.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import contracts as C
from ..errors import UsageError
from ..protocol.messages import Hello
from ..protocol.units import COUNTS, Scale, scale_for
from .timeline import MarkerEvent

log = logging.getLogger("picodaq.recording.lsl")

VALUE_FORMATS = ("auto", "int32", "float32")
# XDF's meta-data conventions spell units out
UNIT_NAMES = {"uV": "microvolts", "V": "volts", COUNTS: "counts"}
STREAM_TYPES = {C.SRC_ADS1299: "EEG", C.SRC_ADC: "Analog"}  # the synthetic sources: "Test"
CHANNEL_TYPES = {C.SRC_ADS1299: "EEG", C.SRC_ADC: "Analog"}
NAME_MAX = 100
_NAME_FORBIDDEN = set("<>&\"'\\")  # resolvers query with XPath predicates: name='...'
QUEUE_BLOCKS = 512  # blocks waiting for the worker (about 10 s at the default 20 ms frames)
_U32 = 1 << 32
_HALF = 1 << 31


def check_name(name: str) -> str:
    """An LSL stream name picodaq will publish under, or UsageError with why not."""
    if not name or name != name.strip():
        raise UsageError(f"LSL stream name {name!r}: must be non-empty, without leading or trailing spaces")
    if len(name) > NAME_MAX:
        raise UsageError(f"LSL stream name is {len(name)} characters long; at most {NAME_MAX}")
    bad = sorted({ch for ch in name if ch in _NAME_FORBIDDEN or not ch.isprintable()})
    if bad:
        raise UsageError(
            f"LSL stream name {name!r} has characters that LSL queries cannot match: "
            + " ".join(repr(ch) for ch in bad)
        )
    return name


def default_name(hello: Hello) -> str:
    return f"picodaq-{hello.board_id}"


@dataclass(frozen=True)
class StreamSpec:
    """What one LSL sample stream is: everything its StreamInfo says."""

    name: str
    rate: int
    channels: tuple[int, ...]  # the board's channel numbers
    source: int
    fmt: int  # the wire format (SAMPLES), not the LSL one
    scale: Scale
    channel_format: str  # "int32" (counts) or "float32" (physical unit)
    board_id: str
    platform: str
    firmware_version: str
    protocol_version: int
    contract_hash: int
    gain: int | None = None  # the ADS1299's PGA gain, when that is the source
    labels: tuple[str, ...] = field(default=())

    @classmethod
    def build(
        cls,
        name: str,
        hello: Hello,
        *,
        rate: int,
        channels: tuple[int, ...],
        source: int,
        fmt: int,
        gain: int,
        value_format: str = "auto",
    ) -> StreamSpec:
        if value_format not in VALUE_FORMATS:
            raise UsageError(f"LSL value format must be one of {', '.join(VALUE_FORMATS)}, got {value_format!r}")
        scale = scale_for(source, fmt, gain)
        if value_format == "auto":
            value_format = "int32" if scale.dimension == COUNTS else "float32"
        return cls(
            check_name(name),
            rate,
            tuple(channels),
            source,
            fmt,
            scale,
            value_format,
            hello.board_id,
            hello.platform,
            ".".join(map(str, hello.firmware_version)),
            hello.protocol_version,
            hello.contract_hash,
            gain if source == C.SRC_ADS1299 else None,
            tuple(f"ch{c}" for c in channels),
        )

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def source_name(self) -> str:
        return C.SOURCE_NAMES.get(self.source, str(self.source))

    @property
    def unit(self) -> str:
        """The unit of the values as pushed."""
        return (
            UNIT_NAMES[COUNTS]
            if self.channel_format == "int32"
            else UNIT_NAMES.get(self.scale.dimension, self.scale.dimension)
        )

    @property
    def stream_type(self) -> str:
        return STREAM_TYPES.get(self.source, "Test")

    @property
    def source_id(self) -> str:
        """Stable across restarts of the same board, so LSL recorders pick the stream up again."""
        return f"picodaq-{self.board_id}"

    @property
    def marker_name(self) -> str:
        return f"{self.name}-markers"

    def acquisition(self) -> dict[str, str]:
        """The <acquisition> block of the stream's desc."""
        d = {
            "manufacturer": "picodaq",
            "model": self.platform,
            "board_id": self.board_id,
            "firmware_version": self.firmware_version,
            "protocol_version": str(self.protocol_version),
            "contract_hash": f"0x{self.contract_hash:08X}",
            "source": self.source_name,
            "sample_format": C.FORMAT_NAMES.get(self.fmt, str(self.fmt)),
            "physical_unit": UNIT_NAMES.get(self.scale.dimension, self.scale.dimension),
            "physical_per_count": repr(self.scale.per_count),
            "transducer": self.scale.transducer,
        }
        if self.gain is not None:
            d["gain"] = str(self.gain)
        return d


def sample_info(spec: StreamSpec, pylsl: Any) -> Any:
    """The pylsl StreamInfo of the sample stream, with its XDF-style desc."""
    fmt = pylsl.cf_int32 if spec.channel_format == "int32" else pylsl.cf_float32
    info = pylsl.StreamInfo(spec.name, spec.stream_type, spec.n_channels, float(spec.rate), fmt, spec.source_id)
    desc = info.desc()
    chans = desc.append_child("channels")
    ctype = CHANNEL_TYPES.get(spec.source, spec.source_name)
    for label in spec.labels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", spec.unit)
        ch.append_child_value("type", ctype)
    acq = desc.append_child("acquisition")
    for k, v in spec.acquisition().items():
        acq.append_child_value(k, v)
    return info


def marker_info(spec: StreamSpec, pylsl: Any) -> Any:
    """The marker stream: one string channel at an irregular rate, each value a MARKER's code."""
    info = pylsl.StreamInfo(
        spec.marker_name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, f"{spec.source_id}-markers"
    )
    desc = info.desc()
    ch = desc.append_child("channels").append_child("channel")
    ch.append_child_value("label", "marker")
    ch.append_child_value("type", "Marker")
    acq = desc.append_child("acquisition")
    acq.append_child_value("manufacturer", "picodaq")
    acq.append_child_value("board_id", spec.board_id)
    acq.append_child_value("samples_stream", spec.name)
    return info


def measure_offset(
    lsl_clock: Callable[[], float], host_clock: Callable[[], float] = time.monotonic, tries: int = 7
) -> float:
    """lsl_clock() - host_clock(), from the tightest of a few bracketed readings."""
    best = (math.inf, 0.0)
    for _ in range(tries):
        a = host_clock()
        t = lsl_clock()
        b = host_clock()
        best = min(best, (b - a, t - (a + b) / 2))
    return best[1]


class SampleMapper:
    """Block views to (values, LSL timestamps); MARKERs to timestamps. No I/O.

    offset: LSL's local_clock() minus the receiver's host clock (measure_offset);
    now: the receiver's host clock, for blocks that arrive before the clock fit has any."""

    def __init__(self, spec: StreamSpec, offset: float = 0.0, now: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.offset = offset
        self.now = now
        self.float32 = spec.channel_format == "float32"
        self.per_count = np.float64(spec.scale.per_count)
        self.last = -math.inf  # the latest timestamp given
        self.from_arrival = 0  # blocks stamped from their arrival (no clock fit yet)
        # the last block's first instant: markers are placed against it
        self._anchor_index: int | None = None
        self._anchor_t = 0.0
        self._anchor_period = 1.0 / spec.rate

    def values(self, view: Any) -> np.ndarray:
        """A C-contiguous copy of the block's data as the stream carries it (instants x channels)."""
        counts = view.counts
        if self.float32:
            return (counts * self.per_count).astype(np.float32)
        return np.array(counts, dtype=np.int32, order="C")

    def timestamps(self, view: Any) -> np.ndarray:
        n = view.n_samples
        period = view.period_ns * 1e-9
        t0 = view.host_t0
        if t0 != t0:  # NaN: the clock fit has no observation yet; the last instant arrived just now
            t0 = self.now() - (n - 1) * period
            self.from_arrival += 1
        step = np.arange(n, dtype=np.float64)
        ts = (t0 + self.offset) + step * period
        if n and ts[0] <= self.last:
            ts = np.maximum(ts, self.last + (step + 1) * (period / 2))
        if n:
            self.last = float(ts[-1])
            self._anchor_index = view.first_index
            self._anchor_t = float(ts[0])
            self._anchor_period = period
        return ts

    def map(self, view: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.values(view), self.timestamps(view)

    def marker_time(self, sample_index: int, lsl_now: Callable[[], float]) -> float:
        """The timestamp of the instant a MARKER names (its index against the last block's)."""
        if self._anchor_index is None:
            return lsl_now()
        d = (sample_index - self._anchor_index) % _U32
        if d >= _HALF:
            d -= _U32
        return self._anchor_t + d * self._anchor_period


# where liblsl looks for its configuration when LSLAPICFG is not set
_LSL_CONFIGS = ("lsl_api.cfg", "~/lsl_api/lsl_api.cfg", "/etc/lsl_api/lsl_api.cfg")


def _quiet_liblsl() -> None:
    """Without any configuration liblsl logs two INFO lines on stderr (even under --quiet); give
    it one that logs warnings and errors only. A user's own configuration is left alone."""
    if os.environ.get("LSLAPICFG") or any(os.path.exists(os.path.expanduser(p)) for p in _LSL_CONFIGS):
        return
    path = os.path.join(tempfile.gettempdir(), f"picodaq-{os.getuid()}-lsl_api.cfg")
    try:
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "w") as f:
                f.write("[log]\nlevel = -2\n")
            os.replace(tmp, path)
    except OSError:
        return  # then liblsl says its two lines; nothing worse
    os.environ["LSLAPICFG"] = path


def load_pylsl() -> Any:
    """pylsl, or a UsageError saying why LSL cannot be used here."""
    _quiet_liblsl()
    try:
        import pylsl

        pylsl.library_version()
    except (ImportError, OSError, RuntimeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(
            f"LSL is not available: {first} (pip install pylsl; it bundles liblsl on "
            "Linux x86_64, elsewhere install liblsl)"
        ) from None
    return pylsl


@dataclass
class OutletStats:
    blocks: int = 0  # pushed
    samples: int = 0
    markers: int = 0
    refused: int = 0  # blocks and markers refused because the queue was full
    push_errors: int = 0
    from_arrival: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class LslOutlet:
    """An LSL sample outlet and marker outlet fed from the receiver, pushed by a worker thread.

    Register with `receiver.taps.add(outlet, name="lsl")` and
    `pipeline.marker_listeners.append(outlet.on_marker)` (see `attach`); `close()` ends it."""

    def __init__(
        self, spec: StreamSpec, *, pylsl: Any | None = None, queue_blocks: int = QUEUE_BLOCKS, max_buffered_s: int = 60
    ) -> None:
        self.spec = spec
        lsl = pylsl or load_pylsl()
        self._lsl = lsl
        self.offset = measure_offset(lsl.local_clock)
        self.mapper = SampleMapper(spec, self.offset)
        self.info = sample_info(spec, lsl)
        self.outlet = lsl.StreamOutlet(self.info, 0, max_buffered_s)
        self.marker_outlet = lsl.StreamOutlet(marker_info(spec, lsl), 0, max_buffered_s)
        self.stats = OutletStats()
        self._q: queue.Queue = queue.Queue(maxsize=queue_blocks)
        self._logged = False
        self._closed = False
        self._kept: Callable[[], int] = lambda: 1 << 62  # instants of each block to publish: all
        self._worker = threading.Thread(target=self._run, name=f"lsl-{spec.name}", daemon=True)
        self._worker.start()

    # -- the receiver's thread: copy and return ------------------------------------

    def on_block(self, view: Any) -> bool:
        """A TapRegistry observer: queue this block's values and timestamps; False if the queue is full."""
        values, ts = self.mapper.map(view)
        kept = self._kept()
        if kept < len(values):  # a recording's last block, cut at its last instant (--seconds)
            if not kept:
                return True
            values, ts = values[:kept], ts[:kept]
        try:
            self._q.put_nowait((values, ts))
        except queue.Full:
            self.stats.refused += 1
            return False
        return True

    def on_marker(self, marker: MarkerEvent) -> None:
        """A Pipeline marker listener; it never raises (the timeline calls it unguarded)."""
        try:
            t = self.mapper.marker_time(marker.sample_index, self._lsl.local_clock)
            self._q.put_nowait((str(marker.code), t))
        except queue.Full:
            self.stats.refused += 1
        except Exception as e:  # noqa: BLE001 -- an observer must not end the recording
            self._failed(e)

    def attach(self, receiver: Any, pipeline: Any) -> Any:
        """Hang this outlet on a receiver's taps and a pipeline's markers; returns the Tap."""
        pipeline.marker_listeners.append(self.on_marker)
        self._kept = lambda: pipeline.kept  # the block the pipeline just placed: as many instants
        return receiver.taps.add(self, name="lsl")

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        q = self._q
        while True:
            item = q.get()
            if item is None:
                return
            try:
                if isinstance(item[0], str):
                    self.marker_outlet.push_sample([item[0]], item[1])
                    self.stats.markers += 1
                else:
                    values, ts = item
                    self.outlet.push_chunk(values, ts.tolist())
                    self.stats.blocks += 1
                    self.stats.samples += len(values)
            except Exception as e:  # noqa: BLE001 -- isolated: the stream goes on
                self._failed(e)

    def _failed(self, e: Exception) -> None:
        self.stats.push_errors += 1
        if not self._logged:
            self._logged = True
            log.warning("LSL push failed: %s: %s (logged once; counted in push_errors)", type(e).__name__, e)

    def have_consumers(self) -> bool:
        return bool(self.outlet.have_consumers())

    def close(self, timeout: float = 5.0) -> None:
        """Push what is queued (for up to timeout seconds), then take the streams off the network."""
        if self._closed:
            return
        self._closed = True
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._worker.join(timeout)
        self.stats.from_arrival = self.mapper.from_arrival
        # liblsl unregisters a stream when its outlet is destroyed
        self.outlet = self.marker_outlet = None

    def __enter__(self) -> LslOutlet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
