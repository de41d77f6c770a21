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
from typing import NamedTuple

from ._base import U8, Buf, CaptureError, ParseResult
from ._walk import walk_pcap

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


class PcapHeader(NamedTuple):
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
    """Walks the records of a classic pcap chunk (the walk itself is _walk.walk_pcap)."""

    def __init__(self, header: PcapHeader) -> None:
        self.header = header
        self._hlen = 24 if header.modified else 16
        self._big = header.endian == ">"
        self._len_at = struct.Struct(header.endian + "I").unpack_from
        self._maxlen = min(max(header.snaplen, MAX_RECORD), MAX_RECORD_CAP)
        self._frac_ns = 1 if header.nanos else 1000
        self._linktype = header.linktype

    # Pickled to hand the walk to another process: the header is all the state.
    def __getstate__(self) -> PcapHeader:
        return self.header

    def __setstate__(self, header: PcapHeader) -> None:
        self.__init__(header)  # type: ignore[misc]

    def parse(self, buf: Buf, arr: U8, pos: int) -> ParseResult:
        """Find the complete records in buf[pos:]; see ParseResult.

        The walk follows the incl_len chain. It stops at the first incomplete record
        (where the next read starts, `need` its length) or at the first length above
        the maximum: a damaged record, but also when it is the incomplete one, since it
        must not make the reader wait for that many bytes."""
        cols, pos, need, over = walk_pcap(buf, pos, self._big, self._hlen, self._maxlen,
                                          self._frac_ns, self._linktype)
        stop = None if over < 0 else (pos, self._too_long(over))
        return ParseResult(cols, pos, need, stop)

    def _too_long(self, incl: int) -> str:
        return f"record length {incl} exceeds maximum {self._maxlen}"

    def cut_reason(self, tail: bytes) -> str:
        """Why reading stopped when the input ends with the partial record `tail`."""
        if len(tail) < self._hlen:
            return "cut in the middle of a record header"
        (incl,) = self._len_at(tail, 8)
        return f"cut in the middle of record data ({len(tail) - self._hlen} of {incl} bytes)"
