"""An RFC 2217 client that keeps up with a board's USB full-speed line rate.

pyserial's client (`serial.rfc2217.Serial`) parses what the server sends one
byte at a time in Python and queues each data byte on its own in a
queue.Queue, which `read()` takes back one `get()` at a time: recording 256 kB/s
cost three quarters of a CPU core, and 1.2 MB/s could not be received at all.

`FastRfc2217Serial` is that class with the data path replaced and nothing
else: option negotiation, the COM-PORT-OPTION subnegotiations (baud rate,
purge, control lines), modem and line state, flow control and `write()` are
pyserial's. Received bytes go through `TelnetStream`, which splits them at IAC
with `bytes.find`, so a run of plain data is handed on whole, into a bytearray
(`RxBuffer`) that `read()`, `in_waiting` and `reset_input_buffer()` work on in
bytes, with pyserial's semantics.

Users type `rfc2217://HOST:PORT` as ever; picodaq opens such a URL as
`fast_url(url)`, whose scheme (`rfc2217fast://`) pyserial's `serial_for_url`
resolves through the handler module `picodaq.transport.urlhandler.protocol_rfc2217fast`.
The port's name stays the plain `rfc2217://` URL. Other programs in the same
process asking pyserial for `rfc2217://` still get pyserial's own client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import serial
import serial.rfc2217 as rfc
from serial.serialutil import PortNotOpenError, SerialException, Timeout

SCHEME = "rfc2217fast"
HANDLER_PACKAGE = "picodaq.transport.urlhandler"
RECV_SIZE = 1 << 16  # pyserial's 1024 means a recv() per kilobyte: 1200 a second at the line rate
RX_LIMIT = 1 << 22  # bytes received and not yet read; beyond it the reader waits and TCP backs up

_IAC = rfc.IAC[0]


def fast_url(url: str) -> str:
    """The URL to give serial_for_url for `url`: rfc2217:// becomes this client's scheme."""
    scheme, sep, rest = url.partition("://")
    return f"{SCHEME}://{rest}" if sep and scheme.lower() == "rfc2217" else url


def plain_url(url: str) -> str:
    """The rfc2217:// URL behind this client's scheme (the name the port reports)."""
    scheme, sep, rest = url.partition("://")
    return f"rfc2217://{rest}" if sep and scheme.lower() == SCHEME else url


def register() -> None:
    """Let pyserial's serial_for_url resolve `rfc2217fast://` (idempotent)."""
    if HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(HANDLER_PACKAGE)


class TelnetStream:
    """What an RFC 2217 server sends, split into data and Telnet commands: sans-I/O.

    The same state machine as pyserial's `_telnet_read_loop` (IAC IAC is a data
    byte 0xFF; IAC SB ... IAC SE a subnegotiation, with IAC IAC inside it too;
    IAC DO/DONT/WILL/WONT an option; IAC and another byte a command), with state
    kept across feed() calls so an IAC may end one recv() and its partner start
    the next. Plain data between IACs is found with bytes.find and handed on a
    run at a time. Data is handed to on_data before each command is handled,
    so the two keep their order in the stream (a purge's answer comes after
    the data the server sent before it).
    """

    def __init__(
        self,
        on_data: Callable[[bytearray], None],
        on_command: Callable[[bytes], None],
        on_option: Callable[[bytes, bytes], None],
        on_subnegotiation: Callable[[bytes], None],
    ) -> None:
        self.on_data = on_data
        self.on_command = on_command
        self.on_option = on_option
        self.on_subnegotiation = on_subnegotiation
        self._mode = rfc.M_NORMAL
        self._verb = b""  # DO, DONT, WILL or WONT, awaiting its option byte
        self._suboption: bytearray | None = None  # inside IAC SB ... IAC SE

    def feed(self, data: bytes) -> None:
        out = bytearray()
        i, n = 0, len(data)
        while i < n:
            if self._mode == rfc.M_NORMAL:
                j = data.find(_IAC, i)
                end = n if j < 0 else j
                if end > i:
                    if self._suboption is not None:
                        self._suboption += data[i:end]
                    else:
                        out += data[i:end]
                if j < 0:
                    break
                self._mode = rfc.M_IAC_SEEN
                i = j + 1
                continue
            byte = data[i : i + 1]
            i += 1
            if self._mode == rfc.M_NEGOTIATE:
                self._mode = rfc.M_NORMAL
                out = self._flush(out)
                self.on_option(self._verb, byte)
            elif byte == rfc.IAC:  # doubled: one data byte 0xFF
                self._mode = rfc.M_NORMAL
                if self._suboption is not None:
                    self._suboption += byte
                else:
                    out += byte
            elif byte == rfc.SB:
                self._mode = rfc.M_NORMAL
                self._suboption = bytearray()
            elif byte == rfc.SE:
                self._mode = rfc.M_NORMAL
                sub, self._suboption = self._suboption, None
                if sub is not None:  # a stray SE (pyserial's reader would die on it) is ignored
                    out = self._flush(out)
                    self.on_subnegotiation(bytes(sub))
            elif byte in (rfc.DO, rfc.DONT, rfc.WILL, rfc.WONT):
                self._mode = rfc.M_NEGOTIATE
                self._verb = byte
            else:
                self._mode = rfc.M_NORMAL
                out = self._flush(out)
                self.on_command(byte)
        if out:
            self.on_data(out)

    def _flush(self, out: bytearray) -> bytearray:
        if out:
            self.on_data(out)
            return bytearray()
        return out


