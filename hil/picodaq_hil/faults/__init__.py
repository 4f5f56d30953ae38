"""A faulty link: bit flips, dropped and duplicated bytes, stalls and disconnects
between a board's port and the host, at seeded rates, with a log of every fault.

Two layers, as in the rest of picodaq:

- `FaultInjector` is sans-I/O. It turns the board's byte stream into the
  stream the host should see, plus `Stall` and `Disconnect` events. Where a
  fault happens depends only on the seed and on the offset in the board's
  stream (never on timing or on how the stream was chunked), so the same seed
  over the same bytes gives the same output, byte for byte. Every fault is
  recorded as a `Fault` in upstream offsets, so a test can tell exactly which
  frames reached the host intact.
- `FaultyLinkProxy` is the I/O: a thread that opens the board's port, makes a
  new pty for the host (reachable under a stable symlink, like the emulator's
  port), relays host -> board bytes untouched and board -> host bytes through
  the injector. It writes everything the board sent to a capture file. A
  disconnect makes the host's port vanish (the host's reads fail) and
  reappear under the same path; while no host has the port open, what the
  board sends is discarded, as USB CDC does, and logged as `offline`.

    python -m picodaq_hil.faults proxy --upstream /dev/ttyACM0 --link /tmp/faulty --spec bitflip=1e-5 --seed 7
    python -m picodaq_hil.faults replay board.tlv --spec bitflip=1e-5,drop=1e-5 --seed 7 --out host.tlv

Faults apply to what the board sends; commands from the host pass unchanged.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import random
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

from picodaq.boards.unix import open_linked_pty

from ..errors import FaultSpecError, HilError

KINDS = ("bitflip", "drop", "dup", "stall", "disconnect")
_NEVER = 1 << 62
_CHUNK = 4096
_OUT_LIMIT = 1 << 16  # bytes held for a host that is not reading; then the board is back-pressured


@dataclass(frozen=True)
class FaultSpec:
    """Fault rates, each the probability per byte of the board's stream that a fault starts there.

    Runs of dropped or duplicated bytes are 1..max_run bytes long; max_run stays
    below the 14-byte frame overhead, so a duplicate never repeats a whole frame.
    """

    bitflip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    stall: float = 0.0
    disconnect: float = 0.0
    max_run: int = 8
    stall_min_ms: float = 20.0
    stall_max_ms: float = 200.0
    disconnect_s: float = 0.5

    def __post_init__(self) -> None:
        for k in KINDS:
            p = getattr(self, k)
            if not 0.0 <= p < 1.0:
                raise FaultSpecError(f"fault rate {k}={p} must be within [0, 1)")
        if not 1 <= self.max_run <= 13:
            raise FaultSpecError(f"max_run={self.max_run} must be within 1..13 (below a frame's overhead)")
        if not 0 <= self.stall_min_ms <= self.stall_max_ms:
            raise FaultSpecError("stall_min_ms must be >= 0 and <= stall_max_ms")
        if not self.disconnect_s > 0:
            raise FaultSpecError("disconnect_s must be positive")

    @property
    def active(self) -> bool:
        return any(getattr(self, k) > 0 for k in KINDS)

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """`bitflip=1e-5,drop=2e-6,dup=1e-6,stall=1e-6,disconnect=0,max_run=8,stall_ms=20-200,disconnect_s=0.5`;
        an empty string or `none` means a clean link."""
        text = (text or "").strip()
        if text.lower() in ("", "none", "off", "clean"):
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, object] = {}
        for part in text.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip().replace("-", "_")
            if not sep:
                raise FaultSpecError(f"fault spec {text!r}: {part!r} is not NAME=VALUE")
            try:
                if name == "stall_ms":
                    lo, _, hi = value.partition("-")
                    values["stall_min_ms"] = float(lo)
                    values["stall_max_ms"] = float(hi or lo)
                elif name not in known:
                    raise FaultSpecError(
                        f"fault spec {text!r}: unknown name {name!r}; "
                        f"use {', '.join(KINDS)}, max_run, stall_ms, disconnect_s"
                    )
                elif name == "max_run":
                    values[name] = int(value)
                else:
                    values[name] = float(value)
            except ValueError:
                raise FaultSpecError(f"fault spec {text!r}: {value!r} is not a number") from None
        return cls(**values)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = [f"{k}={getattr(self, k):g}" for k in KINDS if getattr(self, k)]
        if not parts:
            return "none"
        if self.drop or self.dup:
            parts.append(f"max_run={self.max_run}")
        if self.stall:
            parts.append(f"stall_ms={self.stall_min_ms:g}-{self.stall_max_ms:g}")
        if self.disconnect:
            parts.append(f"disconnect_s={self.disconnect_s:g}")
        return ",".join(parts)


@dataclass(frozen=True)
class Fault:
    """One fault, in offsets of the board's stream.

    bitflip: byte `offset` had bit `detail` inverted. drop: bytes
    [offset, offset+length) never reached the host. dup: bytes
    [offset-length, offset) were sent twice in a row. stall: nothing
    moved for `detail` seconds from `offset` on. disconnect: the host's port
    vanished at `offset` for `detail` seconds. offline: bytes
    [offset, offset+length) were discarded because no host had the port open.
    """

    kind: str
    offset: int
    length: int = 0
    detail: float = 0.0

    def damages(self, start: int, end: int) -> bool:
        """Whether a frame occupying [start, end) of the board's stream cannot reach the host intact."""
        if self.kind == "bitflip":
            return start <= self.offset < end
        if self.kind in ("drop", "offline"):
            return self.length > 0 and self.offset < end and self.offset + self.length > start
        if self.kind == "dup":
            # the copy lands strictly inside the frame; but when the copied run began at or before
            # the frame's start, the second copy carries the frame on intact
            return self.offset - self.length > start and self.offset < end
        return False


