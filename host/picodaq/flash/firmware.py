"""Where the firmware sources are, which files make a deployment, and what
version and contract they carry."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent.parent  # host/picodaq, or site-packages/picodaq

# The firmware's way back to the REPL (firmware/README.md): while idle, after at
# least 50 ms with no input, the bytes CR, Ctrl-C, CR. mpremote's raw-REPL entry
# (`\r\x03`, then `\r\x01`) is this escape and a Ctrl-A left for the REPL.
REPL_ESCAPE = b"\r\x03\r"
REPL_ESCAPE_PAUSE = 0.2  # seconds a host sends nothing before the escape (4 x the firmware's minimum)


def firmware_dir() -> Path:
    """firmware/ of this checkout, or the copy packaged with picodaq."""
    for candidate in (_PACKAGE.parent.parent / "firmware", _PACKAGE / "_firmware"):
        if (candidate / "main.py").exists() and (candidate / "picodaq_fw").is_dir():
            return candidate
    raise FileNotFoundError("picodaq firmware sources not found")


def firmware_files(root: Path | None = None) -> list[tuple[str, Path]]:
    """(path on the board, source file) for main.py and every picodaq_fw module."""
    root = root or firmware_dir()
    files = [("main.py", root / "main.py")]
    files += [(f"picodaq_fw/{p.name}", p) for p in sorted((root / "picodaq_fw").glob("*.py"))]
    return files


def _module_constant(path: Path, name: str) -> Any:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{path}: no constant {name}")


def firmware_version(root: Path | None = None) -> str:
    """VERSION from picodaq_fw/__init__.py, as "major.minor.patch"."""
    root = root or firmware_dir()
    version = _module_constant(root / "picodaq_fw" / "__init__.py", "VERSION")
    return ".".join(str(v) for v in version)


def firmware_contract_hash(root: Path | None = None) -> int:
    """The contract hash the firmware's generated contracts.py was made from."""
    root = root or firmware_dir()
    raw = _module_constant(root / "picodaq_fw" / "contracts.py", "CONTRACT_HASH_LE")
    return int.from_bytes(raw, "little")
