"""The vectorized encoder (records.encode) against the protobuf library, byte for byte.

For every declared record type, hypothesis builds rows of raw values covering every field
kind and the encoding edge cases (negative int32/int64 as 10-byte varints, uint extremes,
-0.0 and infinities, empty / 2-byte-length / >255-byte strings and bytes, IP and MAC fields
with odd raw lengths, empty children and parents without children). The rows go through
`RecordTable.from_rows`; each encoded row must equal `SerializeToString()` of a protobuf
message built from the table's own `to_dicts()` (so rendering is shared, encoding is not).

Also: the checked-in `src/netcap/records/netcap.proto` is what `proto_text()` generates.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcap.records.encode import encode_delimited, encode_rows, varint_matrix
from netcap.records.proto import message_class, proto_text
from netcap.records.schema import Field, Kind, RecordType, Render
from netcap.records.table import RecordTable
from netcap.records.types import RECORDS
from protobuf_oracle import fill, varint

PROTO_FILE = Path(__file__).parent.parent / "src" / "netcap" / "records" / "netcap.proto"

I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)
U32 = (0, 2**32 - 1)
U64 = (0, 2**64 - 1)


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    # Varint width boundaries (1..10 bytes) and the type's extremes, plus anything.
    edges = {v for k in range(0, 64, 7) for v in (2**k - 1, 2**k, -(2**k))}
    edges |= {lo, hi, lo + 1, hi - 1}
    return st.one_of(st.sampled_from(sorted(v for v in edges if lo <= v <= hi)),
                     st.integers(lo, hi))


def _blob(min_size: int = 0) -> st.SearchStrategy[bytes]:
    # Empty, short, 1-byte length boundary (127/128), >255 bytes.
    return st.one_of(
        st.binary(min_size=min_size, max_size=6),
        st.binary(min_size=126, max_size=130),
        st.binary(min_size=250, max_size=300),
    )


_DOUBLES = st.one_of(
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 1.5]),
    st.floats(allow_nan=False),
)
_IP_RAW = st.one_of(
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=16, max_size=16),
    st.sampled_from([b"", b"\x01\x02\x03", bytes(range(200)), bytes(16),
                     b"\x00" * 10 + b"\xff\xff\x01\x02\x03\x04",  # IPv4-mapped
                     b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01"]),
    st.binary(max_size=40),
)
_MAC_RAW = st.one_of(st.binary(min_size=6, max_size=6), st.binary(max_size=20),
                     st.just(bytes(range(200))))
_TEXT = st.one_of(st.text(max_size=5), st.text(min_size=100, max_size=140),
                  st.text(min_size=260, max_size=300)).map(str.encode)


def _value(fl: Field, depth: int) -> st.SearchStrategy[Any]:
    if fl.kind is Kind.MESSAGE:
        child = _row(RECORDS[fl.message or ""], depth + 1)
        return st.lists(child, max_size=3 if depth == 0 else 2) if fl.repeated else child
    if fl.repeated:
        single = Field(fl.number, fl.name, fl.kind, fl.doc, render=fl.render)
        return st.lists(_value(single, depth), max_size=3)
    if fl.kind is Kind.STRING:
        return {Render.IP: _IP_RAW, Render.MAC: _MAC_RAW, Render.NONE: _TEXT}[fl.render]
    return {
        Kind.INT32: _ints(*I32),
        Kind.ENUM: _ints(*I32),  # proto3 enums are open: any int32
        Kind.INT64: _ints(*I64),
        Kind.UINT32: _ints(*U32),
        Kind.UINT64: _ints(*U64),
        Kind.BOOL: st.booleans(),
        Kind.DOUBLE: _DOUBLES,
        Kind.BYTES: _blob(),
    }[fl.kind]


def _row(rt: RecordType, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    # Every field optional: an empty dict is an all-defaults (empty) message.
    return st.fixed_dictionaries({}, optional={fl.name: _value(fl, depth) for fl in rt.fields})


def _check(rt: RecordType, rows: list[dict[str, Any]]) -> None:
    table = RecordTable.from_rows(rt, rows, range(len(rows)))
    dicts = table.to_dicts()
    cls = message_class(rt.name)
    expected: list[bytes] = []
    for d, raw in zip(dicts, rows, strict=True):
        msg = cls()
        fill(msg, rt, d, raw)
        expected.append(msg.SerializeToString())
    got = encode_rows(table).tolist()
    assert len(got) == len(rows)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"{rt.name} row {i}: encoder {g.hex()} != protobuf {e.hex()} ({rows[i]})"
    assert encode_delimited(table) == b"".join(varint(len(e)) + e for e in expected)


@pytest.mark.parametrize("name", sorted(RECORDS))
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_encoder_matches_protobuf(name: str, data: st.DataObject) -> None:
    rt = RECORDS[name]
    rows = data.draw(st.lists(_row(rt), max_size=6), label="rows")
    _check(rt, rows)


def test_every_field_kind_is_covered() -> None:
    """The property test above sees every kind the declarations use (and fails loudly
    here when a new kind, e.g. a repeated scalar, is declared without extending it)."""
    kinds = {(fl.kind, fl.repeated, fl.render) for rt in RECORDS.values() for fl in rt.fields}
    known = {(k, False, Render.NONE) for k in Kind if k is not Kind.MESSAGE}
    known |= {(Kind.STRING, False, Render.IP), (Kind.STRING, False, Render.MAC),
              (Kind.MESSAGE, True, Render.NONE), (Kind.MESSAGE, False, Render.NONE)}
    known |= {(k, True, Render.NONE) for k in Kind if k.is_varint}
    known |= {(Kind.STRING, True, Render.NONE), (Kind.BYTES, True, Render.NONE)}
    assert kinds <= known, f"untested field shapes: {kinds - known}"


def test_edge_rows_explicitly() -> None:
    """The edge cases from the hypothesis strategies, each pinned once (no shrinking luck)."""
    tcp = RECORDS["TCP"]
    rows: list[dict[str, Any]] = [
        {},
        {"Timestamp": -1, "SrcPort": -(2**31), "DstPort": 2**31 - 1,
         "SeqNum": 2**32 - 1, "AckNum": 0, "FIN": True, "NS": False},
        {"Timestamp": 2**63 - 1, "PayloadEntropy": -0.0, "Payload": bytes(128),
         "Padding": bytes(300), "SrcIP": b"", "DstIP": bytes(range(200))},
        {"PayloadEntropy": math.inf, "SrcIP": b"\x01\x02\x03", "DstIP": bytes(16),
         "Options": [{}, {}, {"OptionType": 8, "OptionData": bytes(127)}]},
        {"PayloadEntropy": -math.inf, "Options": [],
         "SrcIP": b"\x0a\x00\x00\x01", "DstIP": b"\xfe\x80" + bytes(13) + b"\x01"},
    ]
    _check(tcp, rows)
    _check(RECORDS["IPv6"], [{"FlowLabel": 2**32 - 1}, {"FlowLabel": 0}, {}])
    _check(RECORDS["Header"], [{"Type": -5, "Created": -(2**63), "InputSource": "é".encode()}])
    # A record with a 10-byte varint has the longest fixed width; mix it with 1-byte rows.
    _check(RECORDS["Ethernet"], [{"Timestamp": -1}, {"Timestamp": 1}, {}])
    _check(RECORDS["ARP"], [{"SrcHwAddress": bytes(range(6)), "DstHwAddress": b"\xff"},
                            {"SrcHwAddress": b"", "DstHwAddress": bytes(200)}])


def test_empty_table() -> None:
    for rt in RECORDS.values():
        table = RecordTable.from_rows(rt, [], [])
        assert encode_rows(table).tolist() == []
        assert encode_delimited(table) == b""


def test_negative_zero_double_is_written() -> None:
    """proto3 skips +0.0 but writes -0.0 (its bits are not zero); the encoder does too."""
    table = RecordTable.from_rows(RECORDS["UDP"], [{"PayloadEntropy": -0.0},
                                                   {"PayloadEntropy": 0.0}], [0, 1])
    msg = message_class("UDP")()
    msg.PayloadEntropy = -0.0
    assert encode_rows(table).tolist() == [msg.SerializeToString(), b""]
    assert msg.SerializeToString() == b"\x31" + b"\x00" * 7 + b"\x80"


def test_to_dicts_keeps_negative_zero() -> None:
    table = RecordTable.from_rows(RECORDS["UDP"], [{"PayloadEntropy": -0.0}], [0])
    assert "PayloadEntropy" in table.to_dicts()[0]


@given(st.lists(_ints(*U64), max_size=20))
@settings(max_examples=100, deadline=None)
def test_varint_matrix(values: list[int]) -> None:
    mat, nbytes = varint_matrix(np.asarray(values, dtype=np.uint64))
    for i, v in enumerate(values):
        want = varint(v)
        assert int(nbytes[i]) == len(want)
        assert mat[: len(want), i].tobytes() == want


def test_proto_file_in_sync() -> None:
    text = proto_text()
    hint = ("src/netcap/records/netcap.proto is out of date with records/types.py; regenerate:"
            " python -c \"from netcap.records.proto import proto_text;"
            " open('src/netcap/records/netcap.proto', 'w').write(proto_text())\"")
    assert PROTO_FILE.exists(), hint
    assert PROTO_FILE.read_text() == text, hint


def test_proto_file_matches_format_facts() -> None:
    """Spot checks of the generated schema against NCAP-FORMAT.md (the Go format)."""
    text = proto_text()
    for line in ["package types;", "NC_TCP = 38;", "NC_IPv4 = 29;", "NC_Ethernet = 7;",
                 "int64 Timestamp = 1;", "repeated TCPOption Options = 20;",
                 "uint32 FlowLabel = 4;", "Type Type = 3;", "bool ContainsPayloads = 5;"]:
        assert line in text, line


def test_ipv4_mapped_ipv6_renders_as_go_does() -> None:
    from netcap.records.render import render_column
    from netcap.records.schema import Render
    from netcap.records.table import Ragged

    col = Ragged.from_list([bytes(10) + b"\xff\xff\x01\x02\x03\x04", bytes(15) + b"\x01"])
    assert render_column(col, Render.IP).tolist() == [b"1.2.3.4", b"::1"]


def test_to_dicts_unsigned_values() -> None:
    table = RecordTable.from_rows(RECORDS["TCP"], [{"SeqNum": 0xFFFFFFFF}], [0])
    assert table.to_dicts()[0]["SeqNum"] == 0xFFFFFFFF


_GROUP = st.one_of(st.just(0), st.just(0), st.integers(0, 0xF), st.integers(0, 0xFFFF))


@given(st.lists(st.one_of(
    st.binary(min_size=4, max_size=4),
    st.lists(_GROUP, min_size=8, max_size=8).map(
        lambda g: b"".join(x.to_bytes(2, "big") for x in g)),
    st.binary(min_size=4, max_size=4).map(lambda b: bytes(10) + b"\xff\xff" + b),
    st.binary(max_size=20),
), max_size=60))
@settings(max_examples=200, deadline=None)
def test_ip_text_matches_reference(addrs: list[bytes]) -> None:
    """The vectorized IP text equals Python's ipaddress (RFC 5952, as Go prints it)."""
    import ipaddress

    from netcap.records.render import render_column
    from netcap.records.schema import Render
    from netcap.records.table import Ragged

    def ref(b: bytes) -> bytes:
        if len(b) == 16 and b[:12] == bytes(10) + b"\xff\xff":
            return str(ipaddress.IPv4Address(b[12:])).encode()
        if len(b) in (4, 16):
            return str(ipaddress.ip_address(b)).encode()
        return b"?" + b.hex().encode() if b else b""

    assert render_column(Ragged.from_list(addrs), Render.IP).tolist() == [ref(a) for a in addrs]
