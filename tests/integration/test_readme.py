"""Every command in README.md's examples runs as printed, on emulated boards (issue 16).

The commands are read from the README's fenced code blocks (a trailing backslash joins lines,
`# ...` comments and `labpc$ ` / `desk$ ` prompts are dropped) and run in order, as a user
following the README would, in a fresh folder where `.venv`, `tools`, `tests`, `Makefile` and
the pyproject files are this checkout's. With no board attached, each command picks the
emulated board the README says it does. `--seconds N` becomes `--seconds 1`; a command that
runs until Ctrl-C gets its Ctrl-C (or `q`, with --mark-on-key, in a terminal) once it is
going. The few that cannot run here at all are listed in CANNOT_RUN_HERE with the reason."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cli_helpers import Lines

ROOT = Path(__file__).resolve().parents[2]

# what cannot run on this machine at all, and why (matched as substrings of the command)
CANNOT_RUN_HERE = {
    "labpc": "needs a second machine, `labpc`, serving a board (Remote boards); "
    "test_remote.py runs the same commands over 127.0.0.1",
    "/dev/ttyACM0": "needs a real Pico on /dev/ttyACM0 (none is attached here)",
    "make test": "is this test suite itself (and the Robot suites after it): CI runs it",
    "robot --outputdir": "is every Robot suite one after another (many minutes); `make test` runs them in CI",
    "a Pico held in BOOTSEL": "needs a real Pico held in BOOTSEL (none is attached here); the emulated RP2040's "
    "BOOTSEL mode below takes the same command",
}


def readme_lines() -> list[tuple[str, str]]:
    """Each command in the README's code blocks, with the comment after it ("" without one)."""
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S):
        joined = re.sub(r"\\\n\s*", "", block)
        for line in joined.splitlines():
            line = re.sub(r"^(labpc|desk)\$ ", "", line.strip())
            comment = re.search(r"\s+#(.*)$", line)
            line = line[: comment.start()] if comment else line
            if re.match(r"^([A-Z_]+=\S+\s+)*(make|picodaq|\.venv/bin/)\S*(\s|$)", line):
                out.append((line, comment.group(1).strip() if comment else ""))
    return out


def readme_commands() -> list[str]:
    return [command for command, _ in readme_lines()]


def why_not(command: str) -> str | None:
    return next((why for key, why in CANNOT_RUN_HERE.items() if key in command), None)


def test_the_readme_has_the_commands_this_test_knows():
    cmds = readme_commands()
    assert "make demo" in cmds and any(c.startswith(".venv/bin/picodaq replay run.tlv") for c in cmds)
    assert len(cmds) >= 20


@pytest.fixture
def folder(tmp_path):
    for name in (".venv", "host", "firmware", "tools", "tests", "hil", "Makefile", "pyproject.toml"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "run").mkdir()
    cfg = tmp_path / "lsl_api.cfg"
    cfg.write_text(
        "[ports]\nIPv6 = disable\n[multicast]\nResolveScope = machine\n"
        "MachineAddresses = {127.0.0.1}\nKnownPeers = {127.0.0.1}\n"
        f"[lab]\nSessionID = picodaq-readme-{uuid.uuid4().hex}\n[log]\nlevel = -3\n"
    )
    # its own emulator registry (other tests' and people's emulators are not its business) and LSL session
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "run"), LSLAPICFG=str(cfg), COLUMNS="120")
    return tmp_path, env


def as_run(command: str) -> list[str]:
    words = shlex.split(command)
    if words[-1] == "&":  # started in the background: here, Background runs it until Ctrl-C
        words.pop()
    env_words = []
    while re.match(r"^[A-Z_]+=", words[0]):
        env_words.append(words.pop(0))
    if "--seconds" in words:
        words[words.index("--seconds") + 1] = "1"
    # a fixed port another program here may hold: the view listens where it is free instead
    view = words.index("--view") + 1 if "--view" in words else len(words)
    if view < len(words) and ":" in words[view]:
        host = words[view].rsplit(":", 1)[0]
        words[view] = f"{host}:{free_port(host)}"
    # recordings here last 1 s (above), so a window into them is moved inside that second
    for flag, at in (("--from", "0.25"), ("--to", "0.75")):
        if flag in words:
            words[words.index(flag) + 1] = at
    return env_words + words


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def until_ctrl_c(command: str) -> bool:
    w = shlex.split(command)
    return (("emulate" in w or "serve" in w) or (("record" in w or "stream" in w) and "--seconds" not in w)) and w[
        0
    ].endswith("picodaq")


FRAMES_RECEIVED = re.compile(r"\bframes [1-9]")  # the live view's plain line, data flowing


