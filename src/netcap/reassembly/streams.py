"""Stream analyzers over reassembled TCP: segments of selected ports, merged in input
order (the sequential stage, like the connection table), reassembled per direction and
handed to the analyzer for the port.

Workers pick the segments (`segments`: TCP packets to or from a stream port, with their
payload); the parent (`StreamStage`) owns the streams. For now one analyzer: DNS over
TCP (RFC 1035 4.2.2: each message after a 2-byte length; several per stream, in either
direction). A gap in a stream drops the message it cuts; framing restarts with the next
delivered chunk, which is right when that chunk starts a message (DNS messages usually
travel in segments of their own) and otherwise ends in a counted decode error. Streams
are bounded in number (`max_streams`: the least recently used go) and each direction in
buffered bytes (see `tcp.Stream`).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analyzers.dns import parse_dns
from ..analyzers.tls import HelloReader, ja3, ja3s, ja4
from ..decode.batch import Decoded
from ..decode.errors import DecodeError, describe
from ..flows.extract import addr_words, group_rows
from ..gather import gather_u8
from ..records.table import Ragged, RecordTable
from ..records.types import RECORDS
from .tcp import Chunk, Stream

__all__ = ["STREAM_PORTS", "Segment", "StreamStage", "segments"]

# TCP port -> the stream analyzer for it. TLS is also recognized on any other port by
# its first bytes (a handshake record: 0x16 0x03 0x00-0x04).
_TLS_PORTS = (443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 4433, 5061, 5223, 5228,
              8443, 10443)
STREAM_PORTS: dict[int, str] = {53: "DNS", **{p: "TLS" for p in _TLS_PORTS}}
STREAM_RECORDS = frozenset({"DNS", "TLSClientHello", "TLSServerHello"})
TCP_SEGMENT_COLUMNS = frozenset({"SeqNum", "SYN", "FIN", "RST", "_poff", "PayloadSize"})

# (src address, src port, dst address, dst port, seq, SYN, payload, time, packet number)
Segment = tuple[bytes, int, bytes, int, int, bool, bytes, int, int]
_MAX_SEGMENTS = 8  # per direction and batch: a hello in more segments than this ends in a gap
_PORTS = {kind: np.zeros(65536, np.bool_) for kind in ("DNS", "TLS")}
for _port, _kind in STREAM_PORTS.items():
    _PORTS[_kind][_port] = True


def segments(d: Decoded, tls: bool = True, dns: bool = True) -> list[Segment] | None:
    """The TCP segments of a decoded batch that a stream analyzer wants (of the TLS and
    DNS analyzers, those that run)."""
    t = d.tables.get("TCP")
    if t is None or t.pkt is None or not t.n:
        return None
    sport, dport = np.asarray(t.cols["SrcPort"]), np.asarray(t.cols["DstPort"])
    want = np.zeros(t.n, np.bool_)
    for kind, on in (("DNS", dns), ("TLS", tls)):
        if on:
            want |= _PORTS[kind][sport] | _PORTS[kind][dport]
    data, b = d.batch.data, d.batch
    poff_all = np.asarray(t.cols["_poff"])
    size_all = np.asarray(t.cols["PayloadSize"])
    # TLS on other ports: a segment that starts a handshake record, and the batch's
    # other segments of the same direction (the rest of a hello split over segments).
    starts = np.flatnonzero(~want & (size_all >= 6)) if tls else np.zeros(0, np.int64)
    if starts.size:
        head = gather_u8(data, poff_all[starts], 3)
        hello = starts[(head[:, 0] == 0x16) & (head[:, 1] == 3) & (head[:, 2] <= 4)]
        if hello.size:
            same = np.isin(sport * 65536 + dport, sport[hello] * 65536 + dport[hello])
            want |= same & (size_all > 0)
    # Analyzers want a stream's first bytes (a hello, a DNS message), not its bulk: per
    # direction, a batch ships its SYNs and its first _MAX_SEGMENTS segments with data.
    rows = np.flatnonzero(want & ((size_all > 0) | np.asarray(t.cols["SYN"], np.bool_)))
    if rows.size > _MAX_SEGMENTS:
        src_ip, dst_ip = t.cols["SrcIP"], t.cols["DstIP"]
        assert isinstance(src_ip, Ragged) and isinstance(dst_ip, Ragged)
        s_hi, s_lo = addr_words(src_ip.take(rows))
        d_hi, d_lo = addr_words(dst_ip.take(rows))
        ports = (sport[rows].astype(np.uint64) << np.uint64(16)) | dport[rows].astype(np.uint64)
        order, starts, group = group_rows([s_hi, s_lo, d_hi, d_lo, ports])
        rank = np.arange(rows.shape[0]) - starts[group]  # position within its direction
        keep = np.zeros(rows.shape[0], np.bool_)
        keep[order] = rank < _MAX_SEGMENTS
        rows = rows[keep]
    if not rows.size:
        return None
    src, dst = t.cols["SrcIP"], t.cols["DstIP"]
    assert isinstance(src, Ragged) and isinstance(dst, Ragged)
    poff = poff_all[rows].tolist()
    size = size_all[rows].tolist()
    pkt = t.pkt[rows]
    return list(zip(src.take(rows).tolist(), sport[rows].tolist(), dst.take(rows).tolist(),
                    dport[rows].tolist(), np.asarray(t.cols["SeqNum"])[rows].tolist(),
                    np.asarray(t.cols["SYN"])[rows].tolist(),
                    [data[o : o + s].tobytes() for o, s in zip(poff, size, strict=True)],
                    b.ts[pkt].tolist(), (pkt + b.first).tolist(), strict=True))


@dataclass
class _Direction:
    stream: Stream
    pending: bytearray = field(default_factory=bytearray)  # DNS framing: bytes not yet used
    tls: HelloReader | None = None  # TLS: the hello reader (None for DNS)
    done: bool = False  # the analyzer has what it wants: segments are ignored


@dataclass
class StreamOutput:
    """What one update produced: records per type (rows with their packet number) and
    counts for the metrics."""

    records: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)  # "protocol/reason" -> count
    gap_bytes: int = 0
    overflows: int = 0
    tls_handshakes: list[float] = field(default_factory=list)  # ClientHello -> ServerHello, s

    def tables(self) -> dict[str, RecordTable]:
        out: dict[str, RecordTable] = {}
        for name, rows in self.records.items():
            out[name] = RecordTable.from_rows(RECORDS[name], [r for _, r in rows],
                                              [p for p, _ in rows])
        return out


class StreamStage:
    def __init__(self, max_streams: int = 10_000, max_buffer: int = 256 * 1024) -> None:
        self.max_streams = max_streams
        self.max_buffer = max_buffer
        self._dirs: OrderedDict[tuple[bytes, int, bytes, int], _Direction] = OrderedDict()
        self._client_hello: dict[tuple[bytes, int, bytes, int], int] = {}  # key -> time

    def update(self, segs: list[Segment] | None) -> StreamOutput:
        out = StreamOutput()
        for src, sport, dst, dport, seq, syn, payload, ts, pkt in segs or ():
            key = (src, sport, dst, dport)
            d = self._dirs.get(key)
            if d is None:
                dns = sport == 53 or dport == 53
                d = self._dirs[key] = _Direction(Stream(self.max_buffer),
                                                 tls=None if dns else HelloReader())
                while len(self._dirs) > self.max_streams:  # least recently used go
                    gone, _ = self._dirs.popitem(last=False)
                    self._client_hello.pop(gone, None)
            else:
                self._dirs.move_to_end(key)
            if d.done:
                continue
            if syn:
                d.stream.syn(seq)
            gaps, overflows = d.stream.gaps, d.stream.overflows
            chunks = d.stream.segment(seq, payload, ts)
            out.gap_bytes += d.stream.gaps - gaps
            out.overflows += d.stream.overflows - overflows
            self._analyze(key, d, chunks, pkt, out)
        return out

    def flush(self) -> StreamOutput:
        out = StreamOutput()
        for key, d in self._dirs.items():
            gaps = d.stream.gaps
            if not d.done:
                self._analyze(key, d, d.stream.flush(), -1, out)
            out.gap_bytes += d.stream.gaps - gaps
        self._dirs.clear()
        self._client_hello.clear()
        return out

    def _analyze(self, key: tuple[bytes, int, bytes, int], d: _Direction,
                 chunks: list[Chunk], pkt: int, out: StreamOutput) -> None:
        if d.tls is None:
            self._dns(key, d, chunks, pkt, out)
            return
        for c in chunks:
            if c.skip:
                out.errors["tls/gap"] += 1  # a hole before the hello: give up
                d.done = True
                return
            try:
                hellos = d.tls.feed(c.data)
            except DecodeError as e:
                out.errors[describe(e.index)] += 1
                d.done = True
                return
            if d.tls.done:
                d.done = True
                if d.tls.violation is not None:
                    out.errors[f"tls/{d.tls.violation}"] += 1
            for htype, rec in hellos:
                rec.update(Timestamp=c.ts, SrcIP=key[0], SrcPort=key[1], DstIP=key[2],
                           DstPort=key[3])
                if htype == 1:
                    self._client_hello.setdefault(key, c.ts)
                    rec["Ja3"] = ja3(rec)[1].encode()
                    rec["Ja4"] = ja4(rec).encode()
                    rec.pop("_versions", None)
                    out.records.setdefault("TLSClientHello", []).append((pkt, rec))
                else:
                    start = self._client_hello.pop((key[2], key[3], key[0], key[1]), None)
                    if start is not None and c.ts >= start:
                        out.tls_handshakes.append((c.ts - start) / 1e9)
                    rec["Ja3s"] = ja3s(rec)[1].encode()
                    out.records.setdefault("TLSServerHello", []).append((pkt, rec))
            if d.done:
                return

    def _dns(self, key: tuple[bytes, int, bytes, int], d: _Direction, chunks: list[Chunk],
             pkt: int, out: StreamOutput) -> None:
        for c in chunks:
            if c.skip:  # a gap: the message it cuts is lost; start over after it
                d.pending.clear()
            d.pending += c.data
            while len(d.pending) >= 2:
                size = (d.pending[0] << 8) | d.pending[1]
                if len(d.pending) < 2 + size:
                    break
                msg = bytes(d.pending[2 : 2 + size])
                del d.pending[: 2 + size]
                try:
                    rec = parse_dns(msg)
                except DecodeError as e:
                    out.errors[describe(e.index)] += 1
                    continue
                rec.update(Timestamp=c.ts, SrcIP=key[0], SrcPort=key[1], DstIP=key[2],
                           DstPort=key[3])
                out.records.setdefault("DNS", []).append((pkt, rec))
