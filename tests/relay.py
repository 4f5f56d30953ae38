"""Relays between a board's port and the host, for tests that need a link that misbehaves on cue.

`Relay`: a port for the host in front of a board's port, which the test controls. It relays both
ways, frame by frame from the board (the board's stream is whole frames once the firmware runs),
keeps every byte the host sent, and on request:

- `hold()`: stops carrying the board's bytes (and stops reading them, so they back up into the
  board as over a wedged USB link) while the port stays open: a silent link, not a vanished one;
  `hold_at(opcode)`: the same from the moment the host sends that command (which still reaches
  the board; its answers do not reach the host);
- `drop_next(pred)`: drops the next board frame pred(type, payload) accepts (a lost ACK).

`FrameRelay`: a pty between a board's port and the host that passes every byte on, except that
each complete frame the board sends goes through `mangle(frame) -> bytes` first (to repeat or
reorder frames on a live link, which the faulty-link proxy, working on bytes, never does).
"""

from __future__ import annotations

import errno
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
from picodaq.boards.unix import open_linked_pty

_HEAD = struct.Struct(C.HEADER_FORMAT)


def frames_in(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of every whole frame in data with a valid CRC, in order."""
    import zlib

    out, i = [], 0
    while True:
        i = data.find(C.MAGIC, i)
        if i < 0 or len(data) - i < C.HEADER_SIZE:
            return out
        _, _, mtype, n, _ = _HEAD.unpack_from(data, i)
        end = i + C.HEADER_SIZE + n + 4
        if end <= len(data) and zlib.crc32(data[i : end - 4]) == int.from_bytes(data[end - 4 : end], "little"):
            out.append((mtype, bytes(data[i + C.HEADER_SIZE : end - 4])))
            i = end
        else:
            i += 1


def commands_sent(data: bytes) -> list[tuple[int, int]]:
    """(opcode, cmd_id) of every COMMAND in what a host sent."""
    return [(p[0], int.from_bytes(p[2:4], "little")) for t, p in frames_in(data) if t == C.MSG_COMMAND]


class Relay:
    def __init__(self, upstream: str, link: Path) -> None:
        self.upstream = upstream
        self.link = Path(link)
        self.sent = bytearray()  # everything the host wrote
        self.dropped: list[tuple[int, bytes]] = []  # board frames dropped on request
        self._hold = threading.Event()
        self._drop: list[Callable[[int, bytes], bool]] = []
        self._hold_at: int | None = None
        self._lock = threading.Lock()
        self._quit = threading.Event()
        self._up = serial.serial_for_url(upstream, baudrate=115200, timeout=0, exclusive=True)
        self._up_fd = self._up.fileno()
        os.set_blocking(self._up_fd, False)
        self._down = open_linked_pty(self.link)
        self._from_board = bytearray()  # board bytes not yet cut into frames
        self._to_host = bytearray()
        self._to_board = bytearray()
        self._thread = threading.Thread(target=self._run, name="test relay", daemon=True)
        self._thread.start()

    @property
    def port(self) -> str:
        return str(self.link)

    def hold(self) -> None:
        self._hold.set()

    def release(self) -> None:
        self._hold.clear()

    def hold_at(self, opcode: int) -> None:
        self._hold_at = opcode

    @property
    def holding(self) -> bool:
        return self._hold.is_set()

    def drop_next(self, pred: Callable[[int, bytes], bool]) -> None:
        with self._lock:
            self._drop.append(pred)

    def commands(self) -> list[tuple[int, int]]:
        with self._lock:
            return commands_sent(bytes(self.sent))

    def close(self) -> None:
        self._quit.set()
        self._thread.join(5)
        self._up.close()
        os.close(self._down)
        if self.link.is_symlink():
            self.link.unlink()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the thread ----------------------------------------------------------------

    def _frames(self) -> None:
        """Cut the board's bytes into frames; pass each on unless a drop asks for it."""
        buf = self._from_board
        while True:
            i = buf.find(C.MAGIC)
            if i < 0:
                keep = 1 if buf.endswith(C.MAGIC[:1]) else 0
                self._to_host += buf[: len(buf) - keep]
                del buf[: len(buf) - keep]
                return
            if i:  # text before a frame (boot output): as it is
                self._to_host += buf[:i]
                del buf[:i]
            if len(buf) < C.HEADER_SIZE:
                return
            n = _HEAD.unpack_from(buf, 0)[3]
            end = C.HEADER_SIZE + n + 4
            if len(buf) < end:
                return
            frame = bytes(buf[:end])
            del buf[:end]
            mtype, payload = frame[3], frame[C.HEADER_SIZE : end - 4]
            with self._lock:
                pred = next((p for p in self._drop if p(mtype, payload)), None)
                if pred is not None:
                    self._drop.remove(pred)
                    self.dropped.append((mtype, payload))
                    continue
            self._to_host += frame

    def _run(self) -> None:
        while not self._quit.is_set():
            holding = self._hold.is_set()
            rl = [self._down] + ([] if holding else [self._up_fd])
            wl = ([self._down] if self._to_host and not holding else []) + ([self._up_fd] if self._to_board else [])
            r, w, _ = select.select(rl, wl, [], 0.05)
            if self._down in r:
                try:
                    data = os.read(self._down, 4096)
                except BlockingIOError:  # select said readable, yet the tty had nothing by the read (flushed meanwhile)
                    data = b""
                except OSError as e:  # EIO: no host has the port open
                    if e.errno != errno.EIO:
                        raise
                    self._quit.wait(0.02)
                    data = b""
                with self._lock:
                    self.sent += data
                    if self._hold_at is not None and any(op == self._hold_at for op, _ in commands_sent(self.sent)):
                        self._hold_at = None
                        self._hold.set()  # before anything the board answers is read
                self._to_board += data
            if self._up_fd in r:
                try:
                    data = os.read(self._up_fd, 4096)
                except BlockingIOError:
                    data = b""
                self._from_board += data
                self._frames()
            if self._down in w:
                try:
                    n = os.write(self._down, self._to_host)
                    del self._to_host[:n]
                except BlockingIOError:
                    pass
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    self._to_host.clear()  # no host: gone, as USB CDC's output is
            if self._up_fd in w:
                try:
                    n = os.write(self._up_fd, self._to_board)
                    del self._to_board[:n]
                except BlockingIOError:
                    pass


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
