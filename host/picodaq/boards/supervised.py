"""What both emulated tiers' board handles share: a board folder (a temporary one unless
given), the supervisor process that runs the board behind its port, the board's entry in
the registry `picodaq ports` reads, and the signals that reset and unplug it."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self


class SupervisedBoard:
    """A board run by a supervisor process (`python -m MODULE ...`) that prints what it shows
    the host, one line each (`PORT PATH`, ...), then runs until it is stopped or its starter
    exits. SIGUSR1 hard-resets the board, SIGUSR2 unplugs it for unplug_seconds."""

    WHAT = "the emulated board"  # names it in errors
    STOP_WAIT = 5.0  # seconds the supervisor gets to stop before it is killed

    def __init__(self, flash: Path | None, prefix: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix) if flash is None else None
        root = Path(self._tmp.name) if self._tmp is not None else Path(flash or ".").resolve()
        self.root = root
        self.flash = root / "flash" if self._tmp else root
        self.flash.mkdir(parents=True, exist_ok=True)
        self.port = str(root / "tty" if self._tmp else root.with_name(root.name + ".tty"))
        self.board_id = ""
        self.proc: subprocess.Popen | None = None
        self._entry: Path | None = None

    def _launch(self, argv: list[str], timeout: float, ready: Callable[[bytes], bool]) -> list[bytes]:
        """Start the supervisor; the lines it printed, up to the one `ready` accepts (the last
        one), or all it said before it exited or the timeout passed (then no line is ready)."""
        # unbuffered: a line read must not leave the next one in a buffer select() cannot see
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True, bufsize=0
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        said: list[bytes] = []
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    break
                said.append(line)
                if ready(line):
                    return said
            elif self.proc.poll() is not None:
                break
        said.append(b"")  # not ready
        return said

    def registry_entry(self) -> dict[str, Any]:
        assert self.proc is not None
        return {"port": self.port, "pid": self.proc.pid, "flash": str(self.flash), "board_id": self.board_id}

    def register(self) -> None:
        """List this board for `picodaq ports` until it stops."""
        from ..transport.ports import registry_dir

        assert self.proc is not None
        d = registry_dir()
        d.mkdir(parents=True, exist_ok=True)
        self._entry = d / f"{self.proc.pid}.json"
        self._entry.write_text(json.dumps(self.registry_entry()))

    def hard_reset(self) -> None:
        """Restart the board from its flash; the port stays."""
        self._signal(signal.SIGUSR1)

    def unplug(self) -> None:
        """The port vanishes for unplug_seconds, then the board boots and the port reappears under the same path."""
        self._signal(signal.SIGUSR2)

    def _signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.WHAT} is not running")
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
                    self.proc.wait(self.STOP_WAIT)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
