"""Processing stages: the plugin API for working on sample blocks.

A stage has two entry points, and `run(stage, block)` picks one by what the
caller holds:

- `process(view)`: the caller holds a read-only `BlockView` (an observer, or
  any code that shares the block): read it and return a result.
- `process_in_place(block)`: the caller holds the `SamplesBlock` itself,
  which means it owns it and holds the only reference (the primary output, or
  whoever took it from a BlockQueue): the stage may overwrite the block's data
  and return a view of it. The default falls back to `process(block.view)`.

`ScaleToUnits` is the first stage: counts to physical units, for the
ADS1299 (microvolts, by PGA gain) and the rp2 ADC (volts).
In place it writes float32 over the block's own int32 memory (same size, so
no allocation), after which the block's `values` are in the new unit and its
`counts` are gone (asking for them raises).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import contracts as C
from ..protocol import units
from .blocks import BlockView, SamplesBlock


class Stage:
    """Base class of processing stages."""

    def process(self, view: BlockView) -> Any:
        raise NotImplementedError

    def process_in_place(self, block: SamplesBlock) -> Any:
        return self.process(block.view)


def run(stage: Stage, block: SamplesBlock | BlockView) -> Any:
    """Apply stage: in place when the caller holds the block itself, else on its read-only view."""
    if isinstance(block, SamplesBlock):
        return stage.process_in_place(block)
    return stage.process(block)


class ScaleToUnits(Stage):
    """value = counts * scale + offset, in `unit`."""

    def __init__(self, scale: float, unit: str, offset: float = 0.0) -> None:
        if not scale or scale != scale:
            raise ValueError("scale must be a non-zero number")
        self.scale = float(scale)
        self.offset = float(offset)
        self.unit = unit

    @classmethod
    def ads1299_microvolts(cls, gain: int = units.ADS1299_DEFAULT_GAIN) -> ScaleToUnits:
        """ADS1299 codes to microvolts at this PGA gain (the scale of units.py, as BDF uses)."""
        return cls(units.scale_for(C.SRC_ADS1299, C.FMT_INT24, gain).per_count, "uV")

    @classmethod
    def rp2_adc_volts(cls) -> ScaleToUnits:
        """rp2 ADC 12-bit codes to volts (the scale of units.py, as BDF uses)."""
        return cls(units.ADC_VOLTS_PER_COUNT, "V")

    def process(self, view: BlockView | SamplesBlock, out: np.ndarray | None = None) -> np.ndarray:
        """A float64 (instants x channels) array in `unit`; written into out when given."""
        counts = view.counts
        if out is None:
            out = np.empty(counts.shape, dtype=np.float64)
        np.multiply(counts, self.scale, out=out)
        if self.offset:
            np.add(out, self.offset, out=out)
        return out

    def process_in_place(self, block: SamplesBlock) -> np.ndarray:
        """Overwrite the block's int32 counts with float32 values in `unit`; returns them."""
        counts = block.counts
        if not counts.flags.writeable:  # a detached block around read-only memory: not ours to change
            return self.process(block.view)
        values = counts.view(np.float32)
        np.multiply(counts, self.scale, out=values, casting="same_kind")
        if self.offset:
            np.add(values, self.offset, out=values)
        block.unit = self.unit
        return values
