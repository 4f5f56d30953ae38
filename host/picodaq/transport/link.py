"""Link: a serial port (any pyserial URL) with one reader thread, a ByteRing,
and a Receiver driven by the caller's thread.

The reader thread only moves bytes: from the port's file descriptor straight
into the ring's free space with readinto (no bytes object per read). It
blocks in select() on the descriptor and on a wake-up pipe that close()
writes to, so it never polls on a timer; a full ring makes it wait on the
ring's event (the ring's BLOCK policy: the backlog backs up into the port and
the device, whose drops are counted and show as sample-index gaps). It wakes
the consumer once it has read all the port had, not after each read (a tty
hands 4 KiB a read), just before it blocks in select(), which lets go of the
GIL: the consumer's wake-up never waits out the interpreter's switch interval
(receiver latency measured the same at sys.setswitchinterval(0.1) as at 5 ms).

The caller's thread pumps the ring into the Receiver (`pump`), lending the
ring's bytes in place; commands wait for their ACK by pumping, so frames that
arrive meanwhile are routed as usual. Raw bytes can be tapped as they are
pumped (a .tlv capture). Blocks reach the user through the receiver's primary
output; with a BlockQueue, `poll_into` / `poll_each` / `poll` pump and poll in
one call.
"""

from __future__ import annotations

import functools
import io
import os
import random
import select
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import serial

from .. import contracts as C
from ..buffers.pool import PoolStats
from ..buffers.ring import ByteRing, Overflow, ReceiversDisconnected, SendersDisconnected
from ..core.blocks import SamplesBlock
from ..core.primary import BlockQueue
from ..core.receiver import Receiver
from ..errors import CommandFailed, CommandTimeout, ContractMismatch, LinkError, PortBusy, UsageError
from ..protocol.frames import configure_args, encode_command
from ..protocol.messages import Ack, Hello, Status
from .ports import BUSY, port_busy
from .rfc2217_client import fast_url

RawTap = Callable[[memoryview], None]
_MIN_SAMPLES_FRAME = C.OVERHEAD + 16 + 2  # one int16 instant of one channel
_WAKE_EVERY = 1 << 16  # the reader wakes the consumer at least this often (bytes) while the port has more
_GRACE = 0.001  # batching: a port that stays silent this long after a read has given all it had
_BURST_MOST = 0.005  # batching: ... or, at the most, what came in this long after it woke the reader
# batching: a burst wakes the consumer only once the bytes not yet announced would otherwise wait
# longer than this (from the first of them), or reach _WAKE_EVERY: at high rates the reader bursts
# every few ms, and each wake of the consumer costs more than the bytes it decodes then (a cold
# interpreter: 200 us for 35 KB at the line rate, 54 us warm)
_WAKE_LATEST = 0.05


def _due(since: float) -> float | None:
    """How long the reader may sleep before bytes read from `since` on must reach the consumer."""
    return max(0.0, since + _WAKE_LATEST - time.monotonic()) if since else None


