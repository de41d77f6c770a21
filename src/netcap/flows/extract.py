"""Per-batch flow summaries: every TCP/UDP packet of a decoded batch grouped by its
bidirectional 5-tuple, with counts, sums and the timestamps the table needs.

Keys are canonical: the (address, port) pair that sorts lower is side A, so both
directions of a flow share a key; `ab` tells a packet's direction. Summaries are plain
numpy arrays (picklable, small: one row per flow of the batch), made by compiled code
(_table.pyx) in one call per batch. `addr_words` and `group_rows`, the vectorized
grouping the summaries were made with, serve the stream stage.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode.batch import Decoded
from ..gather import gather_u8
from ..records.table import Ragged
from . import _table

__all__ = ["APP_PROTOCOLS", "FLOW_COLUMNS", "KEY_BYTES", "LINGER_NS", "MIX", "TCP_TIMEOUT_NS",
           "UDP_TIMEOUT_NS", "FlowBatch", "addr_words", "group_rows", "summarize"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
B = npt.NDArray[np.bool_]

# The TCP/UDP record columns read here (decoding for metrics alone must build them).
FLOW_COLUMNS = frozenset({"SrcIP", "DstIP", "SrcPort", "DstPort", "PayloadSize"})
TCP_FLAG_COLUMNS = ("FIN", "RST", "ACK", "SYN", "URG", "ECE", "PSH", "CWR", "NS")
TCP_COLUMNS = FLOW_COLUMNS | frozenset(TCP_FLAG_COLUMNS) | {"Window"}

# key = version (1) | transport (1) | A address (16) | A port (2) | B address (16) | B port (2)
KEY_BYTES = 38
# A flow's ApplicationProto: the protocol an analyzer recognised on it, named by its
# record type (the names gopacket gives the same layers where it has one: DNS, NTP,
# DHCPv4, TLS; HTTP and SSH as the Go Netcap's record types). A closed set: the
# connection metrics' `application` label is one of these, lower case, or "other".
# The datagram analyzers' (found per batch, here) come first, in the order a flow
# prefers them; the stream analyzers' (HTTP, TLS, SSH, and DNS over TCP) are set by
# the stream stage (ConnectionTable.recognise). No port table: a flow no analyzer
# recognised (its analyzer not run, -include/-exclude, or not the protocol its port
# says) has none, rather than a guess.
APP_PROTOCOLS = ("DNS", "NTP", "DHCPv4", "HTTP", "TLS", "SSH")
DATAGRAM_APPS = 3  # the first three: records of the datagram analyzers
# The connections the stream analyzers recognised (`StreamOutput.apps`, the argument of
# `ConnectionTable.recognise`), packed: a batch has thousands, and they cross from the
# stream process to the parent as one bytes object instead of a tuple each (pickling
# the tuples took ~90 ms of the stream process, the serial step, per million packets).
# Per entry, APP_ENTRY_BYTES: the protocol (1: its index in APP_PROTOCOLS) | the address
# length (1) | source address (16, zero-padded after) | source port (2, big-endian) |
# destination address (16) | destination port (2).
APP_ENTRY_BYTES = 38
_TCP, _UDP = 6, 17

# When a connection ends (the connection table's rule, in packet time): idle past its
# transport's timeout, or closed (a RST, or a FIN each way) and idle past the linger.
# Summaries split a flow where the rule may apply (see `summarize`), so they are here.
_SECOND = 10**9
TCP_TIMEOUT_NS = 300 * _SECOND
UDP_TIMEOUT_NS = 60 * _SECOND
LINGER_NS = 2 * _SECOND


@dataclass
class FlowBatch:
    """One row per flow segment of a batch: a flow's packets in batch order, cut where one
    comes long enough after the one before for the table's rule to end the connection
    there (each cut is decided by the table: `ConnectionTable.update`)."""

    key: U8  # (n, KEY_BYTES)
    first_ts: I64  # earliest and latest packet time (not file order: tshark's start/duration)
    last_ts: I64
    start_ts: I64  # time of the segment's first packet (where the table measures the gap)
    first_ab: B  # the segment's first packet went A -> B
    packets: I64  # (n, 2): A->B, B->A
    wire: I64  # (n, 2) frame bytes
    payload: I64  # transport payload bytes, both ways
    flags: I64  # (n, 9) TCP flag counts, in TCP_FLAG_COLUMNS order
    window: I64  # sum of TCP windows
    tcp_packets: I64
    syn_ts: I64  # first SYN without ACK (-1: none), and its direction
    syn_ab: B
    synack_ts: I64  # first SYN+ACK (-1: none)
    ack_ts: I64  # (n, 2) first pure ACK per direction (-1: none)
    fin_ab: B  # (n, 2) FIN seen per direction
    rst: B
    link: I64  # link type of the first packet
    macs: U8  # (n, 12): dst, src MAC of the first packet (zeros if not Ethernet)
    app: I64  # 1 + index into APP_PROTOCOLS of an analyzer record on the flow, 0: none

    def __len__(self) -> int:
        return int(self.first_ts.shape[0])

    @staticmethod
    def concat(parts: list[FlowBatch]) -> FlowBatch:
        """The rows of each part in turn (one part: itself)."""
        if len(parts) == 1:
            return parts[0]
        return FlowBatch(*(np.concatenate([getattr(p, f.name) for p in parts])
                           for f in fields(FlowBatch)))


U64 = npt.NDArray[np.uint64]


def addr_words(col: Any) -> tuple[U64, U64]:
    """Addresses as two big-endian 64-bit halves (an IPv4 address is the low 32 bits)."""
    if not isinstance(col, Ragged):  # invariant (not input)
        raise TypeError("unexpected column types")
    n = len(col)
    hi = np.zeros(n, np.uint64)
    lo = np.zeros(n, np.uint64)
    lens, starts = col.lens, col.starts
    rows = np.flatnonzero(lens == 4)
    if rows.size:
        lo[rows] = gather_u8(col.data, starts[rows], 4).view(">u4")[:, 0]
    rows = np.flatnonzero(lens == 16)
    if rows.size:
        both = gather_u8(col.data, starts[rows], 16).view(">u8")
        hi[rows], lo[rows] = both[:, 0], both[:, 1]
    return hi, lo


MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                 0x27D4EB2F165667C5, 0xFF51AFD7ED558CCD], np.uint64)


def group_rows(parts: list[U64]) -> tuple[I64, I64, I64]:
    """Rows grouped by equal key parts: (order, group starts in it, group of each sorted
    row). Sorting a 64-bit mix of the parts is much cheaper than sorting whole keys;
    rows with equal mixes are checked to have equal parts, and on a collision the parts
    themselves are sorted."""
    with np.errstate(over="ignore"):
        h = np.zeros(parts[0].shape[0], np.uint64)
        for k, part in enumerate(parts):
            h ^= part * MIX[k % len(MIX)]
            h = (h << np.uint64(23)) | (h >> np.uint64(41))
    order = np.argsort(h, kind="stable")
    sh = h[order]
    new = np.r_[True, sh[1:] != sh[:-1]]
    same = np.flatnonzero(~new)  # sorted rows whose mix equals the previous row's
    if same.size and any(bool((part[order[same]] != part[order[same - 1]]).any())
                         for part in parts):  # a collision: sort by the parts
        order = np.lexsort(parts[::-1])
        new = np.ones(order.shape[0], np.bool_)
        for part in parts:
            sp = part[order]
            new[1:] &= sp[1:] == sp[:-1]
        new = ~new
        new[0] = True
    starts = np.flatnonzero(new)
    return order, starts, np.cumsum(new) - 1


def _bools(col: Any) -> npt.NDArray[np.uint8]:
    a = np.asarray(col)
    return (a if a.dtype == np.bool_ else a != 0).view(np.uint8)


def _i64(col: Any) -> I64:
    return np.asarray(col, dtype=np.int64)


def summarize(d: Decoded, tcp_timeout_ns: int = TCP_TIMEOUT_NS,
              udp_timeout_ns: int = UDP_TIMEOUT_NS, linger_ns: int = LINGER_NS
              ) -> FlowBatch | None:
    """The batch's flow segments, ordered by the mix of their key words (as `group_rows`
    orders them), a flow's segments in batch order. A flow is cut wherever a packet comes
    more than the linger (TCP: where a closed connection would end) or the timeout after
    the one before: a table with these limits decides each cut exactly, so connections do
    not depend on where batches end. The per-row work is compiled (_table.summarize):
    this gathers the columns it reads."""
    parts: list[tuple[Any, ...]] = []
    for name, number in (("TCP", _TCP), ("UDP", _UDP)):
        t = d.tables.get(name)
        if t is None or not t.n or t.pkt is None:
            continue
        src, dst = t.cols["SrcIP"], t.cols["DstIP"]
        if not (isinstance(src, Ragged) and isinstance(dst, Ragged)):  # invariant (not input)
            raise TypeError("unexpected column types")
        tcp = number == _TCP
        parts.append((number, _i64(t.pkt), src.data, _i64(src.lens), dst.data, _i64(dst.lens),
                      _i64(t.cols["SrcPort"]), _i64(t.cols["DstPort"]),
                      _i64(t.cols["PayloadSize"]),
                      [_bools(t.cols[f]) for f in TCP_FLAG_COLUMNS] if tcp else None,
                      _i64(t.cols["Window"]) if tcp else None))
    if not parts:
        return None
    apps = []
    for name in APP_PROTOCOLS[:DATAGRAM_APPS]:
        t = d.tables.get(name)
        apps.append(_i64(t.pkt) if t is not None and t.pkt is not None and t.n else None)
    b = d.batch
    return FlowBatch(*_table.summarize(parts, b.ts, b.wirelen, b.linktype, b.data, b.offset,
                                       apps, tcp_timeout_ns, udp_timeout_ns, linger_ns))
