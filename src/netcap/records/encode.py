"""proto3 encoding of record tables: the face of the compiled encoder (`_encode.pyx`).

A table's rows become protobuf messages in one C pass per table, written straight into
one buffer, byte-identical to the protobuf library's `SerializeToString()` (tested),
which is how the Go Netcap writes too. How fields are written (proto3 defaults skipped,
packed repeated scalars, sub-messages, addresses rendered as text) is described there.
Records that come as dicts (the stream analyzers') are encoded row by row to the same
bytes (`encode_records`), without a table made of them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._encode import encode_delimited_sized, encode_records, encode_rows, varint_matrix
from .table import RecordTable

__all__ = ["encode_delimited", "encode_delimited_array", "encode_delimited_sized",
           "encode_records", "encode_rows", "varint_matrix"]


def encode_delimited(table: RecordTable) -> bytes:
    """Rows as a varint-length-delimited stream, the body of an audit-record file."""
    return encode_delimited_array(table).tobytes()


def encode_delimited_array(table: RecordTable) -> npt.NDArray[np.uint8]:
    """`encode_delimited` as a numpy byte array (no copy into a bytes object)."""
    return encode_delimited_sized(table)[0]