class Link:
    def __init__(
        self,
        port: serial.SerialBase,
        url: str,
        receiver: Receiver | None = None,
        ring_capacity: int = 1 << 22,
        overflow: Overflow = Overflow.BLOCK,
    ) -> None:
        self.url = url
        self.port = port
        self.receiver = receiver or Receiver(runs=True)
        self.ring = ByteRing(ring_capacity, overflow)
        self.raw_taps: list[RawTap] = []
        self.bytes_in = 0
        self.reader_wakeups = 0  # times the reader thread woke from select(): data came (or close())
        # Batching: after reading all there was, the reader waits this long before it looks for more,
        # so bytes that come in pieces (a frame at a time, at a few hundred per second) wake it,
        # and the consumer, once per batch instead of once per piece. It delays data by at most
        # this long; 0 (the default) reads as soon as anything arrives. The port's buffer (and the
        # board's ring, behind USB flow control) holds what comes meanwhile: see batch_for().
        self.batch_seconds = 0.0
        self._urgent = False  # the consumer waits for an answer (pump_until): batches wake it at once
        self._seq = 0
        # the board answers a repeated cmd_id with its last ACK instead of running the command
        # again (a retry after a lost ACK): start each link at a random id, so a new process
        # does not collide with the previous one's last command
        self._cmd_id = random.getrandbits(16)
        self._arrival = 0.0
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._fd = self._fileno(port)
        self._thread = threading.Thread(target=self._read_loop, name=f"picodaq-reader {url}", daemon=True)
        self._thread.start()

    @classmethod
    def open(
        cls,
        url: str,
        receiver: Receiver | None = None,
        ring_capacity: int = 1 << 22,
        overflow: Overflow = Overflow.BLOCK,
    ) -> Link:
        try:
            port = serial.serial_for_url(
                fast_url(url),
                baudrate=115200,
                timeout=0.1,
                exclusive=True,
                write_timeout=None if _is_rfc2217(url) else 2,
            )
        except (serial.SerialException, OSError, ValueError) as e:
            raise open_error(e, url) from None
        except NotImplementedError as e:  # a URL handler lacking an option
            raise LinkError(f"cannot open port {url}: {e}", port=url) from None
        try:
            port.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass
        return cls(port, url, receiver, ring_capacity, overflow)

    @staticmethod
    def _fileno(port: serial.SerialBase) -> int | None:
        try:
            fd = port.fileno()
        except (AttributeError, NotImplementedError, serial.SerialException, io.UnsupportedOperation):
            return None
        return fd if isinstance(fd, int) and fd >= 0 else None

    # -- reader thread -------------------------------------------------------

    def _read_loop(self) -> None:
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
        self.ring.close_sender(error)

    def _read_fd(self, fd: int) -> None:
        os.set_blocking(fd, False)  # pyserial's already is: read until EAGAIN, then select
        f = io.FileIO(fd, "rb", closefd=False)
        readinto = f.readinto
        ring = self.ring
        waitable = [fd, self._wake_r]
        readable = False  # select() said so: then reading nothing means the end
        unannounced = 0  # bytes read since the consumer was last woken
        burst_start = burst_end = 0.0  # batching: a burst of reads ends by then, whatever still comes
        wake_every = _WAKE_EVERY
        since = 0.0  # batching: when the bytes not yet announced to the consumer began to come (0: none)
        while not self._stop.is_set():
            try:
                # the consumer is woken once all there was is read (a pty hands 4 KiB a read: waking
                # it for each piece cost a futex call each way and a GIL tussle with the next read),
                # or every _WAKE_EVERY bytes of a port that never runs dry; a full ring wakes it too
                n = ring.write_from(readinto, wake=False)  # waits on the ring's event while it is full
            except OSError as e:
                raise LinkError(
                    f"port {self.url} vanished: {describe_port_error(e, self.url)}", port=self.url
                ) from None
            if n:
                readable = False
                unannounced += n
                if unannounced >= wake_every:
                    unannounced = since = 0
                    ring.wake_receiver()
                continue
            # None (EAGAIN) or 0 (a tty with VMIN=0 and nothing waiting, or the end)
            if n == 0 and readable:
                by = f"server ({SERVER_CLOSED})" if _is_network(self.url) else "device"
                raise LinkError(f"port {self.url} closed by the {by}", port=self.url)
            batch = self.batch_seconds
            wake_every = _WAKE_EVERY << 2 if batch else _WAKE_EVERY  # batches: _WAKE_LATEST decides
            if batch and not readable:
                # a tty refills its 4 KiB line buffer a moment after each read (a kernel worker
                # moves what waits behind it): a burst is over when nothing more comes in _GRACE
                r, _, _ = select.select(waitable, [], [], _GRACE)
                if self._wake_r in r:
                    return
                now = time.monotonic()
                if r and now < burst_end:
                    readable = True
                    continue
                if unannounced and not since:
                    since = burst_start
                # wake the consumer now unless the next burst still comes in time (a command
                # waiting for its ACK is woken at once)
                if self._urgent or now + batch + _BURST_MOST >= since + _WAKE_LATEST:
                    unannounced = since = 0
                    ring.wake_receiver()
                # read a moment ago: let more arrive before waking again (close() still ends this)
                if select.select([self._wake_r], [], [], batch)[0]:
                    return
            else:
                unannounced = since = 0
                ring.wake_receiver()
            # sleep in the kernel until data or close(), or until bytes left unannounced are due
            while not (r := select.select(waitable, [], [], _due(since))[0]):
                unannounced = since = 0
                ring.wake_receiver()
            self.reader_wakeups += 1
            if self._wake_r in r:
                return
            readable = True
            burst_start = time.monotonic()
            burst_end = burst_start + _BURST_MOST

    def _read_port(self) -> None:
        # a transport without a file descriptor (rfc2217://, whose client buffers bytes behind a
        # Condition): its own blocking read, bounded by its timeout
        while not self._stop.is_set():
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise LinkError(f"port {self.url} failed: {describe_port_error(e, self.url)}", port=self.url) from None
            if data:
                self.ring.push(data)

    # -- consumer side -------------------------------------------------------

    def pump(self, timeout: float = 0.0, max_bytes: int | None = None) -> int:
        """Route what has arrived (at most max_bytes), waiting up to timeout for the first byte.

        Returns the bytes consumed. Raises LinkError once the port is gone and
        everything it delivered has been routed.
        """
        ring = self.ring
        try:
            if not ring.wait_readable(timeout):
                return 0
        except SendersDisconnected:
            err = ring.error
            if isinstance(err, LinkError):
                raise err from None
            raise LinkError(f"port {self.url} closed: {err!r}", port=self.url) from None
        self._arrival = time.monotonic()
        n = ring.pop_each(ring.capacity if max_bytes is None else max_bytes, self._on_bytes)
        self.bytes_in += n
        return n

    def nudge(self) -> None:
        """End the consumer's current (or next) wait in pump() early (from any thread)."""
        self.ring.nudge_receiver()

    def _on_bytes(self, view: memoryview) -> None:
        for tap in self.raw_taps:
            tap(view)
        self.receiver.receive(view, self._arrival)

    # -- polling blocks (the receiver's primary output must be a BlockQueue) ----

    def _pump_for(self, q: BlockQueue, timeout: float) -> None:
        # Pump no more bytes than could make blocks the queue has room for (the
        # smallest SAMPLES frame is 32 bytes), so polling never overflows its own
        # queue: a slow consumer leaves the backlog in the ring, then the port,
        # then the device, which counts what it drops.
        room = q.maxlen - len(q)
        if room > 0:
            self.pump(0.0 if len(q) else timeout, room * _MIN_SAMPLES_FRAME)

    def _queue(self) -> BlockQueue:
        """The queue the polling APIs read: a receiver with no primary output gets one on the first
        poll (blocks from then on are kept for polling); another primary output is a UsageError."""
        if self.receiver.primary is None:
            self.receiver.primary = BlockQueue()
        return self.receiver.queue

    def poll_into(
        self, out: np.ndarray, max: int | None = None, indices: np.ndarray | None = None, timeout: float = 0.0
    ) -> int:
        """Pump (waiting up to timeout when nothing is queued), then copy instants into out."""
        q = self._queue()
        self._pump_for(q, timeout)
        return q.poll_into(out, max, indices)

    def poll_each(self, max: int, fn: Callable[[SamplesBlock], object], timeout: float = 0.0) -> int:
        """Pump (waiting up to timeout when nothing is queued), then lend up to max blocks to fn."""
        q = self._queue()
        self._pump_for(q, timeout)
        return q.poll_each(max, fn)

    def poll(self, max: int | None = None, timeout: float = 0.0) -> list[SamplesBlock]:
        """Pump, then detached copies of the queued blocks (a convenience)."""
        q = self._queue()
        self._pump_for(q, timeout)
        return q.poll(max)

    # -- counters ------------------------------------------------------------------

    @property
    def pool_stats(self) -> PoolStats:
        """The buffer pool's counters (hit_rate, in_use, fallbacks, leaked, ...)."""
        return self.receiver.pool_stats

    def counters(self) -> dict[str, Any]:
        """The receiver's counters plus the ring's and the link's."""
        d = self.receiver.counters()
        d["ring"] = self.ring.stats()
        d["link_bytes"] = self.bytes_in
        return d

    def pump_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        self._urgent = True  # a batching reader wakes us after each burst: an ACK is not kept waiting
        try:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.pump(min(left, 0.05))
            return True
        finally:
            self._urgent = False

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(
                f"cannot write to port {self.url}: {describe_port_error(e, self.url)}", port=self.url
            ) from None

    def command(self, opcode: int, args: bytes = b"", timeout: float = 1.0, retries: int = 2) -> Ack:
        """Send a COMMAND and wait for its ACK; retry on silence; raise on a refusal."""
        self._cmd_id = (self._cmd_id + 1) & 0xFFFF
        cmd_id = self._cmd_id
        acks = self.receiver.acks
        acks.pop(cmd_id, None)
        name = C.OPCODE_NAMES.get(opcode, str(opcode))
        for _attempt in range(retries + 1):
            # counted before sending: the LOG explaining a refusal may arrive in the ACK's read
            seen = self.receiver.log_count
            self.write(encode_command(self._seq, opcode, cmd_id, args))
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            if self.pump_until(lambda: cmd_id in acks, timeout):
                ack = acks.pop(cmd_id)
                if ack.status != C.ST_OK:
                    reason = C.STATUS_NAMES.get(ack.status, str(ack.status))
                    # the board explains a refusal in a LOG right after the ACK
                    self.pump_until(functools.partial(self._logged_since, seen), 0.2)
                    why = f": {self.receiver.logs[-1].text}" if self.receiver.log_count > seen else ""
                    raise CommandFailed(opcode, ack.status, f"board refused {name} ({reason}){why}")
                return ack
        raise CommandTimeout(
            opcode,
            retries + 1,
            f"no answer to {name} from {self.url} after {retries + 1} tries; "
            "is the picodaq firmware running on it? (`picodaq flash` installs it)",
        )

    # -- the commands ----------------------------------------------------------

    def _logged_since(self, seen: int) -> bool:
        return self.receiver.log_count > seen

    def ping(self) -> Ack:
        return self.command(C.OP_PING)

    def get_info(self, check_contract: bool = True) -> Hello:
        seen = self.receiver.hellos
        self.command(C.OP_GET_INFO)
        if not self.pump_until(lambda: self.receiver.hellos > seen, 1.0):
            raise CommandTimeout(C.OP_GET_INFO, 1, "the board acknowledged GET_INFO but sent no HELLO")
        hello = self.receiver.hello
        assert hello is not None
        if check_contract and hello.contract_hash != C.CONTRACT_HASH:
            raise ContractMismatch(hello.contract_hash, C.CONTRACT_HASH)
        return hello

    def get_status(self) -> Status:
        seen = self.receiver.statuses
        self.command(C.OP_GET_STATUS)
        if not self.pump_until(lambda: self.receiver.statuses > seen, 1.0):
            raise CommandTimeout(C.OP_GET_STATUS, 1, "the board acknowledged GET_STATUS but sent no STATUS")
        assert self.receiver.status is not None
        return self.receiver.status

    def configure(
        self, rate_hz: int, channel_mask: int, source: int | str, fmt: int | str, samples_per_frame: int
    ) -> Ack:
        """CONFIGURE: source and fmt by code or by name ("ramp", "sine", "adc", "ads1299"; "int16",
        "int24", "int32")."""
        return self.command(
            C.OP_CONFIGURE,
            configure_args(
                rate_hz, channel_mask, _code(source, C.SOURCE_CODES), _code(fmt, C.FORMAT_CODES), samples_per_frame
            ),
        )

    def start(self) -> Ack:
        return self.command(C.OP_START)

    def stop(self, wait_status: float = 2.0) -> Status | None:
        """STOP, then wait for the STATUS the board sends once its stream has ended
        (a periodic STATUS, still streaming, may arrive between the ACK and that one)."""
        seen = self.receiver.statuses
        self.command(C.OP_STOP)
        rx = self.receiver
        self.pump_until(
            lambda: rx.statuses > seen and rx.status is not None and rx.status.state != C.STATE_STREAMING, wait_status
        )
        return rx.status

    def mark(self, code: int) -> Ack:
        return self.command(C.OP_MARK, struct.pack(C.MARK_ARGS_FORMAT, code))

    def log_texts(self) -> list[str]:
        """The board's recent LOG lines, oldest first."""
        return [log.text for log in self.receiver.logs]

    # -- lifetime --------------------------------------------------------------

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")  # wakes the reader out of select()
        self.ring.close_receiver()  # ... or out of a wait for ring space
        self._thread.join(timeout=2)
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass
        if not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


