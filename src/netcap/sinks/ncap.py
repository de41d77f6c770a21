"""Audit-record file sink: one `<Type>.ncap[.gz]` per record type, Go Netcap format.

File = optional gzip around varint-length-delimited protobuf messages: a `Header`, then
records of that one type in packet order.

Two steps, so the expensive one can run in worker processes:
- `encode_batch` (pure): a decoded batch -> per record type, the encoded records, each
  batch compressed as its own gzip member;
- `NcapWriter.append` (the one writer): appends those bytes to the files in batch order.
A gzip file of several members is one stream to every gzip reader (RFC 1952; Go's
`compress/gzip` reads multistream by default, as do `gzip -d` and Python).

Files are written under a temporary name (`*.part`) and renamed on `close()`, so a file
with the final name is always complete; a run that fails or is interrupted removes its
`.part` files (one that is killed outright leaves them behind, never a final name).
A live capture writes final names at once and flushes them every few seconds instead
(`NcapWriter.live`): it has no end to wait for. Files are readable by owner and group
only (`files.py`): they hold headers, cookies and query strings as the traffic had them.
Compression is ISA-L (gzip-compatible, several times faster than zlib at the same ratio).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from isal import isal_zlib

from .. import __version__
from ..decode.batch import Decoded
from ..records.derive import add_payload_columns
from ..records.encode import encode_delimited, encode_delimited_array
from ..records.table import Ragged, RecordTable
from ..records.types import HEADER, RECORDS
from .files import create_private
from .options import Encoded, EncodeOptions

__all__ = ["EncodeOptions", "Encoded", "NcapWriter", "encode_batch",
           "encode_table", "header_bytes"]

def _gzip(data: bytes | memoryview | npt.NDArray[np.uint8], level: int) -> bytes:
    c = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
    out: bytes = c.compress(data) + c.flush()
    return out


def encode_batch(decoded: Decoded, opts: EncodeOptions) -> Encoded:
    """Every wanted record table of a batch, encoded (and gzip'd as one member)."""
    out: Encoded = {}
    for name, table in decoded.tables.items():
        if not opts.wanted(name):
            continue
        add_payload_columns(table, decoded.batch.data, opts.payload, opts.entropy)
        out[name] = encode_table(table, opts)
    return out


def encode_table(table: RecordTable, opts: EncodeOptions) -> tuple[bytes, int]:
    """One record table as file bytes (one gzip member) and its record count."""
    return file_bytes(encode_delimited_array(table), table.n, opts)


def file_bytes(body: bytes | npt.NDArray[np.uint8], count: int, opts: EncodeOptions
               ) -> tuple[bytes, int]:
    """Delimited records as file bytes (one gzip member unless uncompressed)."""
    if opts.compress:
        return _gzip(body, opts.level), count
    return (body.tobytes() if isinstance(body, np.ndarray) else bytes(body)), count


def header_bytes(record_type: str, source: str, payloads: bool, created_ns: int) -> bytes:
    """The delimited Header message for a file of `record_type`.

    `source` is a file name as Python holds it; bytes that are not UTF-8 (held as lone
    surrogates) become U+FFFD, since a protobuf string must be valid UTF-8."""
    text = os.fsencode(source).decode("utf-8", "replace")
    table = RecordTable(HEADER, 1, {
        "Created": np.array([created_ns], np.int64),
        "InputSource": Ragged.from_list([text.encode()]),
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
    records: int = 0


@dataclass
class NcapWriter:
    """Appends encoded batches to one file per record type.

    `live` (a live capture, which may be killed at any time): files get their final
    names at once, `append` takes *uncompressed* bytes (encode with compress=False)
    and holds them, and `flush` writes what is held as one gzip member per file and
    hands it to the OS. A killed process so leaves files readable up to its last
    flush, without the cost of a gzip member per small batch."""

    out_dir: str
    source: str
    opts: EncodeOptions = field(default_factory=EncodeOptions)
    files: dict[str, _File] = field(default_factory=dict)
    live: bool = False
    _held: dict[str, list[bytes]] = field(default_factory=dict)

    def write(self, decoded: Decoded) -> None:
        """Encode and append one batch (the single-process path)."""
        self.append(encode_batch(decoded, self.opts))

    def append(self, encoded: Encoded) -> None:
        for name, (data, count) in encoded.items():
            f = self.files.get(name) or self._open(name)
            f.records += count
            if self.live:
                self._held.setdefault(name, []).append(data)
            else:
                f.fh.write(data)

    def flush(self) -> None:
        """Live: write the records held so far and pass them to the OS."""
        for name, chunks in self._held.items():
            body = b"".join(chunks)
            if body:
                self.files[name].fh.write(_gzip(body, self.opts.level)
                                          if self.opts.compress else body)
        self._held = {}
        for f in self.files.values():
            f.fh.flush()

    def _open(self, name: str) -> _File:
        os.makedirs(self.out_dir, exist_ok=True)
        ext = ".ncap.gz" if self.opts.compress else ".ncap"
        final = os.path.join(self.out_dir, name + ext)
        part = final if self.live else final + ".part"
        fh = create_private(part)  # closed in close(); mode 0o640 (files.py)
        f = self.files[name] = _File(final, part, fh)
        head = header_bytes(name, self.source, self.opts.payload, time.time_ns())
        fh.write(_gzip(head, self.opts.level) if self.opts.compress else head)
        if self.live:
            fh.flush()  # a file that exists is readable, even if nothing else comes
        return f

    def close(self) -> dict[str, int]:
        """Finish every file; returns records written per type."""
        if self.live:
            self.flush()
        counts: dict[str, int] = {}
        for name, f in self.files.items():
            f.fh.close()
            if not self.live:
                os.replace(f.part, f.final)
            counts[name] = f.records
        self.files = {}
        return counts

    def abort(self) -> None:
        """Stop without publishing: the `.part` files are removed. (Live files keep
        what was captured: they are closed as they are.)"""
        if self.live:
            self.close()
            return
        for f in self.files.values():
            f.fh.close()
            with contextlib.suppress(OSError):
                os.unlink(f.part)
        self.files = {}
