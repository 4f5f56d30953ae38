"""Keywords for a faulty link: each delegates to the Board's FaultyLinkProxy and to
oracle.streams.loss_accounting."""

from __future__ import annotations

from dataclasses import replace

from robot.api import logger
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn
from robot.utils import timestr_to_secs

from ..faults import FaultSpec, fault_seed
from ..faults.spec import KINDS
from ..oracle import streams
from .base import KeywordBase, _bool


class FaultKeywords(KeywordBase):
    # -- faulty links --------------------------------------------------------------

    @keyword
    def use_faulty_link(self, spec: str, seed: int | None = None, enabled: bool = False, scale: float = 1.0) -> int:
        """Reconnects through a fault-injecting proxy; returns the seed (random unless given or set
        by ``PICODAQ_FAULT_SEED``), which is also put in the test message.

        ``scale`` multiplies every per-byte fault rate of ``spec`` (a slower stream gets as many
        faults as the spec gives a faster one). Faults start off (``enabled=False``) so
        configuring the stream is not disturbed; `Start Stream` is followed by `Enable Link Faults`.
        `Stop Stream` turns them off again."""
        with self._failing():
            seed = fault_seed(seed)
            parsed = FaultSpec.parse(spec)
            k = float(scale)
            if k != 1.0:
                parsed = replace(parsed, **{kind: min(0.5, getattr(parsed, kind) * k) for kind in KINDS})
            proxy = self.board.use_faulty_link(parsed, seed, _bool(enabled))
        BuiltIn().set_test_message(f"fault spec {proxy.spec}, seed {seed}", append=True)
        logger.info(f"faulty link {proxy.port}: spec {proxy.spec}, seed {seed}")
        return seed

    @keyword
    def keep_streaming_until_faults(self, kinds: str, count: int = 1, timeout: str = "90 s") -> None:
        """Pumps the stream until the faulty link has injected at least ``count`` faults of each kind
        named (comma-separated, e.g. ``disconnect``): a condition, not a time, so a slower board gets
        the faults a faster one gets sooner, and a random seed cannot leave one untried. Fails after
        ``timeout``."""
        want = [k.strip() for k in str(kinds).split(",") if k.strip()]
        proxy = self._proxy()

        def seen() -> bool:
            return all(self._count_faults(proxy, k) >= int(count) for k in want)

        with self._failing():
            self._need_session().run(timestr_to_secs(timeout), until=seen)
        if not seen():
            raise AssertionError(f"no {count} {' and '.join(want)} fault(s) within {timeout} (seed {proxy.seed})")

    @keyword
    def enable_link_faults(self) -> None:
        """Starts injecting faults (from the current byte offset of the board's stream)."""
        self._proxy().set_enabled(True)

    @keyword
    def disable_link_faults(self) -> None:
        """Stops injecting faults."""
        self._proxy().set_enabled(False)

    @keyword
    def link_faults_should_include(self, kind: str, count: int = 1) -> int:
        """The faulty link injected at least ``count`` faults of ``kind`` in this test (a test of
        what a fault does must prove the fault happened); returns how many."""
        proxy = self._proxy()
        n = self._count_faults(proxy, kind)
        if n < int(count):
            self._fail(AssertionError(f"only {n} {kind} fault(s) were injected (seed {proxy.seed}), {count} wanted"))
        return n

    @staticmethod
    def _count_faults(proxy, kind: str) -> int:
        return sum(1 for f in proxy.faults if f.kind == kind)

    @keyword
    def use_direct_link(self) -> None:
        """Removes the faulty link and connects to the board directly."""
        with self._failing():
            self.board.use_direct_link()

    @keyword
    def loss_accounting_should_be_exact(self, expect_losses: bool = True) -> dict:
        """Audits the last stream over the faulty link against what the board really sent: every
        intact frame delivered exactly once, every lost frame and sample counted, the fault log
        explaining exactly which frames were damaged, every delivered block bit-exact.

        With ``expect_losses`` (default) it also fails if the faults cost no frame at all (a fault
        rate too low to test anything). Returns the audit's numbers."""
        said, problems, numbers = streams.loss_accounting(self._result_or_fail(), self._proxy(), _bool(expect_losses))
        logger.info(said)
        if problems:
            self._fail(AssertionError(f"loss accounting (seed {self._proxy().seed}): " + "; ".join(problems)))
        return numbers
