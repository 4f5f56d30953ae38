"""An OpenBCI Cyton emulator behind a raw pty: the board BrainFlow's Cyton driver reads in figure 7.

What BrainFlow's OpenBCI serial driver (brainflow 5.23, src/board_controller/
openbci/) does with a Cyton, and what this emulator answers, as the real
board (firmware v3) does:

- opens the port, sets 115200 8N1 raw with VMIN 0 / VTIME 1 s, sends `v`
  (soft reset) and reads until `$$$`: the reset banner ends in `$$$`;
- sends `d` (default channel settings) and reads until one second passes
  with nothing: `updating channel settings to default$$$`;
- `b` starts the stream, `s` stops it; text commands (`x...X` channel
  settings, `z...Z` lead-off, `~N` sample rate, `/N` board mode, `1`-`8` and
  `!@#$%^&*` channel off/on, `D`, `V`) are answered with the firmware's
  `Success: ...$$$` lines while not streaming, and silently while streaming;
- a stream is 33-byte packets: 0xA0, a sample number (0..255, 0 at `b`),
  8 x int24 big-endian channel values, 6 aux bytes, an end byte 0xC0..0xC6.
  The driver resynchronises by scanning for 0xA0, checks only the end byte
  (a bad one is logged as a warning and the packet skipped), and stamps
  each packet with the host clock when it arrives: it takes packets at
  whatever rate they come, whatever the sampling rate it reports.

The emulator paces packets at `rate` (the Cyton's own 250 Hz, or the 1, 4
and 16 kHz the peer figure also runs), writing whatever is due at most once
per millisecond (one packet per write at 1 kHz and below, 4 or 16 at the
higher rates). Channel values are picodaq's int24 ramp (PROTOCOL.md) of
the packet's index since `b`, so every delivered value can be checked; the
aux bytes are zero. With a DamageSpec (damage.py), the packets pass through
a seeded Damager; its ground truth, with the count of packets sent, is
written per stream to a JSON file at each `s` and when the emulator stops.

    python -m picodaq.bench.cyton --link /tmp/cyton --rate 1000 [--damage drop=1e-4,... --seed 7] [--truth t.json]

`CytonBoard` is the handle a program starts it with (as boards.unix.EmulatedBoard is for picodaq).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import contracts as C
from ..core.blocks import ramp_counts
from .damage import Damager, DamageSpec

N_CHANNELS = 8
PACKET_SIZE = 33
START_BYTE = 0xA0
END_BYTE = 0xC0
BANNER = b"OpenBCI V3 8-16 channel\nOn Board ADS1299 Device ID: 0x3E\nLIS3DH Device ID: 0x33\nFirmware: v3.1.2\n$$$"
RATES = {"0": 16000, "1": 8000, "2": 4000, "3": 2000, "4": 1000, "5": 500, "6": 250}  # `~N`
_CHANNEL_LETTERS = "12345678QWERTYUI"
_MODES = {"0": "default", "1": "debug", "2": "analog", "3": "digital", "4": "marker"}
_MIN_WRITE_INTERVAL = 0.001  # seconds between writes: a USB-serial dongle's latency timer, at its lowest


def packets(first: int, n: int) -> bytes:
    """Packets first..first+n-1 of a stream: the int24 ramp of each packet's index, aux bytes zero."""
    counts = ramp_counts(first, n, N_CHANNELS, C.FMT_INT24)
    p = np.zeros((n, PACKET_SIZE), np.uint8)
    p[:, 0] = START_BYTE
    p[:, 1] = (first + np.arange(n)) & 0xFF
    p[:, 2:26] = counts.astype(">i4").view(np.uint8).reshape(n, N_CHANNELS, 4)[:, :, 1:].reshape(n, 24)
    p[:, 32] = END_BYTE
    return p.tobytes()


def expected_counts(first: int, n: int) -> np.ndarray:
    """The channel values (counts) of packets first..first+n-1, packets x channels."""
    return ramp_counts(first, n, N_CHANNELS, C.FMT_INT24)


