"""The Timeline places every instant, gap and marker; these tests drive it with
hand-made blocks and check each rule of timeline.py's docstring."""

from __future__ import annotations

import numpy as np
import pytest

from picodaq import contracts as C
from picodaq.core.blocks import SamplesBlock, ramp_counts
from picodaq.protocol.messages import Hello, Marker, Status
from picodaq.recording.timeline import (
    DEVICE_CLOCK,
    EXACT,
    HOST_CLOCK,
    LOST,
    REBOOT,
    RESTART,
    UNKNOWN,
    LayoutChanged,
    Timeline,
    infer_rate,
)

TICKS_US = C.TICKS_PERIOD


class Sink:
    def __init__(self) -> None:
        self.layout = None
        self.samples: list[tuple[int, int, int, int]] = []  # pos, row, first_index, n
        self.gaps = []
        self.markers = []
        self.order: list[str] = []

    def on_layout(self, layout):
        self.layout = layout
        self.order.append("layout")

    def on_samples(self, pos, row, block):
        self.samples.append((pos, row, block.first_index, block.n_samples))
        self.order.append("samples")

    def on_gap(self, gap):
        self.gaps.append(gap)
        self.order.append("gap")

    def on_marker(self, m):
        self.markers.append(m)
        self.order.append("marker")


def block(
    first: int, t0_us: int, n: int = 10, nch: int = 2, period_ns: int = 1_000_000, fmt: int = C.FMT_INT16
) -> SamplesBlock:
    return SamplesBlock(first % (1 << 32), t0_us % TICKS_US, period_ns, nch, fmt, n, ramp_counts(first, n, nch, fmt))


def status(uptime_ms: int, state: int = C.STATE_STREAMING) -> Status:
    return Status(uptime_ms, 0, 0, 0, 100, 0, 0, state)


def hello(source: int = C.SRC_RAMP) -> Hello:
    return Hello((0, 1, 0), 1, C.CONTRACT_HASH, "0102030405060708", "test", 32, source, 1000)


def test_contiguous_blocks_have_no_gaps():
    s = Sink()
    tl = Timeline(s)
    for k in range(5):
        tl.block(block(10 * k, 5000 + 10_000 * k), status(100))
    assert s.gaps == []
    assert s.samples == [(10 * k, 10 * k, 10 * k, 10) for k in range(5)]
    assert s.layout.rate == 1000 and s.layout.channels == (0, 1) and s.layout.source is None
    assert tl.rows == tl.pos == 50


def test_a_forward_jump_is_samples_lost_spanning_exactly_them():
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 0))
    tl.block(block(10 + 37, (10 + 37) * 1000))  # 37 instants never arrived
    (gap,) = s.gaps
    assert (gap.reason, gap.timing, gap.span, gap.pos, gap.row, gap.first_index) == (LOST, EXACT, 37, 10, 10, 47)
    assert s.samples[1][:2] == (47, 10)  # grid position after the gap, next received row
    assert gap.describe() == "gap: 37 samples lost"


def test_a_restarted_stream_is_timed_by_the_device_clock():
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 1_000_000), status(5000))
    tl.block(block(10, 1_010_000), status(5000))
    tl.hello(hello())
    # STOP, START: the index restarts at 0, 250 ms after the last instant ended on the device clock
    tl.block(block(0, 1_020_000 + 250_000), status(5300))
    (gap,) = s.gaps
    assert (gap.reason, gap.timing, gap.span, gap.pos, gap.row) == (RESTART, DEVICE_CLOCK, 250, 20, 20)
    assert s.samples[-1][:2] == (270, 20)
    assert tl.counts.restarts == 1 and tl.counts.board_restarts == 0


def test_device_clock_wrap_and_long_gaps():
    s = Sink()
    tl = Timeline(s)
    end = TICKS_US - 3_000  # the last block ends 3 ms before the ticks wrap
    tl.block(block(0, end - 10_000), status(1_000_000))
    tl.block(block(0, 2_000), status(1_000_010))  # new stream 5 ms later, after the wrap
    assert s.gaps[-1].span == 5
    # a gap longer than one ticks period (17.9 min): the uptime tells how many wraps passed
    tl2_sink = Sink()
    tl2 = Timeline(tl2_sink)
    tl2.block(block(0, 100_000), status(10_000))
    gap_ms = 40 * 60 * 1000 + 123  # 40 minutes
    t0_new = (110_000 + gap_ms * 1000) % TICKS_US
    tl2.block(block(0, t0_new), status(10_000 + gap_ms + 400))  # STATUS a little after the restart
    assert tl2_sink.gaps[-1].span == gap_ms


