"""Every output format from captures built byte by byte (PROTOCOL.md): gaps,
board markers, resets, physical units, and the edges of BDF."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from cli_helpers import Capture, assert_one_clear_line, events, physical_to_counts, read_bdf
from picodaq import contracts as C
from picodaq.cli.main import main
from picodaq.core.blocks import ramp_counts
from picodaq.protocol.units import ADS1299_GAINS, Scale, _fit8, ads1299_uv_per_count, scale_for

I16 = C.FMT_INT16


def ramp_blocks(
    cap: Capture, first: int, n: int, nch: int = 2, per: int = 10, t0_us: int | None = None, fmt: int = I16
) -> Capture:
    """n instants of the ramp from index first, in blocks of per, at 1 kHz."""
    base_t = first * 1000 if t0_us is None else t0_us
    for k in range(0, n, per):
        cap.samples(first + k, base_t + k * 1000, ramp_counts(first + k, per, nch, fmt), fmt)
    return cap


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def eventful_capture(tmp_path):
    """A stream with a board marker, 40 lost instants, then a board that rebooted and a marker in the new stream."""
    cap = Capture().hello(C.SRC_RAMP, seq=5).status(1000)
    ramp_blocks(cap, 0, 50)
    cap.marker(35, 7)  # the board's marker input, not a MARK from the host
    ramp_blocks(cap, 50, 50)
    ramp_blocks(cap, 140, 60)  # 100..139 never arrived
    cap.hello(C.SRC_RAMP, seq=0).status(400, C.STATE_IDLE)  # a reset: boot HELLO, uptime from zero
    cap.marker(20, 2)  # sent after the reset: index 20 of the new stream
    ramp_blocks(cap, 0, 50, t0_us=7_000_000)
    return cap.write(tmp_path / "cap.tlv")


def test_replay_puts_gaps_and_markers_in_every_format(eventful_capture, tmp_path, capsys):
    d = tmp_path
    code, out, err = run(
        capsys,
        "replay",
        str(eventful_capture),
        "--out",
        str(d / "r.npy"),
        "--out",
        str(d / "r.csv"),
        "--out",
        str(d / "r.bdf"),
        "--out",
        str(d / "copy.tlv"),
        "--stats-json",
        "-",
    )
    assert code == 0, err
    stats = json.loads(out)
    assert (stats["samples"], stats["samples_lost"], stats["markers"], stats["gaps"], stats["board_restarts"]) == (
        210,
        40,
        2,
        2,
        1,
    )
    assert (d / "copy.tlv").read_bytes() == eventful_capture.read_bytes()

    # .npy: received instants only, int32 counts
    a = np.load(d / "r.npy")
    assert a.dtype == np.int32 and a.shape == (210, 2)
    assert np.array_equal(a[:100], ramp_counts(0, 100, 2, I16))
    assert np.array_equal(a[100:160], ramp_counts(140, 60, 2, I16))
    assert np.array_equal(a[160:], ramp_counts(0, 50, 2, I16))

    # its events list: where the rows sit in time, why the gaps are there, where the markers are
    ev = [
        (e["kind"], int(e["row"]), float(e["t_s"]), e["code"], e["duration_s"], e["detail"])
        for e in events(d / "r.events.csv")
    ]
    assert ev[0][:3] == ("segment", 0, 0.0)
    assert ("marker", 35, 0.035, "7", "", "") in ev
    assert ("gap", 100, 0.1, "", "0.04", "samples lost; timing: exact") in ev
    assert ("gap", 160, 0.2, "", "", "board restarted; timing: unknown") in ev
    assert ("segment", 160, 0.2, "", "", "a new stream starts") in ev
    assert ("marker", 180, 0.22, "2", "", "") in ev

    # .csv: grid time, device index, marker code, counts
    rows = np.genfromtxt(d / "r.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    assert rows.shape == (210,)
    assert np.allclose(rows["t_s"][[0, 99, 100, 159, 160]], [0.0, 0.099, 0.14, 0.199, 0.2])
    assert list(rows["sample_index"][[99, 100, 160]]) == [99, 140, 0]
    marked = {i: int(rows["marker"][i]) for i in range(210) if rows["marker"][i] != -1}
    assert marked == {35: 7, 180: 2}
    assert np.array_equal(np.column_stack([rows["ch0"], rows["ch1"]]), a)

    # .bdf: the gap is filled and annotated, the reset's gap has no known length
    b = read_bdf(d / "r.bdf")
    assert b["labels"] == ["ch0", "ch1"] and b["rates"] == [1000.0, 1000.0] and b["dimension"] == [""] * 2
    g = b["digital"]
    assert np.array_equal(g[:100], ramp_counts(0, 100, 2, I16))
    assert not g[100:140].any()
    assert np.array_equal(g[140:200], ramp_counts(140, 60, 2, I16))
    assert np.array_equal(g[200:250], ramp_counts(0, 50, 2, I16))
    assert np.array_equal(physical_to_counts(b)[:250], g[:250])
    notes = [(round(o, 3), round(du, 3), t) for o, du, t in b["annotations"]]
    assert notes[:4] == [
        (0.035, -1.0, "marker 7"),
        (0.1, 0.04, "gap: 40 samples lost"),
        (0.2, -1.0, "gap: board restarted, duration unknown"),
        (0.22, -1.0, "marker 2"),
    ]
    pad = len(g) - 250
    assert pad == 0 or notes[4] == (0.25, pad / 1000, "no data: padding to a whole record")


def test_replay_is_the_same_fed_at_once_or_in_small_pieces(eventful_capture, tmp_path):
    from picodaq.recording.outputs import open_outputs
    from picodaq.recording.pipeline import replay

    s1, _, _ = replay(eventful_capture, open_outputs([tmp_path / "a.npy"]))
    s2, _, _ = replay(eventful_capture, open_outputs([tmp_path / "b.npy"]), chunk=7)
    # every counter of the stream is the same; the buffer pool's depend on the reads (a read's
    # frames go into one buffer), so they are left out
    assert {k: v for k, v in s1.items() if k != "pool"} == {k: v for k, v in s2.items() if k != "pool"}
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert (tmp_path / "a.events.csv").read_text() == (tmp_path / "b.events.csv").read_text()


@pytest.mark.parametrize(
    "source,fmt,gain,dimension,per_count",
    [
        (C.SRC_RAMP, C.FMT_INT16, 24, "", 1.0),
        (C.SRC_SINE, C.FMT_INT24, 24, "", 1.0),
        (C.SRC_ADC, C.FMT_INT16, 24, "V", 3.3 / 4096),
        (C.SRC_ADS1299, C.FMT_INT24, 24, "uV", 2 * 4.5 / 24 / 2**24 * 1e6),
        (C.SRC_ADS1299, C.FMT_INT24, 1, "uV", 2 * 4.5 / 1 / 2**24 * 1e6),
    ],
)
def test_bdf_physical_units_follow_the_source(tmp_path, capsys, source, fmt, gain, dimension, per_count):
    lo, hi = -(1 << 23) + 1, (1 << 23) - 1
    if fmt == C.FMT_INT16:
        lo, hi = -32768, 32767
    if source == C.SRC_ADC:
        lo, hi = 0, 4095  # the rp2 ADC's 12-bit codes
    counts = np.linspace(lo, hi, 200).round().astype(np.int64).reshape(100, 2)
    cap = Capture().hello(source, seq=3)
    for k in range(0, 100, 20):
        cap.samples(k, k * 1000, counts[k : k + 20], fmt)
    cap.write(tmp_path / "c.tlv")
    code, _, err = run(
        capsys, "replay", str(tmp_path / "c.tlv"), "--out", str(tmp_path / "c.bdf"), "--gain", str(gain), "--quiet"
    )
    assert code == 0, err
    b = read_bdf(tmp_path / "c.bdf")
    assert b["dimension"] == [dimension] * 2
    assert np.array_equal(b["digital"][:100], counts)
    assert np.array_equal(physical_to_counts(b)[:100], counts)  # what any reader gets back
    # physical values are the counts in the source's unit, to within one count plus the
    # 0.2 ppm gain error of the 8-character header fields (units.py)
    assert np.allclose(b["physical"][:100], counts * per_count, rtol=2e-7, atol=per_count)


def test_units_and_bdf_header_limits():
    assert _fit8(187499.97764825821) == 187500.0 and _fit8(-8388608) == -8388608.0
    assert _fit8(3.3) == 3.3 and len(str(_fit8(-1.65002517738613))) <= 8
    s = scale_for(C.SRC_ADS1299, C.FMT_INT24, 24)
    assert (s.digital_min, s.digital_max, s.dimension) == (-(2**23 - 1), 2**23 - 1, "uV")
    lo, hi = s.bdf_limits()
    assert lo == -hi and abs(hi / s.digital_max / s.per_count - 1) < 2e-7  # gain error under 0.2 ppm
    assert scale_for(C.SRC_ADC, C.FMT_INT16).bdf_limits() == (0.0, _fit8(4095 * 3.3 / 4096))
    assert scale_for(None, C.FMT_INT16) == Scale("", 1.0, -32768, 32767, "unknown source, 1 unit per count")
    for g in ADS1299_GAINS:
        assert abs(ads1299_uv_per_count(g) * g - 0.5364418029785156) < 1e-12
    with pytest.raises(ValueError):
        scale_for(C.SRC_ADS1299, C.FMT_INT24, 5)


def test_hundreds_of_markers_all_reach_the_bdf(tmp_path, capsys):
    cap = Capture().hello(seq=1)
    ramp_blocks(cap, 0, 500)
    for i in range(400):  # a 1 kHz trigger on the marker input for 0.4 s
        cap.marker(i, i % 5)
    cap.write(tmp_path / "m.tlv")
    code, _, err = run(capsys, "replay", str(tmp_path / "m.tlv"), "--out", str(tmp_path / "m.bdf"), "--quiet")
    assert code == 0, err
    marks = [(o, t) for o, _, t in read_bdf(tmp_path / "m.bdf")["annotations"] if t.startswith("marker")]
    assert len(marks) == 400
    assert [round(o, 4) for o, _ in marks] == [i / 1000 for i in range(400)]


def test_channel_labels_and_source_can_be_given_for_a_replay(tmp_path, capsys):
    cap = Capture()  # no HELLO in this capture: the source is unknown unless said
    ramp_blocks(cap, 0, 20, nch=3)
    cap.write(tmp_path / "x.tlv")
    code, _, err = run(
        capsys,
        "replay",
        str(tmp_path / "x.tlv"),
        "--out",
        str(tmp_path / "x.csv"),
        "--out",
        str(tmp_path / "x.bdf"),
        "--channels",
        "1,4-5",
        "--source",
        "adc",
        "--quiet",
    )
    assert code == 0, err
    assert (tmp_path / "x.csv").read_text().splitlines()[0] == "t_s,sample_index,marker,ch1,ch4,ch5"
    b = read_bdf(tmp_path / "x.bdf")
    assert b["labels"] == ["ch1", "ch4", "ch5"] and b["dimension"] == ["V"] * 3


def ran(capsys, *args: str) -> SimpleNamespace:
    """`picodaq ARGS` in this process (tests/unit starts no process), as assert_one_clear_line reads it."""
    code, out, err = run(capsys, *args)
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def test_an_int32_stream_cannot_become_bdf_and_says_so(tmp_path, capsys):
    cap = Capture().hello(seq=1)
    ramp_blocks(cap, 0, 20, fmt=C.FMT_INT32)
    cap.write(tmp_path / "w.tlv")
    r = ran(
        capsys, "replay", str(tmp_path / "w.tlv"), "--out", str(tmp_path / "w.bdf"), "--out", str(tmp_path / "w.npy")
    )
    assert_one_clear_line(r, "24-bit", "int32")
    assert not (tmp_path / "w.bdf").exists() and not list(tmp_path.glob(".w.bdf*"))
    np.load(tmp_path / "w.npy")  # the other outputs are closed and valid


def test_a_capture_without_samples(tmp_path, capsys):
    Capture().hello().write(tmp_path / "e.tlv")  # frames, but no SAMPLES
    code, out, err = run(
        capsys,
        "replay",
        str(tmp_path / "e.tlv"),
        "--out",
        str(tmp_path / "e.bdf"),
        "--out",
        str(tmp_path / "e.npy"),
        "--stats-json",
        "-",
    )
    assert code == 0, err
    assert json.loads(out)["samples"] == 0
    assert "no samples arrived" in err and not (tmp_path / "e.bdf").exists()
    assert np.load(tmp_path / "e.npy").shape == (0, 0)


def test_a_full_disk_under_one_output_is_one_line_and_the_others_are_complete(tmp_path, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    cap = Capture().hello(seq=1)
    ramp_blocks(cap, 0, 200)
    cap.write(tmp_path / "f.tlv")
    (tmp_path / "full.csv").symlink_to("/dev/full")
    r = ran(
        capsys,
        "replay",
        str(tmp_path / "f.tlv"),
        "--out",
        str(tmp_path / "full.csv"),
        "--out",
        str(tmp_path / "ok.npy"),
        "--overwrite",  # full.csv is there: the link to /dev/full
    )
    assert_one_clear_line(r, "full.csv", "No space left")
    assert np.array_equal(
        np.load(tmp_path / "ok.npy"), ramp_counts(0, 200, 2, I16)
    )  # every instant, not up to the failure


def test_an_events_list_that_cannot_be_rewritten_leaves_no_tmp_and_keeps_the_last(tmp_path, monkeypatch):
    from pathlib import Path

    from picodaq.recording.outputs import OutputError
    from picodaq.recording.outputs.events import EventsFile

    ev = EventsFile(tmp_path / "r.events.csv")
    before = (tmp_path / "r.events.csv").read_text()
    real = Path.write_text

    def disk_full(self, text, *a, **kw):
        real(self, text[: len(text) // 2])  # part of it landed, then the disk was full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    ev._dirty = True
    with pytest.raises(OutputError, match="No space left"):
        ev.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.events.csv"]
    assert (tmp_path / "r.events.csv").read_text() == before


# -- BDF data records: no padding for whole seconds, the least otherwise (issue 16, item 3) --


@pytest.mark.parametrize(
    "total,rate,nch,pad",
    [
        (5000, 1000, 8, 0),  # make demo: 1 s records
        (750, 250, 2, 0),
        (4010, 1000, 8, 0),  # the 4,010 instants: read back as 4,050 before
        (4010, 1000, 1, 0),
        (997, 1000, 8, 0),
        (1500, 1000, 3, 0),
        (44_107, 44_100, 3, 434),  # edflib's 10 us resolution: records of 441 instants at least
        (3, 1, 1, 0),
    ],
)
def test_bdf_records_need_no_padding_where_a_record_length_divides_the_recording(total, rate, nch, pad):
    from picodaq.recording.outputs.bdf import plan_records

    seconds, spr, records, slots = plan_records(total, rate, nch, 1)
    assert records * spr - total == pad
    assert spr * 100_000 % rate == 0 and 0.001 <= seconds <= 60  # what edflib can write exactly
    if total % rate == 0:
        assert seconds == 1.0


def _capture_of(n: int, rate: int, nch: int = 2, per: int = 10) -> Capture:
    period = 10**9 // rate
    cap = Capture().hello(C.SRC_RAMP, seq=3).status(1000)
    for k in range(0, n, per):
        m = min(per, n - k)
        cap.samples(k, k * period // 1000, ramp_counts(k, m, nch, I16), period_ns=period)
    return cap


@pytest.mark.parametrize("n,rate,padded", [(4010, 1000, 0), (5000, 1000, 0), (997, 1000, 0), (44_107, 44_100, 434)])
def test_readers_see_exactly_the_recorded_instants_in_the_bdf(tmp_path, capsys, n, rate, padded):
    """pyedflib and MNE read the BDF's length as the recording's, plus only unavoidable padding,
    which is annotated."""
    mne = pytest.importorskip("mne")
    cap = _capture_of(n, rate).write(tmp_path / "c.tlv")
    code, _, err = run(capsys, "replay", str(cap), "--out", str(tmp_path / "r.bdf"))
    assert code == 0, err
    b = read_bdf(tmp_path / "r.bdf")
    assert len(b["digital"]) == n + padded
    assert np.array_equal(b["digital"][:n], ramp_counts(0, n, 2, I16))
    pads = [a for a in b["annotations"] if a[2] == "no data: padding to a whole record"]
    assert len(pads) == (1 if padded else 0)
    if padded:  # BDF+ annotation times are whole 100 us
        assert pads[0][:2] == (pytest.approx(n / rate, abs=1e-4), pytest.approx(padded / rate, abs=1e-4))
    raw = mne.io.read_raw_bdf(tmp_path / "r.bdf", preload=True, verbose="error")
    assert raw.n_times == n + padded and raw.info["sfreq"] == rate
    assert np.array_equal(np.round(raw.get_data()[:, :n].T).astype(np.int64), ramp_counts(0, n, 2, I16))


@pytest.mark.parametrize(
    "source,fmt,orig_unit,volts_per_count",
    [
        (C.SRC_RAMP, C.FMT_INT16, "n/a", None),
        (C.SRC_SINE, C.FMT_INT24, "n/a", None),
        (C.SRC_ADC, C.FMT_INT16, "V", 3.3 / 4096),
        (C.SRC_ADS1299, C.FMT_INT24, "µV", 2 * 4.5 / 24 / 2**24),
    ],
)
def test_mne_reads_volts_only_where_the_source_is_in_volts(tmp_path, capsys, source, fmt, orig_unit, volts_per_count):
    """The synthetic sources wrote the dimension "count", which MNE read as volts (a ramp became
    -8,388,608 V and MNE refused to be told otherwise). They have no unit now: MNE finds none in
    the file (and takes one from its caller); the ADC and the ADS1299 scale to volts exactly."""
    mne = pytest.importorskip("mne")
    cap = Capture().hello(source, seq=3).status(1000)
    counts = ramp_counts(0, 200, 2, fmt)
    if source == C.SRC_ADC:
        counts = np.abs(counts) % 4096  # the ADC's 12-bit codes
    for k in range(0, 200, 10):
        cap.samples(k, 1000 * k, counts[k : k + 10], fmt)
    cap.write(tmp_path / "c.tlv")
    code, _, err = run(capsys, "replay", str(tmp_path / "c.tlv"), "--out", str(tmp_path / "r.bdf"))
    assert code == 0, err
    raw = mne.io.read_raw_bdf(tmp_path / "r.bdf", preload=True, verbose="error")
    assert set(raw._orig_units.values()) == {orig_unit}
    if volts_per_count is None:
        assert read_bdf(tmp_path / "r.bdf")["dimension"] == ["", ""]
        named = mne.io.read_raw_bdf(tmp_path / "r.bdf", units="uV", verbose="error")  # no unit to overrule
        assert set(named._orig_units.values()) == {"µV"}
    else:
        assert np.allclose(raw.get_data().T, counts * volts_per_count, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("gain", ADS1299_GAINS)
def test_bdf_header_limits_keep_every_digit_and_zero_at_zero(gain):
    """_fit8 stripped the zeros of a whole number ("-750000" became "-75" at gains 1, 6 and 8), and the
    two ends rounded apart ("-750000", "749999.9") shifted every value by 0.05 uV."""
    s = scale_for(C.SRC_ADS1299, C.FMT_INT24, gain)
    lo, hi = s.bdf_limits()
    assert lo == -hi and len(str(lo)) <= 8
    per_count = (hi - lo) / (s.digital_max - s.digital_min)
    assert abs(per_count / s.per_count - 1) < 2e-7
