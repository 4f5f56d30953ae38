"""Flashing an empty emulated Pico: `picodaq flash` (armv6m .mpy, SHA-256 verified
on the board), `flash --check`, `picodaq info`, unmodified mpremote, and the
flash persisting across a hard reset and a restart of the emulator."""

from __future__ import annotations

import json
from pathlib import Path

from rp2helpers import mpremote, picodaq

from picodaq import contracts as C
from picodaq.transport.link import Link


def test_an_empty_pico_is_flashed_with_armv6m_mpy_and_verified(flashed):
    rep = flashed.flash_report
    assert rep["ok"] and rep["target"] == "mpy v6.3 armv6m" and rep["fallback"] is None, rep
    assert "Raspberry Pi Pico with RP2040" in rep["device"]
    written = rep["written"]
    assert written[-1] == "picodaq_fw/manifest.json" and "main.py" in written  # the manifest goes last
    assert {w for w in written if w.endswith(".mpy")} >= {
        "picodaq_fw/app.mpy",
        "picodaq_fw/hal_rp2.mpy",
        "picodaq_fw/ring.mpy",
    }
    assert rep["unchanged"] == [] and rep["differences"] == [] and rep["retried"] == []
    hello = rep["hello"]
    assert hello["platform"] == "rp2" and hello["contract_hash"] == f"0x{C.CONTRACT_HASH:08X}"
    check = flashed.check_report  # every file's SHA-256 on the board against this firmware
    assert check["ok"] and check["written"] == [] and check["differences"] == [], check
    assert sorted(check["unchanged"]) == sorted(w for w in written if w != "picodaq_fw/manifest.json")
    info = flashed.info
    assert info["contract_ok"] and info["hello"]["board_id"] == hello["board_id"]
    # the sample ring takes the heap at boot (picodaq_fw/budget.py), a reserve is left
    assert (
        info["status"]["state"] == "idle" and info["status"]["free_heap"] > 10_000
    )  # what the ring leaves of the reserve (budget.py)
    assert info["hello"]["ring_bytes"] > 150_000
    assert "main.py" in flashed.ls and "picodaq_fw/" in flashed.ls and "picodaq_board.json" in flashed.ls
    print("template:", flashed.seconds)


def test_info_mpremote_and_the_flash_survives_resets(rp2040):
    board = rp2040()
    r = picodaq("info", "--port", board.port, "--json")
    assert r.returncode == 0, r.stderr
    hello = json.loads(r.stdout)
    assert board.board_id in json.dumps(hello), hello  # machine.unique_id(): this board's own
    r = mpremote("connect", board.port, "fs", "ls", ":picodaq_fw")
    assert r.returncode == 0 and "app.mpy" in r.stdout and "hal_rp2.mpy" in r.stdout, r.stdout + r.stderr
    r = mpremote("connect", board.port, "exec", "f=open('note.txt','w');f.write('kept');f.close()")
    assert r.returncode == 0, r.stderr
    board.hard_reset()
    with Link.open(board.port) as link:
        assert link.pump_until(lambda: link.receiver.hellos > 0, 30), "no HELLO after the hard reset"
    board.stop()
    board.start()  # a restart boots from the same flash
    r = mpremote("connect", board.port, "exec", "print(open('note.txt').read())")
    assert r.returncode == 0 and "kept" in r.stdout, r.stdout + r.stderr
    r = picodaq("flash", "--port", board.port, "--check", "--json")
    assert r.returncode == 0, r.stdout + r.stderr


def test_picodaq_emulate_chip_rp2040(flashed, tmp_path):
    """`picodaq emulate --chip rp2040` prints a port that picodaq and unmodified mpremote use."""
    import shutil
    import signal
    import subprocess
    import sys

    from picodaq.boards.rp2040 import FLASH_IMAGE

    folder = tmp_path / "pico"
    folder.mkdir()
    shutil.copyfile(flashed.image, folder / FLASH_IMAGE)
    p = subprocess.Popen(
        [sys.executable, "-m", "picodaq", "emulate", "--chip", "rp2040", "--flash", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = p.stdout.readline().strip()
        assert port == str(tmp_path / "pico.tty"), p.stderr.read() if p.poll() is not None else port
        r = picodaq("info", "--port", port, "--json")
        assert r.returncode == 0 and '"rp2"' in r.stdout, r.stderr
        r = mpremote("connect", port, "fs", "ls")
        assert r.returncode == 0 and "main.py" in r.stdout and "picodaq_board.json" in r.stdout, r.stderr
        r = picodaq("ports")
        assert port in r.stdout
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(60)  # a hang guard: on a loaded machine stopping the chip and its supervisor takes seconds
        except subprocess.TimeoutExpired:
            status = Path(f"/proc/{p.pid}/status").read_text()  # SigIgn/SigBlk: was Ctrl-C ignored?
            p.kill()
            p.wait()
            raise AssertionError(f"picodaq emulate did not stop within 60 s of Ctrl-C:\n{status}") from None
            p.wait()
    assert p.returncode == 0, p.stderr.read()
    assert not (tmp_path / "pico.tty").exists()
