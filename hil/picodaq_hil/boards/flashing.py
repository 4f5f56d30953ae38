"""Getting this checkout's firmware onto the board under test, only when it differs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from picodaq.flash import Flasher, FlashEvent, FlashReport

from ..errors import HilError


class HasPort(Protocol):
    """What ensure_firmware needs of a board: where it is (a Board, or anything with a port)."""

    port: str | None


@dataclass
class FlashResult:
    flashed: bool  # False: the board already held the image (every hash matched), nothing was written
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    files: int = 0  # files in the image
    target: str = ""  # e.g. "mpy v6.3 armv6m", or "py"
    seconds: float = 0.0
    report: FlashReport | None = None

    def __str__(self) -> str:
        how = f"picodaq flash, {self.target}, {self.seconds:.1f} s"
        if not self.flashed:
            return f"firmware up to date ({self.files} files match the manifest; {how}): not flashed"
        names = ", ".join(self.written) if len(self.written) <= 3 else "all that differed"
        return f"flashed {len(self.written)} of {self.files} files ({how}): {names}"


def ensure_firmware(
    board: HasPort | str, force: bool = False, note: Callable[[str], None] | None = None, timeout: float = 10.0
) -> FlashResult:
    """Make sure `board` runs this checkout's firmware; write only files whose hash differs.

    THE one place picodaq_hil flashes, and it flashes through `picodaq flash`'s
    engine (picodaq.flash.flasher.Flasher), on real and emulated boards alike: stop the
    firmware, compare SHA-256 hashes on the board with the image's (.mpy for the
    board's architecture), write and verify only what differs (nothing when all
    match, unless `force`), reset, and wait for a HELLO with the right contract.

    `board` is a port, or a Board (anything with a `port`); `timeout` is the flasher's for each
    answer and for the HELLO after the reset (longer for an emulated RP2040). The board's link
    must be closed (Board.flash does that); the board is left
    running its firmware, its HELLO already received by the flasher.
    """
    port = board if isinstance(board, str) else board.port
    if not port:
        raise HilError("the board has no port to flash through")

    def progress(ev: FlashEvent) -> None:
        if note is not None and (ev.kind == "note" or (ev.kind == "write" and ev.done == ev.total)):
            note(f"flash: {ev.text or ev.kind + ' ' + ev.path}")

    report = Flasher(port, progress, timeout=timeout, hello_timeout=timeout).flash(force=force)
    return FlashResult(
        bool(report.written or report.removed),
        list(report.written),
        list(report.removed),
        len(report.image.files) + 1,
        report.image.target,
        report.seconds,
        report,
    )  # + manifest
