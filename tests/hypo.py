"""Hypothesis settings for every property test: one profile for CI, one for looking harder.

tests/conftest.py registers both and loads one before any test module is imported:

- ``ci`` (the default): derandomized (the same examples on every run and every machine),
  no example database, a fixed number of examples, no deadline (a loaded machine is slow,
  not wrong). A failure is reproduced by running the test again.
- ``dev``: random examples, the database, and ``DEV_FACTOR`` times as many:
  ``HYPOTHESIS_PROFILE=dev pytest tests/unit``.

A test states how many examples it needs under ``ci`` with ``examples(n)``, so the ``dev``
profile scales it; it never sets derandomize, database or a deadline itself
(tests/unit/test_hypothesis_profile.py checks that).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI = "ci"
DEV = "dev"
CI_EXAMPLES = 100
DEV_FACTOR = 10
PROFILE_ENV = "HYPOTHESIS_PROFILE"


def register() -> str:
    """Register both profiles and load the one HYPOTHESIS_PROFILE names (default ci); returns its name."""
    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile(
        CI,
        derandomize=True,
        database=None,
        max_examples=CI_EXAMPLES,
        deadline=None,
        print_blob=True,
        suppress_health_check=quiet,
    )
    settings.register_profile(
        DEV, derandomize=False, max_examples=CI_EXAMPLES * DEV_FACTOR, deadline=None, suppress_health_check=quiet
    )
    name = os.environ.get(PROFILE_ENV, CI)
    settings.load_profile(name)
    return name


def examples(n: int) -> int:
    """n examples under the ci profile; as many times more as the loaded profile asks for."""
    return max(1, round(n * settings.default.max_examples / CI_EXAMPLES))
