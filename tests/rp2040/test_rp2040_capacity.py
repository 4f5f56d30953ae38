"""What a Pico sustains (issue 15), on the emulated RP2040: the ring taken at boot and the
refusal of a stream it cannot hold; the ADC at 4 x 25 kHz and the ADS1299 at 8 x 16 kHz int24
with every value exact and nothing dropped (short here; 30 emulated seconds under the soak
mark); `picodaq record` of the ADS1299 into BDF read back by MNE; `picodaq bench --quick`'s
rp2040 figure.

Content and emulated time are asserted, never samples per wall second: the emulated chip runs
at a fraction of a real one. The CPU shares asserted are emulated cycles (exact whatever this
machine's load), with wide margins: they guard against the hot path losing its budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rp2helpers import (
    Repl,
    ads1299_test_signal_board,
    dma_codes,
    picodaq,
    record_instants,
    stop,
)

from picodaq import contracts as C
from picodaq.bench import report, report_rp2040
from picodaq.bench.rp2040 import IMAGE_ENV
from picodaq.core.blocks import ramp_counts
from picodaq.errors import CommandFailed
from picodaq.recording.config import RING_FLOOR_S, StreamConfig
from picodaq.transport.link import Link

# -- the ring budget -------------------------------------------------------------------------


def test_the_ring_takes_the_heap_at_boot_and_info_says_its_duration(rp2040):
    board = rp2040()
    r = picodaq("info", "--port", board.port, "--json", "--rate", "25000", "--channels", "4")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ring = doc["hello"]["ring_bytes"]
    assert ring > 160_000  # of the 237 kB free at boot; a 58 kB reserve is left
    info = doc["ring"]
    assert info["ring_bytes"] == ring and info["samples_per_frame"] == 500 and info["fits"]
    # the board's own rule: what START gives this stream is what info said
    with Link.open(board.port) as link:
        link.get_info()
        link.configure(25_000, 0xF, C.SRC_ADC, C.FMT_INT16, 500)
        link.start()
        cap = link.get_status().ring_capacity
        stop(link)
    assert cap / 25_000 == info["seconds"] >= 0.8
    text = picodaq("info", "--port", board.port, "--rate", "16000", "--channels", "8", "--fmt", "int24").stdout
    frames = min(128, ring // (170 * 8 * 3))  # whole frames of 170 instants, at most 128: 41 of 169,648 B
    assert f"ring duration   {frames * 170 / 16_000:.3g} s at 16,000 Hz x 8 ch int24, 170 instants per frame" in text


def _refused(link: Link, rate: int, mask: int, source: int, fmt: int, spf: int) -> str:
    with pytest.raises(CommandFailed) as e:
        link.configure(rate, mask, source, fmt, spf)
    assert e.value.status == C.ST_BAD_ARGUMENT
    return link.log_texts()[-1]


def test_a_stream_of_too_small_frames_is_refused_with_the_rings_duration(rp2040):
    """The ring holds at most 128 frames: 16 instants at 25 kHz are 81 ms of it."""
    board = rp2040()
    with Link.open(board.port) as link:
        link.get_info()
        sent = link.get_status().frames_sent
        why = _refused(link, 25_000, 0xF, C.SRC_ADC, C.FMT_INT16, 16)
        st = link.get_status()
    assert why == (
        "CONFIGURE: 1563 frames/s: the ring's 128 frames hold 81 ms (100 needed); raise samples_per_frame to 20"
    )
    assert st.state == C.STATE_IDLE and st.frames_sent <= sent + 4  # ACKs, the LOG, STATUS: no SAMPLES


DRIVER = b"""\
from picodaq_fw.hal_rp2 import Hal
from picodaq_fw.app import App
App(Hal(), bytearray(32768)).run()
"""


def test_a_stream_the_ring_cannot_hold_is_refused_naming_its_duration_and_the_limit(rp2040):
    """The real App on the rp2 port with a ring of 32,768 B (run from the raw REPL): ramp 50 kHz x
    4 int16 is 400,000 B/s, of which 8 frames of 500 instants hold 80 ms. Refused before any
    sample, saying the ring's duration, the stream's rate and the board's limit."""
    board = rp2040()
    repl = Repl(board.port)
    try:
        repl.raw_repl()
        assert repl.start_app(DRIVER).ring_bytes == 32768  # its boot HELLO: nothing is sent before it
    finally:
        repl.close()
    with Link.open(board.port) as link:
        hello = link.get_info()
        assert hello.ring_bytes == 32768  # the driver's App answers, not main.py's (a ring of 160 kB+)
        why = _refused(link, 50_000, 0xF, C.SRC_RAMP, C.FMT_INT16, 500)
        assert link.get_status().state == C.STATE_IDLE
        link.configure(25_000, 0xF, C.SRC_RAMP, C.FMT_INT16, 500)  # 160 ms: accepted
    assert why == (
        "CONFIGURE: the ring holds 80 ms of 400000 B/s (100 ms needed); this board's ring is 32768 B: at most 327680 B/s"
    )
    assert StreamConfig(50_000, 0xF, fmt=C.FMT_INT16, samples_per_frame=500).ring_seconds(32768) < RING_FLOOR_S


