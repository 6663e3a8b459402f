"""Redis and PostgreSQL in the tests are real servers. Without one, a test that needs it skips on a
developer's machine and fails in CI (``CI`` set, as CI runs ``.ci/run``, which starts both): a
suite that silently skipped there would pass while testing nothing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def server_missing(reason: str) -> NoReturn:
    """Skip the test for a missing server, or fail it in CI."""
    if in_ci():
        pytest.fail(f"{reason}; in CI a missing server fails the test instead of skipping it", pytrace=False)
    pytest.skip(reason)
