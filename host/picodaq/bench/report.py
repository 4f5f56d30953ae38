"""The benchmark's results as tables: Markdown for README.md, plain text for a terminal.

`markdown(doc)` renders a results document (runner.run, or its JSON);
`update_readme(path, doc)` rewrites the part of a README between the
markers START and END (appending a "Benchmarks" section with them when the
README has none), leaving the rest byte for byte.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


def _n(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, measured, next to, reproduce) for each figure in doc."""
    f = doc.get("figures", {})
    out = []
    if "pipeline" in f:
        p = f["pipeline"]
        out.append(
            (
                f"1. Host pipeline, offline replay ({p['payload_bytes']}-B SAMPLES payloads; decode, pool, router, "
                "primary, 2 observers)",
                f"**{_n(p['pipeline']['frames_per_cpu_s'])} frames/s, {_n(p['pipeline']['mb_per_cpu_s'], 1)} MB/s** "
                f"per CPU-second (wall clock: {_n(p['pipeline']['frames_per_s'])} frames/s)",
                f"naive: {_n(p['naive']['frames_per_cpu_s'])} frames/s, pipeline/naive **{_ratio(p['ratio_pipeline_naive'])}**; "
                f"zlib.crc32 floor: {_n(p['floor']['frames_per_cpu_s'])} frames/s, pipeline/floor "
                f"{_ratio(p['ratio_pipeline_floor'])}",
                p["command"],
            )
        )
    if "alloc" in f:
        a = f["alloc"]
        m, g = a["memray"], a["growth"]
        if "pipeline" in m:
            measured = (
                f"**{m['pipeline']['allocations_per_frame']:.1f} allocations, "
                f"{_n(m['pipeline']['bytes_allocated_per_frame'])} B per frame**"
            )
            base = (
                f"naive: {m['naive']['allocations_per_frame']:.1f} allocations, "
                f"{_n(m['naive']['bytes_allocated_per_frame'])} B per frame"
            )
        else:
            measured, base = f"memray: {m.get('error', 'n/a')}", ""
        out.append(
            (
                "2. Allocation, steady state (memray; tracemalloc)",
                f"{measured}; retained growth over {_n(g['frames'])} frames: **{_n(g['retained_growth_bytes'])} B** "
                f"({_n(g['second_half_growth_bytes'])} B in the second half); "
                f"pool hit rate {a['pool_hit_rate']:.5f}",
                base,
                a["command"],
            )
        )
    if "live" in f:
        v = f["live"]
        r = v["receiver"]
        out.append(
            (
                f"3. Live: unpaced emulator through a pty ({v['config']['n_channels']} ch {v['config']['fmt']}, "
                f"{v['config']['payload_bytes']}-B payloads)",
                f"**{_n(r['mb_per_s'], 1)} MB/s, {_n(r['samples_per_s'] / 1e6, 2)} M samples/s, {v['lost']} lost**",
                f"raw pty drain: {_n(v['raw']['mb_per_s'], 1)} MB/s, live/raw **{_ratio(v['ratio_live_raw'])}**",
                v["command"],
            )
        )
    if "cpu" in f:
        c = f["cpu"]
        out.append(
            (
                f"4. Host CPU at the USB full-speed line rate ({c['n_channels']} ch {c['fmt']} at {_n(c['rate'])} Hz, "
                "paced)",
                f"**{c['cpu_percent']:.1f} % of one core** (process CPU time / wall time)",
                f"received {_n(c['mb_per_s'], 2)} MB/s of {c['target_mb_per_s']:.1f}, {c['lost']} lost",
                c["command"],
            )
        )
    if "latency" in f:
        t = f["latency"]
        a, b = t["receiver"], t["receiver_loaded"]
        e, x = t["emulator"], t["end_to_end"]
        out.append(
            (
                f"5a. Latency of the receiver alone: a frame's write into a pty (another process) to the "
                f"consumer's callback ({_n(a['frames_per_s'])} frames/s, {t['seconds']:g} s)",
                f"idle: **p50 {a['p50_us']:.0f} us, p99 {a['p99_us']:.0f} us**, max {a['max_us']:.0f} us; "
                f"two CPU burners: p50 {b['p50_us']:.0f} us, p99 {b['p99_us']:.0f} us, max {b['max_us']:.0f} us",
                f"{_n(a['frames'])} and {_n(b['frames'])} frames, {a['lost'] + b['lost']} lost",
                t["command"],
            )
        )
        out.append(
            (
                f"5b. Latency end to end, last sample instant (device clock) to the consumer's callback, on the "
                f"emulated board ({x['n_channels']} ch x {_n(x['rate'])} Hz, {x['samples_per_frame']} instants "
                f"per frame)",
                f"**p50 {x['p50_ms']:.2f} ms, p99 {x['p99_ms']:.2f} ms**, max {x['max_ms']:.2f} ms; of which the "
                f"emulator and its pty (a bare reader): p50 {e['p50_us'] / 1000:.2f} ms, p99 {e['p99_us'] / 1000:.2f} ms",
                f"{_n(x['blocks'])} blocks, {x['lost']} lost",
                t["command"],
            )
        )
    if "firmware" in f:
        w = f["firmware"]
        per = "; ".join(f"{name} {d['us_frame']:.1f} us" for name, d in w["formats"].items())
        naive = "; ".join(
            f"{name} {d['naive_us_frame']:.1f} us, {_n(d['naive_bytes_per_frame'])} B"
            for name, d in w["formats"].items()
        )
        out.append(
            (
                f"6. Firmware framing on the unix port ({w['n_channels']} ch x {w['samples_per_frame']} instants per "
                "SAMPLES frame)",
                f"**{per}** per frame; heap allocations: **{w['heap_allocations']}** (heap locked)",
                f"struct.pack + concatenation: {naive} per frame",
                w["command"],
            )
        )
    return out


