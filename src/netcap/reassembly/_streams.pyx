# cython: language_level=3
"""TCP reassembly and the stream stage, compiled (the rules: `reassembly/tcp.py` and
`reassembly/streams.py`, whose public names come from here).

`Stream`: one direction of a TCP stream, reassembled. Segments go in with their sequence
number, in any order; bytes come out in order, as `Chunk`s:

- Sequence numbers are 32-bit and wrap: offsets are a signed 32-bit distance (serial
  number arithmetic, `_after`), kept relative to the initial sequence number.
- A stream picked up mid-way (no SYN seen) starts at its first segment.
- Retransmissions and overlaps: bytes already delivered are never delivered again; for
  bytes that arrive twice before delivery, the first copy wins (Linux's policy, Zeek's
  default), and overlapping bytes that differ are counted (`conflicts`).
- Out-of-order segments wait in a buffer bounded by `max_buffer` bytes. When it would
  overflow, the stream skips to the earliest buffered segment: the missing bytes are
  reported as a gap (`Chunk.skip`), never invented.
- `flush()` (end of input, or the connection closing) delivers what is buffered, with
  the gaps before each piece.

Waiting pieces are keyed by their absolute offset in the stream, with a heap of those
offsets: a segment costs O(log n) in the pieces waiting, never a pass over them. The
common case (the next bytes, in order, nothing waiting) is C arithmetic only.

`StreamStage`: the connection's directions (a dict keyed by a compact bytes key, with a
least-recently-used list through the directions themselves, bounded by `max_streams`),
each reassembled and handed to the analyzer of its kind. Its loop runs over a
`SegmentBatch`'s columns in C; a segment of a direction whose analyzer is done costs a
key and a dict lookup. The compiled analyzers (TLS, SSH, HTTP) are cimported and called
as C; in-order HTTP body bytes their analyzer only counts go to it as a count
(`_counted`), not a copy. See `streams.py` for the stage's rules (kinds, framing,
limits, containment).
"""

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError
from cpython.object cimport Py_LT, PyObject, PyObject_RichCompareBool
from libc.string cimport memcmp, memcpy, memset
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t

from ..analyzers._http cimport HttpConnection, http_connection
from ..analyzers._ssh cimport SshReader
from ..analyzers._tls cimport HelloReader, hello_reader
from netcap._buf cimport prefetch_head
from ..records._encode cimport _ip_text, record_bytes

import heapq
from collections import Counter

import numpy as np
from ..decode.errors import DecodeError, describe
from ..flows.extract import APP_ENTRY_BYTES, APP_PROTOCOLS
from ..records.table import RecordTable
from ..records.types import RECORDS

SYN, FIN, RST = 1, 2, 4
cdef int _SYN = 1, _FIN = 2, _RST = 4

# Kinds of a direction's analyzer (`KINDS` gives their names).
cdef enum:
    K_NONE = 0  # not known before its first bytes (other ports)
    K_DNS = 1
    K_TLS = 2
    K_SSH = 3
    K_HTTP = 4
    K_OTHER = 5  # on another port and neither HTTP nor TLS: nothing to analyze

KINDS = (None, "DNS", "TLS", "SSH", "HTTP", "other")
# `StreamOutput.apps` entries: flows.extract's APP_ENTRY_BYTES (a C constant here, checked
# against it below), the protocol as its index in APP_PROTOCOLS (-1: a kind with none).
cdef enum:
    APP_ENTRY = 38
if APP_ENTRY != APP_ENTRY_BYTES:  # invariant: one layout
    raise ImportError("StreamOutput.apps entries differ from flows.extract's")
cdef int[6] _APP_OF_KIND
for _k, _name in enumerate(KINDS):
    _APP_OF_KIND[_k] = APP_PROTOCOLS.index(_name) if _name in APP_PROTOCOLS else -1
_ERROR_PROTOCOL = ("tcp", "dns", "tls", "ssh", "http", "tcp")

# TCP port -> kind (the table is `streams.STREAM_PORTS`; `set_ports` fills this copy).
cdef uint8_t _port_kind[65536]
cdef bint _ports_set = False


cdef int _set_ports() except -1:
    """The stream ports (port -> kind), from `streams.STREAM_PORTS` (the one table)."""
    global _ports_set
    global _HTTP_STARTS
    from .streams import _HTTP_STARTS, STREAM_PORTS
    cdef int p
    for p, name in STREAM_PORTS.items():
        _port_kind[p] = KINDS.index(name)
    _ports_set = True
    return 0


# -------------------------------------------------------------------- segment payloads

def gather_payloads(data_, off_, size_) -> bytes:
    """data[off[i] : off[i] + size[i]] for every i, back to back, in one copy (the
    payloads of a batch's stream segments, `streams.segments`). Every range is checked
    against data before anything is copied."""
    cdef const uint8_t[::1] data = np.ascontiguousarray(data_, np.uint8)
    cdef const int64_t[::1] off = np.ascontiguousarray(off_, np.int64)
    cdef const int64_t[::1] size = np.ascontiguousarray(size_, np.int64)
    cdef Py_ssize_t n = off.shape[0], i, total = 0, pos = 0
    if size.shape[0] != n:
        raise ValueError("offsets and sizes of different lengths")
    for i in range(n):
        if size[i] > 0:
            if off[i] < 0 or off[i] > data.shape[0] - size[i]:
                raise ValueError("payload out of range")
            total += size[i]
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* dst = PyBytes_AS_STRING(out)
    for i in range(n):
        if size[i] > 0:
            memcpy(dst + pos, &data[off[i]], size[i])
            pos += size[i]
    return out


# ---------------------------------------------------------------------------- Stream


@cython.freelist(64)
cdef class Hidden:
    """Bytes that were on the wire but not shipped to the stage (HTTP body bytes no
    parser needs, see `streams.segments`): reassembled like data (ordered, trimmed by
    retransmissions), delivered as a count, never as bytes."""

    def __init__(self, Py_ssize_t n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, s):
        return Hidden(len(range(*s.indices(self.n))))

    def __eq__(self, other):
        return isinstance(other, Hidden) and (<Hidden>other).n == self.n

    def __hash__(self):
        return hash(("Hidden", self.n))

    def __repr__(self):
        return f"Hidden(n={self.n})"


