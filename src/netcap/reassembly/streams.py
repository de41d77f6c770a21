"""Stream analyzers over reassembled TCP: segments of selected ports, merged in input
order (the sequential stage, like the connection table), reassembled per direction and
handed to the analyzer for the port.

Workers pick the segments (`segments`: TCP packets to or from a stream port, with their
payload); the parent (`StreamStage`) owns the streams. The analyzers:

- DNS over TCP (RFC 1035 4.2.2: each message after a 2-byte length; several per
  stream, in either direction). A gap drops the message it cuts; framing restarts with
  the next delivered chunk, which is right when that chunk starts a message (DNS
  messages usually travel in segments of their own) and otherwise ends in a counted
  decode error.
- TLS hellos (`analyzers/tls.py`), per direction, on TLS ports and on any port whose
  stream starts with a handshake record.
- SSH banners and KEXINITs (`analyzers/ssh.py`), per direction.
- HTTP/1.x (`analyzers/http.py`), per connection: both directions feed one
  `HttpConnection`, which pairs requests with responses; it needs every byte (bodies
  are framed, not kept), and FIN/RST, so its segments are all shipped.

DNS and HTTP get every segment. TLS and SSH want a stream's first bytes only (a hello,
a banner and KEXINIT): per direction and batch the workers ship SYNs and the first
`_MAX_SEGMENTS` data segments, and a direction whose analyzer is done ignores the rest.
An analyzer that meets a protocol violation is detached from its stream and the
violation counted (`nc_decoding_errors{protocol,reason}`). On other ports a direction's
analyzer is chosen by its stream's first bytes (an HTTP method or status line, a TLS
handshake record header; else none), read however segments cut them: so the workers
also ship segments of 1-3 bytes that could start one. An analyzer recognising its
protocol names the connection's ApplicationProto (`StreamOutput.apps`). A bug that an
analyzer (or this stage) meets on a stream's bytes is counted
(`<protocol>/internal_error`) and that connection dropped; the others go on. Streams
are bounded in number (`max_streams`: the least recently used go; an HTTP connection
that goes is closed, so what it completed is kept) and each direction in buffered
bytes (see `tcp.Stream`).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..analyzers.dns import parse_dns
from ..decode.batch import Decoded
from ..decode.errors import DecodeError, describe
from ..flows.extract import addr_words, group_rows
from ..gather import gather_u8
from ..records.table import Ragged, RecordTable
from ..records.types import RECORDS
from .tcp import Chunk, Hidden, Stream

if TYPE_CHECKING:  # imported when a stream first needs them (start-up time of export)
    from ..analyzers.http import HttpConnection
    from ..analyzers.ssh import SshReader
    from ..analyzers.tls import HelloReader

__all__ = ["KIND_RECORDS", "STREAM_PORTS", "Segment", "SegmentBatch",
           "StreamStage", "record_order", "segments"]

I64 = npt.NDArray[np.int64]
Key = tuple[bytes, int, bytes, int]  # (src address, src port, dst address, dst port)

# TCP port -> the stream analyzer for it. TLS is also recognized on any other port by
# its first bytes (a handshake record: 0x16 0x03 0x00-0x04).
_TLS_PORTS = (443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 4433, 5061, 5223, 5228,
              8443, 10443)
_HTTP_PORTS = (80, 81, 3128, 8000, 8008, 8080, 8081, 8888)
_SSH_PORTS = (22, 2222)
STREAM_PORTS: dict[int, str] = {53: "DNS", **{p: "TLS" for p in _TLS_PORTS},
                                **{p: "HTTP" for p in _HTTP_PORTS},
                                **{p: "SSH" for p in _SSH_PORTS}}
# The record types of each stream analyzer (it runs when one of them is wanted).
KIND_RECORDS: dict[str, tuple[str, ...]] = {
    "DNS": ("DNS",), "TLS": ("TLSClientHello", "TLSServerHello"), "HTTP": ("HTTP",),
    "SSH": ("SSH",)}
TCP_SEGMENT_COLUMNS = frozenset({"SeqNum", "SYN", "FIN", "RST", "_poff", "PayloadSize"})
ALL_KINDS = frozenset(KIND_RECORDS)
FINGERPRINTS = frozenset({"ja3", "ja4"})

# (src address, src port, dst address, dst port, seq, flags, payload, time, packet number);
# flags: SYN 1, FIN 2, RST 4.
# payload: the bytes, or (HTTP bodies, see `segments`) the count of bytes not shipped
Segment = tuple[bytes, int, bytes, int, int, int, bytes | int, int, int]
SYN, FIN, RST = 1, 2, 4
_MAX_SEGMENTS = 4  # per direction and batch: a hello in more segments than this ends in a gap
_PORTS = {kind: np.zeros(65536, np.bool_) for kind in KIND_RECORDS}
for _port, _name in STREAM_PORTS.items():
    _PORTS[_name][_port] = True


def segments(d: Decoded, kinds: frozenset[str] = ALL_KINDS,
             hide_bodies: bool = False) -> SegmentBatch | None:
    """The TCP segments of a decoded batch that the stream analyzers `kinds` want.

    `hide_bodies` (records only counted, not written): HTTP segments that cannot hold a
    byte of a message head or of chunked framing are shipped as their length only
    (`Hidden`), and runs of them in one direction as one. Heads and chunk-size lines
    are ASCII lines ending in CRLF, so a segment holds such a byte only if it contains
    CRLF, or lies wholly inside one line (then it holds no control byte but tab, CR
    and LF: llhttp refuses them in a head, but for a status line's reason phrase), or a
    head starts in it and runs past its end (then its last byte is text), or it starts
    with the LF of a CRLF split over segments. A segment with none of these is body
    bytes: on bulk binary bodies most segments are. (A status line with control bytes
    or bytes 0x80-0xFF in its reason phrase, cut there by the end of a segment that
    holds no CRLF, can be hidden; the transaction is then lost as an `http/gap`.)"""
    t = d.tables.get("TCP")
    if t is None or t.pkt is None or not t.n or not kinds:
        return None
    sport, dport = np.asarray(t.cols["SrcPort"]), np.asarray(t.cols["DstPort"])
    want = np.zeros(t.n, np.bool_)  # hellos and banners: a stream's first segments
    for kind in kinds & {"TLS", "SSH"}:
        want |= _PORTS[kind][sport] | _PORTS[kind][dport]
    data, b = d.batch.data, d.batch
    poff_all = np.asarray(t.cols["_poff"])
    size_all = np.asarray(t.cols["PayloadSize"])
    syn = np.asarray(t.cols["SYN"], np.bool_)
    closing = np.asarray(t.cols["FIN"], np.bool_) | np.asarray(t.cols["RST"], np.bool_)
    # TLS on other ports: a segment that starts a handshake record, and the batch's
    # other segments of the same direction (the rest of a hello split over segments).
    http = (_PORTS["HTTP"][sport] | _PORTS["HTTP"][dport]) if "HTTP" in kinds else None
    # DNS over TCP: every segment (a zone transfer is many messages)
    dns = (_PORTS["DNS"][sport] | _PORTS["DNS"][dport]) if "DNS" in kinds else None
    others = ~want
    for every in (http, dns):
        if every is not None:
            others &= ~every
    if http is not None:  # HTTP on other ports: a connection with a segment that
        # starts an HTTP message, both directions (every segment, as on HTTP ports).
        # A segment of 1-3 bytes that could be the start of one counts too: the stage
        # reads a stream's first bytes whatever the segments (see `_sniff`), so which
        # segments are shipped must not depend on where the first one ends either.
        first = np.flatnonzero(others & (size_all >= 4))
        short = np.flatnonzero(others & (size_all > 0) & (size_all < 4))
        if first.size or short.size:
            word = gather_u8(data, poff_all[first], 4).view(">u4")[:, 0].astype(np.int64)
            talk = np.concatenate([first[np.isin(word, _HTTP_WORDS)],
                                   short[_http_prefix(data, poff_all[short], size_all[short])]])
            if talk.size:
                pair = np.concatenate([sport[talk] * 65536 + dport[talk],
                                       dport[talk] * 65536 + sport[talk]])
                found = np.isin(sport * 65536 + dport, pair) & others
                http = http | found
                others &= ~found
    starts = np.flatnonzero(others & (size_all > 0)) if "TLS" in kinds else np.zeros(
        0, np.int64)
    if starts.size:  # a handshake record header, or (shorter segments) its start
        n = size_all[starts]
        b0, b1, b2 = (_byte(data, poff_all[starts], n, k) for k in range(3))
        hello = starts[(b0 == 0x16) & ((n < 2) | (b1 == 3)) & ((n < 3) | (b2 <= 4))]
        if hello.size:
            same = np.isin(sport * 65536 + dport, sport[hello] * 65536 + dport[hello])
            want |= same & (size_all > 0)
    # Analyzers of hellos and banners want a stream's first bytes, not its bulk: per
    # direction, a batch ships its SYNs and its first _MAX_SEGMENTS segments with data.
    # A TLS direction's hellos come before its first application-data record: segments
    # from one starting with such a record header (0x17 0x03 0x00-0x04) on are not
    # shipped (so established TLS flows cost nothing in later batches).
    rows = np.flatnonzero(want & ((size_all > 0) | syn))
    if rows.size:
        app = np.zeros(rows.size, np.bool_)
        tls_rows = np.flatnonzero((size_all[rows] >= 3) & ~_PORTS["SSH"][sport[rows]]
                                  & ~_PORTS["SSH"][dport[rows]])
        head = gather_u8(data, poff_all[rows[tls_rows]], 3)
        app[tls_rows] = (head[:, 0] == 0x17) & (head[:, 1] == 3) & (head[:, 2] <= 4)
        order, first, group = _directions(t, rows)
        rank = np.arange(rows.shape[0]) - first[group]  # position within its direction
        o_app = app[order].astype(np.int64)
        before = np.cumsum(o_app) - o_app  # application records earlier in the batch...
        seen = before - before[first[group]]  # ...and in this direction
        keep = np.zeros(rows.shape[0], np.bool_)
        keep[order] = (rank < _MAX_SEGMENTS) & (seen == 0) & (o_app == 0)
        rows = rows[keep]
    seq_all = np.asarray(t.cols["SeqNum"])
    hidden_len: I64 | None = None
    if http is not None:  # HTTP: every segment with data, SYN, FIN or RST
        hrows = np.flatnonzero(http & ((size_all > 0) | syn | closing))
        if hide_bodies and hrows.size:
            hrows, run_rows, run_len, run_seq = _hide(d, hrows)
            if run_rows.size:  # each run stands on its last row, from its first byte
                hidden_len = np.zeros(t.n, np.int64)
                hidden_len[run_rows] = run_len
                seq_all = seq_all.copy()
                seq_all[run_rows] = run_seq
                hrows = np.union1d(hrows, run_rows)
        rows = np.union1d(rows, hrows)
    if dns is not None:
        rows = np.union1d(rows, np.flatnonzero(dns & ((size_all > 0) | syn)))
    if not rows.size:
        return None
    src, dst = t.cols["SrcIP"], t.cols["DstIP"]
    if not (isinstance(src, Ragged) and isinstance(dst, Ragged)):  # invariant (not input)
        raise TypeError("unexpected column types")
    pkt = t.pkt[rows]
    flags = (syn[rows] * SYN) | (np.asarray(t.cols["FIN"], np.bool_)[rows] * FIN) | (
        np.asarray(t.cols["RST"], np.bool_)[rows] * RST)
    hidden = np.zeros(rows.size, np.int64) if hidden_len is None else hidden_len[rows]
    size = np.where(hidden > 0, 0, size_all[rows])
    view = data.data  # payloads joined from views of the batch: one copy of each
    blob = b"".join([view[o : o + n] for o, n in zip(poff_all[rows].tolist(), size.tolist(),
                                                      strict=True) if n])
    return SegmentBatch(src.take(rows), sport[rows], dst.take(rows), dport[rows],
                        seq_all[rows], flags.astype(np.int64), blob, size, hidden,
                        b.ts[pkt], pkt + b.first)


@dataclass
class SegmentBatch:
    """A batch's stream segments, columnar: cheap to pickle between processes (arrays
    and one bytes object instead of a tuple per segment). `rows` gives them as the
    `Segment` tuples the stage reads."""

    src: Ragged
    sport: I64
    dst: Ragged
    dport: I64
    seq: I64
    flags: I64
    payload: bytes  # the shipped payloads back to back
    size: I64  # bytes of each in `payload` (0 for hidden ones)
    hidden: I64  # > 0: that many body bytes not shipped (see `segments`)
    ts: I64
    pkt: I64

    def __len__(self) -> int:
        return int(self.sport.shape[0])

    @staticmethod
    def from_rows(segs: list[Segment]) -> SegmentBatch:
        """From `Segment` tuples (tests)."""
        def col(i: int) -> I64:
            return np.asarray([s[i] for s in segs], np.int64).reshape(-1)

        data = [s[6] for s in segs]
        return SegmentBatch(
            Ragged.from_list([s[0] for s in segs]), col(1), Ragged.from_list([s[2] for s in segs]),
            col(3), col(4), col(5), b"".join(x for x in data if isinstance(x, bytes)),
            np.asarray([len(x) if isinstance(x, bytes) else 0 for x in data], np.int64),
            np.asarray([x if isinstance(x, int) else 0 for x in data], np.int64), col(7), col(8))

    def rows(self) -> Iterator[Segment]:
        pos = 0
        blob = self.payload
        for s, sp, d, dp, q, f, n, h, t, p in zip(
                self.src.tolist(), self.sport.tolist(), self.dst.tolist(),
                self.dport.tolist(), self.seq.tolist(), self.flags.tolist(),
                self.size.tolist(), self.hidden.tolist(), self.ts.tolist(),
                self.pkt.tolist(), strict=True):
            yield s, sp, d, dp, q, f, h if h else blob[pos : pos + n], t, p
            pos += n

    def take(self, rows: I64) -> SegmentBatch:
        starts = np.cumsum(self.size) - self.size
        view = memoryview(self.payload)
        blob = b"".join([view[o : o + n] for o, n in zip(starts[rows].tolist(),
                                                         self.size[rows].tolist(),
                                                         strict=True) if n])
        return SegmentBatch(self.src.take(rows), self.sport[rows], self.dst.take(rows),
                            self.dport[rows], self.seq[rows], self.flags[rows], blob,
                            self.size[rows], self.hidden[rows], self.ts[rows],
                            self.pkt[rows])


def _byte(data: npt.NDArray[np.uint8], poff: I64, size: I64, k: int) -> I64:
    """Byte k of each payload, -1 where the payload is shorter."""
    out = np.full(poff.shape[0], -1, np.int64)
    has = size > k
    out[has] = data[poff[has] + k]
    return out


def _http_prefix(data: npt.NDArray[np.uint8], poff: I64, size: I64) -> npt.NDArray[np.bool_]:
    """Which payloads of 1-3 bytes are the start of an HTTP message's first bytes."""
    word = np.zeros(poff.shape[0], np.int64)
    for k in range(3):
        word = np.where(size > k, word * 256 + _byte(data, poff, size, k), word)
    out = np.zeros(poff.shape[0], np.bool_)
    for n, prefixes in _HTTP_PREFIXES.items():
        out |= (size == n) & np.isin(word, prefixes)
    return out


