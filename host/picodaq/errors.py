"""One error root for picodaq, with the device's faults kept apart from the user's.

Details travel in fields, not only in the message text, so callers never match
on wording.
"""

from __future__ import annotations


class PicodaqError(Exception):
    """Root of every error picodaq raises on purpose."""


class UsageError(PicodaqError):
    """The user asked for something impossible: a bad flag, path or value."""


class LinkError(PicodaqError):
    """The port could not be opened, or vanished, or went silent."""

    def __init__(self, message: str, port: str | None = None):
        super().__init__(message)
        self.port = port


class PortBusy(LinkError):
    """Another program holds the port (an exclusive lock, as pyserial and mpremote take)."""


class DeviceError(PicodaqError):
    """The device answered, but not as the contract says (remote side)."""


class CommandFailed(DeviceError):
    """The device refused a command: its ACK carried a non-OK status."""

    def __init__(self, opcode: int, status: int, message: str):
        super().__init__(message)
        self.opcode = opcode
        self.status = status


class CommandTimeout(DeviceError):
    """No ACK arrived for a command after every retry."""

    def __init__(self, opcode: int, attempts: int, message: str):
        super().__init__(message)
        self.opcode = opcode
        self.attempts = attempts


class ContractMismatch(DeviceError):
    """The firmware was generated from another contracts.toml."""

    def __init__(self, device_hash: int, host_hash: int):
        super().__init__(
            f"contract mismatch: the board's firmware has contract hash 0x{device_hash:08X}, "
            f"this host has 0x{host_hash:08X}; run `picodaq flash` to update the board"
        )
        self.device_hash = device_hash
        self.host_hash = host_hash
