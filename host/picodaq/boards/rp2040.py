"""The rp2040 board tier: MicroPython's real rp2 port (the RPI_PICO uf2) on an
emulated RP2040 (rp2040js, run by rp2040js/runner.mjs), its USB CDC behind a pty.

    python -m picodaq.boards.rp2040 --flash DIR --link PATH [--unplug-seconds S]
                                    [--board-id HEX] [--without GAP,...]

The supervisor owns the outer pty, whose slave is the port the host opens
(reachable under the stable path PATH, a symlink), as the unix tier does; the
Node runner steps the chip and speaks the chip's USB CDC on a socket. Bytes are
relayed with bounded buffers, so a host that stops reading backs up into the
chip: the runner stops completing CDC IN transfers and the firmware's writes
block, then return short, as on a Pico whose host stopped reading. Output is
discarded while no host holds the port, as USB CDC does.

The board folder DIR holds the chip's 2 MB flash (flash.bin, written through on
every erase and program; a folder without one starts as a Pico fresh from the
MicroPython uf2), its unique id (unique_id, 16 hex digits, made once: each
board folder is its own chip, and machine.unique_id() returns it), the
runner's log (rp2040.log) and nothing else.

The port appears once the chip's USB CDC is enumerated. Board behaviour:
- soft reset (Ctrl-D, machine.soft_reset()) is the chip's own;
- SIGUSR1 is a hard reset: the chip restarts from its flash; the port stays
  (like the unix tier; a Pico's port would re-enumerate);
- SIGUSR2 an unplug: the port goes, the chip loses power for --unplug-seconds,
  then boots and the port comes back under the same path;
- machine.reset() (a watchdog reset) reboots the chip from its flash, and the
  port goes away and comes back when the chip has enumerated again, as on a Pico.
- BOOTSEL (the boot ROM's USB boot mode): a chip whose flash holds no valid
  boot2 (a blank one: `--blank`, or a flash.bin of 0xFF bytes) and a chip that
  calls machine.bootloader() show the drive folder DIR/RPI-RP2 (INFO_UF2.TXT as
  on a Pico) instead of the port; a UF2 copied there is checked block by block
  as the boot ROM checks it, written into the flash, and the chip boots it: the
  folder goes and the port appears (rp2040js/bootsel.mjs).
SIGTERM or SIGINT stop it.

The control channel (JSON lines on the unix socket printed as `CONTROL PATH`
before `PORT PATH`: DIR/control.sock, or one in the temp folder when that path
is too long for a unix socket) drives
GPIO inputs at an emulated time, chooses the ADC model, and reads emulated time,
cycles and the CPU's busy share: see rp2040js/control.mjs and Rp2040Board.control().
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .rp2040_supervisor import DRIVE, FLASH_IMAGE, GAPS, LOG, Supervisor
from .supervised import SupervisedBoard

UNIQUE_ID = "unique_id"
FLASH_SIZE = 2 * 1024 * 1024  # RPI_PICO's W25Q16


def erase_flash(folder: Path) -> None:
    """A blank chip: the folder's flash image all 0xFF (nothing in flash; the boot ROM goes to BOOTSEL)."""
    image = folder / FLASH_IMAGE
    tmp = image.with_name(image.name + ".new")
    tmp.write_bytes(b"\xff" * FLASH_SIZE)
    tmp.replace(image)


def board_unique_id(folder: Path, board_id: str = "") -> str:
    """The board's 8-byte id as 16 hex digits: given, else kept in the folder, else made and kept."""
    f = folder / UNIQUE_ID
    if board_id:
        bytes.fromhex(board_id)
        if len(board_id) != 16:
            raise ValueError(f"a board id is 16 hex digits, not {board_id!r}")
        f.write_text(board_id.lower() + "\n")
        return board_id.lower()
    if f.exists():
        kept = f.read_text().strip()
        if len(kept) == 16:
            return kept
    made = os.urandom(8).hex()
    f.write_text(made + "\n")
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m picodaq.boards.rp2040",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--flash", type=Path, required=True, help="the board's folder (its flash image lives there)")
    ap.add_argument("--link", type=Path, required=True, help="stable port path (a symlink) to create")
    ap.add_argument("--board-id", default="", help="the chip's unique id, 16 hex digits (default: the folder's own)")
    ap.add_argument("--unplug-seconds", type=float, default=1.0)
    ap.add_argument(
        "--without",
        default="",
        metavar="GAP,...",
        help=f"leave these rp2040js gaps unhandled (tests show each failure): {', '.join(GAPS)}",
    )
    ap.add_argument(
        "--clock-start-us",
        type=int,
        default=0,
        help="the chip's timer at power-on, in us (tests: ticks_us near its 2**30 wrap)",
    )
    ap.add_argument(
        "--ads1299",
        choices=("ramp", "signal", "none"),
        default="ramp",
        help="the ADS1299 on SPI0: its ramp (default), its signals as configured, or no chip",
    )
    ap.add_argument(
        "--blank", action="store_true", help="erase the flash first: the chip starts in BOOTSEL, showing its drive"
    )
    ap.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it exits")
    a = ap.parse_args(argv)
    without = tuple(g for g in a.without.split(",") if g)
    for g in without:
        if g not in GAPS:
            ap.error(f"--without {g}: one of {', '.join(GAPS)}")
    folder = a.flash.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        board_id = board_unique_id(folder, a.board_id)
    except ValueError as e:
        ap.error(str(e))
    if a.blank:
        erase_flash(folder)
    return Supervisor(
        folder, a.link.absolute(), board_id, a.unplug_seconds, without, a.clock_start_us, a.exit_with_parent, a.ads1299
    ).run()


