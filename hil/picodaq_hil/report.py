"""Which board (and tier) each Robot suite ran on, and every skipped case with its reason, read
back from output.xml and said on stderr.

    python -m picodaq_hil.report build/robot/output.xml

Under pabot every suite's console output is kept in a file, so `make hil` runs this
after the suites: the fallback to an emulated board is never silent.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def suite_boards(output_xml: Path | str) -> list[tuple[str, str]]:
    """(suite name, board) for every suite that named its board (suite metadata `Board`)."""
    root = ET.parse(output_xml).getroot()
    out = []

    def walk(suite: ET.Element, prefix: str) -> None:
        name = f"{prefix}.{suite.get('name')}" if prefix else str(suite.get("name"))
        for meta in suite.findall("meta"):
            if meta.get("name") == "Board":
                out.append((name, meta.text or ""))
        for child in suite.findall("suite"):
            walk(child, name)

    for top in root.findall("suite"):
        walk(top, "")
    return out


def suite_tiers(output_xml: Path | str) -> dict[str, str]:
    """suite name -> tier (suite metadata `Tier`: unix, rp2040, board)."""
    root = ET.parse(output_xml).getroot()
    out: dict[str, str] = {}

    def walk(suite: ET.Element, prefix: str) -> None:
        name = f"{prefix}.{suite.get('name')}" if prefix else str(suite.get("name"))
        for meta in suite.findall("meta"):
            if meta.get("name") == "Tier":
                out[name] = meta.text or ""
        for child in suite.findall("suite"):
            walk(child, name)

    for top in root.findall("suite"):
        walk(top, "")
    return out


def skipped(output_xml: Path | str) -> list[tuple[str, str]]:
    """(suite.test, reason) for every skipped test: the board's own reason, as the suites give it."""
    root = ET.parse(output_xml).getroot()
    out = []

    def walk(suite: ET.Element, prefix: str) -> None:
        name = f"{prefix}.{suite.get('name')}" if prefix else str(suite.get("name"))
        for test in suite.findall("test"):
            status = test.find("status")
            if status is not None and status.get("status") == "SKIP":
                out.append((f"{name}.{test.get('name')}", (status.text or "").strip()))
        for child in suite.findall("suite"):
            walk(child, name)

    for top in root.findall("suite"):
        walk(top, "")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m picodaq_hil.report OUTPUT.xml", file=sys.stderr)
        return 2
    try:
        boards = suite_boards(args[0])
        tiers = suite_tiers(args[0])
        skips = skipped(args[0])
    except (OSError, ET.ParseError) as e:
        print(f"picodaq: cannot read {args[0]}: {e}", file=sys.stderr)
        return 1
    for suite, board in boards:
        print(f"picodaq_hil: suite '{suite}' ran on {board}", file=sys.stderr)
    for test, why in skips:
        print(f"picodaq_hil: skipped '{test}': {why or '(no reason given)'}", file=sys.stderr)
    if tiers:
        counts: dict[str, int] = {}
        for t in tiers.values():
            counts[t] = counts.get(t, 0) + 1
        said = ", ".join(f"{n} on the {t} tier" for t, n in sorted(counts.items()))
        print(f"picodaq_hil: tiers: {said}; {len(skips)} tests skipped", file=sys.stderr)
    emulated = sum(b.startswith("emulated") for _, b in boards)
    hardware = len(boards) - emulated
    print(
        f"picodaq_hil: {hardware} suites ran on hardware, {emulated} on emulated boards"
        + (" (no real board was tested)" if boards and not hardware else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