# -- the targets: ADC 4 x 25 kHz, ADS1299 8 x 16 kHz int24 --------------------------------------


class Exact:
    """Every block checked as it comes (no copy of a 30 s stream is kept)."""

    def __init__(self, want) -> None:
        self.want = want
        self.n = 0
        self.bad: list[int] = []
        self.ends: list[int] = []
        self.gaps = 0

    def __call__(self, block) -> None:
        if self.ends and block.first_index != self.ends[-1]:
            self.gaps += 1
        self.ends.append(block.first_index + block.n_samples)
        if not np.array_equal(np.asarray(block.counts), self.want(block.first_index, block.n_samples)):
            self.bad.append(block.first_index)
        self.n += block.n_samples


def _run(board, link: Link, rate: int, mask: int, source: int, fmt: int, spf: int, seconds: float, want) -> dict:
    """Stream for `seconds` of the chip's time, every block checked; the emulated CPU share over it."""
    chk = Exact(want)
    link.configure(rate, mask, source, fmt, spf)
    link.receiver.block_handlers.append(chk)
    missed0 = board.control("ads1299")["missed"]
    link.start()
    a = board.control("time")
    while board.control("time")["ns"] - a["ns"] < seconds * 1e9:
        link.pump_until(lambda: False, 0.2)
    z = board.control("time")
    missed = board.control("ads1299")["missed"] - missed0
    final = stop(link)
    link.receiver.block_handlers.remove(chk)
    s = link.receiver.stats
    return {
        "instants": chk.n,
        "bad": chk.bad,
        "gaps": chk.gaps,
        "dropped": final.samples_dropped,
        "last_error": final.last_error,
        "lost": s.samples_lost + s.seq_lost + s.crc_errors,
        "missed": missed,
        "busy": (z["busy"] - a["busy"]) / (z["cycles"] - a["cycles"]),
    }


def _adc_4x25k(rp2040, seconds: float) -> dict:
    board = rp2040()
    board.control("adc", mode="code", unit_ns=10_000, origin="first")  # 100 kS/s: a conversion every 10 us
    with Link.open(board.port) as link:
        link.get_info()
        r = _run(
            board,
            link,
            25_000,
            0xF,
            C.SRC_ADC,
            C.FMT_INT16,
            500,
            seconds,
            lambda first, n: dma_codes([0, 1, 2, 3], first, n),
        )
    assert r["bad"] == [] and r["gaps"] == 0 and r["dropped"] == 0 and r["lost"] == 0, r
    assert r["last_error"] == C.ST_OK and r["instants"] >= 25_000 * seconds * 0.95, r
    assert r["busy"] < 0.5, r  # measured 20 %: 80 % of the CPU left
    return r


