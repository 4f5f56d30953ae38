"""Which emulated board stands in when no real one is attached: PICODAQ_TIER.

    unix     MicroPython's unix port behind a pty (boards.unix.EmulatedBoard; the default)
    rp2040   the real rp2 port on an emulated RP2040 (boards.rp2040.Rp2040Board; needs Node.js)

The CLI's no-board fallback (`picodaq record` with nothing attached) and the HIL suite's emulator
fallback both follow it, so a whole run can be moved onto the emulated RP2040 with one variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..errors import UsageError

TIERS = ("unix", "rp2040")
DESCRIPTIONS = {
    "unix": "MicroPython's unix port",
    "rp2040": "MicroPython's rp2 port on an emulated RP2040 (rp2040js)",
}


def emulated_tier(env: Mapping[str, str] | None = None) -> str:
    """The tier PICODAQ_TIER names ("unix" when unset or empty); anything else is a UsageError."""
    value = (os.environ if env is None else env).get("PICODAQ_TIER", "").strip().lower()
    if not value:
        return "unix"
    if value not in TIERS:
        raise UsageError(f"PICODAQ_TIER={value!r}: the emulated tiers are {', '.join(TIERS)}")
    return value
