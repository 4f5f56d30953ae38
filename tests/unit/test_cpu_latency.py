"""CpuLatencyRequest: the PM QoS request is the open file's; its value is the device's native s32."""

from __future__ import annotations

import errno
import os
import struct
import sys
from contextlib import ExitStack

import pytest

from picodaq.errors import UsageError
from picodaq.transport import cpu_latency
from picodaq.transport.cpu_latency import MAX_US, CpuLatencyRequest, CpuLatencyUnavailable

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PM QoS is Linux's")


def _holders(path) -> list[str]:
    """This process's descriptors open on path."""
    return [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == str(path)]


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_the_request_is_written_as_a_native_s32_and_lasts_while_its_file_is_open(tmp_path):
    dev = tmp_path / "cpu_dma_latency"
    dev.write_bytes(b"")
    req = CpuLatencyRequest(20, str(dev))
    assert not req.held
    with req:
        assert req.held
        fd = req._fd
        assert fd is not None and _is_open(fd)
        assert dev.read_bytes() == struct.pack("=i", 20)
        assert req.in_force_us() == 20  # what the device reads back
        req.hold()  # held already: no second request
        assert req._fd == fd
    assert not req.held and not _is_open(fd)
    req.release()  # released twice: a no-op


def test_bounds_are_the_kernels(tmp_path):
    for bad in (-1, MAX_US + 1):
        with pytest.raises(UsageError, match="0 to 2,000,000,000"):
            CpuLatencyRequest(bad, str(tmp_path / "x"))
    assert CpuLatencyRequest(MAX_US, str(tmp_path / "x")).max_us == MAX_US


def test_a_missing_device_says_so(tmp_path):
    req = CpuLatencyRequest(0, str(tmp_path / "absent"))
    with pytest.raises(CpuLatencyUnavailable, match="does not exist") as e:
        req.hold()
    assert e.value.path == str(tmp_path / "absent") and not req.held
    assert req.in_force_us() is None


def test_no_right_to_write_names_the_ways_to_get_it(monkeypatch, tmp_path):
    def refused(path, flags, mode=0o777):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(cpu_latency.os, "open", refused)
    with pytest.raises(CpuLatencyUnavailable, match="root only") as e:
        CpuLatencyRequest(5, str(tmp_path / "dev")).hold()
    assert "udev rule" in str(e.value) and "5 us" in str(e.value)


def test_any_other_failure_keeps_the_systems_words(tmp_path):
    with pytest.raises(CpuLatencyUnavailable, match="Is a directory"):
        CpuLatencyRequest(0, str(tmp_path)).hold()


def test_the_cli_holds_it_while_its_stack_is_open_and_streams_without_it_where_it_cannot(monkeypatch, tmp_path, capsys):
    from picodaq.cli.run import hold_cpu_latency

    dev = tmp_path / "cpu_dma_latency"
    dev.write_bytes(b"")
    monkeypatch.setattr(cpu_latency, "PM_QOS_DEVICE", str(dev))
    with ExitStack() as stack:
        hold_cpu_latency(50, stack, quiet=False)
        assert dev.read_bytes() == struct.pack("=i", 50)
        assert len(_holders(dev)) == 1
    assert _holders(dev) == []
    assert capsys.readouterr().err == (
        "holding a CPU latency request of 50 us while streaming (in force, the strictest of all requests: 50 us)\n"
    )
    monkeypatch.setattr(cpu_latency, "PM_QOS_DEVICE", str(tmp_path / "absent"))
    with ExitStack() as stack:
        hold_cpu_latency(0, stack, quiet=True)
    err = capsys.readouterr().err
    assert err.startswith("warning: cannot hold a CPU latency request of 0 us: ") and err.endswith(
        "does not exist (a kernel without PM QoS, or a container that hides it); streaming without it\n"
    )
