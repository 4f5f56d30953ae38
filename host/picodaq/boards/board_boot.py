# Boot of an emulated board whose flash is a littlefs2 image. MicroPython code:
# the supervisor runs it as `micropython -i board_boot.py` (never CPython).
#
# As rp2's _boot.py does with the Pico's flash: mount the filesystem (making a
# fresh one when the image is blank), at /flash here, and work from there. Then
# run main.py as a board does at boot, unless the board (re)booted into the raw
# REPL. The filesystem is MicroPython's own littlefs2 driver over a block device
# backed by the image file, so sizes, os.statvfs and OSError 28 (ENOSPC) when
# full are what a Pico would give.
import os
import sys

import vfs


class _Flash:
    # The flash chip: erase blocks in a host file (the extended block protocol)
    def __init__(self, path, block_size):
        self.f = open(path, "r+b")
        self.block_size = block_size
        self.blocks = self.f.seek(0, 2) // block_size

    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * self.block_size + offset)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, offset=0):
        self.f.seek(block * self.block_size + offset)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 3:  # sync
            self.f.flush()
            return 0
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase a block
            self.f.seek(arg * self.block_size)
            self.f.write(b"\xff" * self.block_size)
            return 0
        return 0


def _mount():
    bdev = _Flash(os.getenv("PICODAQ_FLASH_IMAGE"), int(os.getenv("PICODAQ_FLASH_BLOCK") or "4096"))
    try:
        fs = vfs.VfsLfs2(bdev, progsize=256)
    except OSError:
        vfs.VfsLfs2.mkfs(bdev, progsize=256)
        fs = vfs.VfsLfs2(bdev, progsize=256)
    vfs.mount(fs, "/flash")
    os.chdir("/flash")
    sys.path[0] = ""  # imports from the flash, not from this script's folder (as on a board)


def _run(script):
    try:
        f = open(script)
    except OSError:
        return
    with f:
        src = f.read()
    exec(compile(src, script, "exec"), {"__name__": "__main__"})


_mount()
_boot = os.getenv("PICODAQ_BOOT")
del _mount, _Flash, os, sys, vfs
if _boot:
    _run(_boot)
