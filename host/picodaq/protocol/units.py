"""Physical units: what one count of each source means.

| source  | unit  | one count                                                    |
|---------|-------|--------------------------------------------------------------|
| ramp    | (none) | 1 (a synthetic test pattern: physical value = digital value) |
| sine    | (none) | 1 (synthetic, 90 % of the 16-bit full scale, shifted to fmt) |
| adc     | V     | 3.3 V / 4096: the rp2 ADC's 12-bit codes (0..4095), as the firmware ships them |
| ads1299 | uV    | 2 * Vref / gain / 2**24 with Vref = 4.5 V (0.0224 uV at gain 24) |

A BDF header stores physical minimum and maximum as 8 ASCII characters, so
they are rounded to fit; `Scale.bdf_limits()` returns those rounded values and
readers derive the per-count factor from them. For the synthetic sources and
the ADC the limits are exact; for the ADS1299 the digital range is made
symmetric (-(2**23 - 1) .. 2**23 - 1, so zero maps to exactly zero) and the
rounding leaves a gain error below 0.2 ppm.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import contracts as C

# The dimension of plain counts (the synthetic sources, an unknown one): none. Readers take a
# BDF signal's dimension at its word, and MNE reads every signal but uV and mV as volts: "count"
# made a ramp -8,388,608 V. A blank dimension is what MNE's own export writes for signals that
# are not voltages, and what MNE reads as "no unit in the file" (its `units=` may then name one).
COUNTS = ""
ADC_VREF = 3.3
ADC_BITS = 12  # hal_rp2 ships the converter's own 12-bit codes (read_u16() >> 4, FIFO, DMA)
ADC_VOLTS_PER_COUNT = ADC_VREF / (1 << ADC_BITS)
ADS1299_VREF = 4.5
ADS1299_GAINS = (1, 2, 4, 6, 8, 12, 24)
ADS1299_DEFAULT_GAIN = 24


def format_range(fmt: int) -> tuple[int, int]:
    """The two's-complement range of a SAMPLES sample format."""
    bits = 8 * C.BYTES_PER_SAMPLE[fmt]
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class Scale:
    """Counts to physical units: physical = counts * per_count."""

    dimension: str  # BDF physical dimension, at most 8 ASCII characters
    per_count: float
    digital_min: int
    digital_max: int
    transducer: str

    def bdf_limits(self) -> tuple[float, float]:
        """(physical_min, physical_max) as they fit BDF's 8-character fields (ints when whole)."""
        if self.digital_min == -self.digital_max:
            # a symmetric range keeps zero at zero: both ends rounded alike, by the negative one's
            # 8 characters (its sign takes one), else "-750000" and "749999.9" shift every value
            low = _fit8(self.digital_min * self.per_count)
            return low, -low
        return _fit8(self.digital_min * self.per_count), _fit8(self.digital_max * self.per_count)


def _fit8(x: float) -> float:
    """x rounded to the most digits that fit in 8 characters (an int when whole)."""
    if float(x).is_integer() and len(str(int(x))) <= 8:
        return int(x)
    for decimals in range(7, -1, -1):
        v = round(x, decimals)
        text = f"{v:.{decimals}f}"
        if "." in text:  # trailing zeros of a fraction only: "-750000" is not "-75"
            text = text.rstrip("0").rstrip(".")
        if len(text) <= 8:
            v = float(text)
            return int(v) if v.is_integer() else v
    raise ValueError(f"{x} does not fit an 8-character BDF field")


def ads1299_uv_per_count(gain: int) -> float:
    return 2 * ADS1299_VREF / gain / (1 << 24) * 1e6


def scale_for(source: int | None, fmt: int, gain: int = ADS1299_DEFAULT_GAIN) -> Scale:
    """The scale of a source's counts in a sample format (source None: plain counts)."""
    lo, hi = format_range(fmt)
    if source == C.SRC_ADC:
        return Scale("V", ADC_VOLTS_PER_COUNT, 0, (1 << ADC_BITS) - 1, "rp2 ADC, 12-bit codes (3.3 V / 4096)")
    if source == C.SRC_ADS1299:
        if gain not in ADS1299_GAINS:
            raise ValueError(f"ADS1299 gain must be one of {ADS1299_GAINS}, got {gain}")
        return Scale("uV", ads1299_uv_per_count(gain), -hi, hi, f"ADS1299, Vref 4.5 V, gain {gain}")
    what = C.SOURCE_NAMES.get(source, "unknown") if source is not None else "unknown"
    return Scale(COUNTS, 1.0, lo, hi, f"{what} source, 1 unit per count")