def _directions(t: RecordTable, rows: I64) -> tuple[I64, I64, I64]:
    """TCP rows grouped by direction (addresses and ports): `group_rows`' result."""
    src, dst = t.cols["SrcIP"], t.cols["DstIP"]
    if not (isinstance(src, Ragged) and isinstance(dst, Ragged)):  # invariant (not input)
        raise TypeError("unexpected column types")
    s_hi, s_lo = addr_words(src.take(rows))
    d_hi, d_lo = addr_words(dst.take(rows))
    sport = np.asarray(t.cols["SrcPort"])[rows].astype(np.uint64)
    dport = np.asarray(t.cols["DstPort"])[rows].astype(np.uint64)
    return group_rows([s_hi, s_lo, d_hi, d_lo, (sport << np.uint64(16)) | dport])


# Bytes of a head line: printable ASCII, tab, CR, LF.
_TEXT = np.zeros(256, np.bool_)
_TEXT[0x20:0x7F] = True
_TEXT[[9, 10, 13]] = True
# A byte llhttp refuses anywhere in a head (and chunk-size lines are hex): the control
# bytes but tab, CR and LF. Header values may hold bytes 0x80-0xFF (obs-text).
_NOT_HEAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _hide(d: Decoded, rows: I64) -> tuple[I64, I64, I64, I64]:
    """Of the HTTP segments `rows`: those still shipped, and per run of consecutive
    hidden segments of one direction (contiguous in sequence space, see `segments`) its
    last row, the run's length and its first sequence number."""
    t = d.tables["TCP"]
    data = d.batch.data
    poff = np.asarray(t.cols["_poff"])[rows]
    size = np.asarray(t.cols["PayloadSize"])[rows]
    seq = np.asarray(t.cols["SeqNum"])[rows]
    flags = (np.asarray(t.cols["SYN"], np.bool_) | np.asarray(t.cols["FIN"], np.bool_)
             | np.asarray(t.cols["RST"], np.bool_))[rows]
    cand = np.flatnonzero((size > 1) & ~flags)
    cand = cand[(data[poff[cand]] != 10) & ~_TEXT[data[poff[cand] + size[cand] - 1]]]
    if cand.size:  # and no CRLF inside, and a byte no head holds (a head that holds
        # bytes 0x80-0xFF, split there, is not body): one copy of the span
        base = int(poff[cand].min())
        blob = data[base : int((poff[cand] + size[cand]).max())].tobytes()
        keep = np.fromiter((blob.find(b"\r\n", o, o + n) < 0
                            and _NOT_HEAD.search(blob, o, o + n) is not None
                            for o, n in zip((poff[cand] - base).tolist(), size[cand].tolist(),
                                            strict=True)), np.bool_, cand.size)
        cand = cand[keep]
    none = np.zeros(0, np.int64)
    if not cand.size:
        return rows, none, none, none
    hide = np.zeros(rows.size, np.bool_)
    hide[cand] = True
    # Runs: a hidden segment joins the previous segment of its direction if that one
    # was hidden too and it continues it in sequence space.
    order, _, group = _directions(t, rows)
    o_hide, o_seq, o_size, o_group = hide[order], seq[order], size[order], group[order]
    joins = np.zeros(rows.size, np.bool_)
    joins[1:] = ((o_group[1:] == o_group[:-1]) & o_hide[1:] & o_hide[:-1]
                 & ((o_seq[:-1] + o_size[:-1]) % (1 << 32) == o_seq[1:]))
    run = np.cumsum(~joins) - 1  # run number of each (ordered) row
    total = np.bincount(run, weights=o_size).astype(np.int64)
    run_seq = o_seq[np.flatnonzero(~joins)]
    last = np.ones(rows.size, np.bool_)
    last[:-1] = ~joins[1:]
    ends = o_hide & last
    shipped = np.ones(rows.size, np.bool_)
    shipped[order[o_hide]] = False
    return rows[shipped], rows[order[ends]], total[run[ends]], run_seq[run[ends]]


