"""Every property test runs under the suite's hypothesis profile (tests/hypo.py): derandomized,
a fixed number of examples, selected by default; `dev` asks for more on demand."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from hypothesis import settings

import hypo

TESTS = Path(__file__).resolve().parents[1]
# decoder tests are another change's (a new protocol rule): their literal example counts stay until
# it lands; they set neither derandomize nor database, so they run under the profile all the same
LITERAL_COUNTS_ALLOWED = {TESTS / "unit" / "test_decoder.py"}


def settings_calls() -> list[tuple[Path, ast.Call]]:
    out = []
    for p in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(p.read_text())
        if not any(isinstance(n, (ast.Import, ast.ImportFrom)) and "hypothesis" in ast.unparse(n) for n in tree.body):
            continue
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and ast.unparse(n.func) in ("settings", "hypothesis.settings"):
                out.append((p, n))
    return out


def test_the_ci_profile_is_selected_by_default_and_derandomized():
    if os.environ.get(hypo.PROFILE_ENV, hypo.CI) != hypo.CI:
        pytest.skip(f"{hypo.PROFILE_ENV} selects another profile for this run")
    s = settings.default
    assert s.derandomize is True and s.database is None and s.deadline is None
    assert s.max_examples == hypo.CI_EXAMPLES
    assert hypo.examples(60) == 60


def test_the_dev_profile_asks_for_more_examples():
    dev = settings.get_profile(hypo.DEV)
    assert dev.max_examples == hypo.CI_EXAMPLES * hypo.DEV_FACTOR and not dev.derandomize


def test_no_property_test_overrides_the_profile():
    calls = settings_calls()
    assert len(calls) >= 6  # ring, pool, blocks, runs, decoder, firmware commands
    bad = []
    for path, call in calls:
        words = {k.arg: k.value for k in call.keywords}
        where = f"{path.relative_to(TESTS)}:{call.lineno}"
        if {"derandomize", "database", "parent"} & words.keys():
            bad.append(f"{where}: sets {sorted({'derandomize', 'database', 'parent'} & words.keys())}")
        n = words.get("max_examples")
        if n is not None and path not in LITERAL_COUNTS_ALLOWED:
            if not (isinstance(n, ast.Call) and ast.unparse(n.func) == "examples"):
                bad.append(f"{where}: max_examples={ast.unparse(n)}, not examples(n)")
    assert bad == []
