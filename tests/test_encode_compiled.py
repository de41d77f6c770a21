"""The compiled encoder (records._encode) against the numpy encoder it replaced
(tests/oracle_encode.py), byte for byte.

- Real records: every table of every corpus capture and of the project's recorded
  captures, decoded with every column (payload bytes and entropy too), the stream records
  (HTTP, TLS, DNS over TCP, SSH) and the Connection records the stream stage and the
  connection table make of them, as `net capture` runs those stages.
- Made-up tables of every record type with the edge values: 0, -1, the int64 and uint64
  extremes, -0.0, NaN and infinities, empty and long strings, addresses of odd lengths
  (text longer than 255 bytes), empty and long repeated lists, repeated items beyond
  64 bits, sub-messages that are empty or all defaults, and scalar columns of other
  dtypes than the decoders use.
- `RecordTable.from_rows` (compiled: record dicts to columns) against the Python one it
  replaced (also in tests/oracle_encode.py), on the same records and tables.
- `encode_records` (record dicts encoded row by row) against the table made by
  `from_rows` and encoded, on the same records and on made-up rows with values of other
  Python types than the analyzers give; and the stream stage's own encoding of each
  record as it makes it (`StreamOutput.encoded`, what `net capture` writes) against
  `encode_records` of its rows, also where the rows are put in order after.
- The address text against Python's `ipaddress` (RFC 5952, as Go prints it) and
  `bytes.hex(':')`, and the old lookup-table renderer.
"""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle_encode as old
from corpus import PCAPS, corpus_files
from netcap.decode.batch import decode_batch
from netcap.flows.extract import summarize
from netcap.flows.table import ConnectionTable, Ended
from netcap.reassembly.streams import StreamStage, segments
from netcap.records.derive import add_payload_columns
from netcap.records.encode import (
    encode_delimited,
    encode_delimited_sized,
    encode_records,
    encode_rows,
)
from netcap.records.render import render_column
from netcap.records.schema import Field, Kind, RecordType, Render
from netcap.records.table import Children, Ragged, RecordTable, object_column
from netcap.records.types import RECORDS
from netcap.sources.capture import CaptureError, open_capture

DATA = Path(__file__).parent / "data"
RECORDED = sorted((DATA / "recorded").glob("*.pcap")) + [DATA / "sample.pcap"]


def same_table(a: RecordTable, b: RecordTable) -> None:
    """Two tables hold the same columns, of the same types and dtypes."""
    assert a.rtype is b.rtype and a.n == b.n and list(a.cols) == list(b.cols)
    assert (a.pkt is None) == (b.pkt is None)
    if a.pkt is not None and b.pkt is not None:
        assert a.pkt.dtype == b.pkt.dtype and a.pkt.tolist() == b.pkt.tolist()
    for name, x in a.cols.items():
        y = b.cols[name]
        assert type(x) is type(y), name
        if isinstance(x, Ragged) and isinstance(y, Ragged):
            assert x.data.dtype == y.data.dtype and x.lens.dtype == y.lens.dtype
            assert x.equals(y), name
        elif isinstance(x, Children) and isinstance(y, Children):
            assert x.parent.dtype == y.parent.dtype and x.parent.tolist() == y.parent.tolist()
            same_table(x.table, y.table)
        else:
            assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert x.tobytes() == y.tobytes() if x.dtype.kind != "O" else (
                x.tolist() == y.tolist()), name


def from_rows(rt: RecordType, rows: list[dict[str, Any]], pkt: list[int] | None,
              only: frozenset[str] | None = None) -> RecordTable:
    """RecordTable.from_rows (compiled), checked against the Python one it replaced."""
    table = RecordTable.from_rows(rt, rows, pkt, only)
    same_table(table, old.from_rows(rt, rows, pkt, only))
    return table


def same_records(rt: RecordType, rows: list[dict[str, Any]]) -> bytes:
    """encode_records == the rows made a table (`from_rows`) and encoded."""
    got = encode_records(rt, rows)
    assert type(got) is bytes
    assert got == encode_delimited(RecordTable.from_rows(rt, rows, None)), rt.name
    return got


