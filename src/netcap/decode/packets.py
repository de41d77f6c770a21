"""The packet decoder: every supported layer of every packet of a batch, compiled
(`_decode.pyx`), one pass per packet.

Layers: Ethernet, BSD loopback, Linux SLL/SLL2, raw IP, 802.11 (with or without
radiotap; data frames on through LLC/SNAP), 802.1Q/QinQ tags, LLC/SNAP, ARP, IPv4 with
options, IPv6 with extension header chains (fragment headers give IPv6Fragment records),
TCP with options, UDP, ICMPv4, ICMPv6 and SCTP (its common header). An IP fragment (not
an atomic one) stops at the IP layer: its transport is decoded from the reassembled
datagram (reassembly/ip.py).

`decode_packets(batch, columns)` returns one `RecordTable` per record type that occurred,
rows in packet order, with only the columns `columns` asks for, and per packet one
decode-error reason index (errors.py; 0: none). Field values are raw: ints, bools, bytes
(addresses as raw bytes, rendered to text only when written). A table whose record has a
PayloadSize also carries the private column '_poff' (where the payload starts in the
batch buffer).

Rule for bad input (as gopacket, which the Go Netcap uses): a layer whose header is cut
short or invalid yields no record and stops decoding; the outer layers already decoded
are kept. A payload cut short by the snaplen is not an error; TCP options cut by it are
(`tcp/options_truncated`), and the record keeps the fixed 20 bytes' fields.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._decode import decode_packets

__all__ = ["Columns", "decode_packets"]

# Per record type, the columns a consumer reads (None: all of them). Rows (and `pkt`)
# are always there; a type missing from the mapping gets no columns but its Timestamp.
Columns = Mapping[str, frozenset[str]] | None
