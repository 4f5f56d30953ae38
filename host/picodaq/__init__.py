"""picodaq: data acquisition from Pico-class boards.

The public API, in data-path order: a `Link` to a board (any pyserial URL)
feeds a sans-I/O `Receiver`, which decodes frames (`FrameDecoder`, returning
`NEED_DATA` when it needs more bytes) into pooled buffers (`BufferPool`),
hands each block of samples (`SamplesBlock`) to one primary output (a
`BlockQueue`, read with `poll_into` / `poll_each`) and shows a read-only view
to any number of observers (`TapRegistry`). Every error picodaq raises on
purpose is a `PicodaqError`.

    from picodaq import Link

    with Link.open("/dev/ttyACM0") as link:  # any pyserial URL
        link.configure(1000, 0xFF, "ramp", "int16", 20)
        link.start()
        n = link.poll_into(out, timeout=1.0)  # out: an (instants, 8) int32 array
        link.stop()

Names are loaded on first use, so `import picodaq` (and the `picodaq`
command) stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Frame": "picodaq.protocol.frames",
    "FrameDecoder": "picodaq.protocol.decoder",
    "NEED_DATA": "picodaq.protocol.decoder",
    "DecoderStats": "picodaq.protocol.stats",
    "Hello": "picodaq.protocol.messages",
    "Status": "picodaq.protocol.messages",
    "Marker": "picodaq.protocol.messages",
    "Log": "picodaq.protocol.messages",
    "Ack": "picodaq.protocol.messages",
    "ByteRing": "picodaq.buffers.ring",
    "BufferPool": "picodaq.buffers.pool",
    "Loaned": "picodaq.buffers.pool",
    "Receiver": "picodaq.core.receiver",
    "SamplesBlock": "picodaq.core.blocks",
    "BlockView": "picodaq.core.blocks",
    "BlockQueue": "picodaq.core.primary",
    "CallbackOutput": "picodaq.core.primary",
    "TapRegistry": "picodaq.core.taps",
    "HostClock": "picodaq.core.clock",
    "HotPathGuard": "picodaq.core.alloc",
    "Link": "picodaq.transport.link",
    "CpuLatencyRequest": "picodaq.transport.cpu_latency",
    "StreamConfig": "picodaq.recording.config",
    "PicodaqError": "picodaq.errors",
    "UsageError": "picodaq.errors",
    "LinkError": "picodaq.errors",
    "DeviceError": "picodaq.errors",
    "CommandFailed": "picodaq.errors",
    "CommandTimeout": "picodaq.errors",
    "ContractMismatch": "picodaq.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'picodaq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what static checkers and editors see
    from picodaq.buffers.pool import BufferPool, Loaned
    from picodaq.buffers.ring import ByteRing
    from picodaq.core.alloc import HotPathGuard
    from picodaq.core.blocks import BlockView, SamplesBlock
    from picodaq.core.clock import HostClock
    from picodaq.core.primary import BlockQueue, CallbackOutput
    from picodaq.core.receiver import Receiver
    from picodaq.core.taps import TapRegistry
    from picodaq.errors import (
        CommandFailed,
        CommandTimeout,
        ContractMismatch,
        DeviceError,
        LinkError,
        PicodaqError,
        UsageError,
    )
    from picodaq.protocol.decoder import NEED_DATA, FrameDecoder
    from picodaq.protocol.frames import Frame
    from picodaq.protocol.messages import Ack, Hello, Log, Marker, Status
    from picodaq.protocol.stats import DecoderStats
    from picodaq.recording.config import StreamConfig
    from picodaq.transport.link import Link
