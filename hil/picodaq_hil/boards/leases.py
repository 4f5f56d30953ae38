"""Board leases: a lock file per board, so two test workers (pytest-xdist, pabot)
never use one board at the same time.

A lease is an exclusive `flock` on `<lease dir>/<board key>.lock`. The kernel
drops it when the holder exits, however it exits, so a crashed worker never
leaves a board locked. The file also says who holds it, for the error message
of whoever waits too long. PabotLib's value sets would do the same between
pabot processes only; a lock file works for pytest-xdist, pabot and separate
shells alike.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import tempfile
import time
from pathlib import Path

from ..errors import LeaseTimeout


def lease_dir() -> Path:
    """$PICODAQ_LEASE_DIR, else a per-user folder in the runtime or temp dir."""
    env = os.environ.get("PICODAQ_LEASE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"picodaq-{os.getuid()}" / "leases"


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") or "board"


class Lease:
    """`with Lease(key, holder="gw0 test_x"):` holds the board named by key."""

    def __init__(
        self, key: str, holder: str = "", directory: Path | None = None, timeout: float = 240.0, poll: float = 0.1
    ) -> None:
        self.key = key
        self.holder = holder or f"pid {os.getpid()} on {socket.gethostname()}"
        self.path = (directory or lease_dir()) / f"{_slug(key)}.lock"
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.holder}\n".encode())
        self._fd = fd
        return True

    def acquire(self) -> Lease:
        """Wait (polling; the lock is never held across a test's body by anyone waiting) up to timeout."""
        deadline = time.monotonic() + self.timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise LeaseTimeout(self.key, self.current_holder(), self.timeout)
            time.sleep(self.poll)
        return self

    def current_holder(self) -> str:
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
