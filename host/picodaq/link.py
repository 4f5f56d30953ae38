"""Link: a serial port (any pyserial URL) with one reader thread, a ByteRing,
and a Receiver driven by the caller's thread.

The reader thread only moves bytes: from the port's file descriptor straight
into the ring with readinto. The caller's thread pumps the ring into the
Receiver (`pump`), and commands wait for their ACK by pumping, so frames that
arrive meanwhile are routed as usual. Raw bytes can be tapped as they are
pumped (a .tlv capture).
"""
from __future__ import annotations

import io
import os
import select
import struct
import threading
import time
from typing import Callable

import serial

from . import contracts as C
from .errors import CommandFailed, CommandTimeout, ContractMismatch, LinkError
from .frames import configure_args, encode_command
from .messages import Ack, Hello, Status
from .receiver import Receiver
from .ring import ByteRing, SendersDisconnected

RawTap = Callable[[memoryview], None]


class Link:
    def __init__(self, port: serial.SerialBase, url: str, receiver: Receiver | None = None,
                 ring_capacity: int = 1 << 22) -> None:
        self.url = url
        self.port = port
        self.receiver = receiver or Receiver()
        self.ring = ByteRing(ring_capacity)
        self.raw_taps: list[RawTap] = []
        self.bytes_in = 0
        self._seq = 0
        self._cmd_id = 0
        self._scratch = bytearray(1 << 16)
        self._stop = threading.Event()
        self._fd = self._fileno(port)
        self._thread = threading.Thread(target=self._read_loop, name=f"picodaq-reader {url}", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, url: str, receiver: Receiver | None = None) -> "Link":
        try:
            port = serial.serial_for_url(url, baudrate=115200, timeout=0.1, write_timeout=2, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError(f"cannot open port {url}: {_reason(e)}", port=url) from None
        try:
            port.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass
        return cls(port, url, receiver)

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
        except Exception as e:  # the port vanished or failed: the consumer reports it
            error = e
        self.ring.close_sender(error)

    def _read_fd(self, fd: int) -> None:
        f = io.FileIO(fd, "rb", closefd=False)
        while not self._stop.is_set():
            # the timeout only bounds how late a close is noticed; data wakes select at once
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                continue
            try:
                n = self.ring.write_from(f.readinto)
            except OSError as e:
                raise LinkError(f"port {self.url} vanished: {_reason(e)}", port=self.url) from None
            if n == 0 and self.ring.free:
                raise LinkError(f"port {self.url} closed by the device", port=self.url)

    def _read_port(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise LinkError(f"port {self.url} failed: {_reason(e)}", port=self.url) from None
            if data:
                self.ring.push(data)

    # -- consumer side -------------------------------------------------------

    def pump(self, timeout: float = 0.0) -> int:
        """Route what has arrived, waiting up to timeout for the first byte.

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
        total = 0
        view = memoryview(self._scratch)
        while True:
            n = ring.pop_batch_into(self._scratch)
            if not n:
                break
            chunk = view[:n]
            for tap in self.raw_taps:
                tap(chunk)
            self.receiver.receive(chunk)
            chunk.release()
            total += n
        self.bytes_in += total
        return total

    def pump_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.05))
        return True

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot write to port {self.url}: {_reason(e)}", port=self.url) from None

    def command(self, opcode: int, args: bytes = b"", timeout: float = 1.0, retries: int = 2) -> Ack:
        """Send a COMMAND and wait for its ACK; retry on silence; raise on a refusal."""
        self._cmd_id = (self._cmd_id + 1) & 0xFFFF
        cmd_id = self._cmd_id
        acks = self.receiver.acks
        acks.pop(cmd_id, None)
        name = C.OPCODE_NAMES.get(opcode, str(opcode))
        for attempt in range(retries + 1):
            # counted before sending: the LOG explaining a refusal may arrive in the ACK's read
            seen = self.receiver.log_count
            self.write(encode_command(self._seq, opcode, cmd_id, args))
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            if self.pump_until(lambda: cmd_id in acks, timeout):
                ack = acks.pop(cmd_id)
                if ack.status != C.ST_OK:
                    reason = C.STATUS_NAMES.get(ack.status, str(ack.status))
                    # the board explains a refusal in a LOG right after the ACK
                    self.pump_until(lambda: self.receiver.log_count > seen, 0.2)
                    why = f": {self.receiver.logs[-1].text}" if self.receiver.log_count > seen else ""
                    raise CommandFailed(opcode, ack.status, f"board refused {name} ({reason}){why}")
                return ack
        raise CommandTimeout(opcode, retries + 1,
                             f"no answer to {name} from {self.url} after {retries + 1} tries; "
                             "is the picodaq firmware running on it? (`picodaq flash` installs it)")

    # -- the commands ----------------------------------------------------------

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

    def configure(self, rate_hz: int, channel_mask: int, source: int, fmt: int, samples_per_frame: int) -> Ack:
        return self.command(C.OP_CONFIGURE, configure_args(rate_hz, channel_mask, source, fmt, samples_per_frame))

    def start(self) -> Ack:
        return self.command(C.OP_START)

    def stop(self, wait_status: float = 2.0) -> Status | None:
        """STOP, then wait for the STATUS the board sends when its stream ends."""
        seen = self.receiver.statuses
        self.command(C.OP_STOP)
        self.pump_until(lambda: self.receiver.statuses > seen, wait_status)
        return self.receiver.status

    def mark(self, code: int) -> Ack:
        return self.command(C.OP_MARK, struct.pack(C.MARK_ARGS_FORMAT, code))

    def log_texts(self) -> list[str]:
        """The board's recent LOG lines, oldest first."""
        return [log.text for log in self.receiver.logs]

    # -- lifetime --------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        self.ring.close_receiver()
        self._thread.join(timeout=2)
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e)
    # pyserial wraps OSError text as "[Errno 2] could not open port ...: [Errno 2] No such file"
    return text.split("] ")[-1] if "] " in text else text or type(e).__name__
