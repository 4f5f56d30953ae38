"""pytest plugin: the HIL fixtures `board`, `link` and `faulty_link`.

Registered as a pytest11 entry point, so any test in a checkout with picodaq
installed can ask for them:

    def test_stream(board):                       # a soft-reset, connected Board
        s = StreamSession(board, stream_config(1000, 8)); s.start(); s.run(1); r = s.stop()
        assert not r.problems()

    def test_ping(link):                          # the board's picodaq Link
        assert link.ping().status == 0

    @pytest.mark.picodaq_faults("bitflip=1e-5,drop=1e-5", seed=7)
    def test_lossy(faulty_link):                  # the same, through a FaultyLinkProxy
        ...
        assert faulty_link.audit(result).ok

Which board: `--picodaq-port` / `PICODAQ_PORT`, else the one board found by USB
id, else an emulated board (one per xdist worker, soft-reset between tests);
`PICODAQ_REQUIRE_HARDWARE=1` makes the fallback an error. Real boards are
leased per test, so xdist workers take turns. Each test's device log
(`build/hil-logs/<board>/<test>.log` and `.tlv`) is named in the JUnit XML as
the properties `picodaq_board` and `picodaq_device_log`, with the fault seed as
`picodaq_fault_seed`; a failing test's report shows the log's tail; the run
ends with a summary, on stderr too, of which boards the HIL tests ran on.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .boards.board import Board
    from .faults import FaultyLinkProxy

_BOARD = pytest.StashKey["Board"]()
_FAULTS = pytest.StashKey["tuple[str, int]"]()
DEFAULT_FAULTS = "bitflip=1e-5,drop=1e-5,dup=1e-5,stall=1e-6"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("picodaq", "picodaq hardware-in-the-loop")
    g.addoption(
        "--picodaq-port",
        default=None,
        help="board port(s), comma-separated (default: $PICODAQ_PORT, else the one board found by USB id, "
        "else an emulated board)",
    )
    g.addoption("--picodaq-log-dir", default=None, help="device logs folder (default: build/hil-logs)")
    g.addoption(
        "--picodaq-faults",
        default=None,
        help=f"fault spec for faulty_link without a picodaq_faults marker (default: {DEFAULT_FAULTS})",
    )
    g.addoption(
        "--picodaq-seed",
        type=int,
        default=None,
        help="fault seed for every faulty_link (default: $PICODAQ_FAULT_SEED, else random; printed)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "picodaq_faults(spec, seed=None, enabled=True): the faulty_link's fault "
        "spec (e.g. 'bitflip=1e-5,drop=1e-5'), seed, and whether faults start on",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    from .boards.selection import describe_selection

    return [f"picodaq HIL board: {describe_selection(port=config.getoption('--picodaq-port'))}"]


@dataclass
class FaultyLink:
    """What the faulty_link fixture gives: the board, and the proxy its link now goes through."""

    board: Board
    proxy: FaultyLinkProxy

    @property
    def link(self):
        return self.board.need_link()

    @property
    def seed(self) -> int:
        return self.proxy.seed

    @property
    def spec(self):
        return self.proxy.spec

    @property
    def faults(self):
        return self.proxy.faults

    def audit(self, result):
        """The exact-accounting oracle (accounting.audit_link) for a StreamResult made with keep_bytes=True."""
        return result.audit(self.proxy.board_bytes(), self.proxy.faults)


@pytest.fixture(scope="session")
def picodaq_boards(request: pytest.FixtureRequest):
    """This worker's BoardPool: its own emulator, or the selected real boards (leased per test)."""
    from picodaq.errors import PicodaqError

    from .boards.pool import BoardPool

    config = request.config
    log_dir = config.getoption("--picodaq-log-dir") or str(Path(config.rootpath) / "build" / "hil-logs")
    try:
        pool = BoardPool(log_dir, port=config.getoption("--picodaq-port"))
    except PicodaqError as e:
        pytest.fail(f"picodaq: {e}", pytrace=False)
    yield pool
    pool.close()


