"""The numpy TCP segment picking that `reassembly/_segments.pyx` replaced (issue 13), kept
as the oracle of tests/test_segments_compiled.py: `segments` as it was in
`netcap.reassembly.streams` (its docstring there, and the module's, are the rules)."""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from netcap.decode.batch import Decoded
from netcap.flows.extract import addr_words, group_rows
from netcap.gather import gather_u8
from netcap.reassembly._streams import gather_payloads
from netcap.reassembly.streams import (
    _MAX_SEGMENTS,
    ALL_KINDS,
    FIN,
    KIND_RECORDS,
    RST,
    STREAM_PORTS,
    SYN,
    SegmentBatch,
)
from netcap.records.table import Ragged, RecordTable

I64 = npt.NDArray[np.int64]
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
    blob = gather_payloads(data, poff_all[rows], size)  # one copy of each payload
    return SegmentBatch(src.take(rows), sport[rows], dst.take(rows), dport[rows],
                        seq_all[rows], flags.astype(np.int64), blob, size, hidden,
                        b.ts[pkt], pkt + b.first)


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
    # `group` is already in sorted order: the code this was had `group[order]` here, so
    # runs were cut (or, if sequence numbers happened to meet, joined across directions)
    # by other rows' directions; the compiled code joins runs as documented.
    o_hide, o_seq, o_size, o_group = hide[order], seq[order], size[order], group
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


# First bytes of an HTTP message (a request method and its space, or a status line):
# HTTP on other ports is found by them, as TLS by its handshake record.
_HTTP_STARTS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN",
                b"TRAC", b"HTTP")
_HTTP_WORDS = np.frombuffer(b"".join(_HTTP_STARTS), ">u4").astype(np.int64)
_HTTP_PREFIXES = {n: np.array(sorted({int.from_bytes(w[:n], "big") for w in _HTTP_STARTS}),
                              np.int64) for n in (1, 2, 3)}
