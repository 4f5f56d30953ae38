"""The rp2040 tier's supervisor: the Node runner behind an outer pty (see rp2040.py).

It owns the outer pty, whose slave is the port the host opens (under a stable
symlink), starts rp2040js/runner.mjs with the chip's USB CDC on one socket and
JSON-lines events on another, and relays bytes with bounded buffers: a host
that stops reading fills them and the runner stops completing the chip's CDC IN
transfers, so the firmware's writes block as on a Pico. Output is discarded
while no host holds the port. Signals: SIGUSR1 hard reset, SIGUSR2 unplug,
SIGTERM/SIGINT stop.

In the boot ROM's USB boot mode (BOOTSEL: a blank chip, machine.bootloader())
there is no port: the runner shows the drive folder DRIVE (the board folder's
RPI-RP2), and the port appears once the chip has booted what was copied there.
The first line printed is `CONTROL PATH`, then `PORT PATH` once the port is
there, or `DRIVE PATH` if the chip starts in BOOTSEL.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .node import IMAGES_DIR, RUNNER_DIR, NodeUnavailable, ensure_rp2040js, find_node
from .pty import HostPort

GAPS = ("cdc-flow", "flash", "adc-ainsel", "adc-rrobin", "uid", "reset", "pio", "spi-dmacr")
FLASH_IMAGE = "flash.bin"
LOG = "rp2040.log"
DRIVE = "RPI-RP2"  # the board folder's stand-in for the BOOTSEL drive (its volume label on a Pico)
_CHUNK = 4096
_HOST_BUFFER = 4096  # chip bytes held for a host that is not reading
_CHIP_BUFFER = 1 << 16  # host bytes held before the host's writes block
_SOCK_BUFFER = 4096  # the runner's CDC socket: small, so a stalled host backs up into the chip


def control_path(folder: Path) -> Path:
    """The control socket: in the board folder, or in the temp folder when that path is too long for one."""
    p = folder / "control.sock"
    if len(str(p)) < 100:
        return p
    import tempfile

    return Path(tempfile.gettempdir()) / f"picodaq-rp2040-{os.getpid()}-{os.urandom(4).hex()}.sock"


class Supervisor:
    def __init__(
        self,
        folder: Path,
        link: Path,
        board_id: str,
        unplug_seconds: float = 1.0,
        without: tuple[str, ...] = (),
        clock_start_us: int = 0,
        exit_with_parent: bool = False,
        ads1299: str = "ramp",
    ) -> None:
        self.folder = folder
        self.ads1299 = ads1299
        self.link = link
        self.board_id = board_id
        self.unplug_seconds = unplug_seconds
        self.without = without
        self.clock_start_us = clock_start_us
        self.parent = os.getppid() if exit_with_parent else None
        self.control = control_path(folder)
        self.drive = folder / DRIVE
        self.port = HostPort(link)
        self.to_chip = bytearray()
        self.runner: subprocess.Popen | None = None
        self.data: socket.socket | None = None
        self.events: socket.socket | None = None
        self.ev_buf = bytearray()
        self.announced = False
        self.reenumerate = False  # the port is gone until the chip's CDC is up again
        self._quit = False
        self._reset = False
        self._unplug = False
        self._replug_at: float | None = None

    # -- the runner --------------------------------------------------------------

    def _start_runner(self) -> None:
        node = find_node()
        pkg = ensure_rp2040js(node)
        data_here, data_there = socket.socketpair()
        ev_here, ev_there = socket.socketpair()
        for s in (data_here, data_there):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCK_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCK_BUFFER)
        argv = [
            node.node,
            str(RUNNER_DIR / "runner.mjs"),
            "--rp2040js",
            str(pkg),
            "--images",
            str(IMAGES_DIR),
            "--flash",
            str(self.folder / FLASH_IMAGE),
            "--uid",
            self.board_id,
            "--control",
            str(self.control),
        ]
        if self.without:
            argv += ["--without", ",".join(self.without)]
        if self.clock_start_us:
            argv += ["--clock-start-us", str(self.clock_start_us)]
        argv += ["--ads1299", self.ads1299, "--drive", str(self.drive)]
        argv += ["--data-fd", str(data_there.fileno()), "--events-fd", str(ev_there.fileno())]
        log = open(self.folder / LOG, "ab")
        self.runner = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(data_there.fileno(), ev_there.fileno()),
            start_new_session=True,
        )
        log.close()
        data_there.close()
        ev_there.close()
        data_here.setblocking(False)
        ev_here.setblocking(False)
        self.data = data_here
        self.events = ev_here

    def _request(self, req: dict) -> None:
        assert self.events is not None
        self.events.setblocking(True)
        try:
            self.events.sendall((json.dumps(req) + "\n").encode())
        finally:
            self.events.setblocking(False)

    def _on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "cdc" and ev.get("up"):
            if self.port.fd is None and self._replug_at is None:
                self.port.open()  # enumerated (again): the port appears
            if not self.announced:
                self.announced = True
                print(f"CONTROL {self.control}", flush=True)
                print(f"PORT {self.link}", flush=True)
        elif kind == "reboot" and ev.get("why") == "watchdog":
            self._close_outer()  # the chip reset itself: its USB device goes away
        elif kind == "bootsel":
            self._close_outer()  # the boot ROM's mass-storage device instead of MicroPython's CDC
            if not self.announced:
                self.announced = True
                print(f"CONTROL {self.control}", flush=True)
                print(f"DRIVE {self.drive}", flush=True)
        elif kind == "halted":
            print(f"rp2040: the emulated chip halted: {ev.get('why')}", file=sys.stderr, flush=True)

    def _close_outer(self) -> None:
        self.port.close()
        self.to_chip.clear()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_quit)
        signal.signal(signal.SIGINT, self._on_quit)
        signal.signal(signal.SIGUSR1, self._on_reset)
        signal.signal(signal.SIGUSR2, self._on_unplug)
        try:
            self._start_runner()
        except NodeUnavailable as e:
            print(f"rp2040: {e}", file=sys.stderr, flush=True)
            return 2
        try:
            while not self._quit:
                if not self._step():
                    return 1
                if self.parent is not None and os.getppid() != self.parent:
                    break  # whoever started this board is gone: nobody can stop it any more
        finally:
            self._close_outer()
            self.control.unlink(missing_ok=True)
            if self.runner is not None and self.runner.poll() is None:
                self.runner.terminate()
                try:
                    self.runner.wait(5)
                except subprocess.TimeoutExpired:
                    self.runner.kill()
                    self.runner.wait()
            shutil.rmtree(self.drive, ignore_errors=True)  # the drive goes with the board
        return 0

    def _step(self) -> bool:
        assert self.data is not None and self.events is not None and self.runner is not None
        if self._unplug:
            self._unplug = False
            if self._replug_at is None:
                self._close_outer()  # the cable carries the power: the port goes and the board stops
                self._request({"cmd": "power", "on": False})
            self._replug_at = time.monotonic() + self.unplug_seconds
        if self._replug_at is not None and time.monotonic() >= self._replug_at:
            self._replug_at = None
            self._request({"cmd": "power", "on": True})  # the port comes back when the CDC is up
        if self._reset:
            self._reset = False
            if self._replug_at is None:
                self.to_chip.clear()
                self._request({"cmd": "reset"})
        port = self.port
        if port.fd is not None and not port.connected:
            self.to_chip += port.read()
        rl: list = [self.events]
        wl: list = []
        if len(port.out) < _HOST_BUFFER:
            rl.append(self.data)
        if port.fd is not None and port.connected and len(self.to_chip) < _CHIP_BUFFER:
            rl.append(port.fd)
        if port.fd is not None and port.out and port.connected:
            wl.append(port.fd)
        if self.to_chip:
            wl.append(self.data)
        try:
            r, w, _ = select.select(rl, wl, [], 0.05)
        except InterruptedError:
            return True
        if port.fd is not None and port.fd in w:
            port.flush()
        if self.data in w:
            try:
                n = self.data.send(self.to_chip[:_CHUNK])
                del self.to_chip[:n]
            except BlockingIOError:
                pass
            except OSError:
                return self._runner_gone()
        if port.fd is not None and port.fd in r:
            self.to_chip += port.read()
        if self.data in r:
            try:
                chunk = self.data.recv(_CHUNK)
            except BlockingIOError:
                chunk = None
            except OSError:
                chunk = b""
            if chunk == b"":
                return self._runner_gone()
            if chunk and port.fd is not None:
                port.send(chunk)
        if self.events in r:
            try:
                chunk = self.events.recv(_CHUNK)
            except BlockingIOError:
                chunk = None
            if chunk == b"":
                return self._runner_gone()
            if chunk:
                self.ev_buf += chunk
                while (i := self.ev_buf.find(b"\n")) >= 0:
                    line = bytes(self.ev_buf[:i])
                    del self.ev_buf[: i + 1]
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(ev, dict) and "event" in ev:
                        self._on_event(ev)
        return True

    def _runner_gone(self) -> bool:
        assert self.runner is not None
        try:
            rc = self.runner.wait(2)
        except subprocess.TimeoutExpired:
            rc = None
        tail = ""
        try:
            tail = (self.folder / LOG).read_text(errors="replace").strip().splitlines()[-1]
        except (OSError, IndexError):
            pass
        print(f"rp2040: the emulator exited ({rc}): {tail}", file=sys.stderr, flush=True)
        return False

    def _on_quit(self, *_: object) -> None:
        self._quit = True

    def _on_reset(self, *_: object) -> None:
        self._reset = True

    def _on_unplug(self, *_: object) -> None:
        self._unplug = True
