"""Plots in Robot logs: a streaming test forced to fail (a faulty link drops bytes, then the stream is
held to be complete) gets, in its log.html, a plot of the signal it received around its first
missing instant; and `Plot Recording To Log` draws a recording into the log."""

from __future__ import annotations

import csv
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
Lost Samples Fail The Stream On Purpose
    Use Faulty Link    drop=3e-4    seed=7
    Start Stream    rate=1000    channels=3
    Enable Link Faults
    Keep Streaming    2 s
    Stop Stream
    Stream Should Be Complete

A Recording Drawn Into The Log
    ${{dir}}=    Recording Directory
    Stream For    0.6 s    rate=1000    channels=2    record=${{dir}}${{/}}r.npy
    Plot Recording To Log    ${{dir}}${{/}}r.npy
"""
PNG = b"\x89PNG\r\n\x1a\n"


def log_strings(log: Path) -> list[str]:
    """The texts log.html carries: Robot keeps them in `window.output["strings"]`, raw ("*...") or
    zlib-compressed and base64-encoded."""
    import base64
    import json
    import zlib

    found = []
    pattern = r'window\.output\["strings"\] = window\.output\["strings"\]\.concat\((\[.*?\])\);'
    for arr in re.findall(pattern, log.read_text(), re.S):
        for s in json.loads(arr.replace("\\x3c", "\\u003c")):
            found.append(s[1:] if s.startswith("*") else zlib.decompress(base64.b64decode(s)).decode())
    return found


def test_a_failed_stream_has_the_signal_around_its_first_missing_instant_in_its_log(tmp_path):
    suite = tmp_path / "plots.robot"
    suite.write_text(SUITE.format(resource=ROOT / "robot" / "resources" / "picodaq.resource"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICODAQ_")}
    env["PICODAQ_LEASE_DIR"] = str(tmp_path / "leases")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "robot", "--outputdir", str(out), "--console", "quiet", str(suite)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert r.returncode == 1, r.stdout + r.stderr  # the first test fails on purpose, the second passes
    root = ET.parse(out / "output.xml").getroot()
    tests = {t.get("name"): t for t in root.iter("test")}
    failed = tests["Lost Samples Fail The Stream On Purpose"]
    assert failed.find("status").get("status") == "FAIL"
    assert "stream not complete" in failed.find("status").text
    assert tests["A Recording Drawn Into The Log"].find("status").get("status") == "PASS"

    # the failed test's log holds an image of what it received, around the first missing instant
    msgs = [m.text or "" for m in failed.iter("msg") if m.get("html") == "true"]
    (shown,) = [m for m in msgs if "<img src=" in m]
    m = re.search(
        r'first missing instant \(gap: (\d+) samples lost\) at ([\d.]+) s.*<img src="(plots/[^"]+\.png)"', shown
    )
    assert m, shown
    lost, at, src = int(m[1]), float(m[2]), m[3]
    assert (out / src).read_bytes().startswith(PNG)
    # log.html itself shows it: the message is among the log's (compressed) strings
    assert any(f'<img src="{src}"' in text for text in log_strings(out / "log.html"))
    window = re.search(r"([\d.]+) to ([\d.]+) s of", shown)
    assert float(window[1]) <= at <= float(window[2]) and float(window[2]) - float(window[1]) <= 0.5 + 1e-9

    # the instant is the first gap of what the host received (the device log's capture, replayed)
    captures = list((out / "device-logs").rglob("Plots.Lost_Samples_Fail_The_Stream_On_Purpose.tlv"))
    assert len(captures) == 1
    npy = tmp_path / "again.npy"
    rr = subprocess.run(
        [sys.executable, "-m", "picodaq.cli.main", "replay", str(captures[0]), "--out", str(npy), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rr.returncode == 0, rr.stderr
    with open(tmp_path / "again.events.csv", newline="") as f:
        gaps = [e for e in csv.DictReader(f) if e["kind"] == "gap"]
    assert gaps and gaps[0]["detail"] == "samples lost; timing: exact"
    assert abs(float(gaps[0]["t_s"]) - at) < 1e-6 and round(float(gaps[0]["duration_s"]) * 1000) == lost

    # the keyword: a recording drawn into the passing test's log
    drawn = tests["A Recording Drawn Into The Log"]
    (kw,) = [m.text for m in drawn.iter("msg") if m.get("html") == "true" and "<img src=" in (m.text or "")]
    assert "r.npy: 2 channels at 1000 Hz, ramp, int16" in kw
    src = re.search(r'<img src="([^"]+)"', kw)[1]
    assert (out / src).read_bytes().startswith(PNG)


def test_the_plot_keywords_are_documented(tmp_path):
    spec = tmp_path / "plots.json"
    r = subprocess.run(
        [sys.executable, "-m", "robot.libdoc", "picodaq_hil.plots.PicodaqPlots", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    import json

    doc = json.loads(spec.read_text())
    names = {k["name"]: k["doc"] for k in doc["keywords"]}
    assert set(names) == {"Plot Recording To Log", "Plot Failure To Log"} and all(names.values())
