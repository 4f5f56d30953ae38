"""`picodaq bench`: the results document's schema and cross-checks (not speeds), the README
table, and bad input. Speed targets belong to the benchmark itself, never to these tests."""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest

from cli_helpers import assert_one_clear_line, picodaq
from picodaq.bench import pipeline as P
from picodaq.bench import report, report_rp2040
from picodaq.bench.frames import capture
from picodaq.bench.runner import FIGURES, SCHEMA

ROOT = Path(__file__).resolve().parents[2]
HOST_FIGURES = [n for n in FIGURES if n != "rp2040"]

README = """# project

Intro text that must survive.

<!-- bench:start -->
old table
<!-- bench:end -->

## After

More text.
"""


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    # the rp2040 figure's --quick run is tests/rp2040/test_rp2040_capacity.py's (from the tier's flashed image)
    r = picodaq("bench", "--quick", "--only", ",".join(HOST_FIGURES), "--json", str(out), timeout=240)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), r.stderr


def test_quick_bench_writes_every_figure_with_sane_cross_checked_numbers(quick_results):
    doc, stderr = quick_results
    assert doc["schema"] == SCHEMA and doc["quick"] is True
    assert set(doc["figures"]) == set(HOST_FIGURES)
    m = doc["machine"]
    assert m["cores"] >= 1 and m["cpu"] and m["python"].count(".") == 2 and m["micropython"][0].isdigit()
    for name, fig in doc["figures"].items():
        assert fig["command"] == f"picodaq bench --only {name} --quick"
        assert fig["runs"] >= 1
        assert "bench [" in stderr and f"] {name}: done in" in stderr  # progress, on stderr

    p = doc["figures"]["pipeline"]
    for side in ("pipeline", "naive", "floor"):
        assert p[side]["frames_per_s"] > 0 and p[side]["mb_per_s"] > 0
        assert p[side]["frames_per_cpu_s"] > 0 and p[side]["mb_per_cpu_s"] > 0
        assert p[side]["frames"] == p["frames"] > 0
    assert p["payload_bytes"] == 600
    # the naive baseline decoded exactly what the pipeline did: frames, instants, values, observer calls
    for k in ("samples", "checksum", "blocks_every", "blocks_tenth"):
        assert p["pipeline"][k] == p["naive"][k]
    assert p["pipeline"]["samples"] == p["frames"] * P.N_SAMPLES
    assert p["pipeline"]["blocks_tenth"] == p["frames"] // 10
    assert p["same_output"] is True
    assert p["ratio_pipeline_naive"] > 0 and p["ratio_pipeline_floor"] > 0

    a = doc["figures"]["alloc"]
    for side in ("pipeline", "naive"):
        assert a["memray"][side]["allocations_per_frame"] >= 0
        assert a["memray"][side]["bytes_allocated_per_frame"] >= 0
    assert "retained_growth_bytes" in a["growth"] and "second_half_growth_bytes" in a["growth"]
    assert a["growth"]["frames"] > 0
    assert a["growth"]["samples_lost"] == 0 and a["growth"]["seq_lost"] == 0
    assert 0 < a["pool_hit_rate"] <= 1

    v = doc["figures"]["live"]
    assert v["receiver"]["mb_per_s"] > 0 and v["receiver"]["samples_per_s"] > 0 and v["raw"]["mb_per_s"] > 0
    assert v["lost"] == 0 and all(n == 0 for n in v["losses"].values())
    assert v["instants"] > 0 and v["ratio_live_raw"] > 0

    c = doc["figures"]["cpu"]
    assert c["lost"] == 0 and c["instants"] > 0 and c["cpu_percent"] > 0 and c["mb_per_s"] > 0
    # both read floors were measured on the same stream, and cat kept up with it
    assert c["read_floor_cpu_percent"] > 0 and c["c_read_floor_cpu_percent"] > 0 and c["c_read_floor_dropped"] == 0
    assert c["c_tty_cpu_percent"] > 0 and c["c_pipe_cpu_percent"] > 0  # cat out of a pty and a pipe, the same writes
    assert c["target_mb_per_s"] == 1.2 and c["n_channels"] == 8
    # the kernel's share is a part of the process's CPU time (the same clock, split by the kernel)
    assert 0 <= c["kernel_cpu_percent"] <= c["cpu_percent"] * 1.001 + 0.01

    t = doc["figures"]["latency"]
    assert t["clock_check"]["same_clock"] is True
    e2e = t["end_to_end"]
    assert e2e["blocks"] > 0 and e2e["lost"] == 0
    assert 0 <= e2e["min_ms"] <= e2e["p50_ms"] <= e2e["p99_ms"] <= e2e["max_ms"]
    readers = ("receiver", "receiver_inline", "receiver_bare")
    for part in (*readers, *(r + "_loaded" for r in readers), "emulator"):
        r = t[part]
        assert r["frames"] > 0 and 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]
    # every frame the test writer wrote reached each reader (500 a second, after the warm-up)
    for part, burners in (*((r, 0) for r in readers), *((r + "_loaded", 2) for r in readers)):
        r = t[part]
        assert r["lost"] == 0 and r["burners"] == burners
        assert r["frames"] == round(r["frames_per_s"] * r["seconds"])
    assert t["receiver_bare"]["reader"] == "bare" and t["receiver_inline_loaded"]["inline"] is True
    # idle again with a CPU latency request of 0 us held, where the machine lets it be made
    held = t["receiver_cpu_latency"]
    if os.access("/dev/cpu_dma_latency", os.W_OK):
        for r in readers:
            r = t[r + "_cpu_latency"]
            assert r["cpu_latency_us"] == 0 and r["burners"] == 0 and r["lost"] == 0
            assert r["frames"] == round(r["frames_per_s"] * r["seconds"]) and 0 < r["p50_us"] <= r["p99_us"]
    else:
        assert held == {"unavailable": held["unavailable"]} and "/dev/cpu_dma_latency" in held["unavailable"]

    f = doc["figures"]["firmware"]
    assert set(f["formats"]) == {"int16", "int24", "int32"}
    assert f["heap_allocations"] == 0
    for d in f["formats"].values():
        assert d["heap_allocations"] == 0 and d["heap_bytes_allocated"] == 0
        assert d["same_bytes"] is True
        assert d["us_frame"] > 0 and d["naive_us_frame"] > 0
        assert d["naive_bytes_per_frame"] > 0  # the baseline does allocate: the measurement can tell


