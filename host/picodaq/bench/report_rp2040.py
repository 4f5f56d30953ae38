"""Figure 8 (the Pico's capacity, measured on the emulated RP2040) as text.

`rows(figure)` gives the figure's rows of the benchmark table (report.py puts
them in the terminal's output); `markdown(doc)` the capacity table README.md
keeps in its own section, between START and END (`replace_section`), beside
the unix-port figures: one row per source and format, the highest rate with 0
drops, the emulated CPU share and cycles per frame there, where the cycles go
and why the next step up failed; then the framing cycles before and after (the
viper CRC it had, the Thumb CRC now), and the limits of the emulation.
"""

from __future__ import annotations

import re
from typing import Any

START = "<!-- rp2040:start -->"
END = "<!-- rp2040:end -->"


def _n(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _kcycles(x: float | None) -> str:
    return "n/a" if x is None else f"{x / 1000:,.0f} k"


def _parts(r: dict[str, Any]) -> str:
    b = r.get("breakdown") or {}
    names = {"source": "source", "framing": "framing + CRC", "writing": "USB writes"}
    return ", ".join(f"{names.get(k, 'loop, IRQs, rest')} {_pct(v)}" for k, v in b.items())


def _step(r: dict[str, Any]) -> str:
    """Why the next rate up failed (or that there is none), with its CPU share."""
    n = r.get("next")
    if not n:
        return ""
    if n.get("rate") is None:
        return f"none: {n['why']}"
    busy = f"CPU {_pct(n['busy_share'])} busy; " if n.get("busy_share") is not None else ""
    return f"{_n(n['rate'])} Hz ({n['seconds']:g} emulated s): {busy}{n['why']}"


def _next(r: dict[str, Any]) -> str:
    return f"next step {_step(r)}" if r.get("next") else ""


# the targets: (source, fmt, channels, rate)
TARGETS = (("adc", "int16", 4, 25_000), ("ads1299", "int24", 8, 16_000))


def targets(q: dict[str, Any]) -> str:
    """Whether each target streamed: met at the highest rate found, or the ceiling and why."""
    out = []
    for source, fmt, nch, rate in TARGETS:
        r = next((r for r in q.get("capacity", []) if (r["source"], r["fmt"]) == (source, fmt)), None)
        name = f"{source} {nch} x {_n(rate)} Hz {fmt}"
        if r is None:
            continue
        if r.get("rate") and r["rate"] >= rate and r["channels"] >= nch:
            out.append(
                f"{name}: **met** (up to {_n(r['rate'])} Hz x {r['channels']}, "
                f"CPU {_pct(r['busy_share'])} busy there, {_pct(1 - r['busy_share'])} left)"
            )
        else:
            top = f"{_n(r['rate'])} Hz x {r['channels']}" if r.get("rate") else "nothing"
            out.append(f"{name}: **not met**, the ceiling is {top} ({_step(r) or r.get('why', '')})")
    return "; ".join(out)


def rows(q: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    cmd = q["command"]
    rows = []
    starts = [b for b in q.get("budget", []) if b.get("kind") == "start"]
    most = max(starts, key=lambda b: b["allocated"]) if starts else None
    rows.append(
        (
            "8. Pico (RP2040, emulated): the sample ring, taken at boot",
            f"**{_n(q.get('ring_bytes'))} B** (HELLO ring_bytes); the streaming loop alone: **{_pct(q['floor']['busy_share'])}** "
            "of the CPU (ramp 10 Hz x 1)",
            (f"START allocates at most {_n(most['allocated'])} B ({most['source']}); " if most else "")
            + f"writing to USB CDC: {q['write']['busy_cycles_per_byte']:.1f} busy cycles a byte",
            cmd,
        )
    )
    fr = q.get("framing_ratio_old_new", {})
    if fr:
        rows.append(
            (
                "8. Pico (RP2040, emulated): cycles per SAMPLES frame, 8 channels, the largest frame of each format "
                "(header, copy and CRC-32; the framer on the real rp2 port, heap locked)",
                "; ".join(f"{k} {_n(v['frame_bytes'])} B: **{_kcycles(v['cycles_new'])}**" for k, v in fr.items()),
                "the same framer with the viper CRC it had: "
                + "; ".join(f"{k} {_kcycles(v['cycles_old'])} (**{v['ratio']:.2f}x**)" for k, v in fr.items()),
                cmd,
            )
        )
    for r in q.get("capacity", []):
        if not r.get("rate"):
            rows.append(
                (
                    f"8. Pico (RP2040, emulated): {r['source']} {r['fmt']} x {r['channels']}",
                    "no rate streamed",
                    r.get("why", ""),
                    cmd,
                )
            )
            continue
        rows.append(
            (
                f"8. Pico (RP2040, emulated): {r['source']} {r['fmt']} x {r['channels']}, "
                + (
                    "one point (--quick: no search)"
                    if q.get("quick")
                    else "the highest rate of the ladder with 0 drops and every value exact"
                ),
                f"**{_n(r['rate'])} Hz x {r['channels']} ({_n(r['samples_per_s'])} samples/s)** for {r['seconds']:g} "
                f"emulated s; CPU {_pct(r['busy_share'])} ({_pct(1 - r['busy_share'])} left), "
                f"{_kcycles(r['cycles_per_frame'])} cycles per frame",
                "; ".join(x for x in (_next(r), _parts(r)) if x),
                cmd,
            )
        )
    return rows


def markdown(doc: dict[str, Any]) -> str:
    """The Pico (RP2040) capacity table from a results document's rp2040 figure ("" without one)."""
    q = doc.get("figures", {}).get("rp2040")
    if not q:
        return ""
    lines = [
        "| source | format | highest rate x channels with 0 drops | samples/s | on the wire | emulated CPU busy (left) "
        "| cycles per frame | where the cycles go | next step up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in q.get("capacity", []):
        if not r.get("rate"):
            lines.append(f"| {r['source']} | {r['fmt']} | none | | | | | | {r.get('why', '')} |")
            continue
        lines.append(
            f"| {r['source']} | {r['fmt']} | **{_n(r['rate'])} Hz x {r['channels']}** | {_n(r['samples_per_s'])} "
            f"| {_n(r['wire_bytes_per_s'])} B/s | {_pct(r['busy_share'])} ({_pct(1 - r['busy_share'])}) "
            f"| {_n(r['cycles_per_frame'])} | {_parts(r)} | {_step(r)} |"
        )
    scope = (
        "one point each (--quick: no search)"
        if q.get("quick")
        else f"each row streamed {q['seconds']:g} emulated seconds"
    )
    out = [
        f"Measured by `{q['command']}` ({doc.get('created', '?')}): {scope} with 0 instants dropped by the "
        "board, 0 lost on the link and every value checked against the source (the ramp, the sine table, "
        f"the ADC model's channel and time codes, the ADS1299 model's frames); the ring was "
        f"{_n(q.get('ring_bytes'))} B (HELLO ring_bytes). The streaming loop alone (ramp 10 Hz x 1) keeps the "
        f"CPU {_pct(q['floor']['busy_share'])} busy; writing to USB CDC costs "
        f"{q['write']['busy_cycles_per_byte']:.1f} busy cycles a byte.",
        "",
        *lines,
    ]
    if (met := targets(q)) and not q.get("quick"):
        out += ["", f"Targets: {met}."]
    fr = q.get("framing_ratio_old_new", {})
    if fr:
        out += [
            "",
            "Cycles per SAMPLES frame of the framer (header, copy, CRC-32), 8 channels, heap locked, the "
            "largest frame of each format, before (viper CRC) and after (Thumb CRC), in one run: "
            + "; ".join(
                f"{k} {_n(v['frame_bytes'])} B: {_n(v['cycles_old'])} -> **{_n(v['cycles_new'])}** "
                f"(**{v['ratio']:.2f}x**)"
                for k, v in fr.items()
            )
            + ".",
        ]
    out += ["", f"Limits of the emulation: {q['limits']}."]
    return "\n".join(out) + "\n"


def replace_section(readme: str, body: str) -> str:
    """readme with the text between START and END replaced by body (readme unchanged without the markers)."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{START}\n{body.rstrip()}\n{END}", readme, count=1)
