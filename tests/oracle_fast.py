"""The fast path as it was in numpy, before it was compiled (decode/_fast.pyx): the oracle
of the differential tests (test_fast_compiled.py). Not used by netcap.

The vectorized fast path: the common stack for a whole batch at once.

Covers Ethernet (up to two VLAN tags), BSD loopback, Linux SLL/SLL2 and raw-IP links,
IPv4 (options; fragments stop at IP), IPv6 with up to 8 hop-by-hop, routing or destination-options
headers, and complete TCP (with options), UDP, ICMPv4 and ICMPv6 headers; IP packets
carrying another protocol, and later fragments, are complete at the IP layer. Every
packet outside that (IPv6 fragment and AH headers, ARP, LLC, other link types, or
anything malformed or cut short) is left to the general decoder, which owns the
error semantics; the fast path only ever takes packets it decodes exactly as the general
path would (a test checks this on every corpus packet).

All reads index the batch's flat buffer with per-packet offsets; `PacketBatch` pads the
buffer so reads a few bytes past a short packet stay in bounds, and every field read
here is guarded by a length check against the packet's end before it is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from netcap.decode.linktypes import (
    ETH_IPV4,
    ETH_IPV6,
    IPPROTO_AH,
    IPPROTO_FRAGMENT,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_EXT,
    LT,
    NULL_AF_INET,
    NULL_AF_INET6,
)
from netcap.gather import gather_u8
from netcap.records.table import Children, Ragged, RecordTable
from netcap.records.types import RECORDS
from netcap.sources.batch import PacketBatch

__all__ = ["Columns", "FastResult", "decode_fast"]

# Per record type, the columns a consumer reads (None: all of them). Rows (and `pkt`)
# are always there; a type missing from the mapping gets no columns but its Timestamp.
Columns = Mapping[str, frozenset[str]] | None

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
U8 = npt.NDArray[np.uint8]

def _any_of(values: I64, choices: tuple[int, ...]) -> B:
    # A few equality tests beat np.isin (which sorts) on batch-sized arrays.
    out: B = values == choices[0]
    for c in choices[1:]:
        out |= values == c
    return out


_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_IPV6_EXT = tuple(sorted(IPV6_EXT))
# Extension headers the fast path walks: sized (len + 1) * 8, no record of their own.
_IPV6_SIMPLE_EXT = tuple(sorted(IPV6_EXT - {IPPROTO_FRAGMENT, IPPROTO_AH}))
_MAX_FAST_EXT = 8
# Every protocol the general decoder decodes after IP, whichever the IP version.
_TRANSPORTS = (IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6)
_MAX_FAST_TAGS = 2
_MAX_OPTION_STEPS = 40  # a 40-byte option area holds at most 40 options


@dataclass(slots=True)
class FastResult:
    done: B  # packets fully decoded here
    tables: dict[str, RecordTable]


class _Reader:
    def __init__(self, buf: U8) -> None:
        self.buf = buf

    def u8(self, idx: I64) -> I64:
        return self.buf[idx].astype(np.int64)

    def u16(self, idx: I64) -> I64:
        b = self.buf
        return (b[idx].astype(np.int64) << 8) | b[idx + 1]

    def u32(self, idx: I64) -> I64:
        b = self.buf
        return (
            (b[idx].astype(np.int64) << 24)
            | (b[idx + 1].astype(np.int64) << 16)
            | (b[idx + 2].astype(np.int64) << 8)
            | b[idx + 3]
        )

    def u32le(self, idx: I64) -> I64:
        b = self.buf
        return (
            b[idx].astype(np.int64)
            | (b[idx + 1].astype(np.int64) << 8)
            | (b[idx + 2].astype(np.int64) << 16)
            | (b[idx + 3].astype(np.int64) << 24)
        )

    def bytes(self, idx: I64, width: int) -> Ragged:
        return Ragged.from_matrix(gather_u8(self.buf, idx, width))


class _Header:
    """The first `width` bytes at many offsets, gathered once; fields are then read
    from its columns (cheaper than one gather per field)."""

    def __init__(self, buf: U8, idx: I64, width: int) -> None:
        self.m = gather_u8(buf, idx, width)

    def u8(self, k: int) -> I64:
        return self.m[:, k].astype(np.int64)

    def u16(self, k: int) -> I64:
        m = self.m
        return (m[:, k].astype(np.int64) << 8) | m[:, k + 1]

    def u32(self, k: int) -> I64:
        m = self.m
        return ((m[:, k].astype(np.int64) << 24) | (m[:, k + 1].astype(np.int64) << 16)
                | (m[:, k + 2].astype(np.int64) << 8) | m[:, k + 3])

    def bytes(self, k: int, width: int) -> Ragged:
        return Ragged.from_matrix(self.m[:, k : k + width])


def _table(name: str, batch: PacketBatch, pkt: I64, cols: dict[str, object],
           columns: Columns) -> RecordTable:
    """The record table of one type. A column given as a function is computed only if
    wanted: decoding for metrics alone skips the costly ones (addresses, options)."""
    keep = None if columns is None else columns.get(name, frozenset())
    full: dict[str, object] = {"Timestamp": batch.ts[pkt]}
    for k, v in cols.items():
        if keep is None or k in keep:
            full[k] = v() if callable(v) else v
    return RecordTable(RECORDS[name], int(pkt.shape[0]), full, pkt)  # type: ignore[arg-type]


def _wants(columns: Columns, name: str, *fields: str) -> bool:
    return columns is None or any(f in columns.get(name, ()) for f in fields)


def decode_fast(batch: PacketBatch, columns: Columns = None) -> FastResult:
    n = len(batch)
    r = _Reader(batch.data)
    base = batch.offset
    end = base + batch.caplen
    lt = batch.linktype.astype(np.int64)
    et = np.zeros(n, np.int64)
    l3 = base.copy()
    ok = np.zeros(n, np.bool_)

    # --- link layer -> (EtherType, network-layer offset) -------------------------------
    eth = (lt == LT.ETHERNET) & (batch.caplen >= 14)
    et[eth] = r.u16(base[eth] + 12)
    l3[eth] = base[eth] + 14
    ok |= eth
    outer_et = et.copy()

    nul = ((lt == LT.NULL) | (lt == LT.LOOP)) & (batch.caplen >= 4)
    if nul.any():
        idx = base[nul]
        fam = np.where(lt[nul] == LT.LOOP, r.u32(idx), r.u32le(idx))
        swapped = (lt[nul] == LT.NULL) & ((fam & 0xFFFF0000) != 0)
        fam = np.where(swapped, r.u32(idx), fam)
        v6fam = np.zeros(fam.shape[0], np.bool_)
        for af in NULL_AF_INET6:
            v6fam |= fam == af
        et[nul] = np.where(fam == NULL_AF_INET, ETH_IPV4, np.where(v6fam, ETH_IPV6, -1))
        l3[nul] = idx + 4
        ok |= nul

    sll = (lt == LT.LINUX_SLL) & (batch.caplen >= 16)
    et[sll] = r.u16(base[sll] + 14)
    l3[sll] = base[sll] + 16
    sll2 = (lt == LT.LINUX_SLL2) & (batch.caplen >= 20)
    et[sll2] = r.u16(base[sll2])
    l3[sll2] = base[sll2] + 20
    ok |= sll | sll2

    raw = (lt == LT.RAW) & (batch.caplen >= 1)
    ver = r.u8(base[raw]) >> 4
    et[raw] = np.where(ver == 4, ETH_IPV4, np.where(ver == 6, ETH_IPV6, -1))
    et[lt == LT.IPV4] = ETH_IPV4
    et[lt == LT.IPV6] = ETH_IPV6
    ok |= raw | (lt == LT.IPV4) | (lt == LT.IPV6)

    # --- VLAN tags (Ethernet only) -----------------------------------------------------
    tag_pkt: list[I64] = []
    tag_tci: list[I64] = []
    tag_type: list[I64] = []
    for _ in range(_MAX_FAST_TAGS):
        tagged = eth & _any_of(et, _VLAN_TYPES) & (l3 + 4 <= end)
        if not tagged.any():
            break
        p = np.flatnonzero(tagged)
        tci, nxt = r.u16(l3[p]), r.u16(l3[p] + 2)
        tag_pkt.append(p)
        tag_tci.append(tci)
        tag_type.append(nxt)
        et[p] = nxt
        l3[p] += 4
    ok &= ~_any_of(et, _VLAN_TYPES)  # deeper stacks or cut tags: general path

    # --- IPv4 / IPv6 -------------------------------------------------------------------
    proto = np.full(n, -1, np.int64)
    l4 = np.zeros(n, np.int64)
    pend = np.zeros(n, np.int64)
    transport = np.zeros(n, np.bool_)  # the transport header is in this packet

    v4 = ok & (et == ETH_IPV4) & (l3 + 20 <= end)
    v4[v4] = (r.u8(l3[v4]) >> 4) == 4
    i4 = np.flatnonzero(v4)
    hl4 = (r.u8(l3[i4]) & 0x0F) * 4
    tot = r.u16(l3[i4] + 2)
    # Header complete, total length consistent (0, TCP offload, is left to the general
    # path, as are bad IHLs and total lengths).
    good4 = (hl4 >= 20) & (l3[i4] + hl4 <= end[i4]) & (tot >= hl4)
    v4[i4[~good4]] = False
    i4, hl4 = i4[good4], hl4[good4]
    opt4 = _tlv_options(r, i4, l3[i4] + 20, l3[i4] + hl4,
                        _wants(columns, "IPv4", "Options", "Padding"))
    v4[i4[opt4.bad]] = False
    proto[i4] = r.u8(l3[i4] + 9)
    l4[i4] = l3[i4] + hl4
    pend[i4] = np.minimum(l3[i4] + r.u16(l3[i4] + 2), end[i4])
    # A fragment (more fragments, or an offset) is complete at the IP layer: its
    # transport is decoded from the reassembled datagram (reassembly/ip.py).
    transport[i4] = (r.u16(l3[i4] + 6) & 0x3FFF) == 0

    v6 = ok & (et == ETH_IPV6) & (l3 + 40 <= end)
    v6[v6] = (r.u8(l3[v6]) >> 4) == 6
    v6[v6] = r.u16(l3[v6] + 4) > 0  # payload length 0 (jumbogram): general path
    i6 = np.flatnonzero(v6)
    pend[i6] = np.minimum(l3[i6] + 40 + r.u16(l3[i6] + 4), end[i6])
    nh, at = r.u8(l3[i6] + 6), l3[i6] + 40
    # Walk hop-by-hop, routing and destination-options headers in lock-step; fragment
    # and AH headers, long chains and cut headers go to the general path.
    for _ in range(_MAX_FAST_EXT + 1):
        ext = _any_of(nh, _IPV6_SIMPLE_EXT)
        if not ext.any():
            break
        e = np.flatnonzero(ext)
        fits = at[e] + 2 <= pend[i6[e]]
        size = np.where(fits, (r.u8(at[e] + 1) + 1) * 8, 0)
        fits &= at[e] + size <= pend[i6[e]]
        v6[i6[e[~fits]]] = False
        nh[e] = np.where(fits, r.u8(at[e]), -1)
        at[e] += size
    else:
        v6[i6[_any_of(nh, _IPV6_SIMPLE_EXT)]] = False
    v6[i6[_any_of(nh, _IPV6_EXT)]] = False  # fragment / AH (or a chain too long)
    keep = v6[i6]
    i6, nh, at = i6[keep], nh[keep], at[keep]
    proto[i6] = nh
    l4[i6] = at
    transport[i6] = True
    ip = v4 | v6

    # --- transport ---------------------------------------------------------------------
    ip_t = ip & transport
    tcp = ip_t & (proto == IPPROTO_TCP) & (l4 + 20 <= pend)
    it = np.flatnonzero(tcp)
    doff = r.u8(l4[it] + 12) >> 4
    good = (doff >= 5) & (l4[it] + doff * 4 <= pend[it])
    tcp[it[~good]] = False
    it = np.flatnonzero(tcp)
    doff = r.u8(l4[it] + 12) >> 4
    opts = _tlv_options(r, it, l4[it] + 20, l4[it] + doff * 4,
                        _wants(columns, "TCP", "Options", "Padding"))
    if opts.bad.any():
        tcp[it[opts.bad]] = False

    udp = ip_t & (proto == IPPROTO_UDP) & (l4 + 8 <= pend)
    iu = np.flatnonzero(udp)
    ulen = r.u16(l4[iu] + 4)
    udp[iu[(ulen > 0) & (ulen < 8)]] = False

    icmp4 = v4 & transport & (proto == IPPROTO_ICMP) & (l4 + 8 <= pend)
    icmp6 = v6 & (proto == IPPROTO_ICMPV6) & (l4 + 4 <= pend)
    # IP packets whose payload is not a transport we decode (or a fragment) are
    # complete at the IP layer; the others only if their transport header decoded.
    other = ip & (~transport | ~_any_of(proto, _TRANSPORTS))
    done = other | tcp | udp | icmp4 | icmp6

    tables = _build(batch, r, done, eth, outer_et, l3, l4, pend, v4, v6, tcp, udp, icmp4,
                    icmp6, tag_pkt, tag_tci, tag_type, opts, opt4, columns)
    return FastResult(done, tables)


@dataclass(slots=True)
class _Options:
    rows: I64  # the packets the walk ran on
    bad: B  # per row: malformed option list
    parent: I64  # per option: index into rows
    kind: I64
    length: I64
    dstart: I64
    dlen: I64
    pad_start: I64  # per row: padding start after EOL, or -1
    pad_end: I64


def _tlv_options(r: _Reader, rows: I64, start: I64, stop: I64, keep: bool = True
                 ) -> _Options:
    """Walk all packets' TCP or IPv4 option lists (the same layout) in lock-step, one
    option per step.

    Without `keep` (no records to write) only `bad` is found: the options are not
    collected, and the usual TCP option area, NOP NOP Timestamps filling 12 bytes, is
    taken as well formed as it stands, so only the other lists are walked."""
    m = rows.shape[0]
    bad = np.zeros(m, np.bool_)
    pad_start = np.full(m, -1, np.int64)
    pos = start.copy()
    active = np.flatnonzero(pos < stop)
    if not keep and active.size:
        usual = (stop[active] - pos[active] == 12) & (r.u32(pos[active]) == 0x0101080A)
        active = active[~usual]
    par: list[I64] = []
    kinds: list[I64] = []
    lens: list[I64] = []
    dst: list[I64] = []
    for _ in range(_MAX_OPTION_STEPS + 1):
        if active.shape[0] == 0:
            break
        p, e = pos[active], stop[active]
        kind = r.u8(p)
        eol = kind == 0
        other = kind > 1  # not EOL (0) or NOP (1): a length follows
        has_len = p + 1 < e
        ln = np.where(other, np.where(has_len, r.u8(p + 1), 0), 1)
        broken = other & (~has_len | (ln < 2) | (p + ln > e))
        bad[active[broken]] = True
        whole = ~broken
        if keep:
            par.append(active[whole])
            kinds.append(kind[whole])
            lens.append(ln[whole])
            dst.append(p[whole] + 2)
            pad_start[active[eol]] = p[eol] + 1
        pos[active] = p + ln
        active = active[whole & ~eol & (pos[active] < e)]
    parent = np.concatenate(par) if par else np.zeros(0, np.int64)
    order = np.argsort(parent, kind="stable")
    kind_all = np.concatenate(kinds)[order] if kinds else np.zeros(0, np.int64)
    len_all = np.concatenate(lens)[order] if lens else np.zeros(0, np.int64)
    ds = np.concatenate(dst)[order] if dst else np.zeros(0, np.int64)
    dlen = np.where((kind_all == 0) | (kind_all == 1), 0, len_all - 2)
    return _Options(rows, bad, parent[order], kind_all, len_all, ds, dlen, pad_start, stop)


def _option_columns(opts: _Options, rows: I64, n: int, data: U8, child: str
                    ) -> dict[str, object]:
    """Padding and Options columns for the table whose rows are the packets `rows`.

    Options were walked for every candidate packet; keep those of the table's rows."""
    cols: dict[str, object] = {}
    row_of = np.full(n, -1, np.int64)
    row_of[rows] = np.arange(rows.size)
    opt_rows = row_of[opts.rows]  # candidate -> table row (or -1)
    has_pad = (opts.pad_start >= 0) & (opt_rows >= 0)
    if has_pad.any():
        pad_lens = np.zeros(rows.size, np.int64)
        pad_starts = np.zeros(rows.size, np.int64)
        pad_lens[opt_rows[has_pad]] = (opts.pad_end - opts.pad_start)[has_pad]
        pad_starts[opt_rows[has_pad]] = opts.pad_start[has_pad]
        if pad_lens.any():
            cols["Padding"] = Ragged.gather(data, pad_starts, pad_lens)
    parent = opt_rows[opts.parent]
    keep = parent >= 0
    if keep.any():
        table = RecordTable(RECORDS[child], int(keep.sum()), {
            "OptionType": opts.kind[keep], "OptionLength": opts.length[keep],
            "OptionData": Ragged.gather(data, opts.dstart[keep], opts.dlen[keep]),
        })
        cols["Options"] = Children(parent[keep], table)
    return cols