class CytonProtocol:
    """The board's side of the serial protocol, without I/O: bytes from the host in, replies out.

    `streaming` says whether packets should flow; `streams` counts `b`s, so the
    pacer knows when to restart the sample index at 0.
    """

    def __init__(self) -> None:
        self.streaming = False
        self.streams = 0
        self.sample_rate = 250
        self._pending = b""

    def receive(self, data: bytes) -> bytes:
        """Handle the host's bytes; returns what the board answers."""
        buf = self._pending + data
        out = bytearray()
        i = 0
        while i < len(buf):
            c = chr(buf[i])
            need = {"x": 9, "z": 5, "~": 2, "/": 2}.get(c, 1)
            if len(buf) - i < need:
                break
            cmd = buf[i : i + need].decode("latin1")
            i += need
            reply = self._command(cmd)
            if reply and not self.streaming:
                out += reply.encode() + b"$$$"
        self._pending = buf[i:]
        return bytes(out)

    def _command(self, cmd: str) -> str:
        c = cmd[0]
        if c == "v":
            self.streaming = False
            return BANNER[:-3].decode()
        if c == "b":
            self.streaming = True
            self.streams += 1
            return ""
        if c == "s":
            self.streaming = False
            return ""
        if c == "d":
            return "updating channel settings to default"
        if c == "D":
            return "060110"
        if c == "V":
            return "v3.1.2"
        if c == "x":
            if cmd[-1] != "X" or cmd[1] not in _CHANNEL_LETTERS[:N_CHANNELS]:
                return "Failure: too few chars"
            return f"Success: Channel set for {_CHANNEL_LETTERS.index(cmd[1]) + 1}"
        if c == "z":
            if cmd[-1] != "Z" or cmd[1] not in _CHANNEL_LETTERS[:N_CHANNELS]:
                return "Failure: too few chars"
            return f"Success: Lead off set for {_CHANNEL_LETTERS.index(cmd[1]) + 1}"
        if c == "~":
            if cmd[1] == "~":
                return f"Sample rate is {self.sample_rate}Hz"
            if cmd[1] in RATES:
                self.sample_rate = RATES[cmd[1]]
                return f"Success: Sample rate is {self.sample_rate}Hz"
            return "Failure: sample value out of bounds"
        if c == "/":
            return f"Success: {_MODES[cmd[1]]}" if cmd[1] in _MODES else "Failure: invalid board mode"
        return ""  # channel on/off and everything else: the firmware answers nothing


class _Stream:
    """One `b` .. `s`: the packets handed to the pty, and the damage they met."""

    def __init__(self, rate: float, spec: DamageSpec, seed: int) -> None:
        self.rate = rate
        self.t0 = time.monotonic()
        self.sent = 0
        self.damager = Damager(spec, seed) if spec.active else None
        self.backlog_max = 0

    def due(self, now: float) -> int:
        return int((now - self.t0) * self.rate) + 1  # packet k is due at t0 + k / rate

    def make(self, n: int) -> bytes:
        data = packets(self.sent, n)
        self.sent += n
        if self.damager is None:
            return data
        d = self.damager.unit
        return b"".join(d(data[i : i + PACKET_SIZE]) for i in range(0, len(data), PACKET_SIZE))

    def as_dict(self, spec: DamageSpec, seed: int) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "sent": self.sent,
            "seconds": time.monotonic() - self.t0,
            "backlog_max_bytes": self.backlog_max,
            "damage": str(spec),
            "seed": seed,
            "truth": self.damager.truth.as_dict() if self.damager else None,
        }


