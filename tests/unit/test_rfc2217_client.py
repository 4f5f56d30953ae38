"""picodaq's RFC 2217 client: its data path gives exactly the data bytes and the Telnet commands
pyserial's own reader finds in the same stream, however the stream is cut into recv() chunks;
its byte buffer waits and hands out as pyserial's reads expect. Against a real RFC 2217 server:
tests/integration/test_rfc2217_server.py."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import serial.rfc2217 as rfc
from serial.serialutil import SerialException, Timeout

from picodaq.transport.rfc2217_client import FastRfc2217Serial, RxBuffer, TelnetStream

IAC, SB, SE = rfc.IAC, rfc.SB, rfc.SE
EVERY_BYTE = bytes(range(256))


def escaped(data: bytes) -> bytes:
    return data.replace(IAC, IAC + IAC)


def sub(*parts: bytes) -> bytes:
    """A COM-PORT-OPTION subnegotiation as a server sends it (value bytes 0xFF doubled)."""
    return IAC + SB + rfc.COM_PORT_OPTION + escaped(b"".join(parts)) + IAC + SE


STREAMS = {
    "doubled IAC in data": b"ab" + IAC + IAC + b"cd" + IAC + IAC + IAC + IAC + b"e",
    "every byte value": escaped(EVERY_BYTE * 3),
    "a subnegotiation in the middle of data": escaped(b"head\xff")
    + sub(rfc.SERVER_NOTIFY_MODEMSTATE, b"\x30")
    + escaped(b"\xfftail"),
    "a subnegotiation whose value holds 0xFF": b"x" + sub(rfc.SERVER_SET_BAUDRATE, b"\x00\x01\xff\xff") + b"y",
    "options and other commands between data": b"1"
    + IAC
    + rfc.WILL
    + rfc.BINARY
    + b"2"
    + IAC
    + rfc.DO
    + rfc.SGA
    + IAC
    + rfc.NOP
    + escaped(b"3\xff")
    + IAC
    + rfc.WONT
    + IAC,  # WONT's option is 0xFF
    "data that starts and ends with IAC": escaped(b"\xff" * 7) + IAC + rfc.NOP + escaped(b"\xff"),
}


class ScriptedSocket:
    """recv() hands out the scripted chunks, then b"" (the server closed)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


class Events(list):
    """What a reader found, in stream order; adjacent data merged."""

    def data(self, b: bytes) -> None:
        if b:
            if self and self[-1][0] == "data":
                self[-1] = ("data", self[-1][1] + bytes(b))
            else:
                self.append(("data", bytes(b)))

    def put(self, item: Any, *_: Any) -> None:  # a queue.Queue's put, and RxBuffer.put
        if item is not None:
            self.data(item)

    def end(self) -> None:
        self.append(("end",))


def _listen(port: rfc.Serial, events: Events) -> None:
    port._telnet_process_command = lambda c: events.append(("command", c))
    port._telnet_negotiate_option = lambda verb, opt: events.append(("option", verb, opt))
    port._telnet_process_subnegotiation = lambda s: events.append(("subnegotiation", s))


def pyserials_reading(chunks: list[bytes]) -> Events:
    """The reference: pyserial's own reader thread body, run here on the chunks."""
    events = Events()
    port = rfc.Serial()
    port._socket = ScriptedSocket(chunks)
    port._read_buffer = events
    port.is_open = True
    _listen(port, events)
    port._telnet_read_loop()
    events.end()
    return events


def our_reading(chunks: list[bytes]) -> Events:
    events = Events()
    port = FastRfc2217Serial()
    port._socket = ScriptedSocket(chunks)
    port._rx = events
    port.is_open = True
    _listen(port, events)
    port._telnet_read_loop()
    return events


def cuttings(stream: bytes, seed: int) -> Iterator[list[bytes]]:
    yield [stream]
    yield [stream[i : i + 1] for i in range(len(stream))]
    for i in range(1, len(stream)):
        yield [stream[:i], stream[i:]]
    rng = random.Random(seed)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randint(1, 12))))
        yield [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]


@pytest.mark.parametrize("name", list(STREAMS))
def test_the_data_path_finds_what_pyserials_reader_finds_however_the_stream_is_cut(name):
    stream = STREAMS[name]
    expected = pyserials_reading([stream])
    assert expected[-1] == ("end",) and len(expected) > 1
    for chunks in cuttings(stream, seed=len(name)):
        assert our_reading(chunks) == expected, chunks
        assert pyserials_reading(chunks) == expected  # the reference does not depend on the cutting either


def test_the_data_is_exactly_the_unescaped_bytes():
    got = our_reading([STREAMS["every byte value"][:300], STREAMS["every byte value"][300:]])
    assert got == [("data", EVERY_BYTE * 3), ("end",)]
    got = our_reading([STREAMS["a subnegotiation in the middle of data"]])
    assert got == [
        ("data", b"head\xff"),
        ("subnegotiation", rfc.COM_PORT_OPTION + rfc.SERVER_NOTIFY_MODEMSTATE + b"\x30"),
        ("data", b"\xfftail"),
        ("end",),
    ]


def test_an_iac_split_across_recv_calls():
    data = bytearray()
    commands: list[bytes] = []
    t = TelnetStream(data.extend, commands.append, lambda v, o: None, lambda s: None)
    for part in (b"a" + IAC, IAC + b"b" + IAC, rfc.NOP + b"c" + IAC, IAC):
        t.feed(part)
    assert bytes(data) == b"a\xffbc\xff" and commands == [rfc.NOP]


# -- the byte buffer ------------------------------------------------------------


def test_take_returns_at_most_size_and_waits_at_most_the_timeout():
    rx = RxBuffer()
    rx.put(bytearray(b"0123456789"), lambda: True)
    assert rx.take(3, Timeout(0)) == b"012"
    assert rx.take(0, Timeout(0)) == b""
    assert len(rx) == 7
    t = time.monotonic()
    assert rx.take(100, Timeout(0.3)) == b"3456789"  # fewer than asked: the timeout ended it
    assert time.monotonic() - t >= 0.29
    assert rx.take(5, Timeout(0)) == b"" and len(rx) == 0
    later = threading.Timer(0.1, lambda: rx.put(bytearray(b"abcdef"), lambda: True))
    later.start()
    assert rx.take(4, Timeout(None)) == b"abcd"  # blocks until enough arrived, no timeout
    later.join()
    rx.end()
    assert rx.take(10, Timeout(None)) == b"ef"  # what is left, then the end
    with pytest.raises(SerialException, match="reader thread died"):
        rx.take(1, Timeout(None))


def test_a_full_buffer_makes_the_reader_wait_for_room():
    rx = RxBuffer(limit=4)
    rx.put(bytearray(b"1234"), lambda: True)
    full = threading.Event()

    def still_open() -> bool:  # put() asks only while the buffer is full
        full.set()
        return True

    second = threading.Thread(target=rx.put, args=(bytearray(b"56"), still_open))
    second.start()
    assert full.wait(30)  # it found no room (no fixed wait: the moment it did)
    assert second.is_alive() and len(rx) == 4  # waiting for room
    assert rx.take(2, Timeout(0)) == b"12"
    second.join(5)
    assert not second.is_alive() and rx.take(10, Timeout(0)) == b"3456"
    stuck = threading.Thread(target=rx.put, args=(bytearray(b"x" * 10), lambda: False))  # closed: no wait
    rx.put(bytearray(b"abcd"), lambda: True)
    stuck.start()
    stuck.join(5)
    assert not stuck.is_alive()