@dataclass(frozen=True)
class Piece:
    """Bytes for the host, and the range of the board's stream they stand for.

    A duplicate is an insertion (an empty range at the insertion point) that
    carries the `fault` it was logged as: if the proxy discards the bytes it
    copies (no host), it trims the copy and the log entry together, so a
    duplicate never brings discarded bytes back."""

    data: bytes
    start: int
    end: int
    fault: Fault | None = None


@dataclass(frozen=True)
class Stall:
    seconds: float


@dataclass(frozen=True)
class Disconnect:
    seconds: float


Action = Piece | Stall | Disconnect


class FaultInjector:
    """Applies a FaultSpec's seeded schedule to a byte stream (no I/O, no clock)."""

    def __init__(self, spec: FaultSpec, seed: int, enabled: bool = True) -> None:
        self.spec = spec
        self.seed = seed
        self.enabled = enabled
        self.offset = 0  # bytes of the board's stream consumed so far
        self.faults: list[Fault] = []
        self._rng = {k: random.Random(f"picodaq-faults/{seed}/{k}") for k in KINDS}
        self._next = {k: self._draw(k, -1) for k in KINDS}
        self._drop_left = 0
        self._history = b""
        self._clean_from = 0  # bytes from here on reached the output without a drop

    def _draw(self, kind: str, after: int) -> int:
        p = getattr(self.spec, kind)
        if p <= 0:
            return _NEVER
        u = 1.0 - self._rng[kind].random()  # (0, 1]
        return after + 1 + int(math.log(u) / math.log1p(-p))

    def _params(self, kind: str) -> tuple[int, float]:
        """The fault's size, drawn whether or not it is applied, so the schedule never shifts."""
        rng = self._rng[kind]
        if kind == "bitflip":
            return 1, float(rng.randrange(8))
        if kind in ("drop", "dup"):
            return rng.randint(1, self.spec.max_run), 0.0
        if kind == "stall":
            return 0, rng.uniform(self.spec.stall_min_ms, self.spec.stall_max_ms) / 1000.0
        return 0, self.spec.disconnect_s

    def process(self, data: bytes | bytearray | memoryview) -> list[Action]:
        """The actions that deliver `data` (the next bytes of the board's stream) to the host."""
        base = self.offset
        buf = bytearray(data)
        n = len(buf)
        out: list[Action] = []
        pos = 0  # first byte of buf not yet handed out or dropped
        if self._drop_left:
            k = min(self._drop_left, n)
            self._drop_left -= k
            pos = k

        def emit(upto: int) -> None:
            nonlocal pos
            if upto > pos:
                out.append(Piece(bytes(buf[pos:upto]), base + pos, base + upto))
                pos = upto

        while True:
            kind = min(KINDS, key=lambda k: self._next[k])
            at = self._next[kind]
            if at >= base + n:
                break
            self._next[kind] = self._draw(kind, at)
            size, detail = self._params(kind)
            i = at - base
            if not self.enabled:
                continue
            if kind in ("bitflip", "drop", "dup") and i < pos:
                continue  # inside a run already dropped: there is nothing left to damage
            if kind == "bitflip":
                buf[i] ^= 1 << int(detail)
                self.faults.append(Fault("bitflip", at, 1, detail))
            elif kind == "drop":
                emit(i)
                self.faults.append(Fault("drop", at, size))
                self._clean_from = at + size
                if i + size <= n:
                    pos = i + size
                else:
                    self._drop_left = i + size - n
                    pos = n
            elif kind == "dup":
                # copy only bytes that went out: never resurrect what a drop removed
                size = min(size, at - self._clean_from)
                if size <= 0:
                    continue
                emit(i)
                src = (self._history + bytes(buf[:i]))[-size:]
                fault = Fault("dup", at, len(src))
                out.append(Piece(src, at, at, fault))
                self.faults.append(fault)
            elif kind == "stall":
                emit(max(i, pos))
                out.append(Stall(detail))
                self.faults.append(Fault("stall", at, 0, detail))
            else:
                emit(max(i, pos))
                out.append(Disconnect(detail))
                self.faults.append(Fault("disconnect", at, 0, detail))
        emit(n)
        self._history = (self._history + bytes(buf))[-self.spec.max_run :]
        self.offset = base + n
        return out