class RxBuffer:
    """Received data bytes, from the reader thread to read(): a bytearray and a Condition.

    Bounded: past `limit` bytes put() waits for read() to make room, so a
    consumer that falls behind backs the stream up into TCP and the server (as
    a full port does), rather than growing this without end.
    """

    def __init__(self, limit: int = RX_LIMIT) -> None:
        self.limit = limit
        self._data = bytearray()
        self._cond = threading.Condition()
        self._ended = False  # the connection ended: nothing more will come

    def __len__(self) -> int:
        return len(self._data)

    def put(self, data: bytearray, still_open: Callable[[], bool]) -> None:
        with self._cond:
            while len(self._data) >= self.limit and still_open():
                self._cond.wait(0.2)  # rechecks still_open: close() does not wait on a full buffer
            self._data += data
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._data.clear()
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._data.clear()
            self._ended = False

    def take(self, size: int, timeout: Timeout) -> bytes:
        """At most size bytes: as soon as size have come, else what came before the timeout.

        Raises SerialException once the connection has ended and nothing is left."""
        got = bytearray()
        with self._cond:
            while True:
                data = self._data
                if data:
                    want = size - len(got)
                    if not got and len(data) <= want:
                        got, self._data = data, bytearray()  # all of it: hand the buffer over
                    else:
                        got += data[:want]
                        del data[:want]
                    self._cond.notify_all()  # room for put()
                if len(got) >= size:
                    break
                if self._ended:
                    if got:
                        break
                    raise SerialException("connection failed (reader thread died)")  # pyserial's words
                if timeout.expired():
                    break
                self._cond.wait(timeout.time_left())
        return bytes(got)


class FastRfc2217Serial(rfc.Serial):
    """pyserial's RFC 2217 client, receiving data in runs of bytes instead of one by one."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._rx = RxBuffer()  # before pyserial's __init__, which opens the port when given one
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        self._rx.reopen()
        super().open()

    @property
    def in_waiting(self) -> int:
        """The number of bytes received and not yet read."""
        if not self.is_open:
            raise PortNotOpenError()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        """Up to size bytes: waits for all of them, at most the timeout (None: no limit, 0: none)."""
        if not self.is_open:
            raise PortNotOpenError()
        return self._rx.take(size, Timeout(self._timeout))

    def reset_input_buffer(self) -> None:
        """Discard what was received: here, and (the purge) in the server's buffer."""
        if not self.is_open:
            raise PortNotOpenError()
        self._rx.clear()  # first too: a reader waiting for room must get on to the purge's answer
        self.rfc2217_send_purge(rfc.PURGE_RECEIVE_BUFFER)
        self._rx.clear()

    def _telnet_read_loop(self) -> None:
        """The reader thread: recv() whole chunks and let TelnetStream split them."""
        rx = self._rx
        is_open = lambda: self.is_open  # noqa: E731

        def on_data(data: bytearray) -> None:
            rx.put(data, is_open)

        stream = TelnetStream(
            on_data, self._telnet_process_command, self._telnet_negotiate_option, self._telnet_process_subnegotiation
        )
        try:
            while self.is_open:
                try:
                    data = self._socket.recv(RECV_SIZE)
                except TimeoutError:
                    continue  # wakes now and then to see whether the port was closed
                except OSError as e:
                    if self.logger:
                        self.logger.debug(f"socket error in reader thread: {e}")
                    break
                if not data:
                    break  # the server closed the connection
                stream.feed(data)
        finally:
            rx.end()
            if self.logger:
                self.logger.debug("read thread terminated")


register()
