"""Protobuf message classes built at run time from the record declarations.

The schema text (`netcap.proto`, for the Go side and for readers) and the message classes
used to *read* audit-record files are both generated from `types.RECORDS`, so they cannot
drift from the declarations. Writing goes through the compiled encoder (`encode.py`);
a test checks that its bytes equal what these classes serialize.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .schema import Kind, RecordType
from .types import RECORDS, TYPE_ENUM

__all__ = ["PACKAGE", "message_class", "proto_text"]

PACKAGE = "types"  # the Go Netcap's protobuf package: messages are types.TCP, ...

# protobuf is imported when a message class is first needed (reading audit-record
# files), not at startup: its descriptor modules take ~12 ms to import, 2% of an export.
@cache
def _pool() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool

    fdp_ = descriptor_pb2.FieldDescriptorProto
    types = {
        Kind.INT32: fdp_.TYPE_INT32, Kind.INT64: fdp_.TYPE_INT64,
        Kind.UINT32: fdp_.TYPE_UINT32, Kind.UINT64: fdp_.TYPE_UINT64,
        Kind.BOOL: fdp_.TYPE_BOOL, Kind.DOUBLE: fdp_.TYPE_DOUBLE,
        Kind.STRING: fdp_.TYPE_STRING, Kind.BYTES: fdp_.TYPE_BYTES,
        Kind.MESSAGE: fdp_.TYPE_MESSAGE, Kind.ENUM: fdp_.TYPE_ENUM,
    }
    fdp = descriptor_pb2.FileDescriptorProto(
        name="netcap_py.proto", package=PACKAGE, syntax="proto3"
    )
    enum = fdp.enum_type.add(name="Type")
    for name, value in sorted(TYPE_ENUM.items(), key=lambda kv: kv[1]):
        enum.value.add(name="NC_" + name, number=value)
    for rt in RECORDS.values():
        msg = fdp.message_type.add(name=rt.name)
        for fl in rt.fields:
            fd = msg.field.add(name=fl.name, number=fl.number, type=types[fl.kind])
            fd.label = fdp_.LABEL_REPEATED if fl.repeated else fdp_.LABEL_OPTIONAL
            if fl.kind is Kind.MESSAGE:
                fd.type_name = f".{PACKAGE}.{fl.message}"
            elif fl.kind is Kind.ENUM:
                fd.type_name = f".{PACKAGE}.Type"
            fd.json_name = fl.name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return pool


@cache
def message_class(name: str) -> Any:
    """The generated protobuf class for record `name` (e.g. 'TCP')."""
    from google.protobuf import message_factory

    desc = _pool().FindMessageTypeByName(f"{PACKAGE}.{name}")
    return message_factory.GetMessageClass(desc)


def proto_text() -> str:
    """`netcap.proto` as declared here (proto3 text)."""
    lines = [
        "// Generated from src/netcap/records/types.py: do not edit.",
        'syntax = "proto3";',
        f"package {PACKAGE};",
        'option go_package = "github.com/dreadl0ck/netcap/types";',
        "",
        "enum Type {",
    ]
    for name, value in sorted(TYPE_ENUM.items(), key=lambda kv: kv[1]):
        lines.append(f"  NC_{name} = {value};")
    lines.append("}")
    for rt in RECORDS.values():
        lines += ["", *_message_text(rt)]
    return "\n".join(lines) + "\n"


def _message_text(rt: RecordType) -> list[str]:
    out = [f"// {rt.doc}", f"message {rt.name} {{"]
    for fl in rt.fields:
        typ = fl.message if fl.kind is Kind.MESSAGE else "Type" if fl.kind is Kind.ENUM else (
            fl.kind.value
        )
        rep = "repeated " if fl.repeated else ""
        out.append(f"  {rep}{typ} {fl.name} = {fl.number}; // {fl.doc}")
    out.append("}")
    return out
