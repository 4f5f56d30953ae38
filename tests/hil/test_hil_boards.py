"""Board selection, leases, re-enumeration by serial number, and flashing only what differs."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from picodaq.flash.firmware import REPL_ESCAPE, REPL_ESCAPE_PAUSE
from picodaq.transport.ports import PortInfo
from picodaq_hil.boards.board import Board
from picodaq_hil.boards.flashing import ensure_firmware
from picodaq_hil.boards.leases import Lease
from picodaq_hil.boards.selection import (
    EMULATED,
    HARDWARE,
    BoardChoice,
    choose_boards,
    describe_selection,
    find_port_by_serial,
)
from picodaq_hil.errors import BoardLost, LeaseTimeout, NoBoardError

PICO = PortInfo("/dev/ttyACM0", "Board in FS mode", True, "E6614C311B7A1234")
PICO2 = PortInfo("/dev/ttyACM1", "Board in FS mode", True, "E6614C311B7A9999")
OTHER = PortInfo("/dev/ttyUSB0", "CP2102", False, "0001")


def test_selection_order():
    # PICODAQ_PORT wins, one or several
    c = choose_boards({"PICODAQ_PORT": "/dev/ttyACM0"}, ports=[PICO, PICO2])
    assert [(x.kind, x.port, x.serial_number) for x in c] == [(HARDWARE, "/dev/ttyACM0", PICO.serial_number)]
    assert "PICODAQ_PORT" in c[0].reason and c[0].key == f"usb-{PICO.serial_number}"
    c = choose_boards({"PICODAQ_PORT": "/dev/ttyACM0, /dev/ttyACM1"}, ports=[PICO, PICO2])
    assert [x.port for x in c] == ["/dev/ttyACM0", "/dev/ttyACM1"]
    assert choose_boards({}, port="/dev/ttyX", ports=[])[0].reason.startswith("--picodaq-port")
    # else the one board found by USB id
    c = choose_boards({}, ports=[OTHER, PICO])
    assert (c[0].kind, c[0].port) == (HARDWARE, "/dev/ttyACM0") and "USB id 0x2E8A" in c[0].reason
    # never a guess between boards, never an emulator while boards are attached
    with pytest.raises(NoBoardError, match="2 boards attached.*PICODAQ_PORT"):
        choose_boards({}, ports=[PICO, PICO2])
    # else the emulator, said so
    c = choose_boards({}, ports=[OTHER])
    assert c[0].kind == EMULATED and "emulator fallback" in c[0].reason
    # unless hardware is required
    with pytest.raises(NoBoardError, match="PICODAQ_REQUIRE_HARDWARE=1.*refusing"):
        choose_boards({"PICODAQ_REQUIRE_HARDWARE": "1"}, ports=[OTHER])
    assert choose_boards({"PICODAQ_REQUIRE_HARDWARE": "1"}, ports=[PICO])[0].kind == HARDWARE


def test_describe_selection_never_raises(monkeypatch):
    monkeypatch.setenv("PICODAQ_REQUIRE_HARDWARE", "1")
    monkeypatch.delenv("PICODAQ_PORT", raising=False)
    monkeypatch.setattr("picodaq_hil.boards.selection.serial_ports", lambda: [])
    assert describe_selection().startswith("no usable board: PICODAQ_REQUIRE_HARDWARE=1")
    monkeypatch.setenv("PICODAQ_PORT", "/dev/ttyACM7")
    assert describe_selection() == "hardware on /dev/ttyACM7 (PICODAQ_PORT=/dev/ttyACM7)"
    monkeypatch.setenv("PICODAQ_PORT", " , ")  # set, yet naming nothing: no empty pool to wait on forever
    assert describe_selection().startswith("no usable board: PICODAQ_PORT=' , ' names no port")
    with pytest.raises(NoBoardError, match="--picodaq-port=',' names no port"):
        choose_boards({}, port=",", ports=[PICO])


def test_a_board_that_re_enumerates_is_found_by_serial_number():
    calls = []

    def listing():
        calls.append(1)
        if len(calls) < 3:  # gone for a while after its reset
            return [OTHER]
        return [OTHER, PortInfo(__file__, "Board in FS mode", True, PICO.serial_number)]  # a new device name

    assert find_port_by_serial(PICO.serial_number, timeout=5, poll=0.01, list_ports=listing) == __file__
    assert len(calls) == 3
    with pytest.raises(BoardLost, match="did not come back"):
        find_port_by_serial("NOPE", timeout=0.05, poll=0.01, list_ports=lambda: [PICO])


HOLD = """
import sys
from pathlib import Path
from picodaq_hil.boards.leases import Lease
lease = Lease(sys.argv[1], holder="worker gw7: test_holding", directory=Path(sys.argv[2])).acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_leases_keep_workers_apart(tmp_path):
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, "usb-E661", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "held"
        mine = Lease("usb-E661", holder="me", directory=tmp_path, timeout=0.3, poll=0.02)
        assert not mine.try_acquire()
        t = time.monotonic()
        with pytest.raises(LeaseTimeout, match="still leased by worker gw7: test_holding"):
            mine.acquire()
        assert time.monotonic() - t >= 0.3
        assert Lease("usb-OTHER", directory=tmp_path).try_acquire()  # another board is free
    finally:
        other.stdin.close()  # the holder exits: the kernel drops its lock, however it ended
        other.wait(10)
    mine.timeout = 5
    with mine:
        assert mine.held and mine.current_holder() == "me"
    assert not mine.held


