"""What can go wrong flashing a board: each a PicodaqError, its details in fields.

A port that would not open, or that another program holds, is the link's
business (`picodaq.errors.PortBusy`, raised by `transport.port_errors.open_error`,
the one place a busy port is named); it is re-exported here because flashing
is where users meet it most.
"""

from __future__ import annotations

from ..errors import DeviceError, LinkError, PicodaqError, PortBusy

__all__ = [
    "BoardFileError",
    "BoardNotFound",
    "FirmwareError",
    "NoHello",
    "NotMicroPython",
    "PortBusy",
    "StorageFull",
    "VerifyFailed",
]


class BoardNotFound(LinkError):
    """No board to flash: none attached, or no such port."""


class NotMicroPython(DeviceError):
    """The device did not answer as a MicroPython raw REPL."""

    def __init__(self, message: str, said: bytes = b""):
        super().__init__(message)
        self.said = said


class StorageFull(DeviceError):
    """The board's filesystem has no room for the firmware."""

    def __init__(self, message: str, path: str, needed: int, free: int):
        super().__init__(message)
        self.path = path
        self.needed = needed
        self.free = free


class VerifyFailed(DeviceError):
    """A file's SHA-256 on the board differs from the image's, even after copying it again."""

    def __init__(self, path: str, expected: str, actual: str | None):
        super().__init__(
            f"verification failed: {path} on the board has SHA-256 {actual or 'none (missing)'}, "
            f"expected {expected}, after copying it twice; the link or the board's flash is "
            "corrupting data"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class NoHello(DeviceError):
    """After the reset, the firmware never said HELLO (or said the wrong one)."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


class BoardFileError(DeviceError):
    """A file operation on the board failed; errno is MicroPython's (28 = ENOSPC, 30 = EROFS, ...)."""

    def __init__(self, message: str, errno_: int | None):
        super().__init__(message)
        self.errno = errno_


class FirmwareError(PicodaqError):
    """The firmware on this host cannot be deployed: stale generated code, or it does not compile."""
