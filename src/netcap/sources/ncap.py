"""Reading audit-record files (`.ncap`, `.ncap.gz`), ours or the Go Netcap's.

gzip is detected by its magic bytes, not the name. Records are parsed with protobuf
classes generated from the declarations. Damage (a cut gzip stream, a length running
past the end, an unparsable message, an unknown record type) ends the iteration with an
`NcapError` *after* every record before the damage has been yielded, so a reader never
loses what was readable. Where inflating fails, the output of the failing call is
recovered by decompressing that region again with zlib byte by byte (regular files
only), so records are yielded up to the damaged byte, not up to the last good chunk.
Concatenated gzip members (the writer emits one per batch) are one stream.

A file is untrusted input: memory stays bounded whatever it holds. Inflating is done
_CHUNK bytes at a time (a gzip bomb costs time, not memory), and a record longer than
_MAX_RECORD is passed over unread and counted (`skipped`). A record of length 0 (every
field at its default: no Timestamp, which every netcap record has) is no record; runs of
them, the cheapest gzip bomb (a 20 KB file inflates to 20 million), are passed over at
the speed of a byte search and counted (`empty`), not parsed one by one.
`records/messages.py` turns the records into columns for the metrics.
"""

from __future__ import annotations

import os
import re
import stat
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from google.protobuf.message import DecodeError as ProtoDecodeError
from isal import isal_zlib

from ..records.proto import message_class
from ..records.types import RECORDS, TYPE_ENUM

__all__ = ["EMPTY", "TOO_LARGE", "NcapError", "NcapReader"]

# The decode-error reasons (decode/errors.py) of records passed over: over _MAX_RECORD,
# and of length 0.
TOO_LARGE = "ncap/record_too_large"
EMPTY = "ncap/empty_record"
_NONZERO = re.compile(rb"[^\x00]")

