# u32 counters kept as two u16 halves in an array("H"): on rp2 an int >= 2**30
# is a heap object, so a plain counter would start allocating after ~2**30.
import micropython


@micropython.viper
def add(halves: ptr16, i: int, n: int):
    # halves[i] is the low half, halves[i + 1] the high half; n < 2**30
    lo = halves[i] + (n & 0xFFFF)
    hi = halves[i + 1] + (n >> 16) + (lo >> 16)
    halves[i] = lo
    halves[i + 1] = hi


def clear(halves, i):
    halves[i] = 0
    halves[i + 1] = 0
