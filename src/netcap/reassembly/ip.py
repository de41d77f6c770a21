"""IP defragmentation (IPv4 and IPv6): fragments in, whole datagrams out.

The decoders stop at the IP layer of a fragment (no transport header is read from a
first fragment any more: the transport and everything above it see the whole
datagram, as tshark does by default). Workers pick the fragments of their batch
(`fragments`); the parent's `Defragmenter` holds them across batches in input order and
hands back each datagram once its last hole is filled, as a raw IP packet
(`Datagram`) that the pipeline decodes from the transport layer up, at the time and
packet number of the fragment that completed it.

Rules kept here:
- a datagram is keyed by (version, source, destination, identification, protocol);
- overlaps: the first copy of a byte wins (as in TCP reassembly here, and as tshark
  keeps the earlier first fragment); overlapping bytes that differ are counted
  (`fragment_overlap`); a second, different end of datagram, or data past the end,
  is counted once per datagram (`fragment_inconsistent`): the first end holds and
  bytes past it are cut off (tshark delivers such a datagram too);
- a datagram longer than 65,535 bytes is dropped (`fragment_too_big`);
- incomplete datagrams time out after `timeout_ns` of packet time (`fragment_timeout`,
  counted once per datagram; Linux's default ipfrag_time is 30 s) and are dropped when
  more than `max_datagrams` wait or their bytes pass `max_bytes`, oldest first
  (`fragment_evicted`). Memory is bounded by those two limits;
- an IPv4 datagram whose length with its header passes 65,535 bytes has no header to
  carry it: dropped when complete (`fragment_too_big`).

The per-fragment work is compiled (_ip.pyx): picking a batch's fragments, and the
defragmenter's state and loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ..decode.batch import Decoded, decode_batch
from ..decode.linktypes import LT
from ..decode.packets import Columns
from ..gather import gather_u8
from ..records.table import Ragged
from ..sources.batch import PacketBatch
from . import _ip

__all__ = ["FRAGMENT_COLUMNS", "Datagram", "Defragmenter", "Fragment", "decode_datagrams",
           "fragments", "ipv4_fragments"]

# Columns the fragment pick reads (decoding for metrics alone must build them).
FRAGMENT_COLUMNS: dict[str, frozenset[str]] = {
    "IPv4": frozenset({"Id", "Flags", "FragOffset", "Protocol", "IHL", "_poff", "PayloadSize"}),
    "IPv6": frozenset({"_poff", "PayloadSize"}),
    "IPv6Fragment": frozenset({"Identification", "FragmentOffset", "MoreFragments",
                               "NextHeader", "SrcIP", "DstIP", "_poff"}),
}
MAX_DATAGRAM = 65535


class Fragment(NamedTuple):
    """One fragment (a tuple: workers send lists of them to the parent, and tuples
    pickle several times faster than dataclasses)."""

    version: int
    src: bytes
    dst: bytes
    ident: int
    proto: int
    offset: int  # bytes
    more: bool
    data: bytes
    ts: int
    pkt: int  # packet number in the input
    wire: int  # the fragment's frame length on the wire


class Datagram(NamedTuple):
    """A reassembled datagram as a raw IP packet (LINKTYPE_RAW)."""

    packet: bytes
    ts: int  # packet time of the fragment that completed it
    pkt: int  # its packet number
    wire: int  # frame bytes of all its fragments on the wire
    fragments: int


def ipv4_fragments(flags: npt.NDArray[np.int64], offset: npt.NDArray[np.int64]
                   ) -> npt.NDArray[np.bool_]:
    """Which IPv4 rows (their Flags and FragOffset) are fragments: More Fragments set or
    an offset past 0. (An atomic fragment, offset 0 and none to come, is a whole
    datagram.) The one rule for the pick below and for the metrics."""
    frag: npt.NDArray[np.bool_] = ((flags & 1) != 0) | (offset > 0)
    return frag


def fragments(d: Decoded) -> list[Fragment] | None:
    """The IPv4 and IPv6 fragments of a decoded batch, in input order (atomic fragments,
    offset 0 with no more to come, are whole datagrams and are decoded as such). Rows
    are picked vectorized; the tuples are made in one compiled loop (_ip.build)."""
    b = d.batch
    cols: list[list[Any]] = []  # per version: build()'s arguments, as arrays
    v4 = d.tables.get("IPv4")
    if v4 is not None and v4.pkt is not None and v4.n:
        flags = np.asarray(v4.cols["Flags"])
        off = np.asarray(v4.cols["FragOffset"])
        rows = np.flatnonzero(ipv4_fragments(flags, off))
        if rows.size:
            poff = np.asarray(v4.cols["_poff"])[rows]
            # Addresses straight from the header (for metrics alone, the table has no
            # address columns: building them for every packet would cost more).
            hdr = poff - np.asarray(v4.cols["IHL"])[rows] * 4
            at = np.arange(rows.size, dtype=np.int64) * 8
            pkt = v4.pkt[rows]
            cols.append([np.full(rows.size, 4), gather_u8(b.data, hdr + 12, 8).reshape(-1),
                         at, np.full(rows.size, 4), at + 4, np.full(rows.size, 4),
                         np.asarray(v4.cols["Id"])[rows], np.asarray(v4.cols["Protocol"])[rows],
                         off[rows] * 8, (flags[rows] & 1).astype(np.uint8), poff,
                         poff + np.maximum(np.asarray(v4.cols["PayloadSize"])[rows], 0), pkt])
    v6f, v6 = d.tables.get("IPv6Fragment"), d.tables.get("IPv6")
    if v6f is not None and v6f.pkt is not None and v6f.n and v6 is not None \
            and v6.pkt is not None:
        fo = np.asarray(v6f.cols["FragmentOffset"])
        more = np.asarray(v6f.cols["MoreFragments"], np.bool_)
        rows = np.flatnonzero((fo > 0) | more)
        if rows.size:
            src, dst = v6f.cols["SrcIP"], v6f.cols["DstIP"]
            if not (isinstance(src, Ragged) and isinstance(dst, Ragged)):  # invariant (not input)
                raise TypeError("unexpected column types")
            pkt = v6f.pkt[rows]
            # The fragment's data ends where its IPv6 header's payload ends.
            hdr = np.searchsorted(v6.pkt, pkt, side="right") - 1
            end = (np.asarray(v6.cols["_poff"]) + np.asarray(v6.cols["PayloadSize"]))[hdr]
            start = np.asarray(v6f.cols["_poff"])[rows]
            base = src.data.shape[0]
            cols.append([np.full(rows.size, 6), np.concatenate([src.data, dst.data]),
                         src.starts[rows], src.lens[rows], base + dst.starts[rows],
                         dst.lens[rows], np.asarray(v6f.cols["Identification"])[rows],
                         np.asarray(v6f.cols["NextHeader"])[rows], fo[rows] * 8,
                         more[rows].view(np.uint8), start, np.maximum(start, end), pkt])
    if not cols:
        return None
    if len(cols) == 2:  # one list for both versions, each one's addresses kept apart
        width = cols[0][1].shape[0]
        for k in (2, 4):
            cols[1][k] = cols[1][k] + width
    order = np.argsort(np.concatenate([c[12] for c in cols]), kind="stable")  # input order

    def col(k: int, dtype: type = np.int64) -> npt.NDArray[Any]:
        return np.ascontiguousarray(np.concatenate([c[k] for c in cols])[order], dtype)

    pkt = col(12)
    return _ip.build(Fragment, col(0), np.concatenate([c[1] for c in cols]), col(2), col(3),
                     col(4), col(5), col(6), col(7), col(8), col(9, np.uint8), b.data, col(10),
                     col(11), b.ts[pkt], pkt + b.first, b.wirelen[pkt])


class Defragmenter(_ip.Defragmenter):
    """Fragments in, whole datagrams out, holding what is incomplete across batches (the
    rules: this module's docstring). Its state is compiled (_ip.Defragmenter);
    `errors` counts what it met ("ipv4/fragment_overlap" -> count) until taken."""

    def __init__(self, timeout_ns: int = 30 * 10**9, max_datagrams: int = 4096,
                 max_bytes: int = 32 << 20) -> None:
        super().__init__(timeout_ns, max_datagrams, max_bytes)

    def add(self, frags: list[Fragment] | None) -> list[Datagram]:
        """Fragments in input order; the datagrams they completed."""
        return self._add(frags or (), Datagram)

    def advance(self, now: int) -> None:
        """The packet clock moved to `now` without fragments (a quiet live link):
        incomplete datagrams older than the timeout are dropped."""
        self._advance(now)

    def flush(self) -> None:
        """End of input: what is still incomplete is dropped (counted as timed out)."""
        self._flush()


def decode_datagrams(done: list[Datagram], columns: Columns = None,
                     analyze: bool = True) -> Decoded:
    """Reassembled datagrams decoded from the transport layer up: their link and IP
    layers were decoded (and counted) with their fragments. Packet i of the result is
    datagram i; `first` is the packet number of the first one."""
    batch = PacketBatch.from_packets([d.packet for d in done], [d.ts for d in done], LT.RAW,
                                     wirelen=[d.wire for d in done],
                                     first=done[0].pkt if done else 0)
    full = decode_batch(batch, columns=columns, analyze=analyze)
    return Decoded(batch, {k: t for k, t in full.tables.items() if k not in ("IPv4", "IPv6")},
                   full.error)
