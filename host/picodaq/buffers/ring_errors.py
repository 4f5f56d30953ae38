"""The byte ring's errors, under the picodaq root."""

from __future__ import annotations

from ..errors import PicodaqError


class RingError(PicodaqError):
    """Base of the ring's errors."""


class ChannelFull(RingError):
    """A non-blocking push found too little room: nothing was written."""

    def __init__(self, wanted: int = 0, free: int = 0) -> None:
        super().__init__(f"ring full: {wanted} bytes offered, {free} free")
        self.wanted = wanted
        self.free = free


class SendersDisconnected(RingError):
    """The producer closed the ring and every byte it wrote has been read."""

    def __init__(self) -> None:
        super().__init__("the ring's producer has closed and everything was read")


class ReceiversDisconnected(RingError):
    """The consumer closed the ring: nothing more will be read."""

    def __init__(self) -> None:
        super().__init__("the ring's consumer has closed")


class WaiterBusy(RingError):
    """A second waiter on one side of a single-producer single-consumer ring."""

    def __init__(self, side: str) -> None:
        super().__init__(f"another {side} is already waiting on this ring (one waiter per side)")
        self.side = side
