# Byte copies for the DMA paths' block handlers (hard IRQ): a DMA block into the
# ring (ADC), and an ADS1299 block's frames gathered into the ring, 3 bytes per
# enabled channel. Both take their offsets and counts from a small parameter
# array p (array("i")), set by the caller:
#   copy(p, dst, src, n)       dst[p[0]:p[0]+n] = src[p[1]:p[1]+n]
#   gather3(p, dst, src, idx)  for each of p[2] frames of p[3] bytes at src[p[1]:],
#                              the p[4] samples of 3 bytes at frame[idx[k]:], in
#                              turn to dst[p[0]:]
# Thumb code where the board has the inline assembler (thumb.py): on the emulated
# RP2040 ~5.5 cycles a byte for copy and ~8 for gather3, where the viper loops
# took ~64 and ~52 (`picodaq bench --only rp2040`); viper elsewhere.
import micropython
from .thumb import assemble


@micropython.viper
def copy_viper(p: ptr32, dst: ptr8, src: ptr8, n: int):
    d = p[0]
    s = p[1]
    e = s + n
    while s < e:
        dst[d] = src[s]
        d += 1
        s += 1


@micropython.viper
def gather3_viper(p: ptr32, dst: ptr8, src: ptr8, idx: ptr8):
    o = p[0]
    f = p[1]
    e = f + p[2] * p[3]
    fsize = p[3]
    nidx = p[4]
    while f < e:
        j = 0
        while j < nidx:
            s = f + int(idx[j])
            dst[o] = src[s]
            dst[o + 1] = src[s + 1]
            dst[o + 2] = src[s + 2]
            o += 3
            j += 1
        f += fsize


_THUMB = """
@micropython.asm_thumb
def copy(r0, r1, r2, r3):
    # r0 p, r1 dst, r2 src, r3 n: 4 bytes a turn, then the rest
    ldr(r4, [r0, 0])
    add(r1, r1, r4)
    ldr(r4, [r0, 4])
    add(r2, r2, r4)
    label(quads)
    cmp(r3, 4)
    blt(tail)
    ldrb(r4, [r2, 0])
    strb(r4, [r1, 0])
    ldrb(r4, [r2, 1])
    strb(r4, [r1, 1])
    ldrb(r4, [r2, 2])
    strb(r4, [r1, 2])
    ldrb(r4, [r2, 3])
    strb(r4, [r1, 3])
    add(r1, 4)
    add(r2, 4)
    sub(r3, 4)
    b(quads)
    label(tail)
    cmp(r3, 0)
    beq(done)
    ldrb(r4, [r2, 0])
    strb(r4, [r1, 0])
    add(r1, 1)
    add(r2, 1)
    sub(r3, 1)
    b(tail)
    label(done)


@micropython.asm_thumb
def gather3(r0, r1, r2, r3):
    # r0 p, r1 dst, r2 src, r3 idx; r7 frames left, r6 sample, r4 r5 scratch
    ldr(r4, [r0, 0])
    add(r1, r1, r4)
    ldr(r4, [r0, 4])
    add(r2, r2, r4)
    ldr(r7, [r0, 8])
    cmp(r7, 0)
    beq(done)
    label(frame)
    mov(r6, 0)
    label(sample)
    add(r5, r3, r6)
    ldrb(r4, [r5, 0])
    add(r4, r4, r2)
    ldrb(r5, [r4, 0])
    strb(r5, [r1, 0])
    ldrb(r5, [r4, 1])
    strb(r5, [r1, 1])
    ldrb(r5, [r4, 2])
    strb(r5, [r1, 2])
    add(r1, 3)
    add(r6, 1)
    ldr(r5, [r0, 16])
    cmp(r6, r5)
    blt(sample)
    ldr(r5, [r0, 12])
    add(r2, r2, r5)
    sub(r7, 1)
    bne(frame)
    label(done)
"""

copy = copy_viper
gather3 = gather3_viper
THUMB = False
_T = assemble(_THUMB)
if _T is not None:
    THUMB = True
    copy = _T["copy"]
    gather3 = _T["gather3"]
_T = None