def same(table: RecordTable) -> int:
    """Compiled == old for one table (stream, sizes and rows); its bytes."""
    got, sizes = encode_delimited_sized(table)
    want, want_sizes = old.encode_delimited_sized(table)
    assert got.dtype == np.uint8 and sizes.dtype == np.int64
    assert got.tobytes() == want.tobytes(), table.rtype.name
    assert sizes.tolist() == np.asarray(want_sizes).tolist(), table.rtype.name
    rows, want_rows = encode_rows(table), old.encode_rows(table)
    assert rows.tolist() == want_rows.tolist(), table.rtype.name
    assert encode_delimited(table) == got.tobytes()
    return int(got.shape[0])


# -- real records -------------------------------------------------------------------------

def capture_tables(path: Path, seen: dict[str, int]) -> int:
    """Every table `net capture` encodes from one capture (its stages run as the pipeline
    runs them, in batches of 256 packets), each checked; the bytes encoded."""
    streams = StreamStage(encode=frozenset(RECORDS))  # every record encoded as made too
    flows = ConnectionTable()
    total = 0
    apps = bytearray()

    def check(name: str, table: RecordTable) -> None:
        nonlocal total
        if table.n:
            seen[name] = seen.get(name, 0) + table.n
            total += same(table)

    def stream_records(out: Any) -> None:
        """The stream analyzers' records (dicts), as tables, both ways, then encoded."""
        for name, rows in out.records.items():
            pkts = [p for p, _ in rows]
            table = from_rows(RECORDS[name], [r for _, r in rows], pkts)
            from_rows(RECORDS[name], [r for _, r in rows], pkts, frozenset({"SrcIP", "x"}))
            check(name, table)
            want = same_records(RECORDS[name], [r for _, r in rows])
            assert b"".join(out.encoded[name]) == want, name
        assert out.encoded.keys() == out.records.keys()

    def ended(e: Ended | None) -> None:
        if e is not None:
            check("Connection", e.records)

    try:
        for batch in open_capture(str(path), batch_packets=256):
            decoded = decode_batch(batch, columns=None)
            for name, table in decoded.tables.items():
                add_payload_columns(table, decoded.batch.data, True, True)
                check(name, table)
            segs = segments(decoded, hide_bodies=False)
            if segs is not None:
                out = streams.update(segs)
                apps += out.apps
                stream_records(out)
            fb = summarize(decoded)
            if fb is not None:
                ended(flows.update(fb, apps))
                apps.clear()
    except CaptureError:  # cut short or unusable: what was read counts
        pass
    out = streams.flush()
    stream_records(out)
    flows.recognise(apps + out.apps)
    ended(flows.flush())
    return total


@pytest.mark.corpus
def test_corpus_and_recorded_captures_encode_as_before() -> None:
    seen: dict[str, int] = {}
    total = sum(capture_tables(PCAPS / name, seen) for name in corpus_files())
    total += sum(capture_tables(path, seen) for path in RECORDED)
    assert total > 1_000_000, total
    # The record types with rows of their own here (a type missing would be a test that
    # no longer sees what it was written for).
    for name in ("Ethernet", "ARP", "IPv4", "IPv6", "TCP", "UDP", "ICMPv4", "ICMPv6", "DNS",
                 "DHCPv4", "NTP", "HTTP", "TLSClientHello", "TLSServerHello", "SSH",
                 "Connection", "Dot1Q", "LLC", "IPv6Fragment"):
        assert seen.get(name, 0) > 0, (name, seen)