@dataclass
class _Direction:
    kind: str | None  # "DNS", "TLS", "SSH" or "HTTP"; None: not known before data
    stream: Stream
    pending: bytearray = field(default_factory=bytearray)  # DNS framing: bytes not yet used
    tls: HelloReader | None = None
    ssh: SshReader | None = None
    http: HttpConnection | None = None  # shared by both directions of the connection
    from_client: bool = True  # HTTP: which side this is
    closed: bool = False  # FIN or RST seen
    done: bool = False  # the analyzer has what it wants: segments are ignored
    held: list[Chunk] = field(default_factory=list)  # other ports: chunks before the kind
    # is known from the stream's first bytes (fewer than 4 of them)
    marked: bool = False  # the analyzer recognised its protocol (see StreamOutput.apps)


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


def _shipped(chunks: list[Chunk]) -> list[Chunk]:
    """Chunks for an analyzer that reads bytes (all but HTTP's): bytes not shipped
    (`Hidden`: only HTTP segments are shipped so, but the kind of a stream on another
    port is known only from its first bytes) are a gap to it, never data."""
    return [Chunk(b"", c.skip + len(c.data), c.ts) if isinstance(c.data, Hidden) else c
            for c in chunks]


def _data(c: Chunk) -> bytes:
    return c.data if isinstance(c.data, bytes) else b""


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


