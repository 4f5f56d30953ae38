"""The benchmark's results as tables: Markdown for README.md, plain text for a terminal.

`markdown(doc)` renders a results document (runner.run, or its JSON);
`update_readme(path, doc)` rewrites the part of a README between the
markers START and END (appending a "Benchmarks" section with them when the
README has none), leaving the rest byte for byte; the Pico's capacity
(figure 8) has its own section and renderer, report_rp2040.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import report_rp2040

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


def _floor(c: dict[str, Any]) -> str:
    """The read floors beside the receiver's CPU (each absent from results measured before it was)."""
    f, cat, dropped = c.get("read_floor_cpu_percent"), c.get("c_read_floor_cpu_percent"), c.get("c_read_floor_dropped")
    out = "not measured" if f is None else f"{f:.1f} %"
    if cat is not None:
        out += f"; `cat` (C, blocking reads) reading the same stream: {cat:.1f} %"
        if dropped:
            out += f" (it fell behind: the board dropped {dropped:,} instants)"
    t, p = c.get("c_tty_cpu_percent"), c.get("c_pipe_cpu_percent")
    if t is not None and p is not None:
        out += (
            f"; `cat` reading whole frames written at the same rate (by this process, no board) out of a"
            f" pty: {t:.2f} %, out of a pipe: {p:.2f} % (a tty hands a reader at most 4 KiB a read)"
        )
    return out


def _decoded(c: dict[str, Any]) -> str:
    latest, k = c.get("batch_latest_s"), c.get("kernel_cpu_percent")  # each absent from older results
    out = "" if k is None else f", {k:.1f} % of it in the kernel: the tty's reads, poll(), wake-ups"
    return out if latest is None else f"{out}; batches decoded {latest:g} s apart, as a recording's"


def _inline_latency(t: dict[str, Any]) -> str:
    i, j = t.get("receiver_inline"), t.get("receiver_inline_loaded")  # absent from older results
    if not i or not j:
        return ""
    return (
        f"; inline (Link.open(inline=True), no reader thread): idle p50 {i['p50_us']:.0f} us, "
        f"p99 {i['p99_us']:.0f} us; two CPU burners: **p50 {j['p50_us']:.0f} us, p99 {j['p99_us']:.0f} us**, "
        f"max {j['max_us']:.0f} us"
    )


def _bare_latency(t: dict[str, Any]) -> str:
    """The bare reader's floor and what the default Link adds to it, load by load."""
    i, j = t.get("receiver_bare"), t.get("receiver_bare_loaded")  # absent from older results
    if not i or not j:
        return ""
    a, b = t["receiver"], t["receiver_loaded"]
    return (
        f"; a bare reader in turns with them (select, read, no picodaq: the scheduler's and the tty's "
        f"share): idle p50 {i['p50_us']:.0f} us, p99 {i['p99_us']:.0f} us; two CPU burners: p50 "
        f"{j['p50_us']:.0f} us, p99 {j['p99_us']:.0f} us, max {j['max_us']:.0f} us. The default Link adds "
        f"**{_added(a, i, 'p50')}, {_added(a, i, 'p99')}** idle; **{_added(b, j, 'p50')}, {_added(b, j, 'p99')}** loaded"
    )


def _added(ours: dict[str, Any], bare: dict[str, Any], at: str) -> str:
    """What the Link adds to the bare reader at one percentile. A reader cannot cost less than
    reading alone: a negative difference is the host waking the bare reader's turns later, so it
    says so instead of printing a saving that is not there."""
    d = ours[f"{at}_us"] - bare[f"{at}_us"]
    if d >= 0:
        return f"+{d:.0f} us at {at}"
    return (
        f"nothing measurable at {at} (the bare reader's own {at} was {-d:.0f} us higher in its turns: the host's noise)"
    )


def _held_latency(t: dict[str, Any]) -> str:
    """Idle again, a CPU latency request of 0 us held (--cpu-latency 0): the default Link and the bare reader."""
    h, i = t.get("receiver_cpu_latency"), t.get("receiver_bare_cpu_latency")  # absent from older results
    if not h:
        return ""
    if "unavailable" in h:
        return f". Idle with a CPU latency request of 0 us: not measured ({h['unavailable']})"
    return (
        f". Idle, holding a CPU latency request of 0 us (`--cpu-latency 0`, PM QoS: idle CPUs poll, for power): "
        f"default Link **p50 {h['p50_us']:.0f} us, p99 {h['p99_us']:.0f} us**, max {h['max_us']:.0f} us"
        + ("" if not i else f"; the bare reader p50 {i['p50_us']:.0f} us, p99 {i['p99_us']:.0f} us")
    )


def _held_lost(t: dict[str, Any]) -> str:
    h = t.get("receiver_cpu_latency")
    return "" if not h or "unavailable" in h else f"; held: {_n(h['frames'])} frames, {h['lost']} lost"


