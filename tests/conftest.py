"""What a test needs from the machine, and what happens when it is not there.

On a developer machine a test whose tool (prometheus, tcpdump, ...) or privilege (root) is
missing skips, saying what is missing. Under CI (env CI=true, as .ci/run sets it) it fails
instead: `make test` installs every tool (tools/setup) and CI runs as root, so a skip there
means a broken install step, and a run of skips must not pass as green.

- `@pytest.mark.needs("prometheus", "promtool", root=True)` on a test, class or module
  (`pytestmark = ...`): checked before the test runs.
- `require(condition, reason)` inside a test or fixture, for needs known only at run time.
- Under CI, every other skip fails too (pytest.skip, skipif, importorskip), whoever wrote it;
  a test that may skip even there, e.g. an opt-in slow run, says so with
  `@pytest.mark.optional`.
- `@pytest.mark.corpus`: the test reads the public test corpus (tests/corpus.py). Where it
  is absent those tests skip with the reason; under CI the run fails before any test.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from corpus import absent

__all__ = ["UNDER_CI", "require"]

UNDER_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip with `reason` unless `condition` (fail instead under CI)."""
    if condition:
        return
    if UNDER_CI:
        pytest.fail(f"{reason} (CI=true: a missing need fails, it does not skip)",
                    pytrace=False)
    pytest.skip(reason)


def missing_needs(tools: tuple[str, ...], root: bool) -> list[str]:
    """What of the tools on the PATH and root privilege is missing, as words for a reason."""
    out = [f"{t} (make test installs it: tools/setup test)" for t in tools
           if shutil.which(t) is None]
    if root and os.geteuid() != 0:
        out.append("root")
    return out


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(*tools, root=False): commands on the PATH (and root) the test needs;"
        " skipped without them, failed under CI=true")
    config.addinivalue_line(
        "markers", "optional: the test may skip under CI=true too (say why in the skip)")
    config.addinivalue_line("markers", "corpus: reads the public test corpus (NETCAP_CORPUS)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = absent()
    if reason is None:
        return
    marked = [item for item in items if item.get_closest_marker("corpus")]
    if not marked:
        return
    if UNDER_CI:
        raise pytest.UsageError(f"CI=true: {reason} ({len(marked)} tests need it)")
    for item in marked:
        item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        lacking = missing_needs(tuple(mark.args), bool(mark.kwargs.get("root", False)))
        require(not lacking, "needs " + ", ".join(lacking))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if (UNDER_CI and report.skipped and not hasattr(report, "wasxfail")
            and item.get_closest_marker("optional") is None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI=true, where nothing may skip ({reason});"
                           " mark it @pytest.mark.optional if it is an opt-in test")
    return report
