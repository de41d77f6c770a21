"""Test oracle: the stream stage and TCP reassembly as they were in Python before
`reassembly/_streams.pyx` (issue 13), kept only for the differential tests
(tests/test_streams_compiled.py): the compiled stage must give what this gives."""

from __future__ import annotations

import heapq
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from netcap.analyzers.dns import parse_dns
from netcap.decode.errors import DecodeError, describe
from netcap.reassembly.output import StreamOutput
from netcap.reassembly.streams import (
    _HTTP_STARTS,
    FIN,
    FINGERPRINTS,
    KIND_RECORDS,
    RST,
    STREAM_PORTS,
    SYN,
    Segment,
    SegmentBatch,
)
from oracle_flows import pack_apps

if TYPE_CHECKING:
    from netcap.analyzers.http import HttpConnection
    from netcap.analyzers.ssh import SshReader
    from netcap.analyzers.tls import HelloReader

Key = tuple[bytes, int, bytes, int]
_MOD = 1 << 32


def _after(a: int, b: int) -> int:
    """a - b in sequence space, as a signed 32-bit distance."""
    d = (a - b) % _MOD
    return d - _MOD if d >= 1 << 31 else d


@dataclass(frozen=True, slots=True)
class Hidden:
    """Bytes that were on the wire but not shipped to the stage (HTTP body bytes no
    parser needs, see `streams.segments`): reassembled like data (ordered, trimmed by
    retransmissions), delivered as a count, never as bytes."""

    n: int

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, s: slice) -> Hidden:
        return Hidden(len(range(*s.indices(self.n))))


@dataclass(frozen=True, slots=True)
class Chunk:
    """In-order stream bytes. `skip`: bytes missing right before this chunk (a gap)."""

    data: bytes | Hidden
    skip: int
    ts: int  # packet time of the segment that completed it


class Stream:
    """Waiting pieces are keyed by their absolute offset in the stream (bytes delivered
    or skipped before them), with a heap of those offsets: each segment costs O(log n)
    in the pieces waiting, never a pass over them (many small segments behind a hole
    that does not fill must cost linear work, not quadratic)."""

    def __init__(self, max_buffer: int = 256 * 1024) -> None:
        self.max_buffer = max_buffer
        self.next_seq: int | None = None  # sequence number of the next byte to deliver
        self._base = 0  # absolute offset of next_seq (bytes delivered or skipped)
        self._pending: dict[int, tuple[bytes | Hidden, int]] = {}  # absolute offset ->
        self._starts: list[int] = []  # heap of the keys of _pending
        self._buffered = 0
        self.delivered = 0  # bytes delivered
        self.gaps = 0  # bytes skipped
        self.conflicts = 0  # overlapping bytes that differed
        self.overflows = 0  # times the buffer limit forced a skip
        self.finished = False
        self.last_ts = 0  # packet time of the latest segment

    def syn(self, seq: int) -> None:
        """A SYN with this sequence number: data starts at seq + 1."""
        if self.next_seq is None:
            self.next_seq = (seq + 1) % _MOD

    def segment(self, seq: int, data: bytes | Hidden, ts: int) -> list[Chunk]:
        """Add one segment's payload; the chunks that became deliverable."""
        self.last_ts = max(self.last_ts, ts)
        if not data:
            return []
        if self.next_seq is None:  # picked up mid-way
            self.next_seq = seq
        off = _after(seq, self.next_seq)
        if off == 0 and not self._pending:  # the common case: the next bytes, in order
            self.next_seq = (self.next_seq + len(data)) % _MOD
            self._base += len(data)
            self.delivered += len(data)
            return [Chunk(data, 0, ts)]
        if off < 0:  # starts before what was delivered: keep only the new bytes
            if off + len(data) <= 0:
                return []  # a retransmission of delivered bytes
            data = data[-off:]
            off = 0
        at = self._base + off
        have = self._pending.get(at)
        if have is not None:  # same start: the first copy wins
            old = have[0]
            common = min(len(old), len(data))
            if isinstance(old, bytes) and isinstance(data, bytes) \
                    and old[:common] != data[:common]:
                self.conflicts += 1
            if len(data) <= len(old):
                return self._deliver()
            self._buffered -= len(old)
        else:
            heapq.heappush(self._starts, at)
        self._pending[at] = (data, ts)
        self._buffered += len(data)
        out = self._deliver()
        while self._buffered > self.max_buffer and self._pending:
            self.overflows += 1
            out += self._skip_to_first()
        return out

    def _deliver(self) -> list[Chunk]:
        """Pieces that now start at or before the delivery point, earliest first."""
        out: list[Chunk] = []
        starts = self._starts
        while starts and starts[0] <= self._base:
            at = heapq.heappop(starts)
            data, ts = self._pending.pop(at)
            self._buffered -= len(data)
            behind = self._base - at
            if behind:
                if behind >= len(data):
                    continue  # covered by what was delivered since it arrived
                data = data[behind:]
            out.append(Chunk(data, 0, ts))
            self._advance(len(data))
        return out

    def _advance(self, n: int) -> None:
        if self.next_seq is None:  # pragma: no cover - set before any data is taken
            self.next_seq = 0
        self.next_seq = (self.next_seq + n) % _MOD
        self._base += n
        self.delivered += n

    def _skip_to_first(self) -> list[Chunk]:
        """Give up on the missing bytes before the earliest buffered piece."""
        off = self._starts[0] - self._base
        if off > 0:
            self.gaps += off
            self._advance(off)
            chunks = self._deliver()
            if chunks:
                first = chunks[0]
                chunks[0] = Chunk(first.data, off, first.ts)
            return chunks
        return self._deliver()

    @property
    def buffered(self) -> int:
        """Bytes waiting out of order."""
        return self._buffered

    def _drain(self) -> list[Chunk]:
        """Everything buffered, in order, with the gaps before each piece."""
        out: list[Chunk] = []
        while self._pending:
            out += self._skip_to_first()
        return out

    def shed(self) -> list[Chunk]:
        """Give up waiting (memory is short): `_drain`, and the stream goes on after it
        (counted as an overflow)."""
        self.overflows += 1
        return self._drain()

    def flush(self) -> list[Chunk]:
        """Everything still buffered, in order, with the gaps between (end of input)."""
        out = self._drain()
        self.finished = True
        return out


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


def _shipped(chunks: list[Chunk]) -> list[Chunk]:
    """Chunks for an analyzer that reads bytes (all but HTTP's): bytes not shipped
    (`Hidden`: only HTTP segments are shipped so, but the kind of a stream on another
    port is known only from its first bytes) are a gap to it, never data."""
    return [Chunk(b"", c.skip + len(c.data), c.ts) if isinstance(c.data, Hidden) else c
            for c in chunks]


def _data(c: Chunk) -> bytes:
    return c.data if isinstance(c.data, bytes) else b""


@cache
def _analyzers() -> Any:
    """The stream analyzer modules, imported on first use (an export that meets no TLS,
    SSH or HTTP stream does not pay for them) and then held: an import statement in the
    per-direction path cost ~1 µs a time."""
    from netcap.analyzers import http, ssh, tls

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
            out.apps += pack_apps([(key, d.kind)])

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
