"""Which board the HIL suite runs on.

1. `PICODAQ_PORT` (or `--picodaq-port`): that port, or several separated by
   commas (a pool of boards, leased to workers one at a time); a port may be a
   pyserial URL, e.g. `rfc2217://labpc:2217` for a board another machine
   exports with `picodaq serve`;
2. else exactly one board found by USB id (VID 0x2E8A);
3. else an emulated board in a fresh flash folder, unless
   `PICODAQ_REQUIRE_HARDWARE=1`, which makes this an error instead.

Steps 2 and 3 are picodaq.transport.ports.choose_port, the order every
picodaq command follows; the pools and leases are the suite's own.

More than one attached board and no `PICODAQ_PORT` is an error: the suite
never guesses between boards, and never falls back to the emulator with
hardware attached. A real board that re-enumerates (after a reset, a replug)
is found again by its USB serial number.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from picodaq.errors import UsageError
from picodaq.transport.ports import RPI_VID, PortInfo, attached_boards, choose_port, serial_ports

from ..errors import BoardLost, NoBoardError

EMULATED = "emulated"
HARDWARE = "hardware"


@dataclass(frozen=True)
class BoardChoice:
    kind: str  # EMULATED or HARDWARE
    reason: str  # why this board: shown in reports
    port: str | None = None
    serial_number: str | None = None

    @property
    def key(self) -> str:
        """What a lease locks: the USB serial number if known, else the port's real path."""
        if self.kind == EMULATED:
            return ""
        if self.serial_number:
            return f"usb-{self.serial_number}"
        if is_url(self.port or ""):
            return (self.port or "").lower()  # a board on another machine: its address names it
        return os.path.realpath(self.port or "")


def is_url(port: str) -> bool:
    """A pyserial URL (rfc2217://, socket://, ...) rather than a device path."""
    return "://" in port


def port_present(port: str | None) -> bool:
    """Whether the port can be tried now: a device path that exists, or any URL (only
    opening it tells whether the board behind it is there)."""
    return bool(port) and (is_url(port or "") or os.path.exists(port or ""))


def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("1", "yes", "true", "on")


def require_hardware(env: Mapping[str, str] | None = None) -> bool:
    return _truthy((os.environ if env is None else env).get("PICODAQ_REQUIRE_HARDWARE"))


def _serial_of(port: str, ports: list[PortInfo]) -> str | None:
    if is_url(port):
        return None
    real = os.path.realpath(port)
    for p in ports:
        if p.device == port or os.path.realpath(p.device) == real:
            return p.serial_number
    return None


def choose_boards(
    env: Mapping[str, str] | None = None, port: str | None = None, ports: list[PortInfo] | None = None
) -> list[BoardChoice]:
    """The boards to run on, most specific setting first (see the module docstring)."""
    env = os.environ if env is None else env
    wanted = port or env.get("PICODAQ_PORT", "")
    listed = serial_ports() if ports is None else ports
    if wanted.strip():
        names = [p.strip() for p in wanted.split(",") if p.strip()]
        how = "--picodaq-port" if port else "PICODAQ_PORT"
        if not names:  # "," or " , ": not unset, yet no port; never an empty pool (it would wait forever)
            raise NoBoardError(
                f"{how}={wanted!r} names no port: give one (or several, separated by commas), or leave it unset"
            )
        return [BoardChoice(HARDWARE, f"{how}={wanted}", p, _serial_of(p, listed)) for p in names]
    found = choose_port(None, listed)  # the same fallback order as `picodaq record`
    if found.usb is not None:
        return [BoardChoice(HARDWARE, found.reason, found.usb.device, found.usb.serial_number)]
    if found.attached:
        raise NoBoardError(f"{found.reason}; set PICODAQ_PORT to the one to test (or several, separated by commas)")
    if require_hardware(env):
        raise NoBoardError(
            "PICODAQ_REQUIRE_HARDWARE=1 but no board is attached (no PICODAQ_PORT, and no serial "
            f"port with USB id 0x{RPI_VID:04X}); refusing to fall back to the emulated board"
        )
    from picodaq.boards.tier import DESCRIPTIONS, emulated_tier

    tier = emulated_tier(env)
    why = f"emulator fallback: no PICODAQ_PORT and {found.reason}; PICODAQ_TIER={tier}, {DESCRIPTIONS[tier]}"
    return [BoardChoice(EMULATED, why)]


def describe_selection(env: Mapping[str, str] | None = None, port: str | None = None) -> str:
    """One line for report headers; never raises."""
    try:
        choices = choose_boards(env, port)
    except (NoBoardError, UsageError) as e:
        return f"no usable board: {e}"
    c = choices[0]
    if c.kind == EMULATED:
        return f"emulated board ({c.reason})"
    ports = ", ".join(f"{x.port}" + (f" (USB serial {x.serial_number})" if x.serial_number else "") for x in choices)
    return f"hardware on {ports} ({c.reason})"


def find_port_by_serial(
    serial_number: str, timeout: float = 10.0, poll: float = 0.2, list_ports=attached_boards
) -> str:
    """The current port of the board with this USB serial number, waiting for it to (re)enumerate."""
    deadline = time.monotonic() + timeout
    while True:
        for p in list_ports():
            if p.serial_number == serial_number and os.path.exists(p.device):
                return p.device
        if time.monotonic() >= deadline:
            raise BoardLost(f"the board with USB serial number {serial_number} did not come back within {timeout:g} s")
        time.sleep(poll)
