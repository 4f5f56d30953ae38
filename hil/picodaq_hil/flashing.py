"""Getting this checkout's firmware onto the board under test, only when it differs."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from picodaq.firmware import firmware_files

from .errors import HilError

if TYPE_CHECKING:
    from .board import Board


@dataclass
class FlashResult:
    flashed: bool  # False: every file already matched, nothing was written
    method: str
    written: list[str] = field(default_factory=list)
    manifest: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.flashed:
            return f"firmware up to date ({len(self.manifest)} files match, {self.method}): not flashed"
        names = ", ".join(self.written) if len(self.written) <= 3 else "all that differed"
        return f"flashed {len(self.written)} of {len(self.manifest)} files ({self.method}): {names}"


def firmware_manifest() -> dict[str, str]:
    """{path on the board: SHA-256} of the firmware this checkout deploys."""
    return {rel: hashlib.sha256(src.read_bytes()).hexdigest() for rel, src in firmware_files()}


def ensure_firmware(board: "Board", force: bool = False, method: str | None = None) -> FlashResult:
    """Make sure `board` runs this checkout's firmware; write only files whose hash differs.

    THE one place picodaq_hil flashes. Until `picodaq flash` (issue 4,
    host/picodaq/flash.py) is merged it uses an interim path: an emulated board
    gets the files copied into its flash folder (EmulatedBoard.install_firmware),
    a real board gets them over the raw REPL with mpremote (`method="mpremote"`,
    which also works on the emulated board); either way the files' SHA-256 is
    compared first and nothing is written when all match. Once picodaq.flash is
    merged, this function switches to `picodaq flash --port PORT`, which checks
    the manifest on the device itself and skips flashing when the hashes match.

    The board's link must be closed (the caller, Board.flash, does that) and the
    board is left needing a soft reset.
    """
    manifest = firmware_manifest()
    method = method or ("copy" if board.emulator is not None else "mpremote")
    if method == "copy":
        emu = board.emulator
        if emu is None:
            raise HilError("only an emulated board can be flashed by copying into its flash folder")
        on_board = {rel: _sha256(emu.flash / rel) for rel in manifest}
        stale = [rel for rel, h in manifest.items() if force or on_board[rel] != h]
        if stale:
            emu.install_firmware()
        return FlashResult(bool(stale), "copied into the emulator's flash folder", stale, manifest)
    if method == "mpremote":
        if not board.port:
            raise HilError("the board has no port to flash through")
        return _flash_mpremote(board.port, manifest, force)
    raise HilError(f"unknown flashing method {method!r}")


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


_HASH_SCRIPT = """
import hashlib, binascii
for p in {paths!r}:
    try:
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            while True:
                b = f.read(512)
                if not b:
                    break
                h.update(b)
        print('HASH', p, binascii.hexlify(h.digest()).decode())
    except OSError:
        print('HASH', p, '-')
"""

_MKDIR_SCRIPT = """
import os
for d in {dirs!r}:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""


def _mpremote(port: str, *args: str, timeout: float = 120.0) -> str:
    argv = [sys.executable, "-m", "mpremote", "connect", port, *args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HilError(f"mpremote on {port} did not finish within {timeout:g} s") from None
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise HilError(f"mpremote on {port} failed: {msg[-1] if msg else r.returncode}")
    return r.stdout


def _flash_mpremote(port: str, manifest: dict[str, str], force: bool) -> FlashResult:
    out = _mpremote(port, "exec", _HASH_SCRIPT.format(paths=list(manifest)))
    on_board = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "HASH":
            on_board[parts[1]] = parts[2]
    stale = [rel for rel, h in manifest.items() if force or on_board.get(rel) != h]
    if stale:
        sources = dict(firmware_files())
        dirs = sorted({rel.rsplit("/", 1)[0] for rel in stale if "/" in rel})
        args: list[str] = ["exec", _MKDIR_SCRIPT.format(dirs=dirs)]
        for rel in stale:
            args += ["+", "fs", "cp", str(sources[rel]), f":{rel}"]
        _mpremote(port, *args)
        check = _mpremote(port, "exec", _HASH_SCRIPT.format(paths=stale))
        wrong = [rel for rel in stale if f"HASH {rel} {manifest[rel]}" not in check]
        if wrong:
            raise HilError(f"flashing {port}: {', '.join(wrong)} did not verify after writing")
    return FlashResult(bool(stale), "mpremote over the raw REPL", stale, manifest)
