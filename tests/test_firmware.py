"""The firmware on MicroPython's unix port, through a real pty: every command
and error code, 10,000 frames with the heap locked, a deliberate allocation
that must fault cleanly, and no int >= 2**30 ever packed into a frame."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from picodaq import contracts as C
from picodaq.blocks import ramp_counts
from picodaq.errors import CommandFailed
from picodaq.frames import encode_command
from picodaq.link import Link


def status_code(link: Link, opcode: int, args: bytes = b"") -> int:
    try:
        return link.command(opcode, args).status
    except CommandFailed as e:
        return e.status


def configure_code(link, rate=1000, mask=0xFF, source=C.SRC_RAMP, fmt=C.FMT_INT16, spf=32):
    return status_code(link, C.OP_CONFIGURE, struct.pack("<IIBBH", rate, mask, source, fmt, spf))


@pytest.fixture
def fw_link(make_board):
    def make(unpaced=True, driver=False, env=None):
        board = make_board(unpaced=unpaced, driver=driver, env=env)
        link = Link.open(board.port)
        links.append(link)
        return link

    links: list[Link] = []
    yield make
    for link in links:
        link.close()


def test_every_command_and_error_code(fw_link):
    link = fw_link(unpaced=False)
    assert link.ping().status == C.ST_OK
    hello = link.get_info()
    assert hello.platform == "linux" and hello.protocol_version == 1 and hello.max_channels == 32
    assert hello.contract_hash == C.CONTRACT_HASH
    assert configure_code(link, rate=0) == C.ST_BAD_ARGUMENT
    assert configure_code(link, mask=0) == C.ST_BAD_ARGUMENT
    assert configure_code(link, fmt=9) == C.ST_BAD_ARGUMENT
    assert configure_code(link, source=7) == C.ST_BAD_ARGUMENT
    assert configure_code(link, source=C.SRC_ADC) == C.ST_UNSUPPORTED
    assert configure_code(link, source=C.SRC_ADS1299) == C.ST_UNSUPPORTED
    assert configure_code(link, spf=2000) == C.ST_BAD_ARGUMENT  # 8 ch x 2000 x 2 B > 4096
    assert configure_code(link, rate=3_000_000, mask=0xFFFF) == C.ST_BAD_ARGUMENT  # beyond max_rate
    assert link.log_texts()[-1].startswith("CONFIGURE")  # refusals are explained in a LOG
    assert status_code(link, 0x63) == C.ST_UNKNOWN_OPCODE
    assert configure_code(link) == C.ST_OK
    st = link.get_status()
    assert st.state == C.STATE_IDLE and st.last_error == C.ST_OK
    assert link.start().status == C.ST_OK
    assert status_code(link, C.OP_START) == C.ST_BUSY
    assert configure_code(link) == C.ST_BUSY
    assert status_code(link, C.OP_GET_INFO) == C.ST_BUSY
    st = link.get_status()
    assert st.state == C.STATE_STREAMING and st.ring_capacity >= 1000  # >= 1 s at 1 kHz
    assert link.mark(77).status == C.ST_OK
    assert link.pump_until(lambda: link.receiver.markers, 1.0)
    assert link.receiver.markers[-1].code == 77
    final = link.stop()
    assert final.state == C.STATE_IDLE and final.last_error == C.ST_OK
    assert link.receiver.stats.samples > 0
    assert link.stop().state == C.STATE_IDLE  # STOP when idle is harmless
    assert link.ping().status == C.ST_OK


def test_garbage_and_broken_commands_are_ignored(fw_link):
    link = fw_link(unpaced=False)
    bad_crc = bytearray(encode_command(0, C.OP_PING, 5))
    bad_crc[-1] ^= 0xFF
    link.write(b"\x00\x11\xa5\x00" + bytes(bad_crc) + b"\xa5\x5a\x07\x10")
    assert link.ping().status == C.ST_OK


@pytest.mark.parametrize("fmt", [C.FMT_INT16, C.FMT_INT24, C.FMT_INT32])
def test_ten_thousand_frames_with_the_heap_locked(fw_link, fmt):
    link = fw_link(unpaced=True)
    link.get_info()
    assert configure_code(link, rate=8000, mask=0xFF, fmt=fmt, spf=32) == C.ST_OK
    bad = []
    blocks = []

    def check(block):
        blocks.append(block.n_samples)
        if not np.array_equal(block.counts, ramp_counts(block.first_index, block.n_samples, 8, fmt)):
            bad.append(block.first_index)

    link.receiver.block_handlers.append(check)
    link.start()
    assert link.pump_until(lambda: len(blocks) >= 10_000, 120), f"only {len(blocks)} frames"
    final = link.stop()
    assert final.last_error == C.ST_OK and final.state == C.STATE_IDLE
    assert final.samples_dropped == 0
    s = link.receiver.stats
    assert bad == []
    assert s.crc_errors == s.samples_lost == s.seq_lost == s.decode_errors == 0
    assert s.samples == sum(blocks) >= 320_000


def test_an_allocation_in_the_hot_path_faults_cleanly(fw_link):
    link = fw_link(unpaced=True, driver=True, env={"FWTEST_INJECT_AT": "200"})
    link.get_info()
    assert configure_code(link) == C.ST_OK
    seen = []
    link.receiver.log_handlers.append(lambda log: seen.append(log.text))
    link.start()
    faulted = lambda: link.receiver.status is not None and link.receiver.status.state == C.STATE_FAULTED
    assert link.pump_until(faulted, 10)
    assert link.receiver.status.last_error == C.ST_INTERNAL
    assert link.pump_until(lambda: any("MemoryError" in t for t in seen), 2), seen
    assert link.ping().status == C.ST_OK  # the board is alive and idle
    st = link.get_status()
    assert st.state == C.STATE_IDLE and st.last_error == C.ST_INTERNAL
    assert link.start().status == C.ST_OK  # and streams again
    link.stop()


def test_no_int_packed_into_a_frame_reaches_2_30(fw_link):
    """rp2's small ints end at 2**30; the 64-bit unix port would hide a bigint.
    The driver starts seq and the sample index just below 2**30 and 2**32 and
    fails the stream if any value handed to pack_into is >= 2**30."""
    link = fw_link(unpaced=True, driver=True, env={"FWTEST_CHECK_INTS": "1", "FWTEST_NEAR_LIMITS": "1"})
    link.get_info()
    assert configure_code(link, spf=16) == C.ST_OK
    first = []
    link.receiver.block_handlers.append(lambda b: first.append(b.first_index))
    link.start()
    assert link.pump_until(lambda: len(first) >= 300, 30)
    final = link.stop()
    assert final.last_error == C.ST_OK, list(link.log_texts())
    assert first[0] < 1 << 30 <= first[-1]  # the index crossed 2**30 ...
    assert final.frames_sent < 1000  # ... and seq crossed 2**32, wrapping
    assert link.receiver.stats.seq_lost == 0 and link.receiver.stats.samples_lost == 0
