"""`picodaq flash` on the emulated board: the user's path from an empty board to
a verified, running firmware, and every error it promises to name clearly.

The emulated board is the MicroPython unix port behind a pty, flashed over its
raw REPL exactly as a Pico is; what these tests cannot show about a real board
is listed in the notes of picodaq.flash.flasher and picodaq.boards.unix.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import serial
from mpremote.transport_serial import SerialTransport

from picodaq import contracts as C
from picodaq.boards.unix import EmulatedBoard
from picodaq.core.blocks import ramp_counts
from picodaq.errors import DeviceError, LinkError
from picodaq.flash import (
    ARCHES,
    MANIFEST,
    BoardNotFound,
    DeviceInfo,
    FirmwareError,
    Flasher,
    NoHello,
    NotMicroPython,
    PortBusy,
    StorageFull,
    VerifyFailed,
    build_image,
    inert_command,
    mpy_cross_version,
)
from picodaq.flash.firmware import firmware_dir, firmware_files, firmware_version
from picodaq.protocol.decoder import FrameDecoder
from picodaq.transport.link import Link
from picodaq.transport.ports import attached_boards
from waiting import wait_for

MPREMOTE = str(Path(sys.executable).with_name("mpremote"))


# -- helpers ------------------------------------------------------------------------


@pytest.fixture
def boards():
    """boards(**kw) -> a started, empty EmulatedBoard, stopped after the test."""
    made: list[EmulatedBoard] = []

    def make(**kw) -> EmulatedBoard:
        b = EmulatedBoard(**kw)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def firmware(tmp_path) -> Path:
    """A copy of the firmware folder this test may edit."""
    dst = tmp_path / "firmware"
    shutil.copytree(firmware_dir(), dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def picodaq(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "picodaq.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(os.environ, **env),
    )


def one_clear_line(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    last = [line for line in r.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("picodaq: "), r.stderr
    for w in words:
        assert w in last, last
    return last


def flash_folder_files(flash: Path) -> dict[str, str]:
    """Every file in an emulated board's flash folder with its SHA-256, read on the host."""
    return {
        p.relative_to(flash).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(flash.rglob("*"))
        if p.is_file()
    }


def assert_board_holds_exactly(board: EmulatedBoard, image) -> dict:
    """The flash folder holds the image and its manifest, nothing else, and the
    manifest names every file with the hash the host computes independently."""
    on_board = flash_folder_files(board.flash)
    manifest = json.loads((board.flash / MANIFEST).read_text())
    del on_board[MANIFEST]
    assert manifest["files"] == on_board
    assert on_board == {f.path: hashlib.sha256(f.data).hexdigest() for f in image.files}
    assert manifest["firmware_version"] == firmware_version()
    assert manifest["contract_hash"] == f"0x{C.CONTRACT_HASH:08X}"
    assert manifest["protocol_version"] == C.PROTOCOL_VERSION
    return manifest


def stream_ramp(port: str, blocks: int = 200) -> int:
    """Stream from the board and check every sample against the ramp; returns instants."""
    with Link.open(port) as link:
        assert link.get_info().contract_hash == C.CONTRACT_HASH
        link.configure(20_000, 0xF, C.SRC_RAMP, C.FMT_INT16, 64)
        got, bad = [], []

        def check(block):
            got.append(block.n_samples)
            if not np.array_equal(block.counts, ramp_counts(block.first_index, block.n_samples, 4, C.FMT_INT16)):
                bad.append(block.first_index)

        link.receiver.block_handlers.append(check)
        link.start()
        assert link.pump_until(lambda: len(got) >= blocks, 30), f"only {len(got)} blocks"
        final = link.stop()
        assert bad == [] and final.last_error == C.ST_OK
        s = link.receiver.stats
        assert s.crc_errors == s.samples_lost == s.seq_lost == s.decode_errors == 0
        return s.samples


def board_listing(port: str, folder: str = "picodaq_fw") -> list[str]:
    """Names in a folder of the board, read over its raw REPL (leaves the board in its REPL)."""
    t = SerialTransport(port, exclusive=True, timeout=10)
    try:
        t.enter_raw_repl(soft_reset=False)
        try:
            return sorted(e.name for e in t.fs_listdir(folder))
        except OSError:
            return []
    finally:
        t.exit_raw_repl()
        t.close()


