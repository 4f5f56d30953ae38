"""Figure 5a's text: what the default Link adds to the bare reader, percentile by percentile."""

from __future__ import annotations

from typing import Any

from picodaq.bench.report import rows


def _reader(p50: float, p99: float) -> dict[str, Any]:
    return {"frames": 1000, "lost": 0, "p50_us": p50, "p99_us": p99, "p999_us": p99 * 2, "max_us": p99 * 4}


def _latency_row(bare_idle_p99: float) -> str:
    t = {
        "receiver": _reader(121, 292),
        "receiver_loaded": _reader(76, 183),
        "receiver_bare": _reader(94, bare_idle_p99),
        "receiver_bare_loaded": _reader(44, 135),
        "emulator": {"frames": 3000, "p50_us": 1127.5, "p99_us": 1734.1, "max_us": 10842.0},
        "end_to_end": {"blocks": 3025, "p50_ms": 1.21, "p99_ms": 1.87, "max_ms": 5.08, "rate": 1000},
        "seconds": 60.0,
        "command": "picodaq bench --only latency",
    }
    t["end_to_end"].update(n_channels=8, samples_per_frame=20, lost=0)
    t["receiver"].update(frames_per_s=500.0, rounds=6)
    found = [r for r in rows({"figures": {"latency": t}}) if r[0].startswith("5a.")]
    assert len(found) == 1
    return found[0][1]


def test_the_link_adds_what_it_costs_over_the_bare_reader() -> None:
    text = _latency_row(bare_idle_p99=250)
    assert "**+27 us at p50, +42 us at p99** idle" in text
    assert "**+32 us at p50, +48 us at p99** loaded" in text


def test_a_bare_reader_slower_than_the_link_is_noise_not_a_saving() -> None:
    text = _latency_row(bare_idle_p99=409)
    assert "-117" not in text
    assert "nothing measurable at p99 (the bare reader's own p99 was 117 us higher in its turns" in text
    assert "+27 us at p50" in text
