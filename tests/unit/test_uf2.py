"""UF2 files checked whole before anything is written: well-formed images pass, every kind of damage
and a wrong chip are one line naming what is wrong."""

from __future__ import annotations

import struct

import pytest

from fakes import uf2_image as image
from picodaq.errors import UsageError
from picodaq.flash import uf2 as U


def test_a_whole_image_is_read_with_what_it_writes():
    img = U.parse_uf2(bytes(image(8)))
    assert img.family == U.RP2040 and img.family_name == "RP2040" and img.blocks == 8
    assert img.first_address == U.FLASH_BASE and img.end_address == U.FLASH_BASE + 8 * 256
    img.check_chip("RPI-RP2")  # the RP2040's drive takes it


def test_the_vendored_micropython_uf2_is_a_whole_rp2040_image():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "host" / "picodaq" / "boards" / "images" / "RPI_PICO-v1.28.0.uf2"
    img = U.read_uf2(path)
    assert img.family == U.RP2040 and img.blocks == 1327 and img.image_bytes == 339_712
    img.check_chip("RPI-RP2")


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda d: d[: len(d) - 100], "not a whole number of 512-byte UF2 blocks"),
        (lambda d: d[: 3 * U.BLOCK], "5 of its 8 blocks are missing"),
        (lambda d: d[U.BLOCK :], "1 of its 8 blocks are missing"),
        (lambda d: bytes(U.BLOCK) + d[U.BLOCK :], "not a UF2 file"),
        (lambda d: d[: 2 * U.BLOCK] + bytes(U.BLOCK) + d[3 * U.BLOCK :], "block 2 is not a UF2 block"),
        (lambda d: d + d[: U.BLOCK], "block 0 of 8 appears twice"),
        (lambda d: b"", "empty"),
    ],
)
def test_damaged_files_are_refused_naming_the_damage(damage, words):
    with pytest.raises(U.Uf2Error) as e:
        U.parse_uf2(bytes(damage(bytes(image(8)))))
    assert words in str(e.value) and isinstance(e.value, UsageError)


def test_a_block_numbered_past_its_count_or_oversized_is_refused():
    d = image(4)
    struct.pack_into("<I", d, U.BLOCK + 20, 9)  # block 1 says it is block 9 of 4
    with pytest.raises(U.Uf2Error, match="numbered 9 of 4"):
        U.parse_uf2(bytes(d))
    d = image(4)
    struct.pack_into("<I", d, 16, 477)
    with pytest.raises(U.Uf2Error, match="claims 477 payload bytes"):
        U.parse_uf2(bytes(d))


@pytest.mark.parametrize(
    "family, board, ok",
    [
        (U.RP2040, "RPI-RP2", True),
        (U.RP2040, "RP2350", False),
        (U.RP2350_ARM_S, "RP2350", True),
        (U.RP2350_RISCV, "RP2350", True),
        (U.RP2350_ARM_S, "RPI-RP2", False),
    ],
)
def test_the_family_must_be_the_chips(family, board, ok):
    img = U.parse_uf2(bytes(image(4, family=family)))
    if ok:
        img.check_chip(board)
    else:
        with pytest.raises(U.Uf2Error, match="pick the build for this board"):
            img.check_chip(board)


def test_blocks_for_two_chips_or_outside_the_flash_are_refused():
    with pytest.raises(U.Uf2Error, match="several chips"):
        U.parse_uf2(bytes(image(2, family=U.RP2040) + image(2, family=U.RP2350_ARM_S)))
    with pytest.raises(U.Uf2Error, match="below the flash"):
        U.parse_uf2(bytes(image(2, base=0x20000000 - 0x10000000 * 2)))
    with pytest.raises(U.Uf2Error, match="past the chip's flash"):
        U.parse_uf2(bytes(image(2, base=U.FLASH_BASE + (16 << 20) - 256))).check_chip("RPI-RP2")
    with pytest.raises(U.Uf2Error, match="not a Raspberry Pi boot ROM"):
        U.parse_uf2(bytes(image(2))).check_chip("SOMETHING")


def test_a_file_that_cannot_be_read_is_one_line(tmp_path):
    with pytest.raises(U.Uf2Error, match="cannot read"):
        U.read_uf2(tmp_path / "missing.uf2")
    with pytest.raises(U.Uf2Error, match="a folder"):
        U.read_uf2(tmp_path)
