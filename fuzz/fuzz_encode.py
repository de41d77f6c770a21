"""Fuzz target: the compiled record encoder (netcap.records._encode). The input makes a
small table of one record type (the type, up to four rows, which fields each row sets and
their values: any ints, doubles from any 8 bytes, NaNs too, strings and bytes up to 550
bytes, addresses of any length, repeated lists of up to 150 items, sub-messages two
levels deep); every encoded message must equal the protobuf library's
SerializeToString() of the same record (filled by tests/protobuf_oracle.py, the oracle
tests/test_encode.py uses), and the delimited stream their concatenation with lengths,
on every input, also when the rows are encoded straight from their dicts
(`encode_records`). The address text is checked against Python's (ipaddress, bytes.hex), as
the protobuf messages get theirs from the same renderer. Anything else that comes out
(an exception, a mismatch, a sanitizer report) is a bug."""

from __future__ import annotations

import io
import ipaddress
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netcap.records._encode import (
    encode_delimited_sized,
    encode_records,
    encode_rows,
    render_column,
)
from netcap.records.proto import message_class
from netcap.records.schema import Kind, RecordType, Render
from netcap.records.table import Ragged, RecordTable
from netcap.records.types import RECORDS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from protobuf_oracle import fill, varint  # noqa: E402  (tests/: the oracle test_encode uses)

NAMES = sorted(RECORDS)
CLASSES = {name: message_class(name) for name in NAMES}
_RANGES = {Kind.INT32: (4, True), Kind.ENUM: (4, True), Kind.INT64: (8, True),
           Kind.UINT32: (4, False), Kind.UINT64: (8, False)}
_MAPPED = bytes(10) + b"\xff\xff"


class _Src:
    """The input, read front to back (zeros once it is used up), as a stream: a position
    above 256 would be an int object, a malloc in the sanitizer build, per byte read."""

    __slots__ = ("read",)

    def __init__(self, data: bytes) -> None:
        self.read = io.BytesIO(data).read  # shares the input's bytes

    def take(self, k: int) -> bytes:
        b = self.read(k)
        return b if len(b) == k else b.ljust(k, b"\0")

    def byte(self) -> int:
        b = self.read(1)  # one of the interpreter's cached one-byte objects
        return b[0] if b else 0

    def size(self) -> int:
        n = self.byte()
        return n if n < 200 else (n - 200) * 11  # up to 550: 2-byte lengths, long text


Reader = Callable[[_Src], Any]


def _double(src: _Src) -> float:
    return float(struct.unpack("<d", src.take(8))[0])


def _bytes(src: _Src) -> bytes:
    return src.take(src.size())


def _text(src: _Src) -> bytes:
    # text valid UTF-8, as a protobuf string must be
    return src.take(src.size()).decode("utf-8", "replace").encode()


def _int(width: int, signed: bool) -> Reader:
    return lambda src: int.from_bytes(src.take(width), "little", signed=signed)


def _reader(fl: Any) -> Reader | None:
    """How a value of the field is read from the input (None: a message)."""
    if fl.kind is Kind.MESSAGE:
        return None
    if fl.kind is Kind.BOOL:
        return lambda src: bool(src.byte() & 1)
    if fl.kind is Kind.DOUBLE:
        return _double
    if fl.kind is Kind.BYTES or (fl.kind is Kind.STRING and fl.render is not Render.NONE):
        return _bytes  # addresses as any bytes
    if fl.kind is Kind.STRING:
        return _text
    return _int(*_RANGES[fl.kind])


# Per record type, per field: (name, its reader or None for a message, repeated, the
# message's type name): the schema looked up once, not per value.
_PLANS = {name: [(fl.name, _reader(fl), fl.repeated, fl.message or "")
                 for fl in rt.fields] for name, rt in RECORDS.items()}


def _row(name: str, src: _Src, depth: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for field, read, repeated, sub in _PLANS[name]:
        if src.byte() & 1 and (depth < 2 or read is not None):
            if read is None:  # sub-messages: one, or a list of up to three
                row[field] = ([_row(sub, src, depth + 1) for _ in range(src.byte() % 4)]
                              if repeated else _row(sub, src, depth + 1))
            elif repeated:
                k = src.byte()
                row[field] = [read(src) for _ in range(150 if k >= 250 else k % 5)]
            else:
                row[field] = read(src)
    return row


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
    rows = [_row(rt.name, src, 0) for _ in range(src.byte() % 5)]
    table = RecordTable.from_rows(rt, rows, range(len(rows)))
    _check_text(rt, table, rows)
    want = []
    for d, raw in zip(table.to_dicts(), rows, strict=True):
        msg = CLASSES[rt.name]()
        fill(msg, rt, d, raw)
        want.append(msg.SerializeToString())
    if encode_rows(table).tolist() != want:
        raise AssertionError(f"{rt.name}: encoded rows differ from SerializeToString()")
    stream, sizes = encode_delimited_sized(table)
    delimited = [varint(len(m)) + m for m in want]
    if stream.tobytes() != b"".join(delimited) or sizes.tolist() != [len(m) for m in delimited]:
        raise AssertionError(f"{rt.name}: the delimited stream differs")
    if encode_records(rt, rows) != stream.tobytes():
        raise AssertionError(f"{rt.name}: the records encoded row by row differ")


def seeds() -> list[bytes]:
    """One input per record type: four rows, every field set, values from a byte ramp."""
    ramp = bytes(range(1, 256, 2)) * 8
    return [bytes([i, 4]) + ramp for i in range(len(NAMES))]


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