cdef inline Hidden _hidden(Py_ssize_t n):
    """`Hidden(n)` without a Python call."""
    cdef Hidden h = Hidden.__new__(Hidden)
    h.n = n
    return h


# no_gc: a Chunk (one per in-order piece of every stream) holds bytes and ints only, so it
# can never be part of a reference cycle; outside the cycle collector's lists it is not
# linked in when made nor unlinked when freed (unlinking touched two other objects' memory:
# ~6% of the stream process's time went to PyObject_GC_UnTrack).
@cython.no_gc
@cython.freelist(64)
cdef class Chunk:
    """In-order stream bytes. `skip`: bytes missing right before this chunk (a gap);
    `ts`: packet time of the segment that completed it."""

    def __init__(self, data, int64_t skip, int64_t ts):
        self.data = data
        self.skip = skip
        self.ts = ts

    def __eq__(self, other):
        if not isinstance(other, Chunk):
            return NotImplemented
        cdef Chunk o = <Chunk>other
        return self.skip == o.skip and self.ts == o.ts and self.data == o.data

    def __hash__(self):
        return hash((self.data, self.skip, self.ts))

    def __repr__(self):
        return f"Chunk(data={self.data!r}, skip={self.skip}, ts={self.ts})"


cdef Stream _stream(Py_ssize_t max_buffer):
    """`Stream(max_buffer)` without a Python call: one per direction."""
    cdef Stream st = Stream.__new__(Stream)
    st._setup(max_buffer)
    return st


cdef inline Chunk _chunk(object data, int64_t skip, int64_t ts):
    cdef Chunk c = Chunk.__new__(Chunk)
    c.data = data
    c.skip = skip
    c.ts = ts
    return c


cdef inline Py_ssize_t _len(object data) except -1:
    if type(data) is bytes:
        return PyBytes_GET_SIZE(data)
    if type(data) is Hidden:
        return (<Hidden>data).n
    return len(data)


cdef inline object _tail(object data, Py_ssize_t k):
    """data without its first k bytes."""
    if type(data) is Hidden:
        return _hidden((<Hidden>data).n - k)
    return data[k:]


# no_gc: as Chunk, a Stream holds bytes, ints and its own containers of those only.
@cython.no_gc
@cython.freelist(256)
cdef class Stream:

    def __init__(self, Py_ssize_t max_buffer=256 * 1024):
        self._setup(max_buffer)

    cdef int _setup(self, Py_ssize_t max_buffer) except -1:
        self.max_buffer = max_buffer
        self.has_seq = False
        self.next = 0
        self.base = 0
        # Made by the first piece out of order: most streams never have one, and two
        # containers less per direction is two allocations (and GC links) less per
        # direction of every connection.
        self.pending = None  # absolute offset -> (data, ts)
        self.starts = None  # heap of the keys of pending
        self.buffered = 0
        self.delivered = 0
        self.gaps = 0
        self.conflicts = 0
        self.overflows = 0
        self.finished = False
        self.last_ts = 0
        return 0

    @property
    def next_seq(self):
        """Sequence number of the next byte to deliver (None before the first)."""
        return self.next if self.has_seq else None

    cpdef syn(self, int64_t seq):
        """A SYN with this sequence number: data starts at seq + 1."""
        if not self.has_seq:
            self.has_seq = True
            self.next = <uint32_t>seq + 1

    def segment(self, int64_t seq, data, int64_t ts) -> list:
        """Add one segment's payload; the chunks that became deliverable."""
        cdef list out = []
        self.add(<uint32_t>seq, data, ts, out)
        return out

    cdef int add(self, uint32_t seq, object data, int64_t ts, list out) except -1:
        """`segment`, appending to out."""
        if ts > self.last_ts:
            self.last_ts = ts
        cdef Py_ssize_t n = _len(data)
        if n == 0:
            return 0
        if not self.has_seq:  # picked up mid-way
            self.has_seq = True
            self.next = seq
        cdef int64_t off = <int32_t>(seq - self.next)  # _after(seq, next)
        if off == 0 and not self.pending:  # the common case: the next bytes, in order
            self.next += <uint32_t>n
            self.base += n
            self.delivered += n
            out.append(_chunk(data, 0, ts))
            return 0
        if off < 0:  # starts before what was delivered: keep only the new bytes
            if off + n <= 0:
                return 0  # a retransmission of delivered bytes
            data = _tail(data, -off)
            n += off
            off = 0
        at = self.base + off
        if self.pending is None:
            self.pending = {}
            self.starts = []
        have = self.pending.get(at)
        cdef Py_ssize_t common, had
        if have is not None:  # same start: the first copy wins
            old = (<tuple>have)[0]
            had = _len(old)
            common = min(had, n)
            if type(old) is bytes and type(data) is bytes \
                    and old[:common] != data[:common]:
                self.conflicts += 1
            if n <= had:
                self.deliver(out)
                return 0
            self.buffered -= had
        else:
            heapq.heappush(self.starts, at)
        self.pending[at] = (data, ts)
        self.buffered += n
        self.deliver(out)
        while self.buffered > self.max_buffer and self.pending:
            self.overflows += 1
            self.skip_to_first(out)
        return 0

    cdef int deliver(self, list out) except -1:
        """Pieces that now start at or before the delivery point, earliest first."""
        cdef list starts = self.starts
        cdef int64_t at, behind
        cdef Py_ssize_t n
        while starts and <int64_t>starts[0] <= self.base:
            at = heapq.heappop(starts)
            data, ts = self.pending.pop(at)
            n = _len(data)
            self.buffered -= n
            behind = self.base - at
            if behind:
                if behind >= n:
                    continue  # covered by what was delivered since it arrived
                data = _tail(data, behind)
                n -= behind
            out.append(_chunk(data, 0, ts))
            self.advance(n)
        return 0

    cdef inline void advance(self, int64_t n) noexcept:
        self.next += <uint32_t>n
        self.base += n
        self.delivered += n

    cdef int skip_to_first(self, list out) except -1:
        """Give up on the missing bytes before the earliest buffered piece."""
        cdef int64_t off = <int64_t>self.starts[0] - self.base
        cdef Py_ssize_t first = len(out)
        cdef Chunk c
        if off > 0:
            self.gaps += off
            self.advance(off)
            self.deliver(out)
            if len(out) > first:
                c = out[first]
                out[first] = _chunk(c.data, off, c.ts)
            return 0
        return self.deliver(out)

    cdef int drain(self, list out) except -1:
        """Everything buffered, in order, with the gaps before each piece."""
        while self.pending:
            self.skip_to_first(out)
        return 0

    def shed(self) -> list:
        """Give up waiting (memory is short): everything buffered is delivered with
        its gaps, and the stream goes on after it (counted as an overflow)."""
        cdef list out = []
        self.overflows += 1
        self.drain(out)
        return out

    def flush(self) -> list:
        """Everything still buffered, in order, with the gaps between (end of input)."""
        cdef list out = []
        self.drain(out)
        self.finished = True
        return out


