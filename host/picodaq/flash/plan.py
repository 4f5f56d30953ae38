"""What a board holds, read by the flasher's probe, and what a deployment must change
there: which files are stale, and whether the new ones fit (no I/O here)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .errors import StorageFull
from .image import MANIFEST, PACKAGE, DeviceInfo, Image, ImageFile

PART = ".part"  # suffix of a file being copied, renamed over the real one once complete


@dataclass
class BoardFiles:
    """What the probe found on the board."""

    info: DeviceInfo
    package: dict[str, int | None] | None  # name -> size in picodaq_fw/, None if the folder is missing
    main_size: int | None
    manifest: bytes | None

    @classmethod
    def from_probe(cls, answer: Any) -> BoardFiles:
        """From what `_pd_probe` prints (device/helpers.py), its implementation name checked by the caller."""
        (name, version, mpy, platform, machine, vfs, listing, main_size, manifest, has_hashlib) = answer
        release = ".".join(str(v) for v in version[:3]) + (f"-{version[3]}" if len(version) > 3 and version[3] else "")
        free = total = None
        block = 4096
        if vfs:
            block = vfs[1] or vfs[0] or block
            free, total = vfs[4] * block, vfs[2] * block
        info = DeviceInfo(
            name, tuple(version[:3]), release, mpy, platform, machine or platform, free, total, block, bool(has_hashlib)
        )
        package = None if listing is None else {n: size for n, kind, size in listing if kind != 0x4000}
        return cls(info, package, main_size, None if manifest is None else manifest.encode())

    def present(self, path: str) -> bool:
        if path == "main.py":
            return self.main_size is not None
        name = path.split("/", 1)[1]
        return self.package is not None and name in self.package

    def size(self, path: str) -> int:
        if path == "main.py":
            return self.main_size or 0
        return (self.package or {}).get(path.split("/", 1)[1]) or 0

    def stale(self, image: Image) -> list[tuple[str, str]]:
        """Files in picodaq_fw/ that are not part of the image, with the reason."""
        wanted = {f.path.split("/", 1)[1] for f in image.files if f.path.startswith(PACKAGE + "/")}
        wanted.add(MANIFEST.split("/", 1)[1])
        out = []
        for name in sorted(self.package or {}):
            if name in wanted:
                continue
            stem, ext = os.path.splitext(name)
            if ext in (".py", ".mpy") and ({stem + ".py", stem + ".mpy"} & wanted):
                why = (
                    f"stale {ext} twin: the board would import it instead of the new module"
                    if ext == ".py"
                    else f"stale {ext} twin of the new module"
                )
            elif name.endswith(PART):
                why = "left over from an interrupted copy"
            else:
                why = "not part of this firmware"
            out.append((f"{PACKAGE}/{name}", why))
        return out

    def check_space(self, todo: list[ImageFile], stale: list[tuple[str, str]], manifest: ImageFile) -> None:
        """Refuse before writing anything when the files cannot fit, counted as they
        will be written: each new copy exists next to the old one until renamed."""
        info = self.info
        if info.free_bytes is None:
            return
        bs = info.block_size

        def blocks(n: int) -> int:
            return max(1, -(-n // bs)) * bs if n else 0

        free = info.free_bytes + sum(blocks(self.size(p)) for p, _ in stale)
        free += blocks(len(self.manifest or b""))
        free = max(0, free - 2 * bs)  # littlefs keeps spare blocks for its metadata
        net = peak = 0
        first = None
        for f in [*todo, manifest]:
            new = blocks(len(f.data))
            if first is None and net + new > free:
                first = f.path
            peak = max(peak, net + new)
            net += new - (0 if f is manifest else blocks(self.size(f.path)))
        if first is not None:
            raise StorageFull(
                f"device storage full: copying the firmware needs {peak} bytes of the board's flash, only "
                f"{free} are free ({info.total_bytes} in all); remove files from the board (mpremote rm) "
                "and flash again",
                first,
                peak,
                free,
            )
