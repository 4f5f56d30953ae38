"""Paths that only a misbehaving link, board or user takes, each driven on purpose and checked
exactly: a lost ACK retried, a silent link, a board that keeps faulting, a second Ctrl-C, a
corrupting link, a board whose ring overflows, a consumer that holds every buffer, an unplug
noticed within a second. Each was checked once against a broken product (see each docstring)."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest

from cli_helpers import (
    Lines,
    assert_bdf_is_the_recording,
    assert_csv_rows_are_the_ramp,
    captured,
    events,
    expected_grid,
    outs,
    start_picodaq,
)
from picodaq import contracts as C
from picodaq.errors import LinkError
from picodaq.protocol.messages import Ack
from picodaq.transport.link import Link
from relay import Relay
from waiting import wait_for


def finish(p, lines, timeout=120):
    out = p.stdout.read()
    p.wait(timeout)
    return p.returncode, out, lines.join()


def check_saved(paths, rate=1000) -> np.ndarray:
    """Every file complete and exact: CSV and .npy the ramp, the BDF the same on its grid."""
    rows = assert_csv_rows_are_the_ramp(paths["csv"])
    a = np.load(paths["npy"])
    assert a.shape[0] == len(rows) > 0 and np.array_equal(a, rows[:, 3:].astype(np.int64))
    _, _, index = expected_grid(paths["npy"], rate)
    assert np.array_equal(index, rows[:, 1].astype(np.int64))
    assert_bdf_is_the_recording(paths["bdf"], paths["npy"], rate)
    return a


def is_ack_to(cmd_id: int):
    return lambda mtype, payload: mtype == C.MSG_ACK and Ack.parse(payload).cmd_id == cmd_id


# -- Link.command: a lost ACK ------------------------------------------------------------


def test_a_command_whose_ack_was_lost_succeeds_on_its_retry(make_board, tmp_path):
    """The ACK to the first try never arrives: Link.command sends the same command again (same
    cmd_id), the board answers it again without running it twice, and the call succeeds.
    Broken once (Link.command with retries=0 by default): CommandTimeout."""
    board = make_board()
    with Relay(board.port, tmp_path / "relay") as relay, Link.open(relay.port) as link:
        link.ping()
        link.configure(1000, 0x3, C.SRC_RAMP, C.FMT_INT16, 20)
        assert link.start().status == C.ST_OK
        assert link.pump_until(lambda: link.receiver.stats.samples > 100, 60)
        cmd_id = (link._cmd_id + 1) & 0xFFFF  # the next command's
        relay.drop_next(is_ack_to(cmd_id))
        assert link.mark(9).status == C.ST_OK  # answered on the retry
        mine = [c for c in relay.commands() if c[1] == cmd_id]
        assert mine == [(C.OP_MARK, cmd_id)] * 2  # sent twice, the same command
        assert [(t, Ack.parse(p).cmd_id) for t, p in relay.dropped] == [(C.MSG_ACK, cmd_id)]
        final = link.stop()
        assert final is not None and final.state == C.STATE_IDLE
        assert [m.code for m in link.receiver.markers] == [9]  # marked once, not once per try
        # any command alike: its ACK lost once, it is sent again and answered
        cmd_id = (link._cmd_id + 1) & 0xFFFF
        relay.drop_next(is_ack_to(cmd_id))
        assert link.command(C.OP_PING).status == C.ST_OK
        assert [c for c in relay.commands() if c[1] == cmd_id] == [(C.OP_PING, cmd_id)] * 2


# -- the recorder: a silent link -----------------------------------------------------------


def test_a_silent_link_is_noticed_asked_and_the_recording_saved(make_board, tmp_path):
    """The port stays open but nothing comes (a wedged USB link): after STALL_SECONDS of silence the
    recorder asks for a STATUS, gets no answer, says the board went silent and saves every file.
    Broken once (the silence check in Recording._step commented out): the recording ran its 30 s
    and ended with status 0."""
    from picodaq.recording.recorder import STALL_SECONDS

    board = make_board()
    paths, args = outs(tmp_path)
    with Relay(board.port, tmp_path / "relay") as relay:
        p = start_picodaq(
            "record", "--port", relay.port, "--channels", "3", "--seconds", "30", *args, "--stats-json", "-"
        )
        lines = Lines(p.stderr)
        wait_for(lambda: captured(paths["tlv"]).stats.samples > 500, 60, what="data")
        sent_before = len(relay.commands())
        relay.hold()
        code, out, err = finish(p, lines)
        probes = relay.commands()[sent_before:]
    assert code == 1, err
    last = err.splitlines()[-1]
    assert f"went silent (no data for {STALL_SECONDS:g} s)" in last and "what was received is saved" in last, err
    # the question it asked before giving up: GET_STATUS, tried three times (one cmd_id)
    assert [op for op, _ in probes][:3] == [C.OP_GET_STATUS] * 3 and len({i for _, i in probes[:3]}) == 1
    stats = json.loads(out)
    a = check_saved(paths)
    assert stats["samples"] == len(a) and stats["gaps"] == 0 and stats["reconnects"] == 0


# -- the recorder: a board that keeps faulting ---------------------------------------------


def test_a_board_that_faults_again_and_again_is_given_up_on_with_its_words(make_board, tmp_path):
    """Every stream faults (the driver flags the sampler failed every few hundred passes): the
    recorder restarts it MAX_QUICK_RESTARTS times, each an annotated gap, then gives up with the
    board's own words and saves every file. Broken once (MAX_QUICK_RESTARTS = 10**9): it restarted
    until its 30 s were up and ended with status 0."""
    from picodaq.recording.recorder import MAX_QUICK_RESTARTS, RESTART_WINDOW

    board = make_board(driver=True, env={"FWTEST_SAMPLER_FAULT_EVERY": "400"})
    paths, args = outs(tmp_path)
    p = start_picodaq("record", "--port", board.port, "--channels", "3", "--seconds", "30", *args, "--stats-json", "-")
    lines = Lines(p.stderr)
    code, out, err = finish(p, lines)
    assert code == 1, err
    faults = [x for x in err.splitlines() if "the board stopped streaming (faulted" in x]
    # each fault said so (the last one too, before the count of quick restarts ran out)
    assert len(faults) == MAX_QUICK_RESTARTS + 1 and all("the sampler failed" in x for x in faults), err
    last = err.splitlines()[-1]
    assert (
        f"the board stopped streaming {MAX_QUICK_RESTARTS + 1} times within {RESTART_WINDOW:g} s" in last
        and "sampler failed" in last
        and "giving up" in last
    ), err
    stats = json.loads(out)
    assert stats["stream_restarts"] == MAX_QUICK_RESTARTS and stats["board_restarts"] == 0
    check_saved(paths)
    gaps = [e["detail"] for e in events(tmp_path / "rec.events.csv") if e["kind"] == "gap"]
    assert gaps == ["stream restarted; timing: device clock"] * MAX_QUICK_RESTARTS


# -- the recorder: a second Ctrl-C -----------------------------------------------------------


def test_a_second_ctrl_c_while_the_files_are_finished_changes_nothing(make_board, tmp_path):
    """Ctrl-C asks the recording to stop; a second one, while it is still stopping the board and
    finishing the files (here the board's answers to STOP never arrive, so that takes a while), only
    says so: every file is still finished and exact, the exit status that of one Ctrl-C. Broken once
    (Interrupts handing SIGINT back to Python after the first): a KeyboardInterrupt traceback, exit
    status 130 and no BDF."""
    board = make_board()
    paths, args = outs(tmp_path)
    with Relay(board.port, tmp_path / "relay") as relay:
        p = start_picodaq("record", "--port", relay.port, "--channels", "3", *args, "--stats-json", "-")
        lines = Lines(p.stderr)
        wait_for(lambda: captured(paths["tlv"]).stats.samples > 500, 60, what="data")
        relay.hold_at(C.OP_STOP)  # the recorder's STOP goes out; nothing the board says comes back
        p.send_signal(signal.SIGINT)
        wait_for(lambda: relay.holding, 60, what="the recorder stopping the board (the first Ctrl-C handled)")
        p.send_signal(signal.SIGINT)  # while it waits for the board's answer
        code, out, err = finish(p, lines)
    assert code == 0, err  # an open-ended recording ended by Ctrl-C
    assert err.count("picodaq: finishing the files; one moment") == 1, err
    assert "could not stop the board cleanly" in err and "Traceback" not in err
    stats = json.loads(out)
    a = check_saved(paths)
    assert stats["samples"] == len(a) and stats["gaps"] == 0


# -- picodaq record through a corrupting link -------------------------------------------------


def test_record_through_a_corrupting_link_counts_every_crc_error_and_annotates_every_gap(make_board, tmp_path):
    """The HIL faulty-link proxy flips bits in what the board sends while `picodaq record` records
    it. From what the board really sent (the proxy's capture) and where each bit was flipped: each
    damaged frame is exactly one lost frame and, when only its CRC could tell, one CRC error, live
    in the stats; each run of damaged SAMPLES frames exactly one `samples lost` gap of exactly their
    instants in every format (CSV indices, .npy events, BDF zero fill and annotation); every other
    instant is there, bit-exact. Broken once (the decoder's CRC check skipped, accepting every frame):
    the damaged frames' garbage reached the files and the counters said 0."""
    from picodaq_hil.faults import FaultSpec, FaultyLinkProxy
    from picodaq_hil.oracle.capture import CapturedFrame, scan

    board = make_board()
    paths, args = outs(tmp_path)
    rate, nch = 4000, 16
    proxy = FaultyLinkProxy(
        board.port, tmp_path / "faulty", FaultSpec(bitflip=4e-5), seed=19, capture=tmp_path / "sent.tlv", enabled=False
    ).start()
    try:
        p = start_picodaq(
            "record", "--port", proxy.port, "--rate", str(rate), "--channels", str(nch), *args, "--stats-json", "-"
        )
        lines = Lines(p.stderr)
        wait_for(lambda: captured(paths["tlv"]).stats.samples > rate, 60, what="data before the faults")
        proxy.set_enabled(True)
        wait_for(lambda: len([f for f in proxy.faults if f.kind == "bitflip"]) >= 4, 120, what="four bit flips")
        proxy.set_enabled(False)
        n = captured(paths["tlv"]).stats.samples
        wait_for(lambda: captured(paths["tlv"]).stats.samples > n + rate, 60, what="data after the faults")
        p.send_signal(signal.SIGINT)
        code, out, err = finish(p, lines)
        sent = proxy.board_bytes()
        flips = [f.offset for f in proxy.faults if f.kind == "bitflip"]
    finally:
        proxy.stop()
    assert code == 0, err
    # besides the flips only what went nowhere while no host had the port open (before and after)
    assert {f.kind for f in proxy.faults} <= {"bitflip", "offline"}
    frames = [f for f in scan(sent) if isinstance(f, CapturedFrame)]  # what the board sent, intact
    assert all(any(f.start <= x < f.end for f in frames) for x in flips)  # every flip hit a frame

    def hits(f: CapturedFrame) -> list[int]:
        return [x - f.start for x in flips if f.start <= x < f.end]

    damaged = [f for f in frames if hits(f)]
    samples = [f for f in frames if f.samples is not None]
    # the recording's own: from its first block to its last (STOP drains what was in flight)
    rows = assert_csv_rows_are_the_ramp(paths["csv"])
    got = rows[:, 1].astype(np.int64)
    first = next(k for k, f in enumerate(samples) if f.samples[0] == got[0])
    last = next(k for k, f in enumerate(samples) if f.samples[0] + f.samples[1] - 1 == got[-1])
    mine = samples[first : last + 1]
    want = np.concatenate([np.arange(f.samples[0], f.samples[0] + f.samples[1]) for f in mine if not hits(f)]).astype(
        np.int64
    )
    assert np.array_equal(got, want)  # every intact instant, exactly once; nothing of a damaged frame
    runs, lost = [], 0
    for f in mine:
        if hits(f):
            lost += f.samples[1]
        elif lost:
            runs.append(lost)
            lost = 0
    assert runs and len(damaged) >= 4
    stats = json.loads(out)
    # counters, live: every damaged frame lost (its seq skipped), a CRC error when its header held
    # (flips past the length field: only the CRC can tell)
    body = [f for f in damaged if min(hits(f)) >= 6]
    assert stats["seq_lost"] == len(damaged)
    assert len(body) <= stats["crc_errors"] <= len(damaged)
    if len(body) == len(damaged):
        assert stats["crc_errors"] == len(damaged) and stats["header_errors"] == 0
    assert stats["samples_lost"] == sum(runs) and stats["gaps"] == len(runs) and stats["samples"] == len(got)
    # ... and in every file: each run of damaged frames one gap of exactly its instants
    gaps = [e for e in events(tmp_path / "rec.events.csv") if e["kind"] == "gap"]
    assert [e["detail"] for e in gaps] == ["samples lost; timing: exact"] * len(runs)
    assert [round(float(e["duration_s"]) * rate) for e in gaps] == runs
    b = assert_bdf_is_the_recording(paths["bdf"], paths["npy"], rate)
    assert [t for _, _, t in b["annotations"] if t.startswith("gap")] == [f"gap: {n} samples lost" for n in runs]
    assert np.array_equal(np.load(paths["npy"]), rows[:, 3:].astype(np.int64))


# -- picodaq record: the board's ring overflows ------------------------------------------------


def test_a_board_ring_overflow_is_one_annotated_gap_in_every_format(make_board, tmp_path):
    """The board's link makes no progress for 1.5 s (the driver stalls its writes, as a CDC port
    held open but not read): its sampler keeps filling the ring, then drops and counts. `picodaq
    record` shows those instants as exactly one gap of exactly the count the board reported, in
    every format, and every instant on either side bit-exact. Broken once (the Timeline placing a
    jump in the index without a gap): the CSV and BDF glued the two sides together."""
    rate, nch = 4000, 4
    board = make_board(driver=True, env={"FWTEST_STALL": "300,1500"})
    paths, args = outs(tmp_path)
    # frames of 32 instants: the ring's 128 frames hold 1.024 s of this stream, less than the stall
    # (in record's default frames of 20 ms they hold 2.56 s: the board's ring is sized from its heap)
    p = start_picodaq(
        "record", "--port", board.port, "--rate", str(rate), "--channels", str(nch), "--samples-per-frame", "32",
        *args, "--stats-json", "-",
    )  # fmt: skip
    lines = Lines(p.stderr)
    wait_for(lambda: captured(paths["tlv"]).stats.samples_lost > 0, 120, what="the overflow's jump")
    n = captured(paths["tlv"]).stats.samples
    wait_for(lambda: captured(paths["tlv"]).stats.samples > n + rate, 60, what="a second of data after it")
    p.send_signal(signal.SIGINT)
    code, out, err = finish(p, lines)
    assert code == 0, err
    stats = json.loads(out)
    dropped = stats["device_samples_dropped"]
    assert dropped > 0 and stats["samples_lost"] == dropped and stats["gaps"] == 1, stats
    assert stats["crc_errors"] == stats["seq_lost"] == stats["header_errors"] == 0
    assert any("ring overflowed" in log.text for log in captured(paths["tlv"]).logs)  # the board's own LOG
    assert f"device   {dropped:,} instants dropped on the board" in err  # and the summary says so
    (gap,) = [e for e in events(tmp_path / "rec.events.csv") if e["kind"] == "gap"]
    assert gap["detail"] == "samples lost; timing: exact" and round(float(gap["duration_s"]) * rate) == dropped
    rows = assert_csv_rows_are_the_ramp(paths["csv"], C.FMT_INT16)
    index = rows[:, 1].astype(np.int64)
    jumps = np.flatnonzero(np.diff(index) != 1)
    assert len(jumps) == 1 and index[jumps[0] + 1] - index[jumps[0]] == dropped + 1
    assert int(gap["row"]) == jumps[0] + 1 and np.array_equal(
        index, np.delete(np.arange(index[-1] + 1), np.arange(index[jumps[0]] + 1, index[jumps[0] + 1]))
    )
    b = assert_bdf_is_the_recording(paths["bdf"], paths["npy"], rate)
    assert [t for _, _, t in b["annotations"] if t.startswith("gap")] == [f"gap: {dropped} samples lost"]
    assert np.array_equal(np.load(paths["npy"]), rows[:, 3:].astype(np.int64))


# -- the live path on fallback buffers -----------------------------------------------------------


def test_fallback_buffers_carry_the_live_stream_exactly_while_a_consumer_holds_every_block(make_board):
    """A consumer that keeps every block it is given: the receiver's pool (4 buffers a class here)
    runs dry at once and every later frame arrives in a fallback buffer, through the Link's reader
    thread, while frames keep coming. Each held block must still be its own frame's ramp (a buffer
    lent twice would be overwritten by a later frame), counted as a fallback, and returned without a
    leak. Broken once (fallbacks sharing one scratch buffer): the held blocks all read the last frame."""
    from picodaq.buffers.pool import BufferPool
    from picodaq.core.blocks import ramp_counts
    from picodaq.core.primary import BlockQueue
    from picodaq.core.receiver import Receiver

    board = make_board()
    queue = BlockQueue(maxlen=100_000)  # the consumer: it keeps every block until the end
    pool = BufferPool(cap=4)
    with Link.open(board.port, receiver=Receiver(pool=pool, primary=queue)) as link:
        link.configure(4000, 0xFF, C.SRC_RAMP, C.FMT_INT16, 32)
        assert link.start().status == C.ST_OK
        assert link.pump_until(lambda: len(queue) >= 200, 120)
        link.stop()
        rx = link.receiver
        s = rx.stats
        assert s.crc_errors == s.samples_lost == s.seq_lost == s.decode_errors == 0
        held = len(queue)
        p = pool.stats
        assert p.in_use == held and p.fallbacks == held - 4  # all but the class's 4 pooled buffers
        seen = []

        def check(b) -> None:  # every held block its own frame, bit-exact
            k = len(seen)
            seen.append(b.first_index)
            assert b.first_index == 32 * k and np.array_equal(b.counts, ramp_counts(32 * k, 32, 8, C.FMT_INT16)), k

        assert queue.poll_each(held, check) == held  # then released, one by one
        p = pool.stats
        assert p.in_use == 0 and p.leaked == 0 and p.returns == p.acquires
        assert rx.block_stats.in_use == 0


# -- an unplug, noticed at once ------------------------------------------------------------------


def test_an_unplug_is_noticed_within_a_second_by_the_port_not_by_silence(make_board, tmp_path, monkeypatch):
    """The recorder notices a vanished port from the port itself (the reader's select wakes on it),
    well within a second; the silence check (STALL_SECONDS) is disabled here, so nothing else could
    have. Measured in this process, from the unplug to the recorder's own event. Broken once (the
    Link's reader ignoring a hangup, as a poll-only reader would): nothing noticed it until the 30 s
    were up."""
    from picodaq.recording import recorder
    from picodaq.recording.config import StreamConfig
    from picodaq.recording.outputs import open_outputs
    from picodaq.recording.recorder import Recording

    monkeypatch.setattr(recorder, "STALL_SECONDS", 1e9)
    board = make_board()
    link = Link.open(board.port)
    rec = Recording(link, StreamConfig(rate=1000, channel_mask=0b11), open_outputs([tmp_path / "u.npy"]))
    unplugged: list[float] = []

    def poll() -> None:
        if not unplugged and rec.receiver.stats.samples > 500:
            unplugged.append(time.monotonic())
            board.unplug()

    try:
        rec.prepare()
        rec.start()
        with pytest.raises(LinkError, match="closed by the device"):  # no --reconnect: the run ends
            rec.run(30, poll=poll)
        result = rec.finish("lost")
    finally:
        if rec.link is not None:
            rec.link.close()
        link.close()
    assert unplugged
    (lost,) = [e for e in result.events if e.text.startswith("link lost")]
    latency = rec.started + lost.elapsed - unplugged[0]
    print(f"unplug noticed after {latency * 1000:.0f} ms")
    assert 0 <= latency < 1.0, latency
    assert "went silent" not in lost.text
    assert np.load(tmp_path / "u.npy").shape[0] == result.stats["samples"] > 500