def test_adc_4_channels_at_25_khz_every_code_exact_and_nothing_dropped(rp2040):
    """100 kS/s of int16 on the DMA path, 3 emulated seconds: each of the 300,000 conversions
    reads its channel and its place in the stream (the ADC model's code)."""
    _adc_4x25k(rp2040, 3.0)


@pytest.mark.soak
def test_adc_4_channels_at_25_khz_for_30_emulated_seconds(rp2040):
    _adc_4x25k(rp2040, 30.0)


def _ads_8x16k(rp2040, seconds: float) -> dict:
    board = rp2040()  # the ADS1299 model in its ramp mode: frame n of channel c is the PROTOCOL.md ramp
    with Link.open(board.port) as link:
        link.get_info()
        r = _run(
            board,
            link,
            16_000,
            0xFF,
            C.SRC_ADS1299,
            C.FMT_INT24,
            170,
            seconds,
            lambda first, n: ramp_counts(first, n, 8, C.FMT_INT24),
        )
    assert r["bad"] == [] and r["gaps"] == 0 and r["dropped"] == 0 and r["lost"] == 0, r
    assert r["missed"] == 0, r  # every frame the chip made was read before the next
    assert r["last_error"] == C.ST_OK and r["instants"] >= 16_000 * seconds * 0.95, r
    assert r["busy"] < 0.7, r  # measured 38 %
    return r


def test_ads1299_8_channels_at_16_khz_int24_equal_the_models_frames(rp2040):
    """The chip's full rate on its DMA path, 2 emulated seconds: every value is the model's
    frame, from the first conversion after START, none missed."""
    _ads_8x16k(rp2040, 2.0)


@pytest.mark.soak
def test_ads1299_8_channels_at_16_khz_for_30_emulated_seconds(rp2040):
    _ads_8x16k(rp2040, 30.0)


# -- the ADS1299 end to end: picodaq record into BDF, read by MNE ----------------------------


