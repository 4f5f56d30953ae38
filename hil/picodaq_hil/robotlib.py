"""Robot Framework keyword library for the picodaq HIL suite (the keyword layer only:
every keyword delegates to picodaq_hil's Board, StreamSession and audit code)."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import numpy as np
from robot.api import logger
from robot.api.deco import keyword, library
from robot.libraries.BuiltIn import BuiltIn

from picodaq import contracts as C
from picodaq.core.blocks import ramp_counts
from picodaq.errors import PicodaqError

from .boards.board import Board, BoardPool
from .faults import FaultSpec, FaultyLinkProxy
from .plots import log_failure_plot
from .stream import FORMATS, StreamResult, StreamSession, stream_config

__version__ = "0.1.0"


def _bool(v: object) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "false", "no", "0", "off", "none")
    return bool(v)


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(sample indices, counts) of a picodaq CSV recording (t_s, sample_index, marker, channels...)."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    if head[:3] != ["t_s", "sample_index", "marker"]:
        raise AssertionError(f"{path}: unexpected columns {head[:3]}")
    idx = np.array([int(r[1]) for r in body], dtype=np.int64)
    data = np.array([[int(v) for v in r[3:]] for r in body], dtype=np.int64).reshape(len(body), len(head) - 3)
    return idx, data


def _read_bdf(path: Path, n: int) -> np.ndarray:
    """The first n digital values of every signal of a BDF file, instants x channels."""
    import pyedflib

    f = pyedflib.EdfReader(str(path))
    try:
        return np.stack([f.readSignal(c, digital=True)[:n] for c in range(f.signals_in_file)], axis=1)
    finally:
        f.close()


@library(scope="SUITE", version=__version__, doc_format="ROBOT")
class PicodaqLibrary:
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
    teardown. The setup soft-resets the board (STOP, Ctrl-C, Ctrl-D, a fresh
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
        self._report_dir = report_dir
        self._port = port or None
        self._pool: BoardPool | None = None
        self._board: Board | None = None
        self._session: StreamSession | None = None
        self._result: StreamResult | None = None

    # -- plumbing ------------------------------------------------------------------

    def _report_root(self) -> Path:
        d = self._report_dir or BuiltIn().get_variable_value("${OUTPUT DIR}") or "."
        return Path(d).absolute()

    @property
    def board(self) -> Board:
        if self._board is None:
            raise AssertionError("no board: call Open Board first (e.g. in Suite Setup)")
        return self._board

    def _fail(self, e: BaseException) -> NoReturn:
        """Turn a library error into a test failure, with the board's recent output logged."""
        b = self._board
        if b is not None and b.log is not None:
            logger.info(f"Device output before the failure ({b.log.path}):\n{b.log.tail(40)}")
        if isinstance(e, PicodaqError):
            raise AssertionError(f"picodaq: {e}") from None
        raise e

    def _result_or_fail(self) -> StreamResult:
        if self._result is None:
            raise AssertionError("no stream has finished yet: use Stop Stream or Stream For first")
        return self._result

    # -- boards --------------------------------------------------------------------

    @keyword
    def open_board(self) -> str:
        """Selects, leases and flashes the board for this suite; returns its name.

        The name says whether it is real hardware (and its port) or the emulated
        board, and why it was chosen. It goes into the suite metadata ``Board``,
        the log, and stderr."""
        try:
            root = self._report_root()
            self._pool = BoardPool(root / "device-logs", port=self._port)
            suite = BuiltIn().get_variable_value("${SUITE NAME}")
            self._board = self._pool.acquire(f"robot pid {os.getpid()}: suite {suite}")
            b = self._board
            if b.flash_result is None:
                b.log = None
                b.flash()
            name = b.name
        except BaseException as e:
            self._fail(e)
        bi = BuiltIn()
        bi.set_suite_metadata("Board", name)
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
    def start_test_on_board(self) -> None:
        """Test setup: opens the test's device log, soft-resets the board and synchronises."""
        self._session = None
        self._result = None
        try:
            bi = BuiltIn()
            name = f"{bi.get_variable_value('${SUITE NAME}')}.{bi.get_variable_value('${TEST NAME}')}"
            self.board.begin_test(name)
        except BaseException as e:
            self._fail(e)

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
        try:
            hello = self.board.need_link().get_info()
        except BaseException as e:
            self._fail(e)
        logger.info(f"HELLO: {hello}")
        if hello.contract_hash != C.CONTRACT_HASH:
            raise AssertionError(f"board contract 0x{hello.contract_hash:08X} != host 0x{C.CONTRACT_HASH:08X}")

    @keyword
    def skip_if_board_cannot_stream(self, rate: int, channels: int) -> None:
        """Skips the test when the board's HELLO says it cannot stream this many channels at this
        rate (a real Pico's aggregate rate is far below the emulated board's)."""
        try:
            hello = self.board.need_link().get_info()
        except BaseException as e:
            self._fail(e)
        if int(channels) > hello.max_channels or int(rate) * int(channels) > hello.max_rate:
            BuiltIn().skip(
                f"{self.board.name} streams at most {hello.max_channels} channels and "
                f"{hello.max_rate} samples/s; {channels} x {rate} Hz is beyond it"
            )

    @keyword
    def flash_firmware(self, force: bool = False) -> bool:
        """Flashes the firmware with `picodaq flash`'s engine if its hashes differ (always with
        ``force=True``), verifies it and waits for its HELLO; returns whether anything was written."""
        try:
            r = self.board.flash(force=_bool(force))
        except BaseException as e:
            self._fail(e)
        logger.info(str(r))
        return r.flashed

    @keyword
    def firmware_should_be_up_to_date(self) -> None:
        """Checks the board's files against this checkout's manifest, and fails if any had to be written."""
        if self.flash_firmware():
            raise AssertionError(f"the firmware was not up to date: {self.board.flash_result}")

    @keyword
    def soft_reset_board(self) -> None:
        """STOP, Ctrl-C, Ctrl-D, then wait for a fresh HELLO and resynchronise."""
        try:
            self.board.soft_reset()
        except BaseException as e:
            self._fail(e)

    @keyword
    def hard_reset_board(self) -> None:
        """Resets the board from scratch (emulated: a respawn; hardware: PICODAQ_RESET_CMD or machine.reset())
        and waits until it answers again."""
        try:
            self.board.hard_reset()
        except BaseException as e:
            self._fail(e)

    @keyword
    def unplug_board(self) -> None:
        """Pulls the board's USB cable: its port vanishes, then comes back. Skips the test on real
        hardware without PICODAQ_UNPLUG_CMD."""
        from .errors import Unsupported

        try:
            self.board.unplug()
        except Unsupported as e:
            BuiltIn().skip(str(e))
        except BaseException as e:
            self._fail(e)

    @keyword
    def reconnect_board(self, timeout: float = 10.0) -> None:
        """Opens the link again once the port is back (a real board is found by its USB serial number)
        and resynchronises (STOP, drain, HELLO)."""
        try:
            self.board.reconnect(float(timeout))
            self.board.sync()
        except BaseException as e:
            self._fail(e)

    # -- streams -------------------------------------------------------------------

    @keyword
    def start_stream(
        self,
        rate: int = 1000,
        channels: int = 1,
        fmt: str = "int16",
        source: str = "ramp",
        samples_per_frame: int = 0,
        record: str = "",
    ) -> None:
        """Configures and starts a stream of ``channels`` channels (0..n-1) at ``rate`` Hz.

        ``record`` names files to record into, separated by commas (.tlv raw link bytes,
        .npy, .csv). Through a faulty link, what the host receives is kept for
        `Loss Accounting Should Be Exact`."""
        try:
            cfg = stream_config(rate, channels, fmt, source, samples_per_frame)
            keep = self.board.proxy is not None
            paths = [p.strip() for p in str(record or "").split(",") if p.strip()]
            self._session = StreamSession.with_files(self.board, cfg, paths, keep_bytes=keep)
            self._session.start()
        except BaseException as e:
            self._session = None
            self._fail(e)

    def _need_session(self) -> StreamSession:
        if self._session is None:
            raise AssertionError("no stream running: use Start Stream first")
        return self._session

    @keyword
    def keep_streaming(self, seconds: str = "1 s") -> None:
        """Pumps the stream for a time (Robot time format), reconnecting if the port drops out."""
        from robot.utils import timestr_to_secs

        try:
            self._need_session().run(timestr_to_secs(seconds))
        except BaseException as e:
            self._fail(e)

    @keyword
    def keep_streaming_until_board_reboots(self, timeout: str = "10 s") -> None:
        """Pumps until a HELLO shows that the board rebooted mid-stream; fails after timeout."""
        from robot.utils import timestr_to_secs

        s = self._need_session()
        try:
            s.run(timestr_to_secs(timeout), until=lambda: s.reboots > 0)
        except BaseException as e:
            self._fail(e)
        if not s.reboots:
            raise AssertionError(f"the board did not reboot within {timeout}")

    @keyword
    def reset_board_mid_stream(self) -> None:
        """Resets the board without stopping the stream first (emulated: SIGUSR1 to the
        supervisor; hardware: PICODAQ_RESET_CMD, else the test is skipped)."""
        from .errors import Unsupported

        try:
            self.board.reset_now()
        except Unsupported as e:
            BuiltIn().skip(str(e))
        except BaseException as e:
            self._fail(e)

    @keyword
    def stop_stream(self) -> dict:
        """Stops the stream (faults off first), waits for the board's final STATUS and returns the
        counters: frames_ok, samples, samples_lost, seq_lost, crc_errors, ... and board_dropped."""
        s = self._need_session()
        try:
            r = self._result = s.stop()
        except BaseException as e:
            self._fail(e)
        finally:
            self._session = None
        logger.info(r.summary())
        return dict(
            r.stats,
            samples_lost=r.samples_lost,
            board_dropped=r.board_dropped,
            reconnects=r.reconnects,
            reboots=r.reboots,
        )

    @keyword
    def stream_for(
        self,
        seconds: str = "1 s",
        rate: int = 1000,
        channels: int = 1,
        fmt: str = "int16",
        source: str = "ramp",
        samples_per_frame: int = 0,
        record: str = "",
    ) -> dict:
        """`Start Stream`, `Keep Streaming` and `Stop Stream` in one; returns the counters."""
        self.start_stream(rate, channels, fmt, source, samples_per_frame, record)
        self.keep_streaming(seconds)
        return self.stop_stream()

    @keyword
    def stream_should_be_complete(self, allow_board_drops: bool = False) -> None:
        """Every block bit-exact, no error or loss on the link, and no sample lost; with
        ``allow_board_drops=True`` the board may drop samples (its ring overflowed) as long as
        every one is counted and it reported at least as many."""
        r = self._result_or_fail()
        problems = r.problems(allow_board_drops=_bool(allow_board_drops))
        if r.samples_lost:
            logger.warn(
                f"{r.samples_lost} samples were lost on the board (it reported dropping {r.board_dropped});"
                f" all counted: {r.summary()}"
            )
        if problems:
            self._fail(AssertionError("stream not complete: " + "; ".join(problems)))

    @keyword
    def stream_should_be_bit_exact(self) -> None:
        """Every SAMPLES block of the last stream equals the ramp of PROTOCOL.md, bit for bit."""
        r = self._result_or_fail()
        if r.ramp is None or not r.ramp.bit_exact:
            detail = "; ".join(r.ramp.mismatches) if r.ramp and r.ramp.blocks else "no ramp blocks"
            self._fail(AssertionError(f"not bit-exact: {detail}"))
        logger.info(f"{r.ramp.blocks} blocks, {r.ramp.samples} instants x {r.ramp.n_channels} channels bit-exact")

    @keyword
    def samples_received_should_be_at_least(self, count: int) -> None:
        """The last stream delivered at least ``count`` sample instants."""
        r = self._result_or_fail()
        if r.samples < int(count):
            raise AssertionError(f"{r.samples} samples received, expected at least {count}")

    @keyword
    def stream_should_have_reconnected(self, times: int = 1) -> None:
        """The last stream survived at least ``times`` reconnects."""
        r = self._result_or_fail()
        if r.reconnects < int(times):
            raise AssertionError(f"{r.reconnects} reconnects, expected at least {times}")

    # -- markers -------------------------------------------------------------------

    @keyword
    def send_marker(self, code: int) -> None:
        """Asks the board to emit a MARKER with ``code`` at its current sample index."""
        try:
            self._need_session().mark(int(code))
        except BaseException as e:
            self._fail(e)

    @keyword
    def markers_should_be(self, *codes: int) -> None:
        """The last stream's MARKERs carry exactly these codes, in order, each at a sample index
        within the stream and never going backwards."""
        r = self._result_or_fail()
        got = [m.code for m in r.markers]
        want = [int(c) for c in codes]
        if got != want:
            raise AssertionError(f"markers {got}, expected {want}")
        idx = [m.sample_index for m in r.markers]
        if idx != sorted(idx):
            raise AssertionError(f"marker sample indices go backwards: {idx}")
        if r.ramp is not None and r.ramp.first_index is not None:
            lo, hi = r.ramp.first_index, r.ramp.end_index
            bad = [i for i in idx if not lo <= i <= hi]
            if bad:
                raise AssertionError(f"marker indices {bad} outside the stream's instants {lo}..{hi}")
        logger.info(f"markers {want} at sample indices {idx}")

    # -- faulty links --------------------------------------------------------------

    @keyword
    def use_faulty_link(self, spec: str, seed: int | None = None, enabled: bool = False) -> int:
        """Reconnects through a fault-injecting proxy; returns the seed (random unless given or set
        by ``PICODAQ_FAULT_SEED``), which is also put in the test message.

        Faults start off (``enabled=False``) so configuring the stream is not disturbed;
        `Start Stream` is followed by `Enable Link Faults`. `Stop Stream` turns them off again."""
        import random

        if seed in (None, "", "None"):
            env = os.environ.get("PICODAQ_FAULT_SEED")
            seed = int(env) if env else random.SystemRandom().randrange(1 << 31)
        seed = int(seed)
        try:
            proxy = self.board.use_faulty_link(FaultSpec.parse(spec), seed, _bool(enabled))
        except BaseException as e:
            self._fail(e)
        BuiltIn().set_test_message(f"fault spec {proxy.spec}, seed {seed}", append=True)
        logger.info(f"faulty link {proxy.port}: spec {proxy.spec}, seed {seed}")
        return seed

    def _proxy(self) -> FaultyLinkProxy:
        if self.board.proxy is None:
            raise AssertionError("no faulty link: use Use Faulty Link first")
        return self.board.proxy

    @keyword
    def enable_link_faults(self) -> None:
        """Starts injecting faults (from the current byte offset of the board's stream)."""
        self._proxy().set_enabled(True)

    @keyword
    def disable_link_faults(self) -> None:
        """Stops injecting faults."""
        self._proxy().set_enabled(False)

    @keyword
    def use_direct_link(self) -> None:
        """Removes the faulty link and connects to the board directly."""
        try:
            self.board.use_direct_link()
        except BaseException as e:
            self._fail(e)

    @keyword
    def loss_accounting_should_be_exact(self, expect_losses: bool = True) -> dict:
        """Audits the last stream over the faulty link against what the board really sent: every
        intact frame delivered exactly once, every lost frame and sample counted, the fault log
        explaining exactly which frames were damaged, every delivered block bit-exact.

        With ``expect_losses`` (default) it also fails if the faults cost no frame at all (a fault
        rate too low to test anything). Returns the audit's numbers."""
        r = self._result_or_fail()
        proxy = self._proxy()
        audit = r.audit(proxy.board_bytes(), proxy.faults)
        logger.info(f"seed {proxy.seed}, spec {proxy.spec}: {audit.summary()}")
        problems = list(audit.problems)
        if r.ramp is not None and not r.ramp.bit_exact:
            problems.append("delivered blocks differ from the ramp: " + "; ".join(r.ramp.mismatches))
        if _bool(expect_losses) and not audit.lost_frames:
            problems.append(f"the faults ({audit.faults}) cost no frame: nothing was tested")
        if problems:
            self._fail(AssertionError(f"loss accounting (seed {proxy.seed}): " + "; ".join(problems)))
        return {
            "board_frames": audit.board_frames,
            "intact": audit.intact,
            "delivered": audit.delivered,
            "lost_frames": audit.lost_frames,
            "lost_samples": audit.lost_samples,
            "counted_frames": audit.counted_frames,
            "counted_samples": audit.counted_samples,
            "connections": audit.connections,
            **{f"faults_{k}": v for k, v in audit.faults.items()},
        }

    # -- recordings ----------------------------------------------------------------

    @keyword
    def recording_should_match_ramp(self, path: str) -> None:
        """A .npy, .csv or .bdf recording of the last stream holds exactly the ramp for its channels
        and format, from the stream's first sample index, with no gap (BDF: the digital values,
        for formats that fit its 24 bits)."""
        r = self._result_or_fail()
        p = Path(path)
        cfg = r.config
        idx = None
        if p.suffix == ".npy":
            data = np.load(p)
        elif p.suffix == ".csv":
            idx, data = _read_csv(p)
        elif p.suffix == ".bdf":
            data = _read_bdf(p, r.samples)
        else:
            raise AssertionError(f"{p}: not a .npy, .csv or .bdf recording")
        first = r.ramp.first_index if r.ramp is not None and r.ramp.first_index is not None else 0
        if data.shape != (r.samples, cfg.n_channels):
            raise AssertionError(f"{p}: shape {data.shape}, the stream delivered {r.samples} x {cfg.n_channels}")
        if r.samples_lost:
            raise AssertionError(f"the stream lost {r.samples_lost} samples; a gapless ramp cannot be expected")
        if not np.array_equal(data, ramp_counts(first, r.samples, cfg.n_channels, cfg.fmt)):
            raise AssertionError(f"{p}: differs from the ramp")
        if idx is not None and not np.array_equal(idx, first + np.arange(r.samples)):
            raise AssertionError(f"{p}: sample indices are not consecutive from {first}")
        logger.info(f"{p}: {data.shape[0]} x {data.shape[1]} samples equal the ramp")

    @keyword
    def replay_should_reproduce(self, capture: str, recording: str) -> None:
        """``picodaq replay CAPTURE.tlv`` (the real CLI) decodes the raw capture into the same
        samples as the live ``recording`` (.npy), with the same counters as the live stream."""
        import json
        import tempfile

        r = self._result_or_fail()
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "replay.npy"
            p = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "picodaq.cli.main",
                    "replay",
                    capture,
                    "--out",
                    str(out),
                    "--stats-json",
                    "-",
                    "--quiet",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if p.returncode != 0:
                raise AssertionError(f"picodaq replay failed: {p.stderr.strip()}")
            stats = json.loads(p.stdout)
            if not np.array_equal(np.load(out), np.load(recording)):
                raise AssertionError(f"replaying {capture} gives other samples than {recording}")
        for k in ("samples", "samples_lost", "seq_lost", "crc_errors"):
            if stats[k] != r.stats[k]:
                raise AssertionError(f"replay counted {k}={stats[k]}, live {r.stats[k]}")
        logger.info(f"replay of {capture}: {stats}")

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
        from robot.utils import timestr_to_secs

        from picodaq import contracts as C

        try:
            link = self.board.need_link()
            status = link.get_status()
            link.pump_until(lambda: False, timestr_to_secs(quiet))
        except BaseException as e:
            self._fail(e)
        samples = link.receiver.stats.samples
        if status.state != C.STATE_IDLE or samples:
            self._fail(AssertionError(f"board state {status.state_name}, {samples} samples arrived since the reset"))

    @keyword
    def sample_format_names(self) -> list[str]:
        """The sample formats the protocol knows (int16, int24, int32)."""
        return list(FORMATS)