def test_records_encoded_as_made_follow_their_rows_into_order() -> None:
    """The stage encodes a record when it makes it; putting the rows in order (records
    of one packet made out of time order) takes the messages along, and types not asked
    for are not encoded."""
    from netcap.reassembly.streams import StreamOutput

    def ssh(ts: int, client: str) -> dict[str, Any]:
        return {"Timestamp": ts, "Ident": f"SSH-2.0-{client}", "IsClient": True,
                "Flow": f"10.0.0.1:{40000 + ts}->10.0.0.2:22"}

    made = [(7, ssh(30, "c")), (5, ssh(20, "b")), (5, ssh(10, "a")), (9, ssh(40, "d"))]
    out = StreamOutput(frozenset({"SSH"}))
    for pkt, rec in made:
        out.add("SSH", pkt, rec)
    out.add("DNS", 6, {"Timestamp": 1, "ID": 3})
    assert [len(m) for m in out.encoded["SSH"]] and "DNS" not in out.encoded
    rows = out.canonical().records["SSH"]
    assert [r["Ident"][-1] for _, r in rows] == ["a", "b", "c", "d"]
    assert out.encoded["SSH"] == [same_records(RECORDS["SSH"], [r]) for _, r in rows]
    # Written and not counted (`keep` off): a row keeps only what orders it; the
    # messages and their order are the same.
    lean = StreamOutput(frozenset({"SSH"}), keep=False)
    for pkt, rec in made:
        lean.add("SSH", pkt, rec)
    lean.add("DNS", 6, {"Timestamp": 1, "ID": 3})
    assert lean.canonical().encoded == out.encoded
    assert [(p, set(r)) for p, r in lean.records["SSH"]] == [
        (p, {"Timestamp", "Flow"}) for p, _ in rows]
    assert lean.records["DNS"] == out.records["DNS"]  # not encoded: kept whole


# -- made-up tables -----------------------------------------------------------------------

EDGE_INTS = [0, 1, -1, 127, 128, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63)]
EDGE_U64 = [0, 1, 2**63, 2**64 - 1, 2**56, 2**63 - 1]
DOUBLES = st.one_of(st.sampled_from([0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf,
                                     5e-324, 1.5]), st.floats())
BLOBS = st.one_of(st.binary(max_size=6), st.binary(min_size=126, max_size=130),
                  st.binary(min_size=250, max_size=400))
TEXTS = st.one_of(st.text(max_size=5), st.text(min_size=120, max_size=300)).map(str.encode)
IP_RAW = st.one_of(
    st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16),
    st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x1F]), min_size=8, max_size=8).map(
        lambda g: b"".join(x.to_bytes(2, "big") for x in g)),
    st.sampled_from([b"", bytes(16), bytes(10) + b"\xff\xff\x01\x02\x03\x04",
                     bytes(range(200)), b"\x01\x02\x03"]),
    st.binary(max_size=40))
MAC_RAW = st.one_of(st.binary(min_size=6, max_size=6), st.binary(max_size=20),
                    st.just(bytes(range(200))))


def ints(kind: Kind) -> st.SearchStrategy[int]:
    if kind is Kind.UINT64:
        return st.one_of(st.sampled_from(EDGE_U64), st.integers(0, 2**64 - 1))
    lo, hi = (-(2**63), 2**63 - 1) if kind is Kind.INT64 else (
        (0, 2**32 - 1) if kind is Kind.UINT32 else (-(2**31), 2**31 - 1))
    return st.one_of(st.sampled_from([v for v in EDGE_INTS if lo <= v <= hi]),
                     st.integers(lo, hi))


def value(fl: Field, depth: int) -> st.SearchStrategy[Any]:
    if fl.kind is Kind.MESSAGE:
        child = row(RECORDS[fl.message or ""], depth + 1)
        return st.lists(child, max_size=3) if fl.repeated else child
    if fl.repeated:
        if fl.kind.is_varint:
            # Items beyond 64 bits are cut to 64, as proto3 writes them.
            item = st.one_of(ints(fl.kind), st.sampled_from([2**64 + 5, -(2**70), 2**64 - 1]))
        else:
            item = st.one_of(TEXTS, st.text(max_size=4), BLOBS)
        return st.one_of(st.lists(item, max_size=4), st.lists(item, min_size=150, max_size=200))
    if fl.kind is Kind.STRING:
        return {Render.IP: IP_RAW, Render.MAC: MAC_RAW, Render.NONE: TEXTS}[fl.render]
    if fl.kind is Kind.BOOL:
        return st.booleans()
    if fl.kind is Kind.DOUBLE:
        return DOUBLES
    if fl.kind is Kind.BYTES:
        return BLOBS
    return ints(fl.kind)


