"""Keywords for streams, markers and recordings: each delegates to stream.StreamSession
and the oracles (oracle.streams, oracle.recordings)."""

from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword
from robot.utils import timestr_to_secs

from ..oracle import recordings, streams
from ..stream import StreamSession, stream_config
from .base import KeywordBase, _bool


class StreamKeywords(KeywordBase):
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
        self._session = None
        with self._failing():
            cfg = stream_config(rate, channels, fmt, source, samples_per_frame)
            keep = self.board.proxy is not None
            paths = [p.strip() for p in str(record or "").split(",") if p.strip()]
            session = StreamSession.with_files(self.board, cfg, paths, keep_bytes=keep)
            session.start()
            self._session = session

    @keyword
    def keep_streaming(self, seconds: str = "1 s") -> None:
        """Pumps the stream for a time (Robot time format), reconnecting if the port drops out."""
        with self._failing():
            self._need_session().run(timestr_to_secs(seconds))

    @keyword
    def keep_streaming_until_board_reboots(self, timeout: str = "30 s") -> None:
        """Pumps until a HELLO shows that the board rebooted mid-stream; fails after timeout (a Pico
        reboots in about a second, the emulated RP2040 in 3.5 s on a quiet machine, in over 10 s
        beside three other emulators on 2 cores)."""
        s = self._need_session()
        with self._failing():
            s.run(timestr_to_secs(timeout), until=lambda: s.reboots > 0)
        if not s.reboots:
            raise AssertionError(f"the board did not reboot within {timeout}")

    @keyword
    def keep_streaming_until_reconnected(self, times: int = 1, timeout: str = "60 s") -> None:
        """Pumps until the stream has reconnected ``times`` times (after an unplug or a faulty
        link's disconnect), however long the port takes to come back; fails after timeout."""
        s = self._need_session()
        with self._failing():
            s.run(timestr_to_secs(timeout), until=lambda: s.reconnects >= int(times))
        if s.reconnects < int(times):
            raise AssertionError(f"{s.reconnects} reconnects within {timeout}, expected {times}")

    @keyword
    def reset_board_mid_stream(self) -> None:
        """Resets the board without stopping the stream first (emulated: SIGUSR1 to the
        supervisor; hardware: PICODAQ_RESET_CMD, else the test is skipped)."""
        with self._failing(skip_unsupported=True):
            self.board.reset_now()

    @keyword
    def stop_stream(self) -> dict:
        """Stops the stream (faults off first), waits for the board's final STATUS and returns the
        counters: frames_ok, samples, samples_lost, seq_lost, crc_errors, ... and board_dropped."""
        s = self._need_session()
        self._session = None
        with self._failing():
            r = self._result = s.stop()
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
        with self._failing():
            logger.info(streams.check_bit_exact(r))

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
        with self._failing():
            self._need_session().mark(int(code))

    @keyword
    def markers_should_be(self, *codes: int) -> None:
        """The last stream's MARKERs carry exactly these codes, in order, each at a sample index
        within the stream and never going backwards."""
        logger.info(streams.check_markers(self._result_or_fail(), [int(c) for c in codes]))

    # -- recordings ----------------------------------------------------------------

    @keyword
    def recording_should_match_ramp(self, path: str) -> None:
        """A .npy, .csv or .bdf recording of the last stream holds exactly the ramp for its channels
        and format, from the stream's first sample index, with no gap (BDF: the digital values,
        for formats that fit its 24 bits)."""
        logger.info(recordings.check_matches_ramp(self._result_or_fail(), path))

    @keyword
    def replay_should_reproduce(self, capture: str, recording: str) -> None:
        """``picodaq replay CAPTURE.tlv`` (the real CLI) decodes the raw capture into the same
        samples as the live ``recording`` (.npy), with the same counters as the live stream."""
        stats = recordings.check_replay(self._result_or_fail(), capture, recording)
        logger.info(f"replay of {capture}: {stats}")
