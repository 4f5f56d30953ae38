"""Installing a UF2 through a BOOTSEL drive: a folder standing in for the drive and a thread for the
boot ROM (it takes the file, then the drive goes away as the chip reboots); every bad case is one
line, and nothing is written when the image is wrong for the chip."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from fakes import uf2_image as image
from picodaq.errors import LinkError, UsageError
from picodaq.flash import bootsel as B
from picodaq.flash.uf2 import RP2040, RP2350_ARM_S, Uf2Error, parse_uf2
from waiting import wait_for

INFO_RP2040 = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


def drive(tmp_path: Path, info: str = INFO_RP2040) -> Path:
    d = tmp_path / "RPI-RP2"
    d.mkdir()
    (d / B.INFO).write_text(info)
    return d


class BootRom(threading.Thread):
    """Takes the first whole .uf2 written to the drive, keeps its bytes, and goes away (reboots)."""

    def __init__(self, path: Path, expected: int) -> None:
        super().__init__(daemon=True)
        self.path, self.expected, self.took = path, expected, b""

    def run(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for f in self.path.glob("*.uf2"):
                data = f.read_bytes()
                if len(data) == self.expected:
                    self.took = data
                    for p in self.path.iterdir():
                        p.unlink()
                    self.path.rmdir()
                    return
            time.sleep(0.01)


def test_an_image_is_copied_and_the_drive_goes_as_the_chip_reboots(tmp_path):
    path = drive(tmp_path)
    img = parse_uf2(bytes(image(40)))
    rom = BootRom(path, len(img.data))
    rom.start()
    seen = []
    B.install(img, B.read_drive(path), progress=lambda done, total: seen.append((done, total)))
    rom.join(5)
    assert rom.took == img.data and not path.exists()
    assert seen[-1] == (len(img.data), len(img.data))


def test_a_drive_is_found_by_its_info_file_and_named(tmp_path):
    path = drive(tmp_path)
    d = B.read_drive(path)
    assert d.board_id == "RPI-RP2" and "Raspberry Pi RP2" in d.describe()


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda t: t / "nowhere", "nothing is mounted there"),
        (lambda t: (t / "f.txt").write_text("x") and t / "f.txt", "not a folder"),
        (lambda t: t, "no INFO_UF2.TXT there"),
    ],
)
def test_a_drive_that_is_not_there_or_not_one_is_one_line(tmp_path, make, words):
    with pytest.raises(UsageError, match=words):
        B.read_drive(make(tmp_path))


def test_an_image_for_another_chip_writes_nothing(tmp_path):
    path = drive(tmp_path)
    img = parse_uf2(bytes(image(4, family=RP2350_ARM_S)))
    with pytest.raises(Uf2Error, match="pick the build for this board"):
        B.install(img, B.read_drive(path))
    assert not list(path.glob("*.uf2"))


def test_a_full_drive_writes_nothing(tmp_path, monkeypatch):
    path = drive(tmp_path)
    real = os.statvfs(path)

    class Tiny:
        f_bavail, f_frsize = 1, real.f_frsize

    monkeypatch.setattr(B.os, "statvfs", lambda p: Tiny)
    with pytest.raises(B.DriveError, match="bytes free, the image needs .*nothing was written"):
        B.install(parse_uf2(bytes(image(40))), B.read_drive(path))
    assert not list(path.glob("*.uf2"))


@pytest.mark.parametrize("code, words", [(errno.EROFS, "read-only"), (errno.ENOSPC, "full")])
def test_a_copy_that_fails_says_how_far_it_got(tmp_path, monkeypatch, code, words):
    path = drive(tmp_path)
    img = parse_uf2(bytes(image(400)))
    calls = [0]
    real_write = os.write

    def write(fd, data):
        calls[0] += 1
        if calls[0] > 1:
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(B.os, "write", write)
    with pytest.raises(B.DriveError) as e:
        B.install(img, B.read_drive(path))
    msg = str(e.value)
    assert words in msg and f"{B.CHUNK:,} of {len(img.data):,} bytes written" in msg and "stays in BOOTSEL" in msg


def test_a_board_that_never_reboots_is_one_line(tmp_path):
    path = drive(tmp_path)
    with pytest.raises(B.DriveError, match="did not reboot within 0.3 s"):
        B.install(parse_uf2(bytes(image(4))), B.read_drive(path), gone_timeout=0.3)


def test_waiting_for_a_drive_and_for_the_new_port(tmp_path, monkeypatch):
    path = tmp_path / "RPI-RP2"
    monkeypatch.setattr(B, "_mount_points", lambda: [path])
    monkeypatch.setattr(B, "emulated_drives", lambda: [])
    with pytest.raises(B.DriveError, match="no BOOTSEL drive appeared within 0.2 s"):
        B.wait_for_drive(0.2, poll=0.02)
    threading.Timer(0.1, lambda: drive(tmp_path)).start()
    assert B.wait_for_drive(5, poll=0.02).path == path

    boards = [B.PortInfo("/dev/ttyACM0", "Board in FS mode", True)]
    monkeypatch.setattr(B, "serial_boards", lambda: list(boards))
    with pytest.raises(LinkError, match="did not come back as a serial port"):
        B.wait_for_serial({"/dev/ttyACM0"}, timeout=0.2, poll=0.02)
    threading.Timer(0.1, lambda: boards.append(B.PortInfo("/dev/ttyACM1", "Board in FS mode", True))).start()
    assert B.wait_for_serial({"/dev/ttyACM0"}, timeout=5, poll=0.02) == "/dev/ttyACM1"
    wait_for(lambda: len(boards) == 2, what="the second board")


def test_the_families_are_the_boot_roms():
    assert RP2040 == 0xE48BFF56 and RP2350_ARM_S == 0xE48BFF59


# -- the command's bad cases, one line each: a read-only and a full drive (the emulated drive is a
# folder, writable by root and never full: these stay here, with a folder standing in for the drive)


def _flash_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    from picodaq.cli.main import main

    rc = main(["flash", *argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return rc, err


def test_flash_micropython_onto_a_read_only_drive_is_one_line(tmp_path, monkeypatch, capsys):
    path = drive(tmp_path)
    uf2 = tmp_path / "mp.uf2"
    uf2.write_bytes(bytes(image(40)))
    real = os.access
    monkeypatch.setattr(B.os, "access", lambda p, mode: False if Path(p) == path else real(p, mode))
    monkeypatch.setattr(B, "wait_for_serial", lambda *a, **k: pytest.fail("nothing was installed"))
    rc, err = _flash_cli(capsys, "--micropython", str(uf2), "--drive", str(path))
    assert rc != 0 and "read-only; nothing was written (mount it writable)" in err[-1], err
    assert not list(path.glob("*.uf2"))


def test_flash_micropython_onto_a_full_drive_is_one_line(tmp_path, monkeypatch, capsys):
    path = drive(tmp_path)
    uf2 = tmp_path / "mp.uf2"
    uf2.write_bytes(bytes(image(40)))
    real = os.statvfs(path)

    class Tiny:
        f_bavail, f_frsize = 1, real.f_frsize

    monkeypatch.setattr(B.os, "statvfs", lambda p: Tiny)
    rc, err = _flash_cli(capsys, "--micropython", str(uf2), "--drive", str(path))
    assert rc != 0 and f"bytes free, the image needs {40 * 512:,}; nothing was written" in err[-1], err
    assert not list(path.glob("*.uf2"))


def test_flash_micropython_through_a_drive_that_fills_midway_says_how_far_it_got(tmp_path, monkeypatch, capsys):
    path = drive(tmp_path)
    uf2 = tmp_path / "mp.uf2"
    uf2.write_bytes(bytes(image(400)))
    calls = [0]
    real_write = os.write

    def write(fd, data):
        calls[0] += 1
        if calls[0] > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(B.os, "write", write)
    rc, err = _flash_cli(capsys, "--micropython", str(uf2), "--drive", str(path))
    assert rc != 0 and f"full: {B.CHUNK:,} of {400 * 512:,} bytes written" in err[-1], err
