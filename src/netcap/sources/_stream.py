"""Byte streams under the capture parsers: a plain file, or gzip decompressed on the fly.

Both read in bounded pieces, so memory does not grow with the file. A damaged or
cut gzip stream does not raise: `read` returns what was decompressed before the
damage, then b"", and `error` says what went wrong. Limits: on a corrupt deflate
block up to `_OUT_PIECE` bytes decompressed just before it may be lost (the
decompressor discards the output of the call that fails), and damaged deflate
data can decode to wrong bytes before the damage is detected (gzip's CRC is only
checked at the end of a member). A gzip file that is merely cut short loses nothing.
"""

from __future__ import annotations

import io
from typing import BinaryIO, cast

from isal import igzip_lib

__all__ = ["GzipStream", "PlainStream", "Stream"]

_RAW_PIECE = 256 << 10  # compressed bytes read from the file at a time
_OUT_PIECE = 128 << 10  # decompressed bytes asked of the decompressor per call
_GZIP_MAGIC = b"\x1f\x8b"
# isal's stub declares IsalError as an instance, not a class; it is a class at runtime.
_DECOMPRESS_ERRORS: tuple[type[Exception], ...] = (
    cast(type[Exception], igzip_lib.IsalError),
    EOFError,
    ValueError,
)


class PlainStream:
    """An uncompressed file."""

    def __init__(self, f: io.BufferedReader) -> None:
        self._f = f
        self.error: str | None = None

    def read(self, n: int) -> bytes:
        try:
            return self._f.read(n)
        except OSError as e:
            self.error = f"read error: {e.strerror or e}"
            return b""

    def readinto(self, view: memoryview) -> int:
        """Fill (part of) view; 0 at the end of the file or after an error."""
        try:
            return int(self._f.readinto(view))
        except OSError as e:
            self.error = f"read error: {e.strerror or e}"
            return 0

    def close(self) -> None:
        self._f.close()


class GzipStream:
    """gzip (one or more members) decompressed with ISA-L, read in bounded pieces."""

    def __init__(self, f: BinaryIO, head: bytes = b"") -> None:
        self._f = f
        self._raw = head  # compressed bytes not yet given to the decompressor
        self._dec = igzip_lib.IgzipDecompressor(igzip_lib.DECOMP_GZIP)
        self._eof = False
        self.error: str | None = None

    def _fill_raw(self) -> bool:
        """Read more compressed input; False at end of file."""
        try:
            more = self._f.read(_RAW_PIECE)
        except OSError as e:
            self.error = f"read error: {e.strerror or e}"
            return False
        self._raw += more
        return bool(more)

    def _next_member(self) -> bool:
        """After a member's end: start the next one, or finish. False when done."""
        while True:
            # Zero padding after the last member is common (tape blocks) and
            # accepted by gzip(1); anything else must be another member.
            self._raw = self._raw.lstrip(b"\0")
            if len(self._raw) >= 2:
                break
            if not self._fill_raw():
                if self._raw and self.error is None:
                    self.error = "gzip stream damaged: trailing bytes after the last member"
                return False
        if self._raw[:2] != _GZIP_MAGIC:
            self.error = "gzip stream damaged: trailing data after the last member is not gzip"
            return False
        self._dec = igzip_lib.IgzipDecompressor(igzip_lib.DECOMP_GZIP)
        return True

    def read(self, n: int) -> bytes:
        out: list[bytes] = []
        got = 0
        while got < n and not self._eof and self.error is None:
            dec = self._dec
            if dec.eof:
                self._raw = dec.unused_data + self._raw
                if not self._next_member():
                    self._eof = True
                    break
                continue
            want = min(_OUT_PIECE, n - got)
            try:
                if dec.needs_input:
                    if not self._raw and not self._fill_raw():
                        if self.error is None:
                            self.error = "gzip stream cut short"
                        break
                    data, self._raw = self._raw, b""
                    piece = dec.decompress(data, want)
                else:
                    piece = dec.decompress(b"", want)
            except _DECOMPRESS_ERRORS as e:
                self.error = f"gzip stream damaged: {e}"
                break
            if piece:
                out.append(piece)
                got += len(piece)
        return b"".join(out)

    def readinto(self, view: memoryview) -> int:
        """Fill (part of) view; 0 at the end of the stream or after an error."""
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._f.close()


Stream = PlainStream | GzipStream
