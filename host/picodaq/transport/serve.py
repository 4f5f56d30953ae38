"""Export a local board over TCP, so another machine flashes, records and tests it.

    server = BoardServer("/dev/ttyACM0", ("0.0.0.0", 2217))
    print(server.url)          # rfc2217://labpc:2217
    server.serve(stop_event)

Two ways to carry the port (the client picks the matching pyserial URL):

- RFC 2217 (default): Telnet with the COM-port option, through pyserial's own
  server side (serial.rfc2217.PortManager, as in pyserial's
  examples/rfc2217_server.py): the client may set the baud rate, DTR/RTS and
  purge buffers; data bytes 0xFF are doubled. Clients use `rfc2217://HOST:PORT`.
- raw (`raw=True`): the bytes as they are, nothing negotiated. Clients use
  `socket://HOST:PORT`.

One client at a time, as ser2net: a second one is disconnected at once (and
told so in the server's log). The board's port stays open between clients; what
the board sends while nobody is connected is dropped, as USB CDC output with no
host reading. A client leaving never stops the server. When the board's port
fails (unplugged), the client is disconnected and the port is reopened as soon
as it is back; meanwhile clients are turned away.

A pty (the emulated board) has no modem lines: the ioctls pyserial uses for
CTS/DSR/RI/CD and DTR/RTS fail on it, so the port is wrapped in `FixedModemLines`
that answers them with fixed values (lines up, as a USB CDC board reports).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import serial
import serial.rfc2217

from ..errors import LinkError, UsageError
from .port_errors import PORT_ERRORS, describe_port_error, open_error

IAC = b"\xff"
_CHUNK = 65536
REOPEN_EVERY = 0.5  # seconds between attempts to reopen a board port that failed
MODEM_POLL = 1.0  # seconds between modem-line reports to an RFC 2217 client (as pyserial's example)

Log = Callable[[str], None]


class FixedModemLines:
    """A serial port whose modem lines are fixed: CTS, DSR and CD up, RI down; DTR, RTS and
    break are remembered but go nowhere. Everything else passes through to the port."""

    _OWN = ("dtr", "rts", "break_condition")

    def __init__(self, port: serial.SerialBase) -> None:
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "_lines", {"dtr": True, "rts": True, "break_condition": False})

    cts = True
    dsr = True
    cd = True
    ri = False

    def __getattr__(self, name: str) -> Any:
        lines = object.__getattribute__(self, "_lines")
        if name in lines:
            return lines[name]
        return getattr(object.__getattribute__(self, "_port"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            self._lines[name] = bool(value)
        else:
            setattr(self._port, name, value)


def has_modem_lines(port: serial.SerialBase) -> bool:
    """False for a pty, where asking for a modem line fails (ENOTTY/EINVAL)."""
    try:
        port.cts  # noqa: B018 (the query is the test)
        return True
    except (OSError, serial.SerialException, AttributeError, NotImplementedError):
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6; an empty HOST means every interface) -> (host, port).

    Raises ValueError with a readable reason."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address goes in brackets: [{host}]:{port}")
    try:
        n = int(port)
    except ValueError:
        raise ValueError(f"not a TCP port number: {port!r}") from None
    if not 0 <= n <= 65535:
        raise ValueError(f"TCP port must be 0..65535, got {n}")
    return host or "0.0.0.0", n


def _url_host(host: str) -> str:
    """The host name clients should use for a listening address."""
    if host in ("0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


class BoardServer:
    """Serve the board on `port` (a device path or pyserial URL) at `listen` (host, TCP port)."""

    def __init__(self, port: str, listen: tuple[str, int], *, raw: bool = False, log: Log | None = None) -> None:
        self.port_name = port
        self.raw = raw
        self.log = log or (lambda text: None)
        self.clients = 0  # clients served so far
        self.turned_away = 0
        self.bytes_to_client = 0
        self.bytes_to_board = 0
        self._board: serial.SerialBase | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._listener = self._bind(*listen)
        self.host, self.tcp_port = self._listener.getsockname()[:2]
        self._open_board()  # fails here, before any client is accepted, if the board is not there

    # -- setting up ------------------------------------------------------------

    def _bind(self, host: str, tcp_port: int) -> socket.socket:
        try:
            infos = socket.getaddrinfo(host, tcp_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as e:
            raise UsageError(f"cannot listen on {host}:{tcp_port}: unknown host ({e.strerror})") from None
        family, kind, proto, _, addr = infos[0]
        s = socket.socket(family, kind, proto)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr)
            s.listen(4)
        except OSError as e:
            s.close()
            why = "the port is in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
            raise LinkError(f"cannot listen on {host}:{tcp_port}: {why}") from None
        s.setblocking(False)
        return s

    @property
    def url(self) -> str:
        return f"{'socket' if self.raw else 'rfc2217'}://{_url_host(self.host)}:{self.tcp_port}"

    def _open_board(self) -> None:
        try:
            port = serial.serial_for_url(self.port_name, baudrate=115200, timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise open_error(e, self.port_name) from None
        self._board = port

    def _board_fd(self) -> int:
        assert self._board is not None
        return self._board.fileno()

    def _close_board(self) -> None:
        board, self._board = self._board, None
        if board is not None:
            try:
                board.close()
            except PORT_ERRORS:
                pass

    # -- running ---------------------------------------------------------------

    def stop(self) -> None:
        """Ask serve() to return (from another thread or a signal handler)."""
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def serve(self) -> None:
        """Accept clients one at a time until stop(); then close everything."""
        try:
            while not self._stop.is_set():
                if self._board is None and not self._reopen():
                    self._idle(REOPEN_EVERY, turn_away=True)
                    continue
                self._idle(None, turn_away=False)  # drain the board until a client comes
                conn = self._accept()
                if conn is None:
                    continue
                self._serve_client(*conn)
        finally:
            self._listener.close()
            self._close_board()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _reopen(self) -> bool:
        try:
            self._open_board()
        except LinkError:
            return False
        self.log(f"the board is back on {self.port_name}")
        return True

    def _idle(self, timeout: float | None, turn_away: bool) -> None:
        """Wait for a client (or the timeout), dropping what the board sends meanwhile."""
        while not self._stop.is_set():
            waitable: list[Any] = [self._listener, self._wake_r]
            if self._board is not None:
                waitable.append(self._board_fd())
            r, _, _ = select.select(waitable, [], [], timeout)
            if self._board is not None and self._board_fd() in r and not self._drop_board_output():
                return
            if self._listener in r:
                if not turn_away:
                    return
                self._turn_away(f"the board on {self.port_name} is gone")
            if not r or self._wake_r in r:
                return

    def _drop_board_output(self) -> bool:
        try:
            data = os.read(self._board_fd(), _CHUNK)
        except BlockingIOError:
            return True
        except OSError as e:
            data = b""
            self.log(f"the board on {self.port_name} failed ({e.strerror or e}); waiting for it to come back")
        if not data:
            self._close_board()
            return False
        return True

    def _accept(self) -> tuple[socket.socket, Any] | None:
        try:
            s, addr = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        s.setblocking(True)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s, addr

    def _turn_away(self, why: str) -> None:
        conn = self._accept()
        if conn is None:
            return
        s, addr = conn
        self.turned_away += 1
        self.log(f"turned away {_peer(addr)}: {why}")
        s.close()

    # -- one client ------------------------------------------------------------

    def _serve_client(self, sock: socket.socket, addr: Any) -> None:
        assert self._board is not None
        self.clients += 1
        who = _peer(addr)
        self.log(f"client {who} connected")
        board: Any = self._board
        if not self.raw and not has_modem_lines(board):
            board = FixedModemLines(board)
        try:
            board.reset_input_buffer()  # what the board said before the client came is not the client's
        except PORT_ERRORS:
            pass
        session = _Session(self, sock, board)
        why = session.run()
        sock.close()
        self.log(f"client {who} disconnected ({why})")

    # -- for a session -----------------------------------------------------------

    def _ready(self, waitable: list[Any], timeout: float) -> list[Any]:
        r, _, _ = select.select(waitable + [self._wake_r], [], [], timeout)
        return r


class _Session:
    """Copy bytes both ways between one client and the board until either side ends."""

    def __init__(self, server: BoardServer, sock: socket.socket, board: Any) -> None:
        self.server = server
        self.sock = sock
        self.board = board
        self.lock = threading.Lock()  # the board reader and the option answers both write to the socket
        self.manager = None if server.raw else serial.rfc2217.PortManager(board, self)
        self.done = threading.Event()
        self.why = ""

    # PortManager's connection: it sends its Telnet answers through write()
    def write(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def _end(self, why: str) -> None:
        if not self.done.is_set():
            self.why = why
            self.done.set()

    def run(self) -> str:
        reader = threading.Thread(target=self._board_to_client, name="picodaq-serve board->client", daemon=True)
        reader.start()
        try:
            self._client_to_board()
        finally:
            self._end(self.why or "the server stopped")
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            reader.join(timeout=5)
        return self.why

    def _client_to_board(self) -> None:
        server = self.server
        next_modem = time.monotonic() + MODEM_POLL
        while not self.done.is_set() and not server._stop.is_set():
            r = server._ready([self.sock, server._listener], 0.2)
            if server._listener in r:
                server._turn_away("another client is connected (one at a time)")
            if self.sock in r:
                try:
                    data = self.sock.recv(_CHUNK)
                except OSError as e:
                    return self._end(f"connection error: {e.strerror or e}")
                if not data:
                    return self._end("the client closed the connection")
                if self.manager is not None:
                    data = b"".join(self.manager.filter(data))  # Telnet commands answered, data unescaped
                if data:
                    try:
                        self.board.write(data)
                    except PORT_ERRORS as e:
                        return self._end(f"writing to the board failed: {describe_port_error(e)}")
                    server.bytes_to_board += len(data)
            if self.manager is not None and time.monotonic() >= next_modem:
                next_modem = time.monotonic() + MODEM_POLL
                try:
                    self.manager.check_modem_lines()
                except PORT_ERRORS as e:
                    return self._end(f"the board's modem lines failed: {describe_port_error(e)}")

    def _board_to_client(self) -> None:
        server = self.server
        try:
            fd = server._board_fd()
            while not self.done.is_set():
                r = server._ready([fd], 0.2)
                if server._wake_r in r:
                    return
                if fd not in r:
                    continue
                try:
                    data = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                except OSError as e:
                    data = b""
                    server.log(f"the board on {server.port_name} failed ({e.strerror or e})")
                if not data:
                    server._close_board()
                    return self._end("the board's port went away; waiting for it to come back")
                if self.manager is not None:
                    data = data.replace(
                        IAC, IAC + IAC
                    )  # Telnet escaping: PortManager.escape, minus its per-byte generator
                try:
                    self.write(data)
                except OSError as e:
                    return self._end(f"connection error: {e.strerror or e}")
                server.bytes_to_client += len(data)
        finally:
            self._end(self.why or "the board reader ended")


def _peer(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"[{addr[0]}]:{addr[1]}" if ":" in str(addr[0]) else f"{addr[0]}:{addr[1]}"
    return str(addr)