# ----------------------------------------------------------------------- StreamOutput

cdef class StreamOutput:
    """What one update produced: records per type (rows with their packet number) and
    counts for the metrics; and, for the types in `encode` (written to files), each
    record encoded (`record_bytes`) as it was made, in the order of its rows. Without
    `keep` (the records are written, not counted), the rows of those types hold only
    the fields that order them (`record_order`)."""

    cdef public dict records  # type -> [(packet number, record dict)]
    cdef readonly frozenset encode  # types whose records are encoded as made (or None)
    cdef public dict encoded  # type -> [record message], aligned with records[type]
    cdef readonly bint keep
    cdef public object errors  # Counter: "protocol/reason" -> count
    cdef public Py_ssize_t gap_bytes, overflows
    cdef public list tls_handshakes  # ClientHello -> ServerHello, s
    # Connections whose protocol an analyzer recognised (a request or response head, a
    # hello, an SSH banner, a DNS message), by either direction's key: the connection
    # table's ApplicationProto (flows/table.py). Packed, flows.extract.APP_ENTRY_BYTES
    # each.
    cdef public bytearray apps

    def __init__(self, frozenset encode=None, bint keep=True):
        self.records = {}
        self.encode = encode
        self.encoded = {}
        self.keep = keep
        self.errors = Counter()
        self.gap_bytes = self.overflows = 0
        self.tls_handshakes = []
        self.apps = bytearray()

    def add(self, str name, int64_t pkt, dict rec) -> None:
        _emit(self, name, pkt, rec)

    def canonical(self) -> StreamOutput:
        """Records in one order whatever the partitioning: by packet (end of input
        last), then time, then connection; one connection's records keep the order they
        were made in (a stable sort)."""
        return self._in_order()

    cdef StreamOutput _in_order(self):
        for name, rows in self.records.items():
            _sort_rows(<list>rows, self.encoded.get(name))
        return self

    def tables(self, only=None) -> dict:
        """The records as tables (with `only`, just those columns of the types named)."""
        out = {}
        for name, rows in self.records.items():
            out[name] = RecordTable.from_rows(RECORDS[name], [r for _, r in rows],
                                              [p for p, _ in rows],
                                              None if only is None else only.get(name))
        return out


cdef int _emit(StreamOutput out, str name, int64_t pkt, dict rec) except -1:
    """A record into `out`. Text stays as the analyzers give it (HTTP and SSH: str,
    bytes outside ASCII decoded as Latin-1): the record tables store it as UTF-8
    (`from_rows`), with no copy made here."""
    rows = out.records.get(name)
    if rows is None:
        rows = out.records[name] = []
    if out.encode is not None and name in out.encode:
        # Now, not when the update is over: by then its later payloads have pushed this
        # record out of the cache, and encoding waited on memory at every value.
        enc = out.encoded.get(name)
        if enc is None:
            enc = out.encoded[name] = []
        (<list>enc).append(record_bytes(name, rec))
        if not out.keep:  # and freed now, while it is in the cache too
            rec = _order_fields(rec)
    (<list>rows).append((pkt, rec))
    return 0


cdef tuple _ORDER_FIELDS = ("Timestamp", "Flow", "SrcIP", "SrcPort", "DstIP", "DstPort")


cdef dict _order_fields(dict rec):
    """The fields of a record that `record_order` reads (those it has)."""
    cdef dict out = {}
    cdef PyObject* v
    for k in _ORDER_FIELDS:
        v = PyDict_GetItemWithError(rec, k)
        if v != NULL:
            out[k] = <object>v
    return out


cpdef tuple record_order(tuple row):
    """The canonical sort key of a (packet, record) row (see `StreamOutput.canonical`)."""
    cdef int64_t pkt = row[0]
    cdef dict rec = row[1]
    conn = rec.get("Flow") or (rec.get("SrcIP"), rec.get("SrcPort"), rec.get("DstIP"),
                               rec.get("DstPort"))
    return (pkt if pkt >= 0 else 1 << 62, rec.get("Timestamp", 0), conn)


cdef inline int64_t _pkt_order(tuple row) except? -1:
    cdef int64_t pkt = row[0]
    return pkt if pkt >= 0 else 1 << 62


cdef int _sort_rows(list rows, list encoded) except -1:
    """`rows.sort(key=record_order)`, skipped when they are in order already (the
    stage makes them in packet order; ties are what may need it). The packet numbers
    decide most pairs: a row's whole key is made only where they tie. `encoded` (or
    None): the rows' messages, put in the same order."""
    cdef Py_ssize_t i, n = len(rows)
    cdef int64_t a, b = _pkt_order(<tuple>rows[0]) if n else 0
    for i in range(1, n):
        a, b = b, _pkt_order(<tuple>rows[i])
        if b < a or b == a and PyObject_RichCompareBool(
                record_order(<tuple>rows[i]), record_order(<tuple>rows[i - 1]), Py_LT):
            break
    else:
        return 0
    cdef list keys = [record_order(<tuple>r) for r in rows]
    order = sorted(range(n), key=keys.__getitem__)  # stable, as list.sort
    rows[:] = [rows[<Py_ssize_t>j] for j in order]
    if encoded is not None:
        encoded[:] = [encoded[<Py_ssize_t>j] for j in order]
    return 0


cdef inline int _set_key(dict rec, tuple key) except -1:
    """A record's addresses and ports from a direction's key (src, sport, dst, dport):
    item by item (`rec.update(SrcIP=...)` made a keyword dict first: ~3,900 instructions
    a TLS hello, callgrind)."""
    rec["SrcIP"] = key[0]
    rec["SrcPort"] = key[1]
    rec["DstIP"] = key[2]
    rec["DstPort"] = key[3]
    return 0


# ------------------------------------------------------------------------ StreamStage

