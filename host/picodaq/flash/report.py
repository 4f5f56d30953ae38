"""What a flash tells as it goes (FlashEvent) and when it is done (FlashReport)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..protocol.messages import Hello
from .image import DeviceInfo, Image


@dataclass(frozen=True)
class FlashEvent:
    """One step, for a progress display.

    kind: "note" (text), "unchanged" (path), "write" (path, done of total bytes;
    repeated as the copy proceeds), "verified" (path, total bytes), "retry"
    (path, text), "remove" (path, text says why), "differs" (path, text: check
    mode), "hello" (text).
    """

    kind: str
    path: str = ""
    done: int = 0
    total: int = 0
    text: str = ""


ProgressCallback = Callable[[FlashEvent], None]


@dataclass
class FlashReport:
    port: str
    device: DeviceInfo
    image: Image
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    differences: list[tuple[str, str]] = field(default_factory=list)  # check(): (path, what)
    bytes_written: int = 0
    hello: Hello | None = None
    checked_only: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.differences and self.hello is not None

    def as_dict(self) -> dict:
        return {
            "port": self.port,
            "device": self.device.describe(),
            "firmware_version": self.image.firmware_version,
            "contract_hash": f"0x{self.image.contract_hash:08X}",
            "target": self.image.target,
            "fallback": self.image.fallback,
            "written": self.written,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "retried": self.retried,
            "differences": [{"path": p, "what": w} for p, w in self.differences],
            "bytes_written": self.bytes_written,
            "hello": self.hello.as_dict() if self.hello else None,
            "checked_only": self.checked_only,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
        }