if __name__ == "__main__":
    sys.exit(main())


class Rp2040Board(SupervisedBoard):
    """Handle on a supervisor process: start it, learn its port, reset, unplug, stop.

    The same API as the unix tier's EmulatedBoard. A board folder is one chip:
    its flash (flash.bin) and unique id persist there; a fresh folder is a Pico
    fresh from the MicroPython uf2, which `picodaq flash` fills over its port.
    With no folder given, a temporary one is made (and removed by stop()).
    `without` leaves rp2040js gaps unhandled (the gap tests); `clock_start_us`
    starts the chip's timer there at every power-on; `ads1299` is the model on
    SPI0 (rp2040js/ads1299.mjs: "ramp", "signal" or "none"); `blank` erases the flash
    first (a chip with nothing in it: it starts in BOOTSEL, its drive at `drive`, no port
    until a MicroPython uf2 is copied there).
    """

    WHAT = "the emulated RP2040"
    STOP_WAIT = 10.0

    def __init__(
        self,
        flash: Path | None = None,
        board_id: str = "",
        unplug_seconds: float = 1.0,
        without: tuple[str, ...] | list[str] = (),
        clock_start_us: int = 0,
        ads1299: str = "ramp",
        blank: bool = False,
    ) -> None:
        super().__init__(flash, "picodaq-rp2040-")
        self.board_id = board_unique_id(self.flash, board_id)
        self.unplug_seconds = unplug_seconds
        self.without = tuple(without)
        self.clock_start_us = clock_start_us
        self.ads1299 = ads1299
        self.blank = blank
        self.started_in_bootsel = False
        self.control_path: str | None = None
        self._ctl: socket.socket | None = None
        self._ctl_buf = bytearray()

    @property
    def image(self) -> Path:
        return self.flash / FLASH_IMAGE

    @property
    def drive(self) -> Path:
        """The folder standing in for the BOOTSEL drive: there only while the chip is in BOOTSEL."""
        return self.flash / DRIVE

    @property
    def in_bootsel(self) -> bool:
        """Whether the chip is in its boot ROM's USB boot mode now (asked on the control channel)."""
        return bool(self.control("time").get("bootsel"))

    def start(self, timeout: float = 60.0) -> Rp2040Board:
        """Start the chip; returns once its USB CDC port is there, or its BOOTSEL drive (a blank chip)."""
        if self.blank:
            erase_flash(self.flash)

        argv = [
            sys.executable,
            "-m",
            "picodaq.boards.rp2040",
            "--flash",
            str(self.flash),
            "--link",
            self.port,
            "--board-id",
            self.board_id,
            "--unplug-seconds",
            str(self.unplug_seconds),
            "--exit-with-parent",
        ]
        if self.without:
            argv += ["--without", ",".join(self.without)]
        if self.clock_start_us:
            argv += ["--clock-start-us", str(self.clock_start_us)]
        if self.ads1299 != "ramp":
            argv += ["--ads1299", self.ads1299]
        said = self._launch(argv, timeout, lambda line: line.startswith((b"PORT ", b"DRIVE ")))
        for line in said:
            if line.startswith(b"CONTROL "):
                self.control_path = line[8:].decode().strip()
        self.started_in_bootsel = said[-1].startswith(b"DRIVE ")
        port = said[-1] != b""
        if not port or self.control_path is None:
            self.stop()
            raise RuntimeError(f"the emulated RP2040 did not start (said {b''.join(said)!r}; see {self.flash / LOG})")
        return self

    # -- the control channel -----------------------------------------------------

    def control(self, cmd: str, timeout: float = 10.0, **args: object) -> dict:
        """One control request (rp2040js/control.mjs): e.g. control("time"),
        control("marker", at_ns=T), control("adc", mode="code", unit_ns=250000)."""
        if self.control_path is None:
            raise RuntimeError("the emulated RP2040 is not running")
        if self._ctl is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.control_path)
            self._ctl = s
        self._ctl.settimeout(timeout)
        self._ctl.sendall((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        while (i := self._ctl_buf.find(b"\n")) < 0:
            chunk = self._ctl.recv(4096)
            if not chunk:
                raise RuntimeError("the emulated RP2040's control channel closed")
            self._ctl_buf += chunk
        reply = json.loads(bytes(self._ctl_buf[:i]))
        del self._ctl_buf[: i + 1]
        if not reply.get("ok"):
            raise RuntimeError(f"control {cmd}: {reply.get('error')}")
        return reply

    def emulated_time(self) -> dict:
        """ns, cycles (elapsed at 125 MHz), busy (cycles executed), boot, wall_s of the current boot."""
        return self.control("time")

    def wait_emulated(self, ns: float, timeout: float = 120.0) -> dict:
        """Wait until the chip's clock reaches ns (of this boot)."""
        deadline = time.monotonic() + timeout
        while True:
            t = self.emulated_time()
            if t["ns"] >= ns:
                return t
            if time.monotonic() > deadline:
                raise TimeoutError(f"emulated time {t['ns']} ns did not reach {ns} ns within {timeout} s")
            time.sleep(0.02)

    # -- the EmulatedBoard API ---------------------------------------------------

    def registry_entry(self) -> dict[str, Any]:
        # the drive: a BOOTSEL drive while its folder is there
        return super().registry_entry() | {"chip": "rp2040", "drive": str(self.drive)}

    def bootsel(self) -> None:
        """Reset with BOOTSEL held: the port goes and the drive appears, whatever the flash holds."""
        self.control("bootsel")

    def stop(self) -> None:
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        super().stop()
        self.control_path = None
