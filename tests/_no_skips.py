"""pytest plugin: under ``DRREADY_NO_SKIPS=1`` (set by ``.ci/run``) a skipped test fails.

On a laptop a test that needs something the machine lacks (PostgreSQL, Chromium, Python 3.12)
skips with its reason; CI provides all of them, so there a skip means a check did not run.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("DRREADY_NO_SKIPS") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under DRREADY_NO_SKIPS=1 (CI must run every check): {reason}"
