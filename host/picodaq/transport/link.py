"""Link: a serial port (any pyserial URL), a PortReader moving its bytes into a ByteRing (a reader
thread, which lends the port to a consumer waiting in pump(); or, inline, the consumer's own
pumping only), and a Receiver driven by the caller's thread.

The caller's thread pumps the ring into the Receiver (`pump`), lending the
ring's bytes in place; commands wait for their ACK by pumping, so frames that
arrive meanwhile are routed as usual. Raw bytes can be tapped as they are
pumped (a .tlv capture). Blocks reach the user through the receiver's primary
output; with a BlockQueue, `poll_into` / `poll_each` / `poll` pump and poll in
one call.
"""

from __future__ import annotations

import functools
import random
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import serial

from .. import contracts as C
from ..buffers.pool import PoolStats
from ..buffers.ring import ByteRing, Overflow, SendersDisconnected
from ..core.blocks import SamplesBlock
from ..core.primary import BlockQueue
from ..core.receiver import Receiver
from ..errors import CommandFailed, CommandTimeout, ContractMismatch, LinkError, UsageError
from ..protocol.frames import configure_args, encode_command
from ..protocol.messages import Ack, Hello, Status
from .port_errors import PORT_ERRORS, describe_port_error, is_rfc2217, open_error
from .port_reader import PortReader
from .rfc2217_client import fast_url

RawTap = Callable[[memoryview], None]
_MIN_SAMPLES_FRAME = C.OVERHEAD + 16 + 2  # one int16 instant of one channel
# quiet this long inside a frame, the link asks whether the frame was cut short (a board reset
# mid-frame): judged by the intact frames after it, never by the time alone (protocol/stall.py)
STALL_SECONDS = 0.02


class Link:
    def __init__(
        self,
        port: serial.SerialBase,
        url: str,
        receiver: Receiver | None = None,
        ring_capacity: int = 1 << 22,
        overflow: Overflow = Overflow.BLOCK,
        inline: bool = False,
    ) -> None:
        """inline: no reader thread; pump() reads the port itself, and only while it pumps (see
        PortReader; the thread also lends the port to a pump() that waits)."""
        self.url = url
        self.port = port
        self.receiver = receiver or Receiver(runs=True)
        self.ring = ByteRing(ring_capacity, overflow)
        self.raw_taps: list[RawTap] = []
        self.bytes_in = 0
        self._seq = 0
        # the board answers a repeated cmd_id with its last ACK instead of running the command
        # again (a retry after a lost ACK): start each link at a random id, so a new process
        # does not collide with the previous one's last command
        self._cmd_id = random.getrandbits(16)
        self._arrival = 0.0
        self.reader = PortReader(port, url, self.ring, inline)

    @property
    def reader_wakeups(self) -> int:
        """Times the reader woke from poll(): data came (or close())."""
        return self.reader.wakeups

    @property
    def batch_seconds(self) -> float:
        """How long the reader thread lets bytes gather after a read (PortReader.batch_seconds)."""
        return self.reader.batch_seconds

    @batch_seconds.setter
    def batch_seconds(self, seconds: float) -> None:
        self.reader.batch_seconds = seconds

    @property
    def batch_latest(self) -> float:
        """Batching: how late bytes may reach the consumer (PortReader.batch_latest)."""
        return self.reader.batch_latest

    @batch_latest.setter
    def batch_latest(self, seconds: float) -> None:
        self.reader.batch_latest = seconds

    @classmethod
    def open(
        cls,
        url: str,
        receiver: Receiver | None = None,
        ring_capacity: int = 1 << 22,
        overflow: Overflow = Overflow.BLOCK,
        inline: bool = False,
    ) -> Link:
        try:
            port = serial.serial_for_url(
                fast_url(url),
                baudrate=115200,
                timeout=0.1,
                exclusive=True,
                write_timeout=None if is_rfc2217(url) else 2,
            )
        except (serial.SerialException, OSError, ValueError) as e:
            raise open_error(e, url) from None
        except NotImplementedError as e:  # a URL handler lacking an option
            raise LinkError(f"cannot open port {url}: {e}", port=url) from None
        try:
            port.reset_input_buffer()
        except PORT_ERRORS:
            pass
        return cls(port, url, receiver, ring_capacity, overflow, inline)

    # -- consumer side -------------------------------------------------------

    def pump(self, timeout: float = 0.0, max_bytes: int | None = None) -> int:
        """Route what has arrived (at most max_bytes), waiting up to timeout for the first byte.

        Returns the bytes consumed. Raises LinkError once the port is gone and
        everything it delivered has been routed.
        """
        ring = self.ring
        reader = self.reader
        if reader.inline:
            reader.fill(timeout)  # what the port has, waiting up to timeout when the ring is empty
            timeout = 0.0
        elif timeout > 0 and not len(ring):
            # about to wait: read the port in this thread while waiting (the reader thread stands
            # aside until this thread stays away from pump() a while): one woken thread, not two
            end = time.monotonic() + timeout
            if reader.borrow(timeout):
                try:
                    reader.fill(end - time.monotonic())
                finally:
                    reader.give_back()
                timeout = 0.0
            else:
                timeout = max(0.0, end - time.monotonic())
        try:
            if not ring.wait_readable(timeout):
                if self.receiver.decoder.buffered and time.monotonic() - self._arrival >= STALL_SECONDS:
                    self.receiver.resync_stalled(self._arrival)  # a frame cut short must not hold back the rest
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
        self.reader.nudge()

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
        self.reader.urgent = True  # a batching reader wakes us after each burst: an ACK is not kept waiting
        try:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.pump(min(left, 0.05))
            return True
        finally:
            self.reader.urgent = False

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except PORT_ERRORS as e:
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
        self.reader.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _code(value: int | str, codes: dict[str, int]) -> int:
    """A source or format given by name, as its code (a code passes through)."""
    if isinstance(value, int):
        return value
    if value not in codes:
        raise UsageError(f"unknown name {value!r}: one of {', '.join(codes)}")
    return codes[value]