def row(rt: RecordType, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    fields = {fl.name: value(fl, depth) for fl in rt.fields
              if depth < 2 or fl.kind is not Kind.MESSAGE}
    return st.fixed_dictionaries({}, optional=fields)


# Scalar columns as other dtypes than the decoders make (numpy's casts: both encoders
# take the column as it is).
OTHER_DTYPES = [np.int32, np.uint32, np.uint16, np.uint8, np.uint64, np.bool_]


def recast(table: RecordTable, data: st.DataObject) -> None:
    for name, col in list(table.cols.items()):
        if isinstance(col, Children):
            recast(col.table, data)
        elif isinstance(col, np.ndarray) and col.dtype.kind in "iub" and data.draw(
                st.booleans(), label=f"recast {name}"):
            dtype = data.draw(st.sampled_from(OTHER_DTYPES), label=f"dtype {name}")
            with np.errstate(all="ignore"):
                table.cols[name] = col.astype(dtype)


@pytest.mark.parametrize("name", sorted(RECORDS))
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_made_up_tables_encode_as_before(name: str, data: st.DataObject) -> None:
    rt = RECORDS[name]
    rows = data.draw(st.lists(row(rt), max_size=5), label="rows")
    table = from_rows(rt, rows, list(range(len(rows))))
    from_rows(rt, rows, None, frozenset(fl.name for fl in rt.fields[::2]))
    same(table)
    same_records(rt, rows)
    recast(table, data)
    same(table)


def test_sub_messages_empty_or_all_defaults() -> None:
    """A Children column of no rows writes nothing; children without columns are written
    (tag + 0), at the parents that have them."""
    tcp, opt = RECORDS["TCP"], RECORDS["TCPOption"]
    none = RecordTable(tcp, 3, {"Options": Children(np.zeros(0, np.int64),
                                                    RecordTable(opt, 0))})
    assert same(none) == 3
    bare = RecordTable(tcp, 4, {"Options": Children(np.array([1, 1, 3], np.int64),
                                                    RecordTable(opt, 3))})
    same(bare)
    assert encode_rows(bare).tolist() == [b"", b"\xa2\x01\x00" * 2, b"", b"\xa2\x01\x00"]
    rr = RecordTable(RECORDS["DNSResourceRecord"], 2, {"SOA": Children(
        np.array([0], np.int64), RecordTable(RECORDS["DNSSOA"], 1))})
    assert encode_rows(rr).tolist() == [b"\x5a\x00", b""]  # a singular one, set
    same(rr)


def test_repeated_columns_with_none_and_tuples() -> None:
    tls = RECORDS["TLSClientHello"]
    table = RecordTable(tls, 3, {"CipherSuites": object_column([None, (1, 2**64 - 1), []]),
                                 "ALPNs": object_column([["h2", b""], None, ("é",)])})
    same(table)


def test_records_of_other_value_types() -> None:
    """Values the analyzers do not give, converted as `from_rows` converts a column of
    them (numpy's rules where it takes a column of mixed values): bools and floats in
    integer fields, ints in bool and double fields, numpy scalars, str (UTF-8) and other
    buffers in string fields, tuples as repeated fields, str in an address field."""
    tls, http, ip = RECORDS["TLSClientHello"], RECORDS["HTTP"], RECORDS["IPv4"]
    same_records(tls, [{"HandshakeVersion": True, "CipherSuites": (1, 2**64 - 1, -1),
                        "ALPNs": ("h2", b"", bytearray(b"x")), "SNI": "é"},
                       {"HandshakeVersion": 7.9, "Extensions": [], "SNI": bytearray(b"ab")},
                       {"HandshakeVersion": np.int32(-3), "SNI": memoryview(b"cd")},
                       {}])
    same_records(http, [{"StatusCode": np.uint16(200), "URL": "/ü", "SrcIP": "1.2.3.4",
                         "RequestHeader": ({"Key": "a", "Value": "b"}, {}),
                         "DoneAfter": False, "FirstByteAfter": 2.5},
                        {"RequestHeader": [], "ResponseHeader": None, "URL": b""}])
    same_records(ip, [{"TTL": 1.0, "SrcIP": b"\x01\x02\x03\x04", "DstIP": b"\x01" * 16},
                      {"SrcIP": b"\x01\x02\x03", "DstIP": b""}])
    for rt, rows in ((tls, [[1]]), (tls, [{"SNI": 5}]),
                     (http, [{"RequestHeader": [1]}]), (tls, [{"HandshakeVersion": None}]),
                     (tls, [{"SNI": None}]), (tls, [{"HandshakeVersion": 2**64}])):
        with pytest.raises((TypeError, ValueError, OverflowError)):
            RecordTable.from_rows(rt, rows, None)
        with pytest.raises((TypeError, ValueError, OverflowError)):
            encode_records(rt, rows)


def test_bad_columns_raise_not_crash() -> None:
    """The columns are trusted, but a Ragged's lengths come from decoded input: lengths
    that do not fit its bytes, or columns of the wrong length, raise."""
    tcp = RECORDS["TCP"]
    short = Ragged(np.zeros(3, np.uint8), np.array([2, 2], np.int64))
    for table in (RecordTable(tcp, 2, {"Padding": short}),
                  RecordTable(tcp, 2, {"SrcIP": short}),
                  RecordTable(tcp, 2, {"Padding": Ragged(np.zeros(3, np.uint8),
                                                         np.array([4, -1], np.int64))}),
                  RecordTable(tcp, 3, {"Padding": Ragged(np.zeros(3, np.uint8),
                                                         np.array([1, 1], np.int64))}),
                  RecordTable(tcp, 3, {"Window": np.zeros(2, np.int64)}),
                  RecordTable(tcp, 2, {"Options": Children(np.array([0, 5], np.int64),
                                                           RecordTable(RECORDS["TCPOption"],
                                                                       2))}),
                  RecordTable(tcp, 2, {"Options": Children(np.array([1, 0], np.int64),
                                                           RecordTable(RECORDS["TCPOption"],
                                                                       2))})):
        with pytest.raises((ValueError, IndexError)):
            encode_delimited_sized(table)
    with pytest.raises(ValueError):
        render_column(short, Render.IP)
    for bad in (short, Ragged(np.zeros(3, np.uint8), np.array([4, -1], np.int64)),
                Ragged(np.zeros(0, np.uint8), np.array([1], np.int64))):
        with pytest.raises(ValueError):
            bad.tolist()


@given(st.lists(st.binary(max_size=40), max_size=40))
@settings(max_examples=300, deadline=None)
def test_ragged_rows_are_the_slices(items: list[bytes]) -> None:
    """Ragged.tolist (compiled: ragged_rows) gives each row's bytes, empty rows too, also
    from a column whose bytes are a read-only or strided view."""
    col = Ragged.from_list(items)
    assert col.tolist() == items
    joined = b"".join(items)
    read_only = Ragged(np.frombuffer(joined, np.uint8), col.lens)
    doubled = np.frombuffer(bytes(b for b in joined for _ in range(2)), np.uint8)
    strided = Ragged(doubled[::2], col.lens)
    assert read_only.tolist() == items and strided.tolist() == items


# -- address text -------------------------------------------------------------------------

def ip_text(b: bytes) -> bytes:
    if len(b) == 16 and b[:12] == bytes(10) + b"\xff\xff":
        return str(ipaddress.IPv4Address(b[12:])).encode()
    if len(b) in (4, 16):
        return str(ipaddress.ip_address(b)).encode()
    return b"?" + b.hex().encode() if b else b""


@given(st.lists(IP_RAW, max_size=40), st.lists(MAC_RAW, max_size=40))
@settings(max_examples=300, deadline=None)
def test_address_text(ips: list[bytes], macs: list[bytes]) -> None:
    col = Ragged.from_list(ips)
    assert render_column(col, Render.IP).tolist() == [ip_text(b) for b in ips]
    assert render_column(col, Render.IP).equals(old.render_column(col, Render.IP))
    col = Ragged.from_list(macs)
    assert render_column(col, Render.MAC).tolist() == [b.hex(":").encode() for b in macs]
    assert render_column(col, Render.MAC).equals(old.render_column(col, Render.MAC))
    assert render_column(col, Render.NONE) is col
