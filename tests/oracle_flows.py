"""The flow stage as it was in Python (numpy), before it was compiled (flows/_table.pyx):
the oracle of the differential tests (test_flows_compiled.py). Not used by netcap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from netcap.decode.batch import Decoded
from netcap.decode.linktypes import LT
from netcap.flows.extract import (
    APP_ENTRY_BYTES,
    APP_PROTOCOLS,
    DATAGRAM_APPS,
    KEY_BYTES,
    LINGER_NS,
    MIX,
    TCP_FLAG_COLUMNS,
    TCP_TIMEOUT_NS,
    UDP_TIMEOUT_NS,
    FlowBatch,
    addr_words,
    group_rows,
)
from netcap.gather import gather_u8
from netcap.records.table import Ragged, RecordTable
from netcap.records.types import RECORDS

B = npt.NDArray[np.bool_]
_UDP = 17

I64 = npt.NDArray[np.int64]
Key = tuple[bytes, int, bytes, int]  # (source address, port, destination address, port)
Apps = bytes | bytearray  # packed, APP_ENTRY_BYTES each


def pack_apps(apps: Sequence[tuple[Key, str]]) -> bytes:
    """Recognised connections packed as the stream stage packs them (flows.extract's
    APP_ENTRY_BYTES): none for addresses of different lengths or longer than 16 bytes."""
    out = bytearray()
    for (src, sport, dst, dport), name in apps:
        if len(src) == len(dst) <= 16 and name in APP_PROTOCOLS:
            out += (bytes([APP_PROTOCOLS.index(name), len(src)]) + src.ljust(16, b"\0")
                    + sport.to_bytes(2, "big") + dst.ljust(16, b"\0") + dport.to_bytes(2, "big"))
    return bytes(out)


def unpack_apps(apps: Apps) -> list[tuple[Key, str]]:
    """pack_apps, backwards."""
    out = []
    for i in range(0, len(apps), APP_ENTRY_BYTES):
        e = bytes(apps[i : i + APP_ENTRY_BYTES])
        n = e[1]
        out.append(((e[2 : 2 + n], int.from_bytes(e[18:20], "big"), e[20 : 20 + n],
                     int.from_bytes(e[36:38], "big")), APP_PROTOCOLS[e[0]]))
    return out

_TCP = 6
# LinkProto: gopacket's names for the link types, as the Go Netcap writes them.
_LINK_NAMES = {LT.ETHERNET: "Ethernet", LT.NULL: "Null", LT.LOOP: "Loop", LT.RAW: "Raw",
               LT.IPV4: "IPv4", LT.IPV6: "IPv6", LT.LINUX_SLL: "Linux SLL",
               LT.LINUX_SLL2: "Linux SLL2", LT.IEEE802_11: "802.11",
               LT.IEEE802_11_RADIOTAP: "Radiotap"}


@dataclass
class _Rows:
    """The open flows, one row each (same layout as FlowBatch, plus state)."""

    key: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, KEY_BYTES),
                                                                        np.uint8))
    first_ts: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    last_ts: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    a_first: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    packets: I64 = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    wire: I64 = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    payload: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    flags: I64 = field(default_factory=lambda: np.zeros((0, 9), np.int64))
    window: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    tcp_packets: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    syn_ts: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    syn_ab: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    synack_ts: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    rtt_done: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    fin: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 2), np.bool_))
    rst: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    dead: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    link: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    macs: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 12), np.uint8))
    app: I64 = field(default_factory=lambda: np.zeros(0, np.int64))

    def take(self, rows: I64) -> _Rows:
        return _Rows(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def append(self, other: _Rows) -> _Rows:
        return _Rows(**{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                        for f in fields(self)})

    def __len__(self) -> int:
        return int(self.first_ts.shape[0])


@dataclass
class Ended:
    """Connections that ended (in the order they started)."""

    rows: _Rows
    evicted: int = 0  # of them, pushed out of a full table

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def records(self) -> RecordTable:
        """As Connection records (built only when asked for: writing files)."""
        return _records(self.rows)

    def labels(self) -> tuple[list[str], list[str]]:
        """Per connection, the transport and application protocol, as the metrics label
        them (the same values as read back from the records' TransportProto and
        ApplicationProto fields, lower case)."""
        transport = ["tcp" if x == _TCP else "udp" for x in self.rows.key[:, 1].tolist()]
        app = [APP_PROTOCOLS[x - 1].lower() if x else "other" for x in self.rows.app.tolist()]
        return transport, app

    @property
    def duration_ns(self) -> I64:
        return self.rows.last_ts - self.rows.first_ts

    @property
    def total_bytes(self) -> I64:
        out: I64 = self.rows.wire.sum(axis=1)
        return out


class ConnectionTable:
    def __init__(self, max_flows: int = 100_000, tcp_timeout_ns: int = TCP_TIMEOUT_NS,
                 udp_timeout_ns: int = UDP_TIMEOUT_NS, linger_ns: int = LINGER_NS) -> None:
        self.max_flows = max_flows
        self.tcp_timeout_ns = tcp_timeout_ns
        self.udp_timeout_ns = udp_timeout_ns
        self.linger_ns = linger_ns
        self.clock = 0
        self._rows = _Rows()
        self._index: dict[bytes, int] = {}
        self.rtts: list[float] = []  # handshake RTTs (seconds) completed since last taken

    def __len__(self) -> int:
        return len(self._rows)

    def update(self, fb: FlowBatch, apps: Apps = b"") -> Ended | None:
        """Merge one batch's flow segments in turn (a segment that comes after its flow's
        connection ended by the rule ends it and starts a new one), and the protocols the
        stream analyzers recognised on its segments (`recognise`: after the merge, which
        adds the rows, before anything can end); the connections that ended by its end."""
        at = np.empty(len(fb), np.int64)
        for i in range(len(fb)):
            k = fb.key[i].tobytes()
            row = self._index.get(k)
            r = self._rows
            if row is not None and self._ends(row, _wrap(int(fb.start_ts[i])
                                                         - int(r.last_ts[row]))):
                r.dead[row] = True
                row = None
            if row is None:
                row = len(r)
                self._rows = r.append(_Rows(
                    key=fb.key[i : i + 1], first_ts=fb.first_ts[i : i + 1],
                    last_ts=fb.last_ts[i : i + 1], a_first=fb.first_ab[i : i + 1],
                    packets=fb.packets[i : i + 1], wire=fb.wire[i : i + 1],
                    payload=fb.payload[i : i + 1], flags=fb.flags[i : i + 1],
                    window=fb.window[i : i + 1], tcp_packets=fb.tcp_packets[i : i + 1],
                    syn_ts=fb.syn_ts[i : i + 1], syn_ab=fb.syn_ab[i : i + 1],
                    synack_ts=fb.synack_ts[i : i + 1], rtt_done=np.zeros(1, np.bool_),
                    fin=fb.fin_ab[i : i + 1], rst=fb.rst[i : i + 1],
                    dead=np.zeros(1, np.bool_), link=fb.link[i : i + 1],
                    macs=fb.macs[i : i + 1], app=fb.app[i : i + 1]))
                self._index[k] = row
            else:
                r.first_ts[row] = min(r.first_ts[row], fb.first_ts[i])
                r.last_ts[row] = max(r.last_ts[row], fb.last_ts[i])
                r.packets[row] += fb.packets[i]
                r.wire[row] += fb.wire[i]
                r.payload[row] += fb.payload[i]
                r.flags[row] += fb.flags[i]
                r.window[row] += fb.window[i]
                r.tcp_packets[row] += fb.tcp_packets[i]
                if r.syn_ts[row] < 0 and fb.syn_ts[i] >= 0:
                    r.syn_ts[row], r.syn_ab[row] = fb.syn_ts[i], fb.syn_ab[i]
                if r.synack_ts[row] < 0:
                    r.synack_ts[row] = fb.synack_ts[i]
                r.fin[row] |= fb.fin_ab[i]
                r.rst[row] |= fb.rst[i]
                if r.app[row] == 0:
                    r.app[row] = fb.app[i]
            at[i] = row
        self.recognise(apps)
        r = self._rows
        i = at
        # Handshake RTT: SYN -> the client's first pure ACK after the SYN+ACK.
        open_ = (r.syn_ts[i] >= 0) & (r.synack_ts[i] >= 0) & ~r.rtt_done[i]
        client_ack = np.where(r.syn_ab[i], fb.ack_ts[:, 0], fb.ack_ts[:, 1])
        done = open_ & (client_ack >= r.synack_ts[i])
        for j, ack in zip(i[done].tolist(), client_ack[done].tolist(), strict=True):
            if not r.rtt_done[j]:  # (a row of two segments: the first)
                r.rtt_done[j] = True
                self.rtts.append(_wrap(ack - int(r.syn_ts[j])) / 1e9)
        self.clock = max(self.clock, int(fb.last_ts.max()) if len(fb) else 0)
        return self._expire()

    def _ends(self, row: int, idle: int) -> bool:
        """The rule: closed (a RST, or a FIN each way) and idle past the linger, or idle
        past its transport's timeout."""
        r = self._rows
        closed = bool(r.rst[row] or (r.fin[row, 0] and r.fin[row, 1]))
        timeout = self.tcp_timeout_ns if r.key[row, 1] == _TCP else self.udp_timeout_ns
        return (closed and idle > self.linger_ns) or idle > timeout

    def recognise(self, apps: Apps) -> None:
        """TCP connections whose protocol a stream analyzer recognised, by the key
        (source address, port, destination address, port) of either direction: their
        ApplicationProto, unless one is set already (the first recognised holds). A
        connection no longer (or not) in the table is left alone."""
        for (src, sport, dst, dport), name in unpack_apps(apps):
            row = self._index.get(_key(src, sport, dst, dport, _TCP))
            if row is not None and self._rows.app[row] == 0:
                self._rows.app[row] = APP_PROTOCOLS.index(name) + 1

    def advance(self, now: int) -> Ended | None:
        """Move the packet clock to `now` (if later) and end what timed out by then: a
        live capture's clock follows the wall clock while no packets arrive."""
        self.clock = max(self.clock, now)
        return self._expire()

    def _expire(self) -> Ended | None:
        r = self._rows
        now = self.clock
        tcp = r.key[:, 1] == _TCP
        idle = now - r.last_ts
        closed = r.rst | (r.fin[:, 0] & r.fin[:, 1])
        ended = r.dead | (closed & (idle > self.linger_ns)) | (
            idle > np.where(tcp, self.tcp_timeout_ns, self.udp_timeout_ns))
        evicted = 0
        over = len(r) - int(ended.sum()) - self.max_flows
        if over > 0:  # full: the least recently seen of the rest go too
            rest = np.flatnonzero(~ended)
            oldest = rest[np.argsort(r.last_ts[rest], kind="stable")[:over]]
            ended[oldest] = True
            evicted = over
        if not ended.any():
            return None
        return self._remove(np.flatnonzero(ended), evicted)

    def flush(self) -> Ended | None:
        """Every open flow ends (end of input)."""
        if not len(self._rows):
            return None
        return self._remove(np.arange(len(self._rows)), 0)

    def _remove(self, rows: I64, evicted: int) -> Ended:
        r = self._rows
        gone = r.take(rows)
        keep = np.ones(len(r), np.bool_)
        keep[rows] = False
        self._rows = r.take(np.flatnonzero(keep))
        self._index = {k.tobytes(): n for n, k in enumerate(self._rows.key)}
        return Ended(gone.take(np.argsort(gone.first_ts, kind="stable")), evicted)