@pytest.fixture
def emulated():
    b = Board(BoardChoice(EMULATED, "test"), log_root="/nonexistent-unused")
    b.acquire()
    yield b
    b.shutdown()


def test_flashing_writes_only_when_hashes_differ(emulated):
    """Through `picodaq flash`'s engine: everything on an empty board, nothing when the manifest's
    hashes match, and only the file that differs after one was damaged."""
    first = ensure_firmware(emulated)
    assert first.flashed and len(first.written) == first.files and first.report.hello is not None
    again = ensure_firmware(emulated)
    assert not again.flashed and not again.written and "up to date" in str(again)
    victim = sorted((emulated.emulator.flash / "picodaq_fw").glob("ring.*"))[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    fixed = ensure_firmware(emulated)
    assert fixed.written == [f"picodaq_fw/{victim.name}", "picodaq_fw/manifest.json"]  # the manifest goes last
    assert not ensure_firmware(emulated).flashed


def test_board_flash_leaves_it_synced(emulated):
    r = emulated.flash()
    assert r.flashed and emulated.hello is not None and emulated.link.ping().status == 0
    assert not emulated.flash().flashed and emulated.link.get_status().state == 0


def test_soft_reset_recovers_from_a_raw_repl_and_a_stream(emulated):
    emulated.flash()
    link = emulated.link
    said = bytearray()
    link.raw_taps.append(said.extend)
    emulated.drain(quiet=REPL_ESCAPE_PAUSE)  # the escape counts after a pause
    link.write(REPL_ESCAPE + b"\x01")  # leave the app, enter the raw REPL (as a crashed flashing tool would)
    assert link.pump_until(lambda: b"raw REPL; CTRL-B to exit\r\n>" in said, 30), bytes(said)
    link.raw_taps.remove(said.extend)
    hello = emulated.soft_reset()
    assert hello.contract_hash == link.get_info().contract_hash
    link.configure(16000, 0xFF, 0, 1, 64)
    link.start()
    hello = emulated.soft_reset()  # streaming: STOP first, then the REPL, then reboot
    assert emulated.link.get_status().state == 0
    assert emulated.link.receiver.stats.samples == 0
    assert emulated.hard_resets == 0 and emulated.soft_resets == 2  # no fallback was needed
