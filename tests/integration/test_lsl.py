"""LSL: the stream's metadata, the block-to-sample mapping, an outlet read back by
a real inlet on loopback, and `picodaq record --lsl` / `picodaq stream` end to end
from an emulated board."""

from __future__ import annotations

import atexit
import os
import pty
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cli_helpers import assert_one_clear_line, picodaq
from picodaq import contracts as C
from picodaq.core.blocks import SamplesBlock, ramp_counts
from picodaq.core.clock import HostClock
from picodaq.core.receiver import Receiver
from picodaq.core.taps import TapRegistry
from picodaq.errors import UsageError
from picodaq.protocol.messages import Hello
from picodaq.protocol.units import ads1299_uv_per_count
from picodaq.recording.lsl import LslOutlet, SampleMapper, StreamSpec, check_name, load_pylsl, marker_info, sample_info
from picodaq.recording.timeline import MarkerEvent
from waiting import wait_for


def _lsl_config() -> str:
    """liblsl reads its config once per process, from LSLAPICFG: loopback only, and a session of
    this test process's own, so parallel workers (and anything else on the machine) never see its streams.
    Subprocesses inherit the variable and so join the same session."""
    folder = tempfile.mkdtemp(prefix="picodaq-lsl-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / "lsl_api.cfg"
    path.write_text(
        "[ports]\nIPv6 = disable\n[multicast]\nResolveScope = machine\n"
        "MachineAddresses = {127.0.0.1}\nKnownPeers = {127.0.0.1}\n"
        f"[lab]\nSessionID = picodaq-test-{uuid.uuid4().hex}\n[log]\nlevel = -3\n"
    )
    return str(path)


os.environ["LSLAPICFG"] = _lsl_config()  # before liblsl's first use in this process
pylsl = load_pylsl()

P = 2**30 * 1e-6  # the device clock's period in seconds (ticks_us wraps at 2**30 us)
HELLO = Hello((0, 3, 1), 1, C.CONTRACT_HASH, "0123456789abcdef", "rp2", 32, C.SRC_RAMP, 4_000_000)


def unique(prefix: str = "pdq") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def xml_of(info) -> ET.Element:
    return ET.fromstring(info.as_xml())


def resolve(name: str, timeout: float = 60.0):
    found = pylsl.resolve_byprop("name", name, 1, timeout)
    assert found, f"no LSL stream named {name} within {timeout} s"
    return found[0]


# -- metadata ------------------------------------------------------------------------


def test_the_sample_streams_metadata_names_board_firmware_channels_and_units():
    spec = StreamSpec.build(
        "eeg-bench", HELLO, rate=500, channels=(0, 2, 5), source=C.SRC_RAMP, fmt=C.FMT_INT24, gain=24
    )
    x = xml_of(sample_info(spec, pylsl))
    assert x.findtext("name") == "eeg-bench"
    assert x.findtext("type") == "Test"
    assert x.findtext("channel_count") == "3"
    assert float(x.findtext("nominal_srate")) == 500.0
    assert x.findtext("channel_format") == "int32"  # the ramp's counts, exact
    assert x.findtext("source_id") == "picodaq-0123456789abcdef"
    chans = x.findall("desc/channels/channel")
    assert [c.findtext("label") for c in chans] == ["ch0", "ch2", "ch5"]
    assert [c.findtext("unit") for c in chans] == ["counts"] * 3
    acq = x.find("desc/acquisition")
    assert acq.findtext("board_id") == "0123456789abcdef"
    assert acq.findtext("firmware_version") == "0.3.1"
    assert acq.findtext("model") == "rp2"
    assert acq.findtext("contract_hash") == f"0x{C.CONTRACT_HASH:08X}"
    assert acq.findtext("source") == "ramp" and acq.findtext("sample_format") == "int24"
    assert acq.find("gain") is None  # only the ADS1299 has one

    m = xml_of(marker_info(spec, pylsl))
    assert m.findtext("name") == "eeg-bench-markers" and m.findtext("type") == "Markers"
    assert m.findtext("channel_format") == "string" and float(m.findtext("nominal_srate")) == 0.0
    assert m.findtext("desc/acquisition/samples_stream") == "eeg-bench"


def test_ads1299_publishes_float32_microvolts_by_default_and_counts_when_asked():
    spec = StreamSpec.build(
        "exg", HELLO, rate=250, channels=tuple(range(8)), source=C.SRC_ADS1299, fmt=C.FMT_INT24, gain=12
    )
    x = xml_of(sample_info(spec, pylsl))
    assert x.findtext("type") == "EEG" and x.findtext("channel_format") == "float32"
    assert {c.findtext("unit") for c in x.findall("desc/channels/channel")} == {"microvolts"}
    assert {c.findtext("type") for c in x.findall("desc/channels/channel")} == {"EEG"}
    assert x.findtext("desc/acquisition/gain") == "12"
    assert float(x.findtext("desc/acquisition/physical_per_count")) == ads1299_uv_per_count(12)

    counts = StreamSpec.build(
        "exg", HELLO, rate=250, channels=(0,), source=C.SRC_ADS1299, fmt=C.FMT_INT24, gain=12, value_format="int32"
    )
    x = xml_of(sample_info(counts, pylsl))
    assert x.findtext("channel_format") == "int32" and x.findtext("desc/channels/channel/unit") == "counts"
    assert x.findtext("desc/acquisition/physical_unit") == "microvolts"

    ramp_as_float = StreamSpec.build(
        "r", HELLO, rate=250, channels=(0,), source=C.SRC_RAMP, fmt=C.FMT_INT16, gain=24, value_format="float32"
    )
    assert ramp_as_float.channel_format == "float32" and ramp_as_float.unit == "counts"


@pytest.mark.parametrize("name", ["", " lead", "trail ", "it's", 'a"b', "a<b", "tab\there", "x" * 101])
def test_a_stream_name_lsl_queries_cannot_match_is_refused(name):
    with pytest.raises(UsageError):
        check_name(name)


def test_ordinary_stream_names_are_accepted():
    for name in ("picodaq-0123", "EEG bench #2", "lab:rig(1)", "x" * 100):
        assert check_name(name) == name


# -- mapping blocks to samples and timestamps ----------------------------------------


def view(first: int, counts: np.ndarray, host_t0: float, period_ns: int = 1_000_000):
    return SimpleNamespace(
        first_index=first, counts=counts, n_samples=len(counts), period_ns=period_ns, host_t0=host_t0
    )


def test_a_block_maps_to_its_counts_and_the_device_clock_fit_on_lsl_time():
    # a real receiver's path: a block stamped by a HostClock that saw its last instant arrive at host 50.0
    counts = ramp_counts(100, 20, 2, C.FMT_INT16)
    block = SamplesBlock(100, 4_000_000, 1_000_000, 2, C.FMT_INT16, 20, counts)
    clock = HostClock()
    clock.unwrap(4_000_000)
    clock.observe(4_000_000 + 19_000, 50.0)
    block.stamp(clock)
    spec = StreamSpec.build("m", HELLO, rate=1000, channels=(0, 1), source=C.SRC_RAMP, fmt=C.FMT_INT16, gain=24)
    mapper = SampleMapper(spec, offset=0.25)
    values, ts = mapper.map(block.view)
    assert values.dtype == np.int32 and values.flags.c_contiguous and np.array_equal(values, counts)
    assert values is not counts and not np.shares_memory(values, counts)  # a copy: the block goes back to its pool
    assert np.allclose(ts, 50.25 - (19 - np.arange(20)) * 1e-3, rtol=0, atol=1e-9)
    assert mapper.from_arrival == 0


def test_float32_values_are_the_physical_scale():
    spec = StreamSpec.build("m", HELLO, rate=250, channels=(0, 1), source=C.SRC_ADS1299, fmt=C.FMT_INT24, gain=24)
    counts = np.array([[1, -1], [2**23 - 1, -(2**23 - 1)], [0, 1000]], dtype=np.int32)
    values = SampleMapper(spec).values(view(0, counts, 0.0))
    assert values.dtype == np.float32
    assert np.array_equal(values, (counts * ads1299_uv_per_count(24)).astype(np.float32))


def test_timestamps_stay_strictly_increasing_when_the_fit_steps_back():
    spec = StreamSpec.build("m", HELLO, rate=1000, channels=(0,), source=C.SRC_RAMP, fmt=C.FMT_INT16, gain=24)
    mapper = SampleMapper(spec)
    c = np.zeros((10, 1), dtype=np.int32)
    a = mapper.timestamps(view(0, c, 10.0))
    b = mapper.timestamps(view(10, c, 10.0 + 0.010 - 0.003))  # the fit lowered its line by 3 ms
    later = mapper.timestamps(view(20, c, 10.0 + 0.020 - 0.003))
    ts = np.concatenate([a, b, later])
    assert np.all(np.diff(ts) > 0)
    assert np.all(np.diff(b) >= 0.0005 - 1e-12)  # at least half a period apart while catching up
    assert np.allclose(b[-4:], 10.007 + np.arange(6, 10) * 1e-3, rtol=0, atol=1e-12)  # back on the line
    assert np.allclose(later, 10.017 + np.arange(10) * 1e-3, rtol=0, atol=1e-12)


def test_a_block_before_any_clock_fit_is_stamped_from_its_arrival():
    spec = StreamSpec.build("m", HELLO, rate=1000, channels=(0,), source=C.SRC_RAMP, fmt=C.FMT_INT16, gain=24)
    mapper = SampleMapper(spec, offset=1.5, now=lambda: 100.0)
    ts = mapper.timestamps(view(0, np.zeros((5, 1), dtype=np.int32), float("nan")))
    assert np.allclose(ts, 101.5 - (4 - np.arange(5)) * 1e-3, rtol=0, atol=1e-9)
    assert mapper.from_arrival == 1


def test_a_markers_time_is_its_instant_on_the_last_blocks_line_across_the_u32_wrap():
    spec = StreamSpec.build("m", HELLO, rate=1000, channels=(0,), source=C.SRC_RAMP, fmt=C.FMT_INT16, gain=24)
    mapper = SampleMapper(spec)
    assert mapper.marker_time(5, lambda: 42.0) == 42.0  # no block yet: now
    first = 2**32 - 3
    mapper.timestamps(view(first, np.zeros((10, 1), dtype=np.int32), 20.0))
    assert mapper.marker_time(first + 2, lambda: 0.0) == pytest.approx(20.002, abs=1e-12)
    assert mapper.marker_time(4, lambda: 0.0) == pytest.approx(20.007, abs=1e-12)  # past the wrap
    assert mapper.marker_time(first - 10, lambda: 0.0) == pytest.approx(19.990, abs=1e-12)


# -- an outlet read back by an inlet (loopback, in process) ---------------------------


def test_an_inlet_receives_every_block_and_marker_exactly_as_mapped():
    name = unique()
    spec = StreamSpec.build(name, HELLO, rate=1000, channels=(0, 1, 2), source=C.SRC_RAMP, fmt=C.FMT_INT32, gain=24)
    with LslOutlet(spec) as outlet:
        inlet = pylsl.StreamInlet(resolve(name), processing_flags=0)
        markers = pylsl.StreamInlet(resolve(spec.marker_name), processing_flags=0)
        inlet.open_stream(60.0)
        markers.open_stream(60.0)
        assert inlet.info().name() == name and markers.info().type() == "Markers"
        x = xml_of(inlet.info())
        assert [c.findtext("label") for c in x.findall("desc/channels/channel")] == ["ch0", "ch1", "ch2"]
        t0 = pylsl.local_clock()
        sent = []
        for k in range(10):
            counts = ramp_counts(7 + 20 * k, 20, 3, C.FMT_INT32)
            v = view(7 + 20 * k, counts, t0 - outlet.offset + 0.020 * k)
            assert outlet.on_block(v) is True
            sent.append(counts)
        outlet.on_marker(MarkerEvent(pos=0, code=9, sample_index=7 + 20 * 9 + 4))
        got, ts = pull(inlet, 200)
        mk, mts = pull(markers, 1)
    assert np.array_equal(np.array(got, dtype=np.int64), np.concatenate(sent))
    assert np.allclose(ts, t0 + np.arange(200) * 1e-3, rtol=0, atol=1e-9)
    assert mk == [["9"]] and mts[0] == pytest.approx(t0 + (180 + 4) * 1e-3, abs=1e-9)
    assert outlet.stats.blocks == 10 and outlet.stats.samples == 200 and outlet.stats.markers == 1
    assert outlet.stats.refused == outlet.stats.push_errors == 0


def pull(inlet, n: int, timeout: float = 60.0) -> tuple[list, np.ndarray]:
    got: list = []
    ts: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        s, t = inlet.pull_chunk(timeout=0.2)
        got += s
        ts += t
    assert len(got) >= n, f"{len(got)} of {n} samples"
    return got, np.array(ts)


class StuckOutlet:
    """A pylsl StreamOutlet whose pushes hang until released, or raise."""

    gate = threading.Event()
    fail = False

    def __init__(self, info, chunk_size=0, max_buffered=360) -> None:
        self.pushes = 0

    def push_chunk(self, values, timestamps) -> None:
        if StuckOutlet.fail:
            raise RuntimeError("the network went away")
        StuckOutlet.gate.wait(20)
        self.pushes += 1

    push_sample = push_chunk


def fake_pylsl(**kw):
    names = ("local_clock", "StreamInfo", "cf_int32", "cf_float32", "cf_string", "IRREGULAR_RATE")
    return SimpleNamespace(**{n: getattr(pylsl, n) for n in names}, StreamOutlet=StuckOutlet, **kw)


def test_a_stuck_push_never_holds_up_the_receiver_the_tap_counts_what_it_refused():
    spec = StreamSpec.build(unique(), HELLO, rate=1000, channels=(0,), source=C.SRC_RAMP, fmt=C.FMT_INT16, gain=24)
    StuckOutlet.gate.clear()
    StuckOutlet.fail = False
    outlet = LslOutlet(spec, pylsl=fake_pylsl(), queue_blocks=8)
    taps = TapRegistry()
    tap = taps.add(outlet, name="lsl")
    try:
        c = np.zeros((20, 1), dtype=np.int32)
        taps.deliver(view(0, c, 1.0))
        wait_for(outlet._q.empty, 60, what="the worker to take the first block")  # and hang in its push
        for k in range(1, 100):  # with a blocking observer this loop would hang (pytest-timeout)
            taps.deliver(view(20 * k, c, 1.0 + 0.02 * k))
        outlet.on_marker(MarkerEvent(0, 1, 5))
        # the worker holds one block in its stuck push, the queue holds 8: the rest were refused
        assert tap.delivered + tap.dropped == 100 and tap.failures == 0
        assert tap.delivered == 9 and outlet.stats.refused == tap.dropped + 1  # + the marker
    finally:
        StuckOutlet.gate.set()
        outlet.close()
    assert outlet.stats.blocks == tap.delivered and outlet.stats.samples == 20 * tap.delivered


def test_a_failing_push_is_counted_and_the_stream_goes_on():
    spec = StreamSpec.build(unique(), HELLO, rate=1000, channels=(0,), source=C.SRC_RAMP, fmt=C.FMT_INT16, gain=24)
    StuckOutlet.fail = True
    try:
        outlet = LslOutlet(spec, pylsl=fake_pylsl())
        for k in range(5):
            assert outlet.on_block(view(20 * k, np.zeros((20, 1), dtype=np.int32), 1.0 + 0.02 * k)) is True
        outlet.close()
    finally:
        StuckOutlet.fail = False
    assert outlet.stats.push_errors == 5 and outlet.stats.blocks == 0


def test_without_liblsl_lsl_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pylsl", None)  # import fails as when pylsl is missing
    with pytest.raises(UsageError, match="LSL is not available"):
        load_pylsl()


# -- end to end: picodaq record --lsl / picodaq stream -------------------------------


def device_times(tlv: Path) -> tuple[dict[int, float], list, set[int]]:
    """Device clock (s, unwrapped) of every instant in a capture by sample index, its MARKERs, and
    the index each block starts at."""
    rx = Receiver()
    times: dict[int, float] = {}
    starts: set[int] = set()

    def on_block(b) -> None:
        t = b.device_t0_us * 1e-6 + np.arange(b.n_samples) * (b.period_ns * 1e-9)
        times.update(zip(range(b.first_index, b.first_index + b.n_samples), t.tolist()))
        starts.add(b.first_index)

    rx.block_handlers.append(on_block)
    rx.receive(tlv.read_bytes())
    rx.finish()
    return times, list(rx.markers), starts


def test_record_lsl_delivers_the_ramp_bit_exactly_on_the_device_clock_with_markers(make_board, tmp_path):
    board = make_board()
    name = unique()
    tlv = tmp_path / "rec.tlv"
    master, slave = pty.openpty()  # --mark-on-key reads a terminal
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "picodaq.cli.main",
            "record",
            "--port",
            board.port,
            "--seconds",
            "5",
            "--rate",
            "1000",
            "--channels",
            "4",
            "--fmt",
            "int32",
            "--out",
            str(tlv),
            "--lsl",
            name,
            "--mark-on-key",
        ],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(slave)
    try:
        inlet = pylsl.StreamInlet(resolve(name), processing_flags=0)
        minlet = pylsl.StreamInlet(resolve(name + "-markers"), processing_flags=0)
        inlet.open_stream(60.0)
        minlet.open_stream(60.0)
        # one machine, one clock: the stamps as sent are the inlet's own time (local_clock is
        # CLOCK_MONOTONIC in every process), so they compare directly with no correction
        before = time.monotonic()
        now = pylsl.local_clock()
        assert before <= now <= time.monotonic()
        samples: list = []
        stamps: list = []
        marks: list = []
        mstamps: list = []
        sent = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            s, t = inlet.pull_chunk(timeout=0.2)
            samples += s
            stamps += t
            m, mt = minlet.pull_chunk(timeout=0.0)
            marks += m
            mstamps += mt
            if not sent and len(samples) > 500:
                os.write(master, b"7")
                sent = True
            if proc.poll() is not None and not s and not m:
                break
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert sent and marks == [["7"]], err

    data = np.array(samples, dtype=np.int64)
    ts = np.array(stamps)
    assert len(data) > 500  # the marker key was pressed after 500
    first = int(np.flatnonzero(ramp_counts(0, 20_000, 1, C.FMT_INT32)[:, 0] == data[0, 0])[0])
    assert np.array_equal(data, ramp_counts(first, len(data), 4, C.FMT_INT32))  # contiguous and bit-exact
    assert np.all(np.diff(ts) > 0)

    # the device clock, from the capture recorded alongside: each stamp is its instant's device time
    # plus an offset (the HostClock's line onto local_clock) that moves only when the line is refit,
    # never with an instant's arrival: the stamps carry no USB or scheduling jitter, however loaded
    # the machine (how far the line sits from the arrivals is the fit's business, tests/unit)
    times, device_markers, starts = device_times(tlv)
    # from wherever the inlet joined (a loaded machine may take seconds), every instant to the last one
    # the board sent: the outlet kept up and lost nothing
    assert first + len(data) == max(times) + 1 and first >= 0
    dev = np.array([times[first + i] for i in range(len(data))])
    res = ts - dev
    # within a block every instant is one period after the last: the offset moves only between
    # blocks (or while catching up after the line was lowered: then by half a period a step, rising)
    bs = np.array([i for i in range(len(data)) if first + i in starts])
    inside = np.setdiff1d(np.flatnonzero(np.abs(np.diff(res)) > 1e-7) + 1, bs)
    assert np.all(np.diff(ts)[inside - 1] >= 0.0005 - 1e-9), inside
    # between blocks it follows one straight line per fit (the fitted rate against the nominal one)
    # and breaks only where the line was refit: once per 100 ms of device time at most (and per
    # block while the first 100 ms bucket fills), far fewer times than blocks arrive; stamps made
    # from arrival times would break at every block
    r, d = res[bs], dev[bs]
    predicted = r[1:-1] + (r[1:-1] - r[:-2]) / (d[1:-1] - d[:-2]) * (d[2:] - d[1:-1])
    breaks = int(np.count_nonzero(np.abs(r[2:] - predicted) > 1e-7))
    assert len(bs) > 100 and breaks <= (d[-1] - d[0]) / 0.1 + 2 * 16, (breaks, len(bs))
    offset = float(np.median(res))
    # the emulated board's ticks_us is CLOCK_MONOTONIC (mod 2**30 us), as is local_clock(): the offset
    # is the link's least delay, past a whole number of tick periods (a hang guard's worth of slack)
    assert -0.002 < (offset + P / 2) % P - P / 2 < 1.0, offset
    # the MARKER's stamp is its instant's on the line of the block mapped before it: exactly one of
    # the offsets the samples carry
    assert [m.code for m in device_markers] == [7]
    idx = device_markers[0].sample_index
    assert np.min(np.abs(res - (mstamps[0] - times[idx]))) < 1e-6