def test_record_ads1299_into_bdf_microvolts_match_the_model_read_by_mne(rp2040, tmp_path):
    """`picodaq record --source ads1299 --gain 24 --out x.bdf` with the chip's internal test signal
    on every channel (input "test", gain 24 in picodaq_board.json), read back by MNE as a user would:
    the model's square wave, +-1.875 mV at the input and 1024 frames a half period at 2 kHz
    (fCLK / 2**21), in volts within the BDF's quantization step; the counts (an .npy of the same
    run) are the model's exactly, trunc(1.875 mV x 24 x 2**23 / 4.5 V) = 83,886."""
    mne = pytest.importorskip("mne", reason="MNE (the test extra's mne) is not installed: the BDF is not read back")
    board = ads1299_test_signal_board(rp2040, tmp_path)
    bdf, npy = tmp_path / "x.bdf", tmp_path / "x.npy"
    # both halves of the square wave and the start of the next: a count of instants, never wall seconds
    args = ("--source", "ads1299", "--gain", "24", "--fmt", "int24", "--rate", "2000", "--channels", "8")
    stats = record_instants(board.port, bdf, 2500, *args, "--out", str(npy))
    assert stats["samples_lost"] == stats["gaps"] == stats["device_samples_dropped"] == 0, stats
    counts = np.load(npy)
    n = len(counts)
    half = 2000 * 2**21 // (2 * 2_048_000)
    assert half == 1024 and n >= 2500
    square = np.where((np.arange(n) // half) % 2 == 0, 1, -1)
    assert np.array_equal(counts, np.repeat(83886 * square[:, None], 8, axis=1))

    raw = mne.io.read_raw_bdf(bdf, preload=True, verbose="error")
    assert raw.info["sfreq"] == 2000 and len(raw.ch_names) == 8
    volts = raw.get_data().T
    assert len(volts) >= n  # a last record padded with zeros is annotated as such
    if len(volts) > n:
        assert "no data: padding to a whole record" in set(raw.annotations.description)
    # the BDF's quantization step, from its header as written: (pmax - pmin) / (dmax - dmin) in its unit
    hdr = bdf.read_bytes()
    ns = int(hdr[252:256])
    field = lambda at, size=8: hdr[256 + at * ns : 256 + at * ns + size].decode().strip()  # noqa: E731
    unit = {"uV": 1e-6, "mV": 1e-3, "V": 1.0}[field(96)]
    pmin, pmax, dmin, dmax = float(field(104)), float(field(112)), int(field(120)), int(field(128))
    step = (pmax - pmin) / (dmax - dmin) * unit
    assert step <= 4.5 / 24 / 2**23 * 1.001  # one count of the ADS1299 at gain 24, or finer
    model = 1.875e-3 * square[:, None]  # the model's signal at the input, in volts
    assert np.abs(volts[:n] - model).max() < step


# -- picodaq bench --quick: the rp2040 figure ------------------------------------------------


def test_bench_quick_rp2040_figure(tmp_path, flashed, monkeypatch):
    """`picodaq bench --quick --only rp2040 --readme`, from the session's flashed image (flashing one
    is the figure's first step otherwise): every part of the figure, one short point per source
    class, the README's capacity section rewritten and nothing else."""
    out, readme = tmp_path / "bench.json", tmp_path / "README.md"
    before = f"# x\n\n{report.START}\nthe unix-port table\n{report.END}\n\n"
    readme.write_text(f"{before}{report_rp2040.START}\nold\n{report_rp2040.END}\n\nafter\n")
    monkeypatch.setenv(IMAGE_ENV, str(flashed.image))
    res = picodaq("bench", "--quick", "--only", "rp2040", "--json", str(out), "--readme", str(readme), timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    q = doc["figures"]["rp2040"]
    assert q["image"] == str(flashed.image) and q["flash_seconds"] == 0
    text = readme.read_text()
    assert text.startswith(before) and text.endswith(f"{report_rp2040.END}\n\nafter\n") and "old" not in text
    assert "| adc | int16 | **5,000 Hz x 4** |" in text and "Limits of the emulation: rp2040js" in text
    assert q["command"] == "picodaq bench --only rp2040 --quick" and q["quick"] is True
    assert "XIP" in q["limits"] and "USB" in q["limits"]
    assert q["ring_bytes"] > 160_000 and q["max_rate"] == 200_000
    kinds = {r["kind"] for r in q["probe"]}
    assert {"framing", "crc", "source"} <= kinds
    for r in (r for r in q["probe"] if r["kind"] == "framing"):
        assert r["cycles_old"] > r["cycles_new"] > 0 and r["thumb"] is True
    assert {r["source"] for r in q["probe"] if r["kind"] == "source"} == {"ramp", "sine", "adc", "ads1299"}
    budget = {b.get("source", "boot"): b for b in q["budget"]}
    assert budget["boot"]["ring_bytes"] > 100_000 and set(budget) == {"boot", "ramp", "sine", "adc", "ads1299"}
    assert q["write"]["busy_cycles_per_byte"] > 0 and 0 < q["floor"]["busy_share"] < 0.1
    for k, v in q["framing_ratio_old_new"].items():
        assert k in ("int16", "int24", "int32") and v["ratio"] > 1
    assert [(c["source"], c["rate"]) for c in q["capacity"]] == [("ramp", 1000), ("adc", 5000)]
    for c in q["capacity"]:
        assert c["ok"] and c["dropped"] == 0 and c["bad_blocks"] == 0 and c["gaps"] == 0, c
        assert 0 < c["busy_share"] < 1 and c["cycles_per_frame"] > 0
        assert set(c["breakdown"]) >= {"source", "framing", "writing"}
    assert "Pico (RP2040, emulated)" in res.stdout  # the table printed to the terminal
