"""PortReader: how a Link's bytes get from its port into its ByteRing.

By default a reader thread moves bytes: from the port's file descriptor
straight into the ring's free space with readinto (no bytes object per read).
It blocks in poll() on the descriptor and on a wake-up pipe that close()
writes to, so it never polls on a timer; a full ring makes it wait on the
ring's event (the ring's BLOCK policy: the backlog backs up into the port and
the device, whose drops are counted and show as sample-index gaps). It wakes
the consumer once it has read all the port had, not after each read (a tty
hands 4 KiB a read), just before it blocks in poll(), which lets go of the
GIL: the consumer's wake-up never waits out the interpreter's switch interval.
Whichever thread reads asks Linux for a short time slice (time_slice.py), so on a
busy machine data wakes it ahead of the threads keeping the cores busy.

Lending (the thread's default): a consumer about to
wait in pump() with nothing in the ring borrows the port and sleeps in poll()
on it itself, the thread standing aside; the thread takes the port back once
the consumer has stayed out of pump() for HANDBACK (50 ms), so the port is
drained whatever the consumer does. A frame that comes while the consumer
waits wakes one thread, not two: with two CPU burners busy on a 2-core
machine, the second woken thread (the consumer, woken by the reader) waited
out the scheduler's slice behind them (p99 3 ms) where a single woken thread
does not (p99 0.1-0.2 ms). Batching, the consumer lent the port gathers the
batch itself and decodes it where it was read (see borrow()).

Inline (`inline=True`): no thread at all; the consumer's own pump() reads the
port, and only while it pumps: what comes meanwhile waits in the port's
buffer (then the device's ring).
"""

from __future__ import annotations

import io
import os
import select
import threading
import time
from collections.abc import Callable

import serial

from ..buffers.ring import ByteRing, ReceiversDisconnected
from ..errors import LinkError
from .port_errors import PORT_ERRORS, SERVER_CLOSED, describe_port_error, is_network
from .time_slice import ask_short_slice

WAKE_EVERY = 1 << 16  # the reader wakes the consumer at least this often (bytes) while the port has more
_GRACE = 0.001  # batching: a port that stays silent this long after a read has given all it had
_BURST_MOST = 0.005  # batching: ... or, at the most, what came in this long after it woke the reader
# batching: a burst wakes the consumer only once the bytes not yet announced would otherwise wait
# longer than batch_latest (from the first of them), or reach WAKE_EVERY x 4: at high rates the reader
# bursts every few ms, and each wake of the consumer costs more than the bytes it decodes then
# (a cold interpreter: 200 us for 35 KB at the line rate, 54 us warm)
WAKE_LATEST = 0.05  # batching: the default for PortReader.batch_latest
# lending: the thread takes the port back once the consumer has stayed out of pump() this long
HANDBACK = 0.05
_LOOK_QUIET = 0.5  # lending, a quiet port: the thread looks at most this far apart


def fileno(port: serial.SerialBase) -> int | None:
    try:
        fd = port.fileno()
    except (AttributeError, NotImplementedError, serial.SerialException, io.UnsupportedOperation):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class PortWaiter:
    """Sleeps in poll() on a port's descriptor and a wake-up pipe (one poll object, kept: no fd
    lists to build per wait), and reads the port into a buffer, noting how much room it offered:
    a read shorter than that drained the port, so the next read need not ask (it would only say
    EAGAIN). Both together: a bare loop reading a tty at 1.2 MB/s, 1.32 % -> 1.12 % of a core."""

    def __init__(self, fd: int, wake_r: int) -> None:
        self.wake_r = wake_r
        self.offered = 0  # the room the last read offered
        self.raw_readinto = io.FileIO(fd, "rb", closefd=False).readinto
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._poll.register(wake_r, select.POLLIN)
        self.ready = self._poll.poll  # (milliseconds) -> [(fd, events)]: the port's, or the pipe's
        self._pipe = select.poll()
        self._pipe.register(wake_r, select.POLLIN)

    def readinto(self, view: memoryview) -> int | None:
        self.offered = len(view)
        return self.raw_readinto(view)

    def wait(self, seconds: float | None) -> bool | None:
        """True: the port has something (data, or its end); False: woken through the pipe;
        None: nothing within seconds (None: no limit)."""
        events = self._poll.poll(None if seconds is None else seconds * 1000.0)
        if not events:
            return None
        return len(events) == 1 and events[0][0] != self.wake_r  # two: one is the pipe

    def pause(self, seconds: float) -> bool:
        """Sleep up to seconds whatever the port does; True: woken through the pipe (not read)."""
        return bool(self._pipe.poll(seconds * 1000.0))


