"""Per-test, per-board device logs: everything the board sent, kept with the test's result.

For each test, under `<log root>/<board>/`:

- `<test>.tlv`: the bytes the host received from the board, raw (replayable with
  `picodaq replay`);
- `<test>.board.tlv`: with a faulty link, what the board sent before the faults;
- `<test>.log`: a readable account: every frame (SAMPLES runs folded), LOG
  lines, REPL text and tracebacks between frames, and the host's own actions
  (resets, reconnects, the fault seed) at the point in the byte stream where
  they happened.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from ..oracle.capture import describe_items


def slug(text: str, limit: int = 120) -> str:
    s = re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_.")
    return s[:limit] or "test"


class DeviceLog:
    def __init__(self, directory: Path, test: str, board: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        base = slug(test)
        self.test = test
        self.board = board
        self.raw_path = directory / f"{base}.tlv"
        self.path = directory / f"{base}.log"
        self.board_capture: Path | None = None
        self._raw = open(self.raw_path, "wb")
        self._offset = 0
        self._t0 = time.monotonic()
        self._notes: list[tuple[int, str]] = []
        self.closed = False

    # a Link raw tap: called with every chunk the host receives
    def tap(self, chunk: memoryview) -> None:
        if not self.closed:
            self._raw.write(chunk)
            self._offset += len(chunk)

    def note(self, text: str) -> None:
        """A host-side event, placed in the log where the byte stream was when it happened."""
        self._notes.append((self._offset, f"[host {time.monotonic() - self._t0:7.3f} s] {text}"))

    def render(self) -> str:
        """The readable log as it stands (the test may still be running)."""
        if not self._raw.closed:
            self._raw.flush()
        data = self.raw_path.read_bytes()
        items = describe_items(data)
        # notes go before the frames that arrived after them
        merged = sorted(
            [(off, 1, i, t) for i, (off, t) in enumerate(items)]
            + [(off, 0, i, t) for i, (off, t) in enumerate(self._notes)]
        )
        lines = [
            f"picodaq device log: {self.test}",
            f"board: {self.board}",
            f"raw bytes received: {self.raw_path.name} ({len(data)} bytes)",
        ]
        if self.board_capture is not None and self.board_capture.exists():
            lines.append(
                f"bytes the board sent into the faulty link: {self.board_capture.name} "
                f"({self.board_capture.stat().st_size} bytes)"
            )
        lines.append("")
        lines += [f"@{off:<9} {text}" for off, _, _, text in merged]
        return "\n".join(lines) + "\n"

    def close(self) -> Path:
        """Write the readable log; returns its path. Safe to call twice."""
        if not self.closed:
            self.closed = True
            self._raw.close()
            self.path.write_text(self.render())
        return self.path

    def tail(self, n: int = 40) -> str:
        """The last n lines of the readable log."""
        text = self.path.read_text(errors="replace") if self.closed else self.render()
        return "\n".join(text.splitlines()[-n:])
