"""Audit-record file sink: one `<Type>.ncap[.gz]` per record type, Go Netcap format.

File = optional gzip around varint-length-delimited protobuf messages: a `Header`, then
records of that one type in packet order. Files are written under a temporary name and
renamed on `close()`, so a file with the final name is always complete; an interrupted
run leaves only `*.part` files behind.

Compression uses ISA-L (gzip-compatible, several times faster than zlib at the same
ratio); it releases the GIL, so a later change can overlap it with decoding.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from isal import isal_zlib

from .. import __version__
from ..decode.batch import Decoded
from ..records.derive import add_payload_columns
from ..records.encode import encode_delimited
from ..records.table import RecordTable
from ..records.types import HEADER, RECORDS

__all__ = ["NcapWriter", "header_bytes"]


def header_bytes(record_type: str, source: str, payloads: bool, created_ns: int) -> bytes:
    """The delimited Header message for a file of `record_type`."""
    import numpy as np

    from ..records.table import Ragged

    table = RecordTable(HEADER, 1, {
        "Created": np.array([created_ns], np.int64),
        "InputSource": Ragged.from_list([source.encode()]),
        "Type": np.array([RECORDS[record_type].type_enum or 0], np.int64),
        "Version": Ragged.from_list([__version__.encode()]),
        "ContainsPayloads": np.array([payloads], np.bool_),
    })
    return encode_delimited(table)


@dataclass
class _File:
    final: str
    part: str
    fh: BinaryIO
    gz: object | None  # isal_zlib compress object
    records: int = 0


@dataclass
class NcapWriter:
    out_dir: str
    source: str
    compress: bool = True
    payload: bool = False
    entropy: bool = False
    include: frozenset[str] | None = None  # record types to write (None: all)
    exclude: frozenset[str] = frozenset()
    level: int = 1
    files: dict[str, _File] = field(default_factory=dict)

    def wanted(self, name: str) -> bool:
        return (self.include is None or name in self.include) and name not in self.exclude

    def write(self, decoded: Decoded) -> None:
        for name, table in decoded.tables.items():
            if not self.wanted(name):
                continue
            add_payload_columns(table, decoded.batch.data, self.payload, self.entropy)
            self._append(name, encode_delimited(table), table.n)

    def _append(self, name: str, payload: bytes, count: int) -> None:
        f = self.files.get(name)
        if f is None:
            f = self._open(name)
        f.records += count
        self._emit(f, payload)

    def _open(self, name: str) -> _File:
        os.makedirs(self.out_dir, exist_ok=True)
        ext = ".ncap.gz" if self.compress else ".ncap"
        final = os.path.join(self.out_dir, name + ext)
        part = final + ".part"
        fh = open(part, "wb")  # noqa: SIM115 - closed in close()
        gz = isal_zlib.compressobj(self.level, isal_zlib.DEFLATED, 31) if self.compress else None
        f = _File(final, part, fh, gz)
        self.files[name] = f
        self._emit(f, header_bytes(name, self.source, self.payload, time.time_ns()))
        return f

    @staticmethod
    def _emit(f: _File, data: bytes) -> None:
        if f.gz is not None:
            data = f.gz.compress(data)  # type: ignore[attr-defined]
        if data:
            f.fh.write(data)

    def close(self) -> dict[str, int]:
        """Finish every file; returns records written per type."""
        counts: dict[str, int] = {}
        for name, f in self.files.items():
            if f.gz is not None:
                f.fh.write(f.gz.flush())  # type: ignore[attr-defined]
            f.fh.close()
            os.replace(f.part, f.final)
            counts[name] = f.records
        self.files = {}
        return counts

    def abort(self) -> None:
        for f in self.files.values():
            f.fh.close()
        self.files = {}
