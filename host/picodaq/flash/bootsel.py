"""Installing MicroPython through a Raspberry Pi boot ROM's USB drive (BOOTSEL mode).

A Pico held in BOOTSEL shows up as a USB mass-storage drive (RPI-RP2 for the RP2040, RP2350 for
the RP2350) whose INFO_UF2.TXT names the chip on its Board-ID line. A UF2 file copied onto it is
written into the flash; the chip then reboots into it, the drive goes away, and MicroPython's USB
serial port (USB id 0x2E8A) appears. Here:

- `find_drives()`: mounted BOOTSEL drives (from the mount table, the usual mount folders, and the
  emulated boards `picodaq emulate --chip rp2040 --blank` runs), `read_drive(path)` for one given;
- `install(image, drive)`: copy a checked UF2 image onto the drive and wait for the drive to go;
- `wait_for_serial(before)`: wait for a MicroPython port that was not there before;
- `enter_bootsel(port)`: a board running MicroPython reboots into its boot ROM (machine.bootloader()).

Every failure is one PicodaqError naming what to do; nothing is half-written silently: a copy cut
short says how far it got, and the board then stays in BOOTSEL, ready for another try.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import LinkError, PicodaqError, UsageError
from ..transport.ports import PortInfo, attached_boards, emulated_boards, emulated_drives
from .uf2 import Uf2Image

INFO = "INFO_UF2.TXT"
TARGET_NAME = "picodaq-micropython.uf2"  # any name does: the boot ROM reads the blocks, not the name
CHUNK = 64 * 1024
MOUNT_ROOTS = ("/media", "/run/media", "/mnt", "/Volumes")


class DriveError(PicodaqError):
    """A BOOTSEL drive that cannot be used: gone, read-only, full, or not one."""


@dataclass(frozen=True)
class Drive:
    path: Path
    board_id: str  # "RPI-RP2", "RP2350"
    info: str  # INFO_UF2.TXT as read

    def describe(self) -> str:
        model = next(
            (line.split(":", 1)[1].strip() for line in self.info.splitlines() if line.startswith("Model:")), ""
        )
        return f"{self.board_id} drive at {self.path}" + (f" ({model})" if model else "")


def read_drive(path: Path) -> Drive:
    """The BOOTSEL drive mounted at path, or a UsageError saying why it is not one."""
    if not path.exists():
        raise UsageError(f"--drive {path}: nothing is mounted there (is the board in BOOTSEL and its drive mounted?)")
    if not path.is_dir():
        raise UsageError(f"--drive {path}: not a folder (give the folder the board's drive is mounted at)")
    drive = _drive_at(path)
    if drive is None:
        raise UsageError(f"--drive {path}: no {INFO} there: not a Raspberry Pi board's BOOTSEL drive")
    return drive


def _drive_at(path: Path) -> Drive | None:
    try:
        info = (path / INFO).read_text(errors="replace")
    except OSError:
        return None
    for line in info.splitlines():
        if line.startswith("Board-ID:"):
            return Drive(path, line.split(":", 1)[1].strip(), info)
    return None


def _mount_points() -> list[Path]:
    points: list[Path] = []
    try:
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] in ("vfat", "msdos", "fuseblk", "exfat"):
                    points.append(Path(fields[1].replace("\\040", " ")))
    except OSError:
        pass  # not Linux: the usual folders below
    for root in MOUNT_ROOTS:
        base = Path(root)
        try:
            for child in base.iterdir():
                points.append(child)
                if child.is_dir() and root != "/Volumes":  # /media/<user>/<drive>
                    points.extend(c for c in child.iterdir() if c.is_dir())
        except OSError:
            continue
    return points


def find_drives() -> list[Drive]:
    """Every BOOTSEL drive mounted on this machine (and every emulated board's), each once."""
    found: dict[Path, Drive] = {}
    for p in [*_mount_points(), *emulated_drives()]:
        d = _drive_at(p)
        if d is not None:
            found.setdefault(p.resolve(), d)
    return list(found.values())


def wait_for_drive(timeout: float, poll: float = 0.1) -> Drive:
    """A BOOTSEL drive appearing (a board just told to reboot into its boot ROM)."""
    deadline = time.monotonic() + timeout
    while True:
        drives = find_drives()
        if len(drives) == 1:
            return drives[0]
        if len(drives) > 1:
            raise UsageError(
                f"{len(drives)} BOOTSEL drives are mounted ({', '.join(str(d.path) for d in drives)}): "
                "pass --drive to pick one"
            )
        if time.monotonic() > deadline:
            raise DriveError(
                f"no BOOTSEL drive appeared within {timeout:g} s: hold BOOTSEL while plugging the board in, "
                "and mount its drive if your desktop does not (or pass --drive)"
            )
        time.sleep(poll)


def install(
    image: Uf2Image,
    drive: Drive,
    progress: Callable[[int, int], None] | None = None,
    gone_timeout: float = 30.0,
) -> None:
    """Copy image onto drive (checked for its chip first), then wait for the board to reboot (the drive goes)."""
    image.check_chip(drive.board_id)
    target = drive.path / TARGET_NAME
    if not os.access(drive.path, os.W_OK):
        raise DriveError(f"{drive.describe()}: read-only; nothing was written (mount it writable)")
    try:
        st = os.statvfs(drive.path)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    if free is not None and free < len(image.data):
        raise DriveError(
            f"{drive.describe()}: {free:,} bytes free, the image needs {len(image.data):,}; nothing was written"
        )
    done = 0
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(image.data)
            while done < len(view):
                done += os.write(fd, view[done : done + CHUNK])
                if progress:
                    progress(done, len(view))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        if not drive.path.exists() and done:  # the board took the image and rebooted before the close
            return
        why = {errno.EROFS: "read-only", errno.ENOSPC: "full", errno.EACCES: "not writable"}.get(
            e.errno or 0, e.strerror or str(e)
        )
        raise DriveError(
            f"{drive.describe()}: {why}: {done:,} of {len(image.data):,} bytes written; the board stays in "
            "BOOTSEL, nothing on it changed until the copy completes: try again"
        ) from None
    deadline = time.monotonic() + gone_timeout
    while (drive.path / INFO).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if (drive.path / INFO).exists():
        raise DriveError(
            f"{drive.describe()}: the board did not reboot within {gone_timeout:g} s of taking the image; "
            "unplug it and plug it in again"
        )


def serial_boards() -> list[PortInfo]:
    """The boards a freshly installed MicroPython can be: USB ports with the Raspberry Pi id, and emulated boards."""
    return [*attached_boards(), *emulated_boards()]


def wait_for_serial(before: set[str], timeout: float = 30.0, poll: float = 0.2) -> str:
    """The serial port of a board that was not there before (MicroPython's USB CDC after its first boot)."""
    deadline = time.monotonic() + timeout
    while True:
        new = [b.device for b in serial_boards() if b.device not in before]
        if len(new) == 1:
            return new[0]
        if len(new) > 1:
            raise UsageError(f"{len(new)} new boards appeared ({', '.join(new)}): pass --port to pick one")
        if time.monotonic() > deadline:
            raise LinkError(
                f"the board did not come back as a serial port (USB id 0x2E8A) within {timeout:g} s of "
                "taking the image: is it MicroPython's uf2? Unplug the board and plug it in again"
            )
        time.sleep(poll)


BOOTSEL_PLATFORMS = ("rp2",)  # sys.platform of ports whose chip has a USB boot ROM


def enter_bootsel(port: str, timeout: float = 10.0) -> None:
    """A board running MicroPython reboots into its boot ROM: machine.bootloader() over the raw REPL."""
    from mpremote.transport_serial import SerialTransport, TransportError

    from .repl import quiet_board

    try:
        t = SerialTransport(port, exclusive=True, timeout=timeout)
    except Exception as e:  # pyserial's or mpremote's own
        raise LinkError(f"cannot open {port} to put the board in BOOTSEL: {e}", port=port) from None
    try:
        quiet_board(t.serial, port, timeout, "flash --micropython")  # a picodaq stream stops, then quiet
        t.enter_raw_repl(soft_reset=False)
        # only the rp2 port has a boot ROM to reboot into; the unix port (an emulated board) has none
        platform = t.exec("import sys; print(sys.platform, end='')").decode(errors="replace")
        if platform not in BOOTSEL_PLATFORMS:
            t.exit_raw_repl()  # left running as found: Ctrl-D at the friendly REPL runs main.py again
            t.read_until(1, b">>> ", timeout=timeout)
            t.serial.write(b"\x04")
            t.serial.flush()
            raise UsageError(
                f"{port} runs MicroPython's {platform} port, which has no BOOTSEL mode to install a uf2 through "
                "(`picodaq emulate --chip rp2040 --blank` starts an emulated Pico that has one)"
            )
        t.exec_raw_no_follow("import machine; machine.bootloader()")
    except (TransportError, OSError) as e:
        raise LinkError(f"{port}: could not reach MicroPython's REPL to enter BOOTSEL: {e}", port=port) from None
    finally:
        try:
            t.close()
        except Exception:  # the port went away with the reboot
            pass
    print(f"picodaq: {port}: rebooting into BOOTSEL (machine.bootloader())", file=sys.stderr, flush=True)