def _wrap(x: int) -> int:
    """x as a signed 64-bit difference wraps (the compiled table's idle times)."""
    return (x + 2**63) % 2**64 - 2**63


def _key(src: bytes, sport: int, dst: bytes, dport: int, transport: int) -> bytes:
    """A flow's key (as `extract.summarize` builds it) from one direction's endpoints:
    addresses as 16 bytes (IPv4 in the low four), the lower (address, port) first."""
    a = src.rjust(16, b"\0") + sport.to_bytes(2, "big")
    b = dst.rjust(16, b"\0") + dport.to_bytes(2, "big")
    return bytes([6 if len(src) == 16 else 4, transport]) + (a + b if a <= b else b + a)


def _records(r: _Rows) -> RecordTable:
    """Connection records of ended flows."""
    n = len(r)
    a_first = r.a_first
    v4 = r.key[:, 0] == 4

    def side(first: bool) -> tuple[Ragged, list[bytes]]:
        """Address and port text of the originator (first=True) or the responder."""
        is_a = a_first if first else ~a_first
        ip = np.where(is_a[:, None], r.key[:, 2:18], r.key[:, 20:36])
        port = np.where(is_a, (r.key[:, 18].astype(np.int64) << 8) | r.key[:, 19],
                        (r.key[:, 36].astype(np.int64) << 8) | r.key[:, 37])
        addrs = [bytes(row[12:]) if four else bytes(row)
                 for row, four in zip(ip, v4.tolist(), strict=True)]
        return Ragged.from_list(addrs), [str(p).encode() for p in port.tolist()]

    src_ip, src_port = side(True)
    dst_ip, dst_port = side(False)
    orig, resp = np.where(a_first, 0, 1), np.where(a_first, 1, 0)
    rows = np.arange(n)
    eth = r.link == 1
    words = np.zeros((n, 48), np.uint8)
    words[:, :KEY_BYTES] = r.key
    words[:, 40:48] = r.first_ts.astype("<i8").view(np.uint8).reshape(n, 8)
    with np.errstate(over="ignore"):
        uid = (words.view("<u8")[:, :5] * MIX).sum(axis=1, dtype=np.uint64) ^ (
            words.view("<u8")[:, 5])
    cols: dict[str, Any] = {
        "TimestampFirst": r.first_ts,
        "LinkProto": Ragged.from_list([_LINK_NAMES.get(x, f"linktype_{x}").encode()
                                       for x in r.link.tolist()]),
        "NetworkProto": Ragged.from_list([b"IPv4" if x else b"IPv6" for x in v4.tolist()]),
        "TransportProto": Ragged.from_list([b"TCP" if x == _TCP else b"UDP"
                                            for x in r.key[:, 1].tolist()]),
        "ApplicationProto": Ragged.from_list([APP_PROTOCOLS[x - 1].encode() if x else b""
                                              for x in r.app.tolist()]),
        "SrcMAC": Ragged.from_list([bytes(m[6:12]) if e else b""
                                    for m, e in zip(r.macs, eth.tolist(), strict=True)]),
        "DstMAC": Ragged.from_list([bytes(m[:6]) if e else b""
                                    for m, e in zip(r.macs, eth.tolist(), strict=True)]),
        "SrcIP": src_ip, "SrcPort": Ragged.from_list(src_port),
        "DstIP": dst_ip, "DstPort": Ragged.from_list(dst_port),
        "TotalSize": r.wire.sum(axis=1), "AppPayloadSize": r.payload,
        "NumPackets": r.packets.sum(axis=1),
        "UID": Ragged.from_list([f"{u:016x}".encode() for u in uid.tolist()]),
        "TimestampLast": r.last_ts, "Duration": r.last_ts - r.first_ts,
        "BytesClientToServer": r.wire[rows, orig], "BytesServerToClient": r.wire[rows, resp],
        "MeanWindowSize": np.where(r.tcp_packets > 0,
                                   r.window // np.maximum(r.tcp_packets, 1), 0),
    }
    for j, name in enumerate(("NumFINFlags", "NumRSTFlags", "NumACKFlags", "NumSYNFlags",
                              "NumURGFlags", "NumECEFlags", "NumPSHFlags", "NumCWRFlags",
                              "NumNSFlags")):
        cols[name] = r.flags[:, j]
    return RecordTable(RECORDS["Connection"], n, cols)


def summarize(d: Decoded, tcp_timeout_ns: int = TCP_TIMEOUT_NS,
              udp_timeout_ns: int = UDP_TIMEOUT_NS, linger_ns: int = LINGER_NS
              ) -> FlowBatch | None:
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

    # Group by key, in batch (time) order within a group; a group cut into segments where
    # a row comes more than its transport's split time after the one before.
    order, starts, group = group_rows([a_hi, a_lo, b_hi, b_lo, small])
    ts = d.batch.ts[pkt]
    st = ts[order]
    split = np.where(is_tcp[order], min(linger_ns, tcp_timeout_ns), udp_timeout_ns)
    gap = (st[1:].view(np.uint64) - st[:-1].view(np.uint64)).view(np.int64)  # (wraps)
    cut = np.r_[True, (group[1:] != group[:-1]) | (gap > split[1:])]
    group = np.cumsum(cut) - 1
    starts = np.flatnonzero(cut)
    g = np.empty(n, np.int64)
    g[order] = group
    m = int(starts.shape[0])
    first = order[starts]  # the earliest packet (batch order) of each segment
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
        last_ts=np.maximum.reduceat(ts[order], starts), start_ts=ts[first],
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
