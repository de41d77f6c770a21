"""Reading audit-record files (`.ncap`, `.ncap.gz`), ours or the Go Netcap's.

gzip is detected by its magic bytes, not the name. Records are parsed with protobuf
classes generated from the declarations. Damage (a cut gzip stream, a length running
past the end, an unparsable message, an unknown record type) ends the iteration with an
`NcapError` *after* every record before the damage has been yielded, so a reader never
loses what was readable.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from google.protobuf.message import DecodeError as ProtoDecodeError
from isal import isal_zlib

from ..records.proto import message_class
from ..records.types import RECORDS, TYPE_ENUM

__all__ = ["NcapError", "NcapReader"]

_CHUNK = 1 << 20
_MAX_RECORD = 64 << 20  # a larger length prefix is damage, not a record
_TYPE_NAMES = {v: k for k, v in TYPE_ENUM.items()}


class NcapError(Exception):
    """An audit-record file is unreadable from some point on; str() is one line."""


class NcapReader:
    """Iterate the records of one audit-record file.

    `header` (a protobuf Header message) and `record_type` are set by the constructor,
    which raises NcapError if the file has no readable Header.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0  # offset of the next record in the (decompressed) stream
        self.count = 0
        try:
            self._fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise NcapError(f"{path}: cannot open: {e.strerror or e}") from None
        magic = self._fh.read(2)
        self._fh.seek(0)
        self._inflate: Any = (
            isal_zlib.decompressobj(31) if magic == b"\x1f\x8b" else None
        )
        self._buf = bytearray()
        self._pos = 0  # start of unread bytes in _buf (compacted when refilling)
        self._eof = False
        raw = self._next_raw()
        if raw is None:
            raise NcapError(f"{path}: empty file, no audit-record header")
        header_cls = message_class("Header")
        self.header = header_cls()
        try:
            self.header.ParseFromString(raw)
        except ProtoDecodeError:
            raise NcapError(f"{path}: not an audit-record file (bad header)") from None
        name = _TYPE_NAMES.get(self.header.Type)
        if name is None or name not in RECORDS or name == "Header":
            raise NcapError(
                f"{path}: record type {self.header.Type} is not supported by this version"
            )
        self.record_type = name
        self._cls = message_class(name)

    def __enter__(self) -> NcapReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    def __iter__(self) -> Iterator[Any]:
        while True:
            start = self.offset
            raw = self._next_raw()
            if raw is None:
                return
            msg = self._cls()
            try:
                msg.ParseFromString(raw)
            except ProtoDecodeError:
                raise NcapError(
                    f"{self.path}: record {self.count + 1} at offset {start} is corrupt"
                ) from None
            self.count += 1
            yield msg

    # -- framing -----------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read more decompressed bytes into the buffer; False at end of input."""
        if self._eof:
            return False
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        try:
            chunk = self._fh.read(_CHUNK)
        except OSError as e:
            raise NcapError(f"{self.path}: read error: {e.strerror or e}") from None
        if self._inflate is None:
            if not chunk:
                self._eof = True
                return False
            self._buf += chunk
            return True
        try:
            if chunk:
                self._buf += self._inflate.decompress(chunk)
                # Concatenated gzip members (as `cat a.gz b.gz` makes) continue the stream.
                while self._inflate.eof and self._inflate.unused_data:
                    rest = self._inflate.unused_data
                    self._inflate = isal_zlib.decompressobj(31)
                    self._buf += self._inflate.decompress(rest)
                return True
            self._eof = True
            if not self._inflate.eof:
                raise NcapError(
                    f"{self.path}: compressed stream cut short after {self.count} records"
                    f" (offset {self.offset})"
                )
            return False
        except (zlib.error, isal_zlib.error) as e:
            raise NcapError(
                f"{self.path}: corrupt compressed data after {self.count} records: {e}"
            ) from None

    def _next_raw(self) -> bytes | None:
        pos, length, shift = self._pos, 0, 0
        while True:  # base-128 varint length prefix
            while pos >= len(self._buf):
                before = pos - self._pos
                if not self._fill():
                    if before == 0:
                        return None
                    raise NcapError(f"{self.path}: cut in a record length at offset"
                                    f" {self.offset} after {self.count} records")
                pos = self._pos + before
            b = self._buf[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift > 63:
                raise NcapError(f"{self.path}: bad record length at offset {self.offset}")
        if length > _MAX_RECORD:
            raise NcapError(f"{self.path}: record length {length} at offset {self.offset}"
                            " is implausible (corrupt file)")
        head = pos - self._pos
        while len(self._buf) < pos + length:
            if not self._fill():
                raise NcapError(f"{self.path}: file cut in the middle of record"
                                f" {self.count + 1} at offset {self.offset}")
            pos = self._pos + head
        raw = bytes(self._buf[pos : pos + length])
        self._pos = pos + length
        self.offset += head + length
        return raw


def is_ncap(path: str) -> bool:
    """True for a file that names itself an audit-record file (used to pick a reader)."""
    base = os.path.basename(path)
    return base.endswith(".ncap") or base.endswith(".ncap.gz")
