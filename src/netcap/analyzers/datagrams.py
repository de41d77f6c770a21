"""Datagram analyzers: which UDP payloads go to which parser, run on a decoded batch.

Dispatch is one table, by port, destination port first (as gopacket decides the layer
after UDP). Only the selected datagrams cost per-packet work: the ports are matched
vectorized over the batch's UDP table, and each analyzer's payloads are read by one call
into its compiled parser for the whole selection (`_dns`, `_datagrams`), which gives the
records (or, for NTP and DNS counting, columns) and each failed payload's reason. That
reason becomes the packet's decode-error reason (the layers below stay decoded); a
message with an error yields no record.

`full=False` (decoding for metrics alone) builds only what the metrics read: for DNS the
header fields and question types, after checking the whole message exactly as the full
parse would (tested), so counts and errors are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode.errors import code
from ..records.table import Children, Ragged, RecordTable
from ..records.types import RECORDS
from ..sources.batch import PacketBatch
from ._datagrams import dhcp_batch, ntp_columns
from ._dns import check_batch, parse_batch

__all__ = ["ANALYZER_RECORDS", "UDP_COLUMNS", "UDP_PORTS", "analyze_datagrams"]

# UDP port -> record type of the analyzer for it (53 DNS, 5353 mDNS, 5355 LLMNR).
UDP_PORTS: dict[int, str] = {53: "DNS", 5353: "DNS", 5355: "DNS", 123: "NTP", 67: "DHCPv4",
                             68: "DHCPv4"}
ANALYZER_RECORDS = frozenset(UDP_PORTS.values())
# The UDP record columns this stage reads (decoding for metrics alone must build them).
UDP_COLUMNS = frozenset({"SrcPort", "DstPort", "SrcIP", "DstIP", "PayloadSize", "_poff"})

I64 = npt.NDArray[np.int64]
Errors = npt.NDArray[np.int16]
# A compiled batch parser: (data, poff, size) -> (records, indexes parsed, indexes
# failed, their reasons).
BatchParser = Callable[[npt.NDArray[np.uint8], I64, I64],
                       tuple[list[dict[str, Any]], I64, I64, Errors]]


class _Selected:
    """The UDP rows given to one analyzer: their payloads and the columns every
    application record copies from UDP (addresses, ports, packet, time)."""

    def __init__(self, batch: PacketBatch, udp: RecordTable, rows: I64) -> None:
        if udp.pkt is None:  # invariant (not input)
            raise TypeError("udp.pkt is not set")
        self.batch = batch
        self.udp = udp
        self.rows = rows
        self.pkt = udp.pkt[rows]
        self.poff = np.asarray(udp.cols["_poff"], np.int64)[rows]
        self.size = np.asarray(udp.cols["PayloadSize"], np.int64)[rows]

    def table(self, name: str, keep: I64, cols: dict[str, Any]) -> RecordTable:
        """A record table of the kept rows (indexes into the selection), with the
        columns given plus those copied from UDP."""
        rows = self.rows[keep]
        udp = self.udp.cols
        src, dst = udp["SrcIP"], udp["DstIP"]
        if not (isinstance(src, Ragged) and isinstance(dst, Ragged)):  # invariant (not input)
            raise TypeError("unexpected column types")
        cols.update(Timestamp=self.batch.ts[self.pkt[keep]], SrcIP=src.take(rows),
                    DstIP=dst.take(rows), SrcPort=np.asarray(udp["SrcPort"])[rows],
                    DstPort=np.asarray(udp["DstPort"])[rows])
        return RecordTable(RECORDS[name], int(keep.shape[0]), cols, self.pkt[keep])


def _fail(sel: _Selected, error: Errors, bad: I64, reasons: Errors) -> None:
    """Set the decode error of the packets whose payload failed (first error wins)."""
    pkts = sel.pkt[bad]
    free = error[pkts] == 0
    error[pkts[free]] = reasons[free]


def _parsed(sel: _Selected, error: Errors, parse: BatchParser,
            name: str) -> RecordTable | None:
    """Every payload parsed by one call of the compiled parser; rows of the records
    that parsed."""
    recs, keep, bad, reasons = parse(sel.batch.data, sel.poff, sel.size)
    if bad.size:
        _fail(sel, error, bad, reasons)
    if not keep.size:
        return None
    cols = RecordTable.from_rows(RECORDS[name], recs, None).cols
    return sel.table(name, keep, cols)


def _dns(sel: _Selected, error: Errors, full: bool) -> RecordTable | None:
    if full:
        return _parsed(sel, error, parse_batch, "DNS")
    # Counting: every message checked in one compiled call, which keeps the question
    # types and the header fields of those that passed.
    keep, bad, reasons, qtypes, parents, head = check_batch(sel.batch.data, sel.poff,
                                                            sel.size)
    if bad.size:
        _fail(sel, error, bad, reasons)
    if not keep.size:
        return None
    flags = head[1]
    questions = RecordTable(RECORDS["DNSQuestion"], len(qtypes), {"Type": qtypes})
    cols: dict[str, Any] = {
        "ID": head[0], "QR": (flags & 0x8000) != 0,
        "OpCode": (flags >> 11) & 0xF, "ResponseCode": flags & 0xF,
        "QDCount": head[2], "ANCount": head[3],
        "Questions": Children(parents, questions),
    }
    return sel.table("DNS", keep, cols)


_NTP_TRUNCATED = code("ntp", "truncated")


def _ntp(sel: _Selected, error: Errors, full: bool) -> RecordTable | None:
    """NTP: the fixed 48-byte header of every message at once."""
    short = np.flatnonzero(sel.size < 48)
    if short.size:
        _fail(sel, error, short, np.full(short.size, _NTP_TRUNCATED, np.int16))
    keep = np.flatnonzero(sel.size >= 48)
    if not keep.size:
        return None
    cols = ntp_columns(sel.batch.data, sel.poff[keep], sel.size[keep])
    return sel.table("NTP", keep, cols)


def _dhcp(sel: _Selected, error: Errors, full: bool) -> RecordTable | None:
    return _parsed(sel, error, dhcp_batch, "DHCPv4")


_ANALYZERS: dict[str, Callable[[_Selected, Errors, bool], RecordTable | None]] = {
    "DNS": _dns, "NTP": _ntp, "DHCPv4": _dhcp}
_NAMES = tuple(_ANALYZERS)
_LUT = np.zeros(65536, np.int8)  # port -> 1 + index into _NAMES, 0: none
for _port, _name in UDP_PORTS.items():
    _LUT[_port] = 1 + _NAMES.index(_name)


def analyze_datagrams(batch: PacketBatch, tables: dict[str, RecordTable], error: Errors,
                      full: bool = True) -> dict[str, RecordTable]:
    """Records of the analyzed UDP payloads of a batch, by record type (rows in packet
    order); sets `error` for packets whose payload failed to parse."""
    udp = tables.get("UDP")
    if udp is None or udp.pkt is None:
        return {}
    sport = np.asarray(udp.cols["SrcPort"])
    dport = np.asarray(udp.cols["DstPort"])
    which = np.where(_LUT[dport] > 0, _LUT[dport], _LUT[sport])
    out: dict[str, RecordTable] = {}
    for i, name in enumerate(_NAMES, start=1):
        rows = np.flatnonzero(which == i)
        if rows.size:
            table = _ANALYZERS[name](_Selected(batch, udp, rows), error, full)
            if table is not None:
                out[name] = table
    return out
