"""The keyword library's state and plumbing, shared by its keyword classes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from robot.api import logger
from robot.libraries.BuiltIn import BuiltIn

from picodaq.errors import PicodaqError

from ..boards.board import Board
from ..boards.pool import BoardPool
from ..errors import Unsupported
from ..faults import FaultyLinkProxy
from ..stream import StreamResult, StreamSession


def _bool(v: object) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "false", "no", "0", "off", "none")
    return bool(v)


class KeywordBase:
    """What every keyword class reaches: the board, the running stream, the last result."""

    def __init__(self, report_dir: str | None = None, port: str | None = None) -> None:
        self._report_dir = report_dir
        self._port = port or None
        self._pool: BoardPool | None = None
        self._board: Board | None = None
        self._session: StreamSession | None = None
        self._result: StreamResult | None = None

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

    @contextmanager
    def _failing(self, skip_unsupported: bool = False) -> Iterator[None]:
        """Any error inside fails the test through _fail (the board's recent output logged);
        with skip_unsupported, what this board cannot do (Unsupported) skips the test instead."""
        try:
            yield
        except Unsupported as e:
            if not skip_unsupported:
                self._fail(e)
            BuiltIn().skip(str(e))
        except BaseException as e:
            self._fail(e)

    def _result_or_fail(self) -> StreamResult:
        if self._result is None:
            raise AssertionError("no stream has finished yet: use Stop Stream or Stream For first")
        return self._result

    def _need_session(self) -> StreamSession:
        if self._session is None:
            raise AssertionError("no stream running: use Start Stream first")
        return self._session

    def _proxy(self) -> FaultyLinkProxy:
        if self.board.proxy is None:
            raise AssertionError("no faulty link: use Use Faulty Link first")
        return self.board.proxy