class PortReader:
    def __init__(self, port: serial.SerialBase, url: str, ring: ByteRing, inline: bool = False) -> None:
        self.port = port
        self.url = url
        self.ring = ring
        self.wakeups = 0  # times the reader woke from poll(): data came (or close())
        # Batching (the thread only): after reading all there was, the reader waits this long before
        # it looks for more, so bytes that come in pieces (a frame at a time, at a few hundred per
        # second) wake it, and the consumer, once per batch instead of once per piece. It delays
        # data by at most batch_latest; 0 (the default) reads as soon as anything arrives. The port's
        # buffer (and the board's ring, behind USB flow control) holds what comes meanwhile.
        self.batch_seconds = 0.0
        self.batch_latest = WAKE_LATEST  # batching: bytes reach the consumer at most this late
        self.urgent = False  # the consumer waits for an answer: batches wake it at once
        self._fd = fileno(port)
        # a transport without a descriptor (rfc2217://) is read by its own blocking reads: a thread
        self.inline = inline and self._fd is not None
        # lending (the thread, with a descriptor): a consumer that would wait in pump() reads the
        # port itself while it waits, the thread standing aside (see borrow())
        self.lends = not self.inline and self._fd is not None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # the thread's: close(), or the consumer asking for the port
        # the consumer's, while it reads the port: a nudge (inline: the same pipe, there is no thread)
        self._nudge_r, self._nudge_w = os.pipe() if self.lends else (self._wake_r, self._wake_w)
        os.set_blocking(self._nudge_w, False)  # nudges nobody reads pile up to a full pipe: the rest are moot
        self._port = threading.Lock()  # lending: held by whoever reads the port now
        self._want = False  # lending: the consumer asks the thread for the port
        self._left = 0.0  # lending: when the consumer last gave the port back
        self._held = False  # the thread holds the port
        self.loans = 0  # lending: times the consumer read the port itself (borrow())
        self._gathered = 0.0  # batching, lent the port: when the consumer last read a burst
        self._sliced = 0  # the consumer's thread that asked for a short time slice (time_slice.py)
        self._thread: threading.Thread | None = None
        if self._fd is not None and (self.inline or self.lends):
            os.set_blocking(self._fd, False)
            self._waiter = PortWaiter(self._fd, self._nudge_r)
        if not self.inline:
            self._thread = threading.Thread(target=self._read_loop, name=f"picodaq-reader {url}", daemon=True)
            self._thread.start()

    def nudge(self) -> None:
        """End the consumer's sleep in poll() (inline, or lent the port) early (from any thread)."""
        if (self.inline or self.lends) and not self._stop.is_set():
            try:
                os.write(self._nudge_w, b"n")
            except BlockingIOError:
                pass

    def close(self) -> None:
        """Stop reading and close the port (once)."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")  # wakes the reader out of poll()
        self.ring.close_receiver()  # ... or out of a wait for ring space
        if self._thread is not None:
            self._thread.join(timeout=2)
        try:
            self.port.close()
        except PORT_ERRORS:
            pass
        if self._thread is None or not self._thread.is_alive():
            for fd in {self._wake_r, self._wake_w, self._nudge_r, self._nudge_w}:
                os.close(fd)

    # -- lending: the consumer reads while it waits ------------------------------------

    def borrow(self, timeout: float) -> bool:
        """Take the port for a pump() that would wait up to timeout (> 0) with nothing in the ring:
        the consumer reads it itself (fill()), then give_back(). One woken thread, no hand-over
        of bytes: what inline reading gives, while the thread still drains the port whenever the
        consumer stays away from pump() (HANDBACK). Batching, the consumer gathers the batch
        itself (fill()) and decodes it in the thread that read it, awake already: at the line
        rate 5-10 % less CPU than the thread handing the same batches over (side by side, one
        sitting). False: not lending (no descriptor, or the thread did not let go in time)."""
        if not self.lends or timeout <= 0 or self._stop.is_set():
            return False
        if self._port.acquire(blocking=False):
            self.loans += 1
            return True
        self._want = True  # the thread is reading: ask it to stand aside
        try:
            os.write(self._wake_w, b"w")
        except OSError:
            return False
        got = self._port.acquire(timeout=timeout)
        self._want = False
        self.loans += got
        return got

    def give_back(self) -> None:
        self._left = time.monotonic()
        self._port.release()

    # -- inline: in the consumer's thread -------------------------------------------

    def fill(self, timeout: float) -> None:
        """Inline (or lent the port): read what the port has into the ring; with nothing waiting in
        the ring, first sleep in poll() up to timeout for the port (or a nudge). Batching (and
        no command waiting, see urgent), go on reading bursts as the thread does until the first
        bytes are due (batch_latest after them) or timeout ends. A failed port closes the ring's
        sending side: the consumer gets what came before it, then the LinkError."""
        ring = self.ring
        if ring.sender_closed or self._stop.is_set():
            return
        if self._sliced != threading.get_ident() and not self.batch_seconds:
            # the thread that reads now wakes ahead of busy ones (a batching one waits on purpose)
            self._sliced = threading.get_ident()
            ask_short_slice()
        w = self._waiter
        if timeout < 0:
            timeout = 0.0  # poll() would read a negative wait as no limit
        end = time.monotonic() + timeout
        try:
            readable = False
            if not len(ring):
                ring.rewind()  # nobody else reads or writes it now
                if self.batch_seconds:
                    rest = self._gathered + self.batch_seconds - time.monotonic()
                    if rest > 0 and not self.urgent and w.pause(min(rest, timeout)):
                        os.read(self._nudge_r, 64)  # batching: the last burst was read a moment ago
                        return
                    timeout = max(0.0, end - time.monotonic())
                got = w.wait(timeout)
                if not got:
                    if got is False:
                        os.read(self._nudge_r, 64)  # nudged: the consumer has something else to do
                    return
                self.wakeups += 1
                readable = True
            if self.batch_seconds and not self.urgent:
                self._gather(w, end, readable)
            else:
                self._drain(w, readable)
        except LinkError as e:
            ring.close_sender(e)

    def _gather(self, w: PortWaiter, end: float, readable: bool) -> None:
        """Batching: read burst after burst into the ring's free space (one piece, one commit) until
        the first bytes are due (batch_latest after them), end, a nudge, or the room runs short.
        Kept bare: it runs for each 4 KiB a tty hands out (through the ring's and the waiter's
        calls per read it cost 0.1-0.2 % of a core more at the line rate than a bare loop)."""
        failed: list[LinkError] = []
        raw, ready, pipe = w.raw_readinto, w.ready, w.wake_r
        batch, latest = self.batch_seconds, self.batch_latest
        grace_ms = _GRACE * 1000.0

        def bursts(room: memoryview) -> int:
            nonlocal readable
            pos = 0
            last = len(room) - WAKE_EVERY  # leave a read's room: then the consumer decodes first
            due = min(time.monotonic() + latest, end)  # the first bytes have come
            woke = 0
            try:
                while pos < last:
                    n = raw(room[pos:])  # the burst: while the port refills within _GRACE
                    if n:
                        pos += n
                        readable = False
                    elif n == 0 and readable:
                        self._closed_by_peer()
                    ev = ready(grace_ms)
                    if ev:
                        if ev[0][0] == pipe or len(ev) > 1:
                            break
                        woke += 1
                        readable = True
                        if woke & 15 or time.monotonic() < due:
                            continue
                        break  # a port that never pauses: the bytes are due all the same
                    now = time.monotonic()  # the burst is over: let the next one gather, unless these are due
                    if self.urgent or now + batch + _BURST_MOST >= due or w.pause(batch):
                        break
                    ev = ready(max(0.0, due - time.monotonic()) * 1000.0)
                    if not ev or ev[0][0] == pipe or len(ev) > 1:
                        break
                    woke += 1
                    readable = True
            except OSError as e:
                failed.append(self._vanished(e))
            except LinkError as e:
                failed.append(e)
            self.wakeups += woke
            return pos

        if len(self.ring.room()) < 2 * WAKE_EVERY:
            self._drain(w, readable)  # the ring's end, or nearly full: decode first
            return
        self.ring.write_from(bursts, wake=False)
        self._gathered = time.monotonic()
        if w.pause(0):
            os.read(self._nudge_r, 64)  # nudged: the consumer has something else to do
        if failed:
            raise failed[0]

    def _drain(self, w: PortWaiter, readable: bool) -> None:
        """Read until the port has nothing more (or the ring is full); readable: poll() said the
        port has something, so reading nothing means its end."""
        ring, readinto = self.ring, w.readinto
        while ring.free:
            n = self._read_once(readinto)
            if not n:
                if n == 0 and readable:
                    self._closed_by_peer()
                return
            if n < w.offered:
                return  # drained
            readable = False

    # -- the reader thread -----------------------------------------------------------

    def _read_once(self, readinto: Callable[[memoryview], int | None]) -> int | None:
        try:
            return self.ring.write_from(readinto, wake=False)  # waits on the ring's event while it is full
        except OSError as e:
            raise self._vanished(e) from None

    def _vanished(self, e: OSError) -> LinkError:
        return LinkError(f"port {self.url} vanished: {describe_port_error(e, self.url)}", port=self.url)

    def _closed_by_peer(self) -> None:
        by = f"server ({SERVER_CLOSED})" if is_network(self.url) else "device"
        raise LinkError(f"port {self.url} closed by the {by}", port=self.url)

    def _read_loop(self) -> None:
        ask_short_slice()  # woken by data, it gets a busy machine's CPU ahead of threads running out their slices
        error: BaseException | None = None
        try:
            if self._fd is not None:
                self._read_fd(self._fd)
            else:
                self._read_port()
        except ReceiversDisconnected:
            pass  # closed by the consumer
        except Exception as e:  # the port vanished or failed: the consumer reports it
            error = e
        finally:
            if self._held:
                self._held = False
                self._port.release()
        if not self.ring.sender_closed:  # a consumer lent the port may have met its end first
            self.ring.close_sender(error)

    def _read_fd(self, fd: int) -> None:
        os.set_blocking(fd, False)  # pyserial's already is
        w = PortWaiter(fd, self._wake_r)
        stopped = select.poll()  # the batching pause: only close() (or the consumer asking) ends it
        stopped.register(self._wake_r, select.POLLIN)
        self._port.acquire()
        self._held = True
        ring = self.ring
        readable = False  # poll() said so: then reading nothing means the end
        unannounced = 0  # bytes read since the consumer was last woken
        burst_start = burst_end = 0.0  # batching: a burst of reads ends by then, whatever still comes
        wake_every = WAKE_EVERY
        since = 0.0  # batching: when the bytes not yet announced to the consumer began to come (0: none)
        while not self._stop.is_set():
            # the consumer is woken once all there was is read (a pty hands 4 KiB a read: waking
            # it for each piece cost a futex call each way and a GIL tussle with the next read),
            # or every WAKE_EVERY bytes of a port that never runs dry; a full ring wakes it too
            n = self._read_once(w.readinto)
            if n:
                readable = False
                unannounced += n
                if unannounced >= wake_every:
                    unannounced = since = 0
                    ring.wake_receiver()
                if n == w.offered:
                    continue  # the room was filled: there may be more
            elif n == 0 and readable:  # 0 (a tty with VMIN=0 and nothing waiting, or the end)
                self._closed_by_peer()
            # drained (a short read, or EAGAIN)
            batch = self.batch_seconds
            wake_every = WAKE_EVERY << 2 if batch else WAKE_EVERY  # batches: batch_latest decides
            if batch:
                # a tty refills its 4 KiB line buffer a moment after each read (a kernel worker
                # moves what waits behind it): a burst is over when nothing more comes in _GRACE
                got = w.wait(_GRACE)
                if got is False:
                    if not self._stand_aside(stopped):
                        return
                    readable = False
                    continue
                now = time.monotonic()
                if got and now < burst_end:
                    readable = True
                    continue
                if unannounced and not since:
                    since = burst_start
                # wake the consumer now unless the next burst still comes in time (a command
                # waiting for its ACK is woken at once)
                if self.urgent or now + batch + _BURST_MOST >= since + self.batch_latest:
                    unannounced = since = 0
                    ring.wake_receiver()
                # read a moment ago: let more arrive before waking again (close() still ends this)
                if stopped.poll(batch * 1000.0):
                    if not self._stand_aside(stopped):
                        return
                    readable = False
                    continue
            else:
                unannounced = since = 0
                ring.wake_receiver()
            # sleep in the kernel until data or close(), or until bytes left unannounced are due
            while (got := w.wait(self._due(since))) is None:
                unannounced = since = 0
                ring.wake_receiver()
            self.wakeups += 1
            if not got:
                if not self._stand_aside(stopped):
                    return
                readable = False
                continue
            readable = True
            burst_start = time.monotonic()
            burst_end = burst_start + _BURST_MOST

    def _due(self, since: float) -> float | None:
        """How long the reader may sleep before bytes read from `since` on must reach the consumer."""
        return max(0.0, since + self.batch_latest - time.monotonic()) if since else None

    def _stand_aside(self, pause: select.poll) -> bool:
        """Woken through the pipe: close() (False), or a consumer asking for the port (borrow()):
        let it have the port, and take it back once the consumer has stayed out of pump() for
        HANDBACK (True: the thread holds the port again). Meanwhile the thread looks
        on a timer, never when the consumer gives the port back: a thread woken at each pump()'s
        end took the GIL from a consumer busy with the next frame (p99 2.7 ms under two burners)."""
        os.read(self._wake_r, 64)
        if self._stop.is_set():
            return False
        if not self._want:
            return True  # a request that timed out: read on
        self.ring.wake_receiver()  # what the thread read reaches the consumer before what it reads
        self._held = False
        self._port.release()
        wait = HANDBACK
        seen = self.ring.bytes_written
        while True:
            if pause.poll(wait * 1000.0):  # close(), or a request: look now
                os.read(self._wake_r, 64)
            if self._stop.is_set() or self.ring.sender_closed:
                return False
            if not self._port.acquire(blocking=False):
                # the consumer waits in pump(): while bytes flow, look every HANDBACK (it may stay
                # away next); a quiet port, less and less often
                flowing, seen = self.ring.bytes_written != seen, self.ring.bytes_written
                wait = HANDBACK if flowing else min(2 * wait, _LOOK_QUIET)
                continue
            self._held = True
            away = time.monotonic() - self._left
            if away >= HANDBACK and not self._want:
                return True
            self._held = False
            self._port.release()
            wait = max(HANDBACK - away, 0.001)

    def _read_port(self) -> None:
        # a transport without a file descriptor (rfc2217://, whose client buffers bytes behind a
        # Condition): its own blocking read, bounded by its timeout
        while not self._stop.is_set():
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except PORT_ERRORS as e:
                raise LinkError(f"port {self.url} failed: {describe_port_error(e, self.url)}", port=self.url) from None
            if data:
                self.ring.push(data)
