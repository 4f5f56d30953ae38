"""The keyword library itself: its Libdoc manual, and the keywords for boards, tests and
device logs; streams and faulty links come from streams.py and faults.py."""

from __future__ import annotations

import html
import os

from robot.api import logger
from robot.api.deco import keyword, library
from robot.libraries.BuiltIn import BuiltIn
from robot.utils import timestr_to_secs

from picodaq import contracts as C

from .. import fits
from ..boards.pool import BoardPool
from ..plots import log_failure_plot
from ..stream import FORMATS
from .base import _bool
from .faults import FaultKeywords
from .streams import StreamKeywords

__version__ = "0.1.0"


@library(scope="SUITE", version=__version__, doc_format="ROBOT")
class PicodaqLibrary(StreamKeywords, FaultKeywords):
    """Hardware-in-the-loop keywords for picodaq boards: a real Pico or the emulated board.

    = Which board =

    `Open Board` picks, in this order: the port(s) in ``PICODAQ_PORT`` (several,
    comma-separated, form a pool), else the one board found by USB id
    (VID 0x2E8A), else an emulated board: MicroPython's unix port running the
    same firmware behind a pseudo-terminal, in a fresh flash folder. With
    ``PICODAQ_REQUIRE_HARDWARE=1`` the fallback is an error instead. The board
    used is named in the suite's metadata (``Board``), in the log, and on
    stderr, so a fallback is never silent. A real board is leased for the
    suite (a lock file per board), so pabot processes never share one.

    = Tests =

    Use `Start Test On Board` as test setup and `End Test On Board` as test
    teardown. The setup soft-resets the board (STOP, the escape to the REPL, Ctrl-D, a fresh
    HELLO, PING) so nothing one test left running reaches the next, and opens
    the test's device log: everything the board sent (``.tlv``) and a readable
    account of it with the host's actions (``.log``), under
    ``device-logs/<board>/``. The teardown links the log from log.html, and a
    failing test's message names it (so it shows in xUnit output too).
    Firmware is flashed once per suite, through `picodaq flash`'s engine, and
    only if its hashes differ from the manifest.

    = Streams =

    `Start Stream`, `Keep Streaming`, `Stop Stream`, or `Stream For` in one
    go. Every SAMPLES block of the ramp source is compared bit for bit with
    the ramp of PROTOCOL.md. `Stream Should Be Complete` then checks that
    nothing was lost or, with ``allow_board_drops=True``, that only what the
    board itself reported dropping was lost, and all of it counted.

    = Faulty links =

    `Use Faulty Link` puts a proxy between the board and the host that flips
    bits, drops and duplicates bytes, stalls and disconnects at seeded rates
    (spec like ``bitflip=1e-5,drop=1e-5,dup=1e-5,stall=1e-6,disconnect=1e-7``).
    The seed is printed in the test message; the same seed over the same bytes
    gives the same faults. `Loss Accounting Should Be Exact` then proves that
    every frame that arrived intact was delivered, every loss was counted, and
    the fault log explains exactly which frames were damaged.

    = Example =

    | *** Settings ***
    | Library           picodaq_hil.robotlib.PicodaqLibrary
    | Suite Setup       Open Board
    | Suite Teardown    Close Board
    | Test Setup        Start Test On Board
    | Test Teardown     End Test On Board
    |
    | *** Test Cases ***
    | Eight channels at 1 kHz are bit-exact
    |     Stream For    2 s    rate=1000    channels=8    fmt=int24
    |     Stream Should Be Complete
    |
    | Every loss on a bad link is counted
    |     Use Faulty Link    bitflip=1e-5,drop=1e-5    seed=42
    |     Stream For    2 s    rate=16000    channels=8
    |     Loss Accounting Should Be Exact
    """

    def __init__(self, report_dir: str | None = None, port: str | None = None) -> None:
        """``report_dir`` is where log.html ends up (device logs go to its ``device-logs``
        folder, linked relative to it; default: the output directory); ``port`` overrides
        ``PICODAQ_PORT``."""
        super().__init__(report_dir, port)

    # -- boards --------------------------------------------------------------------

    @keyword
    def open_board(self) -> str:
        """Selects, leases and flashes the board for this suite; returns its name.

        The name says whether it is real hardware (and its port) or the emulated
        board, and why it was chosen. It goes into the suite metadata ``Board``,
        the log, and stderr."""
        with self._failing():
            root = self._report_root()
            self._pool = BoardPool(root / "device-logs", port=self._port)
            suite = BuiltIn().get_variable_value("${SUITE NAME}")
            self._board = self._pool.acquire(f"robot pid {os.getpid()}: suite {suite}")
            b = self._board
            if b.flash_result is None:
                b.log = None
                b.flash()
            name = b.name
        bi = BuiltIn()
        bi.set_suite_metadata("Board", name)
        bi.set_suite_metadata("Tier", self.board.tier)
        rel = os.path.relpath(self.board.log_root / self.board.label, root)
        bi.set_suite_metadata("Device logs", f"[{rel}/|{rel}/]")
        bi.set_suite_metadata("Firmware", str(self.board.flash_result))
        logger.info(f"Suite runs on {name}")
        logger.console(f"picodaq_hil: suite '{suite}' runs on {name}", stream="stderr")
        return name

    @keyword
    def close_board(self) -> None:
        """Stops any stream, releases the board's lease and stops the emulated board."""
        if self._board is not None and self._board.log is not None:
            self._board.end_test()
        if self._pool is not None:
            self._pool.close()
        self._pool = self._board = None

    @keyword
    def board_name(self) -> str:
        """The board's name as reported (kind, port, reason)."""
        return self.board.name

    @keyword
    def board_is_emulated(self) -> bool:
        """True when the suite runs on the emulated board."""
        return self.board.emulated

    @keyword
    def start_test_on_board(self, name: str = "") -> None:
        """Test setup: opens the test's device log, soft-resets the board and synchronises.

        ``name`` names the device log instead of the test (a test that plays the boundary between
        two tests itself, with `End Test On Board` then this, keeps both logs)."""
        self._session = None
        self._result = None
        with self._failing():
            bi = BuiltIn()
            test = name or str(bi.get_variable_value("${TEST NAME}"))
            self.board.begin_test(f"{bi.get_variable_value('${SUITE NAME}')}.{test}")

    @keyword
    def end_test_on_board(self) -> None:
        """Test teardown: stops any stream, closes a faulty link, writes the device log and links it
        from the log; a failing test's message names the log file."""
        b = self.board
        log = b.log
        tail = log.tail(40) if log is not None else ""
        self._session = None
        b.end_test()
        if log is None:
            return
        rel = os.path.relpath(log.path, self._report_root())
        raw = os.path.relpath(log.raw_path, self._report_root())
        logger.info(
            f'Device log: <a href="{html.escape(rel)}">{html.escape(rel)}</a> '
            f'(raw bytes: <a href="{html.escape(raw)}">{html.escape(raw)}</a>)',
            html=True,
        )
        bi = BuiltIn()
        if bi.get_variable_value("${TEST STATUS}") == "FAIL":
            logger.info(f"Last device output:\n{tail}")
            log_failure_plot(log.raw_path, self._report_root())  # the signal around the first wrong/missing instant
            bi.set_test_message(f"\n(device log: {rel})", append=True)

    @keyword
    def board_should_run_this_firmware(self) -> None:
        """Asks for a HELLO and checks its contract hash is the host's (contracts.toml)."""
        with self._failing():
            hello = self.board.need_link().get_info()
        logger.info(f"HELLO: {hello}")
        if hello.contract_hash != C.CONTRACT_HASH:
            raise AssertionError(f"board contract 0x{hello.contract_hash:08X} != host 0x{C.CONTRACT_HASH:08X}")

    @keyword
    def skip_if_board_cannot_stream(self, rate: int, channels: int, fmt: str = "int16", source: str = "ramp") -> None:
        """Skips the test, with the board's own reason, when the board cannot serve this stream: a
        limit its HELLO states (channels, aggregate rate), else its refusal of the very CONFIGURE
        (e.g. its ring cannot hold a second of it). Nothing is started."""
        with self._failing():
            why = fits.refusal(self.board, int(rate), int(channels), fmt, source)
        if why:
            BuiltIn().skip(f"{self.board.tier} tier: {channels} x {rate} Hz {fmt}: {why}")

    @keyword
    def rate_that_fits(self, channels: int, fmt: str = "int16", at_most: int = 16000, source: str = "ramp") -> int:
        """The highest rate up to ``at_most`` that the board takes for ``channels`` channels of
        ``fmt``, asked of the board (its HELLO, then CONFIGURE; nothing is started). Skips the test
        with the board's reason if it takes none."""
        with self._failing(skip_unsupported=True):
            fit = fits.fastest_rate(self.board, int(channels), fmt, int(at_most), source)
        logger.info(f"{self.board.tier} tier, {channels} channels of {fmt}: {fit}")
        BuiltIn().set_test_message(f"{channels} x {fit.rate} Hz ({self.board.tier} tier)", append=True)
        return fit.rate

    @keyword
    def rate_for_case(self, rate: str, channels: int, fmt: str = "int16") -> int:
        """A case's rate: ``<=N`` is the highest the board takes up to N (`Rate That Fits`); a number
        is that rate, the test skipped with the board's reason if it cannot serve it."""
        text = str(rate).strip()
        if text.startswith("<="):
            return self.rate_that_fits(channels, fmt, int(text[2:]))
        self.skip_if_board_cannot_stream(int(text), channels, fmt)
        return int(text)

    @keyword
    def channels_for_case(self, channels: str) -> int:
        """A case's channel count: ``<=N`` is the most the board has up to N (its HELLO), a number is itself."""
        text = str(channels).strip()
        if not text.startswith("<="):
            return int(text)
        with self._failing():
            hello = self.board.need_link().get_info()
        return min(int(text[2:]), hello.max_channels)

    @keyword
    def board_tier(self) -> str:
        """The board's tier: ``unix`` or ``rp2040`` (emulated), ``board`` (real)."""
        return self.board.tier

    @keyword
    def flash_firmware(self, force: bool = False) -> bool:
        """Flashes the firmware with `picodaq flash`'s engine if its hashes differ (always with
        ``force=True``), verifies it and waits for its HELLO; returns whether anything was written."""
        with self._failing():
            r = self.board.flash(force=_bool(force))
        logger.info(str(r))
        return r.flashed

    @keyword
    def flash_should_have_rewritten_every_file(self) -> None:
        """The last flash wrote every file of this checkout's firmware image and the manifest (each
        verified by its SHA-256 on the board as it was written), and removed nothing it should not."""
        r = self.board.flash_result
        if r is None or r.report is None:
            raise AssertionError("no flash yet: use Flash Firmware first")
        image = r.report.image
        want = sorted([f.path for f in image.files] + [image.manifest_file().path])
        if sorted(r.written) != want:
            raise AssertionError(f"written {sorted(r.written)}, expected every file: {want}")
        if r.report.differences:
            raise AssertionError(f"differences after the flash: {r.report.differences}")
        logger.info(f"every file rewritten and verified: {', '.join(want)}")

    @keyword
    def firmware_files_should_match_this_checkout(self) -> None:
        """Reads every firmware file's SHA-256 back from the board (`picodaq flash --check`'s engine,
        writing nothing) and compares it with this checkout's image and manifest; on the emulated
        board, also hashes the files in its flash folder here, independently of the board."""
        import hashlib

        from picodaq.flash import Flasher

        b = self.board
        if b.port is None:
            raise AssertionError("the board has no port (not acquired)")
        port = b.port
        with self._failing():
            b.disconnect()
            try:
                report = Flasher(port).check()
            finally:
                b.connect()
                b.sync()
        image = report.image
        if report.differences or sorted(report.unchanged) != sorted(f.path for f in image.files):
            raise AssertionError(f"the board's files differ from this checkout: {report.differences}")
        folder = getattr(b.emulator, "flash", None) if b.emulated else None
        if folder is not None and getattr(b.emulator, "image", None) is None:
            for f in image.files:
                got = hashlib.sha256((folder / f.path).read_bytes()).hexdigest()
                if got != f.sha256:
                    raise AssertionError(f"{f.path} in the board's flash folder hashes {got}, not {f.sha256}")
            manifest = (folder / image.manifest_file().path).read_bytes()
            if manifest != image.manifest_file().data:
                raise AssertionError("the manifest on the board does not describe this checkout's image")
        logger.info(f"{len(image.files)} files and the manifest match this checkout ({image.target})")

    @keyword
    def firmware_should_be_up_to_date(self) -> None:
        """Checks the board's files against this checkout's manifest, and fails if any had to be written."""
        if self.flash_firmware():
            raise AssertionError(f"the firmware was not up to date: {self.board.flash_result}")

    @keyword
    def soft_reset_board(self) -> None:
        """STOP, the escape to the REPL, Ctrl-D, then wait for a fresh HELLO and resynchronise."""
        with self._failing():
            self.board.soft_reset()

    @keyword
    def hard_reset_board(self) -> None:
        """Resets the board from scratch (emulated: a respawn, on the rp2040 tier machine.reset() as on a
        Pico; hardware: PICODAQ_RESET_CMD or machine.reset()) and waits until it answers again."""
        with self._failing():
            self.board.hard_reset()

    @keyword
    def unplug_board(self) -> None:
        """Pulls the board's USB cable: its port vanishes, then comes back. Skips the test on real
        hardware without PICODAQ_UNPLUG_CMD."""
        with self._failing(skip_unsupported=True):
            self.board.unplug()

    @keyword
    def reconnect_board(self, timeout: float = 10.0) -> None:
        """Opens the link again once the port is back (a real board is found by its USB serial number)
        and resynchronises (STOP, drain, HELLO)."""
        with self._failing():
            self.board.reconnect(float(timeout))
            self.board.sync()

    @keyword
    def device_log_should_contain(self, text: str) -> None:
        """The current test's device log (frames, LOG lines, REPL text, host notes) contains ``text``."""
        log = self.board.log
        if log is None or text not in log.render():
            raise AssertionError(f"the device log does not contain {text!r}")

    @keyword
    def device_log_should_not_contain(self, text: str) -> None:
        """The current test's device log does not contain ``text`` (e.g. ``SAMPLES``: no stream data
        reached this test)."""
        log = self.board.log
        if log is not None and text in log.render():
            self._fail(AssertionError(f"the device log contains {text!r}"))

    @keyword
    def board_should_be_idle_and_quiet(self, quiet: str = "0.3 s") -> None:
        """The board reports STATUS idle, and no SAMPLES frame reaches the host since the last
        (soft) reset, even after waiting ``quiet``."""
        with self._failing():
            link = self.board.need_link()
            status = link.get_status()
            link.pump_until(lambda: False, timestr_to_secs(quiet))
        samples = link.receiver.stats.samples
        if status.state != C.STATE_IDLE or samples:
            self._fail(AssertionError(f"board state {status.state_name}, {samples} samples arrived since the reset"))

    @keyword
    def sample_format_names(self) -> list[str]:
        """The sample formats the protocol knows (int16, int24, int32)."""
        return list(FORMATS)
