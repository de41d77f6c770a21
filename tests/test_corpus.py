"""The public test corpus is read in place (tests/corpus.py): the captures the tests use are
the ones listed with their sha256, and where the corpus is absent its tests say so and skip,
or fail under CI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpus import CORPUS, PCAPS, pinned

HERE = Path(__file__).parent


@pytest.mark.corpus
def test_listed_captures_are_the_corpus_files() -> None:
    """Each listed capture is in the corpus with the bytes the tests were checked with."""
    listed = pinned()
    assert len(listed) == 86
    differ = {name for name, digest in listed.items()
              if hashlib.sha256((PCAPS / name).read_bytes()).hexdigest() != digest}
    assert not differ, f"changed in {CORPUS}: {sorted(differ)}"


def test_no_copies_in_the_repository() -> None:
    """The corpus is never copied into tests/data (only the project's own captures are)."""
    digests = set(pinned().values())
    for path in (HERE / "data").rglob("*"):
        if path.is_file() and path.suffix in (".pcap", ".pcapng", ".gz"):
            assert hashlib.sha256(path.read_bytes()).hexdigest() not in digests, path


def _run_corpus_test(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    node = f"{Path(__file__).name}::test_listed_captures_are_the_corpus_files"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
                           node], cwd=HERE, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_absent_corpus_is_skipped_with_its_reason(tmp_path: Path) -> None:
    r = _run_corpus_test({"NETCAP_CORPUS": str(tmp_path / "none"), "CI": "false"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped" in r.stdout
    assert f"public test corpus not found at {tmp_path / 'none'}" in r.stdout
    assert "NETCAP_CORPUS" in r.stdout


def test_absent_corpus_fails_under_ci(tmp_path: Path) -> None:
    r = _run_corpus_test({"NETCAP_CORPUS": str(tmp_path / "none"), "CI": "true"})
    assert r.returncode != 0
    assert "skipped" not in r.stdout
    assert f"CI=true: public test corpus not found at {tmp_path / 'none'}" in r.stdout + r.stderr
