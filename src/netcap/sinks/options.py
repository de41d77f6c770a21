"""What to write and how: the record types wanted (-include/-exclude) and the file
options. Apart from the encoder and the writer (`ncap.py`), so a job that writes no
files (counting, serving metrics) decides what it counts without loading them."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["EncodeOptions", "Encoded"]

# record type -> (file bytes for this batch, number of records)
Encoded = dict[str, tuple[bytes, int]]


class EncodeOptions(NamedTuple):
    compress: bool = True
    payload: bool = False
    entropy: bool = False
    include: frozenset[str] | None = None  # record types to write (None: all)
    exclude: frozenset[str] = frozenset()
    level: int = 1  # ISA-L level 0-3; 1 is zlib-6-like ratio at several times the speed

    def wanted(self, name: str) -> bool:
        return (self.include is None or name in self.include) and name not in self.exclude
