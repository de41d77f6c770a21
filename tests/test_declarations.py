"""The record declarations against the Go Netcap's file format, and generated docs.

tests/data/NCAP-FORMAT.md is a copy of the project's format facts (shared/NCAP-FORMAT.md:
the Go Netcap v0.6.11 `netcap.proto`, int64 timestamps). Every record we declare must
match it field for field — name, number, type, repeated — and use its Type enum value.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netcap.records.doc import records_markdown
from netcap.records.proto import proto_text
from netcap.records.schema import Kind
from netcap.records.types import RECORDS, TYPE_ENUM

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


def _format_facts() -> tuple[dict[str, int], dict[str, list[tuple[int, str, str]]]]:
    text = (DATA / "NCAP-FORMAT.md").read_text()
    enum = {m[1]: int(m[2]) for m in re.finditer(r"^\| (\w+) \| (\d+) \|$", text, re.M)}
    messages: dict[str, list[tuple[int, str, str]]] = {}
    for m in re.finditer(r"^- \*\*(\w+)\*\* — (.+)$", text, re.M):
        fields = []
        for part in m[2].split(" · "):
            num, rest = part.split(" ", 1)
            name, typ = rest.split(": ")
            fields.append((int(num), name, typ.strip()))
        messages[m[1]] = fields
    return enum, messages


ENUM, MESSAGES = _format_facts()


def _our_type(rt_name: str, number: int) -> str:
    fl = next(f for f in RECORDS[rt_name].fields if f.number == number)
    if fl.kind is Kind.MESSAGE:
        typ = fl.message or ""
    elif fl.kind is Kind.ENUM:
        typ = "Type"
    else:
        typ = fl.kind.value
    return f"repeated {typ}" if fl.repeated else typ


def test_format_file_parsed() -> None:
    assert len(ENUM) > 90 and len(MESSAGES) > 40 and "TCP" in MESSAGES


def test_type_enum_matches() -> None:
    assert ENUM == TYPE_ENUM


ADDED = {("TLSClientHello", 29): ("Ja4", "string"),
         ("TLSClientHello", 30): ("SupportedVersions", "repeated int32"),
         ("HTTP", 31): ("SrcPort", "int32"),
         ("HTTP", 32): ("DstPort", "int32")}
# A protobuf map is on the wire a repeated entry message (key = 1, value = 2): we declare
# the entry (`HTTPMapEntry`), which is not a message of netcap.proto.
MAP_ENTRY = {"repeated HTTPMapEntry": "map<string, string>"}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_record_matches_go_netcap(name: str) -> None:
    if name == "HTTPMapEntry":
        assert [(f.number, f.kind) for f in RECORDS[name].fields] == [(1, Kind.STRING),
                                                                     (2, Kind.STRING)]
        return
    theirs = {num: (fname, typ) for num, fname, typ in MESSAGES[name]}
    ours = {f.number: (f.name, _our_type(name, f.number)) for f in RECORDS[name].fields}
    # We may leave a Netcap field out (e.g. IPv6.HopByHop) but never differ on one; fields
    # we add take numbers Netcap does not use (the issue named TLSClientHello.Ja4 = 29).
    for num, (fname, typ) in ours.items():
        if (name, num) in ADDED:
            assert num not in theirs and (fname, typ) == ADDED[name, num]
            continue
        assert num in theirs, f"{name}.{fname}: field number {num} not in netcap.proto"
        assert (fname, MAP_ENTRY.get(typ, typ)) == theirs[num], f"{name} field {num}"
    assert RECORDS[name].type_enum == ENUM.get(name)


def test_records_doc_is_generated() -> None:
    doc = (ROOT / "docs" / "records.md").read_text()
    assert doc == records_markdown(), "regenerate: python -m netcap.records.doc > docs/records.md"


def test_metrics_doc_is_generated() -> None:
    from netcap.metrics.doc import metrics_markdown

    doc = (ROOT / "docs" / "metrics.md").read_text()
    assert doc == metrics_markdown(), "regenerate: python -m netcap.metrics.doc > docs/metrics.md"


def test_metric_names_follow_conventions() -> None:
    from netcap.metrics.families import FAMILIES, Kind

    for f in FAMILIES.values():
        assert re.fullmatch(r"nc_[a-z0-9_]+", f.name), f.name
        assert not f.name.endswith("_total"), f"{f.name}: counters get _total when exposed"
        if f.kind is Kind.HISTOGRAM or "seconds" in f.name or "bytes" in f.name:
            assert f.name.endswith(("_seconds", "_bytes", "_per_second", "_per_byte")), f.name
        for label in f.labels:
            assert re.fullmatch(r"[a-z_]+", label), label


def test_proto_schema_text_mentions_every_record() -> None:
    text = proto_text()
    for name in RECORDS:
        assert f"message {name} {{" in text
