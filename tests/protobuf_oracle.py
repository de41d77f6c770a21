"""The protobuf library's side of the encoder tests (tests/test_encode.py) and of the
encoder's fuzz target (fuzz/fuzz_encode.py): a message filled from a table's to_dicts()
row, and the varint that frames a delimited stream. One copy, imported by both."""

from __future__ import annotations

from typing import Any

from netcap.records.schema import Kind, RecordType
from netcap.records.types import RECORDS


def fill(msg: Any, rt: RecordType, d: dict[str, Any], raw: dict[str, Any]) -> None:
    """Set a protobuf message from a to_dicts() row (raw row only for -0.0, see below)."""
    for fl in rt.fields:
        if fl.kind is Kind.MESSAGE and fl.repeated:
            sub = RECORDS[fl.message or ""]
            for kd, kr in zip(d.get(fl.name, []), raw.get(fl.name, []), strict=True):
                fill(getattr(msg, fl.name).add(), sub, kd, kr)
        elif fl.kind is Kind.MESSAGE:
            if fl.name in d:  # a singular message is written when set, even if empty
                getattr(msg, fl.name).SetInParent()
                fill(getattr(msg, fl.name), RECORDS[fl.message or ""], d[fl.name],
                     raw[fl.name])
        elif fl.repeated:
            getattr(msg, fl.name).extend(d.get(fl.name, []))
        elif fl.name in d:
            setattr(msg, fl.name, d[fl.name])
        elif fl.kind is Kind.DOUBLE and fl.name in raw:
            # to_dicts() leaves out falsy values, -0.0 included, but proto3 writes -0.0
            # (only +0.0 is the default); see test_to_dicts_keeps_negative_zero.
            setattr(msg, fl.name, raw[fl.name])


def varint(n: int) -> bytes:
    """n as a protobuf base-128 varint."""
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
