"""From a blank Pico (issue 18): the emulated RP2040's BOOTSEL mode and `picodaq flash --micropython`.

A blank emulated Pico (`picodaq emulate --chip rp2040 --blank`) shows its drive folder with
INFO_UF2.TXT; `picodaq flash --micropython` finds it, installs the vendored MicroPython uf2, waits
for the port and deploys the firmware; `picodaq record` then gives a bit-exact ramp. A board already
running MicroPython is rebooted into BOOTSEL (machine.bootloader(), the boot ROM's 'UB') and comes
back. Each bad case is one line and a non-zero exit; the emulated boot ROM's own check ignores (and
logs) a file for another chip or a cut one, as a Pico's does.

Read-only and full drives stay unit-level (tests/unit/test_bootsel.py, a folder standing in for
the drive): the emulated drive is a folder, and as root (these tests' user on CI) a read-only
folder is writable and a full one needs a filesystem of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rp2helpers import picodaq, wait_for_firmware

from picodaq import contracts as C
from picodaq.boards.rp2040 import FLASH_IMAGE, Rp2040Board
from picodaq.core.blocks import ramp_counts
from picodaq.flash.uf2 import RP2350_ARM_S
from waiting import wait_for

UF2 = Path(__file__).resolve().parents[2] / "host" / "picodaq" / "boards" / "images" / "RPI_PICO-v1.28.0.uf2"
INFO = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


@pytest.fixture
def registry(tmp_path, monkeypatch) -> dict:
    """This test's own registry of emulated boards (xdist workers run others meanwhile): the env for
    the picodaq commands it runs, and for register() in this process."""
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    return dict(os.environ, XDG_RUNTIME_DIR=str(run))


def cli(env: dict, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "picodaq", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def last_line(r: subprocess.CompletedProcess) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def one_line_failure(r: subprocess.CompletedProcess, words: str) -> None:
    """A non-zero exit whose stderr is one line saying `words` (nothing else printed: nothing began)."""
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0, r.stderr
    assert len(lines) == 1 and lines[0].startswith("picodaq: ") and words in lines[0], r.stderr


def uf2_blocks(data: bytes):
    for off in range(0, len(data), 512):
        yield off, struct.unpack_from("<8I", data, off)


def refamily(data: bytes, family: int) -> bytes:
    out = bytearray(data)
    for off, _ in uf2_blocks(data):
        struct.pack_into("<I", out, off + 28, family)
    return bytes(out)


def never_comes_back_uf2() -> bytes:
    """A whole, valid RP2040 image that never starts USB: MicroPython's boot2, then a vector table
    whose reset handler sleeps forever (wfi in a loop: a program that runs but is no MicroPython)."""
    data = UF2.read_bytes()
    boot2 = data[32 : 32 + 256]
    code = bytearray(256)
    struct.pack_into("<II", code, 0, 0x20042000, 0x10000109)  # SP, reset handler (Thumb) at 0x10000108
    struct.pack_into("<HH", code, 8, 0xBF30, 0xE7FD)  # wfi; b (back to the wfi)
    blocks = []
    for no, (addr, payload) in enumerate([(0x10000000, boot2), (0x10000100, bytes(code))]):
        head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, addr, 256, no, 2, C_RP2040)
        blocks.append(head + payload + bytes(476 - 256) + struct.pack("<I", 0x0AB16F30))
    return b"".join(blocks)


C_RP2040 = 0xE48BFF56


class Emulate:
    """`picodaq emulate --chip rp2040 ...` running: its port (printed on stdout), stopped by SIGINT."""

    def __init__(self, env: dict, folder: Path, *args: str) -> None:
        self.folder = folder
        self.p = subprocess.Popen(
            [sys.executable, "-m", "picodaq", "emulate", "--chip", "rp2040", "--flash", str(folder), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.p.stdout is not None
        self.port = self.p.stdout.readline().strip()
        assert self.port, self.stop()

    @property
    def drive(self) -> Path:
        return self.folder / "RPI-RP2"

    def log(self) -> str:
        return (self.folder / "rp2040.log").read_text(errors="replace")

    def stop(self) -> str:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        assert self.p.stderr is not None
        return self.p.stderr.read()


@pytest.fixture
def emulate(registry, tmp_path, node_ready):
    made: list[Emulate] = []

    def start(*args: str) -> Emulate:
        e = Emulate(registry, tmp_path / f"board{len(made)}", *args)
        made.append(e)
        return e

    yield start
    for e in made:
        e.stop()


def test_a_blank_pico_to_a_bit_exact_recording(emulate, registry, tmp_path):
    """One `picodaq flash --micropython` (the drive found, not given) and one `picodaq record`."""
    board = emulate("--blank")
    # a blank chip: the drive folder as a Pico shows it, registered; no port yet
    assert (board.drive / "INFO_UF2.TXT").read_text() == INFO
    assert sorted(p.name for p in board.drive.iterdir()) == ["INFO_UF2.TXT"]
    assert not os.path.exists(board.port)
    entries = [json.loads(p.read_text()) for p in (tmp_path / "run").glob("picodaq-*/emulators/*.json")]
    assert [e["drive"] for e in entries] == [str(board.drive)]
    r = cli(registry, "ports")
    assert f"BOOTSEL RPI-RP2 drive at {board.drive} (Raspberry Pi RP2)" in r.stdout, r.stdout

    r = cli(registry, "flash", "--micropython", str(UF2), "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert f"through the RPI-RP2 drive at {board.drive}" in r.stderr, r.stderr
    assert f"MicroPython is up on {board.port}" in r.stderr and "HELLO from rp2 board" in r.stderr, r.stderr
    assert not board.drive.exists() and os.path.exists(board.port)
    assert "all 1327 blocks of the image written" in board.log()

    out = tmp_path / "rec.npy"
    r = cli(
        registry,
        "record",
        "--port",
        board.port,
        "--seconds",
        "2",
        "--rate",
        "1000",
        "--channels",
        "4",
        "--fmt",
        "int24",
        "--quiet",
        "--out",
        str(out),
        "--stats-json",
        "-",
    )
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["samples_lost"] == stats["crc_errors"] == stats["device_samples_dropped"] == 0, stats
    a = np.load(out)
    assert len(a) >= 100 and np.array_equal(a, ramp_counts(0, len(a), 4, C.FMT_INT24))


def test_a_board_running_micropython_is_rebooted_into_bootsel_and_comes_back(rp2040, registry):
    board = rp2040()
    board.register()
    r = cli(registry, "flash", "--micropython", str(UF2), "--timeout", "60")  # no --port: the one board
    assert r.returncode == 0, r.stderr
    assert f"{board.port} runs MicroPython: rebooting it into BOOTSEL" in r.stderr, r.stderr
    assert "machine.bootloader()" in r.stderr and f"through the RPI-RP2 drive at {board.drive}" in r.stderr
    # the uf2 rewrote MicroPython; littlefs, past it, kept the firmware: nothing to copy
    assert "the board already holds this firmware" in r.stderr and "HELLO from rp2 board" in r.stderr, r.stderr
    stats = board.control("stats")
    assert stats["bootsel"] == 1 and stats["uf2"]["images"] == 1, stats
    assert not board.drive.exists() and not board.in_bootsel
    log = (board.flash / "rp2040.log").read_text()
    assert "BOOTSEL: drive" in log and "all 1327 blocks" in log


def test_machine_bootloader_takes_the_port_away_and_shows_the_drive(rp2040):
    """The ROM's reset_usb_boot, called over the raw REPL as a user would: the port goes, the drive
    comes; a reset without BOOTSEL held boots the flash again (nothing was copied)."""
    from picodaq.flash.bootsel import enter_bootsel, read_drive

    board = rp2040()
    enter_bootsel(board.port)
    wait_for(lambda: board.drive.exists() and not os.path.lexists(board.port), timeout=30, what="the drive")
    assert read_drive(board.drive).board_id == "RPI-RP2" and board.in_bootsel
    board.hard_reset()  # the RUN pin: a valid boot2 in flash, so MicroPython boots
    wait_for(lambda: os.path.exists(board.port), timeout=60, what="the port")
    assert not board.drive.exists()
    wait_for_firmware(board)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: refamily(d, RP2350_ARM_S), "family 0xe48bff59, not RP2040's"),
        (lambda d: d[: 600 * 512], "600 blocks written"),
        (lambda d: d[: 600 * 512 + 100], "its last 100 bytes are no whole block"),
    ],
    ids=["rp2350-family", "truncated", "cut-mid-block"],
)
def test_the_emulated_boot_rom_ignores_a_bad_file_and_logs_it(rp2040, make, words):
    """Copied by hand (no picodaq check): the board stays in BOOTSEL, as a Pico does, and its log
    says why; a good file copied afterwards is taken."""
    board = rp2040(blank=True)
    assert board.started_in_bootsel and board.in_bootsel
    (board.drive / "bad.uf2").write_bytes(make(UF2.read_bytes()))
    log = board.flash / "rp2040.log"
    wait_for(lambda: words in log.read_text(), timeout=30, what=f"the log to say {words!r}")
    assert board.in_bootsel and (board.drive / "INFO_UF2.TXT").exists()
    shutil.copyfile(UF2, board.drive / "good.uf2")
    wait_for(lambda: os.path.exists(board.port), timeout=60, what="the port")
    assert not board.drive.exists()


def test_a_drive_not_mounted_is_one_line(tmp_path):
    r = picodaq("flash", "--micropython", str(UF2), "--drive", str(tmp_path / "RPI-RP2"))
    one_line_failure(r, "nothing is mounted there")


def test_a_uf2_for_the_wrong_chip_is_one_line_and_writes_nothing(rp2040, registry, tmp_path):
    board = rp2040(blank=True)
    board.register()
    bad = tmp_path / "rp2350.uf2"
    bad.write_bytes(refamily(UF2.read_bytes(), RP2350_ARM_S))
    r = cli(registry, "flash", "--micropython", str(bad))
    one_line_failure(r, "a UF2 for RP2350 (Arm), but the board's boot ROM (RPI-RP2) takes RP2040")
    assert sorted(p.name for p in board.drive.iterdir()) == ["INFO_UF2.TXT"] and board.in_bootsel


def test_a_truncated_uf2_is_one_line_and_writes_nothing(rp2040, registry, tmp_path):
    board = rp2040(blank=True)
    board.register()
    cut = tmp_path / "cut.uf2"
    cut.write_bytes(UF2.read_bytes()[: 1000 * 512])
    r = cli(registry, "flash", "--micropython", str(cut))
    one_line_failure(r, "327 of its 1327 blocks are missing (truncated?)")
    assert sorted(p.name for p in board.drive.iterdir()) == ["INFO_UF2.TXT"] and board.in_bootsel
    assert (board.flash / FLASH_IMAGE).read_bytes() == b"\xff" * (2 << 20)  # still blank


def test_a_board_that_never_comes_back_is_one_line(rp2040, registry, tmp_path):
    """A whole RP2040 image that is no MicroPython: the board takes it and reboots (the drive goes),
    but no serial port appears."""
    board = rp2040(blank=True)
    board.register()
    img = tmp_path / "loop.uf2"
    img.write_bytes(never_comes_back_uf2())
    r = cli(registry, "flash", "--micropython", str(img), "--timeout", "2")
    assert r.returncode != 0, r.stderr
    assert "the board took the image and is rebooting into it" in r.stderr, r.stderr
    line = last_line(r)
    assert line.startswith("picodaq: the board did not come back as a serial port (USB id 0x2E8A) within 22 s"), line
    assert not board.drive.exists() and not os.path.exists(board.port) and not board.in_bootsel


def test_the_rp2040_is_the_only_chip_with_a_boot_rom(tmp_path):
    r = picodaq("emulate", "--blank", "--flash", str(tmp_path / "b"))
    one_line_failure(r, "--blank is for --chip rp2040")


def test_rp2040_board_records_its_drive_for_picodaq_to_find(tmp_path, registry, node_ready):
    with Rp2040Board(flash=tmp_path / "b", blank=True) as board:
        board.start()
        board.register()
        from picodaq.flash.bootsel import find_drives

        assert [d.path for d in find_drives()] == [board.drive]
    assert not (tmp_path / "b" / "RPI-RP2").exists()  # stopped: the drive went with it


def test_picodaq_record_with_no_board_follows_picodaq_tier(registry, tmp_path, node_ready):
    """No --port and no board attached: PICODAQ_TIER=rp2040 makes the fallback an emulated RP2040."""
    out = tmp_path / "rec.npy"
    env = dict(registry, PICODAQ_TIER="rp2040")
    r = cli(env, "record", "--seconds", "1", "--rate", "500", "--channels", "2", "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "PICODAQ_TIER=rp2040: the emulated board is an RP2040" in r.stderr, r.stderr
    a = np.load(out)
    assert len(a) >= 50 and np.array_equal(a, ramp_counts(0, len(a), 2, C.FMT_INT16))
    r = cli(dict(registry, PICODAQ_TIER="esp32"), "record", "--seconds", "1", "--out", str(tmp_path / "x.npy"))
    one_line_failure(r, "PICODAQ_TIER='esp32': the emulated tiers are unix, rp2040")