def _build(
    batch: PacketBatch, r: _Reader, done: B, eth: B, outer_et: I64, l3: I64, l4: I64,
    pend: I64, v4: B, v6: B, tcp: B, udp: B, icmp4: B, icmp6: B,
    tag_pkt: list[I64], tag_tci: list[I64], tag_type: list[I64], opts: _Options,
    opt4: _Options, columns: Columns,
) -> dict[str, RecordTable]:
    tables: dict[str, RecordTable] = {}
    n = len(batch)
    base, caplen = batch.offset, batch.caplen

    pe = np.flatnonzero(done & eth)
    if pe.size:
        tables["Ethernet"] = _table("Ethernet", batch, pe, {
            "SrcMAC": lambda: r.bytes(base[pe] + 6, 6), "DstMAC": lambda: r.bytes(base[pe], 6),
            "EthernetType": outer_et[pe], "PayloadSize": caplen[pe] - 14, "_poff": base[pe] + 14,
        }, columns)

    if tag_pkt:
        tp = np.concatenate(tag_pkt)
        tci = np.concatenate(tag_tci)
        ttype = np.concatenate(tag_type)
        keep = done[tp]
        tp, tci, ttype = tp[keep], tci[keep], ttype[keep]
        order = np.argsort(tp, kind="stable")  # outer tag first within a packet
        tp, tci, ttype = tp[order], tci[order], ttype[order]
        if tp.size:
            tables["Dot1Q"] = _table("Dot1Q", batch, tp, {
                "Priority": tci >> 13, "DropEligible": (tci & 0x1000) != 0,
                "VLANIdentifier": tci & 0x0FFF, "Type": ttype,
            }, columns)

    # Ports for the IP records, from whichever transport header the packet has.
    sport = np.zeros(n, np.int64)
    dport = np.zeros(n, np.int64)
    tu = np.flatnonzero(done & (tcp | udp))
    ports = _Header(batch.data, l4[tu], 4)  # one gather for both
    sport[tu] = ports.u16(0)
    dport[tu] = ports.u16(2)

    src = np.zeros(n, np.int64)  # offset of the source address; dst follows it
    alen = np.zeros(n, np.int64)
    p4 = np.flatnonzero(done & v4)
    if p4.size:
        a = l3[p4]
        h = _Header(batch.data, a, 20)
        ff = h.u16(6)
        src[p4], alen[p4] = a + 12, 4
        ihl = h.u8(0) & 0x0F
        cols4: dict[str, object] = {
            "Version": np.full(p4.size, 4, np.int64), "IHL": ihl,
            "TOS": lambda: h.u8(1), "Length": h.u16(2), "Id": lambda: h.u16(4),
            "Flags": ff >> 13, "FragOffset": ff & 0x1FFF, "TTL": lambda: h.u8(8),
            "Protocol": h.u8(9), "Checksum": lambda: h.u16(10), "SrcIP": lambda: h.bytes(12, 4),
            "DstIP": lambda: h.bytes(16, 4),
        }
        if _wants(columns, "IPv4", "Options", "Padding"):
            cols4.update(_option_columns(opt4, p4, n, batch.data, "IPv4Option"))
        cols4.update({"PayloadSize": pend[p4] - a - ihl * 4, "SrcPort": sport[p4],
                      "DstPort": dport[p4], "_poff": a + ihl * 4})
        tables["IPv4"] = _table("IPv4", batch, p4, cols4, columns)
    p6 = np.flatnonzero(done & v6)
    if p6.size:
        a = l3[p6]
        h = _Header(batch.data, a, 40)
        src[p6], alen[p6] = a + 8, 16
        tables["IPv6"] = _table("IPv6", batch, p6, {
            "Version": np.full(p6.size, 6, np.int64),
            "TrafficClass": lambda: (h.u32(0) >> 20) & 0xFF,
            "FlowLabel": lambda: h.u32(0) & 0xFFFFF, "Length": h.u16(4), "NextHeader": h.u8(6),
            "HopLimit": lambda: h.u8(7), "SrcIP": lambda: h.bytes(8, 16),
            "DstIP": lambda: h.bytes(24, 16),
            "PayloadSize": pend[p6] - a - 40, "SrcPort": sport[p6], "DstPort": dport[p6],
            "_poff": a + 40,
        }, columns)

    def addr(p: I64, dst: int) -> Ragged:
        """Source (dst=0) or destination (dst=1) IP address of packets p."""
        lens = alen[p]
        s = src[p] + dst * lens
        if p.size and bool((lens == lens[0]).all()):  # one IP version: fixed width
            return r.bytes(s, int(lens[0]))
        return Ragged.gather(batch.data, s, lens)

    def ips(p: I64) -> dict[str, object]:
        return {"SrcIP": lambda: addr(p, 0), "DstIP": lambda: addr(p, 1)}

    pt = np.flatnonzero(tcp)  # tcp implies done
    if pt.size:
        a = l4[pt]
        h = _Header(batch.data, a, 20)
        b12, fl = h.u8(12), h.u8(13)
        doff = b12 >> 4
        cols: dict[str, object] = {
            "SrcPort": sport[pt], "DstPort": dport[pt], "SeqNum": lambda: h.u32(4),
            "AckNum": lambda: h.u32(8), "DataOffset": doff,
            "FIN": (fl & 0x01) != 0, "SYN": (fl & 0x02) != 0, "RST": (fl & 0x04) != 0,
            "PSH": (fl & 0x08) != 0, "ACK": (fl & 0x10) != 0, "URG": (fl & 0x20) != 0,
            "ECE": lambda: (fl & 0x40) != 0, "CWR": lambda: (fl & 0x80) != 0,
            "NS": lambda: (b12 & 0x01) != 0, "Window": lambda: h.u16(14),
            "Checksum": lambda: h.u16(16), "Urgent": lambda: h.u16(18),
        }
        if _wants(columns, "TCP", "Options", "Padding"):
            cols.update(_option_columns(opts, pt, n, batch.data, "TCPOption"))
        cols.update({"PayloadSize": pend[pt] - a - doff * 4, **ips(pt), "_poff": a + doff * 4})
        tables["TCP"] = _table("TCP", batch, pt, cols, columns)

    pu = np.flatnonzero(udp)
    if pu.size:
        a = l4[pu]
        h = _Header(batch.data, a, 8)
        ulen = h.u16(4)
        upend = np.where(ulen == 0, pend[pu], np.minimum(pend[pu], a + ulen))
        tables["UDP"] = _table("UDP", batch, pu, {
            "SrcPort": sport[pu], "DstPort": dport[pu], "Length": ulen,
            "Checksum": lambda: h.u16(6), "PayloadSize": upend - a - 8, **ips(pu), "_poff": a + 8,
        }, columns)

    pi = np.flatnonzero(icmp4)
    if pi.size:
        h = _Header(batch.data, l4[pi], 8)
        tables["ICMPv4"] = _table("ICMPv4", batch, pi, {
            "TypeCode": h.u16(0), "Checksum": lambda: h.u16(2), "Id": lambda: h.u16(4),
            "Seq": lambda: h.u16(6), **ips(pi),
        }, columns)
    pi = np.flatnonzero(icmp6)
    if pi.size:
        h = _Header(batch.data, l4[pi], 4)
        tables["ICMPv6"] = _table("ICMPv6", batch, pi, {
            "TypeCode": h.u16(0), "Checksum": lambda: h.u16(2), **ips(pi),
        }, columns)
    return tables
