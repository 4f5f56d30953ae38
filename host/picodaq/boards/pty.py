"""A raw pseudo-terminal reachable under a stable path: the port an emulated board shows the host."""

from __future__ import annotations

import errno
import os
import pty
import tty
from pathlib import Path


def open_linked_pty(link: Path) -> int:
    """A raw pty whose slave is reachable under the stable path `link` (a symlink,
    swapped in atomically); returns the non-blocking master."""
    m, s = pty.openpty()
    tty.setraw(s)
    name = os.ttyname(s)
    os.close(s)  # the host holds the slave; EIO on the master means "no host"
    os.set_blocking(m, False)
    tmp = link.with_name(link.name + ".new")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(name)
    tmp.replace(link)
    return m


_CHUNK = 4096


class HostPort:
    """The port an emulated board shows the host: a raw pty under a stable path while the board
    has power, whether a host holds it open, and the board's output waiting for that host. As
    with USB CDC, output while no host holds the port goes nowhere."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.fd: int | None = None  # the pty's master: the board's side
        self.connected = False
        self.out = bytearray()  # board output the host has not read yet

    def open(self) -> None:
        self.fd = open_linked_pty(self.link)
        self.connected = False

    def close(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.connected = False
        self.out.clear()

    def send(self, data: bytes | bytearray | memoryview) -> None:
        if self.connected:
            self.out += data

    def read(self) -> bytes:
        """What the host wrote (b"" for nothing); reading also tells whether a host holds the
        port: the master gives EIO while nobody has the slave open."""
        assert self.fd is not None
        try:
            data = os.read(self.fd, _CHUNK)
        except BlockingIOError:
            self.connected = True
            return b""
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            self.connected = False
            self.out.clear()
            return b""
        self.connected = True
        return data

    def flush(self) -> None:
        """Write what the host can take of the waiting output."""
        assert self.fd is not None
        try:
            n = os.write(self.fd, self.out)
            del self.out[:n]
        except BlockingIOError:
            pass
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            self.connected = False
            self.out.clear()
