"""The emulated board on MicroPython's unix port: the handle a host program starts, resets,
unplugs and stops. The board itself runs in a supervisor process (unix_supervisor.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .pty import open_linked_pty
from .supervised import SupervisedBoard
from .unix_supervisor import IMAGE_NAME, micropython_executable

__all__ = ["EmulatedBoard", "micropython_executable", "open_linked_pty"]


class EmulatedBoard(SupervisedBoard):
    """Handle on a supervisor process: start it, learn its port, reset, unplug, stop.

    A board starts empty, as a Pico fresh from `micropython.uf2`: `picodaq flash`
    (picodaq.flash.flasher.Flasher) fills its flash over the port, the path users take.
    With no flash folder given, a fresh temporary one is made. With flash_size,
    the flash is a littlefs2 image of that many bytes instead of a host folder,
    with a real size limit (see the module docstring).
    """

    def __init__(
        self,
        flash: Path | None = None,
        unpaced: bool = False,
        board_id: str = "",
        heap: str = "16M",
        unplug_seconds: float = 1.0,
        boot: str = "main.py",
        env: dict[str, str] | None = None,
        flash_size: int | None = None,
    ) -> None:
        super().__init__(flash, "picodaq-board-")
        self.unpaced = unpaced
        self.board_id = board_id or os.urandom(8).hex()
        self.heap = heap
        self.unplug_seconds = unplug_seconds
        self.boot = boot
        self.env = env or {}
        self.flash_size = flash_size
        self.image = self.flash / IMAGE_NAME if flash_size else None

    def install_firmware(self) -> None:
        """Copy the firmware sources straight into the flash folder, as .py files.

        A shortcut for tests that only need a running firmware: users flash with
        `picodaq flash`, and tests of flashing use picodaq.flash.flasher.Flasher.
        """
        from picodaq.flash.firmware import firmware_files

        if self.image is not None:
            raise RuntimeError("this emulated board's flash is a littlefs image: flash it over its port")
        for rel, src in firmware_files():
            dst = self.flash / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)

    def start(self, timeout: float = 10.0) -> EmulatedBoard:
        argv = [
            sys.executable,
            "-m",
            "picodaq.boards.unix_supervisor",
            "--flash",
            str(self.flash),
            "--link",
            self.port,
            "--heap",
            self.heap,
            "--board-id",
            self.board_id,
            "--unplug-seconds",
            str(self.unplug_seconds),
            "--exit-with-parent",
        ]
        if self.unpaced:
            argv.append("--unpaced")
        argv += ["--boot", self.boot] + [f"--env={k}={v}" for k, v in self.env.items()]
        if self.flash_size:
            argv += ["--flash-size", str(self.flash_size)]
        said = self._launch(argv, timeout, lambda line: line.startswith(b"PORT "))
        if said[-1] == b"":
            self.stop()
            raise RuntimeError(f"the emulated board did not start (said {b''.join(said)!r})")
        return self

    def registry_entry(self) -> dict[str, Any]:
        return super().registry_entry() | {"flash": str(self.image or self.flash)}
