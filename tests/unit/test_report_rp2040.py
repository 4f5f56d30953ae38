"""The Pico's capacity section (picodaq.bench.report_rp2040) rendered from a results document:
one row per source and format, the targets said met or not with the ceiling and why, and a README
rewritten between its own markers only."""

from __future__ import annotations

from picodaq.bench import report, report_rp2040


def _row(source: str, fmt: str, channels: int, rate: int | None, busy: float = 0.4, nxt: dict | None = None) -> dict:
    if rate is None:
        return {"source": source, "fmt": fmt, "channels": channels, "ok": False, "why": "nothing streamed"}
    return {
        "source": source,
        "fmt": fmt,
        "channels": channels,
        "rate": rate,
        "ok": True,
        "seconds": 30.0,
        "samples_per_s": rate * channels,
        "wire_bytes_per_s": 1000,
        "busy_share": busy,
        "cycles_per_frame": 500_000,
        "breakdown": {"source": 0.05, "framing": 0.08, "writing": 0.2, "the rest": 0.07},
        "next": nxt or {"rate": None, "why": "the firmware's limit: 200,000 samples/s in all"},
    }


def _doc(*capacity: dict) -> dict:
    q = {
        "command": "picodaq bench --only rp2040",
        "seconds": 30.0,
        "quick": False,
        "ring_bytes": 169_648,
        "limits": "rp2040js: no XIP cache misses",
        "floor": {"busy_share": 0.014},
        "write": {"busy_cycles_per_byte": 69.5},
        "framing_ratio_old_new": {
            "int24": {"frame_bytes": 4110, "cycles_old": 431_746, "cycles_new": 101_112, "ratio": 4.27}
        },
        "capacity": list(capacity),
    }
    return {"created": "2026-12-05", "figures": {"rp2040": q}}


def test_targets_met_with_the_cpu_left():
    doc = _doc(_row("adc", "int16", 4, 50_000, 0.397), _row("ads1299", "int24", 8, 16_000, 0.385))
    md = report_rp2040.markdown(doc)
    assert "| adc | int16 | **50,000 Hz x 4** | 200,000 |" in md
    assert "adc 4 x 25,000 Hz int16: **met** (up to 50,000 Hz x 4, CPU 39.7 % busy there, 60.3 % left)" in md
    assert "ads1299 8 x 16,000 Hz int24: **met**" in md
    assert "431,746 -> **101,112** (**4.27x**)" in md and "Limits of the emulation: rp2040js" in md


def test_a_target_not_met_names_the_ceiling_and_why_the_next_step_failed():
    nxt = {"rate": 25_000, "seconds": 3.0, "why": "2,184 instants dropped by the board", "busy_share": 0.993}
    doc = _doc(_row("adc", "int16", 4, 20_000, 0.9, nxt), _row("ads1299", "int24", 8, None))
    md = report_rp2040.markdown(doc)
    assert (
        "adc 4 x 25,000 Hz int16: **not met**, the ceiling is 20,000 Hz x 4 (25,000 Hz (3 emulated s): "
        "CPU 99.3 % busy; 2,184 instants dropped by the board)" in md
    )
    assert "ads1299 8 x 16,000 Hz int24: **not met**, the ceiling is nothing (nothing streamed)" in md
    assert "| ads1299 | int24 | none |" in md


def test_only_the_capacity_section_is_rewritten(tmp_path):
    readme = tmp_path / "README.md"
    head = f"# x\n\n{report.START}\nthe unix-port table\n{report.END}\n\n"
    readme.write_text(f"{head}{report_rp2040.START}\nold\n{report_rp2040.END}\ntail\n")
    report.update_readme(readme, _doc(_row("adc", "int16", 4, 50_000)))
    text = readme.read_text()
    assert text.startswith(head) and text.endswith(f"{report_rp2040.END}\ntail\n") and "old" not in text
    assert report_rp2040.markdown({"figures": {}}) == ""
