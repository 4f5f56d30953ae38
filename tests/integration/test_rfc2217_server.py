"""picodaq's RFC 2217 client against a real RFC 2217 server (pyserial's PortManager on a loop://
port, answering the negotiation and echoing data): opening, reading, the server closing, a Link
and the flasher over it. The data path alone, cut every way, is tests/unit/test_rfc2217_client.py."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import serial
import serial.rfc2217 as rfc
from serial.serialutil import SerialException

from picodaq.transport.link import Link
from picodaq.transport.rfc2217_client import FastRfc2217Serial, fast_url
from waiting import wait_for

IAC, SB, SE = rfc.IAC, rfc.SB, rfc.SE
EVERY_BYTE = bytes(range(256))


def escaped(data: bytes) -> bytes:
    return data.replace(IAC, IAC + IAC)


def sub(*parts: bytes) -> bytes:
    """A COM-PORT-OPTION subnegotiation as a server sends it (value bytes 0xFF doubled)."""
    return IAC + SB + rfc.COM_PORT_OPTION + escaped(b"".join(parts)) + IAC + SE


class EchoServer:
    """pyserial's PortManager over a loop:// port on 127.0.0.1:<free port>, one client: it
    answers the negotiation, echoes the client's data back escaped, and `send()` puts raw
    Telnet bytes on the wire (scripted: data and commands as the test writes them)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rfc2217://127.0.0.1:{self.listener.getsockname()[1]}"
        self.loop = serial.serial_for_url("loop://", timeout=0)
        self.conn: socket.socket | None = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def write(self, data: bytes) -> None:  # PortManager's connection
        with self.lock:
            assert self.conn is not None
            self.conn.sendall(data)

    send = write

    def _run(self) -> None:
        self.listener.settimeout(10)
        self.conn, _ = self.listener.accept()
        manager = rfc.PortManager(self.loop, self)
        self.connected.set()
        while not self.stop.is_set():
            if not select.select([self.conn], [], [], 0.05)[0]:
                continue
            data = self.conn.recv(65536)
            if not data:
                break
            self.loop.write(b"".join(manager.filter(data)))
            echo = self.loop.read(self.loop.in_waiting)
            if echo:
                self.send(escaped(echo))

    def close(self) -> None:
        self.stop.set()
        if self.conn is not None:
            self.conn.close()
        self.thread.join(5)
        self.listener.close()
        self.loop.close()


@pytest.fixture
def server() -> Iterator[EchoServer]:
    s = EchoServer()
    yield s
    s.close()


def test_rfc2217_urls_open_this_client_under_their_plain_name(server):
    port = serial.serial_for_url(fast_url(server.url), timeout=30)
    try:
        assert isinstance(port, FastRfc2217Serial) and port.port == server.url
        assert fast_url("socket://h:1") == "socket://h:1" and fast_url("/dev/ttyACM0") == "/dev/ttyACM0"
        assert type(serial.serial_for_url(server.url, do_not_open=True)) is rfc.Serial  # pyserial's stays pyserial's
        # pyserial's protocol: the baud rate was negotiated, and the server's port got it
        assert server.loop.baudrate == port.baudrate == 9600
        port.baudrate = 115200
        assert server.loop.baudrate == 115200
    finally:
        port.close()


def test_reading_over_a_real_server(server):
    port = serial.serial_for_url(fast_url(server.url), timeout=30)
    try:
        assert server.connected.wait(10)
        port.write(EVERY_BYTE * 4)  # pyserial's write escapes 0xFF; the server echoes it back
        assert port.read(1024) == EVERY_BYTE * 4

        # scripted: an IAC split across sends, a subnegotiation in the middle of the data
        server.send(escaped(b"abc\xff")[:-1])
        # "abc" delivered and the lone IAC held by the client: its recv() ended on it, so the second
        # send (not sent before this) reaches it in another recv(), whatever TCP would have coalesced
        wait_for(lambda: port.in_waiting == 3, what="the first send, up to its lone IAC")
        server.send(IAC + b"def" + sub(rfc.SERVER_NOTIFY_MODEMSTATE, b"\xb0") + escaped(b"\xff" * 5))
        wait_for(lambda: port.in_waiting == 12, what="12 bytes (not Telnet's doubled ones)")
        assert port._modemstate == 0xB0 and port.cd  # the subnegotiation reached pyserial's handler
        assert port.read(5) == b"abc\xffd"  # never more than asked
        assert port.in_waiting == 7
        port.timeout = 0.3
        assert port.read(100) == b"ef" + b"\xff" * 5  # fewer than asked once the timeout ran out

        port.timeout = 0.3
        t = time.monotonic()
        assert port.read(10) == b""
        assert time.monotonic() - t >= 0.29
        port.timeout = 0
        assert port.read(10) == b""

        server.send(escaped(EVERY_BYTE))
        wait_for(lambda: port.in_waiting == 256)
        port.reset_input_buffer()  # purged here, and the server answered the purge
        assert port.in_waiting == 0 and port.read(10) == b""
    finally:
        port.close()


def test_the_server_closing_ends_reads_after_what_it_sent(server):
    port = serial.serial_for_url(fast_url(server.url), timeout=30)
    try:
        assert server.connected.wait(10)
        server.send(b"last words")
        wait_for(lambda: port.in_waiting == 10)
        server.stop.set()
        server.conn.shutdown(socket.SHUT_RDWR)
        assert port.read(100) == b"last words"
        with pytest.raises(SerialException, match="reader thread died"):
            port.read(1)
    finally:
        port.close()


def test_a_link_over_the_client_gets_every_byte(server):
    """Link's reader for ports without a descriptor: read(max(1, in_waiting)) into its ring."""
    link = Link.open(server.url)
    got = bytearray()
    link.raw_taps.append(got.extend)
    try:
        assert isinstance(link.port, FastRfc2217Serial)
        assert server.connected.wait(10)
        server.send(escaped(EVERY_BYTE * 64))
        assert link.pump_until(lambda: len(got) >= 256 * 64, 30)
        assert bytes(got) == EVERY_BYTE * 64
    finally:
        link.close()


def test_flashing_opens_rfc2217_urls_with_this_client(server):
    """mpremote's SerialTransport asks pyserial's serial_for_url; Flasher gives it the fast scheme."""
    from picodaq.flash.flasher import Flasher

    t = Flasher(server.url, timeout=30)._open()
    try:
        assert isinstance(t.serial, FastRfc2217Serial) and t.serial.port == server.url
        t.serial.write(b"\x03\xff")
        assert t.serial.read(2) == b"\x03\xff"
    finally:
        t.close()
