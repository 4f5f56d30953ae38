"""Headless Chromium for tests, driven over the Chrome DevTools Protocol on a pipe (no port, no
WebSocket library, no npm): `--remote-debugging-pipe` reads JSON commands on fd 3 and writes
replies and events on fd 4, each message ended by a NUL byte.

    with Chromium(tmp_path / "profile") as browser:
        page = browser.open("http://127.0.0.1:8080/")
        page.wait_for("window.picodaq && window.picodaq.status === 'live'")
        state = page.evaluate("window.picodaq.drawn")
        page.screenshot(tmp_path / "page.png")

Which Chromium: PICODAQ_CHROMIUM, else Debian's /usr/bin/chromium. When there is none, `need_chromium()`
fails the test with that message: the browser test never skips in silence (`make test` installs
the package when it runs as root).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,800",
)
# fd 3 and 4 in the child are where Chromium expects the pipe: a tiny exec wrapper puts them there
_EXEC_WITH_PIPES = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
)


def chromium_path() -> str | None:
    p = os.environ.get("PICODAQ_CHROMIUM") or "/usr/bin/chromium"
    return p if os.access(p, os.X_OK) else shutil.which("chromium")


def need_chromium() -> str:
    p = chromium_path()
    if p is None:
        pytest.fail(
            "the live-view browser test could not run: Chromium is not installed (no /usr/bin/chromium, "
            "no PICODAQ_CHROMIUM). `make test` installs Debian's chromium package when run as root; "
            "otherwise: apt-get install chromium",
            pytrace=False,
        )
    return p


class CdpError(AssertionError):
    pass


class Chromium:
    def __init__(self, profile: Path, exe: str | None = None) -> None:
        self.exe = exe or need_chromium()
        self.profile = profile
        self.proc: subprocess.Popen | None = None
        self._next = 0
        self._replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._closed = False
        self.console: list[str] = []  # the page's console messages and exceptions

    def __enter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _EXEC_WITH_PIPES,
                str(to_child_r),
                str(from_child_w),
                self.exe,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.profile / "chromium.log", "wb"),
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.call("Target.setDiscoverTargets", {"discover": True}, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self.call("Browser.close", timeout=5)
                except (CdpError, OSError):
                    pass
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass

    # -- the protocol ------------------------------------------------------------------

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()
                elif msg.get("method") == "Runtime.consoleAPICalled":
                    args = msg["params"].get("args", [])
                    self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
                elif msg.get("method") == "Runtime.exceptionThrown":
                    self.console.append("exception: " + json.dumps(msg["params"]["exceptionDetails"])[:2000])
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        with self._cond:
            self._next += 1
            n = self._next
        msg: dict[str, Any] = {"id": n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while n not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise CdpError(
                        f"Chromium gave no answer to {method} ({'it exited' if self._closed else 'timeout'})"
                    )
                self._cond.wait(left)
            reply = self._replies.pop(n)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, url: str) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call("Runtime.enable")
        page.call("Page.enable")
        page.call("Page.navigate", {"url": url})
        return page


class Page:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def call(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.browser.call(method, params, self.session, timeout)

    def evaluate(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CdpError(f"{expression}: {r['exceptionDetails'].get('exception', r['exceptionDetails'])}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, what: str | None = None) -> Any:
        """Poll a JavaScript expression in the page until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.evaluate(f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()")
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:g} s waiting in the page for {what or expression}; "
                    f"console: {self.browser.console[-5:]}"
                )
            time.sleep(0.1)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path
