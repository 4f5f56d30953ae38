"""tests/unit starts no process and no board (they live in tests/integration and tests/firmware), so
the whole folder runs in seconds: a test that tries is stopped at once and told where it belongs."""

from __future__ import annotations

import subprocess

import pytest


class _NoProcessHere:
    def __init__(self, args, *a, **kw) -> None:
        raise AssertionError(f"tests/unit starts no process (asked for {args!r}): move the test to tests/integration")


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", _NoProcessHere)