# -- the user's path ------------------------------------------------------------------


def test_flash_an_empty_board_stream_then_reflash_only_a_changed_file(boards, firmware):
    board = boards(unpaced=True)
    assert not any(board.flash.iterdir()), "an emulated board starts empty"
    events = []
    first = Flasher(board.port, events.append, firmware=firmware, hello_timeout=30).flash()

    image_paths = [f.path for f in first.image.files]
    assert first.image.target == f"mpy v6.3 {ARCHES[2]}" and first.image.fallback is None
    assert sorted(first.written) == sorted(image_paths + [MANIFEST]) and first.unchanged == []
    assert first.written[-2:] == ["main.py", MANIFEST]  # main.py after its package, the manifest last
    assert all(p == "main.py" or p.endswith(".mpy") for p in image_paths)
    assert first.hello is not None and first.hello.contract_hash == C.CONTRACT_HASH
    # progress per file: bytes as they go, then the verified file
    for path in image_paths + [MANIFEST]:
        writes = [e for e in events if e.kind == "write" and e.path == path]
        assert writes[0].done == 0 and writes[-1].done == writes[-1].total > 0
    assert [e.path for e in events if e.kind == "verified"] == first.written
    assert_board_holds_exactly(board, first.image)
    assert stream_ramp(board.port) >= 200 * 64

    ring = firmware / "picodaq_fw" / "ring.py"
    ring.write_text(ring.read_text() + "\nFLASH_TEST_BUILD = 2  # a changed module\n")
    events.clear()
    second = Flasher(board.port, events.append, firmware=firmware, hello_timeout=30).flash()
    assert second.written == ["picodaq_fw/ring.mpy", MANIFEST]
    assert sorted(second.unchanged) == sorted(p for p in image_paths if p != "picodaq_fw/ring.mpy")
    assert [e.path for e in events if e.kind == "write" and e.done == 0] == ["picodaq_fw/ring.mpy", MANIFEST]
    manifest = assert_board_holds_exactly(board, second.image)
    assert (
        manifest["files"]["picodaq_fw/ring.mpy"]
        != json.loads(first.image.manifest_file().data)["files"]["picodaq_fw/ring.mpy"]
    )
    assert second.hello is not None
    assert stream_ramp(board.port) >= 200 * 64

    third = Flasher(board.port, firmware=firmware, hello_timeout=30).flash()
    assert third.written == [] and third.removed == [] and third.bytes_written == 0  # the fast re-flash
    assert third.hello is not None


def test_the_flasher_sends_the_device_files_as_they_are_and_calls_them_with_literals(boards):
    """What runs on the board is picodaq/flash/device/ verbatim: no code is formatted into a
    template; every other exchange of the flasher calls a function by name with literal arguments
    (mpremote's own file transfer aside)."""
    import ast

    from picodaq.flash.flasher import device_code

    sent: list[str] = []

    class Recording(SerialTransport):
        def exec(self, command, *a, **kw):
            sent.append(command.decode() if isinstance(command, bytes) else command)
            return super().exec(command, *a, **kw)

    board = boards()
    Flasher(board.port, transport_class=Recording).flash()
    helpers = device_code("helpers.py")
    assert sent.count(helpers) == 1
    defined = {n.name for n in ast.parse(helpers).body if isinstance(n, ast.FunctionDef)}
    called = set()
    for code in sent:
        if code == helpers or "_pd_" not in code and not code.startswith("os."):
            continue  # the helpers, or mpremote's fs_writefile (f=open(...), w(...), f.close())
        (stmt,) = ast.parse(code).body
        assert isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call), code
        for arg in stmt.value.args:
            ast.literal_eval(arg)  # data, not code
        called.add(ast.unparse(stmt.value.func))
    assert called - {"os.remove", "os.mkdir"} <= defined
    assert {"_pd_probe", "_pd_hashes", "_pd_rename", "os.mkdir"} <= called


def test_a_board_left_streaming_is_stopped_then_flashed(boards):
    board = boards(unpaced=True)
    Flasher(board.port, hello_timeout=30).flash()
    link = Link.open(board.port)
    link.configure(50_000, 0xFF, C.SRC_RAMP, C.FMT_INT16, 64)
    link.start()
    assert link.pump_until(lambda: link.receiver.stats.samples > 50_000, 30)
    link.close()  # a recorder that died without STOP: the board streams on, flat out
    events = []
    report = Flasher(board.port, events.append, hello_timeout=30).flash()
    assert report.written == [] and report.hello is not None
    assert stream_ramp(board.port, blocks=20) > 0  # and it streams again from a clean start