_an = None


cdef object _analyzers():
    """What the stream stage takes from the analyzers' Python modules, imported on first
    use (an export that meets no stream does not pay for them) and then held; the
    compiled readers are cimported."""
    global _an
    if _an is None:
        from ..analyzers import dns, tls
        _an = (tls.ja3, tls.ja3s, tls.ja4, dns.parse_dns)
    return _an


@cython.freelist(128)
cdef class _Http:
    """An HTTP connection shared by its two directions."""
    cdef HttpConnection conn  # the compiled analyzer (or a subclass: `http_class`)
    cdef bint counted  # its violation was counted (once per connection)

    def __cinit__(self, conn):
        self.conn = conn


@cython.freelist(256)
cdef class _Direction:
    """One direction of a connection in the stage."""
    cdef int kind  # K_* (_streams.pyx)
    cdef Stream stream
    cdef bytes ckey, back_ckey  # the compact keys of this direction and the other
    cdef tuple key  # (src address, src port, dst address, dst port)
    cdef object pending  # DNS framing: bytes not yet used (a bytearray, made on use)
    cdef HelloReader tls  # typed: feed and the flags without a Python call
    cdef SshReader ssh
    cdef _Http http  # shared by both directions of the connection
    cdef bint from_client  # which side this is (client: talks to the well-known port)
    cdef bint closed  # FIN or RST seen
    cdef bint done  # the analyzer has what it wants: segments are ignored
    cdef list held  # other ports: chunks before the kind is known from the first bytes
    cdef bint marked  # the analyzer recognised its protocol (see StreamOutput.apps)
    cdef _Direction prev, next_  # the least recently used list (prev: older)
    cdef bint linked


cdef enum:
    COMPACT_MAX = 1 + 32 + 32 + 4  # a compact key's longest
    # How many segments ahead `_run` prefetches a payload's first two cache lines: each
    # payload is copied out of the input's mapping when its turn comes, and its first
    # lines were not in the cache.
    PREFETCH = 8


cdef Py_ssize_t _compact_into(uint8_t* buf, const uint8_t* src, Py_ssize_t sl,
                              const uint8_t* dst, Py_ssize_t dl, int sport,
                              int dport) except -1:
    """The dict key of a direction, written to buf (COMPACT_MAX bytes): the source
    length, the addresses and the ports. Returns its length."""
    cdef Py_ssize_t i, n = 0
    if sl > 32 or dl > 32 or sl < 0 or dl < 0:  # not an IP address: no compact key
        raise ValueError("address too long")
    buf[0] = <uint8_t>sl
    n = 1
    for i in range(sl):
        buf[n + i] = src[i]
    n += sl
    for i in range(dl):
        buf[n + i] = dst[i]
    n += dl
    buf[n] = <uint8_t>(sport >> 8)
    buf[n + 1] = <uint8_t>sport
    buf[n + 2] = <uint8_t>(dport >> 8)
    buf[n + 3] = <uint8_t>dport
    return n + 4


cdef bytes _compact(const uint8_t* src, Py_ssize_t sl, const uint8_t* dst, Py_ssize_t dl,
                    int sport, int dport):
    cdef uint8_t buf[COMPACT_MAX]
    cdef Py_ssize_t n = _compact_into(buf, src, sl, dst, dl, sport, dport)
    return PyBytes_FromStringAndSize(<char*>buf, n)


cdef inline bint _is_key(_Direction d, const uint8_t* key, Py_ssize_t n) noexcept:
    """d is still in the stage (a removed direction is unlinked) and has this key."""
    return d is not None and d.linked and PyBytes_GET_SIZE(d.ckey) == n \
        and memcmp(PyBytes_AS_STRING(d.ckey), key, n) == 0


cdef int _add_app(bytearray apps, tuple key, int app) except -1:
    """One entry of `StreamOutput.apps` (flows.extract.APP_ENTRY_BYTES): no Python object
    per recognised connection."""
    cdef bytes src = key[0], dst = key[2]
    cdef int sport = key[1], dport = key[3]
    cdef Py_ssize_t ls = len(src), ld = len(dst), n = PyByteArray_GET_SIZE(apps)
    if app < 0 or ls > 16 or ld > 16 or ls != ld:  # no protocol, or not IP addresses
        return 0
    PyByteArray_Resize(apps, n + APP_ENTRY)
    cdef uint8_t* e = <uint8_t*>PyByteArray_AS_STRING(apps) + n
    memset(e, 0, APP_ENTRY)
    e[0] = <uint8_t>app
    e[1] = <uint8_t>ls
    memcpy(e + 2, PyBytes_AS_STRING(src), ls)
    e[18], e[19] = <uint8_t>(sport >> 8), <uint8_t>sport
    memcpy(e + 20, PyBytes_AS_STRING(dst), ld)
    e[36], e[37] = <uint8_t>(dport >> 8), <uint8_t>dport
    return 0


cdef bytes _key_of(bytes src, int sport, bytes dst, int dport):
    return _compact(<const uint8_t*><char*>src, len(src), <const uint8_t*><char*>dst,
                    len(dst), sport, dport)


cdef tuple _rev(tuple key):
    return (key[2], key[3], key[0], key[1])


cpdef str _flow(tuple key):
    return f"{_address(key[0])}:{key[1]}->{_address(key[2])}:{key[3]}"


cdef str _address(bytes a):
    """Python's text of a 4- or 16-byte address (`str(ipaddress.ip_address(a))`), made
    by the encoder's C formatter: it agrees with Python but for IPv4-mapped IPv6
    (::ffff:a.b.c.d), which Go prints as a.b.c.d and Python 3.11 as hex groups; those
    (and any other length, which ipaddress refuses) go to ipaddress."""
    cdef Py_ssize_t n = len(a)
    cdef const uint8_t* p = <const uint8_t*><char*>a
    cdef char buf[48]  # the longest IPv6 text is 39 bytes
    if n != 4 and (n != 16 or _mapped(p)):
        import ipaddress  # here: rare, and ~1 ms of every run's start-up at the top
        return str(ipaddress.ip_address(a))
    return (<bytes>buf[:_ip_text(p, n, <uint8_t*>buf)]).decode("ascii")


cdef inline bint _mapped(const uint8_t* p) noexcept:
    cdef int k
    for k in range(10):
        if p[k]:
            return False
    return p[10] == 0xFF and p[11] == 0xFF


