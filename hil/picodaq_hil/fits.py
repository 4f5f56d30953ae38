"""What stream a board can hold, asked of the board itself.

The suites do not hard-code what a board streams (8 x 16 kHz is nothing for the unix port and
four times a Pico's ring): each case asks. `refusal()` says why the board cannot serve a stream,
in the board's own words: a limit its HELLO states (channels, aggregate rate), else its answer to
that very CONFIGURE (the refusal's text, e.g. "a 1 s ring (261120 bytes) does not fit this
board's 63172"); None when it takes it. `fastest_rate()` finds the highest rate up to a ceiling
that the board takes for a channel count and format, by CONFIGURE (nothing is started), starting
from what its HELLO says: max_rate, and ring_bytes when the HELLO carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from picodaq import contracts as C
from picodaq.errors import CommandFailed

from .errors import Unsupported
from .stream import stream_config

if TYPE_CHECKING:
    from .boards.board import Board


def refusal(board: Board, rate: int, channels: int, fmt: str = "int16", source: str = "ramp") -> str | None:
    """None if the board takes this stream (its CONFIGURE is accepted; nothing starts), else why not."""
    link = board.need_link()
    hello = link.get_info()
    rate, channels = int(rate), int(channels)
    if channels > hello.max_channels:
        return f"the board streams at most {hello.max_channels} channels (its HELLO); this case needs {channels}"
    if rate * channels > hello.max_rate:
        return (
            f"the board streams at most {hello.max_rate} samples/s in all (its HELLO); "
            f"{channels} x {rate} Hz is {rate * channels}"
        )
    cfg = stream_config(rate, channels, fmt, source)
    try:
        link.configure(cfg.rate, cfg.channel_mask, cfg.source, cfg.fmt, cfg.frame_samples())
    except CommandFailed as e:
        return str(e)
    return None


@dataclass(frozen=True)
class Fit:
    rate: int  # the highest rate found that the board takes
    ceiling: int  # what was asked for at most
    refused: int | None  # the lowest rate seen refused (None: the ceiling itself fits)
    why: str  # the board's reason for that refusal

    def __str__(self) -> str:
        if self.refused is None:
            return f"{self.rate} Hz (the case's ceiling) fits"
        return f"{self.rate} Hz fits; {self.refused} Hz does not: {self.why}"


def fastest_rate(board: Board, channels: int, fmt: str = "int16", at_most: int = 16000, source: str = "ramp") -> Fit:
    """The highest rate <= at_most the board takes for this many channels (within 2 %), asked by
    CONFIGURE; Unsupported (a skip) with the board's reason if it takes none."""
    channels, at_most = int(channels), int(at_most)
    hello = board.need_link().get_info()
    if channels > hello.max_channels:
        raise Unsupported(
            f"the board streams at most {hello.max_channels} channels (its HELLO); this case needs {channels}"
        )
    hi = min(at_most, hello.max_rate // channels)
    why = refusal(board, hi, channels, fmt, source)
    if why is None:
        return Fit(hi, at_most, None, "")
    refused, refused_why = hi, why
    lo = 0  # the highest rate seen taken
    ring = getattr(hello, "ring_bytes", None)  # a HELLO with the ring's size gives the first guess
    guess = ring // (channels * C.BYTES_PER_SAMPLE[stream_config(1, 1, fmt).fmt]) if ring else hi // 4
    while True:
        probe = guess if lo == 0 and 0 < guess < refused else (lo + refused) // 2
        if probe <= lo:
            break
        why = refusal(board, probe, channels, fmt, source)
        if why is None:
            lo = probe
        else:
            refused, refused_why = probe, why
        guess = 0
        if lo and refused - lo <= max(1, lo // 50):
            break
        if not lo and refused <= 1:
            break
    if not lo:
        raise Unsupported(f"the board takes no rate for {channels} channels of {fmt}: {refused_why}")
    return Fit(lo, at_most, refused, refused_why)
