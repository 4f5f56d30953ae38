"""FrameRelay: a pty between a board's port and the host that passes every byte on, except
that each complete frame the board sends goes through `mangle(frame) -> bytes` first (to
repeat or reorder frames on a live link, which the faulty-link proxy, working on bytes,
never does)."""

from __future__ import annotations

import os
import pty
import select
import struct
import threading
import tty
import zlib
from collections.abc import Callable
from pathlib import Path

import serial

from picodaq import contracts as C

_HEAD = struct.Struct(C.HEADER_FORMAT)


class FrameRelay:
    def __init__(self, upstream: str, link: Path, mangle: Callable[[bytes], bytes]) -> None:
        self.upstream = upstream
        self.link = Path(link)
        self.mangle = mangle
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self._buf = bytearray()

    @property
    def port(self) -> str:
        return str(self.link)

    def __enter__(self) -> FrameRelay:
        self._up = serial.serial_for_url(self.upstream, baudrate=115200, timeout=0, exclusive=True)
        self._m, self._s = pty.openpty()  # the slave stays open here: no EIO while no host is on
        tty.setraw(self._s)
        self.link.symlink_to(os.ttyname(self._s))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._quit.set()
        if self._thread is not None:
            self._thread.join(5)
        self._up.close()
        os.close(self._m)
        os.close(self._s)
        self.link.unlink()

    def _run(self) -> None:
        up = self._up.fileno()
        while not self._quit.is_set():
            r, _, _ = select.select([up, self._m], [], [], 0.1)
            if up in r:
                data = os.read(up, 65536)
                if not data:
                    return
                self._buf += data
                out = self._frames()
                if out:
                    os.write(self._m, out)
            if self._m in r:
                os.write(up, os.read(self._m, 65536))

    def _frames(self) -> bytes:
        """Whole frames (mangled) and whatever is not a frame, from the bytes held."""
        out = bytearray()
        buf = self._buf
        while buf:
            p = buf.find(C.MAGIC)
            if p:
                out += buf[: len(buf) if p < 0 else p]
                del buf[: len(buf) if p < 0 else p]
                continue
            if len(buf) < C.HEADER_SIZE:
                break
            length = _HEAD.unpack_from(buf)[3]
            end = C.OVERHEAD + length
            if len(buf) < end:
                break
            frame = bytes(buf[:end])
            if zlib.crc32(frame[:-4]) == int.from_bytes(frame[-4:], "little"):
                out += self.mangle(frame)
                del buf[:end]
            else:
                out += buf[:1]
                del buf[:1]
        return bytes(out)


def repeat_every(n: int) -> Callable[[bytes], bytes]:
    """A mangle that sends every nth SAMPLES frame twice."""
    seen = [0]

    def mangle(frame: bytes) -> bytes:
        if frame[3] != C.MSG_SAMPLES:
            return frame
        seen[0] += 1
        return frame * 2 if seen[0] % n == 0 else frame

    return mangle
