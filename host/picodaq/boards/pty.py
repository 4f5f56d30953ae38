"""A raw pseudo-terminal reachable under a stable path: the port an emulated board shows the host."""

from __future__ import annotations

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
