"""FaultyLinkProxy: the I/O around the FaultInjector, a relay thread between a board's
port and a new pty for the host.

It opens the board's port, makes a pty for the host (reachable under a stable
symlink, like the emulator's port), relays host -> board bytes untouched and
board -> host bytes through the injector, and writes everything the board sent
to a capture file. A disconnect makes the host's port vanish (the host's reads
fail) and reappear under the same path; while no host has the port open, what
the board sends is discarded, as USB CDC does, and logged as `offline`.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from picodaq.boards.unix import open_linked_pty

from ..errors import HilError
from .injector import Action, Disconnect, Fault, FaultInjector, Piece, Stall
from .spec import FaultSpec

_CHUNK = 4096
_OUT_LIMIT = 1 << 16  # bytes held for a host that is not reading; then the board is back-pressured


@dataclass
class ProxyCounters:
    bytes_from_board: int = 0
    bytes_to_host: int = 0
    bytes_to_board: int = 0
    bytes_offline: int = 0
    disconnects: int = 0
    stalls: int = 0
    board_losses: int = 0  # times the board's own port went away
    host_connects: int = 0


@dataclass
class _Pending:
    action: Action
    sent: int = 0  # bytes of a Piece already written


class FaultyLinkProxy:
    """A relay thread between a board's port and a new pty for the host, injecting faults.

    `upstream` is the board's port (a device path or the emulator's pty);
    `reopen`, if given, is called to find the board's port again after it
    vanished (a real board re-enumerating under another name); it returns the
    new path or None while the board is still away.
    """

    def __init__(
        self,
        upstream: str,
        link: Path | str,
        spec: FaultSpec,
        seed: int,
        capture: Path | str,
        enabled: bool = True,
        reopen: Callable[[], str | None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.link = Path(link).absolute()
        self.capture_path = Path(capture)
        self.injector = FaultInjector(spec, seed, enabled)
        self.counters = ProxyCounters()
        self.reopen = reopen
        self._lock = threading.RLock()
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self._up = None  # the board's serial port
        self._up_fd: int | None = None
        self._down: int | None = None  # pty master for the host
        self._host = False
        self._host_event = threading.Condition(self._lock)
        self._queue: deque[_Pending] = deque()
        self._queued = 0
        self._to_board = bytearray()
        self._stall_until = 0.0
        self._reopen_at = 0.0
        self._capture = open(self.capture_path, "wb")
        self._error: BaseException | None = None
        self._gap_end = 0  # end of the last range of the board's stream discarded for want of a host

    # -- public ------------------------------------------------------------------

    @property
    def port(self) -> str:
        return str(self.link)

    @property
    def seed(self) -> int:
        return self.injector.seed

    @property
    def spec(self) -> FaultSpec:
        return self.injector.spec

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self.injector.faults)

    def set_enabled(self, on: bool) -> None:
        """Turn fault injection on or off from here on (the schedule keeps its offsets)."""
        with self._lock:
            self.injector.enabled = on

    def start(self) -> FaultyLinkProxy:
        self._open_upstream(self.upstream)
        self._down = open_linked_pty(self.link)
        self._thread = threading.Thread(target=self._run, name=f"picodaq-faulty-link {self.link.name}", daemon=True)
        self._thread.start()
        return self

    def wait_host(self, timeout: float) -> bool:
        """Wait until a host has the port open."""
        with self._host_event:
            return self._host_event.wait_for(lambda: self._host, timeout)

    def board_bytes(self) -> bytes:
        """Everything the board sent through the proxy so far."""
        with self._lock:
            self._capture.flush()
            return self.capture_path.read_bytes()

    def stop(self) -> None:
        self._quit.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            self._close_down()
            self._close_upstream()
            if not self._capture.closed:
                self._capture.close()
        if self.link.is_symlink():
            self.link.unlink()

    def __enter__(self) -> FaultyLinkProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the board's side ----------------------------------------------------------

    def _open_upstream(self, path: str) -> None:
        import serial

        try:
            port = serial.serial_for_url(path, baudrate=115200, timeout=0, exclusive=True)
            fd = port.fileno()
        except (serial.SerialException, OSError, ValueError, AttributeError) as e:
            raise HilError(f"faulty link: cannot open the board's port {path}: {e}") from None
        self._up = port
        self._up_fd = fd
        os.set_blocking(fd, False)

    def _close_upstream(self) -> None:
        if self._up is not None:
            try:
                self._up.close()
            except OSError:
                pass
        self._up = None
        self._up_fd = None

    def _board_gone(self) -> None:
        # the board vanished (unplugged, reset): so does the host's port, until it is back
        self._close_upstream()
        self._close_down()
        self.counters.board_losses += 1
        self._reopen_at = time.monotonic() + 0.1

    def _try_reopen_board(self) -> None:
        path = self.reopen() if self.reopen else self.upstream
        if path and os.path.exists(path):
            try:
                self._open_upstream(path)
            except HilError:
                self._reopen_at = time.monotonic() + 0.1
                return
            self.upstream = path
            self._down = open_linked_pty(self.link)
        else:
            self._reopen_at = time.monotonic() + 0.1

    # -- the host's side -----------------------------------------------------------

    def _close_down(self) -> None:
        if self._down is not None:
            if self.link.is_symlink():
                self.link.unlink()
            os.close(self._down)
            self._down = None
        self._set_host(False)

    def _set_host(self, on: bool) -> None:
        with self._host_event:
            if on and not self._host:
                self.counters.host_connects += 1
            self._host = on
            self._host_event.notify_all()

    def _read_host(self) -> None:
        """Read what the host wrote (commands); also tells whether a host has the port open."""
        assert self._down is not None
        try:
            data = os.read(self._down, _CHUNK)
        except BlockingIOError:
            self._set_host(True)
            return
        except OSError as e:
            if e.errno == errno.EIO:
                self._set_host(False)
                return
            raise
        self._set_host(True)
        self._to_board += data

    # -- the relay -----------------------------------------------------------------

    def _log_offline(self, start: int, end: int) -> None:
        self._gap_end = max(self._gap_end, end)
        if end <= start:
            return
        self.counters.bytes_offline += end - start
        faults = self.injector.faults
        last = faults[-1] if faults else None
        if last is not None and last.kind == "offline" and last.offset + last.length == start:
            faults[-1] = replace(last, length=last.length + end - start)
        else:
            faults.append(Fault("offline", start, end - start))

    def _deliver(self) -> None:
        """Carry out queued actions in order: write pieces, wait out stalls, drop the port."""
        while self._queue:
            item = self._queue[0]
            a = item.action
            if isinstance(a, Stall):
                now = time.monotonic()
                if not self._stall_until:
                    self._stall_until = now + a.seconds
                    self.counters.stalls += 1
                if now < self._stall_until:
                    return
                self._stall_until = 0.0
                self._queue.popleft()
                continue
            if isinstance(a, Disconnect):
                self._queue.popleft()
                if self._down is not None:
                    self._close_down()
                    self.counters.disconnects += 1
                    self._reopen_at = time.monotonic() + a.seconds
                continue
            if a.fault is not None and a.start - a.fault.length < self._gap_end:
                # a duplicate of bytes that were discarded: trim it (and its log entry) to what went out
                keep = a.start - self._gap_end
                with self._lock:
                    faults = self.injector.faults
                    i = next(j for j in range(len(faults) - 1, -1, -1) if faults[j] is a.fault)
                    if keep > 0:
                        faults[i] = Fault("dup", a.start, keep)
                    else:
                        del faults[i]
                self._queued -= len(a.data) - max(keep, 0)
                self._queue.popleft()
                if keep > 0:
                    self._queue.appendleft(_Pending(Piece(a.data[-keep:], a.start, a.start)))
                continue
            if self._down is None or not self._host:
                # nobody to receive it: discarded, as USB CDC does
                with self._lock:
                    self._log_offline(a.start + item.sent, a.end)
                self._queued -= len(a.data) - item.sent
                self._queue.popleft()
                continue
            try:
                n = os.write(self._down, a.data[item.sent :])
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    self._set_host(False)
                    continue
                raise
            item.sent += n
            self._queued -= n
            self.counters.bytes_to_host += n
            if item.sent < len(a.data):
                return
            self._queue.popleft()

    def _read_board(self) -> None:
        assert self._up_fd is not None
        try:
            data = os.read(self._up_fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._board_gone()
            return
        with self._lock:
            self._capture.write(data)
            self.counters.bytes_from_board += len(data)
            actions = self.injector.process(data)
        for a in actions:
            self._queue.append(_Pending(a))
            if isinstance(a, Piece):
                self._queued += len(a.data)

    def _write_board(self) -> None:
        assert self._up_fd is not None
        try:
            n = os.write(self._up_fd, self._to_board)
        except BlockingIOError:
            return
        except OSError:
            self._board_gone()
            return
        self.counters.bytes_to_board += n
        del self._to_board[:n]

    def _run(self) -> None:
        try:
            while not self._quit.is_set():
                self._step()
        except BaseException as e:  # report through stop()/the test, never die silently
            self._error = e
            raise

    def _step(self) -> None:
        now = time.monotonic()
        if self._up_fd is None and now >= self._reopen_at:
            self._try_reopen_board()
        elif self._up_fd is not None and self._down is None and now >= self._reopen_at:
            self._down = open_linked_pty(self.link)
        if self._down is not None and not self._host:
            self._read_host()
        self._deliver()
        rl: list[int] = []
        wl: list[int] = []
        if self._up_fd is not None and self._queued < _OUT_LIMIT:
            rl.append(self._up_fd)
        if self._down is not None and self._host:
            rl.append(self._down)
            if self._queue and not self._stall_until:
                wl.append(self._down)
        if self._up_fd is not None and self._to_board:
            wl.append(self._up_fd)
        timeout = 0.05
        if self._stall_until:
            timeout = max(0.0, min(timeout, self._stall_until - now))
        try:
            r, w, _ = select.select(rl, wl, [], timeout)
        except (InterruptedError, ValueError, OSError):
            return
        if self._down is not None and self._down in r:
            self._read_host()
        if self._up_fd is not None and self._up_fd in w:
            self._write_board()
        if self._up_fd is not None and self._up_fd in r:
            self._read_board()
        if self._down is not None and self._down in w:
            self._deliver()

    @property
    def error(self) -> BaseException | None:
        return self._error