class Background:
    """A command that runs until Ctrl-C: started, then (once going) interrupted; its exit status."""

    def __init__(self, words: list[str], cwd: Path, env: dict, keys: bool) -> None:
        self.keys = keys
        self.master = None
        if keys:  # --mark-on-key reads a terminal
            self.master, slave = pty.openpty()
            self.p = subprocess.Popen(
                words, cwd=cwd, env=env, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            os.close(slave)
        else:
            self.p = subprocess.Popen(
                words, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        self.err = Lines(self.p.stderr)

    def going(self, timeout: float = 120) -> None:
        """Wait until samples flow: its plain status line (every 2 s) counts frames received (a
        board emulated, flashed, configured and started takes 3 s on a quiet machine, more under
        load; stopped before any sample, a recording rightly writes no file)."""
        self.err.wait_for_match(FRAMES_RECEIVED, timeout)

    def first_line(self, timeout: float = 60) -> str:
        assert self.p.stdout is not None
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert ready, "printed nothing"
        return self.p.stdout.readline().strip()

    def stop(self) -> tuple[int, str, str]:
        if self.keys:
            os.write(self.master, b"1")  # a marker
            time.sleep(0.5)
            os.write(self.master, b"q")  # and stop
        else:
            self.p.send_signal(signal.SIGINT)
        out = Lines(self.p.stdout)
        self.p.wait(60)
        if self.master is not None:
            os.close(self.master)
        return self.p.returncode, out.join(), self.err.join()


def run(words: list[str], cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    env_words = [w for w in words if re.match(r"^[A-Z_]+=", w)]
    env = dict(env, **dict(w.split("=", 1) for w in env_words))
    words = words[len(env_words) :]
    return subprocess.run(
        words, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_every_readme_command_runs_as_printed_on_emulated_boards(folder):
    cwd, env = folder
    stamp, deps = ROOT / ".venv" / ".installed", [ROOT / "pyproject.toml", ROOT / "hil" / "pyproject.toml"]
    assert stamp.exists() and all(stamp.stat().st_mtime >= d.stat().st_mtime for d in deps), (
        "the venv is older than the pyproject files: `make demo` would rebuild it; run `make .venv/.installed` first"
    )
    emulator = None
    stream = None
    started: list[Background] = []  # every command left running, stopped at the end whatever happened
    ran, skipped = [], []
    try:
        for command, comment in readme_lines():
            line = f"{command}  # {comment}" if comment else command
            why = why_not(line)
            if why:
                skipped.append((line, why))
                continue
            words = as_run(command)
            if words[-1:] == ["eeg"] and "lsl_inlet.py" in command:  # what an inlet sees of the running stream
                assert stream is not None
                r = run(words, cwd, env)
                assert r.returncode == 0 and "<name>eeg</name>" in r.stdout, (command, r.stderr)
                code, _, err = stream.stop()
                assert code == 0, (command, err)
                stream = None
            elif until_ctrl_c(command):
                # as a reader would: the board, or the stream, before stops first
                for before in (emulator if "emulate" in words else None, stream if "stream" in words else None):
                    if before is not None:
                        code, _, err = before.stop()
                        assert code == 0, (command, err)
                bg = Background(words, cwd, env, keys="--mark-on-key" in words)
                started.append(bg)
                if "emulate" in words:
                    assert bg.first_line().startswith("/"), command  # its port
                    emulator = bg  # flash and flash --check take the running emulator
                    ran.append(command)
                    continue
                if "serve" in words:
                    assert bg.first_line().startswith("rfc2217://"), command
                else:
                    bg.going()  # an emulated board started, configured, streaming
                    assert bg.p.poll() is None, (command, bg.err.text())
                if "stream" in words:
                    stream = bg  # stopped once the inlet has looked at it
                    ran.append(command)
                    continue
                code, out, err = bg.stop()
                assert code == 0, (command, err)
            else:
                r = run(words, cwd, env)
                assert r.returncode == 0, (command, r.stdout[-2000:], r.stderr[-2000:])
                if "--stats-json" in words and words[words.index("--stats-json") + 1] == "-":
                    json.loads(r.stdout)
            ran.append(command)
    finally:
        for bg in started:
            if bg.p.poll() is None:
                bg.p.send_signal(signal.SIGINT)
                try:
                    bg.p.wait(30)
                except subprocess.TimeoutExpired:
                    bg.p.kill()
    if emulator is not None:
        assert emulator.p.returncode == 0
    print("ran:", *ran, sep="\n  ", file=sys.stderr)
    print("cannot run here:", *(f"{c}\n    ({why})" for c, why in skipped), sep="\n  ", file=sys.stderr)
    assert (cwd / "build" / "demo.bdf").exists() and (cwd / "again.bdf").exists() and (cwd / "eeg.bdf").exists()
    assert len(ran) >= 14 and all(why_not(c) for c, _ in skipped)
