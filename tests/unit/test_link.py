"""The Link through a real pty: the reader thread and the consumer at full speed, exact counters."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import termios
import threading
import time
from collections.abc import Callable

import pytest

from picodaq.bench.frames import FrameStream
from picodaq.core.primary import BlockQueue, CallbackOutput
from picodaq.core.receiver import Receiver
from picodaq.errors import LinkError
from picodaq.transport.link import Link


def pump_bytes(link: Link, total: int, got: int = 0) -> int:
    """Pump until total bytes have come (got: those already counted), each wait hang-guarded."""
    while got < total:
        n = link.pump(timeout=10)
        assert n, "nothing came within the hang guard"
        got += n
    return got


def logging_link(path: str) -> tuple[Link, list[tuple[int, int]]]:
    """A Link on path whose blocks are logged as (first instant, instants), in the order they came."""
    blocks: list[tuple[int, int]] = []
    link = Link.open(
        path, receiver=Receiver(primary=CallbackOutput(lambda b: blocks.append((b.first_index, b.n_samples))))
    )
    return link, blocks


def assert_every_instant_once_in_order(blocks: list[tuple[int, int]], total: int) -> None:
    expected = 0
    for index, n in blocks:
        assert index == expected
        expected += n
    assert expected == total


@pytest.mark.parametrize("inline", [False, True])
def test_an_idle_link_sleeps_in_the_kernel(pty_pair, inline):
    master, path = pty_pair
    with Link.open(path, inline=inline) as link:
        idle_from = link.reader_wakeups
        time.sleep(0.5)  # nothing arrives: a polling reader would wake up meanwhile
        assert link.reader_wakeups == idle_from
        os.write(master, b"\x00" * 10)
        assert link.pump(timeout=5) == 10  # data wakes it at once
        assert link.receiver.stats.skipped_bytes == 10 and link.reader_wakeups >= idle_from + 1
    if not inline:
        assert link.reader_wakeups >= 1  # close() woke it too


def test_a_port_that_fails_as_a_command_is_flushed_is_a_link_error_naming_why(pty_pair):
    # a tty hung up while a STOP is flushed: pyserial's flush() (tcdrain) raises termios.error,
    # neither an OSError nor a SerialException (it once reached a user as "error: (5, ...)")
    _, path = pty_pair
    with Link.open(path) as link:

        def hung_up() -> None:
            raise termios.error(errno.EIO, "Input/output error")

        link.port.flush = hung_up
        with pytest.raises(LinkError, match=r"cannot write to port .*: Input/output error$"):
            link.stop(wait_status=0)


@pytest.mark.parametrize("inline,batch", [(False, 0.0), (True, 0.0), (False, 0.005), (True, 0.005)])
def test_the_device_going_away_is_a_link_error_after_its_data(pty_pair, inline, batch):
    # batch: the consumer (inline, or lent the port) gathers bursts when the port goes away
    master, path = pty_pair
    queue = BlockQueue()
    link = Link.open(path, receiver=Receiver(primary=queue), inline=inline)
    link.batch_seconds = batch
    try:
        frames = FrameStream(frames_per_chunk=5)
        os.write(master, bytes(frames.next_chunk()))
        got = 0
        while got < 5:
            got += link.poll_each(10, lambda b: None, timeout=5)
        os.close(master)  # the board is unplugged
        with pytest.raises(LinkError):
            for _ in range(100):
                link.pump(timeout=1)
        assert link.receiver.stats.frames_ok == 5
    finally:
        link.close()


@pytest.mark.parametrize("lends", [True, False])
def test_a_batching_reader_never_strands_the_last_bytes(pty_pair, lends):
    # batches a few ms apart reach the consumer only batch_latest after their first bytes: bytes
    # that come once and then nothing more must still reach it then, without more data behind them.
    # lends=False: the reader thread batches (as it does whenever the consumer stays away from pump())
    master, path = pty_pair
    with Link.open(path) as link:
        link.batch_seconds = 0.01
        link.reader.lends = lends
        reader = link.reader

        def write_once_waited_for() -> None:  # bytes already in the ring need no wake to be seen
            while not (reader.loans if lends else link.ring.consumer_waiting):
                time.sleep(0.001)
            os.write(master, b"\x00" * 100)

        writer = threading.Thread(target=write_once_waited_for)
        writer.start()
        got, deadline = 0, time.monotonic() + 10
        while got < 100 and time.monotonic() < deadline:
            got += link.pump(timeout=deadline - time.monotonic())
        writer.join()
        assert got == 100 and time.monotonic() < deadline  # woken for them, not at the wait's end
        assert (reader.loans >= 1) == lends
        idle_from = link.reader_wakeups
        time.sleep(0.3)  # delivered: nothing more is due, so the reader sleeps until data comes
        assert link.reader_wakeups == idle_from


def test_a_batching_consumer_lent_the_port_gathers_many_reads_into_one_pump_until_due_or_nudged(pty_pair):
    """Batching, the consumer waiting in pump() reads burst after burst itself and returns them in
    one piece once they are due (batch_latest after the first), or at once when nudged; every
    byte once, in order; a command's answer is not kept waiting for the batch."""
    master, path = pty_pair
    frames = FrameStream(frames_per_chunk=50)
    link, blocks = logging_link(path)
    with link:
        reader = link.reader
        link.batch_seconds = 0.005
        link.batch_latest = 1.0
        sent = b"".join(bytes(frames.next_chunk()) for _ in range(10))  # 500 frames: a tty hands 4 KiB a read

        def write_when_lent(data: bytes, then: Callable[[], object] = lambda: None) -> threading.Thread:
            def run() -> None:
                loans = reader.loans
                while reader.loans == loans:
                    time.sleep(0.001)
                os.write(master, data)  # blocks while the tty is full: the consumer reads meanwhile
                then()

            t = threading.Thread(target=run)
            t.start()
            return t

        writer = write_when_lent(sent)
        assert link.pump(timeout=60) == len(sent) > 4 * 4096  # one pump: the reads of many bursts
        writer.join()
        assert reader.wakeups > 1
        # gathering for 30 s: a nudge (a stop asked for, a MARK to send) ends it at once
        link.batch_latest = 30.0
        woken = reader.wakeups
        chunk = bytes(frames.next_chunk())

        def nudge_once_woken() -> None:
            while reader.wakeups == woken:
                time.sleep(0.001)
            link.nudge()

        writer = write_when_lent(chunk, nudge_once_woken)
        t0 = time.monotonic()
        got = link.pump(timeout=60)
        writer.join()
        assert time.monotonic() - t0 < 30  # ended by the nudge, not when the batch was due
        pump_bytes(link, len(chunk), got)
        # a command waiting for its answer pumps in short waits, marked urgent: no batch is awaited
        os.write(master, bytes(frames.next_chunk()))
        t0 = time.monotonic()
        assert link.pump_until(lambda: link.receiver.stats.frames_ok == 600, 29)
        assert time.monotonic() - t0 < 29
        stats = link.receiver.stats
        assert stats.seq_lost == stats.crc_errors == stats.skipped_bytes == 0
        assert_every_instant_once_in_order(blocks, 600 * frames.n_samples)


