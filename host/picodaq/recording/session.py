"""One stream on one board, pumped until it is time to stop, riding out a lost port:
the session loop `picodaq record` (recorder.Recording) and the HIL suite
(picodaq_hil.stream.StreamSession) share.

    run_until(deadline)   pump the link until the deadline or should_stop();
                          a LinkError (the port vanished, the board went
                          silent) closes the link and, with reconnect on,
                          waits for the board to come back and resumes.

What a session does on each pass and how it finds the board again differs
between the product and the test harness, and is left to four hooks:

- `_step(timeout)`: one pass (pump by default; the recorder also watches STATUS,
  board resets and silence, and restarts the stream).
- `_lost(error)`: the link is gone; let go of it.
- `_reopen()`: a new Link to the board, or None while it is still away.
- `_resume()`: carry on over the new link (the recorder re-handshakes and
  STARTs again; the HIL session opens a new connection to account for).

A session's state is a `SessionState`; `wait_past_deadline` says whether a
board lost near the end is still waited for (the HIL suite, which stops the
stream itself afterwards) or the run ends as "lost" (a recording).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from ..errors import LinkError
from ..transport.link import Link
from .config import StreamConfig


class SessionState(StrEnum):
    """Where a session is; a str, so a display can print it as it is."""

    IDLE = "idle"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


# why run_until() returned
TIME = "time"
STOPPED = "stopped"
LOST = "lost"

TICK_SECONDS = 0.25
FLUSH_SECONDS = 1.0


class Session:
    """The shared loop (see the module docstring); subclasses fill in the hooks."""

    wait_past_deadline = False

    def __init__(self, link: Link, config: StreamConfig, *, reconnect: bool = False) -> None:
        self.link: Link | None = link
        self.url = link.url
        self.config = config
        self.reconnect = reconnect
        self.state = SessionState.IDLE
        self.started = 0.0
        self.reconnects = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    def _need_link(self) -> Link:
        if self.link is None:
            raise LinkError(f"port {self.url} is not connected", port=self.url)
        return self.link

    # -- the loop --------------------------------------------------------------------

    def run_until(
        self,
        deadline: float | None,
        tick: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        poll: Callable[[], None] | None = None,
    ) -> str:
        """Pump until `deadline` (time.monotonic(); None: no end) or should_stop(); returns
        TIME, STOPPED or LOST. tick(elapsed) about 4 times a second (also while reconnecting);
        poll() every pass. Raises LinkError when the board is lost and reconnect is off."""
        next_tick = 0.0
        next_flush = time.monotonic() + FLUSH_SECONDS
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return TIME
            if should_stop and should_stop():
                return STOPPED
            # a pass waits for data until the next thing due, no longer: nothing else wakes it but
            # a nudge (nudge(): a stop asked for, a MARK to send), so an idle stream costs nothing
            due = next_flush
            if tick is not None and next_tick < due:
                due = next_tick
            if deadline is not None and deadline < due:
                due = deadline
            try:
                if poll:
                    poll()
                self._step(max(0.0, due - now))
            except LinkError as e:
                self._lost(e)
                if not self.reconnect:
                    raise
                ended = self._reconnect(deadline, should_stop, tick)
                if ended:
                    return ended
            if tick and now >= next_tick:
                tick(now - self.started)
                next_tick = now + TICK_SECONDS
            if now >= next_flush:
                self._flush()
                next_flush = now + FLUSH_SECONDS

    def _reconnect(
        self, deadline: float | None, should_stop: Callable[[], bool] | None, tick: Callable[[float], None] | None
    ) -> str | None:
        """Wait for the board to come back and resume; returns why the run ended instead, or None."""
        self.state = SessionState.RECONNECTING
        lost_at = time.monotonic()
        self._waiting()
        next_tick = 0.0
        while True:
            now = time.monotonic()
            if not self.wait_past_deadline:
                if deadline is not None and now >= deadline:
                    return LOST
                if should_stop and should_stop():
                    return LOST
            if tick and now >= next_tick:
                tick(now - self.started)
                next_tick = now + TICK_SECONDS
            link = self._reopen()
            if link is None:
                continue
            self.link = link
            try:
                self._resume()
            except LinkError:
                self._drop_link()
                time.sleep(0.2)
                continue
            self.reconnects += 1
            self.state = SessionState.STREAMING
            self._back(time.monotonic() - lost_at)
            return None

    # -- hooks -----------------------------------------------------------------------

    def nudge(self) -> None:
        """Wake the session's thread from its wait for data (from any thread): should_stop() or
        poll() has news for it."""
        link = self.link
        if link is not None:
            link.nudge()

    def _step(self, timeout: float) -> None:
        """One pass: pump, waiting up to timeout for data."""
        self._need_link().pump(timeout)

    def _flush(self) -> None:
        """Every second: push what the outputs hold to disk."""

    def _lost(self, error: LinkError) -> None:
        self._drop_link()

    def _drop_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            link.close()

    def _waiting(self) -> None:
        """The board is lost and the session waits for it (a note for the user)."""

    def _reopen(self) -> Link | None:
        raise NotImplementedError

    def _resume(self) -> None:
        """Carry on over the new link in self.link."""

    def _back(self, seconds: float) -> None:
        """The board is back after `seconds` and the stream goes on (a note for the user)."""
