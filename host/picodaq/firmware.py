"""Where the firmware sources are, and which files make a deployment."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def firmware_dir() -> Path:
    """firmware/ of this checkout, or the copy packaged with picodaq."""
    for candidate in (_HERE.parent.parent / "firmware", _HERE / "_firmware"):
        if (candidate / "main.py").exists() and (candidate / "picodaq_fw").is_dir():
            return candidate
    raise FileNotFoundError("picodaq firmware sources not found")


def firmware_files() -> list[tuple[str, Path]]:
    """(path on the board, source file) for main.py and every picodaq_fw module."""
    root = firmware_dir()
    files = [("main.py", root / "main.py")]
    files += [(f"picodaq_fw/{p.name}", p) for p in sorted((root / "picodaq_fw").glob("*.py"))]
    return files