def streamed(cwd: Path, args: list[str], names: list[str]) -> tuple[list, list[np.ndarray]]:
    """`picodaq stream ARGS --seconds 3 --quiet` in a subprocess: each named stream's metadata and
    first 500 samples, read by an inlet while it runs; the command must end cleanly and silently."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "picodaq.cli.main", "stream", *args, "--seconds", "3", "--quiet"],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        inlets = [pylsl.StreamInlet(resolve(n), processing_flags=0) for n in names]
        infos = [xml_of(inlet.info(60.0)) for inlet in inlets]
        data = [np.array(pull(inlet, 500)[0], dtype=np.int64) for inlet in inlets]
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and err == "", err
    return infos, data


def assert_ramp_run(data: np.ndarray) -> None:
    """data is a contiguous stretch of the int16 ramp (wherever the inlet joined)."""
    first = int(np.flatnonzero(ramp_counts(0, 20_000, 1, C.FMT_INT16)[:, 0] == data[0, 0])[0])
    assert np.array_equal(data, ramp_counts(first, len(data), data.shape[1], C.FMT_INT16))


def test_stream_publishes_without_files_and_quietly_under_the_boards_name(make_board, tmp_path):
    board = make_board()
    name = f"picodaq-{board.board_id}"  # the default name (board ids are random per emulated board)
    (info,), (data,) = streamed(tmp_path, ["--port", board.port, "--channels", "0,3"], [name])
    assert list(tmp_path.iterdir()) == []  # publishes only
    assert info.findtext("desc/acquisition/board_id") == board.board_id
    assert [c.findtext("label") for c in info.findall("desc/channels/channel")] == ["ch0", "ch3"]
    assert_ramp_run(data)  # the ramp counts stream slots


def test_several_boards_each_publish_their_own_stream(make_board, tmp_path):
    boards = [make_board(), make_board()]
    name = unique("two")
    infos, data = streamed(
        tmp_path,
        ["--port", boards[0].port, "--port", boards[1].port, "--channels", "2", "--name", name],
        [f"{name}-board1", f"{name}-board2"],
    )
    assert [i.findtext("desc/acquisition/board_id") for i in infos] == [b.board_id for b in boards]
    for d in data:  # each stream is its own board's ramp
        assert_ramp_run(d)


def test_a_bad_lsl_name_is_one_line_before_the_board_is_touched(tmp_path):
    r = picodaq("record", "--port", str(tmp_path / "no-such-port"), "--lsl", "it's", "--seconds", "1")
    assert_one_clear_line(r, "LSL stream name", "it's")
    r = picodaq("stream", "--port", str(tmp_path / "no-such-port"), "--name", " x")
    assert_one_clear_line(r, "LSL stream name")


def test_record_needs_files_or_lsl(tmp_path):
    r = picodaq("record", "--port", str(tmp_path / "no-such-port"), "--seconds", "1")
    assert_one_clear_line(r, "--out", "--lsl")


def test_a_pylsl_without_its_library_is_one_line(tmp_path):
    # the error pylsl raises on import when liblsl cannot be found
    fake = tmp_path / "site" / "pylsl"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        'raise RuntimeError("LSL binary library file was not found. Please make '
        'sure that the binary file can be found")\n'
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(
        [sys.executable, "-m", "picodaq.cli.main", "stream", "--port", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert_one_clear_line(r, "LSL is not available", "library file was not found")


def test_liblsl_is_kept_quiet_unless_configured(monkeypatch, tmp_path):
    """Without a configuration liblsl writes two INFO lines on stderr (under --quiet too): picodaq
    gives it one that logs warnings only, and leaves a user's LSLAPICFG alone."""
    import tempfile

    from picodaq.recording import lsl

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(lsl, "_LSL_CONFIGS", (str(tmp_path / "nowhere.cfg"),))
    monkeypatch.setenv("LSLAPICFG", "/users/own.cfg")
    lsl._quiet_liblsl()
    assert os.environ["LSLAPICFG"] == "/users/own.cfg"
    monkeypatch.delenv("LSLAPICFG")
    lsl._quiet_liblsl()
    cfg = os.environ["LSLAPICFG"]
    assert os.path.dirname(cfg) == str(tmp_path) and "[log]\nlevel = -2" in open(cfg).read()


def test_stream_seconds_publishes_exactly_seconds_times_rate_instants(make_board, tmp_path):
    """`stream --seconds 15` published 15,020 instants (what was in flight when the host's timer
    ran out); it publishes N x rate, the recording's own count."""
    board = make_board()
    r = picodaq("stream", "--port", board.port, "--seconds", "2", "--rate", "500", "--name", unique("exact"))
    assert r.returncode == 0, r.stderr
    assert "lsl      1,000 instants in " in r.stderr, r.stderr
    assert "received 1 channel at 500 Hz (ramp, int16): 1,000 instants" in r.stderr


def test_quiet_means_silent_with_lsl_and_no_lsl_configuration(make_board, tmp_path):
    """liblsl writes INFO lines on stderr unless configured; with no LSLAPICFG, no lsl_api.cfg in the
    working folder or the home folder, `--quiet` must still print nothing."""
    board = make_board()
    env = {k: v for k, v in os.environ.items() if k != "LSLAPICFG"}
    env.update(HOME=str(tmp_path), TMPDIR=str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-m", "picodaq.cli.main", "stream", "--port", board.port, "--seconds", "1", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r.stderr