@cache
def _analyzers() -> Any:
    """The stream analyzer modules, imported on first use (an export that meets no TLS,
    SSH or HTTP stream does not pay for them) and then held: an import statement in the
    per-direction path cost ~1 µs a time."""
    from ..analyzers import http, ssh, tls

    return SimpleNamespace(HelloReader=tls.HelloReader, SshReader=ssh.SshReader,
                           HttpConnection=http.HttpConnection, ja3=tls.ja3, ja3s=tls.ja3s,
                           ja4=tls.ja4)


def _kind(sport: int, dport: int) -> tuple[str | None, bool]:
    """The analyzer for a new direction by its ports, and whether it is the client side
    (the side that talks to the well-known port); None: decided by its first bytes."""
    kind = STREAM_PORTS.get(dport)
    if kind is not None:
        return kind, True
    kind = STREAM_PORTS.get(sport)
    if kind is not None:
        return kind, False
    return None, sport > dport


# First bytes of an HTTP message (a request method and its space, or a status line):
# HTTP on other ports is found by them, as TLS by its handshake record.
_HTTP_STARTS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN",
                b"TRAC", b"HTTP")
_HTTP_WORDS = np.frombuffer(b"".join(_HTTP_STARTS), ">u4").astype(np.int64)
_HTTP_PREFIXES = {n: np.array(sorted({int.from_bytes(w[:n], "big") for w in _HTTP_STARTS}),
                              np.int64) for n in (1, 2, 3)}