def test_a_port_that_goes_away_while_a_lent_consumer_gathers_delivers_what_it_read_then_the_error(pty_pair):
    master, path = pty_pair
    # 2 frames, 1.2 KB: one piece of the tty's flip buffer (up to ~1.8 KB), so the tty holds it all
    # when it wakes the consumer (a larger chunk can come in two pieces, and what a tty still
    # holds when the other side hangs up is gone: not read, so not the Link's to deliver)
    frames = FrameStream(frames_per_chunk=2)
    link, blocks = logging_link(path)
    tty_queue = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)  # to see what the tty holds
    try:
        with link:
            link.batch_seconds = 0.005
            link.batch_latest = 30.0  # only the port's end stops this gathering before the hang guard
            reader = link.reader
            chunk = bytes(frames.next_chunk())

            def write_then_unplug() -> None:
                while not reader.loans:
                    time.sleep(0.001)
                woken = reader.wakeups
                os.write(master, chunk)
                # the consumer has woken and read all of it, and gathers on
                while reader.wakeups == woken or unread(tty_queue):
                    time.sleep(0.001)
                os.close(master)  # the board is unplugged

            helper = threading.Thread(target=write_then_unplug)
            helper.start()
            t0 = time.monotonic()
            got = link.pump(timeout=60)
            helper.join()
            assert time.monotonic() - t0 < 30
            got = pump_bytes(link, len(chunk), got)  # nothing read is lost to the error
            assert got == len(chunk) and link.receiver.stats.frames_ok == 2
            assert_every_instant_once_in_order(blocks, 2 * frames.n_samples)
            with pytest.raises(LinkError):
                link.pump(timeout=1)
    finally:
        os.close(tty_queue)


