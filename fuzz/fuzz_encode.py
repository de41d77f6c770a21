"""Fuzz target: the compiled record encoder (netcap.records._encode). The input makes a
small table of one record type (the type, up to four rows, which fields each row sets and
their values: any ints, doubles from any 8 bytes, NaNs too, strings and bytes up to 550
bytes, addresses of any length, repeated lists of up to 150 items, sub-messages two
levels deep); every encoded message must equal the protobuf library's
SerializeToString() of the same record, and the delimited stream their concatenation
with lengths. The address text is checked against Python's (ipaddress, bytes.hex), as
the protobuf messages get theirs from the same renderer. Anything else that comes out
(an exception, a mismatch, a sanitizer report) is a bug."""

from __future__ import annotations

import ipaddress
import struct
import sys
from typing import Any

from netcap.records._encode import encode_delimited_sized, encode_rows, render_column
from netcap.records.proto import message_class
from netcap.records.schema import Field, Kind, RecordType, Render
from netcap.records.table import Ragged, RecordTable
from netcap.records.types import RECORDS

NAMES = sorted(RECORDS)
CLASSES = {name: message_class(name) for name in NAMES}
_RANGES = {Kind.INT32: (4, True), Kind.ENUM: (4, True), Kind.INT64: (8, True),
           Kind.UINT32: (4, False), Kind.UINT64: (8, False)}
_MAPPED = bytes(10) + b"\xff\xff"


class _Src:
    """The input, read front to back (zeros once it is used up)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, k: int) -> bytes:
        b = self.data[self.pos : self.pos + k]
        self.pos += k
        return b.ljust(k, b"\0")

    def byte(self) -> int:
        return self.take(1)[0]

    def size(self) -> int:
        n = self.byte()
        return n if n < 200 else (n - 200) * 11  # up to 550: 2-byte lengths, long text


def _scalar(fl: Field, src: _Src) -> Any:
    if fl.kind is Kind.BOOL:
        return bool(src.byte() & 1)
    if fl.kind is Kind.DOUBLE:
        return struct.unpack("<d", src.take(8))[0]
    if fl.kind is Kind.BYTES:
        return src.take(src.size())
    if fl.kind is Kind.STRING:
        raw = src.take(src.size())
        # Addresses as any bytes; text valid UTF-8, as a protobuf string must be.
        return raw if fl.render is not Render.NONE else raw.decode("utf-8", "replace").encode()
    width, signed = _RANGES[fl.kind]
    return int.from_bytes(src.take(width), "little", signed=signed)


def _value(fl: Field, src: _Src, depth: int) -> Any:
    if fl.kind is Kind.MESSAGE:
        sub = RECORDS[fl.message or ""]
        if not fl.repeated:
            return _row(sub, src, depth + 1)
        return [_row(sub, src, depth + 1) for _ in range(src.byte() % 4)]
    if fl.repeated:
        k = src.byte()
        return [_scalar(fl, src) for _ in range(150 if k >= 250 else k % 5)]
    return _scalar(fl, src)


def _row(rt: RecordType, src: _Src, depth: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for fl in rt.fields:
        if src.byte() & 1 and (depth < 2 or fl.kind is not Kind.MESSAGE):
            row[fl.name] = _value(fl, src, depth)
    return row


def _fill(msg: Any, rt: RecordType, d: dict[str, Any], raw: dict[str, Any]) -> None:
    """A protobuf message from a to_dicts() row (the raw row for -0.0, which to_dicts
    leaves out and proto3 writes), as tests/test_encode.py fills them."""
    for fl in rt.fields:
        if fl.kind is Kind.MESSAGE and fl.repeated:
            sub = RECORDS[fl.message or ""]
            for kd, kr in zip(d.get(fl.name, []), raw.get(fl.name, []), strict=True):
                _fill(getattr(msg, fl.name).add(), sub, kd, kr)
        elif fl.kind is Kind.MESSAGE:
            if fl.name in d:
                getattr(msg, fl.name).SetInParent()
                _fill(getattr(msg, fl.name), RECORDS[fl.message or ""], d[fl.name], raw[fl.name])
        elif fl.repeated:
            getattr(msg, fl.name).extend(d.get(fl.name, []))
        elif fl.name in d:
            setattr(msg, fl.name, d[fl.name])
        elif fl.kind is Kind.DOUBLE and fl.name in raw:
            setattr(msg, fl.name, raw[fl.name])


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ip_text(b: bytes) -> bytes:
    if len(b) == 16 and b[:12] == _MAPPED:
        return str(ipaddress.IPv4Address(b[12:])).encode()
    if len(b) in (4, 16):
        return str(ipaddress.ip_address(b)).encode()
    return b"?" + b.hex().encode() if b else b""


def _check_text(rt: RecordType, table: RecordTable, rows: list[dict[str, Any]]) -> None:
    for fl in rt.fields:
        col = table.cols.get(fl.name)
        if fl.render is Render.NONE or not isinstance(col, Ragged):
            continue
        raws = [r.get(fl.name, b"") for r in rows]
        want = ([_ip_text(b) for b in raws] if fl.render is Render.IP
                else [b.hex(":").encode() for b in raws])
        if render_column(col, fl.render).tolist() != want:
            raise AssertionError(f"{rt.name}.{fl.name}: address text differs")


def TestOneInput(data: bytes) -> None:
    src = _Src(data)
    rt = RECORDS[NAMES[src.byte() % len(NAMES)]]
    rows = [_row(rt, src, 0) for _ in range(src.byte() % 5)]
    table = RecordTable.from_rows(rt, rows, range(len(rows)))
    _check_text(rt, table, rows)
    want = []
    for d, raw in zip(table.to_dicts(), rows, strict=True):
        msg = CLASSES[rt.name]()
        _fill(msg, rt, d, raw)
        want.append(msg.SerializeToString())
    if encode_rows(table).tolist() != want:
        raise AssertionError(f"{rt.name}: encoded rows differ from SerializeToString()")
    stream, sizes = encode_delimited_sized(table)
    delimited = [_varint(len(m)) + m for m in want]
    if stream.tobytes() != b"".join(delimited) or sizes.tolist() != [len(m) for m in delimited]:
        raise AssertionError(f"{rt.name}: the delimited stream differs")


def seeds() -> list[bytes]:
    """One input per record type: four rows, every field set, values from a byte ramp."""
    ramp = bytes(range(1, 256, 2)) * 8
    return [bytes([i, 4]) + ramp for i in range(len(NAMES))]


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
