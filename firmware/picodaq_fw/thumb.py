# Thumb inline assembler, where this board's MicroPython has it.
#
# mpy-cross cannot build @micropython.asm_thumb code for the unix port (x64) or
# the RP2350's RISC-V cores, and every module is compiled for the board it goes
# to, so hot loops in Thumb are kept as source text and compiled here, when a
# module loads on an Arm board (.mpy arch 4-8: armv6m to armv7emdp; an RP2040,
# an RP2350 in Arm mode). Elsewhere assemble() returns None and the module uses
# its viper version of the same loop (crc32.py, blit.py).
import micropython
import sys


def assemble(source):
    """The functions source defines, as a dict, or None without a Thumb assembler."""
    arch = getattr(sys.implementation, "_mpy", 0) >> 10
    if not 4 <= arch <= 8:
        return None
    g = {"micropython": micropython}
    try:
        exec(source, g)
    except Exception:  # a build without the inline assembler: viper it is
        return None
    return g
