"""The general per-packet decoder: every supported layer, one packet at a time.

This is the reference semantics; the code is in `_general.pyx` (compiled). The vectorized
fast path (`fast.py`, `_fast.pyx`) covers the common stack for speed and hands everything
else here; a test keeps the two equal on every corpus packet. Sans-I/O: bytes and a link
type in, records out.

Output per packet: a list of (record name, fields) in layer order, plus one decode-error
reason index (0: none). Field values are raw: ints, bools, bytes (addresses as raw bytes,
rendered to text only when written). Each layer record also carries the private key
'_poff' (payload start, relative to the packet) where the record has a PayloadSize.

Rule for bad input (as gopacket, which the Go Netcap uses): a layer whose header is cut
short or invalid yields no record and stops decoding; the outer layers already decoded
are kept. A payload cut short by the snaplen is not an error.
"""

from __future__ import annotations

from typing import Any

from ._general import decode_packet

__all__ = ["Rec", "decode_packet"]

Rec = tuple[str, dict[str, Any]]
