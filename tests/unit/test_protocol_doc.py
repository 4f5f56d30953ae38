"""docs/PROTOCOL.md, the protocol document that ships with the code, says what contracts.toml and
the generated modules say: every message id, direction and largest payload, every field's offset
and size, the opcodes, status codes, states and source kinds. (The README linked the steering
repository's copy, dead in every clone.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from picodaq import contracts as C

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "PROTOCOL.md").read_text()
TOML = tomllib.loads((ROOT / "contracts.toml").read_text())
SIZE = {"u8": 1, "u16": 2, "u32": 4, "bytes2": 2, "bytes8": 8}


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table in text, as rows of cells (the header row first, the rule left out)."""
    out: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):
                current.append(cells)
        elif current:
            out.append(current)
            current = []
    return out


def section(title_start: str) -> str:
    """The doc's text from the heading that starts with title_start to the next heading of its level or above."""
    m = re.search(rf"^(#+) {re.escape(title_start)}.*$", DOC, re.M)
    assert m, f"no heading {title_start!r} in docs/PROTOCOL.md"
    level = len(m.group(1))
    rest = DOC[m.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def test_the_readme_and_the_firmware_readme_link_the_doc_in_the_repository():
    for readme, target in (
        (ROOT / "README.md", "docs/PROTOCOL.md"),
        (ROOT / "firmware" / "README.md", "../docs/PROTOCOL.md"),
    ):
        text = readme.read_text()
        assert f"]({target})" in text and "../shared/" not in text
        assert (readme.parent / target).resolve() == (ROOT / "docs" / "PROTOCOL.md").resolve()


def test_message_ids_directions_and_largest_payloads():
    (rows,) = [t for t in tables(section("Message types")) if t[0][:2] == ["id", "name"]]
    documented = {name: (int(mid, 16), direction, int(most)) for mid, name, direction, most in rows[1:]}
    assert set(documented) == set(TOML["messages"])
    for name, m in TOML["messages"].items():
        direction = "device -> host" if m["direction"] == "device_to_host" else "host -> device"
        assert documented[name] == (m["id"], direction, m["max_payload"]), name
        assert getattr(C, f"MSG_{name}") == m["id"] and C.MAX_PAYLOAD_BY_TYPE[m["id"]] == m["max_payload"]


def _rows_by_offset(text: str) -> list[tuple[int, int | None, str]]:
    (rows,) = [t for t in tables(text) if t[0][:2] == ["offset", "size"]][:1]
    out = []
    for offset, size, field, *_ in rows[1:]:
        if offset.isdigit():  # "10+L": after the payload
            out.append((int(offset), int(size) if size.isdigit() else None, field))
    return out


def _check_fields(rows: list[tuple[int, int | None, str]], fields: list[dict]) -> None:
    """Each toml field lies where the doc says: a row that starts with its name has its offset and size;
    and the doc's rows tile the same bytes (a row may hold several fields: "major, minor, patch")."""
    starts = {f["offset"]: f for f in fields}
    ends = {f["offset"] + SIZE.get(f["type"], 0) for f in fields if not f.get("rest")}
    for offset, size, text in rows:
        if (
            offset in starts
            and not starts[offset].get("rest")
            and text.split(",")[0].split(" ")[0] == starts[offset]["name"]
        ):
            assert size == SIZE[starts[offset]["type"]], (text, starts[offset])
        if size is not None:
            assert offset in starts, f"the doc has a field at {offset} that contracts.toml lacks: {text}"
            assert offset + size in ends, f"{text}: ends at {offset + size}, no field of contracts.toml does"
    documented = {o for o, _, _ in rows}
    for f in fields:
        inside = any(o <= f["offset"] < o + (s or 1 << 16) for o, s, _ in rows)
        assert inside, f"contracts.toml's {f['name']} at {f['offset']} is in no row of the doc"
    assert documented


def test_the_frame_header():
    rows = _rows_by_offset(section("Frame"))
    _check_fields([r for r in rows if r[2] not in ("payload", "crc")], TOML["header"])
    assert [(o, s) for o, s, f in rows if f in ("magic", "version", "type", "length", "seq")] == [
        (0, 2), (2, 1), (3, 1), (4, 2), (6, 4)
    ]  # fmt: skip
    assert "Overhead: 14 bytes per frame" in DOC and f"Largest frame on the wire: {C.MAX_FRAME} bytes" in DOC


@pytest.mark.parametrize("name", ["SAMPLES", "HELLO", "STATUS", "COMMAND"])
def test_every_field_of_the_tabled_messages(name):
    m = TOML["messages"][name]
    text = section(f"0x{m['id']:02X} {name}")
    rows = _rows_by_offset(text)
    if name == "HELLO":  # the defined bytes, then picodaq's use of the reserved ones
        rows += _rows_by_offset(section("picodaq's use of the reserved bytes"))
        rows = [r for r in rows if not r[2].startswith("reserved,") and r[2] != "reserved, up to 64 bytes in all"]
    _check_fields(rows, m["fields"])


@pytest.mark.parametrize("name", ["MARKER", "LOG", "ACK"])
def test_the_one_line_messages(name):
    m = TOML["messages"][name]
    line = re.search(rf"^### 0x{m['id']:02X} {name}: (.*)$", DOC, re.M)
    assert line, name
    parts = re.findall(r"\b(u8|u16|u32) (\w+)", line.group(1))
    offset = 0
    for (kind, field), f in zip(parts, m["fields"]):
        assert (field, offset, kind) == (f["name"], f["offset"], f["type"]), name
        offset += SIZE[kind]


def test_opcodes_and_their_arguments():
    (rows,) = [t for t in tables(section("0x10 COMMAND")) if t[0][:2] == ["opcode", "name"]]
    for code, name, args in rows[1:]:
        o = TOML["opcodes"][name]
        assert int(code) == o["code"] == getattr(C, f"OP_{name}")
        for a in o["args"]:
            assert a["name"] in args and a["type"] in args, (name, a)
    assert {r[1] for r in rows[1:]} == set(TOML["opcodes"])


def test_status_codes_states_source_kinds_and_formats():
    codes = re.search(r"Status and `last_error` codes: (.*?)\.\n\n", DOC, re.S).group(1)  # type: ignore[union-attr]
    for name, v in TOML["status"].items():
        assert re.search(rf"\b{v} {name}\b", codes), name
    states = re.search(r"state, u16: (.*?) \|", DOC).group(1)  # type: ignore[union-attr]
    for name, v in TOML["states"].items():
        assert f"{v} {name.lower()}" in states, name
    kinds = re.search(r"Source kinds: (.*?)\.\n", DOC, re.S).group(1)  # type: ignore[union-attr]
    for name, v in TOML["sources"].items():
        word = {"adc": "ADC", "ads1299": "ADS1299"}.get(name, name)
        assert re.search(rf"\b{v} [^,]*{word}", kinds), name
    fmts = re.search(r"\| \d+ \| 1 \| fmt: (.*?) \|", DOC).group(1)  # type: ignore[union-attr]
    for name, f in TOML["formats"].items():
        assert f"{f['code']} = {name}" in fmts, name
    assert f"value(c, n) = ((n * {C.RAMP_MUL} + c * {C.RAMP_CHAN_MUL}) mod 2^B) - 2^(B-1)" in DOC
