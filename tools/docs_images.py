#!/usr/bin/env python3
"""Make the README's pictures: docs/live-view.png and docs/plot.png (`make docs-images`).

An emulated board records 6 channels of the sine source at 1 kHz with `picodaq record --view
--mark-on-key` on a pseudo-terminal; headless Chromium (the tests' DevTools driver, tests/browser.py)
opens the live view; marker 1 is sent, the board is reset mid-stream (a gap), marker 2 is sent, and
the page is captured. Then `picodaq plot` draws the recording's .bdf. Needs Debian's chromium.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import Chromium  # noqa: E402 -- the tests' DevTools driver
from picodaq.boards.unix import EmulatedBoard  # noqa: E402


def until(cond, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (v := cond()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("docs", type=Path, nargs="?", default=ROOT / "docs")
    a = ap.parse_args()
    work = ROOT / "build" / "docs"
    work.mkdir(parents=True, exist_ok=True)
    a.docs.mkdir(parents=True, exist_ok=True)
    bdf = work / "demo.bdf"
    with EmulatedBoard() as board:
        board.install_firmware()
        board.start()
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
        cmd = [sys.executable, "-m", "picodaq.cli.main", "record", "--port", board.port, "--channels", "6",
               "--rate", "1000", "--source", "sine", "--mark-on-key", "--view", "127.0.0.1:0",
               "--out", str(bdf), "--out", str(work / "demo.tlv")]  # fmt: skip
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        screen = bytearray()

        def read() -> None:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                screen.extend(chunk)

        threading.Thread(target=read, daemon=True).start()
        try:
            url = until(
                lambda: (m := re.search(rb"live view on (http://\S+/)", screen)) and m[1].decode(), what="the view"
            )
            with Chromium(work / "chromium") as browser:
                page = browser.open(url)
                seconds = "((window.picodaq.newest + 1) * window.picodaq.meta.bucket / window.picodaq.meta.rate)"
                page.wait_for(f"window.picodaq.meta && {seconds} > 2.2")
                os.write(master, b"1")
                page.wait_for(f"window.picodaq.markers.length === 1 && {seconds} > 3.5")
                board.hard_reset()
                page.wait_for("window.picodaq.gaps.length === 1", timeout=60)
                page.wait_for(f"{seconds} > window.picodaq.gaps[0].end + 1.2")
                os.write(master, b"2")
                page.wait_for(f"window.picodaq.markers.length === 2 && {seconds} > window.picodaq.gaps[0].end + 2.5")
                page.wait_for("window.picodaq.stats && window.picodaq.stats.link.rate > 0")
                page.screenshot(a.docs / "live-view.png")
                os.write(master, b"q")
                proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
    r = subprocess.run(
        [sys.executable, "-m", "picodaq.cli.main", "plot", str(bdf), "--out", str(a.docs / "plot.png")], text=True
    )
    if r.returncode:
        raise SystemExit(r.returncode)
    print(f"wrote {a.docs / 'live-view.png'} and {a.docs / 'plot.png'}")


if __name__ == "__main__":
    main()