def test_readme_table_renders_from_the_json(quick_results, tmp_path):
    doc, _ = quick_results
    (tmp_path / "bench.json").write_text(json.dumps(doc))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    r = picodaq("bench", "--from-json", str(tmp_path / "bench.json"), "--readme", str(readme))
    assert r.returncode == 0, r.stderr
    text = readme.read_text()
    assert text.startswith("# project\n\nIntro text that must survive.\n") and text.endswith("## After\n\nMore text.\n")
    assert "old table" not in text
    section = text.split(report.START)[1].split(report.END)[0]
    assert doc["machine"]["cpu"] in section and doc["machine"]["micropython"] in section
    for name in HOST_FIGURES:
        assert f"`picodaq bench --only {name} --quick`" in section
    cpu = doc["figures"]["cpu"]
    assert (
        f"**{cpu['cpu_percent']:.1f} % of one core** (process CPU time / wall time, {cpu['kernel_cpu_percent']:.1f} % of it in the kernel"
        in section
    )
    pipeline_fps = f"{doc['figures']['pipeline']['pipeline']['frames_per_cpu_s']:,.0f} frames/s"
    assert pipeline_fps in section and pipeline_fps in r.stdout
    held = doc["figures"]["latency"]["receiver_cpu_latency"]
    if "unavailable" in held:
        assert f"Idle with a CPU latency request of 0 us: not measured ({held['unavailable']})" in section
    else:
        assert "Idle, holding a CPU latency request of 0 us (`--cpu-latency 0`" in section
        assert f"default Link **p50 {held['p50_us']:.0f} us, p99 {held['p99_us']:.0f} us**" in section
    # rendering again changes nothing: the section is replaced, not appended to
    picodaq("bench", "--from-json", str(tmp_path / "bench.json"), "--readme", str(readme))
    assert readme.read_text() == text


def test_readme_without_markers_gets_a_section_appended():
    doc = {"figures": {}, "machine": {"cpu": "X", "cores": 2}}
    out = report.replace_section("# title\n\ntext\n", report.markdown(doc))
    assert out.startswith("# title\n\ntext\n\n## Benchmarks\n\n" + report.START)
    assert out.rstrip().endswith(report.END)
    assert report.replace_section(out, "new body").count(report.START) == 1


