"""Fixtures for the rp2040 tier: MicroPython's real rp2 port on an emulated RP2040.

One image is flashed per test session: the first worker to get here starts an
empty board (a Pico fresh from the MicroPython uf2), runs `picodaq flash` on it,
adds the tests' picodaq_board.json (marker pin 15) with unmodified mpremote, and
keeps its flash image; every test then starts its boards from a copy of that
image (a file lock keeps pytest-xdist workers from flashing twice). Node.js
missing is a failure with the reason, never a skip.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from rp2helpers import BOARD_JSON, mpremote, picodaq, wait_for_firmware

from picodaq.boards.node import NodeUnavailable, ensure_rp2040js, find_node
from picodaq.boards.rp2040 import FLASH_IMAGE, Rp2040Board


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.rp2040)


@dataclass
class FlashedImage:
    image: Path  # the flash.bin every board starts from
    flash_report: dict  # `picodaq flash --json` on the empty board
    check_report: dict  # `picodaq flash --check --json` afterwards
    info: dict  # `picodaq info --json`
    ls: str  # `mpremote connect PORT fs ls`
    seconds: dict  # how long each step took (wall)


@pytest.fixture(scope="session")
def node_ready() -> None:
    try:
        ensure_rp2040js(find_node())
    except NodeUnavailable as e:
        pytest.fail(f"the rp2040 tier cannot run: {e}", pytrace=False)


def _shared_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker has its own basetemp inside the run's folder
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def flashed(tmp_path_factory, node_ready) -> FlashedImage:
    shared = _shared_dir(tmp_path_factory)
    d = shared / "rp2040-template"
    done = d / "done.json"
    with open(shared / "rp2040-template.lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not done.exists():
            _flash_template(d)
    rec = json.loads(done.read_text())
    return FlashedImage(image=d / "board" / FLASH_IMAGE, **rec)


def _flash_template(d: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    seconds = {}
    t0 = time.monotonic()
    with Rp2040Board(flash=d / "board") as board:
        board.start()
        seconds["start_blank"] = time.monotonic() - t0
        t0 = time.monotonic()
        r = picodaq("flash", "--port", board.port, "--json", "--timeout", "60")
        seconds["flash_empty"] = time.monotonic() - t0
        assert r.returncode == 0, r.stdout + r.stderr
        flash_report = json.loads(r.stdout)
        t0 = time.monotonic()
        r = picodaq("flash", "--port", board.port, "--check", "--json", "--timeout", "60")
        seconds["flash_check"] = time.monotonic() - t0
        assert r.returncode == 0, r.stdout + r.stderr
        check_report = json.loads(r.stdout)
        t0 = time.monotonic()
        r = picodaq("info", "--port", board.port, "--json")
        seconds["info"] = time.monotonic() - t0
        assert r.returncode == 0, r.stdout + r.stderr
        info = json.loads(r.stdout)
        cfg = d / "picodaq_board.json"
        cfg.write_text(json.dumps(BOARD_JSON))
        r = mpremote("connect", board.port, "fs", "cp", str(cfg), ":picodaq_board.json", "+", "fs", "ls")
        assert r.returncode == 0, r.stdout + r.stderr
        ls = r.stdout
    # stopped: the image is complete on disk
    (d / "done.json").write_text(
        json.dumps(
            {"flash_report": flash_report, "check_report": check_report, "info": info, "ls": ls, "seconds": seconds}
        )
    )


@pytest.fixture
def rp2040(tmp_path, flashed):
    """rp2040(fresh=False, ready=True, **Rp2040Board kwargs) -> a started board from a copy of the
    flashed image, its firmware answering (ready=False: just started; fresh=True: a Pico fresh
    from the MicroPython uf2; blank=True, Rp2040Board's: nothing in flash, in BOOTSEL)."""
    made: list[Rp2040Board] = []

    def make(fresh: bool = False, ready: bool = True, **kw) -> Rp2040Board:
        folder = tmp_path / f"board{len(made)}"
        folder.mkdir()
        empty = fresh or kw.get("blank", False)
        if not empty:
            shutil.copyfile(flashed.image, folder / FLASH_IMAGE)
        b = Rp2040Board(flash=folder, **kw)
        made.append(b)
        b.start()
        if ready and not empty:
            wait_for_firmware(b)
        return b

    yield make
    for b in made:
        b.stop()
