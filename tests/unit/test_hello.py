"""HELLO: the 30 bytes PROTOCOL.md defines, and picodaq's use of the bytes it reserves
(sources at 30, a reserved byte at 31, ring_bytes at 32)."""

from __future__ import annotations

import struct

from picodaq import contracts as C
from picodaq.cli.info import describe
from picodaq.protocol.messages import Hello, Status

CORE = struct.pack("<BBBBI8s8sBBI", 0, 2, 1, 1, C.CONTRACT_HASH, b"\x01" * 8, b"rp2\0\0\0\0\0", 8, 0, 200_000)
STATUS = Status(5000, 10, 0, 3, 100, 50_000, 0, 0)


def test_picodaqs_hello_says_the_sources_and_the_ring():
    payload = (CORE + bytes([0b1011, 0]) + struct.pack("<I", 180_000)).ljust(64, b"\0")
    h = Hello.parse(payload)
    assert (h.sources, h.ring_bytes, h.source_names) == (0b1011, 180_000, ["ramp", "sine", "ads1299"])
    assert h.as_dict()["sources"] == ["ramp", "sine", "ads1299"]
    text = describe("/dev/ttyACM0", h, STATUS)
    assert "sources         ramp, sine, ads1299" in text and "100 instants in 180,000 bytes" in text


def test_a_hello_of_only_the_30_defined_bytes_is_accepted_its_extra_fields_unknown():
    h = Hello.parse(CORE)
    assert (h.max_rate, h.sources, h.ring_bytes, h.source_names) == (200_000, None, None, None)
    assert h.as_dict()["sources"] is None
    text = describe("/dev/ttyACM0", h, STATUS)
    assert "sources         unknown (its HELLO does not say)" in text and "ring            100 instants;" in text


def test_the_contract_puts_them_where_the_firmware_packs_them():
    assert C.HELLO_FORMAT == "<BBBBI8s8sBBIBBI" and struct.calcsize(C.HELLO_FORMAT) == 36
    assert C.HELLO_FIELDS[10:] == ("sources", "reserved", "ring_bytes")
