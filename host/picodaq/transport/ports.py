"""Finding boards: serial ports with the Raspberry Pi USB vendor id, the
emulated boards that `picodaq emulate` has running on this machine, and the
one rule for which board a command uses (`choose_port`)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import serial.tools.list_ports

RPI_VID = 0x2E8A


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    is_board: bool
    serial_number: str | None = None
    emulated: bool = False


def registry_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"picodaq-{os.getuid()}" / "emulators"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _registry() -> list[dict]:
    """The live entries of emulated boards (`picodaq emulate` registers each); stale ones are removed."""
    out = []
    d = registry_dir()
    for entry in sorted(d.glob("*.json")) if d.exists() else []:
        try:
            info = json.loads(entry.read_text())
            pid = int(info["pid"])
            str(info["port"]), info["flash"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: skipped, never removed
        if _alive(pid):
            out.append(info)
        else:
            entry.unlink(missing_ok=True)
    return out


def emulated_boards() -> list[PortInfo]:
    """Emulated boards whose port is there now (a board in BOOTSEL has none: its drive instead)."""
    return [
        PortInfo(str(i["port"]), f"emulated board (flash {i['flash']})", True, i.get("board_id"), emulated=True)
        for i in _registry()
        if Path(str(i["port"])).exists()
    ]


def emulated_drives() -> list[Path]:
    """The BOOTSEL drive folders of emulated boards (an emulated RP2040 started blank, or in BOOTSEL)."""
    return [Path(str(i["drive"])) for i in _registry() if i.get("drive")]


def serial_ports() -> list[PortInfo]:
    return [
        PortInfo(p.device, p.description or "", p.vid == RPI_VID, p.serial_number)
        for p in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device)
    ]


def attached_boards() -> list[PortInfo]:
    """Real boards only: serial ports with the Raspberry Pi vendor id."""
    return [p for p in serial_ports() if p.is_board]


@dataclass(frozen=True)
class PortChoice:
    """The board choose_port found: a port to open, or none (an emulated board is needed), and why.

    reason says it in words that fit after "using ..." in a report: "--port", "the one board
    found by USB id 0x2E8A", "no board with USB id 0x2E8A", "2 boards attached (/dev/ttyACM0,
    /dev/ttyACM1)"."""

    port: str | None  # None: no board to use, start (or find) an emulated one
    reason: str
    usb: PortInfo | None = None  # the board found by USB id: its serial number finds it again after an unplug
    attached: tuple[PortInfo, ...] = ()  # several boards found by USB id, none chosen: the user's to pick

    @property
    def emulated(self) -> bool:
        return self.port is None


def choose_port(port: str | None = None, listed: Sequence[PortInfo] | None = None) -> PortChoice:
    """The board to use: port if given, else the one board attached (by USB id), else none, which
    means an emulated board. Several attached boards are never guessed between: the choice is then
    none too, with the boards in `attached`, and each caller says what it does about it (use an
    emulated board instead, or refuse).

    listed: the serial ports to look at (default: the ones attached now); ports without the
    Raspberry Pi USB id are ignored. Nothing is opened or checked: a given port is returned as is."""
    if port:
        return PortChoice(port, "--port")
    found = [b for b in (attached_boards() if listed is None else listed) if b.is_board]
    if len(found) == 1:
        return PortChoice(found[0].device, f"the one board found by USB id 0x{RPI_VID:04X}", usb=found[0])
    if found:
        names = ", ".join(b.device for b in found)
        return PortChoice(None, f"{len(found)} boards attached ({names})", attached=tuple(found))
    return PortChoice(None, f"no board with USB id 0x{RPI_VID:04X}")


def port_problem(port: str) -> str | None:
    """Why port cannot be a board's serial port, found without opening it (None: it may be one;
    a URL only connecting tells)."""
    if "://" in port:
        return None
    try:
        st = os.stat(port)
    except FileNotFoundError:
        return "no such port (`picodaq ports` lists the serial ports)"
    except OSError as e:
        return e.strerror or str(e)
    if stat.S_ISDIR(st.st_mode):
        return "a directory, not a serial port"
    if not stat.S_ISCHR(st.st_mode):
        return "a regular file, not a serial port" if stat.S_ISREG(st.st_mode) else "not a serial port"
    # a character device: Linux says which class it is (ptys are not listed: they may be one)
    cls = Path(f"/sys/dev/char/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}/subsystem")
    if cls.exists() and cls.resolve().name != "tty":
        return f"not a serial port (a {cls.resolve().name} device)"
    return None


def port_busy(port: str) -> bool:
    """Whether another program holds port's exclusive lock (as pyserial and mpremote take it).
    Asked only after opening it failed: the probe opens the device too."""
    if "://" in port:
        return False
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return False


BUSY = "is busy: another program has it open (a `picodaq record` or `serve`, mpremote or a terminal?)"
