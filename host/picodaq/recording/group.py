"""Recording several boards at once: a thread per board, one shared host clock.

Each board has its own Recording (its own Link with its reader thread, its own
pipeline and files); a RecordingGroup runs each one's start/run in its own
thread, so a board that stalls, reconnects or fails never holds up the others,
and its failure never loses their data: every recording is finished (its files
closed) whatever happened to the rest. One board is the group of one.

The caller's thread keeps the live view, the keyboard and Ctrl-C: `should_stop`
is read by every board's thread, and `mark(code)` is queued for each board's
own thread to send, since a Link is driven by one thread only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import PicodaqError
from .outputs import OutputsFailed
from .recorder import Recording, RecordingResult


@dataclass
class Member:
    """One board of the group: its recording and how it ended."""

    label: str
    rec: Recording
    ended: str = "failed"  # "time", "stopped", "lost", or "failed" (an error)
    result: RecordingResult | None = None
    failure: PicodaqError | None = None  # a lost link, a failing output, a board that gave up
    crash: BaseException | None = None  # a bug: the files are still finished, then it is raised
    ran: threading.Event = field(default_factory=threading.Event)  # recording over (finishing may follow)
    marks: deque[int] = field(default_factory=deque)
    thread: threading.Thread | None = None


class RecordingGroup:
    def __init__(
        self,
        members: list[tuple[str, Recording]],
        seconds: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.members = [Member(label, rec) for label, rec in members]
        self.seconds = seconds
        self.should_stop = should_stop or (lambda: False)
        self.started = 0.0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    def start(self) -> None:
        """Every board's thread starts its stream, then records."""
        self.started = time.monotonic()
        for m in self.members:
            m.thread = threading.Thread(target=self._board, args=(m,), name=f"picodaq-record {m.label}", daemon=True)
            m.thread.start()

    def mark(self, code: int) -> None:
        """A MARKER on every board (each sends it from its own thread)."""
        for m in self.members:
            m.marks.append(code)
            m.rec.nudge()

    def nudge(self) -> None:
        """Wake every board's thread from its wait for data: should_stop() has news for it."""
        for m in self.members:
            m.rec.nudge()

    def wait_recorded(self, timeout: float | None) -> bool:
        """True once every board has stopped recording (its files may still be finishing); waits
        up to timeout (None: for as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for m in self.members:
            if not m.ran.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return False
        return True

    def join(self) -> None:
        """Wait until every board's files are finished."""
        for m in self.members:
            if m.thread is not None:
                m.thread.join()

    # -- a board's thread ----------------------------------------------------------

    def _board(self, m: Member) -> None:
        rec = m.rec
        try:
            rec.start(self.seconds)
            m.ended = rec.run(self.seconds, None, self.should_stop, lambda: self._send_marks(m))
        except PicodaqError as e:
            m.failure = e
        except BaseException as e:  # still finish the files before reporting it
            m.crash = e
        finally:
            m.ran.set()
        try:
            m.result = rec.finish(m.ended)
            later = m.result.failure
            if m.failure is None or isinstance(later, OutputsFailed) and isinstance(m.failure, OutputsFailed):
                m.failure = later  # every failed output, at the end, over those failed before the stream stopped
        except PicodaqError as e:
            m.failure = m.failure or e
        except BaseException as e:
            m.crash = m.crash or e

    @staticmethod
    def _send_marks(m: Member) -> None:
        while m.marks:
            m.rec.mark(m.marks.popleft())
