# u32 counters kept as two u16 halves in an array("H"): on rp2 an int >= 2**30
# is a heap object, so a plain counter would start allocating after ~2**30.
import micropython


@micropython.viper
def add(halves: ptr16, i: int, n: int):
    # halves[i] is the low half, halves[i + 1] the high half; 0 <= n < 2**30
    lo = halves[i] + (n & 0xFFFF)
    hi = halves[i + 1] + (n >> 16) + (lo >> 16)
    halves[i] = lo
    halves[i + 1] = hi


@micropython.viper
def snapshot(src: ptr16, i: int, dst: ptr16, j: int):
    # copy a counter an IRQ may be bumping meanwhile: retry until the high
    # half is the same before and after reading the low half
    while True:
        hi = src[i + 1]
        lo = src[i]
        if src[i + 1] == hi:
            break
    dst[j] = lo
    dst[j + 1] = hi


def clear(halves, i):
    halves[i] = 0
    halves[i + 1] = 0