def _n(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def rows(doc: dict[str, Any], skip: tuple[str, ...] = ()) -> list[tuple[str, str, str, str]]:
    """(figure, measured, next to, reproduce) for each figure in doc, but those in skip."""
    f = {k: v for k, v in doc.get("figures", {}).items() if k not in skip}
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
                f"**{c['cpu_percent']:.1f} % of one core** (process CPU time / wall time{_decoded(c)})",
                f"received {_n(c['mb_per_s'], 2)} MB/s of {c['target_mb_per_s']:.1f}, {c['lost']} lost; "
                f"a bare loop only reading the tty in the same bursts: {_floor(c)}",
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
                f"consumer's callback ({_n(a['frames_per_s'])} frames/s, {t['seconds']:g} s per reader"
                + (f" in {a['rounds']} turns" if a.get("rounds", 1) > 1 else "")
                + ")",
                f"default Link (its reader thread lends the port to a waiting pump()): idle: **p50 "
                f"{a['p50_us']:.0f} us, p99 {a['p99_us']:.0f} us**, max {a['max_us']:.0f} us; two CPU burners: "
                f"**p50 {b['p50_us']:.0f} us, p99 {b['p99_us']:.0f} us**, max {b['max_us']:.0f} us"
                + _inline_latency(t)
                + _bare_latency(t)
                + _held_latency(t),
                f"{_n(a['frames'])} and {_n(b['frames'])} frames, {a['lost'] + b['lost']} lost" + _held_lost(t),
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
    if "peer" in f:
        out += _peer_rows(f["peer"])
    if "rp2040" in f:
        out += report_rp2040.rows(f["rp2040"])
    return out


def _rate(hz: float) -> str:
    return f"{hz / 1000:g} kHz" if hz >= 1000 else f"{hz:g} Hz"


def _peer_rows(q: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    per_rate, pd_counts, bf_counts = [], [], []
    for r in q["rates"]:
        pd, bf = r["picodaq"], r["brainflow"]
        if bf is None:
            per_rate.append(f"{_rate(r['rate'])} {pd['cpu_percent']:.2f} %")
        else:
            per_rate.append(
                f"{_rate(r['rate'])} **{_ratio(r['ratio'])}** ({pd['cpu_percent']:.2f} % vs {bf['cpu_percent']:.2f} %)"
            )
            bf_counts.append(f"{_n(bf['received'])}/{_n(bf['sent'])}{'' if bf['exact'] else ' NOT exact'}")
        pd_counts.append(f"{_n(pd['received'])}/{_n(pd['expected'])}{'' if pd['exact'] else ' NOT exact'}")
    if q.get("brainflow_missing"):
        measured = "picodaq CPU (% of one core): " + "; ".join(per_rate)
        base = f"BrainFlow: {q['brainflow_missing']}"
    else:
        measured = "picodaq / BrainFlow CPU (% of one core): " + "; ".join(per_rate)
        base = (
            f"samples received/expected, each value checked: picodaq {', '.join(pd_counts)}; "
            f"BrainFlow {', '.join(bf_counts)} (received/sent: its last packets are in flight at the stop; "
            "`picodaq record --seconds` ends on a frame boundary)"
        )
    rows = [
        (
            f"7. Beside a C++ peer: BrainFlow {q.get('brainflow') or ''} (OpenBCI Cyton driver, from a pty fed by "
            f"our Cyton emulator) and `picodaq record`, {q['n_channels']} ch, paced; CPU of the receiving process "
            f"over a {q['window_seconds']:g} s window after {q['warmup_seconds']:g} s of stream",
            measured,
            base,
            q["command"],
        )
    ]
    d = q["damage"]

    def side(name: str, s: dict[str, Any]) -> str:
        text = (
            f"{name}: **{_n(s['wrong_values_unflagged'])} wrong values delivered without a warning** "
            f"(of {_n(s['values_delivered'])}); {_n(s['missing_instants'])} of {_n(s['instants_span'])} instants "
            "missing"
        )
        if s.get("missing_reported") is not None:
            text += f", {_n(s['missing_reported'])} of them counted"
        else:
            text += f", none counted (package number jumps: {_n(s['package_num_jumps'])})"
        rep = s["reported"]
        if "warnings" in rep:
            said = ", ".join(f"{v} x {k}" for k, v in rep["messages"].items()) or "nothing"
            return text + f"; its log said: {said}"
        return text + "; counters: " + ", ".join(f"{k} {v}" for k, v in rep.items() if v)

    measured = side("picodaq", d["picodaq"])
    base = side("BrainFlow", d["brainflow"]) if "brainflow" in d else f"BrainFlow: {q.get('brainflow_missing')}"
    rows.append(
        (
            f"7. The same damage to both ({d['text']} per byte of the data stream, seed {d['seed']}; "
            f"{_rate(d['rate'])}): picodaq's capture through `picodaq replay`, BrainFlow live from the emulator",
            measured,
            base,
            q["command"],
        )
    )
    return rows


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
    """The table between START and END: every figure but the Pico's capacity (its own section)."""
    lines = [machine_line(doc), "", "| figure | measured | next to | reproduce |", "|---|---|---|---|"]
    for fig, measured, base, cmd in rows(doc, skip=("rp2040",)):
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
    """Rewrite the sections doc has figures for: the benchmark table (any figure but rp2040) and the
    Pico's capacity table (rp2040, between report_rp2040's markers, when the README has them); a
    run of `--only rp2040` leaves the benchmark table as it was, and the other figures the Pico's."""
    text = path.read_text()
    if rows(doc, skip=("rp2040",)):
        text = replace_section(text, markdown(doc))
    if table := report_rp2040.markdown(doc):
        text = report_rp2040.replace_section(text, table)
    path.write_text(text)