_OTHER = "other"  # a stream on another port that is neither: nothing to analyze


def _sniff(first: bytes, final: bool) -> tuple[str | None, bool | None]:
    """The analyzer for a direction on other ports by its first bytes (and whether they
    are a client's: a request; None: not known). None while the bytes so far (fewer
    than 4) could still start either and more may come (`final`: none will)."""
    if first[:4] in _HTTP_STARTS:
        return "HTTP", not first.startswith(b"HTTP")
    if len(first) >= 3 and first[0] == 0x16 and first[1] == 3 and first[2] <= 4:
        return "TLS", None
    if not final and len(first) < 4 and (
            any(w.startswith(first) for w in _HTTP_STARTS) or b"\x16\x03".startswith(
                first[:2]) and (len(first) < 3 or first[2] <= 4)):
        return None, None
    return _OTHER, None


def _flow(key: Key) -> str:
    return (f"{ipaddress.ip_address(key[0])}:{key[1]}->"
            f"{ipaddress.ip_address(key[2])}:{key[3]}")


class StreamStage:
    """`detail`: records are written, so complete (HTTP header maps, cookies, query
    parameters); without, only what the metrics read. `fingerprints`: which of "ja3"
    (JA3 and JA3S) and "ja4" to compute (for records, or opt-in labels)."""

    def __init__(self, max_streams: int = 10_000, max_buffer: int = 256 * 1024,
                 detail: bool = True, fingerprints: frozenset[str] = FINGERPRINTS,
                 max_total: int = 64 << 20) -> None:
        self.max_streams = max_streams
        self.max_buffer = max_buffer  # out-of-order bytes per direction
        self.max_total = max_total  # and in all (past it the fullest direction gives up)
        self._buffered = 0
        self.detail = detail
        self.fingerprints = fingerprints
        self._dirs: OrderedDict[Key, _Direction] = OrderedDict()
        self._client_hello: dict[Key, int] = {}  # key -> time

    def update(self, segs: SegmentBatch | list[Segment] | None) -> StreamOutput:
        out = StreamOutput()
        rows = segs.rows() if isinstance(segs, SegmentBatch) else segs or ()
        for src, sport, dst, dport, seq, flags, payload, ts, pkt in rows:
            key = (src, sport, dst, dport)
            d = self._dirs.get(key)
            if d is None:
                d = self._dirs[key] = self._new(key)
                while len(self._dirs) > self.max_streams:  # least recently used go
                    gone, g = self._dirs.popitem(last=False)
                    self._client_hello.pop(gone, None)
                    self._end(gone, g, ts, -1, out)
            else:
                self._dirs.move_to_end(key)
            if d.done:
                continue
            try:
                self._segment(key, d, seq, flags, payload, ts, pkt, out)
            except Exception:  # a bug met by this stream's bytes: see `_failed`
                self._failed(key, d, out)
        return out.canonical()

    def _segment(self, key: Key, d: _Direction, seq: int, flags: int, payload: bytes | int,
                 ts: int, pkt: int, out: StreamOutput) -> None:
        if flags & SYN:
            d.stream.syn(seq)
        gaps, overflows, held = d.stream.gaps, d.stream.overflows, d.stream.buffered
        chunks = d.stream.segment(
            seq, Hidden(payload) if isinstance(payload, int) else payload, ts)
        out.gap_bytes += d.stream.gaps - gaps
        out.overflows += d.stream.overflows - overflows
        self._buffered += d.stream.buffered - held
        self._analyze(key, d, chunks, pkt, out)
        if self._buffered > self.max_total:
            self._shed(pkt, out)
        if flags & (FIN | RST) and d.http is not None:
            d.closed = True
            back = self._dirs.get((key[2], key[3], key[0], key[1]))
            if flags & RST or back is None or back.closed:
                self._close_http(key, d, back, ts, pkt, out)

    def _failed(self, key: Key, d: _Direction, out: StreamOutput) -> None:
        """An analyzer (or this stage) raised on a stream's bytes: that is a bug, but
        one stream must not end the process (input may be crafted to find it). It is
        counted (`<protocol>/internal_error`) and the connection dropped: both
        directions ignore their segments from now on and keep no bytes (they leave as
        other directions do, least recently used first); the records it completed
        before stay."""
        out.errors[f"{(d.kind if d.kind in KIND_RECORDS else 'tcp').lower()}"
                   "/internal_error"] += 1
        back_key = (key[2], key[3], key[0], key[1])
        back = self._dirs.get(back_key)
        if back is None:  # not seen yet: it must not start an analyzer of its own
            back = self._dirs[back_key] = _Direction(d.kind, Stream(self.max_buffer))
        for x in (d, back):
            x.done = True
            x.stream = Stream(self.max_buffer)
            x.http = x.tls = x.ssh = None
            x.held, x.pending = [], bytearray()
        # What the directions hold, counted again: the failure may have come between
        # a change and its accounting.
        self._buffered = sum(x.stream.buffered for x in self._dirs.values())

    def _shed(self, pkt: int, out: StreamOutput) -> None:
        """Out-of-order bytes of all streams past `max_total`: the direction holding the
        most delivers what it has, with gaps, and goes on from there."""
        key, d = max(self._dirs.items(), key=lambda kv: kv[1].stream.buffered)
        held, gaps = d.stream.buffered, d.stream.gaps
        chunks = d.stream.shed()
        self._buffered -= held
        out.gap_bytes += d.stream.gaps - gaps
        out.overflows += 1
        if not d.done:
            self._analyze(key, d, chunks, pkt, out)

    def flush(self) -> StreamOutput:
        """End of input: what every direction holds is delivered, HTTP connections
        closed, SSH banners without a KEXINIT recorded."""
        out = StreamOutput()
        for key, d in list(self._dirs.items()):
            if key in self._dirs:
                try:
                    self._end(key, d, None, -1, out)
                except Exception:  # a bug: counted, that stream dropped (`_failed`)
                    self._failed(key, d, out)
        self._dirs.clear()
        self._client_hello.clear()
        self._buffered = 0
        return out.canonical()

    def _new(self, key: Key) -> _Direction:
        kind, client = _kind(key[1], key[3])
        d = _Direction(kind, Stream(self.max_buffer), from_client=client)
        if kind is not None:
            self._start(key, d)
        return d

    def _start(self, key: Key, d: _Direction) -> None:
        """The analyzer for the direction's kind (HTTP: shared with the other side)."""
        kind = d.kind
        if kind == "TLS":
            d.tls = _analyzers().HelloReader()
        elif kind == "SSH":
            d.ssh = _analyzers().SshReader(d.from_client)
        elif kind == "HTTP":
            back = self._dirs.get((key[2], key[3], key[0], key[1]))
            d.http = back.http if back is not None and back.http is not None \
                else _analyzers().HttpConnection(self.detail)

    def _end(self, key: Key, d: _Direction, ts: int | None, pkt: int,
             out: StreamOutput) -> None:
        """A direction leaves the stage (end of input, or evicted)."""
        self._buffered -= d.stream.buffered
        gaps = d.stream.gaps
        if not d.done:
            self._analyze(key, d, d.stream.flush(), pkt, out)
        out.gap_bytes += d.stream.gaps - gaps
        if d.ssh is not None and not d.done:
            for rec in d.ssh.finish():
                self._ssh_record(key, rec, d.stream.last_ts, pkt, out)
        if d.http is not None:
            back = self._dirs.get((key[2], key[3], key[0], key[1]))
            self._close_http(key, d, back, ts, pkt, out)

    def _close_http(self, key: Key, d: _Direction, back: _Direction | None, ts: int | None,
                    pkt: int, out: StreamOutput) -> None:
        """Both directions of an HTTP connection end: deliver what they buffered, then
        close the connection (a response delimited by the close completes)."""
        conn = d.http
        if conn is None:  # pragma: no cover - called for HTTP directions only
            return
        for k, x in ((key, d), ((key[2], key[3], key[0], key[1]), back)):
            if x is not None and self._dirs.get(k) is x:
                del self._dirs[k]
                self._buffered -= x.stream.buffered
                if not x.done:
                    self._analyze(k, x, x.stream.flush(), pkt, out)
        end = ts if ts is not None else max(d.stream.last_ts,
                                            back.stream.last_ts if back else 0)
        client = key if d.from_client else (key[2], key[3], key[0], key[1])
        self._http_records(client, conn, conn.close(end), pkt, out)

    def _analyze(self, key: Key, d: _Direction, chunks: list[Chunk], pkt: int,
                 out: StreamOutput) -> None:
        if d.kind is None:  # other ports: the other side's kind, or the first bytes'
            chunks = self._kind_of(key, d, chunks)
        if not chunks or d.done:
            return
        if d.kind == "DNS":
            self._dns(key, d, chunks, pkt, out)
        elif d.kind == "HTTP":
            self._http(key, d, chunks, pkt, out)
        elif d.kind == "SSH":
            self._ssh(key, d, chunks, pkt, out)
        else:
            self._tls(key, d, chunks, pkt, out)

    def _kind_of(self, key: Key, d: _Direction, chunks: list[Chunk]) -> list[Chunk]:
        """Decide the kind of a direction on another port: the other side's, or by the
        stream's first bytes, however they were cut into segments (chunks wait in
        `held` until there are enough). The chunks to analyze (none while waiting)."""
        d.held += chunks
        back = self._dirs.get((key[2], key[3], key[0], key[1]))
        if back is not None and back.kind not in (None, _OTHER):
            d.kind, d.from_client = back.kind, not back.from_client
        else:
            first, final = b"", False
            for i, c in enumerate(d.held):  # the contiguous bytes from the first one
                if (i and c.skip) or isinstance(c.data, Hidden):
                    final = True
                    break
                first += c.data[: 4 - len(first)]
                if len(first) >= 4:
                    break
            kind, client = _sniff(first, final)
            if kind is None:
                return []
            d.kind = kind
            if client is not None:
                d.from_client = client
        chunks, d.held = d.held, []
        if d.kind == _OTHER:
            d.done = True
            return []
        self._start(key, d)
        return chunks

    def _mark(self, key: Key, d: _Direction, out: StreamOutput) -> None:
        """The direction's analyzer recognised its protocol (once per direction)."""
        if not d.marked and d.kind is not None:
            d.marked = True
            out.apps.append((key, d.kind))

    def _http(self, key: Key, d: _Direction, chunks: list[Chunk], pkt: int,
              out: StreamOutput) -> None:
        conn = d.http
        if conn is None:  # pragma: no cover - set with the kind
            return
        client = key if d.from_client else (key[2], key[3], key[0], key[1])
        for c in chunks:
            recs = conn.gap(d.from_client, c.skip) if c.skip else []
            if isinstance(c.data, Hidden):  # body bytes not shipped: skipped as such
                recs += conn.gap(d.from_client, c.data.n, c.ts)
            else:
                recs += (conn.client if d.from_client else conn.server)(c.data, c.ts)
            self._http_records(client, conn, recs, pkt, out)
            if conn.done:
                break
        if conn.recognised:
            self._mark(key, d, out)
        if conn.done:
            d.done = True
            back = self._dirs.get((key[2], key[3], key[0], key[1]))
            if back is not None:
                back.done = True

    def _http_records(self, client: Key, conn: HttpConnection, recs: list[dict[str, Any]],
                      pkt: int, out: StreamOutput) -> None:
        for rec in recs:
            rec.update(SrcIP=client[0], SrcPort=client[1], DstIP=client[2], DstPort=client[3])
            out.add("HTTP", pkt, rec)
        if conn.done and conn.violation is not None and not getattr(conn, "_counted", False):
            out.errors[f"http/{conn.violation}"] += 1
            conn._counted = True  # type: ignore[attr-defined]

    def _ssh(self, key: Key, d: _Direction, chunks: list[Chunk], pkt: int,
             out: StreamOutput) -> None:
        reader = d.ssh
        if reader is None:  # pragma: no cover - set with the kind
            return
        for c in _shipped(chunks):
            if c.skip:
                recs = reader.finish()  # a hole before the KEXINIT: keep the banner
                out.errors["ssh/gap"] += 1
                d.done = True
            else:
                recs = reader.feed(_data(c))  # never raises: a violation ends it
            if reader.ident is not None:
                self._mark(key, d, out)
            for rec in recs:
                self._ssh_record(key, rec, c.ts, pkt, out)
            if reader.done or d.done:
                d.done = True
                if reader.violation is not None:
                    out.errors[f"ssh/{reader.violation}"] += 1
                return

    def _ssh_record(self, key: Key, rec: dict[str, Any], ts: int, pkt: int,
                    out: StreamOutput) -> None:
        rec.update(Timestamp=ts, Flow=_flow(key))
        out.add("SSH", pkt, rec)

    def _tls(self, key: Key, d: _Direction, chunks: list[Chunk], pkt: int,
             out: StreamOutput) -> None:
        reader = d.tls
        if reader is None:  # pragma: no cover - set with the kind
            return
        for c in _shipped(chunks):
            if c.skip:
                out.errors["tls/gap"] += 1  # a hole before the hello: give up
                d.done = True
                return
            try:
                hellos = reader.feed(_data(c))
            except DecodeError as e:
                out.errors[describe(e.index)] += 1
                d.done = True
                return
            if reader.done:
                d.done = True
                if reader.violation is not None:
                    out.errors[f"tls/{reader.violation}"] += 1
            if hellos:
                self._mark(key, d, out)
            for htype, rec in hellos:
                rec.update(Timestamp=c.ts, SrcIP=key[0], SrcPort=key[1], DstIP=key[2],
                           DstPort=key[3])
                if htype == 1:
                    self._client_hello.setdefault(key, c.ts)
                    if "ja3" in self.fingerprints:
                        rec["Ja3"] = _analyzers().ja3(rec)[1].encode()
                    if "ja4" in self.fingerprints:
                        rec["Ja4"] = _analyzers().ja4(rec).encode()
                    out.add("TLSClientHello", pkt, rec)
                else:
                    start = self._client_hello.pop((key[2], key[3], key[0], key[1]), None)
                    if start is not None and c.ts >= start:
                        out.tls_handshakes.append((c.ts - start) / 1e9)
                    if "ja3" in self.fingerprints:
                        rec["Ja3s"] = _analyzers().ja3s(rec)[1].encode()
                    out.add("TLSServerHello", pkt, rec)
            if d.done:
                return

    def _dns(self, key: Key, d: _Direction, chunks: list[Chunk], pkt: int,
             out: StreamOutput) -> None:
        for c in _shipped(chunks):
            if c.skip:  # a gap: the message it cuts is lost; start over after it
                d.pending.clear()
            d.pending += _data(c)
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
                out.add("DNS", pkt, rec)
                self._mark(key, d, out)
