"""Keywords for a faulty link: each delegates to the Board's FaultyLinkProxy and to
oracle.streams.loss_accounting."""

from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn

from ..faults import FaultSpec, fault_seed
from ..oracle import streams
from .base import KeywordBase, _bool


class FaultKeywords(KeywordBase):
    # -- faulty links --------------------------------------------------------------

    @keyword
    def use_faulty_link(self, spec: str, seed: int | None = None, enabled: bool = False) -> int:
        """Reconnects through a fault-injecting proxy; returns the seed (random unless given or set
        by ``PICODAQ_FAULT_SEED``), which is also put in the test message.

        Faults start off (``enabled=False``) so configuring the stream is not disturbed;
        `Start Stream` is followed by `Enable Link Faults`. `Stop Stream` turns them off again."""
        with self._failing():
            seed = fault_seed(seed)
            proxy = self.board.use_faulty_link(FaultSpec.parse(spec), seed, _bool(enabled))
        BuiltIn().set_test_message(f"fault spec {proxy.spec}, seed {seed}", append=True)
        logger.info(f"faulty link {proxy.port}: spec {proxy.spec}, seed {seed}")
        return seed

    @keyword
    def enable_link_faults(self) -> None:
        """Starts injecting faults (from the current byte offset of the board's stream)."""
        self._proxy().set_enabled(True)

    @keyword
    def disable_link_faults(self) -> None:
        """Stops injecting faults."""
        self._proxy().set_enabled(False)

    @keyword
    def keep_streaming_until_faults(self, kind: str, count: int = 1, timeout: str = "120 s") -> int:
        """Pumps the stream until the faulty link has injected at least ``count`` faults of ``kind``
        (``stall``, ``bitflip``, ...): a random seed cannot then leave the fault untried. Fails after
        ``timeout`` (a hang guard); returns how many there were."""
        from robot.utils import timestr_to_secs

        proxy = self._proxy()
        session = self._need_session()

        def enough() -> bool:
            return self._count_faults(proxy, kind) >= int(count)

        with self._failing():
            session.run(timestr_to_secs(timeout), until=enough)
        n = self._count_faults(proxy, kind)
        if n < int(count):
            raise AssertionError(f"{n} {kind} fault(s) within {timeout} (seed {proxy.seed}), {count} wanted")
        logger.info(f"{n} {kind} fault(s) injected (seed {proxy.seed})")
        return n

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
