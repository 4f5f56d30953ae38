"""The generated contract modules are current and say what PROTOCOL.md says."""

from __future__ import annotations

import binascii
import sys
import tomllib
from pathlib import Path

from picodaq import contracts as C

ROOT = Path(__file__).resolve().parents[2]


def test_check_fails_on_a_stale_module(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import codegen
    finally:
        sys.path.pop(0)
    stale = tmp_path / "contracts.py"
    stale.write_text("# old\n")
    monkeypatch.setattr(codegen, "HOST_OUT", stale)
    assert codegen.main(["--check"]) == 1
    assert stale.read_text() == "# old\n"  # --check never writes
    assert codegen.main([]) == 0
    assert codegen.main(["--check"]) == 0


def test_contract_hash_is_crc_of_canonical_toml():
    raw = (ROOT / "contracts.toml").read_bytes().replace(b"\r\n", b"\n")
    assert C.CONTRACT_HASH == binascii.crc32(raw)
    fw = (ROOT / "firmware" / "picodaq_fw" / "contracts.py").read_text()
    assert repr(C.CONTRACT_HASH.to_bytes(4, "little")) in fw


def test_contract_matches_protocol_md():
    assert C.MAGIC == b"\xa5\x5a" and C.PROTOCOL_VERSION == 1
    assert C.HEADER_SIZE == 10 and C.OVERHEAD == 14 and C.MAX_FRAME == 4110
    ids = {"HELLO": 0x01, "SAMPLES": 0x02, "STATUS": 0x03, "MARKER": 0x04, "LOG": 0x05, "COMMAND": 0x10, "ACK": 0x11}
    maxes = {"HELLO": 64, "SAMPLES": 4096, "STATUS": 32, "MARKER": 8, "LOG": 128, "COMMAND": 32, "ACK": 8}
    for name, mid in ids.items():
        assert getattr(C, f"MSG_{name}") == mid
        assert C.MAX_PAYLOAD_BY_TYPE[mid] == maxes[name]
    assert C.SAMPLES_FORMAT == "<IIIBBH"
    assert C.STATUS_FORMAT == "<IIIHHIHH"
    assert C.HELLO_FORMAT == "<BBBBI8s8sBBIBBI"  # PROTOCOL.md's 30 bytes, then picodaq's 6
    assert C.ACK_FORMAT == "<HBB" and C.MARKER_FORMAT == "<IHH"
    assert C.CONFIGURE_ARGS_FORMAT == "<IIBBH"
    assert (C.OP_PING, C.OP_GET_INFO, C.OP_CONFIGURE, C.OP_START, C.OP_STOP, C.OP_GET_STATUS, C.OP_MARK) == tuple(
        range(1, 8)
    )
    assert C.BYTES_PER_SAMPLE == {1: 2, 2: 3, 3: 4} and C.BIG_ENDIAN_FORMATS == {C.FMT_INT24}
    assert [
        C.ST_OK,
        C.ST_UNKNOWN_OPCODE,
        C.ST_BAD_ARGUMENT,
        C.ST_BUSY,
        C.ST_UNSUPPORTED,
        C.ST_OVERRUN,
        C.ST_INTERNAL,
    ] == list(range(7))
    assert C.SOURCE_NAMES == {0: "ramp", 1: "sine", 2: "adc", 3: "ads1299"}


def test_pool_size_classes_are_next_power_of_two_over_each_frame():
    c = tomllib.loads((ROOT / "contracts.toml").read_text())
    want = set()
    for m in c["messages"].values():
        n = 128
        while n < m["max_payload"] + 14:
            n *= 2
        want.add(n)
    assert C.POOL_SIZE_CLASSES == tuple(sorted(want)) == (128, 256, 8192)
