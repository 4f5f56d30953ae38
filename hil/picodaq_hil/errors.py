"""HIL errors: all under picodaq's one root, so the CLI and the fixtures treat them alike."""

from __future__ import annotations

from picodaq.errors import PicodaqError, UsageError


class HilError(PicodaqError):
    """The HIL tooling could not provide what a test asked for."""


class NoBoardError(HilError):
    """No board fits the selection (e.g. PICODAQ_REQUIRE_HARDWARE=1 and none attached)."""


class LeaseTimeout(HilError):
    """Another worker held the board for longer than we were willing to wait."""

    def __init__(self, key: str, holder: str, waited: float):
        super().__init__(f"board {key} is still leased by {holder or 'another worker'} after {waited:.0f} s")
        self.key = key
        self.holder = holder


class BoardLost(HilError):
    """The board did not come back (port gone, no HELLO) within the time allowed."""


class Unsupported(HilError):
    """The operation needs something this board does not have (e.g. unplugging real hardware)."""


class FaultSpecError(UsageError):
    """A fault specification string could not be understood."""
