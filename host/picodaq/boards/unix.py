"""The emulated board on MicroPython's unix port: the handle a host program starts, resets,
unplugs and stops. The board itself runs in a supervisor process (unix_supervisor.py)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .pty import open_linked_pty
from .unix_supervisor import IMAGE_NAME, micropython_executable

__all__ = ["EmulatedBoard", "micropython_executable", "open_linked_pty"]


class EmulatedBoard:
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
        import tempfile

        self._tmp = None if flash else tempfile.TemporaryDirectory(prefix="picodaq-board-")
        root = Path(self._tmp.name) if self._tmp is not None else Path(flash or ".").resolve()
        self.root = root
        self.flash = root / "flash" if self._tmp else root
        self.flash.mkdir(parents=True, exist_ok=True)
        self.port = str(root / "tty" if self._tmp else root.with_name(root.name + ".tty"))
        self.unpaced = unpaced
        self.board_id = board_id or os.urandom(8).hex()
        self.heap = heap
        self.unplug_seconds = unplug_seconds
        self.boot = boot
        self.env = env or {}
        self.flash_size = flash_size
        self.image = self.flash / IMAGE_NAME if flash_size else None
        self.proc: subprocess.Popen | None = None
        self._entry: Path | None = None

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
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if r:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(f"the emulated board did not start (said {line!r})")
        return self

    def register(self) -> None:
        """List this board for `picodaq ports` until it stops."""
        import json

        from picodaq.transport.ports import registry_dir

        assert self.proc is not None
        d = registry_dir()
        d.mkdir(parents=True, exist_ok=True)
        self._entry = d / f"{self.proc.pid}.json"
        self._entry.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "pid": self.proc.pid,
                    "flash": str(self.image or self.flash),
                    "board_id": self.board_id,
                }
            )
        )

    def hard_reset(self) -> None:
        self._signal(signal.SIGUSR1)

    def unplug(self) -> None:
        """The port vanishes for unplug_seconds, then reappears under the same path."""
        self._signal(signal.SIGUSR2)

    def _signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("the emulated board is not running")
        self.proc.send_signal(sig)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self) -> None:
        """Until the board's supervisor ends (it stops with this process, or on stop())."""
        if self.proc is not None:
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None
        if self._entry is not None:
            self._entry.unlink(missing_ok=True)
            self._entry = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmulatedBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
