"""The files the fuzz targets cut their seeds from: the project's own recordings
(tests/data/recorded) and captures of the public corpus, found as the tests find it
(tests/corpus.py: NETCAP_CORPUS, else ../shared/corpus beside the checkout), read in place.
A file that is not there is left out: a target still has its made-up seeds.

Not a target (no `fuzz_` prefix): the targets import it, their folder being first on
sys.path both when they run and when fuzz/run.py takes their seeds."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data" / "recorded"
sys.path.insert(0, str(ROOT / "tests"))
from corpus import PCAPS  # noqa: E402  (tests/corpus.py: no netcap or pytest import)

__all__ = ["PCAPS", "RECORDED", "captures"]


def captures(recorded: tuple[str, ...] = (), corpus: tuple[str, ...] = ()) -> list[str]:
    """The paths of these recordings (names without `.pcap`), then of these corpus
    captures, that exist."""
    paths = [RECORDED / f"{name}.pcap" for name in recorded] + [PCAPS / name for name in corpus]
    return [str(p) for p in paths if p.exists()]