def test_a_board_restart_has_no_device_clock_to_time_it():
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 50_000_000), status(90_000))
    tl.hello(hello())
    tl.block(block(0, 1_200_000), status(1_150))  # uptime went back: a new boot
    (gap,) = s.gaps
    assert (gap.reason, gap.timing, gap.span) == (REBOOT, UNKNOWN, 0)
    assert gap.describe() == "gap: board restarted, duration unknown"
    assert tl.counts.board_restarts == 1


def test_live_board_restart_uses_the_host_clock():
    now = [100.0]
    s = Sink()
    tl = Timeline(s, clock=lambda: now[0])
    tl.block(block(0, 50_000_000), status(90_000))
    now[0] = 103.51  # the next block (10 instants, 10 ms) arrives 3.51 s later
    tl.block(block(0, 1_200_000), status(1_150))
    (gap,) = s.gaps
    assert (gap.reason, gap.timing, gap.span) == (REBOOT, HOST_CLOCK, 3500)


def test_a_board_back_later_than_it_had_been_up_is_a_restart_told_by_the_host_clock():
    """Unplugged 2 s after its boot and back 6 s later: its new uptime (5.5 s) is past the old one,
    but it counted 3.5 s where the host counted 6: it booted again, and its clock cannot time the gap
    (it would say 4.4 s)."""
    now = [100.0]
    s = Sink()
    tl = Timeline(s, clock=lambda: now[0])
    tl.block(block(0, 1_000_000), status(2_000))
    tl.hello(hello())
    now[0] = 106.01  # the next block (10 instants, 10 ms) arrives 6.01 s later
    tl.block(block(0, 5_400_000), status(5_500))
    (gap,) = s.gaps
    assert (gap.reason, gap.timing, gap.span) == (REBOOT, HOST_CLOCK, 6000)
    assert tl.counts.board_restarts == 1


def test_an_index_jump_the_clock_disagrees_with_is_a_new_stream():
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 0), status(10))
    tl.block(block(5000, 20_000), status(30))  # index says +5 s, clock says +10 ms
    (gap,) = s.gaps
    assert gap.reason == RESTART and gap.span == 10


def test_markers_land_on_their_instant():
    s = Sink()
    tl = Timeline(s)
    tl.marker(Marker(3, 7))  # before any block: waits for the first
    tl.block(block(0, 0))
    tl.marker(Marker(15, 1))  # ahead of the data received so far
    tl.block(block(10, 10_000))
    assert [(m.pos, m.code) for m in s.markers] == [(3, 7), (15, 1)]
    assert tl.counts.markers == 2


def test_a_marker_after_a_hello_belongs_to_the_new_stream():
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 0), status(10))
    tl.hello(hello())
    tl.marker(Marker(2, 9))  # index 2 of the stream that is about to start
    tl.block(block(0, 100_000), status(120))  # 90 ms later on the device clock
    assert s.gaps[0].span == 90
    assert s.markers[0].pos == 10 + 90 + 2
    assert s.order == ["layout", "samples", "gap", "marker", "samples"]


def test_markers_and_indices_across_the_u32_wrap():
    s = Sink()
    tl = Timeline(s)
    first = (1 << 32) - 15
    tl.block(block(first, 0))
    tl.block(block(first + 10, 10_000))  # crosses 2**32: contiguous
    tl.marker(Marker(3, 4))  # index 3 after the wrap = instant 18 of the recording
    assert s.gaps == []
    assert s.markers[0].pos == 18


def test_the_layout_cannot_change_mid_recording():
    tl = Timeline(Sink())
    tl.block(block(0, 0, nch=2))
    with pytest.raises(LayoutChanged, match="2 channels.*3 channels"):
        tl.block(block(10, 10_000, nch=3))


def test_hints_name_rate_source_and_channels():
    s = Sink()
    tl = Timeline(s, rate=3000, source=C.SRC_ADS1299, channels=(1, 4))
    tl.block(block(0, 0, period_ns=333_333, fmt=C.FMT_INT24))
    lay = s.layout
    assert lay.rate == 3000 and lay.labels == ["ch1", "ch4"] and lay.scale.dimension == "uV"
    s2 = Sink()
    tl2 = Timeline(s2)
    tl2.hello(hello(C.SRC_ADC))
    tl2.block(block(0, 0))
    assert s2.layout.source == C.SRC_ADC and s2.layout.scale.dimension == "V"
    assert "test 0102030405060708" in s2.layout.device


