"""Putting the firmware on a board: `picodaq flash` and the HIL suite's flashing.

errors    what can go wrong, each a PicodaqError with details in fields
firmware  this host's firmware folder, its version and contract hash
image     the deployment image: .mpy for the board's architecture, else .py
repl      commands inert in a REPL, draining a board, reading what it printed
device/   the MicroPython the flasher runs on the board (real .py files)
plan      what the board holds, which files are stale, whether the new ones fit
report    FlashEvent (progress) and FlashReport (the outcome)
flasher   Flasher: stop, probe, copy what differs, verify, manifest, reset, HELLO
"""

from .errors import (
    BoardFileError,
    BoardNotFound,
    FirmwareError,
    NoHello,
    NotMicroPython,
    PortBusy,
    StorageFull,
    VerifyFailed,
)
from .flasher import Flasher, flash
from .image import ARCHES, MANIFEST, DeviceInfo, Image, ImageFile, build_image, mpy_cross_version
from .repl import inert_command
from .report import FlashEvent, FlashReport

__all__ = [
    "ARCHES",
    "MANIFEST",
    "BoardFileError",
    "BoardNotFound",
    "DeviceInfo",
    "FirmwareError",
    "FlashEvent",
    "FlashReport",
    "Flasher",
    "Image",
    "ImageFile",
    "NoHello",
    "NotMicroPython",
    "PortBusy",
    "StorageFull",
    "VerifyFailed",
    "build_image",
    "flash",
    "inert_command",
    "mpy_cross_version",
]
