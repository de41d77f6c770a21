"""The stream analyzers by name: their ports, the record types they make and the TCP
columns their segment pick reads. Constants only, apart from the stream stage
(`streams.py`, compiled), so a job that runs no stream analyzer (counting alone, or
records read from files) decides so without loading it."""

from __future__ import annotations

__all__ = ["ALL_KINDS", "FINGERPRINTS", "KIND_RECORDS", "STREAM_PORTS", "STREAM_RECORDS",
           "TCP_SEGMENT_COLUMNS"]

# TCP port -> the stream analyzer for it. TLS is also recognized on any other port by
# its first bytes (a handshake record: 0x16 0x03 0x00-0x04).
_TLS_PORTS = (443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 4433, 5061, 5223, 5228,
              8443, 10443)
_HTTP_PORTS = (80, 81, 3128, 8000, 8008, 8080, 8081, 8888)
_SSH_PORTS = (22, 2222)
STREAM_PORTS: dict[int, str] = {53: "DNS", **{p: "TLS" for p in _TLS_PORTS},
                                **{p: "HTTP" for p in _HTTP_PORTS},
                                **{p: "SSH" for p in _SSH_PORTS}}
# The record types of each stream analyzer (it runs when one of them is wanted).
KIND_RECORDS: dict[str, tuple[str, ...]] = {
    "DNS": ("DNS",), "TLS": ("TLSClientHello", "TLSServerHello"), "HTTP": ("HTTP",),
    "SSH": ("SSH",)}
STREAM_RECORDS = frozenset(n for names in KIND_RECORDS.values() for n in names)
TCP_SEGMENT_COLUMNS = frozenset({"SeqNum", "SYN", "FIN", "RST", "_poff", "PayloadSize"})
ALL_KINDS = frozenset(KIND_RECORDS)
FINGERPRINTS = frozenset({"ja3", "ja4"})