@pytest.mark.parametrize("rate", [1, 3, 7, 1000, 3000, 44100, 125_000, 1_000_000, 4_000_000])
def test_infer_rate_undoes_the_firmware_period(rate):
    assert infer_rate(10**9 // rate) == rate


def test_samples_reach_the_sink_unchanged():
    s = Sink()
    seen = []
    s.on_samples = lambda pos, row, b: seen.append(np.array(b.counts))
    tl = Timeline(s)
    b = block(0, 0, n=4, nch=3)
    tl.block(b)
    assert np.array_equal(seen[0], ramp_counts(0, 4, 3, C.FMT_INT16))


def test_a_device_clock_step_no_status_vouches_for_is_of_unknown_length():
    # a capture joined to itself: the index and the clock go back by the capture's length, and
    # the STATUS between says only a fraction of a second passed: not a 17-minute gap
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 50_000_000), status(90_000))
    tl.block(block(10, 50_010_000), status(90_000))
    tl.block(block(0, 50_000_000), status(90_300))
    (gap,) = s.gaps
    assert (gap.reason, gap.timing, gap.span) == (RESTART, UNKNOWN, 0)
    assert gap.describe() == "gap: stream restarted, duration unknown"
    # with no STATUS at all between the streams, nothing vouches either
    s2 = Sink()
    tl2 = Timeline(s2)
    tl2.block(block(0, 1_000_000), status(5000))
    tl2.block(block(0, 1_020_000 + 250_000), status(5000))
    assert (s2.gaps[0].timing, s2.gaps[0].span) == (UNKNOWN, 0)


def test_live_the_host_clock_overrules_a_device_clock_step_it_disagrees_with():
    now = [100.0]
    s = Sink()
    tl = Timeline(s, clock=lambda: now[0])
    tl.block(block(0, 50_000_000), status(90_000))
    now[0] = 102.01  # 2 s later by the host; the device clock steps back (no STATUS between)
    tl.block(block(0, 10_000_000), status(90_000))
    (gap,) = s.gaps
    assert (gap.reason, gap.timing, gap.span) == (RESTART, HOST_CLOCK, 2000)
    # and where the host clock agrees with the device clock, the device clock times it
    now[0] = 102.51 + 0.01
    tl.block(block(0, 10_010_000 + 500_000), status(90_000))
    assert (s.gaps[-1].timing, s.gaps[-1].span) == (DEVICE_CLOCK, 500)


def test_after_a_seq_reset_the_index_alone_does_not_continue_a_stream():
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 1_000_000), status(100))
    tl.sender_reset()  # another capture joined on, whose index happens to follow
    tl.block(block(10, 9_000_000), status(100))
    (gap,) = s.gaps
    assert (gap.reason, gap.timing, gap.span) == (RESTART, UNKNOWN, 0)


def test_a_limit_keeps_exactly_that_many_instants_from_the_first():
    s = Sink()
    tl = Timeline(s, limit=25)
    for k in range(4):
        tl.block(block(10 * k, 10_000 * k), status(100))
    # blocks of 10: two whole, the third cut to 5, the fourth not placed at all
    assert [(p, n) for p, _, _, n in s.samples] == [(0, 10), (10, 10), (20, 5)]
    assert tl.complete and tl.pos == tl.rows == 25 and tl.kept == 0


def test_a_limit_counts_gaps_on_the_grid_and_ends_where_a_gap_reaches_it():
    s = Sink()
    tl = Timeline(s, limit=40)
    tl.block(block(0, 0))
    tl.block(block(15, 15_000))  # 5 lost: the grid is at 25 after it
    tl.block(block(33, 33_000))  # 8 more lost: this gap ends at 33, so 7 of the block fit
    assert [g.span for g in s.gaps] == [5, 8] and tl.pos == 40 and tl.rows == 27 and tl.kept == 7
    s2 = Sink()
    tl2 = Timeline(s2, limit=40)
    tl2.block(block(0, 0))
    tl2.block(block(45, 45_000))  # the gap would reach past the limit: the recording ends before it
    assert tl2.complete and s2.gaps == [] and tl2.pos == 10 and tl2.counts.gaps == 0
    tl2.marker(Marker(50, 1))  # nothing after the end
    assert s2.markers == [] and tl2.counts.markers == 0


def test_a_block_of_no_instants_places_nothing():
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 0))
    tl.block(block(500, 900_000, n=0))  # a capture's last frame cut at a gap: no instants, no gap
    assert s.gaps == [] and len(s.samples) == 1 and tl.pos == 10


def test_a_far_jump_the_clock_only_loosely_agrees_with_is_no_loss_of_days():
    s = Sink()
    tl = Timeline(s)
    tl.block(block(0, 0), status(100))
    jump = (1 << 31) - 1  # 24 days at 1 kHz; the clock agrees modulo its period to within 100 s
    t0 = (10_000 + jump * 1000 + 100_000_000) % TICKS_US
    tl.block(block(10 + jump, t0), status(100))
    (gap,) = s.gaps
    assert gap.reason == RESTART and gap.span < 10_000_000
