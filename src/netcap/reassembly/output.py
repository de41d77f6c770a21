"""What the stream stage gives per update (`StreamOutput`), and the canonical order of
its records (`record_order`): the same whatever the number of stage partitions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..records.table import RecordTable
from ..records.types import RECORDS

__all__ = ["Key", "StreamOutput", "record_order"]

Key = tuple[bytes, int, bytes, int]  # (src address, src port, dst address, dst port)


@dataclass
class StreamOutput:
    """What one update produced: records per type (rows with their packet number) and
    counts for the metrics."""

    records: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)  # "protocol/reason" -> count
    gap_bytes: int = 0
    overflows: int = 0
    tls_handshakes: list[float] = field(default_factory=list)  # ClientHello -> ServerHello, s
    # Connections whose protocol an analyzer recognised (a request or response head, a
    # hello, an SSH banner, a DNS message), by either direction's key: the connection
    # table's ApplicationProto (flows/table.py).
    apps: list[tuple[Key, str]] = field(default_factory=list)

    def add(self, name: str, pkt: int, rec: dict[str, Any]) -> None:
        # HTTP and SSH give text as str; the other analyzers give bytes already.
        self.records.setdefault(name, []).append(
            (pkt, _raw(rec) if name in _TEXT_RECORDS else rec))

    def canonical(self) -> StreamOutput:
        """Records in one order whatever the partitioning (see `pool.py`): by packet
        (end of input last), then time, then connection; one connection's records keep
        the order they were made in (a stable sort)."""
        for rows in self.records.values():
            rows.sort(key=record_order)
        return self

    @staticmethod
    def merged(outs: list[StreamOutput]) -> StreamOutput:
        """The outputs of several partitions for one batch, as one."""
        m = StreamOutput()
        for o in outs:
            for name, rows in o.records.items():
                m.records.setdefault(name, []).extend(rows)
            m.errors.update(o.errors)
            m.gap_bytes += o.gap_bytes
            m.overflows += o.overflows
            m.tls_handshakes.extend(o.tls_handshakes)
            m.apps.extend(o.apps)
        return m.canonical()

    def tables(self, only: dict[str, frozenset[str]] | None = None
               ) -> dict[str, RecordTable]:
        """The records as tables (with `only`, just those columns of the types named)."""
        out: dict[str, RecordTable] = {}
        for name, rows in self.records.items():
            out[name] = RecordTable.from_rows(RECORDS[name], [r for _, r in rows],
                                              [p for p, _ in rows],
                                              None if only is None else only.get(name))
        return out


def record_order(row: tuple[int, dict[str, Any]]) -> tuple[int, int, Any]:
    """The canonical sort key of a (packet, record) row (see `StreamOutput.canonical`)."""
    pkt, rec = row
    conn = rec.get("Flow") or (rec.get("SrcIP"), rec.get("SrcPort"), rec.get("DstIP"),
                               rec.get("DstPort"))
    return (pkt if pkt >= 0 else 1 << 62, rec.get("Timestamp", 0), conn)




_TEXT_RECORDS = frozenset({"HTTP", "SSH"})


def _raw(rec: dict[str, Any]) -> dict[str, Any]:
    """Record tables hold strings as bytes: text from the analyzers (HTTP and SSH give
    str, bytes outside ASCII decoded as Latin-1) becomes UTF-8, nested entries too."""
    for k, v in rec.items():
        if isinstance(v, str):
            rec[k] = v.encode()
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                _raw(item)
    return rec