def unread(fd: int) -> int:
    """Bytes a tty holds for its reader (FIONREAD)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def test_inline_reading_delivers_in_order_in_the_consumers_thread_and_a_nudge_ends_its_wait(pty_pair):
    master, path = pty_pair
    frames = FrameStream(frames_per_chunk=50)
    blocks: list[tuple[int, int, str]] = []  # first instant, instants, the thread that routed it

    def take(block) -> None:
        blocks.append((block.first_index, block.n_samples, threading.current_thread().name))

    with Link.open(path, receiver=Receiver(primary=CallbackOutput(take)), inline=True) as link:
        assert link.reader.inline
        assert not any(t.name.startswith("picodaq-reader") for t in threading.enumerate())
        sent = b"".join(bytes(frames.next_chunk()) for _ in range(20))  # 1,000 frames: many tty reads
        writer = threading.Thread(target=os.write, args=(master, sent))
        writer.start()
        got = pump_bytes(link, len(sent))
        writer.join()
        stats = link.receiver.stats
        assert got == len(sent) and stats.frames_ok == 1000 and stats.seq_lost == stats.crc_errors == 0
        # every instant once, in order, each block routed in the consumer's (this) thread
        expected = 0
        for first, n, thread in blocks:
            assert first == expected and thread == threading.current_thread().name
            expected += n
        assert expected == sum(n for _, n, _ in blocks) > 0
        # a nudge from another thread ends the consumer's sleep in select() with nothing read (a
        # nudge that comes before the sleep ends it as soon as it begins)
        nudger = threading.Thread(target=link.nudge)
        nudger.start()
        deadline = time.monotonic() + 30
        assert link.pump(timeout=30) == 0
        assert time.monotonic() < deadline  # the nudge ended it, not the hang guard
        nudger.join()


def test_a_waiting_consumer_reads_the_port_itself_and_the_thread_reads_when_it_stays_away(pty_pair):
    master, path = pty_pair
    frames = FrameStream(frames_per_chunk=50)
    link, blocks = logging_link(path)
    with link:
        reader = link.reader
        assert reader.lends and not reader.inline
        # 1. frames that come while the consumer waits in pump(): it was lent the port
        first = bytes(frames.next_chunk())

        def write_when_lent() -> None:
            while not reader.loans:
                time.sleep(0.001)
            os.write(master, first)

        writer = threading.Thread(target=write_when_lent)
        writer.start()
        got = pump_bytes(link, len(first))
        writer.join()
        assert reader.loans >= 1
        # 2. the consumer stays away from pump(): the thread takes the port back and reads it
        second = b"".join(bytes(frames.next_chunk()) for _ in range(20))  # 1,000 frames, many tty reads
        os.write(master, second[:4096])  # what a tty buffers before its writer would block
        deadline = time.monotonic() + 30
        while len(link.ring) < 4096 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(link.ring) == 4096, "the reader thread did not take the port back"
        writer = threading.Thread(target=os.write, args=(master, second[4096:]))
        writer.start()
        got = pump_bytes(link, len(first) + len(second), got)
        writer.join()
        stats = link.receiver.stats
        assert stats.frames_ok == 1050 and stats.seq_lost == stats.crc_errors == stats.skipped_bytes == 0
        assert_every_instant_once_in_order(blocks, 1050 * frames.n_samples)  # whoever read the port
        link.pump(timeout=0.01)  # lent once more: close() must still end the thread at once
    assert reader._thread is not None and not reader._thread.is_alive()
