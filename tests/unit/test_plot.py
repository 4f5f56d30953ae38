"""`picodaq plot`'s readers and drawing, in-process, on captures built byte by byte: every format
of one recording gives the same picture (envelope, gaps, markers), the envelope is the min/max of
the right instants, physical units follow the source, and what reaches matplotlib (and the SVG)
is what the recording holds. Bad input is a PlotError with one clear message."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from cli_helpers import Capture
from picodaq import contracts as C
from picodaq.cli.main import main
from picodaq.core.blocks import ramp_counts
from picodaq.plot.draw import draw, save
from picodaq.plot.load import load
from picodaq.plot.model import PlotError
from picodaq.protocol.units import ads1299_uv_per_count

I16 = C.FMT_INT16
FORMATS = ("tlv", "npy", "csv", "bdf")


def ramp_blocks(cap: Capture, first: int, n: int, nch: int = 2, per: int = 10, t0_us: int | None = None, fmt=I16):
    base_t = first * 1000 if t0_us is None else t0_us
    for k in range(0, n, per):
        cap.samples(first + k, base_t + k * 1000, ramp_counts(first + k, per, nch, fmt), fmt)
    return cap


@pytest.fixture
def recording(tmp_path, capsys):
    """One recording in every format: 2 channels at 1 kHz, a board marker (code 7 at 35 ms), 40 instants
    lost at 100 ms, a board reset at 200 ms (a gap of unknown length) and a marker after it (2 at 220 ms)."""
    cap = Capture().hello(C.SRC_RAMP, seq=5).status(1000)
    ramp_blocks(cap, 0, 50)
    cap.marker(35, 7)
    ramp_blocks(cap, 50, 50)
    ramp_blocks(cap, 140, 60)
    cap.hello(C.SRC_RAMP, seq=0).status(400, C.STATE_IDLE)
    cap.marker(20, 2)
    ramp_blocks(cap, 0, 50, t0_us=7_000_000)
    tlv = cap.write(tmp_path / "r.tlv")
    outs = [a for s in ("npy", "csv", "bdf") for a in ("--out", str(tmp_path / f"r.{s}"))]
    assert main(["replay", str(tlv), *outs, "--quiet"]) == 0
    capsys.readouterr()
    return {s: tmp_path / f"r.{s}" for s in FORMATS}


def expected_signal() -> np.ndarray:
    """The recording on its grid (250 positions x 2 channels), NaN where nothing arrived."""
    x = np.full((250, 2), np.nan)
    x[:100] = ramp_counts(0, 100, 2, I16)
    x[140:200] = ramp_counts(140, 60, 2, I16)
    x[200:] = ramp_counts(0, 50, 2, I16)
    return x


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_draws_the_samples_the_gaps_and_the_markers(recording, fmt):
    pic = load(recording[fmt], columns=1000)  # more columns than instants: every sample
    assert pic.kind == fmt and pic.rate == 1000 and pic.labels == ["ch0", "ch1"] and pic.unit == "count"
    assert pic.bucket == 1 and (pic.t_from, pic.t_to, pic.duration_s) == (0.0, 0.25, 0.25)
    want = expected_signal()
    n = len(pic.pos)
    assert np.array_equal(pic.pos, np.arange(n)) and n >= 250
    assert np.array_equal(pic.lo[:250], want, equal_nan=True) and np.array_equal(pic.hi[:250], want, equal_nan=True)
    assert np.isnan(pic.lo[250:]).all()
    restart = "gap: stream restarted, duration unknown" if fmt == "csv" else "gap: board restarted, duration unknown"
    assert [(g.start_s, g.end_s, g.label) for g in pic.gaps] == [
        (0.1, 0.14, "gap: 40 samples lost"),
        (0.2, 0.2, restart),
    ]
    assert [(m.t_s, m.code) for m in pic.markers] == [(0.035, 7), (0.22, 2)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_envelope_is_the_min_and_max_of_each_columns_instants(recording, fmt):
    pic = load(recording[fmt], columns=20)
    want = expected_signal()
    assert pic.bucket > 1 and len(pic.pos) >= 20
    for c, p in enumerate(pic.pos):
        part = want[p : p + pic.bucket]
        if np.isnan(part).all():
            assert np.isnan(pic.lo[c]).all() and np.isnan(pic.hi[c]).all()
        else:
            assert np.array_equal(pic.lo[c], np.nanmin(part, axis=0))
            assert np.array_equal(pic.hi[c], np.nanmax(part, axis=0))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_window_and_a_channel(recording, fmt):
    pic = load(recording[fmt], channels="1", t_from=0.09, t_to=0.21, columns=1000)
    assert pic.labels == ["ch1"] and (pic.t_from, pic.t_to) == (0.09, 0.21)
    assert pic.pos[0] == 90 and pic.pos[-1] == 209
    want = expected_signal()[90:210, 1:]
    assert np.array_equal(pic.lo, want, equal_nan=True)
    assert [g.start_s for g in pic.gaps] == [0.1, 0.2] and pic.markers == []  # the markers lie outside


def test_physical_units_follow_the_source(tmp_path, capsys):
    cap = Capture().hello(C.SRC_ADS1299, seq=1).status(1000)
    counts = np.array([[-(2**23) + 1, 0, 2**23 - 1, 12345]] * 10, dtype=np.int64).reshape(20, 2)
    cap.samples(0, 0, counts, C.FMT_INT24)
    tlv = cap.write(tmp_path / "eeg.tlv")
    assert (
        main(["replay", str(tlv), "--out", str(tmp_path / "eeg.bdf"), "--out", str(tmp_path / "eeg.npy"), "--quiet"])
        == 0
    )
    capsys.readouterr()
    uv = ads1299_uv_per_count(24)
    for f in ("eeg.tlv", "eeg.bdf", "eeg.npy"):
        pic = load(tmp_path / f, columns=100)
        assert pic.unit == "uV", f
        assert np.allclose(pic.lo[:20], counts * uv, rtol=2e-7), f  # BDF: its 8-character limits, < 0.2 ppm off


def test_what_reaches_matplotlib_is_the_recording(recording, tmp_path):
    pic = load(recording["tlv"], columns=25)
    fig = draw(pic)
    ax0, ax1 = fig.axes
    for ax, label in ((ax0, "ch0"), (ax1, "ch1")):
        by_gid = {a.get_gid(): a for a in ax.collections}
        # the envelope: a polygon per run of filled columns, its outline through the columns' min and max
        env = by_gid[f"envelope-{label}"]
        verts = np.concatenate([p.vertices for p in env.get_paths()])
        k = pic.labels.index(label)
        ok = ~np.isnan(pic.lo[:, k])
        assert set(np.round(verts[:, 1])) == set(pic.lo[ok, k]) | set(pic.hi[ok, k])
        assert set(np.round(verts[:, 0], 9)) <= set(np.round(pic.t, 9))  # at the columns' times
        # the lost instants: one shaded box from 0.1 to 0.14 s; the reset: a dotted line at 0.2 s
        (box,) = by_gid[f"gaps-{label}"].get_paths()
        assert (box.vertices[:, 0].min(), box.vertices[:, 0].max()) == (0.1, 0.14)
        assert [s[0][0] for s in by_gid[f"gaps-unknown-{label}"].get_segments()] == [0.2]
        assert [s[0][0] for s in by_gid[f"markers-{label}"].get_segments()] == [0.035, 0.22]
    texts = {t.get_gid(): t.get_text() for t in ax0.texts}
    assert texts["gap-label-0"] == "gap: 40 samples lost"
    assert texts["gap-label-1"] == "gap: board restarted, duration unknown"
    assert [texts["marker-label-0"].strip(), texts["marker-label-1"].strip()] == ["7", "2"]
    assert ax0.get_xlim() == (0.0, 0.25)


def test_the_svg_keeps_the_ids_and_the_texts(recording, tmp_path):
    out = tmp_path / "r.svg"
    save(load(recording["npy"], columns=25), out)
    root = ET.parse(out).getroot()
    ids = {g.get("id") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert {"envelope-ch0", "envelope-ch1", "gaps-ch0", "markers-ch0", "markers-ch1", "gaps-unknown-ch1"} <= ids
    marks = next(g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("id") == "markers-ch0")
    assert len(list(marks.iter("{http://www.w3.org/2000/svg}path"))) == 2
    text = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "gap: 40 samples lost" in text and "gap: board restarted, duration unknown" in text
    assert "r.npy: 2 channels at 1000 Hz, ramp, int16" in text
    again = tmp_path / "again.svg"
    save(load(recording["npy"], columns=25), again)
    assert again.read_bytes() == out.read_bytes()  # the same picture, the same bytes


@pytest.mark.parametrize("fmt", FORMATS)
def test_from_beyond_the_end_is_one_clear_error(recording, fmt):
    with pytest.raises(PlotError, match=rf"^--from 9 s: .*r\.{fmt} ends at 0\.250 s$"):
        load(recording[fmt], t_from=9)


def test_bad_input_is_one_clear_error(recording, tmp_path):
    def err(path, **kw) -> str:
        with pytest.raises(PlotError) as e:
            load(path, **kw)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert err(tmp_path / "none.tlv").endswith("none.tlv: no such file")
    assert err(tmp_path).endswith(": is a directory, not a recording")
    (tmp_path / "notes.txt").write_text("hello\n")
    assert "notes.txt: not a picodaq recording (picodaq plot reads .tlv, .bdf" in err(tmp_path / "notes.txt")
    assert "an events list; plot the .npy recording beside it" in err(tmp_path / "r.events.csv")
    (tmp_path / "junk.tlv").write_bytes(bytes(range(256)) * 40)
    assert "junk.tlv: no picodaq frame in it" in err(tmp_path / "junk.tlv")
    lone = tmp_path / "lone.npy"
    np.save(lone, np.zeros((10, 2), dtype=np.int32))
    assert "lone.npy: its events list lone.events.csv is missing" in err(lone)
    np.save(tmp_path / "flat.npy", np.zeros(10))
    assert "not a picodaq recording (instants x channels)" in err(tmp_path / "flat.npy")
    bdf = recording["bdf"].read_bytes()
    (tmp_path / "cut.bdf").write_bytes(bdf[:300])
    assert "cut.bdf: a damaged BDF header" in err(tmp_path / "cut.bdf")
    assert err(recording["tlv"], channels="5").endswith("r.tlv has no ch5 (it holds ch0, ch1)")
    assert err(recording["csv"], t_from=0.2, t_to=0.1) == "--to 0.1 s is not after --from 0.2 s"


def test_a_plain_edf_from_elsewhere_is_read_too(tmp_path):
    """16-bit EDF+ (not what picodaq writes, but what the BDF reader also reads): values, unit, labels."""
    import pyedflib

    path = tmp_path / "other.edf"
    x = (np.arange(600) % 200 - 100).astype(np.int64)
    w = pyedflib.EdfWriter(str(path), 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders(
        [
            {"label": name, "dimension": "mV", "sample_frequency": 200, "physical_min": -100, "physical_max": 100,
             "digital_min": -100, "digital_max": 100, "transducer": "", "prefilter": ""}
            for name in ("left", "right")
        ]
    )  # fmt: skip
    w.writeSamples([x.astype(np.int32), (-x).astype(np.int32)], digital=True)
    w.writeAnnotation(1.5, -1, "marker 9")
    w.close()
    pic = load(path, columns=1000, channels="right")
    assert pic.kind == "bdf" and pic.unit == "mV" and pic.labels == ["right"] and pic.rate == 200
    assert np.array_equal(pic.lo[:, 0], -x) and [(m.t_s, m.code) for m in pic.markers] == [(1.5, 9)]
