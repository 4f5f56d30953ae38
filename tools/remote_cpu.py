"""CPU and achieved rate of `picodaq record` from a local port, over socket:// and over rfc2217://.

    .venv/bin/python tools/remote_cpu.py [--seconds 10] [--rates 16000,74453]

An emulated board (paced in real time) streams 8 channels of int16 (16 kHz is
256 kB/s; 74453 Hz is the USB full-speed line rate, ~1.2 MB/s, as the bench's
cpu figure paces it). For each port kind `picodaq record` runs twice, for
SHORT and for --seconds seconds: the difference of the two runs' CPU time over
the difference of their lengths is the steady cost of recording, without
Python's start-up and the board's preparation. The server's CPU (`picodaq
serve`, for the network ports) is its CPU time over the long run. Losses are
the long run's counters (samples_lost: gaps the host saw; dropped: instants
the board could not send). The `rfc2217-pyserial` row is the same record with
pyserial's own RFC 2217 client (what picodaq used before its own), for
comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from picodaq.boards.unix import EmulatedBoard

SHORT = 2.0
PICODAQ = [str(Path(sys.executable).with_name("picodaq"))]  # the console script beside this Python
# `picodaq` with rfc2217:// left to pyserial's own client (Link opens fast_url(url))
PICODAQ_PYSERIAL_RFC2217 = [
    sys.executable,
    "-c",
    "import sys, picodaq.transport.link as l; l.fast_url = lambda url: url; "
    "from picodaq.cli.main import main; sys.argv[0] = 'picodaq'; sys.exit(main())",
]
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@contextmanager
def served(port: str, raw: bool) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(
        PICODAQ + ["serve", "--port", port, "--listen", "127.0.0.1:0"] + (["--raw"] if raw else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if not select.select([proc.stdout], [], [], 20)[0]:
            raise RuntimeError("picodaq serve printed no URL")
        yield proc.stdout.readline().strip(), proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def record(url: str, rate: int, seconds: float, out: Path, picodaq: list[str] = PICODAQ) -> tuple[float, dict]:
    """One `picodaq record`: (its CPU seconds, its --stats-json)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(
        picodaq
        + [
            "record",
            "--port",
            url,
            "--rate",
            str(rate),
            "--channels",
            "8",
            "--fmt",
            "int16",
            "--seconds",
            str(seconds),
            "--quiet",
            "--stats-json",
            "-",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"record over {url} failed: {r.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, json.loads(r.stdout)


def measure(kind: str, url: str, server_pid: int | None, rate: int, seconds: float, tmp: Path) -> dict:
    picodaq = PICODAQ_PYSERIAL_RFC2217 if kind == "rfc2217-pyserial" else PICODAQ
    cpu_short, _ = record(url, rate, SHORT, tmp / "short.npy", picodaq)
    s0 = _cpu_of(server_pid) if server_pid else 0.0
    cpu_long, stats = record(url, rate, seconds, tmp / "long.npy", picodaq)
    server = (_cpu_of(server_pid) - s0) / seconds if server_pid else None
    return {
        "port": kind,
        "rate": rate,
        "kB_per_s": round(rate * 8 * 2 / 1000),
        "client_cores": (cpu_long - cpu_short) / (seconds - SHORT),
        "server_cores": server,
        "achieved_hz": stats["samples"] / seconds,
        "samples_lost": stats["samples_lost"],
        "dropped": stats["device_samples_dropped"],
        "seq_lost": stats["seq_lost"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rates", default="16000,74453")
    ap.add_argument("--json", action="store_true", help="one JSON line per measurement instead of a table")
    a = ap.parse_args()
    rates = [int(r) for r in a.rates.split(",")]
    rows = []
    with EmulatedBoard() as board, tempfile.TemporaryDirectory() as t:
        board.install_firmware()
        board.start()
        tmp = Path(t)
        for rate in rates:
            rows.append(measure("local", board.port, None, rate, a.seconds, tmp))
            for kind, raw in (("socket", True), ("rfc2217", False), ("rfc2217-pyserial", False)):
                with served(board.port, raw) as (url, pid):
                    rows.append(measure(kind, url, pid, rate, a.seconds, tmp))
            time.sleep(0.1)
    if a.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"{'port':16} {'kB/s':>6} {'client':>7} {'server':>7} {'achieved':>9} {'lost':>6} {'dropped':>8}")
    for r in rows:
        server = "-" if r["server_cores"] is None else f"{r['server_cores']:.2f}"
        print(
            f"{r['port']:16} {r['kB_per_s']:>6} {r['client_cores']:>7.2f} {server:>7} "
            f"{r['achieved_hz'] / r['rate']:>8.1%} {r['samples_lost']:>6} {r['dropped']:>8}"
        )


if __name__ == "__main__":
    main()
