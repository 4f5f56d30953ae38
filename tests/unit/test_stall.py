"""A frame cut short by a board reset must not hold back the frames after it once the link goes quiet.

The case, as the rp2040 tier's Device Reset Mid-stream met it: the board reset while sending a
SAMPLES frame (336 bytes declared, 64 sent), booted, sent its HELLO (78 bytes) and waited in
silence. By the rules alone the decoder waits for the cut frame's 336 bytes, so the HELLO stayed
inside it until the host wrote a command and the board answered.
"""

from __future__ import annotations

import os
import struct

import pytest

from picodaq import contracts as C
from picodaq.core.receiver import Receiver
from picodaq.protocol.decoder import NEED_DATA, FrameDecoder
from picodaq.protocol.frames import encode_frame, samples_payload
from picodaq.protocol.stall import intact_frame_from
from picodaq.transport.link import Link

HELLO = struct.pack(
    C.HELLO_FORMAT, 0, 1, 0, 1, C.CONTRACT_HASH, b"board\0\0\0", b"rp2\0\0\0\0\0", 8, 0, 1000, 3, 0, 4096
).ljust(64, b"\0")


def samples(seq: int, first: int, n: int = 20, nch: int = 8) -> bytes:
    data = bytes((first + i) & 0xFF for i in range(nch * n * 2))
    return encode_frame(C.MSG_SAMPLES, seq, samples_payload(first, 1000, 1_000_000, nch, C.FMT_INT16, n, data))


def reset_mid_frame(cut: int = 64) -> tuple[bytes, bytes]:
    """Two whole frames, then the first `cut` bytes of a third; then what the rebooted board sent."""
    before = samples(5, 0) + samples(6, 20) + samples(7, 40)[:cut]
    after = encode_frame(C.MSG_HELLO, 0, HELLO) + encode_frame(C.MSG_ACK, 1, struct.pack(C.ACK_FORMAT, 9, 1, 0))
    return before, after


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_a_stalled_cut_frame_lets_the_frames_after_it_through_and_counts_itself(chunk):
    before, after = reset_mid_frame()
    wire = before + after
    d = FrameDecoder()
    got = []
    for i in range(0, len(wire), chunk):
        d.feed(wire[i : i + chunk])
        got += [(f.type, f.seq) for f in d]
    assert got == [(C.MSG_SAMPLES, 5), (C.MSG_SAMPLES, 6)]  # the rules alone: HELLO waits inside the cut frame
    assert d.resync_stalled()
    got += [(f.type, f.seq) for f in d]
    assert got == [(C.MSG_SAMPLES, 5), (C.MSG_SAMPLES, 6), (C.MSG_HELLO, 0), (C.MSG_ACK, 1)]
    assert d.stats.truncated == 1 and d.stats.crc_errors == 0 and d.stats.header_errors == 0
    assert d.stats.skipped_bytes == 63  # the rest of the cut frame, after its magic
    assert not d.resync_stalled() and d.buffered == 0 and d.next_frame() is NEED_DATA


def test_a_frame_still_arriving_is_waited_for_and_delivered_whole():
    """No intact frame after it: nothing shows it was cut, so it is waited for, however quiet the link."""
    whole = samples(1, 0)
    d = FrameDecoder()
    d.feed(whole[:200])
    assert d.next_frame() is NEED_DATA
    assert not d.resync_stalled() and not d.resync_stalled()
    d.feed(whole[200:])
    f = d.next_frame()
    assert f is not NEED_DATA and f.seq == 1 and bytes(f.payload) == whole[10:-4]
    assert d.stats.truncated == 0 and d.stats.skipped_bytes == 0


def test_a_cut_frame_after_which_only_part_of_a_frame_came_is_waited_for():
    before, after = reset_mid_frame()
    d = FrameDecoder()
    d.feed(before + after[:50])  # the HELLO not whole yet
    assert [f.seq for f in d] == [5, 6]
    assert not d.resync_stalled()
    d.feed(after[50:])
    assert [f.seq for f in d] == []  # still inside the cut frame's declared length
    assert d.resync_stalled() and [f.type for f in d] == [C.MSG_HELLO, C.MSG_ACK]


def test_intact_frame_from_finds_only_whole_checked_frames():
    hello = encode_frame(C.MSG_HELLO, 0, HELLO)
    bad = bytearray(hello)
    bad[20] ^= 1
    assert intact_frame_from(b"\xa5\x5a\x01" + hello, 1) == 3
    assert intact_frame_from(b"\xa5\x5a\x01" + hello, 4) == -1
    assert intact_frame_from(bytes(bad) + hello[:-1], 0) == -1
    assert intact_frame_from(b"xx" + bytes(bad) + hello, 0) == 2 + len(bad)


def test_the_receiver_routes_what_a_stalled_cut_frame_held_back_to_its_handlers():
    before, after = reset_mid_frame()
    rx = Receiver()
    hellos = []
    rx.hello_handlers.append(hellos.append)
    assert rx.receive(before + after) == 2 and not hellos
    assert rx.resync_stalled() == 2
    assert [h.platform for h in hellos] == ["rp2"] and rx.acks[9].opcode == 1
    assert rx.stats.truncated == 1 and rx.pool_stats.in_use == 0
    assert rx.resync_stalled() == 0


@pytest.mark.parametrize("inline", [False, True])
def test_a_link_gone_quiet_inside_a_cut_frame_delivers_the_boards_hello(pty_pair, inline):
    """Through a real pty: the board's HELLO after a reset mid-frame comes to the host with nothing written."""
    master, path = pty_pair
    before, after = reset_mid_frame()
    with Link.open(path, inline=inline) as link:
        os.write(master, before + after)
        assert link.pump_until(lambda: link.receiver.hellos == 1, 10.0)
        assert link.receiver.acks[9].status == 0 and link.receiver.stats.truncated == 1
