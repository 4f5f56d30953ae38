"""Figure 4: host CPU while receiving at the USB full-speed line rate (1.2 MB/s), paced by the emulated board.

The board samples 8 channels of int16 in real time, at the rate that puts
1.2 MB/s of frames on the wire (full-speed USB's 12 Mbit/s, less what bulk
transfers leave: about 1.2 MB/s of payload in practice). CPU% is this
process's CPU time (the Link's reader thread, and the consumer pumping
the link into its callback) over wall time, in the measured window, and the
kernel's share of it (system time: the tty's reads, poll(), the wake-ups). The link
reads in batches, as a recording's does (StreamConfig.batch_seconds: a few ms
at this rate, within what a port's buffer holds), and decodes them
BATCH_LATEST (0.2 s) apart in the consumer's thread, which reads the port
itself while it waits (PortReader's lending). Beside it, the floors: a bare
Python loop and cat(1) reading the same stream, and cat reading whole frames
written at the line rate out of a pty and out of a pipe (tty_and_pipe_floor).
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import threading
import time
import tty
from typing import Any

from .. import contracts as C
from ..recording.config import StreamConfig
from .live import raw_drain, raw_stream
from .proc_cpu import cpu_window
from .session import EmulatedSession

LINE_RATE = 1.2e6  # bytes/s
N_CHANNELS = 8
FMT = C.FMT_INT16


def line_rate_config(bytes_per_s: float = LINE_RATE) -> StreamConfig:
    """8 x int16 at the sample rate whose frames (largest that fit) carry bytes_per_s."""
    probe = StreamConfig(rate=100_000, channel_mask=(1 << N_CHANNELS) - 1, source=C.SRC_RAMP, fmt=FMT)
    spf = probe.frame_samples()  # the largest frame: rate // 50 exceeds what fits
    rate = round(bytes_per_s * spf / probe.frame_bytes())
    return StreamConfig(rate=rate, channel_mask=probe.channel_mask, source=C.SRC_RAMP, fmt=FMT, samples_per_frame=spf)


def cpu_round(session: EmulatedSession, seconds: float) -> dict[str, Any]:
    """The receiver's window, then the same stream read by a bare loop batched the same way: the
    floor no reader of a tty goes below (a tty hands 4 KiB a read: 300 reads a second here)."""
    cfg = line_rate_config()
    w = session.stream(cfg, seconds, batch=True).as_dict()
    floor = raw_drain(session, cfg, seconds, batch_seconds=cfg.batch_seconds())
    w["read_floor_cpu_percent"] = floor["cpu_percent"]
    c = c_read_floor(session, cfg, seconds)
    # its run time from schedstat (ns): clock ticks (10 ms) round a short window of cat to 0
    w["c_read_floor_cpu_percent"] = None if c is None else _fine(c)
    w["c_read_floor_dropped"] = None if c is None else c["device_dropped"]
    w.update(tty_and_pipe_floor(cfg, seconds))
    w.update(
        rate=cfg.rate,
        n_channels=cfg.n_channels,
        fmt=C.FORMAT_NAMES[cfg.fmt],
        samples_per_frame=cfg.samples_per_frame,
        target_mb_per_s=LINE_RATE / 1e6,
    )
    return w


def c_read_floor(session: EmulatedSession, config: StreamConfig, seconds: float) -> dict[str, Any] | None:
    """The same stream read by cat(1) into /dev/null: blocking reads in C, one system call a wake,
    no interpreter: what any program pays to read this tty at this rate (None: no cat here).
    device_dropped: the board's own count once it stops, 0 if cat kept up."""
    cat = shutil.which("cat")
    if cat is None or session.link is None:
        return None
    with raw_stream(session, config) as (_, status):  # cat reads the port it holds raw
        proc = subprocess.Popen([cat, session.board.port], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            cpu_window(proc.pid, 0.3, lambda: proc.poll() is None)  # its warm-up
            w = cpu_window(proc.pid, seconds, lambda: proc.poll() is None).as_dict()
        finally:
            proc.kill()
            proc.wait()
    w["device_dropped"] = None if status[0] is None else status[0].samples_dropped
    return w


def _fine(w: dict[str, Any]) -> float:
    return w["cpu_percent_schedstat"] or w["cpu_percent"]


def tty_and_pipe_floor(config: StreamConfig, seconds: float) -> dict[str, float | None]:
    """cat(1) reading the same writes (the config's frames at its frame rate, from a thread of this
    process) out of a pty, then out of a pipe: what the tty layer itself costs any reader here. A
    pipe hands a reader all that was written, up to 64 KiB a read; a tty at most the 4 KiB of its
    line discipline's buffer, refilled by a kernel worker after each read. Both None: no cat here."""
    cat = shutil.which("cat")
    if cat is None:
        return {"c_tty_cpu_percent": None, "c_pipe_cpu_percent": None}
    frame = bytes(config.frame_bytes())
    period = config.frame_samples() / config.rate
    return {f"c_{kind}_cpu_percent": _cat_reading(kind, cat, frame, period, seconds) for kind in ("tty", "pipe")}


def _cat_reading(kind: str, cat: str, frame: bytes, period: float, seconds: float) -> float:
    """cat's CPU % reading frame every period out of a new pty (kind "tty") or pipe."""
    if kind == "tty":
        wfd, rfd = pty.openpty()
        tty.setraw(rfd)
        proc = subprocess.Popen([cat, os.ttyname(rfd)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    else:
        rfd, wfd = os.pipe()
        proc = subprocess.Popen([cat], stdin=rfd, stdout=subprocess.DEVNULL)
    os.close(rfd)  # cat has its own
    stop = threading.Event()
    writer = threading.Thread(target=_write_paced, args=(wfd, frame, period, stop), daemon=True)
    writer.start()
    try:
        cpu_window(proc.pid, 0.3, lambda: proc.poll() is None)  # its warm-up
        return _fine(cpu_window(proc.pid, seconds, lambda: proc.poll() is None).as_dict())
    finally:
        stop.set()
        writer.join()
        proc.kill()
        proc.wait()
        os.close(wfd)


def _write_paced(fd: int, frame: bytes, period: float, stop: threading.Event) -> None:
    """One frame every period (on a schedule: late writes catch up) until stop. Never blocks: a cat
    that fell behind or died must not leave this thread stuck in write() (what did not fit is not
    written; cat keeps up at this rate)."""
    os.set_blocking(fd, False)
    due = time.monotonic()
    while not stop.is_set():
        try:
            os.write(fd, frame)
        except BlockingIOError:
            pass
        except OSError:
            return  # cat is gone (a pipe without a reader, a pty without its other side)
        due += period
        stop.wait(max(0.0, due - time.monotonic()))