def test_naive_decoder_and_pipeline_agree_on_a_damaged_capture():
    data = bytearray(capture(300, P.N_CHANNELS, P.FMT, P.N_SAMPLES, pattern="ramp"))
    size = P.frame_size()
    for i in (3, 50, 51, 200):  # corrupt four frames' sample bytes: their CRCs fail
        data[i * size + 40] ^= 0xFF
    noise = bytes(range(256)) * 3
    damaged = bytes(data[: 100 * size]) + noise + bytes(data[100 * size :])
    pipe, naive = P.PipelineReplay(), P.NaiveReplay()
    mv = memoryview(damaged)
    pieces = [mv[i : i + 4096] for i in range(0, len(mv), 4096)]
    pipe.feed(pieces)
    naive.feed(pieces)
    assert pipe.rx.stats.frames_ok == naive.dec.frames_ok == 296
    # four damaged frames, four CRC errors; the noise holds no magic (0xA5 is followed by 0xA6), so
    # it is skipped byte by byte and costs no frame
    assert pipe.rx.stats.crc_errors == 4 and pipe.rx.stats.header_errors == 0
    assert pipe.rx.stats.skipped_bytes >= len(noise)
    assert pipe.samples == naive.samples == 296 * P.N_SAMPLES
    assert pipe.every.checksum == naive.every.checksum
    assert zlib.crc32(damaged[:size]) == P._CRC_RESIDUE  # the floor's check holds for an intact frame


def test_the_floor_refuses_a_capture_it_cannot_verify():
    data = bytearray(capture(50, P.N_CHANNELS, P.FMT, P.N_SAMPLES))
    data[20 * P.frame_size() + 30] ^= 1
    with pytest.raises(RuntimeError, match="49 of"):
        P.replay_floor(bytes(data), warmup_frames=0)
    assert P.replay_floor(capture(50, P.N_CHANNELS, P.FMT, P.N_SAMPLES), warmup_frames=0).frames == 50


def test_unwritable_json_path(tmp_path):
    """A folder that refuses the file: read-only to a user; to root (who CI runs as, and whom
    permission bits do not stop) sysfs, where no file can be created by anyone."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
    else:
        locked = Path("/sys")
        assert locked.is_dir() and not (locked / "out.json").exists()
    r = picodaq("bench", "--quick", "--json", str(locked / "out.json"))
    assert r.returncode == 2
    assert_one_clear_line(r, "--json", str(locked / "out.json"), "not writable", "Permission denied")
    assert not (locked / "out.json").exists()
    assert "bench [" not in r.stderr  # refused before measuring anything


@pytest.mark.parametrize(
    "args, words",
    [
        (["--json", "{tmp}/no/such/folder/out.json"], ["--json", "does not exist"]),
        (["--json", "{tmp}"], ["--json", "is a directory"]),
        (["--json", "{tmp}/bad.json/out.json"], ["--json", "not writable", "not a folder"]),  # root too
        (["--readme", "{tmp}/bad.json/README.md"], ["--readme", "no such file"]),
        (["--readme", "{tmp}/missing.md"], ["--readme", "no such file"]),
        (["--from-json", "{tmp}/missing.json"], ["--from-json", "cannot read"]),
        (["--from-json", "{tmp}/bad.json"], ["--from-json", "not a picodaq bench results file"]),
        (["--from-json", "{tmp}/empty.json"], ["--from-json", "holds no figures"]),
        (["--from-json", "{tmp}/empty.json", "--readme", "{tmp}/README.md"], ["--from-json", "holds no figures"]),
        (["--only", "warp"], ["unknown figure warp"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_measuring(tmp_path, args, words):
    (tmp_path / "bad.json").write_text('{"figures": {"pipeline": {"command": "x"}}}')
    (tmp_path / "empty.json").write_text('{"figures": {}}')
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:start -->\n| the table |\n<!-- bench:end -->\n")
    r = picodaq("bench", "--quick", *[a.replace("{tmp}", str(tmp_path)) for a in args], timeout=30)
    assert r.returncode == 2
    assert_one_clear_line(r, *words)
    assert "| the table |" in readme.read_text()  # never replaced by an empty one
    assert "bench [" not in r.stderr  # nothing was measured
    assert not (tmp_path / "no").exists()


def test_the_readme_keeps_the_picos_capacity_in_its_own_section_beside_the_unix_port_figures():
    """`picodaq bench --only rp2040 --readme README.md` rewrites only what is between these markers
    (tests/rp2040/test_rp2040_capacity.py runs it); they sit under their heading, after the table."""
    text = (ROOT / "README.md").read_text()
    heading = text.index("### Pico (RP2040) capacity")
    assert text.index(report.END) < heading < text.index(report_rp2040.START) < text.index(report_rp2040.END)
    assert text.count(report_rp2040.START) == text.count(report_rp2040.END) == 1
    section = text[heading : text.index(report_rp2040.START)]
    assert "XIP" in section and "USB" in section and "picodaq bench --only rp2040" in section
