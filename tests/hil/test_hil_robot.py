"""The Robot Framework side: the keyword library's reports name the board each suite ran on
(on stderr too), link each test's device log, log the device output on failure, and refuse the
emulator fallback when hardware is required. The acceptance suites themselves (robot/) run in
`make test` / `make hil`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = """*** Settings ***
Resource          {resource}
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board

*** Test Cases ***
Streams Bit-exact
    Stream For    0.5 s    rate=1000    channels=4
    Stream Should Be Complete

Fails On Purpose
    Stream For    0.3 s    rate=1000    channels=40
"""


def run_robot(tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    suite = tmp_path / "board_check.robot"
    suite.write_text(SUITE.format(resource=ROOT / "robot" / "resources" / "picodaq.resource"))
    e = {k: v for k, v in os.environ.items() if not k.startswith("PICODAQ_")}
    e["PICODAQ_LEASE_DIR"] = str(tmp_path / "leases")
    e.update(env or {})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "robot",
            "--outputdir",
            str(tmp_path / "out"),
            "--xunit",
            "xunit.xml",
            "--console",
            "verbose",
            str(suite),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=e,
    )


def test_reports_name_the_board_and_link_the_device_logs(tmp_path):
    r = run_robot(tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr  # one test fails on purpose
    assert "picodaq_hil: suite 'Board Check' runs on emulated board" in r.stderr
    assert "(emulator fallback: no PICODAQ_PORT and no board with USB id 0x2E8A; PICODAQ_TIER=" in r.stderr
    out = tmp_path / "out"
    root = ET.parse(out / "output.xml").getroot()
    suite = root.find("suite")
    meta = {m.get("name"): m.text for m in suite.findall("meta")}
    assert meta["Board"].startswith("emulated board") and "emulator fallback" in meta["Board"]
    assert re.match(r"flashed (\d+) of \1 files \(picodaq flash, ", meta["Firmware"]), meta["Firmware"]
    status = {t.get("name"): t.find("status") for t in suite.iter("test")}
    assert status["Streams Bit-exact"].get("status") == "PASS"
    failed = status["Fails On Purpose"]
    assert failed.get("status") == "FAIL"
    assert "picodaq: channel count must be 1..32, got 40" in failed.text
    assert "(device log: device-logs/emulated-" in failed.text
    rel = failed.text.split("(device log: ")[1].rstrip(")")
    assert (out / rel).is_file() and "ACK" in (out / rel).read_text()
    messages = [m.text or "" for m in root.iter("msg")]
    assert any(m.startswith('Device log: <a href="device-logs/emulated-') for m in messages)
    assert any(m.startswith("Device output before the failure") for m in messages)
    xunit = ET.parse(out / "xunit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in xunit.iter("property")}
    assert props["Board"] == meta["Board"] and "device-logs/emulated-" in props["Device logs"]
    failure = next(xunit.iter("failure"))
    assert "(device log: device-logs/emulated-" in failure.get("message")
    # what `make hil` says on stderr after pabot, which keeps each suite's console to itself
    rep = subprocess.run(
        [sys.executable, "-m", "picodaq_hil.report", str(out / "output.xml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rep.returncode == 0
    assert f"picodaq_hil: suite 'Board Check' ran on {meta['Board']}" in rep.stderr
    assert "0 suites ran on hardware, 1 on emulated boards (no real board was tested)" in rep.stderr


def test_requiring_hardware_fails_the_suite_clearly(tmp_path):
    r = run_robot(tmp_path, env={"PICODAQ_REQUIRE_HARDWARE": "1"})
    assert r.returncode != 0
    assert "picodaq: PICODAQ_REQUIRE_HARDWARE=1 but no board is attached" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    assert "runs on emulated board" not in r.stderr


def test_the_keyword_library_is_documented(tmp_path):
    spec = tmp_path / "picodaq.json"
    r = subprocess.run(
        [sys.executable, "-m", "robot.libdoc", "picodaq_hil.robotlib.PicodaqLibrary", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(spec.read_text())
    assert doc["scope"] == "SUITE" and 'id="Which board"' in doc["doc"] and 'id="Faulty links"' in doc["doc"]
    names = {k["name"] for k in doc["keywords"]}
    assert {
        "Open Board",
        "Start Test On Board",
        "End Test On Board",
        "Stream For",
        "Use Faulty Link",
        "Loss Accounting Should Be Exact",
        "Reset Board Mid Stream",
        "Unplug Board",
        "Markers Should Be",
        "Recording Should Match Ramp",
    } <= names
    assert all(k["doc"].strip() for k in doc["keywords"]), [k["name"] for k in doc["keywords"] if not k["doc"]]


LEASED_SUITE = """*** Settings ***
Resource          {resource}
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board

*** Test Cases ***
Stream One
    Stream For    0.4 s    rate=1000    channels=2
    Stream Should Be Complete

Stream Two
    Stream For    0.4 s    rate=1000    channels=2
    Stream Should Be Complete
"""


def test_pabot_suites_take_turns_on_one_board(tmp_path):
    """Two suites in parallel with pabot on one 'real' board (an emulator's port given as
    PICODAQ_PORT): the lease keeps their tests from ever overlapping."""
    from datetime import datetime, timedelta

    from picodaq.boards.unix import EmulatedBoard

    suites = tmp_path / "suites"
    suites.mkdir()
    for name in ("first", "second"):
        (suites / f"{name}.robot").write_text(
            LEASED_SUITE.format(resource=ROOT / "robot" / "resources" / "picodaq.resource")
        )
    e = {k: v for k, v in os.environ.items() if not k.startswith("PICODAQ_")}
    e["PICODAQ_LEASE_DIR"] = str(tmp_path / "leases")
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    with EmulatedBoard() as emu:
        emu.install_firmware()
        emu.start()
        e["PICODAQ_PORT"] = emu.port
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pabot.pabot",
                "--no-pabotlib",
                "--processes",
                "2",
                "--outputdir",
                str(tmp_path / "out"),
                str(suites),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            env=e,
            cwd=tmp_path,
        )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    root = ET.parse(tmp_path / "out" / "output.xml").getroot()
    spans = []
    for suite in root.iter("suite"):
        meta = {m.get("name"): m.text for m in suite.findall("meta")}
        if "Board" in meta:
            assert meta["Board"].startswith("hardware board") and emu.port in meta["Board"]
        for test in suite.findall("test"):
            st = test.find("status")
            start = datetime.fromisoformat(st.get("start"))
            spans.append((start, start + timedelta(seconds=float(st.get("elapsed"))), suite.get("name")))
    spans.sort()
    assert len(spans) == 4 and {s for _, _, s in spans} == {"First", "Second"}
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
        assert start >= end
