"""One flashed RP2040 for a whole run: the emulated boards of the rp2040 tier start from a copy.

`picodaq flash` of an empty emulated RP2040 takes 6-16 s of a 2-core machine; every suite
(pabot process) and pytest worker of a run would pay it again. Instead the first one to need a
board flashes one (through `picodaq flash`'s engine, as ever) and keeps its flash image, keyed by
what went into it (the firmware's files, the MicroPython uf2, mpy-cross); every board after that
starts from a copy of the image, and its own flash check then finds nothing to write.

The images live in $PICODAQ_RP2040_IMAGES (`make` points it into build/), else in a per-user
folder of the temp dir. A file lock keeps two processes from flashing the same image at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from picodaq.boards.node import IMAGES_DIR
from picodaq.boards.rp2040 import FLASH_IMAGE, Rp2040Board
from picodaq.flash.firmware import firmware_files
from picodaq.flash.image import mpy_cross_version

from .flashing import ensure_firmware


def images_dir() -> Path:
    env = os.environ.get("PICODAQ_RP2040_IMAGES")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"picodaq-{os.getuid()}" / "rp2040-images"


def image_key() -> str:
    """What a flashed image depends on: the firmware's files, the uf2 and boot ROM, the compiler."""
    h = hashlib.sha256()
    for name, path in firmware_files():
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update((IMAGES_DIR / "SHA256SUMS").read_bytes())
    h.update(repr(mpy_cross_version()).encode())
    return h.hexdigest()[:16]


def flashed_image() -> Path:
    """The flash image of an emulated RP2040 holding this checkout's firmware (made once)."""
    root = images_dir()
    root.mkdir(parents=True, exist_ok=True)
    key = image_key()
    image = root / key / FLASH_IMAGE
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not image.exists():
            with tempfile.TemporaryDirectory(prefix="picodaq-rp2040-image-") as tmp:
                folder = Path(tmp) / "board"
                board = Rp2040Board(flash=folder)
                try:
                    board.start()
                    ensure_firmware(board.port, timeout=60.0)
                finally:
                    board.stop()  # stopped: the image on disk is complete
                image.parent.mkdir(exist_ok=True)
                part = image.with_name(FLASH_IMAGE + ".new")
                shutil.copyfile(folder / FLASH_IMAGE, part)
                part.replace(image)
    return image


def start_flashed_board(**kw) -> Rp2040Board:
    """An emulated RP2040 started from a copy of the flashed image, in a temporary folder of its own."""
    image = flashed_image()
    board = Rp2040Board(**kw)
    shutil.copyfile(image, board.flash / FLASH_IMAGE)
    return board.start()
