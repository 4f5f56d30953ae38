"""Figure 8: what a Pico (RP2040) sustains, measured on the emulated chip.

The real rp2 port (the vendored RPI_PICO uf2) runs the firmware on rp2040js
(`picodaq.boards.rp2040`), flashed once by `picodaq flash` into a temporary
folder. Time on the emulated chip is its own: instructions' cycles at 125 MHz
(8 ns each), so CPU shares are exact in emulated cycles however loaded this
machine is; the runner reports cycles elapsed and cycles the core executed
(busy) over its control channel.

1. The cycle probe (device/rp2040_probe.py, run in the raw REPL after a soft reset,
   heap locked as in the streaming loop): cycles per SAMPLES frame of the
   framer per format and frame size, with the Thumb CRC and with the viper CRC
   it replaced (the old framing), in one run; CRC cycles per byte; each source's
   cycles per instant (ramp and sine fills; the ADC's and the ADS1299's DMA
   block handlers); the ring budget (free heap at boot, the ring, what START
   allocates per source).
2. Writing: busy cycles per byte while the firmware writes full frames to the
   USB CDC link and the host reads them.
3. The streaming loop's floor: busy share streaming ramp 10 Hz x 1.
4. Capacity: for each source and format, the highest rate (a ladder of rates,
   at the source's natural channel count, frames of ~20 ms as `picodaq record`
   chooses) that streams `seconds` emulated seconds with zero drops: the
   board's samples_dropped, the host's losses and gaps, every value checked
   against what the source must produce (the ramp, the sine table, the ADC
   model's channel/time codes, the ADS1299 model's ramp) and, for the ADS1299,
   frames the chip held that were not read before the next (the model's count).
   A prediction from 1-3 picks where to start; short runs find the step; the
   full-length run confirms it; the next step up is shown with why it failed.

Here: the search (3 and 4) and the figure's document. The board and the
probe runs are rp2040_board.py's, one checked stream is rp2040_stream.py's,
the cost model rp2040_costs.py's, the README section report_rp2040.py's.

What the emulation cannot show (said with the results): XIP cache misses
(rp2040js fetches from flash at no cost, so real cycles are higher), real USB
timing (IN transfers complete after a fixed delay; a real host polls), analog
behaviour, bus contention between the DMA and the core, a real ADS1299.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..transport.link import Link
from .rp2040_board import BUDGET, PROBE, Pico, Say, run_probe, write_cost
from .rp2040_costs import Costs, breakdown, framing_ratio
from .rp2040_stream import Point, stream

# a flash image `picodaq flash` made of this firmware to start from instead of flashing one (the
# rp2040 tests' session image: their --quick run then fits a test's budget)
IMAGE_ENV = "PICODAQ_BENCH_RP2040_IMAGE"
LIMITS = (
    "rp2040js: no XIP cache misses (code runs from flash at no cost: real cycles are higher), fixed USB "
    "packet timing (IN transfers complete after 10 us; a real host polls every 1 ms frame, up to 19 "
    "packets), no analog front end (the ADC and ADS1299 are models answering exact codes), no bus "
    "contention between DMA and the core, no second core"
)
# the rates tried per source, at its natural channel count; ADC rates give a whole number of 1/256
# cycles of its 48 MHz clock per conversion at 4 channels
LADDERS = {
    "ramp": (1000, 2000, 4000, 5000, 8000, 10000, 12500, 16000, 20000, 25000),
    "sine": (1000, 2000, 4000, 5000, 8000, 10000, 12500, 16000, 20000, 25000),
    "adc": (1000, 2500, 5000, 10000, 12500, 20000, 25000, 30000, 37500, 40000, 50000),
    "ads1299": (250, 500, 1000, 2000, 4000, 8000, 16000),
}
COMBOS = (
    ("ramp", "int16", 8),
    ("ramp", "int24", 8),
    ("ramp", "int32", 8),
    ("sine", "int16", 8),
    ("sine", "int24", 8),
    ("sine", "int32", 8),
    ("adc", "int16", 4),
    ("ads1299", "int24", 8),
)
QUICK_POINTS = (("ramp", "int16", 8, 1000), ("adc", "int16", 4, 5000))


def capacity(
    board: Any,
    link: Link,
    costs: Costs,
    combo: tuple[str, str, int],
    seconds: float,
    short: float,
    max_rate: int,
    say: Say,
) -> dict[str, Any]:
    source, fmt, nch = combo
    ladder = [r for r in LADDERS[source] if r * nch <= max_rate]
    # start at the highest step the cost model expects to fit
    i = max([k for k, r in enumerate(ladder) if costs.predict(Point(source, fmt, nch, r)) < 0.95] or [0])
    tried: dict[int, dict[str, Any]] = {}

    def short_run(k: int) -> dict[str, Any]:
        if k not in tried:
            say(f"{source} {fmt} x {nch}: {ladder[k]} Hz for {short:g} emulated s")
            tried[k] = stream(board, link, Point(source, fmt, nch, ladder[k]), short)
        return tried[k]

    if short_run(i)["ok"]:
        while i + 1 < len(ladder) and short_run(i + 1)["ok"]:
            i += 1
    else:
        while i > 0 and not short_run(i)["ok"]:
            i -= 1
    best: dict[str, Any] | None = None
    fail: dict[str, Any] | None = tried.get(i + 1)
    while i >= 0 and short_run(i)["ok"]:
        say(f"{source} {fmt} x {nch}: {ladder[i]} Hz for {seconds:g} emulated s")
        run = stream(board, link, Point(source, fmt, nch, ladder[i]), seconds)
        if run["ok"]:
            best = run
            break
        fail = run
        i -= 1
    out: dict[str, Any] = {"source": source, "fmt": fmt, "channels": nch, "ladder": ladder}
    if best is None:
        out.update(ok=False, why=(fail or short_run(0))["why"])
        return out
    out.update(ok=True, **{k: best[k] for k in best if k not in ("ok", "why")})
    out["breakdown"] = breakdown(costs, best)
    out["predicted_busy"] = round(costs.predict(Point(source, fmt, nch, best["rate"])), 4)
    if fail is not None:
        out["next"] = {
            "rate": fail["rate"],
            "seconds": fail["seconds"],
            "why": fail["why"],
            "busy_share": fail.get("busy_share"),
        }
    else:
        out["next"] = {"rate": None, "why": f"the firmware's limit: {max_rate:,} samples/s in all"}
    return out


def measure(quick: bool, seconds: float, short: float, say: Say) -> dict[str, Any]:
    given = os.environ.get(IMAGE_ENV)
    pico = Pico(say, Path(given) if given else None)
    out: dict[str, Any] = {"limits": LIMITS, "quick": quick, "image": given or "flashed by picodaq flash"}
    try:
        say(f"starting from {given}" if given else "flashing an emulated RP2040 with picodaq flash")
        out["flash_seconds"] = round(pico.flash(), 1)
        board = pico.board()
        try:
            say("ring budget (raw REPL: main.py's boot, then START of each source)")
            out["budget"] = run_probe(board, quick, BUDGET)
            say("cycle probe (raw REPL, heap locked)")
            probe = run_probe(board, quick, PROBE)
            say("writing cost: full frames to the USB CDC link")
            write = write_cost(board, 4110, 50_000 if quick else 1_000_000)
        finally:
            board.stop()
        out["probe"] = probe
        out["write"] = write
        board = pico.board()
        try:
            with Link.open(board.port) as link:
                hello = link.get_info()
                out["ring_bytes"] = hello.ring_bytes
                out["max_rate"] = hello.max_rate
                say("the streaming loop's floor: ramp 10 Hz x 1")
                floor = stream(board, link, Point("ramp", "int16", 1, 10), 0.3 if quick else 5.0)
                out["floor"] = floor
                costs = Costs(probe, write, floor["busy_share"])
                rows = []
                if quick:
                    for src, fmt, nch, rate in QUICK_POINTS:
                        say(f"{src} {fmt} x {nch} at {rate} Hz for {seconds:g} emulated s")
                        run = stream(board, link, Point(src, fmt, nch, rate), seconds)
                        run["breakdown"] = breakdown(costs, run)
                        rows.append(run)
                else:
                    for combo in COMBOS:
                        rows.append(capacity(board, link, costs, combo, seconds, short, hello.max_rate, say))
                out["capacity"] = rows
        finally:
            board.stop()
    finally:
        pico.close()
    out["framing_ratio_old_new"] = framing_ratio(out["probe"])
    return out
