"""Per-batch flow summaries: every TCP/UDP packet of a decoded batch grouped by its
bidirectional 5-tuple, with counts, sums and the timestamps the table needs.

Keys are canonical: the (address, port) pair that sorts lower is side A, so both
directions of a flow share a key; `ab` tells a packet's direction. Summaries are plain
numpy arrays (picklable, small: one row per flow of the batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode.batch import Decoded
from ..decode.linktypes import LT
from ..gather import gather_u8
from ..records.table import Ragged

__all__ = ["APP_PROTOCOLS", "FLOW_COLUMNS", "KEY_BYTES", "MIX", "FlowBatch", "addr_words",
           "group_rows", "summarize"]

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
_TCP, _UDP = 6, 17


@dataclass
class FlowBatch:
    """One row per flow seen in a batch."""

    key: U8  # (n, KEY_BYTES)
    first_ts: I64  # earliest and latest packet time (not file order: tshark's start/duration)
    last_ts: I64
    first_ab: B  # the flow's first packet in this batch went A -> B
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


def summarize(d: Decoded) -> FlowBatch | None:
    parts = []
    for name, number in (("TCP", _TCP), ("UDP", _UDP)):
        t = d.tables.get(name)
        if t is not None and t.n and t.pkt is not None:
            parts.append((t, number))
    if not parts:
        return None
    n = sum(t.n for t, _ in parts)
    pkt = np.concatenate([t.pkt for t, _ in parts if t.pkt is not None])
    proto = np.concatenate([np.full(t.n, p, np.int64) for t, p in parts])
    s_hi, s_lo = (np.concatenate(x) for x in zip(*(addr_words(t.cols["SrcIP"])
                                                     for t, _ in parts), strict=True))
    d_hi, d_lo = (np.concatenate(x) for x in zip(*(addr_words(t.cols["DstIP"])
                                                     for t, _ in parts), strict=True))
    v6 = np.concatenate([np.asarray(t.cols["SrcIP"].lens) == 16 for t, _ in parts])  # type: ignore[union-attr]
    sport = np.concatenate([np.asarray(t.cols["SrcPort"]) for t, _ in parts])
    dport = np.concatenate([np.asarray(t.cols["DstPort"]) for t, _ in parts])
    payload = np.concatenate([np.asarray(t.cols["PayloadSize"]) for t, _ in parts])
    is_tcp = proto == _TCP
    flags = np.zeros((n, len(TCP_FLAG_COLUMNS)), np.int64)
    window = np.zeros(n, np.int64)
    tcp = parts[0][0] if parts[0][1] == _TCP else None
    if tcp is not None:
        for j, f in enumerate(TCP_FLAG_COLUMNS):
            flags[: tcp.n, j] = np.asarray(tcp.cols[f])
        window[: tcp.n] = np.asarray(tcp.cols["Window"])

    # Canonical side A: the lower (address, port).
    ab = (s_hi < d_hi) | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sport <= dport))))
    a_hi, a_lo = np.where(ab, s_hi, d_hi), np.where(ab, s_lo, d_lo)
    b_hi, b_lo = np.where(ab, d_hi, s_hi), np.where(ab, d_lo, s_lo)
    a_port, b_port = np.where(ab, sport, dport), np.where(ab, dport, sport)
    # version, transport and both ports in one word
    small = ((v6.astype(np.uint64) << np.uint64(40)) | (proto.astype(np.uint64) << np.uint64(32))
             | (a_port.astype(np.uint64) << np.uint64(16)) | b_port.astype(np.uint64))

    # Group by key, in batch (time) order within a group.
    order, starts, group = group_rows([a_hi, a_lo, b_hi, b_lo, small])
    g = np.empty(n, np.int64)
    g[order] = group
    m = int(starts.shape[0])
    first = order[starts]  # the earliest packet (batch order) of each flow
    ts = d.batch.ts[pkt]
    wire = d.batch.wirelen[pkt]

    def per_flow_sum(values: npt.NDArray[Any], mask: B | None = None) -> I64:
        w = values if mask is None else np.where(mask, values, 0)
        return np.bincount(g, weights=w, minlength=m).astype(np.int64)

    def first_ts_where(mask: B) -> I64:
        out = np.full(m, -1, np.int64)
        rows = np.flatnonzero(mask[order])  # sorted by flow, then time
        if rows.size:
            gs = group[rows]
            keep = np.r_[True, gs[1:] != gs[:-1]]
            out[gs[keep]] = ts[order[rows[keep]]]
        return out

    def flag(f: str) -> B:
        out: B = flags[:, TCP_FLAG_COLUMNS.index(f)] != 0
        return out

    fin, rst, ack, syn = flag("FIN"), flag("RST"), flag("ACK"), flag("SYN")
    syn_only = is_tcp & syn & ~ack
    synack = is_tcp & syn & ack
    pure_ack = is_tcp & ack & ~syn & ~fin & ~rst
    syn_first = first_ts_where(syn_only)
    syn_ab = np.zeros(m, np.bool_)
    rows = np.flatnonzero(syn_only[order])
    if rows.size:
        gs = group[rows]
        keep = np.r_[True, gs[1:] != gs[:-1]]
        syn_ab[gs[keep]] = ab[order[rows[keep]]]
    macs = np.zeros((m, 12), np.uint8)
    link = d.batch.linktype[pkt[first]].astype(np.int64)
    eth = np.flatnonzero(link == LT.ETHERNET)
    if eth.size:
        macs[eth] = gather_u8(d.batch.data, d.batch.offset[pkt[first[eth]]], 12)
    app = np.zeros(m, np.int64)
    for k, name in reversed(list(enumerate(APP_PROTOCOLS[:DATAGRAM_APPS], start=1))):
        t = d.tables.get(name)
        if t is not None and t.pkt is not None and t.n:
            on = np.zeros(len(d.batch), np.bool_)
            on[t.pkt] = True
            hit = np.bincount(g, weights=on[pkt], minlength=m) > 0
            app[hit] = k
    key = np.empty((m, KEY_BYTES), np.uint8)
    key[:, 0] = np.where(v6[first], 6, 4)
    key[:, 1] = proto[first]
    key[:, 2:10] = a_hi[first].astype(">u8").view(np.uint8).reshape(m, 8)
    key[:, 10:18] = a_lo[first].astype(">u8").view(np.uint8).reshape(m, 8)
    key[:, 18:20] = a_port[first].astype(">u2").view(np.uint8).reshape(m, 2)
    key[:, 20:28] = b_hi[first].astype(">u8").view(np.uint8).reshape(m, 8)
    key[:, 28:36] = b_lo[first].astype(">u8").view(np.uint8).reshape(m, 8)
    key[:, 36:38] = b_port[first].astype(">u2").view(np.uint8).reshape(m, 2)
    return FlowBatch(
        key=key, first_ts=np.minimum.reduceat(ts[order], starts),
        last_ts=np.maximum.reduceat(ts[order], starts),
        first_ab=ab[first],
        packets=np.stack([per_flow_sum(np.ones(n), ab), per_flow_sum(np.ones(n), ~ab)], 1),
        wire=np.stack([per_flow_sum(wire, ab), per_flow_sum(wire, ~ab)], 1),
        payload=per_flow_sum(payload),
        flags=np.stack([per_flow_sum(flags[:, j]) for j in range(flags.shape[1])], 1),
        window=per_flow_sum(window, is_tcp), tcp_packets=per_flow_sum(np.ones(n), is_tcp),
        syn_ts=syn_first, syn_ab=syn_ab, synack_ts=first_ts_where(synack),
        ack_ts=np.stack([first_ts_where(pure_ack & ab), first_ts_where(pure_ack & ~ab)], 1),
        fin_ab=np.stack([per_flow_sum(np.ones(n), fin & ab) > 0,
                         per_flow_sum(np.ones(n), fin & ~ab) > 0], 1),
        rst=per_flow_sum(np.ones(n), rst) > 0, link=link, macs=macs, app=app,
    )
