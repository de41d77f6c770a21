"""Batch decoding: the packet decoder (`packets.py`), then the datagram analyzers.

`decode_batch` returns one `RecordTable` per record type that occurred, rows in packet
order, and per packet the decode-error reason (0: none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..analyzers.datagrams import analyze_datagrams
from ..records.table import RecordTable
from ..records.types import RECORDS
from ..sources.batch import PacketBatch
from .packets import Columns, decode_packets

__all__ = ["Decoded", "decode_batch"]


@dataclass(slots=True)
class Decoded:
    batch: PacketBatch
    tables: dict[str, RecordTable]  # record name -> rows in packet order
    error: npt.NDArray[np.int16]  # per packet: index into errors.REASONS, 0 = none

    def packets(self, lo: int, hi: int) -> Decoded:
        """The same results for packets lo..hi only (packet indexes rebased to 0)."""
        b = self.batch
        tables: dict[str, RecordTable] = {}
        for name, t in self.tables.items():
            if t.pkt is None:  # invariant (not input)
                raise TypeError("t.pkt is not set")
            a, z = np.searchsorted(t.pkt, [lo, hi])
            if z > a:
                part = t.take(np.arange(a, z))
                if part.pkt is None:  # invariant (not input)
                    raise TypeError("part.pkt is not set")
                part.pkt = part.pkt - lo
                tables[name] = part
        batch = PacketBatch(b.data, b.offset[lo:hi], b.caplen[lo:hi], b.wirelen[lo:hi],
                            b.ts[lo:hi], b.linktype[lo:hi], b.iface[lo:hi], b.first + lo)
        return Decoded(batch, tables, self.error[lo:hi])

    def records(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        """(global packet index, rendered fields) of every record of one type (for tests
        and debugging; sinks use the tables)."""
        t = self.tables.get(name)
        if t is None or t.pkt is None:
            return []
        first = self.batch.first
        return [(first + int(p), row) for p, row in zip(t.pkt, t.to_dicts(), strict=True)]


def decode_batch(batch: PacketBatch, columns: Columns = None, analyze: bool = True) -> Decoded:
    """Decode every packet, and run the datagram analyzers (DNS, NTP, DHCP) unless
    `analyze` is false. `columns` limits the link-to-transport record columns built (for
    a consumer that reads only some, such as the metrics); application records are
    always complete."""
    found, error = decode_packets(batch, columns)
    # A fixed order: record types in declaration order.
    tables: dict[str, RecordTable] = {name: found[name] for name in RECORDS if name in found}
    if analyze:  # application layer: analyzers on the datagrams selected for them
        tables.update(analyze_datagrams(batch, tables, error, full=columns is None))
    if batch.clock_error is not None:  # a rejected timestamp (one reason per packet:
        # a bad header met while decoding keeps its own)
        error = np.where(error == 0, batch.clock_error, error).astype(np.int16)
    return Decoded(batch, tables, error)