def machine_line(doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    runs = sorted({v.get("runs") for v in doc.get("figures", {}).values()} - {None})
    return (
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores; Python {m.get('python', '?')}, "
        f"MicroPython {m.get('micropython', '?')}; {m.get('os', '?')}; load average at start "
        f"{', '.join(str(x) for x in m.get('load_average', []))}. "
        f"Run {doc.get('created', '?')} by `{doc.get('command', 'picodaq bench')}` in {doc.get('seconds', 0):g} s"
        + (" (--quick: small sizes, for tests)" if doc.get("quick") else "")
        + f"; each timing is the median of {'/'.join(str(r) for r in runs)} runs (per figure, as JSON `runs`); "
        "each ratio is taken within one run, then the median of those is shown (so it need not equal the "
        "ratio of the medians)."
    )


def markdown(doc: dict[str, Any]) -> str:
    lines = [machine_line(doc), "", "| figure | measured | next to | reproduce |", "|---|---|---|---|"]
    for fig, measured, base, cmd in rows(doc):
        lines.append(f"| {fig} | {measured} | {base} | `{cmd}` |")
    return "\n".join(lines) + "\n"


def text(doc: dict[str, Any]) -> str:
    """The same figures for a terminal: one block per figure."""
    out = [machine_line(doc).replace("`", ""), ""]
    for fig, measured, base, cmd in rows(doc):
        out.append(fig)
        out.append(f"    {measured.replace('**', '')}")
        if base:
            out.append(f"    {base.replace('**', '')}")
        out.append(f"    reproduce: {cmd}")
    return "\n".join(out) + "\n"


def replace_section(readme: str, body: str) -> str:
    """readme with the text between START and END replaced by body (a new section appended if absent)."""
    block = f"{START}\n{body.rstrip()}\n{END}"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if pattern.search(readme):
        return pattern.sub(lambda _: block, readme, count=1)
    sep = "" if readme.endswith("\n") or not readme else "\n"
    return f"{readme}{sep}\n## Benchmarks\n\n{block}\n"


def update_readme(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(replace_section(path.read_text(), markdown(doc)))
