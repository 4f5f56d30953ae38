"""Running an inner pytest session (the HIL plugin's own tests, and the suite over a remote board)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET


def run_pytest(tmp_path, body: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(body))
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PICODAQ_", "PYTEST_"))}
    e["PICODAQ_LEASE_DIR"] = str(tmp_path / "leases")
    e.update(env or {})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--junitxml={tmp_path / 'junit.xml'}",
            "--rootdir",
            str(tmp_path),
            *args,
            str(tmp_path / "test_inner.py"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=e,
    )


def junit_properties(path) -> dict[str, dict[str, str]]:
    out = {}
    for case in ET.parse(path).iter("testcase"):
        out[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    return out
