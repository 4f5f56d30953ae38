"""`picodaq bench`: the whole product measured against its limits and naive baselines.

    picodaq bench [--quick] [--only FIGURE,...] [--json PATH] [--readme README.md]

Figures (one module each; runner.py runs them, report.py renders them):

1. pipeline.py  host pipeline replaying a capture, next to a naive decoder and a zlib.crc32 floor
2. alloc.py     allocations per frame on the hot path (memray), retained growth (tracemalloc), pool hit rate
3. live.py      the emulated board unpaced through a pty into the receiver, next to a raw pty drain
4. cpu.py       host CPU% receiving 1.2 MB/s paced from the emulated board
5. latency.py   device instant to the primary consumer's callback, p50 / p99 / max
6. firmware.py  the firmware's framer on the unix port (fw_frames.py), next to a struct.pack framer
7. peer.py      beside BrainFlow's Cyton driver: CPU per rate, and the same damage fed to both
                (cyton.py: the Cyton emulator; peer_client.py: BrainFlow's side; damage.py: the damage)
8. rp2040.py    what a Pico sustains, on the emulated RP2040: the capacity search per source and format
                (rp2040_board.py: the flashed Pico, its raw REPL, the write test; device/rp2040_probe.py and
                device/rp2040_budget.py: MicroPython run on it; rp2040_stream.py: one checked stream in emulated
                cycles; rp2040_costs.py: the cost model; report_rp2040.py: its README section)

frames.py makes synthetic frames at memory speed (also used by the tests);
session.py runs an emulated board into a Link over a measured window.
"""