@pytest.fixture
def board(request: pytest.FixtureRequest, picodaq_boards):
    """A leased board, flashed if its firmware differs, soft-reset and connected; released after the test."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    item = request.node
    b = picodaq_boards.acquire(f"pytest {worker} pid {os.getpid()}: {item.nodeid}")
    try:
        log = b.begin_test(item.nodeid)
    except BaseException:
        try:
            b.end_test()  # keep what the board said: the log explains the failed setup
        except Exception:
            pass
        b.release()
        raise
    item.stash[_BOARD] = b
    item.user_properties.append(("picodaq_board", b.name))
    item.user_properties.append(("picodaq_device_log", str(log.path)))
    try:
        yield b
    finally:
        b.end_test()
        b.release()


@pytest.fixture
def link(board):
    """The board's picodaq Link (a new one after board.reconnect(): use board.link then)."""
    return board.need_link()


def _seed(config: pytest.Config, marker) -> int:
    from .errors import FaultSpecError
    from .faults import fault_seed

    given = marker.kwargs.get("seed") if marker is not None else None
    if given is None:
        given = config.getoption("--picodaq-seed")
    try:
        return fault_seed(given)
    except FaultSpecError as e:
        pytest.fail(f"picodaq: {e}", pytrace=False)


@pytest.fixture
def faulty_link(request: pytest.FixtureRequest, board):
    """The board behind a FaultyLinkProxy (spec from the picodaq_faults marker or --picodaq-faults)."""
    from .faults import FaultSpec

    item = request.node
    marker = item.get_closest_marker("picodaq_faults")
    text = (
        marker.args[0]
        if marker is not None and marker.args
        else (request.config.getoption("--picodaq-faults") or DEFAULT_FAULTS)
    )
    spec = FaultSpec.parse(text)
    seed = _seed(request.config, marker)
    enabled = bool(marker.kwargs.get("enabled", True)) if marker is not None else True
    item.user_properties.append(("picodaq_fault_spec", str(spec)))
    item.user_properties.append(("picodaq_fault_seed", seed))
    item.stash[_FAULTS] = (str(spec), seed)
    proxy = board.use_faulty_link(spec, seed, enabled)
    yield FaultyLink(board, proxy)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    faults = item.stash.get(_FAULTS, None)
    if faults is not None and report.when == "call":
        spec, seed = faults
        report.sections.append(
            (
                "picodaq faulty link",
                f"fault spec {spec}, seed {seed}; reproduce with --picodaq-seed {seed} (or PICODAQ_FAULT_SEED={seed})",
            )
        )
    b = item.stash.get(_BOARD, None)
    if b is not None and report.failed and b.log is not None:
        report.sections.append(("picodaq device log", f"{b.log.path} (last lines)\n{b.log.tail(40)}"))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller sums up every worker's reports
    boards: dict[str, int] = {}
    seeds: list[str] = []
    for reports in terminalreporter.stats.values():
        for r in reports:
            props = dict(getattr(r, "user_properties", ()) or ())
            if getattr(r, "when", None) != "call" or "picodaq_board" not in props:
                continue
            boards[props["picodaq_board"]] = boards.get(props["picodaq_board"], 0) + 1
            if r.failed and "picodaq_fault_seed" in props:
                seeds.append(f"{r.nodeid}: faults {props.get('picodaq_fault_spec')} seed {props['picodaq_fault_seed']}")
    if not boards:
        return
    terminalreporter.section("picodaq HIL boards")
    for name, n in sorted(boards.items()):
        terminalreporter.write_line(f"{n:4d} tests on {name}")
    for s in seeds:
        terminalreporter.write_line(f"failed with {s}")
    emulated = sum(n for name, n in boards.items() if name.startswith("emulated"))
    hardware = sum(boards.values()) - emulated
    line = f"picodaq_hil: {hardware} HIL tests ran on hardware, {emulated} on emulated boards" + (
        " (no real board was tested)" if not hardware else ""
    )
    print(line, file=sys.stderr, flush=True)
