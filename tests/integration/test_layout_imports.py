"""The product imports without its test harness: every picodaq module imported in a Python
where picodaq_hil cannot be imported (a subprocess; the static checks are tests/unit/test_layout.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "host" / "picodaq"


def product_modules() -> list[str]:
    out = []
    for p in HOST.rglob("*.py"):
        parts = ["picodaq", *p.relative_to(HOST).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return sorted(out)


def test_every_product_module_imports_without_the_harness():
    names = [m for m in product_modules() if not _micropython(m)]
    assert len(names) > 50
    script = (
        "import importlib, sys\n"
        "sys.modules['picodaq_hil'] = None  # as if the harness were not installed\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "assert not any(k.startswith('picodaq_hil') and v is not None for k, v in sys.modules.items())\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def _micropython(name: str) -> bool:
    """Files only MicroPython runs (on the emulated board, or sent to a board while flashing)."""
    return name.endswith(("__main__", "boards.board_boot", "bench.fw_frames")) or ".device" in name
