"""Classic libpcap files: the file header and the record walk over one chunk.

Owns the four standard magics (microsecond and nanosecond resolution, either byte
order) and Alexey Kuznetsov's "modified" format (magic a1b2cd34, record headers 8
bytes longer: ifindex, protocol, pkt_type, pad). Limits: other variants that reuse
the a1b2cd34 magic with different record headers (Nokia, SuSE 6.3) are read as
Kuznetsov's; only major version 2 is accepted; the time zone and sigfigs header
fields are ignored (as libpcap does), so timestamps are taken as UTC.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..gather import gather_u8
from ._base import I64, U8, Buf, CaptureError, Columns, ParseResult

__all__ = ["MAX_RECORD", "PCAP_MAGICS", "PcapHeader", "PcapParser", "parse_header"]

# Records longer than max(snaplen, MAX_RECORD) are damage (wireshark's limit for most
# link types is 262144). MAX_RECORD_CAP bounds that even for a garbage snaplen, so a
# damaged length can never make the reader buffer gigabytes.
MAX_RECORD = 262144
MAX_RECORD_CAP = 16 << 20
FILE_HEADER_LEN = 24

# magic as stored -> (byte order, nanosecond timestamps, modified record header)
PCAP_MAGICS: dict[bytes, tuple[str, bool, bool]] = {
    b"\xd4\xc3\xb2\xa1": ("<", False, False),
    b"\xa1\xb2\xc3\xd4": (">", False, False),
    b"\x4d\x3c\xb2\xa1": ("<", True, False),
    b"\xa1\xb2\x3c\x4d": (">", True, False),
    b"\x34\xcd\xb2\xa1": ("<", False, True),
    b"\xa1\xb2\xcd\x34": (">", False, True),
}


@dataclass(frozen=True, slots=True)
class PcapHeader:
    endian: str  # struct/numpy byte-order character, "<" or ">"
    nanos: bool
    modified: bool
    version: tuple[int, int]
    snaplen: int
    linktype: int  # LINKTYPE_* with the FCS bits (28-31) masked off


def parse_header(path: str, head: bytes) -> PcapHeader:
    """Validate the 24-byte file header; raise CaptureError if unusable."""
    endian, nanos, modified = PCAP_MAGICS[head[:4]]
    if len(head) < FILE_HEADER_LEN:
        raise CaptureError(
            f"{path}: pcap file header cut short ({len(head)} of {FILE_HEADER_LEN} bytes)"
        )
    major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(endian + "HHiIII", head, 4)
    if major != 2:
        raise CaptureError(f"{path}: pcap major version {major} unsupported")
    return PcapHeader(
        endian=endian,
        nanos=nanos,
        modified=modified,
        version=(major, minor),
        snaplen=snaplen,
        # The upper 4 bits of the link-type field carry FCS length information.
        linktype=network & 0x0FFFFFFF,
    )


class PcapParser:
    """Walks the records of a classic pcap chunk."""

    def __init__(self, header: PcapHeader) -> None:
        self.header = header
        self._hlen = 24 if header.modified else 16
        self._len_at = struct.Struct(header.endian + "I").unpack_from
        self._maxlen = min(max(header.snaplen, MAX_RECORD), MAX_RECORD_CAP)
        self._u4 = np.dtype(header.endian + "u4")
        self._frac_ns = 1 if header.nanos else 1000
        self._linktype = header.linktype

    # Pickled to hand the walk to another process: the header is all the state.
    def __getstate__(self) -> PcapHeader:
        return self.header

    def __setstate__(self, header: PcapHeader) -> None:
        self.__init__(header)  # type: ignore[misc]

    def parse(self, buf: Buf, arr: U8, pos: int) -> ParseResult:
        """Find the complete records in buf[pos:]; see ParseResult."""
        n = len(buf)
        hlen = self._hlen
        len_at = self._len_at
        offs: list[int] = []
        ap = offs.append
        last = n - hlen  # a record header starting after this is incomplete
        need = hlen
        stop: tuple[int, str] | None = None
        # Hot loop (most of a pcap's reading time): only follow the incl_len chain, with
        # as little per record as possible (~25% faster than checking each record's end
        # here). The one record that may run past the buffer is the last one found.
        while pos <= last:
            ap(pos)
            pos += hlen + len_at(buf, pos + 8)[0]
        if pos > n:  # the last record is incomplete: it is where the next read starts
            pos = offs.pop()
            (incl,) = len_at(buf, pos + 8)
            # An oversized length must stop the walk here, not make the reader wait
            # for that many bytes; other oversized lengths are found vectorized below.
            if incl > self._maxlen:
                stop = (pos, self._too_long(incl))
            need = hlen + incl
        if not offs:
            return ParseResult(None, pos, need, stop)
        cols, bad = self._columns(arr, np.fromiter(offs, dtype=np.int64, count=len(offs)))
        if bad is not None:
            k, incl = bad
            return ParseResult(cols.head(k), offs[k], 0, (offs[k], self._too_long(incl)))
        return ParseResult(cols, pos, need, stop)

    def _too_long(self, incl: int) -> str:
        return f"record length {incl} exceeds maximum {self._maxlen}"

    def _columns(self, arr: U8, offs: I64) -> tuple[Columns, tuple[int, int] | None]:
        # ts_sec, ts_frac, incl_len, orig_len are the first four u32 of every header.
        hdr = gather_u8(arr, offs, 16).view(self._u4)
        incl = hdr[:, 2].astype(np.int64)
        n = int(offs.shape[0])
        cols = Columns(
            start=offs + self._hlen,
            caplen=incl,
            wirelen=hdr[:, 3].astype(np.int64),
            ts=hdr[:, 0].astype(np.int64) * 1_000_000_000
            + hdr[:, 1].astype(np.int64) * self._frac_ns,
            linktype=np.full(n, self._linktype, dtype=np.int32),
            iface=np.zeros(n, dtype=np.int32),
        )
        over = np.flatnonzero(incl > self._maxlen)
        if over.shape[0]:
            k = int(over[0])
            return cols, (k, int(incl[k]))
        return cols, None

    def cut_reason(self, tail: bytes) -> str:
        """Why reading stopped when the input ends with the partial record `tail`."""
        if len(tail) < self._hlen:
            return "cut in the middle of a record header"
        (incl,) = self._len_at(tail, 8)
        return f"cut in the middle of record data ({len(tail) - self._hlen} of {incl} bytes)"
