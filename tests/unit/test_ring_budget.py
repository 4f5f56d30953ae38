"""The firmware's ring rule as the host mirrors it (`picodaq info`'s ring duration): as many whole
frames of the ring's bytes as fit, at most RING_MAX_FRAMES, refused below RING_FLOOR_S."""

from __future__ import annotations

import re
import struct

from picodaq import contracts as C
from picodaq.cli.info import ring_doc, ring_line
from picodaq.flash.firmware import firmware_dir
from picodaq.protocol.messages import Hello
from picodaq.recording.config import RING_FLOOR_S, RING_MAX_FRAMES, StreamConfig, ring_max_frames

CORE = struct.pack("<BBBBI8s8sBBI", 0, 1, 0, 1, C.CONTRACT_HASH, b"\x01" * 8, b"rp2\0\0\0\0\0", 8, 0, 200_000)


def hello(ring_bytes: int | None) -> Hello:
    if ring_bytes is None:
        return Hello.parse(CORE)
    return Hello.parse((CORE + bytes([0b1111, 0]) + struct.pack("<I", ring_bytes)).ljust(64, b"\0"))


def test_the_host_mirrors_the_firmwares_constants():
    src = (firmware_dir() / "picodaq_fw" / "ring.py").read_text()
    assert int(re.search(r"^MAX_SLOTS = const\((\d+)\)", src, re.M).group(1)) == RING_MAX_FRAMES
    # each HAL's RING_SLOTS, by the platform its HELLO names
    rp2 = (firmware_dir() / "picodaq_fw" / "hal_rp2.py").read_text()
    assert re.search(r"^    RING_SLOTS = MAX_SLOTS\b", rp2, re.M) and ring_max_frames("rp2") == RING_MAX_FRAMES
    unix = (firmware_dir() / "picodaq_fw" / "hal_unix.py").read_text()
    assert int(re.search(r"^    RING_SLOTS = const\((\d+)\)", unix, re.M).group(1)) == ring_max_frames("linux") > 128
    assert int(re.search(r"^FLOOR_MS = const\((\d+)\)", src, re.M).group(1)) == RING_FLOOR_S * 1000


def test_ring_seconds_counts_whole_frames_up_to_the_frame_cap():
    adc = StreamConfig(25_000, 0xF, C.SRC_ADC, C.FMT_INT16)  # 500 instants (4,000 B) a frame
    assert adc.frame_samples() == 500
    assert adc.ring_frames(166_640) == 41 and adc.ring_seconds(166_640) == 41 * 500 / 25_000
    slow = StreamConfig(250, 0xFF, C.SRC_ADS1299, C.FMT_INT24)  # 5 instants (120 B) a frame: the cap binds
    assert slow.ring_frames(166_640) == RING_MAX_FRAMES and slow.ring_seconds(166_640) == 128 * 5 / 250
    tiny = StreamConfig(25_000, 0xF, C.SRC_ADC, C.FMT_INT16, samples_per_frame=16)
    assert tiny.ring_seconds(166_640) == 128 * 16 / 25_000 < RING_FLOOR_S


def test_info_says_the_duration_and_when_the_board_would_refuse():
    ok = ring_line(hello(166_640), StreamConfig(25_000, 0xF, fmt=C.FMT_INT16))
    assert (
        ok == "ring duration   0.82 s at 25,000 Hz x 4 ch int16, 500 instants per frame, 201,500 B/s"
    )  # frames of 4,030 B
    small = ring_line(hello(32_768), StreamConfig(100_000, 0x3, fmt=C.FMT_INT32))
    assert "less than the 0.1 s the board requires, so it refuses this stream" in small
    assert ring_line(hello(None), StreamConfig()).endswith("unknown (the board's HELLO does not say its ring's size)")
    doc = ring_doc(hello(166_640), StreamConfig(16_000, 0xFF, fmt=C.FMT_INT24))
    assert doc == {
        "ring_bytes": 166_640,
        "rate": 16_000,
        "n_channels": 8,
        "fmt": "int24",
        "samples_per_frame": 170,
        "frames": 40,
        "seconds": 0.425,
        "floor_seconds": 0.1,
        "fits": True,
    }
    assert ring_doc(hello(None), StreamConfig()) is None


def test_the_frame_buffer_taken_at_boot_holds_the_largest_frame():
    src = (firmware_dir() / "picodaq_fw" / "budget.py").read_text()
    assert int(re.search(r"^FRAME_BYTES = const\((\d+)\)", src, re.M).group(1)) == C.OVERHEAD + C.MAX_PAYLOAD
