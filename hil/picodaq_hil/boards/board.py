"""The board under test, real or emulated: one implementation behind the pytest
fixtures and the Robot Framework library.

A `Board` is made from a `BoardChoice` (see selection.py). It leases the board
(hardware), or starts an emulator in a fresh flash folder; flashes it only when
the firmware's hashes differ; connects a picodaq `Link`; and between tests
soft-resets it and synchronises, so nothing one test left running or unread
reaches the next:

    STOP if it streams -> a pause, then CR Ctrl-C CR (the idle app's escape to
    the REPL) -> Ctrl-D (soft reboot, main.py runs) -> a fresh HELLO -> new
    receiver -> PING

Every byte the host receives goes to the current test's DeviceLog, and host
actions are noted there too. A faulty-link proxy can be put between the board
and the host for a test (`use_faulty_link`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from picodaq import contracts as C
from picodaq.errors import CommandFailed, CommandTimeout, DeviceError, LinkError
from picodaq.flash.firmware import REPL_ESCAPE, REPL_ESCAPE_PAUSE
from picodaq.protocol.messages import Hello
from picodaq.transport.link import Link

from ..errors import BoardLost, HilError, Unsupported
from ..faults import FaultSpec, FaultyLinkProxy
from ..oracle.accounting import HilReceiver
from .devicelog import DeviceLog, slug
from .flashing import FlashResult, ensure_firmware
from .leases import Lease
from .selection import EMULATED, BoardChoice, find_port_by_serial, port_present
from .tiers import board_tier, machine_reset

if TYPE_CHECKING:
    from picodaq.boards.rp2040 import Rp2040Board
    from picodaq.boards.unix import EmulatedBoard

REPL_PROMPT = b">>> "


class RawWatch:
    """A Link raw tap that remembers the most recent bytes, to wait for REPL prompts."""

    def __init__(self, keep: int = 1024) -> None:
        self.keep = keep
        self.buf = bytearray()

    def __call__(self, chunk: memoryview) -> None:
        self.buf += chunk
        if len(self.buf) > self.keep:
            del self.buf[: len(self.buf) - self.keep]

    def clear(self) -> None:
        self.buf.clear()

    def seen(self, pattern: bytes) -> bool:
        return pattern in self.buf


class Board:
    """One board for the HIL suite. See the module docstring."""

    def __init__(
        self,
        choice: BoardChoice,
        log_root: Path | str = "build/hil-logs",
        holder: str = "",
        lease_timeout: float = 240.0,
    ) -> None:
        self.choice = choice
        self.log_root = Path(log_root)
        self.holder = holder
        self.lease_timeout = lease_timeout
        self.port: str | None = choice.port
        self.serial_number = choice.serial_number
        self.emulator: EmulatedBoard | Rp2040Board | None = None
        self.link: Link | None = None
        self.proxy: FaultyLinkProxy | None = None
        self.log: DeviceLog | None = None
        self.lease: Lease | None = None
        self.flash_result: FlashResult | None = None
        self.hello: Hello | None = None
        self._watch = RawWatch()
        self._tmp = tempfile.TemporaryDirectory(prefix="picodaq-hil-")
        self._proxies = 0
        self.soft_resets = 0
        self.hard_resets = 0  # a soft reset that had to fall back counts here too

    # -- naming ----------------------------------------------------------------------

    @property
    def emulated(self) -> bool:
        return self.choice.kind == EMULATED

    @property
    def name(self) -> str:
        """Who the tests ran on, for reports: kind, port, and why this board."""
        if self.emulated:
            ident = self.emulator.board_id if self.emulator else "not started"
            return f"emulated board {ident} on {self.port}, tier {self.tier} ({self.choice.reason})"
        sn = f" USB serial {self.serial_number}" if self.serial_number else ""
        return f"hardware board{sn} on {self.port} ({self.choice.reason})"

    @property
    def tier(self) -> str:
        """The board tier, named in every report: "rp2040", "unix" (emulated), "board" (real)."""
        return board_tier(self.emulated)

    @property
    def flash_timeout(self) -> float:
        """The flasher's timeout per answer: an emulated RP2040 runs at a fraction of a real one."""
        return 60.0 if self.tier == "rp2040" else 10.0

    @property
    def label(self) -> str:
        """A short name for the board's log folder."""
        if self.emulated:
            return f"emulated-{self.emulator.board_id if self.emulator else 'board'}"
        return slug(f"usb-{self.serial_number}" if self.serial_number else f"port-{self.port}")

    # -- lifetime --------------------------------------------------------------------

    def acquire(self, holder: str = "", wait: bool = True) -> bool:
        """Lease a real board (waiting, if `wait`, while another worker has it), or start the
        emulator. Returns False only when not waiting and the board is taken."""
        if self.emulated:
            if self.emulator is None or not self.emulator.running:
                emu: EmulatedBoard | Rp2040Board
                if self.tier == "rp2040":  # the real rp2 port on an emulated RP2040, from the run's flashed image
                    from .rp2040_image import start_flashed_board

                    emu = start_flashed_board(unplug_seconds=0.5)
                else:
                    from picodaq.boards.unix import EmulatedBoard

                    emu = EmulatedBoard(unpaced=False, unplug_seconds=0.5).start()
                weakref.finalize(self, emu.stop)  # never leave a supervisor behind, even unshut
                self.emulator = emu
                self.port = emu.port
                self.flash_result = None
            return True
        lease = Lease(self.choice.key, holder or self.holder, timeout=self.lease_timeout)
        if wait:
            lease.acquire()
        elif not lease.try_acquire():
            return False
        self.lease = lease
        if self.serial_number and (not self.port or not os.path.exists(self.port)):
            self.port = find_port_by_serial(self.serial_number)
        return True

    def release(self) -> None:
        """Let go of the link, the proxy and the lease (the emulator keeps running)."""
        try:
            self._close_proxy()
        finally:
            self.disconnect()
            if self.lease is not None:
                self.lease.release()
                self.lease = None

    def shutdown(self) -> None:
        try:
            self.release()
        finally:
            if self.emulator is not None:
                self.emulator.stop()
                self.emulator = None
            self._tmp.cleanup()

    # -- a test's boundaries ---------------------------------------------------------

    def begin_test(self, test: str, flash: bool = True) -> DeviceLog:
        """Open the test's device log, flash if needed (once per session), connect and soft-reset."""
        self.log = DeviceLog(self.log_root / self.label, test, self.name)
        self.log.note(f"test {test} starts on {self.name}")
        if flash and self.flash_result is None:
            self.flash()
        self.connect()
        self.soft_reset()  # every test starts the same way, from a fresh boot in its own log
        return self.log

    def end_test(self) -> DeviceLog | None:
        """Stop whatever streams, close the link and the proxy, write the device log."""
        log = self.log
        if self.link is not None:
            try:
                self.link.stop(wait_status=0.3)
            except (DeviceError, LinkError):
                pass
        try:
            self._close_proxy()
        finally:
            self.disconnect()
            if log is not None:
                log.note("test ends")
                log.close()
            self.log = None
        return log

    def note(self, text: str) -> None:
        if self.log is not None:
            self.log.note(text)

    # -- the link ----------------------------------------------------------------------

    @property
    def link_port(self) -> str:
        """The port the host opens: the proxy's while a faulty link is in use."""
        if self.proxy is not None:
            return self.proxy.port
        if self.port is None:
            raise HilError("the board has no port yet (not acquired)")
        return self.port

    def _log_tap(self, chunk: memoryview) -> None:
        if self.log is not None:
            self.log.tap(chunk)

    def connect(self) -> Link:
        if self.link is None:
            self.link = Link.open(self.link_port, HilReceiver())
            self.link.raw_taps += [self._watch, self._log_tap]
        return self.link

    def disconnect(self) -> None:
        if self.link is not None:
            link, self.link = self.link, None
            link.close()

    def need_link(self) -> Link:
        if self.link is None:
            raise HilError("the board is not connected")
        return self.link

    def fresh_receiver(self) -> HilReceiver:
        """A new receiver on the link: counters from zero, at a frame boundary."""
        link = self.need_link()
        rx = HilReceiver()
        link.receiver = rx
        return rx

    def drain(self, quiet: float = 0.1, limit: float = 2.0) -> int:
        """Route whatever is in flight until the link has been quiet for `quiet` seconds."""
        link = self.need_link()
        total = 0
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            n = link.pump(quiet)
            total += n
            if not n:
                break
        return total

    # -- firmware ----------------------------------------------------------------------

    def flash(self, force: bool = False) -> FlashResult:
        """ensure_firmware() (`picodaq flash`) with the link closed; then connect and synchronise.

        The flasher stops a stream itself, resets the board and waits for its HELLO."""
        self.disconnect()
        result = ensure_firmware(self, force=force, note=self.note, timeout=self.flash_timeout)
        self.flash_result = result
        self.note(str(result))
        self.connect()
        self.sync()
        return result

    # -- resets ------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self.need_link().write(data)

    def _wait_prompt(self, timeout: float) -> bool:
        return self.need_link().pump_until(lambda: self._watch.seen(REPL_PROMPT), timeout)

    def _to_repl(self) -> bool:
        """From the idle app, a stream, a friendly or a raw REPL to the friendly REPL's prompt.

        The idle app hands over to the REPL on its escape (a pause, then CR
        Ctrl-C CR; a REPL just prompts again); Ctrl-B then leaves a raw REPL that
        a flashing tool left behind (in the friendly REPL it only prints the
        banner). A stream ignores both (only STOP ends it), so a board seen
        streaming gets a STOP first."""
        link = self.need_link()
        samples = link.receiver.stats.samples
        self.drain(quiet=0.05, limit=0.5)  # stale output must not pass for a fresh prompt
        streaming = link.receiver.stats.samples > samples or (
            link.receiver.status is not None and link.receiver.status.state == C.STATE_STREAMING
        )
        for attempt in range(3):
            if streaming or attempt:
                try:
                    link.stop(wait_status=0.5)
                except (DeviceError, LinkError):
                    pass
            # the escape counts only after a pause: nothing was written while this drains
            self.drain(quiet=REPL_ESCAPE_PAUSE, limit=REPL_ESCAPE_PAUSE + 2.0)
            self._watch.clear()
            self._write(REPL_ESCAPE + b"\x02")
            if self._wait_prompt(1.0 + attempt):
                return True
        return False

    def soft_reset(self, timeout: float = 10.0) -> Hello:
        """STOP, the escape to the REPL, Ctrl-D, a fresh HELLO; then a new receiver and a PING,
        so the next exchange starts clean. Falls back to a hard reset if the board does not answer."""
        self.connect()
        self.note("soft reset: the escape to the REPL, Ctrl-D to reboot")
        if self._to_repl():
            link = self.need_link()
            seen = link.receiver.hellos
            self._write(b"\x04")
            if link.pump_until(lambda: link.receiver.hellos > seen, timeout):
                self.soft_resets += 1
                return self._synced(link.receiver.hello)
            self.note(f"no HELLO within {timeout:g} s of the soft reset")
        else:
            self.note("no REPL prompt: the board does not answer the escape")
        self.note("falling back to a hard reset")
        return self.hard_reset(timeout=timeout)

    def _synced(self, hello: Hello | None) -> Hello:
        self.drain()
        self.fresh_receiver()
        self.need_link().ping()
        if hello is None:
            hello = self.need_link().get_info()
        self.hello = hello
        return hello

    def hard_reset(self, timeout: float = 15.0) -> Hello:
        """A reset like the RUN pin's: the board reboots from scratch and runs main.py.

        Emulated: SIGUSR1 to the supervisor; on the rp2040 tier `machine.reset()` typed at
        the REPL first, as on a Pico (the chip reboots from its flash, its port goes away and
        comes back), SIGUSR1 only when the REPL does not answer. Hardware: the command in
        PICODAQ_RESET_CMD (`{port}` is replaced), else `machine.reset()` typed at
        the REPL; the board re-enumerates and is found again by its USB serial
        number."""
        self.note("hard reset")
        self.hard_resets += 1
        if self.emulated and self.tier == "rp2040":
            hello = machine_reset(self, timeout)
            if hello is not None:
                return hello
        if self.emulated:
            assert self.emulator is not None
            self.connect()
            link = self.need_link()
            seen = link.receiver.hellos
            self.emulator.hard_reset()
            if not link.pump_until(lambda: link.receiver.hellos > seen, timeout):
                raise BoardLost(f"{self.name}: no HELLO within {timeout:g} s of a hard reset")
            return self._synced(link.receiver.hello)
        cmd = os.environ.get("PICODAQ_RESET_CMD")
        if cmd:
            self.disconnect()
            subprocess.run(cmd.replace("{port}", shlex.quote(self.port or "")), shell=True, check=False, timeout=60)
        else:
            self.connect()
            if not self._to_repl():
                raise BoardLost(f"{self.name}: cannot reach the REPL to reset it; set PICODAQ_RESET_CMD")
            self._write(b"import machine\rmachine.reset()\r")
            self.disconnect()
        time.sleep(0.5)  # let the old port go away before looking for the new one
        self.reconnect(timeout=timeout)
        return self.sync()

    def reset_now(self) -> None:
        """Reset the board at once, streaming or not, without waiting for it (a reset mid-stream).

        Emulated: SIGUSR1 to the supervisor. Hardware: PICODAQ_RESET_CMD (a debug probe,
        a relay on RUN); without it this raises Unsupported, since a streaming board
        does not listen to the REPL."""
        self.note("reset mid-stream")
        if self.emulated:
            assert self.emulator is not None
            self.emulator.hard_reset()
            return
        cmd = os.environ.get("PICODAQ_RESET_CMD")
        if not cmd:
            raise Unsupported("resetting a streaming real board needs PICODAQ_RESET_CMD (e.g. a probe's reset)")
        subprocess.Popen(cmd.replace("{port}", shlex.quote(self.port or "")), shell=True)

    def unplug(self, wait_gone: float = 3.0) -> None:
        """Pull the USB cable: the port vanishes and the board loses power, then both come back
        (emulated: after 0.5 s) and the board boots its firmware again.

        Hardware needs PICODAQ_UNPLUG_CMD (e.g. `uhubctl -a cycle -l 1-1 -p 2`);
        without it this raises Unsupported."""
        self.note("unplug")
        if self.emulated:
            assert self.emulator is not None and self.port is not None
            self.emulator.unplug()
            deadline = time.monotonic() + wait_gone
            while os.path.lexists(self.port) and time.monotonic() < deadline:
                time.sleep(0.01)
            return
        cmd = os.environ.get("PICODAQ_UNPLUG_CMD")
        if not cmd:
            raise Unsupported("unplugging a real board needs PICODAQ_UNPLUG_CMD (a switchable hub, e.g. uhubctl)")
        subprocess.Popen(cmd.replace("{port}", shlex.quote(self.port or "")), shell=True)

    def _find_board_port(self) -> str | None:
        """The board's own port now: for hardware with a serial number, wherever it enumerated."""
        if not self.emulated and self.serial_number:
            try:
                self.port = find_port_by_serial(self.serial_number, timeout=0.0)
            except BoardLost:
                return None
        return self.port if port_present(self.port) else None

    def reconnect(self, timeout: float = 10.0) -> Link:
        """A new link once the port is back (the proxy's, or the board's found by serial number)."""
        self.disconnect()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            port = self.proxy.port if self.proxy is not None else self._find_board_port()
            if port_present(port):
                try:
                    link = self.connect()
                    self.note(f"reconnected on {self.link_port}")
                    return link
                except LinkError as e:
                    last = e
            if time.monotonic() >= deadline:
                raise BoardLost(
                    f"{self.name}: the port did not come back within {timeout:g} s" + (f" ({last})" if last else "")
                )
            time.sleep(0.05)

    def sync(self) -> Hello:
        """After a reconnect: stop any stream, drain, new receiver, a HELLO (contract checked)."""
        link = self.need_link()
        try:
            link.stop(wait_status=0.3)
        except (CommandFailed, CommandTimeout):
            pass
        self.drain()
        self.fresh_receiver()
        self.hello = link.get_info()
        return self.hello

    # -- a faulty link -------------------------------------------------------------------

    def use_faulty_link(self, spec: FaultSpec | str, seed: int, enabled: bool = True) -> FaultyLinkProxy:
        """Put a FaultyLinkProxy between the board and the host, and reconnect through it."""
        if isinstance(spec, str):
            spec = FaultSpec.parse(spec)
        self._close_proxy()
        self.disconnect()
        self._proxies += 1
        where = Path(self._tmp.name)
        capture = where / f"board-{self._proxies}.tlv"
        if self.log is not None:
            capture = self.log.raw_path.with_suffix(".board.tlv")
            self.log.board_capture = capture
        assert self.port is not None
        reopen = self._find_board_port if not self.emulated else None
        proxy = FaultyLinkProxy(self.port, where / f"faulty-{self._proxies}", spec, seed, capture, enabled, reopen)
        self.proxy = proxy.start()
        self.note(
            f"faulty link on {proxy.port}: spec {spec}, seed {seed}"
            + ("" if enabled else " (faults off until enabled)")
        )
        try:
            self.connect()
        except BaseException:
            self._close_proxy()
            raise
        proxy.wait_host(2.0)
        return proxy

    def use_direct_link(self) -> Link:
        self._close_proxy()
        self.disconnect()
        return self.connect()

    def _close_proxy(self) -> None:
        if self.proxy is not None:
            proxy, self.proxy = self.proxy, None
            self.disconnect()
            proxy.stop()
            self.note(f"faulty link closed: {len(proxy.faults)} faults logged, {proxy.counters}")
            if proxy.error is not None:
                raise HilError(f"the faulty-link proxy failed: {proxy.error!r}")