def test_the_mpremote_command_line_lists_and_reads_a_flashed_board(boards, tmp_path):
    board = boards()
    report = Flasher(board.port, hello_timeout=30).flash()

    def mpremote(*args: str) -> str:
        r = subprocess.run([MPREMOTE, "connect", board.port, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    listing = mpremote("ls", ":picodaq_fw")
    for f in report.image.files:
        if f.path.startswith("picodaq_fw/"):
            assert f.path.split("/")[1] in listing
    assert json.loads(mpremote("cat", ":" + MANIFEST)) == report.image.manifest()
    mpremote("cp", ":main.py", str(tmp_path / "main.py"), "+", "cp", ":picodaq_fw/app.mpy", str(tmp_path / "app.mpy"))
    assert (tmp_path / "main.py").read_bytes() == (firmware_dir() / "main.py").read_bytes()
    app = next(f for f in report.image.files if f.path == "picodaq_fw/app.mpy")
    assert (tmp_path / "app.mpy").read_bytes() == app.data
    # mpremote leaves a board in its REPL; flashing again brings the firmware back, writing nothing
    again = Flasher(board.port, hello_timeout=30).flash()
    assert again.written == [] and again.hello is not None


def test_stale_twins_and_leftovers_are_removed_so_the_new_modules_run(boards):
    board = boards()
    board.install_firmware()  # an older deployment as .py sources ...
    (board.flash / "picodaq_fw" / "ring.py").write_text("raise ImportError('the stale ring.py was imported')\n")
    (board.flash / "picodaq_fw" / "old_module.mpy").write_bytes(b"M\x06\x00\x1f")
    (board.flash / "picodaq_fw" / "app.mpy.part").write_bytes(b"half a copy")
    (board.flash / "data.csv").write_text("the user's own file\n")
    events = []
    report = Flasher(board.port, events.append, hello_timeout=30).flash()
    removed = {e.path: e.text for e in events if e.kind == "remove"}
    assert removed["picodaq_fw/ring.py"].startswith("stale .py twin")
    assert removed["picodaq_fw/old_module.mpy"] == "not part of this firmware"
    assert removed["picodaq_fw/app.mpy.part"] == "left over from an interrupted copy"
    assert len([p for p in removed if p.endswith(".py")]) == len(firmware_files()) - 1  # every source twin
    assert report.hello is not None  # the stale ring.py would have stopped the boot
    assert (board.flash / "data.csv").read_text() == "the user's own file\n"  # outside picodaq_fw: untouched
    on_board = flash_folder_files(board.flash)
    del on_board["data.csv"]
    assert sorted(on_board) == sorted([f.path for f in report.image.files] + [MANIFEST])


def test_check_names_a_corrupted_file_and_flash_repairs_only_it(boards):
    board = boards()
    Flasher(board.port, hello_timeout=30).flash()
    ok = Flasher(board.port, hello_timeout=30).check()
    assert ok.ok and ok.differences == [] and ok.hello is not None and ok.written == []

    # hal_rp2 is never imported on the unix port: a flipped bit there cannot make the running
    # firmware misbehave (a corrupted module it does run may spin and ignore Ctrl-C)
    app = board.flash / "picodaq_fw" / "hal_rp2.mpy"
    data = bytearray(app.read_bytes())
    data[len(data) // 2] ^= 0x10  # one flipped bit in the board's flash
    app.write_bytes(data)
    r = picodaq("flash", "--check", "--port", board.port)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "differs    picodaq_fw/hal_rp2.mpy (changed)" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("picodaq: the board's files differ")
    assert bytes(data) == app.read_bytes()  # --check wrote nothing

    events = []
    fixed = Flasher(board.port, events.append, hello_timeout=30).flash()
    assert fixed.written == ["picodaq_fw/hal_rp2.mpy", MANIFEST] and fixed.hello is not None
    assert [e.path for e in events if e.kind == "verified"] == fixed.written


def test_force_copies_every_file_again(boards):
    board = boards()
    first = Flasher(board.port, hello_timeout=30).flash()
    forced = Flasher(board.port, hello_timeout=30).flash(force=True)
    assert sorted(forced.written) == sorted(first.written) and forced.unchanged == []
    assert forced.hello is not None


def test_flash_on_the_command_line_shows_each_file(boards):
    board = boards()
    r = picodaq("flash", "--port", board.port)
    assert r.returncode == 0, r.stderr
    for f in firmware_files():
        name = f[0] if f[0] == "main.py" else f[0][:-3] + ".mpy"
        assert f"copied     {name}  (" in r.stderr, r.stderr
    assert "SHA-256 verified on the board" in r.stderr
    assert "HELLO from linux board" in r.stderr and "(matches)" in r.stderr
    assert "" not in r.stderr.splitlines()  # off a terminal, no progress bar leaves an empty line
    assert r.stdout.startswith(f"flashed picodaq {firmware_version()} (mpy v6.3 x64")
    r = picodaq("flash", "--port", board.port, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] and report["written"] == [] and report["hello"]["contract_hash"] == f"0x{C.CONTRACT_HASH:08X}"


def test_a_littlefs_flash_of_a_pico_size_is_flashed_and_boots(boards):
    board = boards(flash_size=848 * 1024)  # rp2's default filesystem size
    report = Flasher(board.port, hello_timeout=30).flash()
    assert report.device.total_bytes == 848 * 1024 and report.device.block_size == 4096
    assert report.hello is not None
    assert stream_ramp(board.port, blocks=50) > 0
    assert Flasher(board.port, hello_timeout=30).flash().written == []


# -- building the image --------------------------------------------------------------------


def device(mpy: int | None, release: str = "1.24.1") -> DeviceInfo:
    return DeviceInfo(
        "micropython", (1, 24, 1), release, mpy, "rp2", "Raspberry Pi Pico with RP2040", 800_000, 848 * 1024, 4096, True
    )


@pytest.mark.parametrize("arch", ["armv6m", "armv7emsp", "x64"])  # RP2040, RP2350, the unix port
def test_every_module_compiles_for_the_boards_architecture(arch):
    _, (v, s) = mpy_cross_version()
    image = build_image(device(v | s << 8 | ARCHES.index(arch) << 10))
    assert image.target == f"mpy v{v}.{s} {arch}"
    mpys = {f.path: f.data for f in image.files if f.path.endswith(".mpy")}
    assert len(mpys) == len(firmware_files()) - 1
    for path, data in mpys.items():
        assert data[:2] == bytes([ord("M"), v]), path
    # the viper modules carry native code for exactly this architecture
    for viper in ("picodaq_fw/crc32.mpy", "picodaq_fw/sources.mpy"):
        assert mpys[viper][2] >> 2 == ARCHES.index(arch) and mpys[viper][2] & 3 == s


@pytest.mark.parametrize(
    "mpy,why",
    [
        (6 | 1 << 8 | 4 << 10, "loads .mpy v6.1"),  # MicroPython 1.20-1.21 on an RP2040
        (None, "does not report its .mpy format"),
    ],
)
def test_sources_go_as_py_when_the_board_cannot_load_the_mpy(mpy, why):
    image = build_image(device(mpy, "1.20.0"))
    assert image.target == "py" and why in image.fallback
    assert [f.path for f in image.files] == [rel for rel, _ in firmware_files()]
    assert all(f.data == src.read_bytes() for f, (_, src) in zip(image.files, firmware_files()))


def test_firmware_from_another_contract_is_refused_before_connecting(firmware, tmp_path):
    contracts = firmware / "picodaq_fw" / "contracts.py"
    text = re.sub(
        r"^CONTRACT_HASH_LE = .*$",
        lambda _: "CONTRACT_HASH_LE = b'\\x01\\x02\\x03\\x04'",
        contracts.read_text(),
        flags=re.M,
    )
    contracts.write_text(text)
    with pytest.raises(FirmwareError, match="another contracts.toml.*make codegen"):
        Flasher(str(tmp_path / "no-such-port"), firmware=firmware).flash()


def test_inert_commands_are_frames_to_the_firmware_and_nothing_to_a_repl():
    for op in (C.OP_STOP, C.OP_GET_INFO):
        frame = inert_command(op)
        d = FrameDecoder()
        d.feed(frame)
        got = list(d)
        assert len(got) == 1 and got[0].type == C.MSG_COMMAND and got[0].payload[0] == op
        assert not set(frame) & {0x03, 0x0A, 0x0D, 0x1B}


def test_an_inert_command_does_nothing_in_a_friendly_repl(boards):
    """The flasher's STOP goes out before it knows what runs on the board: a REPL
    that reads it must execute nothing, even with a line in its history."""
    board = boards()
    with serial.serial_for_url(board.port, timeout=5) as port:

        def until(marker: bytes) -> bytes:
            seen = b""
            while marker not in seen:
                chunk = port.read(1)
                assert chunk, f"no {marker!r} in {seen!r}"
                seen += chunk
            return seen

        port.write(b"\r")
        until(b">>> ")
        port.write(b"n = 0\r")
        until(b">>> ")
        port.write(b"n += 1\r")  # in the history: Ctrl-P (in every COMMAND header) recalls it
        until(b">>> ")
        port.write(b"\x03" + inert_command(C.OP_STOP) + b"\x03" + inert_command(C.OP_GET_INFO) + b"\x03")
        port.write(b"print('n is', n)\r")
        assert b"n is 1" in until(b"n is ") + until(b"\n")


# -- errors: each a clear message ---------------------------------------------------------


def test_no_board_found(tmp_path):
    if attached_boards():
        pytest.skip("a real board is attached: `picodaq flash` without --port would flash it")
    r = picodaq("flash", env={"XDG_RUNTIME_DIR": str(tmp_path)})  # no emulated boards registered here
    one_clear_line(r, "no board found", "--port")
    with pytest.raises(BoardNotFound, match="no such port"):
        Flasher(str(tmp_path / "ttyACM9")).flash()


def test_micropython_onto_a_unix_port_board_is_refused_and_the_board_stays_usable(boards):
    """The unix port has no boot ROM: `flash --micropython` says so at once (it waited 30 s for a BOOTSEL
    drive that could never come), writes nothing and leaves the board's REPL as it found it."""
    board = boards()
    Flasher(board.port).flash()
    before = flash_folder_files(board.flash)
    image = Path(__file__).resolve().parents[2] / "host/picodaq/boards/images/RPI_PICO-v1.28.0.uf2"
    r = picodaq("flash", "--port", board.port, "--micropython", str(image), "--timeout", "60")
    one_clear_line(r, board.port, "linux port", "no BOOTSEL", "emulate --chip rp2040 --blank")
    assert flash_folder_files(board.flash) == before
    assert stream_ramp(board.port) > 0


def test_a_busy_port_is_named(boards):
    board = boards()
    with Link.open(board.port):  # e.g. a `picodaq record` running
        with pytest.raises(PortBusy, match="busy"):
            Flasher(board.port).flash()
        one_clear_line(picodaq("flash", "--port", board.port), "is busy", board.port)


class _ChattyDevice:
    """A pty whose far end is not MicroPython: it answers every byte with a line."""

    def __init__(self, answer: bytes | None) -> None:
        self.master, self.slave = pty.openpty()  # the slave stays open: the device is always there
        import tty

        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.answer = answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select

        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                os.read(self.master, 4096)
                if self.answer:
                    os.write(self.master, self.answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.parametrize("answer", [None, b"AT OK\r\n"])
def test_a_device_without_micropython_is_named(answer):
    dev = _ChattyDevice(answer)
    try:
        with pytest.raises(NotMicroPython, match="no MicroPython raw REPL answered") as e:
            Flasher(dev.port, timeout=1).flash()
        if answer:
            assert "it said" in str(e.value) and "AT OK" in str(e.value)
        one_clear_line(picodaq("flash", "--port", dev.port, "--timeout", "1"), "running MicroPython")
    finally:
        dev.close()


def test_a_board_that_never_falls_silent_is_named():
    """mpremote empties the input before entering the raw REPL for as long as
    bytes come: the flasher must give up with a reason, not hang. (A real board's
    Ctrl-C would stop this main.py; the emulated board cannot interrupt a program
    that never reads its input: see picodaq.boards.unix.)"""
    with EmulatedBoard() as board:
        (board.flash / "main.py").write_text("import time\nwhile True:\n    print('tick')\n    time.sleep(0.01)\n")
        board.start()
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="keeps sending after STOP and Ctrl-C.*'tick'"):
            Flasher(board.port, timeout=1).flash()
        assert time.monotonic() - t0 < 60  # a hang guard: it gave up (the reason is the oracle), never hung


def test_a_board_that_starts_talking_after_a_lull_is_named():
    """Silent when the flasher first listens, then never silent again (what a board starved on a
    loaded machine looks like to the first check): the failed try for the raw REPL is followed by
    another check, which names the board that keeps sending, not a board without MicroPython."""
    with EmulatedBoard() as board:
        (board.flash / "main.py").write_text(
            "import time\ntime.sleep(0.8)\nwhile True:\n    print('tick')\n    time.sleep(0.01)\n"
        )
        board.start()
        with pytest.raises(DeviceError, match="keeps sending after STOP and Ctrl-C.*'tick'"):
            Flasher(board.port, timeout=1).flash()


def test_storage_full_is_refused_before_anything_is_written(boards):
    board = boards(flash_size=48 * 1024)
    with pytest.raises(StorageFull, match="device storage full") as e:
        Flasher(board.port).flash()
    assert e.value.needed > e.value.free
    assert board_listing(board.port, "") == []  # the board's flash is as it was
    one_clear_line(picodaq("flash", "--port", board.port), "device storage full", "only")


class _FillsUpTransport(SerialTransport):
    """Something else on the board (a data logger, say) takes the free space just
    as the flasher starts copying: littlefs then refuses the write itself."""

    def fs_writefile(self, dest, data, chunk_size=256, progress_callback=None):
        if not getattr(self, "filled", False):
            self.filled = True
            # each block flushed, so littlefs commits it: the space stays taken
            self.exec(
                "f = open('logger.dat', 'wb')\ntry:\n while True:\n  f.write(b'x' * 4096)\n  f.flush()\n"
                "except OSError:\n pass\nf.close()"
            )
        return super().fs_writefile(dest, data, chunk_size, progress_callback)


def test_storage_filling_up_during_the_copy_is_named(boards):
    board = boards(flash_size=128 * 1024)
    with pytest.raises(StorageFull, match="ran out of space writing picodaq_fw/") as e:
        Flasher(board.port, transport_class=_FillsUpTransport).flash()
    assert f"writing {e.value.path} " in str(e.value) and e.value.path.endswith(".mpy")
    assert not [n for n in board_listing(board.port) if n.endswith(".part")]  # the partial copy is gone


def _corrupting(times: int, path: str) -> type[SerialTransport]:
    class Corrupting(SerialTransport):
        """Flips one bit of a file's data on the way to the board, `times` times."""

        left = times

        def fs_writefile(self, dest, data, chunk_size=256, progress_callback=None):
            if dest.startswith(path) and Corrupting.left:
                Corrupting.left -= 1
                data = bytearray(data)
                data[len(data) // 2] ^= 0x04
                data = bytes(data)
            return super().fs_writefile(dest, data, chunk_size, progress_callback)

    return Corrupting


def test_a_corrupted_copy_is_caught_by_its_hash_and_copied_again(boards):
    board = boards()
    events = []
    report = Flasher(
        board.port, events.append, hello_timeout=30, transport_class=_corrupting(1, "picodaq_fw/framer.mpy")
    ).flash()
    assert report.retried == ["picodaq_fw/framer.mpy"] and report.hello is not None
    assert [e.path for e in events if e.kind == "retry"] == ["picodaq_fw/framer.mpy"]
    assert_board_holds_exactly(board, report.image)


def test_a_copy_corrupted_twice_fails_naming_the_file(boards):
    board = boards()
    with pytest.raises(VerifyFailed, match="picodaq_fw/framer.mpy") as e:
        Flasher(board.port, transport_class=_corrupting(2, "picodaq_fw/framer.mpy")).flash()
    assert e.value.path == "picodaq_fw/framer.mpy" and e.value.actual != e.value.expected
    assert not (board.flash / MANIFEST).exists()  # the deployment is marked incomplete


@pytest.mark.parametrize(
    "main,said",
    [
        ("", "main.py ended without starting the firmware (the board sits in its REPL); it printed nothing"),
        ("print('waiting for the sensor')\n", "REPL); its last words: 'waiting for the sensor'"),
        (
            "raise RuntimeError('the sampler is unplugged')\n",
            "its last words: 'RuntimeError: the sampler is unplugged'",
        ),
    ],
)
def test_a_firmware_that_never_says_hello_is_named(boards, firmware, main, said):
    (firmware / "main.py").write_text(main)
    board = boards()
    with pytest.raises(NoHello, match="never said HELLO within 2 s") as e:
        Flasher(board.port, firmware=firmware, hello_timeout=2).flash()
    assert said in str(e.value)
    # and the next flash still reaches the board's REPL
    (firmware / "main.py").write_bytes((firmware_dir() / "main.py").read_bytes())
    assert Flasher(board.port, firmware=firmware, hello_timeout=30).flash().hello is not None


def test_emulate_flashes_its_board_unless_asked_for_an_empty_one(tmp_path):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))  # its own registry of emulated boards

    def emulate(*args: str, sigint_ignored: bool = False) -> tuple[subprocess.Popen, str]:
        p = subprocess.Popen(
            [sys.executable, "-m", "picodaq.cli.main", "emulate", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            # as a script's `picodaq emulate &` starts: SIGINT ignored, and still `kill -INT` stops it
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
        )
        return p, p.stdout.readline().strip()

    def stop(p: subprocess.Popen, port: str, sig: int = signal.SIGTERM) -> None:
        p.send_signal(sig)  # SIGTERM stops the board as Ctrl-C does
        assert p.wait(60) == 0
        p.stdout.close()
        p.stderr.close()
        assert not os.path.exists(port)

    p, port = emulate("--flash", str(tmp_path / "flashed"))
    try:
        assert json.loads((tmp_path / "flashed" / MANIFEST).read_text())["firmware_version"] == firmware_version()
        r = picodaq("info", "--port", port)
        assert r.returncode == 0 and "(matches this host)" in r.stdout, r.stderr
    finally:
        stop(p, port)

    p, port = emulate("--empty", "--flash", str(tmp_path / "empty"), sigint_ignored=True)
    try:
        assert os.listdir(tmp_path / "empty") == []
        if attached_boards():
            pytest.skip("a real board is attached: `picodaq flash` without --port would pick it first")
        r = picodaq("flash", env={"XDG_RUNTIME_DIR": str(tmp_path)})  # no --port: the one emulated board
        assert r.returncode == 0, r.stderr
        assert f"flashing the emulated board on {port}" in r.stderr
        assert (tmp_path / "empty" / MANIFEST).exists()
    finally:
        stop(p, port, signal.SIGINT)


def test_an_unplug_while_copying_is_named_and_the_next_flash_completes(boards):
    board = boards(unplug_seconds=0.5)

    before = _identity(board.port)

    def unplug_during_app(ev):
        if ev.kind == "write" and ev.path == "picodaq_fw/app.mpy" and ev.done == 0:
            board.unplug()
            # the port is taken away (the open one fails from now on), however soon it comes back
            wait_for(lambda: _identity(board.port) != before, 60, what="the unplug to take the port")

    t0 = time.monotonic()
    with pytest.raises(LinkError, match=f"lost the board on {board.port} while flashing"):
        Flasher(board.port, unplug_during_app).flash()
    assert time.monotonic() - t0 < 60  # a hang guard: it noticed, it did not wait out some long timeout
    wait_for(lambda: _identity(board.port) not in (None, before), 60, what="the port to come back")
    report = Flasher(board.port, hello_timeout=30).flash()
    assert "picodaq_fw/app.mpy" in report.written and MANIFEST in report.written
    assert report.hello is not None
    assert_board_holds_exactly(board, report.image)


def test_a_port_failing_in_a_tty_call_while_flashing_is_a_link_error_naming_why(boards, monkeypatch):
    """pyserial's flush() raises termios.error (neither OSError nor SerialException) when the port
    goes away under tcdrain: the user reads why, not a traceback."""
    board = boards()

    def port_gone(self, t) -> None:
        raise termios.error(5, "Input/output error")

    monkeypatch.setattr(Flasher, "_soft_reset", port_gone)
    with pytest.raises(LinkError, match=f"lost the board on {board.port} while flashing: Input/output error$"):
        Flasher(board.port).flash()


def _identity(path: str) -> tuple[int, int] | None:
    """The port as a file (the symlink itself): a port made again is another one, even at the same path."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_ctime_ns