def apply_offline(data: bytes, spec: FaultSpec, seed: int) -> tuple[bytes, list[Fault]]:
    """What the host receives when `data` passes a faulty link with this seed, without
    the timing: stalls only delay, and a disconnect is logged but loses nothing here.
    Any chunking of `data` gives the same result."""
    inj = FaultInjector(spec, seed)
    out = bytearray()
    for a in inj.process(data):
        if isinstance(a, Piece):
            out += a.data
    return bytes(out), inj.faults


# -- the proxy ------------------------------------------------------------------------


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

    def set_spec(self, spec: FaultSpec) -> None:
        """New rates from the current offset on, same seed."""
        with self._lock:
            inj = self.injector
            new = FaultInjector(spec, inj.seed, inj.enabled)
            new.offset, new.faults, new._history = inj.offset, inj.faults, inj._history
            new._next = {k: new._draw(k, inj.offset - 1) for k in KINDS}
            self.injector = new

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


# -- command line ---------------------------------------------------------------------


def _main(argv: list[str] | None = None) -> int:
    from picodaq.errors import PicodaqError

    ap = argparse.ArgumentParser(
        prog="python -m picodaq_hil.faults", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("proxy", help="relay a board's port to a faulty pty until Ctrl-C")
    p.add_argument("--upstream", required=True, help="the board's port")
    p.add_argument("--link", required=True, help="stable path (a symlink) for the host's port")
    p.add_argument("--capture", default=None, help="file for everything the board sent")
    r = sub.add_parser("replay", help="apply a seeded fault schedule to a capture of what a board sent")
    r.add_argument("capture")
    r.add_argument("--out", required=True)
    for q in (p, r):
        q.add_argument("--spec", default="", help="e.g. bitflip=1e-5,drop=1e-5,dup=1e-5,stall=1e-6")
        q.add_argument("--seed", type=int, default=None, help="default: a random seed, printed")
    a = ap.parse_args(argv)
    try:
        spec = FaultSpec.parse(a.spec)
        seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
        print(f"picodaq faulty link: spec {spec}, seed {seed}", file=sys.stderr, flush=True)
        if a.cmd == "replay":
            out, faults = apply_offline(Path(a.capture).read_bytes(), spec, seed)
            Path(a.out).write_bytes(out)
            for f in faults:
                print(f"{f.kind} at {f.offset} length {f.length} {f.detail:g}")
            return 0
        import signal

        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly, with the summary
        cap = a.capture or os.devnull
        proxy = FaultyLinkProxy(a.upstream, a.link, spec, seed, cap).start()
        print(proxy.port, flush=True)
        try:
            while proxy._thread is not None and proxy._thread.is_alive():
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            proxy.stop()
            print(f"{len(proxy.faults)} faults: {proxy.counters}", file=sys.stderr)
        return 0
    except (PicodaqError, OSError) as e:
        print(f"picodaq: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main())
