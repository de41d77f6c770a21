"""Where the public test corpus is, and which of its captures the tests use.

The corpus (captures from public test suites with their tshark oracles and published expected
outputs; MANIFEST.md) is used in place, never copied into this repository. One setting finds
it: the environment variable NETCAP_CORPUS, by default `<repo>/../shared/corpus`. The tests
use the captures listed in tests/data/corpus_files.tsv (with the sha256 they were checked
with); tests/conftest.py skips the tests marked `corpus` when it is absent, and fails them
under CI (CI=true), where it must be present. bench/make_bench_pcap.py reads it from here too.
No netcap or pytest import: the bench scripts load this module by path.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CORPUS", "EXPECTED", "ORACLE", "PCAPS", "PINNED", "absent", "corpus_files", "pinned",
           "under_ci"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("NETCAP_CORPUS") or ROOT.parent / "shared" / "corpus")
PCAPS = CORPUS / "pcaps"
ORACLE = CORPUS / "oracle"
EXPECTED = CORPUS / "expected"
PINNED = ROOT / "tests" / "data" / "corpus_files.tsv"


def pinned() -> dict[str, str]:
    """Capture name -> sha256, as listed in tests/data/corpus_files.tsv."""
    out: dict[str, str] = {}
    for line in PINNED.read_text().splitlines():
        if line and not line.startswith("#") and line != "file\tsha256":
            name, digest = line.split("\t")
            out[name] = digest
    return out


def corpus_files() -> list[str]:
    """The listed captures, sorted by name; empty when the corpus is absent (the tests
    that use it are skipped then, or fail under CI)."""
    return sorted(pinned()) if absent() is None else []


def under_ci() -> bool:
    """CI sets CI=true; there the corpus must be present."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def absent() -> str | None:
    """Why the corpus cannot be used (one line), or None when it can."""
    if not PCAPS.is_dir() or not ORACLE.is_dir():
        return (f"public test corpus not found at {CORPUS} (no pcaps/ and oracle/ there); "
                "set NETCAP_CORPUS to its directory")
    return None