# First bytes of an HTTP message (a request method and its space, or a status line):
# HTTP on other ports is found by them, as TLS by its handshake record.
_HTTP_STARTS = ()  # streams._HTTP_STARTS (`_set_ports`)


def _sniff(bytes first, bint final):
    """The kind of a direction on other ports by its first bytes (and whether they are
    a client's: a request; None: not known). K_NONE while the bytes so far (fewer than
    4) could still start either and more may come (`final`: none will)."""
    if first[:4] in _HTTP_STARTS:
        return K_HTTP, not first.startswith(b"HTTP")
    cdef Py_ssize_t n = len(first)
    if n >= 3 and first[0] == 0x16 and first[1] == 3 and first[2] <= 4:
        return K_TLS, None
    if not final and n < 4 and (
            any(w.startswith(first) for w in _HTTP_STARTS) or b"\x16\x03".startswith(
                first[:2]) and (n < 3 or first[2] <= 4)):
        return K_NONE, None
    return K_OTHER, None


cdef inline bint _counted(_Direction d, int64_t seq, int64_t flags, Py_ssize_t k):
    """Whether a segment's k payload bytes are HTTP body bytes its analyzer only counts,
    delivered as they come (the next bytes of the stream, nothing held out of order):
    then they go to it as their count (`Hidden`, as the body bytes a worker does not
    ship), not as a copy. The bodies the workers ship are those that hold a CRLF; the
    stage knows their framing."""
    cdef Stream st = d.stream
    return (d.http is not None and not flags & _SYN and st.has_seq
            and <uint32_t>seq == st.next and not st.pending
            and d.http.conn.counts(d.from_client, k))


cdef list _shipped(list chunks):
    """Chunks for an analyzer that reads bytes (all but HTTP's): bytes not shipped
    (`Hidden`) are a gap to it, never data."""
    cdef Chunk c
    cdef list out = chunks
    cdef Py_ssize_t i
    for i in range(len(chunks)):
        c = chunks[i]
        if type(c.data) is Hidden:
            if out is chunks:
                out = list(chunks)
            out[i] = _chunk(b"", c.skip + (<Hidden>c.data).n, c.ts)
    return out


