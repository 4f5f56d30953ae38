"""Router: dispatch accepted frames to handlers by message type.

A handler takes a Frame and returns None, or one of the preallocated
RouteError constants below: the hot path never builds an exception or a
string. The router counts each error by its code and releases the frame's
buffer after the handler returns, unless the handler took it
(`frame.take_loan()`, as the SAMPLES route does to give it to a block).
"""

from __future__ import annotations

from collections.abc import Callable

from .. import contracts as C
from ..protocol.frames import Frame


class RouteError:
    """A routing outcome other than success: a constant, compared by identity."""

    __slots__ = ("code", "message")

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"RouteError({self.code})"


NO_HANDLER = RouteError("no_handler", "no handler for this message type")
WRONG_DIRECTION = RouteError("wrong_direction", "a host-to-device message arrived from the device")
BAD_PAYLOAD = RouteError("bad_payload", "the payload does not parse as its message type")
PRIMARY_FULL = RouteError("primary_full", "the primary output was full: the block was dropped (counted)")
NO_PRIMARY = RouteError("no_primary", "no primary output took the block")
ROUTE_ERRORS = (NO_HANDLER, WRONG_DIRECTION, BAD_PAYLOAD, PRIMARY_FULL, NO_PRIMARY)

Handler = Callable[[Frame], "RouteError | None"]


class Router:
    def __init__(self) -> None:
        self._handlers: list[Handler | None] = [None] * 256
        self.errors: dict[str, int] = {e.code: 0 for e in ROUTE_ERRORS}
        self.last_error: RouteError | None = None
        for t in range(256):
            if t in C.MESSAGE_NAMES and t not in C.DEVICE_TO_HOST:
                self._handlers[t] = _wrong_direction

    def on(self, mtype: int, handler: Handler | None) -> None:
        """Route frames of mtype to handler (None: no handler)."""
        if not 0 <= mtype <= 255:
            raise ValueError("message type must be 0..255")
        self._handlers[mtype] = handler

    def route(self, frame: Frame) -> RouteError | None:
        h = self._handlers[frame.type]
        try:
            err = NO_HANDLER if h is None else h(frame)
        finally:
            if frame.loan is not None:
                frame.release()
        if err is not None:
            self.errors[err.code] += 1
            self.last_error = err
        return err

    def counts(self) -> dict[str, int]:
        """Routing errors by code."""
        return dict(self.errors)


def _wrong_direction(frame: Frame) -> RouteError:
    return WRONG_DIRECTION