def serve(link: Path, rate: float, spec: DamageSpec, seed: int, truth: Path | None, parent: int | None) -> None:
    """Run the emulated board on a pty under `link` until SIGTERM (or the parent is gone)."""
    from ..boards.pty import open_linked_pty

    master = open_linked_pty(link)
    print(f"PORT {link}", flush=True)
    proto = CytonProtocol()
    stream: _Stream | None = None
    done: list[dict[str, Any]] = []
    out = bytearray()
    last_write = 0.0
    stopping = [False]

    def on_term(*_: object) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    def end_stream() -> None:
        nonlocal stream
        if stream is not None:
            done.append(stream.as_dict(spec, seed))
            stream = None
            if truth is not None:
                tmp = truth.with_name(truth.name + ".new")
                tmp.write_text(json.dumps({"streams": done}))
                tmp.replace(truth)

    next_parent_check = 0.0
    while not stopping[0]:
        now = time.monotonic()
        if now >= next_parent_check:
            if parent is not None and os.getppid() != parent:
                break
            next_parent_check = now + 0.5
        timeout = 0.2
        if stream is not None:
            due = stream.due(now)
            if due > stream.sent and now - last_write >= _MIN_WRITE_INTERVAL:
                out += stream.make(due - stream.sent)
            timeout = max(stream.t0 + stream.sent / stream.rate, last_write + _MIN_WRITE_INTERVAL) - now
        if out:
            try:
                n = os.write(master, out)
                del out[:n]
                last_write = now
            except BlockingIOError:
                pass
            except OSError:  # no host has the port open: a USB-serial dongle drops it too
                out.clear()
            if stream is not None:
                stream.backlog_max = max(stream.backlog_max, len(out))
        r, _, _ = select.select([master], [master] if out else [], [], max(timeout, 0.0))
        if not r:
            continue
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            continue
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            # no host: nobody has the port open (yet, or any more); a host that went away stopped the stream
            if proto.streaming:
                proto.streaming = False
                end_stream()
            out.clear()
            time.sleep(0.02)
            continue
        was = proto.streams
        reply = proto.receive(data)
        if stream is not None and (not proto.streaming or proto.streams != was):
            end_stream()
        if proto.streaming and stream is None:
            stream = _Stream(rate, spec, seed)
            last_write = 0.0
        out += reply
    end_stream()
    if truth is not None and not truth.exists():
        truth.write_text(json.dumps({"streams": done}))
    os.close(master)


class CytonBoard:
    """Handle on an emulator process: start it, learn its port, read its ground truth, stop it."""

    def __init__(self, rate: float = 250, damage: DamageSpec | None = None, seed: int = 0) -> None:
        self.rate = rate
        self.damage = damage or DamageSpec()
        self.seed = seed
        self._tmp = tempfile.TemporaryDirectory(prefix="picodaq-cyton-")
        self.port = str(Path(self._tmp.name) / "tty")
        self.truth_path = Path(self._tmp.name) / "truth.json"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> CytonBoard:
        argv = [sys.executable, "-m", "picodaq.bench.cyton", "--link", self.port, "--rate", str(self.rate)]
        argv += ["--damage", str(self.damage), "--seed", str(self.seed), "--truth", str(self.truth_path)]
        argv += ["--exit-with-parent"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(f"the Cyton emulator did not start (said {line!r})")
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> list[dict[str, Any]]:
        """Stop the emulator; returns every stream's ground truth (the last one ended by the stop)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        try:
            streams: list[dict[str, Any]] = json.loads(self.truth_path.read_text())["streams"]
        except (OSError, ValueError, KeyError):
            streams = []
        return streams

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> CytonBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m picodaq.bench.cyton", description=__doc__.split("\n\n")[0])
    ap.add_argument("--link", required=True, help="stable path (a symlink) for the host's port")
    ap.add_argument("--rate", type=float, default=250.0, help="packets per second (default 250, the Cyton's)")
    ap.add_argument("--damage", default="", help="e.g. drop=1e-4,bitflip=1e-4,garbage=1e-4 (per byte)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--truth", default=None, help="JSON file for each stream's ground truth")
    ap.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it exits")
    a = ap.parse_args(argv)
    try:
        spec = DamageSpec.parse(a.damage)
    except ValueError as e:
        print(f"picodaq cyton: {e}", file=sys.stderr)
        return 2
    parent = os.getppid() if a.exit_with_parent else None
    serve(Path(a.link), a.rate, spec, a.seed, Path(a.truth) if a.truth else None, parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
