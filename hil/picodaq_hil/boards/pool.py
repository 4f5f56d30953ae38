"""The boards a test run may use, handed out one per test (pytest) or per suite (Robot)."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import LeaseTimeout
from .board import Board
from .selection import EMULATED, choose_boards


class BoardPool:
    """The boards a test run may use (one emulator per process, or the real boards selected),
    handed out one per test (pytest) or per suite (Robot) under a lease."""

    def __init__(
        self, log_root: Path | str = "build/hil-logs", port: str | None = None, lease_timeout: float = 240.0
    ) -> None:
        self.choices = choose_boards(port=port)
        self.boards = [Board(c, log_root, lease_timeout=lease_timeout) for c in self.choices]
        self.lease_timeout = lease_timeout

    @property
    def emulated(self) -> bool:
        return self.choices[0].kind == EMULATED

    def acquire(self, holder: str) -> Board:
        """A board for `holder`: the first free one, waiting up to the lease timeout."""
        if len(self.boards) == 1:
            self.boards[0].acquire(holder)
            return self.boards[0]
        deadline = time.monotonic() + self.lease_timeout
        while True:
            for b in self.boards:
                if b.acquire(holder, wait=False):
                    return b
            if time.monotonic() >= deadline:
                raise LeaseTimeout(", ".join(b.choice.key for b in self.boards), "other workers", self.lease_timeout)
            time.sleep(0.1)

    def close(self) -> None:
        errors = []
        for b in self.boards:
            try:
                b.shutdown()
            except Exception as e:  # shut every board down, then report
                errors.append(e)
        if errors:
            raise errors[0]
