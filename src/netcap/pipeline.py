"""The one-way flow for a capture file: source -> decode -> sinks, plus run statistics.

`run_capture` drives it for `net capture`; it owns no parsing or encoding itself.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .decode.batch import Decoded, decode_batch
from .decode.errors import describe
from .decode.linktypes import LINKTYPE_NAMES
from .sinks.ncap import NcapWriter
from .sources.capture import Truncation, open_capture

__all__ = ["CaptureOptions", "RunStats", "run_capture"]


@dataclass
class RunStats:
    packets: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)  # "protocol/reason" -> packets
    linktypes: Counter[str] = field(default_factory=Counter)
    records: dict[str, int] = field(default_factory=dict)
    truncation: Truncation | None = None

    def add(self, d: Decoded) -> None:
        b = d.batch
        self.packets += len(b)
        self.bytes += int(b.wirelen.sum())
        codes, counts = np.unique(d.error[d.error > 0], return_counts=True)
        for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
            self.errors[describe(c)] += k
        lts, counts = np.unique(b.linktype, return_counts=True)
        for lt, k in zip(lts.tolist(), counts.tolist(), strict=True):
            self.linktypes[LINKTYPE_NAMES.get(lt, f"linktype_{lt}")] += k


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    read: str
    out: str
    compress: bool = True
    payload: bool = False
    entropy: bool = False
    include: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()


def run_capture(opts: CaptureOptions) -> RunStats:
    """Decode a capture file into audit-record files. Raises CaptureError if the input
    is not a readable capture; a cut or damaged tail is reported in `truncation`."""
    stats = RunStats()
    t0 = time.perf_counter()
    with open_capture(opts.read, batch_packets=32768) as src:
        writer = NcapWriter(
            opts.out, opts.read, compress=opts.compress, payload=opts.payload,
            entropy=opts.entropy, include=opts.include, exclude=opts.exclude,
        )
        try:
            for batch in src:
                decoded = decode_batch(batch)
                writer.write(decoded)
                stats.add(decoded)
        except BaseException:
            writer.abort()
            raise
        stats.records = writer.close()
        stats.truncation = src.truncation
    stats.seconds = time.perf_counter() - t0
    return stats
