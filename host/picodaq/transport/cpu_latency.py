"""CpuLatencyRequest: ask Linux to keep the CPUs ready to answer a port's data within a bound.

An idle CPU rests in an idle state, and the deeper the state the longer it takes to wake when data
arrives. On an idle machine that wake-up is most of a frame's latency: in one `make bench` run on
the 2-vCPU VM the benchmarks run on (figure 5a, 500 frames a second into a pty), a bare reader got
its frames at p50 73 us, p99 194 us with the CPUs free to rest, and at p50 46 us, p99 135 us while
a request of 0 us was held; picodaq's default Link went from p50 109 us, p99 284 us to p50 72 us,
p99 208 us.

Linux's PM QoS interface takes such a request from any process that can open
/dev/cpu_dma_latency for writing (root, unless a udev rule lets a group write it): it holds while
the file stays open and ends when it is closed (or the process dies), and the strictest request of
all holders wins. The price is power: CPUs kept out of their deeper states draw more while idle,
and at 0 us the idle loop polls instead of halting (in a VM, the host spends a core on each idle
vCPU). So it is asked for by sessions that need the lowest latency (closed-loop stimulation,
BCI feedback; `picodaq record|stream --cpu-latency US`), never by default.
"""

from __future__ import annotations

import errno
import os
import struct
import sys

from ..errors import PicodaqError, UsageError

PM_QOS_DEVICE = "/dev/cpu_dma_latency"
MAX_US = 2_000_000_000  # the kernel's limit for a request (an s32 of microseconds)
_VALUE = struct.Struct("=i")  # what the device takes and reads back: a native s32


class CpuLatencyUnavailable(PicodaqError):
    """The request could not be made here (no such interface, or no right to write it)."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


class CpuLatencyRequest:
    """A PM QoS CPU latency request of max_us microseconds, held from hold() (or `with`) to
    release(): while held, no CPU enters an idle state slower than max_us to leave."""

    def __init__(self, max_us: int, path: str | None = None) -> None:
        self._fd: int | None = None
        if not 0 <= max_us <= MAX_US:
            raise UsageError(f"a CPU latency request is 0 to {MAX_US:,} us, not {max_us}")
        self.max_us = max_us
        self.path = PM_QOS_DEVICE if path is None else path

    @property
    def held(self) -> bool:
        return self._fd is not None

    def hold(self) -> None:
        """Make the request (again, if it was released); CpuLatencyUnavailable if it cannot be made."""
        if self._fd is not None:
            return
        if sys.platform != "linux":
            raise CpuLatencyUnavailable(f"a CPU latency request needs Linux's PM QoS ({self.path})", self.path)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CpuLatencyUnavailable(self._why(e), self.path) from None
        try:
            os.write(fd, _VALUE.pack(self.max_us))
        except OSError as e:
            os.close(fd)
            raise CpuLatencyUnavailable(self._why(e), self.path) from None
        self._fd = fd

    def release(self) -> None:
        """End the request (closing the file ends it; a no-op if not held)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def in_force_us(self) -> int | None:
        """The bound now in force, the strictest of every holder's requests (the device reads it
        back), or None where it cannot be read."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            data = os.read(fd, _VALUE.size)
        except OSError:
            return None
        finally:
            os.close(fd)
        return _VALUE.unpack(data)[0] if len(data) == _VALUE.size else None

    def _why(self, e: OSError) -> str:
        head = f"cannot hold a CPU latency request of {self.max_us} us: {self.path}"
        if e.errno in (errno.EACCES, errno.EPERM):
            return (
                f"{head} is writable by root only here (run as root, or let your group write it: a udev rule "
                f'KERNEL=="cpu_dma_latency", GROUP="<group>", MODE="0660")'
            )
        if e.errno == errno.ENOENT:
            return f"{head} does not exist (a kernel without PM QoS, or a container that hides it)"
        return f"{head}: {e.strerror or e}"

    def __enter__(self) -> CpuLatencyRequest:
        self.hold()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()
