"""UF2 files (Microsoft's USB flashing format, as the RP2040 and RP2350 boot ROMs take them), checked
whole before a byte of one is written anywhere.

A UF2 file is 512-byte blocks, each: magic 0x0A324655, magic 0x9E5D5157, flags, target address,
payload size, block number, block count, family id (when flags has 0x2000), 476 bytes of data,
magic 0x0AB16F30. `read_uf2` checks every block (magics, sizes, numbering, one family for the
flash image) and says in one line what is wrong with a file that is not a whole UF2 for a chip.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

BLOCK = 512
_HEAD = struct.Struct("<8I")  # magic0, magic1, flags, target address, payload size, block no, blocks, family
MAGIC0, MAGIC1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FILE_CONTAINER = 0x00001000
FLAG_FAMILY = 0x00002000
MAX_PAYLOAD = 476

# the families the Raspberry Pi boot ROMs take (pico-sdk's uf2 families)
RP2040 = 0xE48BFF56
ABSOLUTE = 0xE48BFF57  # RP2350: written where it says, whatever the partition table
DATA = 0xE48BFF58
RP2350_ARM_S = 0xE48BFF59
RP2350_RISCV = 0xE48BFF5A
RP2350_ARM_NS = 0xE48BFF5B
FAMILY_NAMES = {
    RP2040: "RP2040",
    ABSOLUTE: "RP2350 absolute",
    DATA: "data",
    RP2350_ARM_S: "RP2350 (Arm)",
    RP2350_RISCV: "RP2350 (RISC-V)",
    RP2350_ARM_NS: "RP2350 (Arm, non-secure)",
}
# what each chip's boot ROM runs, by the Board-ID its drive's INFO_UF2.TXT shows
CHIP_FAMILIES = {
    "RPI-RP2": {RP2040},
    "RP2350": {RP2350_ARM_S, RP2350_RISCV, RP2350_ARM_NS, ABSOLUTE},
}
FLASH_BASE = 0x10000000
FLASH_SIZE = {"RPI-RP2": 16 << 20, "RP2350": 32 << 20}  # the most either maps (a board has less)


class Uf2Error(UsageError):
    """A file that is not a whole UF2 image for the chip it is meant for."""


@dataclass(frozen=True)
class Uf2Image:
    """A checked UF2 file: its bytes, the family its flash image is for, and what it writes."""

    path: Path
    data: bytes
    family: int
    blocks: int
    first_address: int
    end_address: int  # one past the last byte written

    @property
    def family_name(self) -> str:
        return FAMILY_NAMES.get(self.family, f"family 0x{self.family:08X}")

    @property
    def image_bytes(self) -> int:
        return self.end_address - self.first_address

    def check_chip(self, board_id: str) -> None:
        """Refuse an image the chip behind a drive of this Board-ID cannot run."""
        families = CHIP_FAMILIES.get(board_id)
        if families is None:
            raise Uf2Error(f"{board_id}: not a Raspberry Pi boot ROM picodaq knows (RPI-RP2, RP2350)")
        if self.family not in families:
            want = " or ".join(sorted(FAMILY_NAMES[f] for f in families if f != ABSOLUTE))
            raise Uf2Error(
                f"{self.path}: a UF2 for {self.family_name}, but the board's boot ROM ({board_id}) takes {want}; "
                "pick the build for this board"
            )
        size = FLASH_SIZE[board_id]
        if self.end_address > FLASH_BASE + size:
            raise Uf2Error(f"{self.path}: writes up to 0x{self.end_address:08X}, past the chip's flash")


def read_uf2(path: Path) -> Uf2Image:
    """Read and check a UF2 file whole (a UsageError-style one line for each thing wrong)."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise Uf2Error(f"{path}: a folder, not a .uf2 file") from None
    except OSError as e:
        raise Uf2Error(f"{path}: cannot read: {e.strerror or e}") from None
    return parse_uf2(data, path)


def parse_uf2(data: bytes, path: Path = Path("<uf2>")) -> Uf2Image:
    if not data:
        raise Uf2Error(f"{path}: empty")
    if len(data) % BLOCK:
        raise Uf2Error(
            f"{path}: {len(data):,} bytes is not a whole number of {BLOCK}-byte UF2 blocks (truncated or not a UF2)"
        )
    count = len(data) // BLOCK
    families: dict[int, int] = {}
    seen: dict[tuple[int, int], set[int]] = {}  # (family, blocks) -> block numbers
    lo, hi = None, None
    for i in range(count):
        at = i * BLOCK
        m0, m1, flags, addr, size, no, blocks, family = _HEAD.unpack_from(data, at)
        (end_magic,) = struct.unpack_from("<I", data, at + BLOCK - 4)
        if m0 != MAGIC0 or m1 != MAGIC1 or end_magic != MAGIC_END:
            what = "not a UF2 file" if i == 0 else f"block {i} is not a UF2 block (damaged, or two files joined?)"
            raise Uf2Error(f"{path}: {what}")
        if size > MAX_PAYLOAD or size == 0:
            raise Uf2Error(f"{path}: block {i} claims {size} payload bytes (1..{MAX_PAYLOAD})")
        if blocks == 0 or no >= blocks:
            raise Uf2Error(f"{path}: block {i} is numbered {no} of {blocks}")
        if flags & FLAG_NOT_MAIN_FLASH or flags & FLAG_FILE_CONTAINER:
            continue  # not for the flash: boot ROMs skip these
        if not flags & FLAG_FAMILY:
            raise Uf2Error(f"{path}: block {i} names no family (an old UF2 without family ids)")
        key = (family, blocks)
        nos = seen.setdefault(key, set())
        if no in nos:
            raise Uf2Error(f"{path}: block {no} of {blocks} appears twice")
        nos.add(no)
        families[family] = families.get(family, 0) + 1
        if family != ABSOLUTE and family != DATA:
            lo = addr if lo is None else min(lo, addr)
            hi = addr + size if hi is None else max(hi, addr + size)
    main = [f for f in families if f not in (ABSOLUTE, DATA)] or list(families)
    if not main:
        raise Uf2Error(f"{path}: no block for a chip's flash")
    if len(main) > 1:
        names = ", ".join(FAMILY_NAMES.get(f, f"0x{f:08X}") for f in main)
        raise Uf2Error(f"{path}: blocks for several chips at once ({names}): pick the build for one board")
    family = main[0]
    for (fam, blocks), nos in seen.items():
        if fam == family and len(nos) != blocks:
            missing = blocks - len(nos)
            raise Uf2Error(f"{path}: {missing} of its {blocks} blocks are missing (truncated?)")
    if lo is None or hi is None:
        lo = hi = FLASH_BASE
    if lo < FLASH_BASE:
        raise Uf2Error(f"{path}: writes at 0x{lo:08X}, below the flash (0x{FLASH_BASE:08X})")
    return Uf2Image(path, data, family, families[family], lo, hi)
