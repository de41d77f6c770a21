"""The `corpus` marker: tests that read the public test corpus (tests/corpus.py).

Where the corpus is absent they are skipped with the reason; under CI (CI=true) the run
fails instead, before any test: CI must have it, and a skip there would hide that.
"""

from __future__ import annotations

import pytest

from corpus import absent, under_ci


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "corpus: reads the public test corpus (NETCAP_CORPUS)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = absent()
    if reason is None:
        return
    marked = [item for item in items if item.get_closest_marker("corpus")]
    if not marked:
        return
    if under_ci():
        raise pytest.UsageError(f"CI=true: {reason} ({len(marked)} tests need it)")
    for item in marked:
        item.add_marker(pytest.mark.skip(reason=reason))