NO_RFC2217 = "does not seem to support RFC2217"  # pyserial's words when the negotiation fails
NO_RFC2217_REASON = (
    "no RFC 2217 server answered there (a `picodaq serve --raw` is reached with socket://), "
    "or it is busy with another client"
)
SERVER_CLOSED = "it stopped, the board behind it is gone, or it is busy with another client"
_DROPPED = ("Broken pipe", "Connection reset", "reader thread died", "Connection aborted")


def _is_rfc2217(url: str) -> bool:
    # pyserial's RFC 2217 client refuses write_timeout (NotImplementedError); its socket
    # writes are bounded by its socket timeout (5 s) instead
    return url.lower().startswith("rfc2217://")


def _is_network(url: str) -> bool:
    return url.lower().startswith(("rfc2217://", "socket://"))


def open_error(e: BaseException, url: str) -> LinkError:
    """The LinkError for a port that would not open; the one place a port another program holds
    is named busy (PortBusy), for link, serve and flash alike. pyserial only says "Could not
    exclusively lock port ...: Resource temporarily unavailable"."""
    if port_busy(url):
        return PortBusy(f"port {url} {BUSY}", port=url)
    return LinkError(f"cannot open port {url}: {describe_port_error(e, url)}", port=url)


def describe_port_error(e: BaseException, url: str = "") -> str:
    """Why a port (a device or a URL) failed, in a few words, from pyserial's exception."""
    text = str(e).strip()
    if _is_network(url) and any(d in text for d in _DROPPED):
        return f"the server closed the connection ({SERVER_CLOSED})"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if NO_RFC2217 in text:  # pyserial appends a long repr of its Telnet options
        return NO_RFC2217_REASON
    # pyserial wraps OSError text as "[Errno 2] could not open port ...: [Errno 2] No such file"
    return text.split("] ")[-1] if "] " in text else text or type(e).__name__


def _code(value: int | str, codes: dict[str, int]) -> int:
    """A source or format given by name, as its code (a code passes through)."""
    if isinstance(value, int):
        return value
    if value not in codes:
        raise UsageError(f"unknown name {value!r}: one of {', '.join(codes)}")
    return codes[value]
