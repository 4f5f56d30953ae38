"""`.tlv`: the raw link bytes as received, replayable through `picodaq replay`."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from .base import Output, close_file, flush_file, open_file, write


class TlvOutput(Output):
    """The raw link bytes: replayable through `picodaq replay`."""

    wants_raw = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self._f: BinaryIO = open_file(path, "wb")
        self.bytes = 0

    def on_raw(self, chunk: memoryview) -> None:
        write(self._f, chunk, self.path)
        self.bytes += len(chunk)

    def flush(self) -> None:
        flush_file(self._f, self.path)

    def close(self) -> None:
        close_file(self._f, self.path)
