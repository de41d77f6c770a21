"""How an audit-record type is declared.

Every record type is declared once (see `types.py`): its Netcap name, its `Header.Type`
enum value, and per field the Netcap field name, protobuf field number and type, a doc
line, how raw decoder bytes become the string Netcap writes (`render`), and whether the
field is safe to use as a metric label. The protobuf schema, the compiled encoder, the
JSON/CSV/table output of `net dump` and (later) metric labels are all derived from here.

Rules kept here: field numbers are unique and positive within a record; names are
unique; message-typed fields name a declared record; duplicates raise at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

__all__ = ["Field", "Kind", "RecordType", "Render"]


class Kind(Enum):
    """Protobuf scalar or message kind of a field (proto3 semantics)."""

    INT32 = "int32"
    INT64 = "int64"
    UINT32 = "uint32"
    UINT64 = "uint64"
    BOOL = "bool"
    DOUBLE = "double"
    STRING = "string"
    BYTES = "bytes"
    MESSAGE = "message"
    ENUM = "enum"

    @property
    def is_varint(self) -> bool:
        return self in _VARINT_KINDS

    @property
    def is_length_delimited(self) -> bool:
        return self in (Kind.STRING, Kind.BYTES, Kind.MESSAGE)


_VARINT_KINDS = frozenset({Kind.INT32, Kind.INT64, Kind.UINT32, Kind.UINT64, Kind.BOOL, Kind.ENUM})


class Render(Enum):
    """How raw address bytes held by the decoder become Netcap's text form."""

    NONE = "none"
    IP = "ip"  # 4 or 16 bytes -> dotted quad / RFC 5952 text (Go's net.IP.String)
    MAC = "mac"  # any length -> lower-case hex pairs joined by ':' (net.HardwareAddr)


class Field(NamedTuple):
    number: int
    name: str
    kind: Kind
    doc: str
    repeated: bool = False
    message: str | None = None  # record name, for Kind.MESSAGE
    render: Render = Render.NONE
    # Safe as a Prometheus label value: bounded set, no secrets, no identifiers.
    label: bool = False


@dataclass(frozen=True, slots=True)
class RecordType:
    name: str
    type_enum: int | None  # Header.Type value; None for nested-only messages
    doc: str
    fields: tuple[Field, ...]
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        numbers = [f.number for f in self.fields]
        names = [f.name for f in self.fields]
        if len(set(numbers)) != len(numbers) or min(numbers, default=1) < 1:
            raise ValueError(f"{self.name}: duplicate or invalid field numbers {numbers}")
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names")
        for f in self.fields:
            if (f.kind is Kind.MESSAGE) != (f.message is not None):
                raise ValueError(f"{self.name}.{f.name}: message kind needs a message name")
            if f.render is not Render.NONE and f.kind is not Kind.STRING:
                raise ValueError(f"{self.name}.{f.name}: only string fields are rendered")
        ordered = tuple(sorted(self.fields, key=lambda f: f.number))
        object.__setattr__(self, "fields", ordered)
        object.__setattr__(self, "by_name", {f.name: f for f in ordered})