cdef class StreamStage:
    """`detail`: records are written, so complete (HTTP header maps, cookies, query
    parameters); without, only what the metrics read. `fingerprints`: which of "ja3"
    (JA3 and JA3S) and "ja4" to compute (for records, or opt-in labels). `encode`: the
    record types written to files, whose records each output carries encoded too;
    `keep`: and whole (their tables are counted), see `StreamOutput`."""
    cdef public Py_ssize_t max_streams
    cdef public Py_ssize_t max_buffer
    cdef public int64_t max_total
    cdef readonly int64_t _buffered  # out-of-order bytes held by all directions
    cdef readonly bint detail
    cdef readonly frozenset fingerprints
    cdef readonly frozenset encode  # record types encoded as made (StreamOutput), or None
    cdef readonly bint keep  # outputs keep those records whole (StreamOutput)
    cdef bint ja3, ja4
    cdef dict dirs  # compact key -> _Direction
    cdef _Direction oldest, newest  # the least recently used list's ends
    cdef dict client_hello  # compact key -> time of its ClientHello
    cdef int64_t gap_bytes, overflows  # of the current update
    # The HTTP analyzer: the compiled class, made without a Python call; another (a
    # subclass of it) is called (tests inject a failing one)
    cdef public object http_class

    def __init__(self, Py_ssize_t max_streams=10_000, Py_ssize_t max_buffer=256 * 1024,
                 bint detail=True, fingerprints=frozenset({"ja3", "ja4"}),
                 int64_t max_total=64 << 20, encode=None, bint keep=True):
        if not _ports_set:
            _set_ports()
        self.max_streams = max_streams
        self.max_buffer = max_buffer  # out-of-order bytes per direction
        self.max_total = max_total  # and in all (past it the fullest direction gives up)
        self._buffered = 0
        self.detail = detail
        self.fingerprints = frozenset(fingerprints)
        self.ja3 = "ja3" in self.fingerprints
        self.ja4 = "ja4" in self.fingerprints
        self.encode = frozenset(encode) if encode else None
        self.keep = keep
        self.dirs = {}
        self.oldest = self.newest = None
        self.client_hello = {}  # compact key -> time
        self.gap_bytes = self.overflows = 0
        self.http_class = HttpConnection

    def __len__(self):
        return len(self.dirs)

    # ------------------------------------------------------------ the LRU list

    cdef inline void _unlink(self, _Direction d) noexcept:
        if not d.linked:
            return
        if d.prev is None:
            self.oldest = d.next_
        else:
            d.prev.next_ = d.next_
        if d.next_ is None:
            self.newest = d.prev
        else:
            d.next_.prev = d.prev
        d.prev = d.next_ = None
        d.linked = False

    cdef inline void _append(self, _Direction d) noexcept:
        d.prev = self.newest
        d.next_ = None
        if self.newest is None:
            self.oldest = d
        else:
            self.newest.next_ = d
        self.newest = d
        d.linked = True

    cdef int _insert(self, _Direction d) except -1:
        self.dirs[d.ckey] = d
        self._append(d)
        return 0

    cdef int _remove(self, _Direction d) except -1:
        del self.dirs[d.ckey]
        self._unlink(d)
        return 0

    cdef inline _Direction _back(self, _Direction d):
        return <_Direction>self.dirs.get(d.back_ckey)

    # ------------------------------------------------------------ the loop

    def update(self, segs) -> StreamOutput:
        """A batch's segments (a `SegmentBatch`, or `Segment` tuples in tests)."""
        cdef StreamOutput out = StreamOutput(self.encode, self.keep)
        if segs is None:
            return out._in_order()
        if isinstance(segs, list):
            if not segs:
                return out._in_order()
            from .streams import SegmentBatch
            segs = SegmentBatch.from_rows(segs)
        self.gap_bytes = self.overflows = 0
        self._run(segs, out)
        self._count(out)
        return out._in_order()

    cdef int _run(self, segs, StreamOutput out) except -1:
        col = np.ascontiguousarray
        cdef const uint8_t[::1] src = col(segs.src.data, np.uint8)
        cdef const int64_t[::1] slen = col(segs.src.lens, np.int64)
        cdef const uint8_t[::1] dst = col(segs.dst.data, np.uint8)
        cdef const int64_t[::1] dlen = col(segs.dst.lens, np.int64)
        cdef const int64_t[::1] sport = col(segs.sport, np.int64), dport = col(segs.dport, np.int64)
        cdef const int64_t[::1] seq = col(segs.seq, np.int64), flags = col(segs.flags, np.int64)
        cdef const int64_t[::1] size = col(segs.size, np.int64), hidden = col(segs.hidden, np.int64)
        cdef const int64_t[::1] ts = col(segs.ts, np.int64), pkt = col(segs.pkt, np.int64)
        if segs.payload is None:  # invariant (not input)
            raise ValueError("segment payloads not read from the input file")
        cdef const uint8_t[::1] blob = segs.payload  # bytes, or a batch's uint8 buffer
        cdef const int64_t[::1] at = col(segs.at if segs.at is not None else segs.starts(),
                                         np.int64)
        cdef Py_ssize_t n = sport.shape[0], i, s = 0, t = 0, sl, dl, k, a, kl
        cdef bytes ckey
        cdef uint8_t kbuf[COMPACT_MAX]
        # The directions of the last two segments: about half the segments of the bench
        # capture belong to one of them (a request and its answer, a run of data), and
        # need no key object and no dict lookup.
        cdef _Direction d, last = None, before = None
        if slen.shape[0] != n or dlen.shape[0] != n or dport.shape[0] != n \
                or seq.shape[0] != n or flags.shape[0] != n or size.shape[0] != n \
                or hidden.shape[0] != n or ts.shape[0] != n or pkt.shape[0] != n \
                or at.shape[0] != n:
            raise ValueError("segment columns of different lengths")  # invariant
        cdef const uint8_t* blob_p = &blob[0] if blob.shape[0] else NULL
        for i in range(n):
            if i + PREFETCH < n and size[i + PREFETCH] > 0:  # a payload ahead
                prefetch_head(blob_p, blob.shape[0], at[i + PREFETCH])
            sl, dl, k, a = slen[i], dlen[i], size[i], at[i]
            if s + sl > src.shape[0] or t + dl > dst.shape[0] or k < 0 \
                    or (k > 0 and (a < 0 or a > blob.shape[0] - k)):
                raise ValueError("segment columns out of range")  # invariant
            kl = _compact_into(kbuf, &src[s] if sl else NULL, sl, &dst[t] if dl else NULL,
                               dl, <int>sport[i], <int>dport[i])
            if _is_key(last, kbuf, kl):
                d = last
            elif _is_key(before, kbuf, kl):
                d = before
            else:
                ckey = PyBytes_FromStringAndSize(<char*>kbuf, kl)
                d = <_Direction>self.dirs.get(ckey)
            if d is None:
                # the addresses from the key's buffer (slicing the key object went
                # through a slice object: ~550 instructions each)
                d = self._new(ckey, PyBytes_FromStringAndSize(<char*>kbuf + 1, sl),
                              <int>sport[i],
                              PyBytes_FromStringAndSize(<char*>kbuf + 1 + sl, dl),
                              <int>dport[i])
                self._insert(d)
                while len(self.dirs) > self.max_streams:  # least recently used go
                    self._evict(ts[i], out)
            elif d is not self.newest:
                self._unlink(d)
                self._append(d)
            if d is not last:
                before, last = last, d
            s += sl
            t += dl
            if not d.done:
                try:
                    self._segment(d, seq[i], flags[i],
                                  _hidden(hidden[i]) if hidden[i] > 0
                                  else b"" if k == 0
                                  else _hidden(k) if _counted(d, seq[i], flags[i], k)
                                  else PyBytes_FromStringAndSize(<const char*>&blob[a], k),
                                  ts[i], pkt[i], out)
                except Exception:  # a bug met by this stream's bytes: see `_failed`
                    self._failed(d, out)
        return 0

    cdef int _evict(self, int64_t ts, StreamOutput out) except -1:
        cdef _Direction g = self.oldest
        self._remove(g)
        self.client_hello.pop(g.ckey, None)
        try:
            self._end(g, ts, True, -1, out)
        except Exception:  # a bug: counted, that stream dropped (`_failed`)
            self._failed(g, out)
        return 0

    cdef int _count(self, StreamOutput out) except -1:
        out.gap_bytes += self.gap_bytes
        out.overflows += self.overflows
        self.gap_bytes = self.overflows = 0
        return 0

    cdef int _segment(self, _Direction d, int64_t seq, int64_t flags, object payload,
                      int64_t ts, int64_t pkt, StreamOutput out) except -1:
        cdef Stream st = d.stream
        if flags & _SYN:
            st.syn(seq)
        cdef int64_t gaps = st.gaps, overflows = st.overflows, held = st.buffered
        cdef list chunks = []
        st.add(<uint32_t>seq, payload, ts, chunks)
        self.gap_bytes += st.gaps - gaps
        self.overflows += st.overflows - overflows
        self._buffered += st.buffered - held
        if chunks or d.kind == K_NONE:
            self._analyze(d, chunks, pkt, out)
        if self._buffered > self.max_total:
            self._shed(pkt, out)
        cdef _Direction back
        if flags & (_FIN | _RST) and d.http is not None:
            d.closed = True
            back = self._back(d)
            if flags & _RST or back is None or back.closed:
                self._close_http(d, back, ts, True, pkt, out)
        return 0

    cdef int _failed(self, _Direction d, StreamOutput out) except -1:
        """An analyzer (or this stage) raised on a stream's bytes: that is a bug, but
        one stream must not end the process (input may be crafted to find it). It is
        counted (`<protocol>/internal_error`) and the connection dropped: both
        directions ignore their segments from now on and keep no bytes (they leave as
        other directions do, least recently used first); the records it completed
        before stay."""
        out.errors[_ERROR_PROTOCOL[d.kind] + "/internal_error"] += 1
        cdef _Direction back = self._back(d)
        if back is None:  # not seen yet: it must not start an analyzer of its own
            back = _Direction.__new__(_Direction)
            back.kind = d.kind
            back.key = _rev(d.key)
            back.ckey, back.back_ckey = d.back_ckey, d.ckey
            self._insert(back)
        for x in (d, back):
            (<_Direction>x).done = True
            (<_Direction>x).stream = _stream(self.max_buffer)
            (<_Direction>x).http = (<_Direction>x).tls = (<_Direction>x).ssh = None
            (<_Direction>x).held = None
            (<_Direction>x).pending = None
        # What the directions hold, counted again: the failure may have come between
        # a change and its accounting.
        cdef _Direction y = self.oldest
        self._buffered = 0
        while y is not None:
            self._buffered += y.stream.buffered
            y = y.next_
        return 0

    cdef int _shed(self, int64_t pkt, StreamOutput out) except -1:
        """Out-of-order bytes of all streams past `max_total`: the direction holding the
        most delivers what it has, with gaps, and goes on from there."""
        cdef _Direction d = self.oldest, y = self.oldest
        if d is None:  # nothing held (the total is recounted after a failure)
            return 0
        while y is not None:
            if y.stream.buffered > d.stream.buffered:
                d = y
            y = y.next_
        cdef int64_t held = d.stream.buffered, gaps = d.stream.gaps
        cdef list chunks = []
        d.stream.overflows += 1
        d.stream.drain(chunks)
        self._buffered -= held
        self.gap_bytes += d.stream.gaps - gaps
        self.overflows += 1
        if not d.done:
            self._analyze(d, chunks, pkt, out)
        return 0

    def flush(self) -> StreamOutput:
        """End of input: what every direction holds is delivered, HTTP connections
        closed, SSH banners without a KEXINIT recorded."""
        cdef StreamOutput out = StreamOutput(self.encode, self.keep)
        self.gap_bytes = self.overflows = 0
        cdef list order = []
        cdef _Direction d = self.oldest, y
        while d is not None:
            order.append(d)
            d = d.next_
        for x in order:
            d = <_Direction>x
            if self.dirs.get(d.ckey) is d:
                try:
                    self._end(d, 0, False, -1, out)
                except Exception:  # a bug: counted, that stream dropped (`_failed`)
                    self._failed(d, out)
        self.dirs.clear()
        d = self.oldest
        while d is not None:  # break the list's references
            y = d.next_
            d.prev = d.next_ = None
            d.linked = False
            d = y
        self.oldest = self.newest = None
        self.client_hello.clear()
        self._buffered = 0
        self._count(out)
        return out._in_order()

    cdef _Direction _new(self, bytes ckey, bytes src, int sport, bytes dst, int dport):
        cdef _Direction d = _Direction.__new__(_Direction)
        d.ckey = ckey
        d.back_ckey = _key_of(dst, dport, src, sport)
        d.key = (src, sport, dst, dport)
        d.stream = _stream(self.max_buffer)
        cdef int kind = _port_kind[dport & 0xFFFF]
        d.from_client = True
        if kind == K_NONE:
            kind = _port_kind[sport & 0xFFFF]
            d.from_client = kind == K_NONE and sport > dport
        d.kind = kind
        if kind != K_NONE:
            self._start(d)
        return d

    cdef int _start(self, _Direction d) except -1:
        """The analyzer for the direction's kind (HTTP: shared with the other side)."""
        cdef _Direction back
        if d.kind == K_TLS:
            # Records only counted, no fingerprints: lean hellos (the fields the
            # metrics read; analyzers/tls.py)
            d.tls = hello_reader(not (self.detail or self.ja3 or self.ja4))
        elif d.kind == K_SSH:
            d.ssh = SshReader(d.from_client)
        elif d.kind == K_HTTP:
            back = self._back(d)
            d.http = back.http if back is not None and back.http is not None \
                else _Http(http_connection(self.detail) if self.http_class is HttpConnection
                           else self.http_class(self.detail))
        return 0

    cdef int _end(self, _Direction d, int64_t ts, bint has_ts, int64_t pkt,
                  StreamOutput out) except -1:
        """A direction leaves the stage (end of input, or evicted)."""
        self._buffered -= d.stream.buffered
        cdef int64_t gaps = d.stream.gaps
        cdef list chunks
        if not d.done:
            chunks = []
            d.stream.drain(chunks)
            d.stream.finished = True
            self._analyze(d, chunks, pkt, out)
        self.gap_bytes += d.stream.gaps - gaps
        if d.ssh is not None and not d.done:
            for rec in d.ssh.finish():
                self._ssh_record(d, rec, d.stream.last_ts, pkt, out)
        if d.http is not None:
            self._close_http(d, self._back(d), ts, has_ts, pkt, out)
        return 0

    cdef int _close_http(self, _Direction d, _Direction back, int64_t ts, bint has_ts,
                         int64_t pkt, StreamOutput out) except -1:
        """Both directions of an HTTP connection end: deliver what they buffered, then
        close the connection (a response delimited by the close completes)."""
        cdef _Http h = d.http
        cdef list chunks
        for x in (d, back):
            if x is not None and self.dirs.get((<_Direction>x).ckey) is x:
                self._remove(x)
                self._buffered -= (<_Direction>x).stream.buffered
                if not (<_Direction>x).done:
                    chunks = []
                    (<_Direction>x).stream.drain(chunks)
                    (<_Direction>x).stream.finished = True
                    self._analyze(x, chunks, pkt, out)
        cdef int64_t end = ts
        if not has_ts:
            end = max(d.stream.last_ts, back.stream.last_ts if back is not None else 0)
        client = d.key if d.from_client else _rev(d.key)
        self._http_records(client, h, h.conn.close(end), pkt, out)
        return 0

    cdef int _analyze(self, _Direction d, list chunks, int64_t pkt,
                      StreamOutput out) except -1:
        if d.kind == K_NONE:  # other ports: the other side's kind, or the first bytes'
            chunks = self._kind_of(d, chunks)
        if not chunks or d.done:
            return 0
        if d.kind == K_DNS:
            self._dns(d, chunks, pkt, out)
        elif d.kind == K_HTTP:
            self._http(d, chunks, pkt, out)
        elif d.kind == K_SSH:
            self._ssh(d, chunks, pkt, out)
        else:
            self._tls(d, chunks, pkt, out)
        return 0

    cdef list _kind_of(self, _Direction d, list chunks):
        """Decide the kind of a direction on another port: the other side's, or by the
        stream's first bytes, however they were cut into segments (chunks wait in
        `held` until there are enough). The chunks to analyze (none while waiting)."""
        if d.held is None:
            d.held = []
        d.held += chunks
        cdef _Direction back = self._back(d)
        cdef bytes first
        cdef bint final
        cdef Chunk c
        if back is not None and back.kind != K_NONE and back.kind != K_OTHER:
            d.kind, d.from_client = back.kind, not back.from_client
        else:
            first, final = b"", False
            for i in range(len(d.held)):  # the contiguous bytes from the first one
                c = d.held[i]
                if (i and c.skip) or type(c.data) is Hidden:
                    final = True
                    break
                first += c.data[: 4 - len(first)]
                if len(first) >= 4:
                    break
            kind, client = _sniff(first, final)
            if kind == K_NONE:
                return []
            d.kind = kind
            if client is not None:
                d.from_client = client
        chunks, d.held = d.held, None
        if d.kind == K_OTHER:
            d.done = True
            return []
        self._start(d)
        return chunks

    cdef int _mark(self, _Direction d, StreamOutput out) except -1:
        """The direction's analyzer recognised its protocol (once per direction)."""
        if not d.marked and d.kind != K_NONE:
            d.marked = True
            _add_app(out.apps, d.key, _APP_OF_KIND[d.kind])
        return 0

    cdef int _http(self, _Direction d, list chunks, int64_t pkt, StreamOutput out) except -1:
        cdef _Http h = d.http
        if h is None:  # set with the kind
            return 0
        cdef HttpConnection conn = h.conn
        client = d.key if d.from_client else _rev(d.key)
        cdef Chunk c
        for x in chunks:
            c = <Chunk>x
            recs = conn.gap(d.from_client, c.skip) if c.skip else []
            if type(c.data) is Hidden:  # body bytes not shipped: skipped as such
                recs += conn.skipped(d.from_client, (<Hidden>c.data).n, c.ts)
            elif d.from_client:
                recs += conn.client(c.data, c.ts)
            else:
                recs += conn.server(c.data, c.ts)
            self._http_records(client, h, recs, pkt, out)
            if conn.done:
                break
        if conn.recognised:
            self._mark(d, out)
        cdef _Direction back
        if conn.done:
            d.done = True
            back = self._back(d)
            if back is not None:
                back.done = True
        return 0

    cdef int _http_records(self, tuple client, _Http h, list recs, int64_t pkt,
                           StreamOutput out) except -1:
        for rec in recs:
            _set_key(<dict>rec, client)
            _emit(out, "HTTP", pkt, rec)
        cdef HttpConnection conn = h.conn
        if not h.counted and conn.done and conn.violation is not None:
            out.errors[f"http/{conn.violation}"] += 1
            h.counted = True
        return 0

    cdef int _ssh(self, _Direction d, list chunks, int64_t pkt, StreamOutput out) except -1:
        cdef SshReader reader = d.ssh
        if reader is None:  # set with the kind
            return 0
        cdef Chunk c
        for x in _shipped(chunks):
            c = <Chunk>x
            if c.skip:
                recs = reader.finish()  # a hole before the KEXINIT: keep the banner
                out.errors["ssh/gap"] += 1
                d.done = True
            else:
                recs = reader.feed(c.data)  # never raises: a violation ends it
            if reader.ident is not None:
                self._mark(d, out)
            for rec in recs:
                self._ssh_record(d, rec, c.ts, pkt, out)
            if reader.done or d.done:
                d.done = True
                if reader.violation is not None:
                    out.errors[f"ssh/{reader.violation}"] += 1
                return 0
        return 0

    cdef int _ssh_record(self, _Direction d, rec, int64_t ts, int64_t pkt,
                         StreamOutput out) except -1:
        (<dict>rec)["Timestamp"] = ts
        (<dict>rec)["Flow"] = _flow(d.key)
        _emit(out, "SSH", pkt, rec)
        return 0

    cdef int _tls(self, _Direction d, list chunks, int64_t pkt, StreamOutput out) except -1:
        cdef HelloReader reader = d.tls
        if reader is None:  # set with the kind
            return 0
        cdef Chunk c
        cdef tuple key = d.key
        for x in _shipped(chunks):
            c = <Chunk>x
            if c.skip:
                out.errors["tls/gap"] += 1  # a hole before the hello: give up
                d.done = True
                return 0
            try:
                hellos = reader.feed(c.data)
            except DecodeError as e:
                out.errors[describe(e.index)] += 1
                d.done = True
                return 0
            if reader.done:
                d.done = True
                if reader.violation is not None:
                    out.errors[f"tls/{reader.violation}"] += 1
            if hellos:
                self._mark(d, out)
            for htype, rec in hellos:
                (<dict>rec)["Timestamp"] = c.ts
                _set_key(<dict>rec, key)
                if htype == 1:
                    if d.ckey not in self.client_hello:
                        self.client_hello[d.ckey] = c.ts
                    if self.ja3:
                        rec["Ja3"] = _analyzers()[0](rec)[1].encode()
                    if self.ja4:
                        rec["Ja4"] = _analyzers()[2](rec).encode()
                    _emit(out, "TLSClientHello", pkt, rec)
                else:
                    start = self.client_hello.pop(d.back_ckey, None)
                    if start is not None and c.ts >= start:
                        out.tls_handshakes.append((c.ts - start) / 1e9)
                    if self.ja3:
                        rec["Ja3s"] = _analyzers()[1](rec)[1].encode()
                    _emit(out, "TLSServerHello", pkt, rec)
            if d.done:
                return 0
        return 0

    cdef int _dns(self, _Direction d, list chunks, int64_t pkt, StreamOutput out) except -1:
        cdef Chunk c
        cdef Py_ssize_t size
        cdef tuple key = d.key
        if d.pending is None:
            d.pending = bytearray()
        pending = d.pending
        parse_dns = _analyzers()[3]
        for x in _shipped(chunks):
            c = <Chunk>x
            if c.skip:  # a gap: the message it cuts is lost; start over after it
                pending.clear()
            pending += c.data
            while len(pending) >= 2:
                size = (pending[0] << 8) | pending[1]
                if len(pending) < 2 + size:
                    break
                msg = bytes(pending[2 : 2 + size])
                del pending[: 2 + size]
                try:
                    rec = parse_dns(msg)
                except DecodeError as e:
                    out.errors[describe(e.index)] += 1
                    continue
                (<dict>rec)["Timestamp"] = c.ts
                _set_key(<dict>rec, key)
                _emit(out, "DNS", pkt, rec)
                self._mark(d, out)
        return 0
