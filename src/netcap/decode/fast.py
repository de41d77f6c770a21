"""The fast path for the common stack: a whole batch at once, compiled (`_fast.pyx`).

Covers Ethernet (up to two VLAN tags), BSD loopback, Linux SLL/SLL2 and raw-IP links,
IPv4 (options; fragments stop at IP), IPv6 with up to 9 hop-by-hop, routing or
destination-options headers, and complete TCP (with options), UDP, ICMPv4 and ICMPv6
headers; IP packets carrying another protocol, and later fragments, are complete at the
IP layer. Every packet outside that (IPv6 fragment and AH headers, ARP, LLC, other link
types, or anything malformed or cut short) is left to the general decoder, which owns the
error semantics; the fast path only ever takes packets it decodes exactly as the general
path would (a test checks this on every corpus packet).

`decode_fast(batch, columns)` returns `FastResult(done, tables)`: per packet whether it
was decoded here, and one `RecordTable` per record type, rows in packet order, with only
the columns `columns` asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._fast import FastResult, decode_fast, option_lists

__all__ = ["Columns", "FastResult", "decode_fast"]

# Per record type, the columns a consumer reads (None: all of them). Rows (and `pkt`)
# are always there; a type missing from the mapping gets no columns but its Timestamp.
Columns = Mapping[str, frozenset[str]] | None


class _Reader:
    """The buffer an option walk reads (the face of `_tlv_options`)."""

    def __init__(self, buf: npt.NDArray[np.uint8]) -> None:
        self.buf = buf


@dataclass(slots=True)
class _Options:
    bad: npt.NDArray[np.bool_]  # per list: malformed


def _tlv_options(r: _Reader, rows: npt.NDArray[np.int64], start: npt.NDArray[np.int64],
                 stop: npt.NDArray[np.int64], keep: bool = True) -> _Options:
    """The option lists buf[start:stop] (rows: their packets, unused here) checked as
    the fast path checks them; without `keep` nothing but `bad` is collected."""
    return _Options(option_lists(r.buf, start, stop, keep)[0])
