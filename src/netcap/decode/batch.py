"""Batch decoding: the fast path for the common stack, the general path for the rest.

`decode_batch` returns one `RecordTable` per record type that occurred, rows in packet
order, and per packet the decode-error reason (0: none). With `fast=False` every packet
goes through the general decoder; the results are equal either way (tested).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..analyzers.datagrams import analyze_datagrams
from ..records.table import RecordTable
from ..records.types import RECORDS
from ..sources.batch import PacketBatch
from .fast import Columns, decode_fast
from .general import decode_packet

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


def decode_batch(batch: PacketBatch, fast: bool = True, columns: Columns = None,
                 analyze: bool = True) -> Decoded:
    """Decode every packet, and run the datagram analyzers (DNS, NTP, DHCP) unless
    `analyze` is false. `columns` limits the link-to-transport record columns built (for
    a consumer that reads only some, such as the metrics); application records are
    always complete."""
    n = len(batch)
    error = np.zeros(n, np.int16)
    parts: dict[str, list[RecordTable]] = defaultdict(list)
    if fast and n:
        res = decode_fast(batch, columns)
        for name, t in res.tables.items():
            parts[name].append(t)
        rest = np.flatnonzero(~res.done)
    else:
        rest = np.arange(n)
    if rest.size:
        for name, t in _decode_general(batch, rest, error, columns).items():
            parts[name].append(t)
    tables: dict[str, RecordTable] = {}
    for name in RECORDS:  # a fixed order: record types in declaration order
        ts = parts.get(name)
        if ts:
            t = RecordTable.concat(ts)
            tables[name] = t.sorted_by_packet() if len(ts) > 1 else t
    if analyze:  # application layer: analyzers on the datagrams selected for them
        tables.update(analyze_datagrams(batch, tables, error, full=columns is None))
    if batch.clock_error is not None:  # a rejected timestamp (one reason per packet:
        # a bad header met while decoding keeps its own)
        error = np.where(error == 0, batch.clock_error, error).astype(np.int16)
    return Decoded(batch, tables, error)


def _decode_general(
    batch: PacketBatch, rows: npt.NDArray[np.int64], error: npt.NDArray[np.int16],
    columns: Columns,
) -> dict[str, RecordTable]:
    data = batch.data
    offsets, caplens, linktypes = batch.offset, batch.caplen, batch.linktype
    recs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    pkts: dict[str, list[int]] = defaultdict(list)
    for i in rows.tolist():
        start = int(offsets[i])
        pkt = data[start : start + int(caplens[i])].tobytes()
        out, err = decode_packet(pkt, int(linktypes[i]))
        if err:
            error[i] = err
        for name, fields in out:
            if "_poff" in fields:  # payload offset: packet-relative -> batch buffer
                fields["_poff"] += start
            recs[name].append(fields)
            pkts[name].append(i)
    tables: dict[str, RecordTable] = {}
    for name, rs in recs.items():
        pk = np.asarray(pkts[name], dtype=np.int64)
        only = None if columns is None else columns.get(name, frozenset())
        t = RecordTable.from_rows(RECORDS[name], rs, pk, only)
        t.cols["Timestamp"] = batch.ts[pk]
        if "_poff" in rs[0] and (only is None or "_poff" in only):  # payload offset
            t.cols["_poff"] = np.asarray([r["_poff"] for r in rs], dtype=np.int64)
        tables[name] = t
    return tables
