"""`tools/codegen.py --check` as make test runs it: the generated contract modules are current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_modules_are_current():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "codegen.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