_CHUNK = 1 << 20
# Records are at most a few hundred KiB (a packet, an HTTP head): a longer one is passed
# over and counted (`skipped`), so a crafted file cannot make a record cost gigabytes.
_MAX_RECORD = 4 << 20
_SALVAGE_PIECE = 1 << 14  # inflates to at most ~16 MiB at once
_TYPE_NAMES = {v: k for k, v in TYPE_ENUM.items()}
# isal's stub declares `error` as an instance; at run time it is an exception class.
_INFLATE_ERRORS = (zlib.error, cast("type[Exception]", isal_zlib.error))


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
        try:
            # peek, not read + seek: a pipe (`-read /dev/stdin`) cannot seek.
            magic = self._fh.peek(2)[:2]
        except OSError as e:
            self._fh.close()
            raise NcapError(f"{path}: cannot read: {e.strerror or e}") from None
        self._inflate: Any = (
            isal_zlib.decompressobj(31) if magic == b"\x1f\x8b" else None
        )
        self._buf = bytearray()
        self._pos = 0  # start of unread bytes in _buf (compacted when refilling)
        self._eof = False
        self._inflated = 0  # decompressed bytes appended to _buf so far
        self._tail = b""  # compressed input not yet inflated
        self.skipped = 0  # records over _MAX_RECORD, passed over unread
        self.empty = 0  # records of length 0, passed over
        self._damage: str | None = None  # raised once the readable bytes are used up
        try:
            raw = self._next_raw(header=True)
        except NcapError:
            self._fh.close()
            raise
        if raw is None:
            self._fh.close()
            raise NcapError(f"{path}: empty file, no audit-record header")
        header_cls = message_class("Header")
        self.header = header_cls()
        try:
            self.header.ParseFromString(raw)
        except ProtoDecodeError:
            self._fh.close()
            raise NcapError(f"{path}: not an audit-record file (bad header)") from None
        name = _TYPE_NAMES.get(self.header.Type)
        if name is None or name not in RECORDS or name == "Header":
            self._fh.close()
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
            if not raw:
                self.empty += 1 + self._skip_zeros()
                continue
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
        """Read more decompressed bytes into the buffer (at most _CHUNK at a time, so a
        gzip bomb costs work, not memory); False at end of input. Damage raises
        NcapError, but only once every byte decoded before it has been consumed."""
        if self._eof:
            if self._damage is not None:
                raise NcapError(f"{self.path}: {self._damage} after {self.count} records"
                                f" (offset {self.offset})")
            return False
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        if self._inflate is None:
            chunk = self._read()
            if not chunk:
                self._eof = True
                return False
            self._buf += chunk
            return True
        had = len(self._buf)
        try:
            while True:
                if not self._tail:
                    self._tail = self._read()
                    if not self._tail:
                        self._eof = True
                        if not self._inflate.eof:
                            self._damage = "compressed stream cut short"
                            return self._fill()
                        return False
                if self._inflate_some():
                    return True
        except _INFLATE_ERRORS as e:
            # The failing call's output is lost; recover what decodes before the damage.
            self._buf += self._salvage(self._inflated)
            self._eof = True
            self._damage = f"corrupt compressed data ({e})"
            return len(self._buf) > had or self._fill()

    def _read(self) -> bytes:
        try:
            return self._fh.read(_CHUNK)
        except OSError as e:
            raise NcapError(f"{self.path}: read error: {e.strerror or e}") from None

    def _inflate_some(self) -> bool:
        """Inflate at most _CHUNK bytes of the pending input into the buffer; False if
        none came out (more input needed). Concatenated gzip members (as `cat a.gz b.gz`
        makes) continue the stream."""
        if self._inflate.eof:
            self._inflate = isal_zlib.decompressobj(31)
        out = self._inflate.decompress(self._tail, _CHUNK)
        self._tail = (self._inflate.unused_data if self._inflate.eof
                      else self._inflate.unconsumed_tail)
        self._buf += out
        self._inflated += len(out)
        return bool(out)

    def _salvage(self, skip: int) -> bytes:
        """The decompressed bytes past `skip` that decode before the damage, found by
        decompressing the file again with zlib (whose state can be copied) and replaying
        the failing piece byte by byte. Regular files only: a pipe cannot be read twice."""
        try:
            if not stat.S_ISREG(os.fstat(self._fh.fileno()).st_mode):
                return b""
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return b""
        out = bytearray()
        done = 0  # decompressed bytes seen

        def keep(data: bytes) -> None:
            nonlocal done
            if done + len(data) > skip:
                out.extend(data[max(0, skip - done) :])
            done += len(data)

        d: Any = zlib.decompressobj(31)
        with fh:
            while piece := fh.read(_SALVAGE_PIECE):
                snapshot = d.copy()
                try:
                    d, outs = _gunzip(d, piece)
                except zlib.error:
                    d = snapshot
                    for i in range(len(piece)):
                        try:
                            d, outs = _gunzip(d, piece[i : i + 1])
                        except zlib.error:
                            return bytes(out)
                        for o in outs:
                            keep(o)
                    continue
                for o in outs:
                    keep(o)
        return bytes(out)

    def _next_raw(self, header: bool = False) -> bytes | None:
        """The next record's bytes. A record longer than _MAX_RECORD (no record netcap
        or the Go Netcap writes comes near it) is passed over without being held in
        memory and counted in `skipped`; as the first record (the Header) it is damage."""
        while True:
            length, head = self._length_prefix()
            if length is None:
                return None
            if length <= _MAX_RECORD:
                break
            if header:
                raise NcapError(f"{self.path}: not an audit-record file (header length"
                                f" {length})")
            self._skip(head, length)
        pos = self._pos + head
        while len(self._buf) < pos + length:
            if not self._fill():
                raise NcapError(f"{self.path}: file cut in the middle of record"
                                f" {self.count + 1} at offset {self.offset}")
            pos = self._pos + head
        raw = bytes(self._buf[pos : pos + length])
        self._pos = pos + length
        self.offset += head + length
        return raw

    def _length_prefix(self) -> tuple[int | None, int]:
        """The next record's length (None at the end of input) and the prefix's size."""
        pos, length, shift = self._pos, 0, 0
        while True:  # base-128 varint length prefix
            while pos >= len(self._buf):
                before = pos - self._pos
                if not self._fill():
                    if before == 0:
                        return None, 0
                    raise NcapError(f"{self.path}: cut in a record length at offset"
                                    f" {self.offset} after {self.count} records")
                pos = self._pos + before
            b = self._buf[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return length, pos - self._pos
            if shift > 63:
                raise NcapError(f"{self.path}: bad record length at offset {self.offset}")

    def _skip_zeros(self) -> int:
        """Pass over the zero bytes that follow (each a record of length 0, by a search
        in C, not a record at a time); returns how many."""
        n = 0
        while True:
            m = _NONZERO.search(self._buf, self._pos)
            end = len(self._buf) if m is None else m.start()
            n += end - self._pos
            self.offset += end - self._pos
            self._pos = end
            if m is not None or not self._fill():
                return n

    def _skip(self, head: int, length: int) -> None:
        """Pass over a record of `length` bytes after a `head`-byte prefix, a buffer at
        a time (a cut file ends in NcapError, as for a record read)."""
        self._pos += head
        left = length
        while True:
            take = min(left, len(self._buf) - self._pos)
            self._pos += take
            left -= take
            if not left:
                break
            if not self._fill():
                raise NcapError(f"{self.path}: file cut in the middle of record"
                                f" {self.count + 1} at offset {self.offset}")
        self.offset += head + length
        self.skipped += 1


def _gunzip(d: Any, data: bytes) -> tuple[Any, list[bytes]]:
    """Feed `data` to a zlib gzip decompressor, starting new members as they come."""
    if d.eof:
        d = zlib.decompressobj(31)
    outs = [d.decompress(data)]
    while d.eof and d.unused_data:
        rest = d.unused_data
        d = zlib.decompressobj(31)
        outs.append(d.decompress(rest))
    return d, outs


def is_ncap(path: str) -> bool:
    """True for a file that names itself an audit-record file (used to pick a reader)."""
    base = os.path.basename(path)
    return base.endswith(".ncap") or base.endswith(".ncap.gz")

