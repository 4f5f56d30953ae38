# MicroPython script for the rp2 port (the emulated RP2040), not a CPython module:
# picodaq.bench.rp2040_board runs it in the raw REPL after a soft reset. The ring budget:
# main.py's boot sequence on the fresh heap (budget.early, budget.take, the App),
# then START of each source at its heaviest with the GC off, so gc.mem_free()
# falls by every byte START allocates. Kept small: its own bytecode takes heap too.
# Prints one JSON object per line; the last line is {"done": true}.
import gc
import json


def say(**kw):
    print(json.dumps(kw))


def budget_part():
    # main.py's boot, then START of each source at its heaviest, with the GC off so
    # gc.mem_free() falls by every byte START allocates
    from picodaq_fw import budget
    from picodaq_fw.contracts import FMT_INT16, FMT_INT24, FMT_INT32, SRC_ADC, SRC_ADS1299, SRC_RAMP, SRC_SINE

    gc.collect()
    free0 = gc.mem_free()
    budget.early()
    ring = budget.take(budget.RP2_RESERVE)
    from picodaq_fw.app import App
    from picodaq_fw.hal_rp2 import Hal

    app = App(Hal(), ring)
    gc.collect()
    say(
        kind="budget",
        free_at_boot=free0,
        reserve=budget.RP2_RESERVE,
        ring_bytes=len(ring),
        boot_buffers=budget.FRAME_BYTES + 2 * budget.DMA_BLOCK_BYTES,
        free_idle=gc.mem_free(),
    )
    hal = app.hal
    for name, kind, fmt, bps, rate, mask, spf in (
        ("ramp", SRC_RAMP, FMT_INT32, 4, 25000, 0xFF, 127),
        ("sine", SRC_SINE, FMT_INT32, 4, 25000, 0xFF, 127),
        ("adc", SRC_ADC, FMT_INT16, 2, 100000, 0x1F, 408),
        ("ads1299", SRC_ADS1299, FMT_INT24, 3, 16000, 0xFF, 170),
    ):
        nch = bin(mask).count("1")
        gc.collect()
        gc.disable()
        f0 = gc.mem_free()
        src = hal.source(kind)
        app.ring.configure(8, spf, nch * bps)
        src.start(nch, fmt, rate)
        hal.start(app.ring, src, rate, mask, app.markers)
        f1 = gc.mem_free()
        gc.enable()
        gc.collect()
        f2 = gc.mem_free()
        hal.stop()
        gc.collect()
        say(
            kind="start",
            source=name,
            rate=rate,
            channels=nch,
            allocated=f0 - f1,
            kept_while_streaming=f0 - f2,
            free_while_streaming=f2,
        )


budget_part()
say(done=True)
