"""IP defragmentation as it was in Python, before it was compiled (reassembly/_ip.pyx):
the oracle of the differential tests (test_defrag_compiled.py). Not used by netcap."""

from __future__ import annotations

import struct
from bisect import bisect_right, insort
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from netcap.decode.batch import Decoded
from netcap.gather import gather_u8
from netcap.reassembly.ip import MAX_DATAGRAM, Datagram, Fragment
from netcap.records.table import Ragged


def fragments(d: Decoded) -> list[Fragment] | None:
    """The IPv4 and IPv6 fragments of a decoded batch (atomic fragments, offset 0 with
    no more to come, are whole datagrams and are decoded as such)."""
    out: list[Fragment] = []
    b = d.batch
    v4 = d.tables.get("IPv4")
    if v4 is not None and v4.pkt is not None and v4.n:
        flags = np.asarray(v4.cols["Flags"])
        off = np.asarray(v4.cols["FragOffset"])
        rows = np.flatnonzero(((flags & 1) != 0) | (off > 0))
        if rows.size:
            poff = np.asarray(v4.cols["_poff"])[rows]
            # Addresses straight from the header (for metrics alone, the table has no
            # address columns: building them for every packet would cost more).
            hdr = poff - np.asarray(v4.cols["IHL"])[rows] * 4
            addrs = gather_u8(b.data, hdr + 12, 8)
            size = np.asarray(v4.cols["PayloadSize"])[rows].tolist()
            pkt = v4.pkt[rows]
            for a, ident, proto, fo, fl, p, z, ts, n, w in zip(
                    [bytes(x) for x in addrs],
                    np.asarray(v4.cols["Id"])[rows].tolist(),
                    np.asarray(v4.cols["Protocol"])[rows].tolist(), off[rows].tolist(),
                    flags[rows].tolist(), poff.tolist(), size, b.ts[pkt].tolist(),
                    (pkt + b.first).tolist(), b.wirelen[pkt].tolist(), strict=True):
                out.append(Fragment(4, a[:4], a[4:], ident, proto, fo * 8, bool(fl & 1),
                                    b.data[p : p + max(z, 0)].tobytes(), ts, n, w))
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
            for s, t, ident, proto, o, m, p, e, ts, n, w in zip(
                    src.take(rows).tolist(), dst.take(rows).tolist(),
                    np.asarray(v6f.cols["Identification"])[rows].tolist(),
                    np.asarray(v6f.cols["NextHeader"])[rows].tolist(), fo[rows].tolist(),
                    more[rows].tolist(), start.tolist(), end.tolist(), b.ts[pkt].tolist(),
                    (pkt + b.first).tolist(), b.wirelen[pkt].tolist(), strict=True):
                out.append(Fragment(6, s, t, ident, proto, o * 8, m,
                                    b.data[p : max(p, e)].tobytes(), ts, n, w))
    if not out:
        return None
    out.sort(key=lambda f: f.pkt)  # input order across both versions
    return out


Key = tuple[int, bytes, bytes, int, int]


@dataclass
class _Pending:
    first_ts: int
    pieces: dict[int, bytes] = field(default_factory=dict)  # offset -> data; never overlap
    starts: list[int] = field(default_factory=list)  # the offsets of `pieces`, sorted
    end: int | None = None  # datagram length, once the last fragment is seen
    size: int = 0  # bytes held
    inside: int = 0  # of them, below `end` (once known): complete when it reaches `end`
    stop: int = 0  # where the furthest piece ends
    wire: int = 0
    count: int = 0
    inconsistent: bool = False  # two ends, or data past the end (counted once)


class Defragmenter:
    def __init__(self, timeout_ns: int = 30 * 10**9, max_datagrams: int = 4096,
                 max_bytes: int = 32 << 20) -> None:
        self.timeout_ns = timeout_ns
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self._pending: OrderedDict[Key, _Pending] = OrderedDict()  # oldest first
        self._bytes = 0
        self.errors: Counter[str] = Counter()  # "ipv4/fragment_overlap" -> count

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, frags: list[Fragment] | None) -> list[Datagram]:
        out: list[Datagram] = []
        for f in frags or ():
            self._expire(f.ts)
            done = self._add(f)
            if done is not None:
                out.append(done)
        return out

    def advance(self, now: int) -> None:
        """The packet clock moved to `now` without fragments (a quiet live link):
        incomplete datagrams older than the timeout are dropped."""
        self._expire(now)

    def flush(self) -> None:
        """End of input: what is still incomplete is dropped (counted as timed out)."""
        for key in list(self._pending):
            self._drop(key, "fragment_timeout")

    def _count(self, version: int, reason: str) -> None:
        self.errors[f"ipv{version}/{reason}"] += 1

    def _drop(self, key: Key, reason: str) -> None:
        p = self._pending.pop(key)
        self._bytes -= p.size
        self._count(key[0], reason)

    def _expire(self, now: int) -> None:
        while self._pending:
            key, p = next(iter(self._pending.items()))
            if now - p.first_ts <= self.timeout_ns:
                break
            self._drop(key, "fragment_timeout")

    def _add(self, f: Fragment) -> Datagram | None:
        key = (f.version, f.src, f.dst, f.ident, f.proto)
        p = self._pending.get(key)
        if p is None:
            p = self._pending[key] = _Pending(f.ts)
            if len(self._pending) > self.max_datagrams:
                self._drop(next(iter(self._pending)), "fragment_evicted")
        p.wire += f.wire
        p.count += 1
        stop = f.offset + len(f.data)
        if stop > MAX_DATAGRAM:
            self._drop(key, "fragment_too_big")
            return None
        if not f.more:
            if p.end is not None and p.end != stop:
                p.inconsistent = True  # a second, different end: the first one holds
            if p.end is None:
                p.end = stop
                p.inside = sum(max(0, min(o + len(x), stop) - o) for o, x in p.pieces.items())
        self._put(p, f.offset, f.data, f.version)
        if p.end is not None and p.stop > p.end:
            p.inconsistent = True  # data past the end: cut off when joined
        if p.end is None or p.inside < p.end:
            while self._bytes > self.max_bytes and self._pending:
                self._drop(next(iter(self._pending)), "fragment_evicted")
            return None
        del self._pending[key]
        self._bytes -= p.size
        if p.inconsistent:
            self._count(f.version, "fragment_inconsistent")
        payload = b"".join([p.pieces[o] for o in p.starts])[: p.end]
        return Datagram(_header(f, len(payload)) + payload, f.ts, f.pkt, p.wire, p.count)

    def _put(self, p: _Pending, offset: int, data: bytes, version: int) -> None:
        """Keep the bytes of [offset, offset + len) not held yet (first copy wins).

        Only the pieces that overlap the new bytes are visited (found by bisection), so
        a fragment costs at most one step per piece it covers, never a pass over all:
        thousands of tiny fragments of one datagram stay linear work."""
        start, stop = offset, offset + len(data)
        starts, pieces = p.starts, p.pieces
        j = max(bisect_right(starts, start) - 1, 0)  # the piece at or before start
        conflict = False
        pos = start  # the new bytes before pos are held already
        new: list[tuple[int, bytes]] = []
        while j < len(starts) and starts[j] < stop:
            o = starts[j]
            have = pieces[o]
            end = o + len(have)
            j += 1
            if end <= pos:
                continue
            if o > pos:
                new.append((pos, data[pos - offset : o - offset]))
            a, z = max(start, o), min(stop, end)
            if have[a - o : z - o] != data[a - offset : z - offset]:
                conflict = True
            pos = end
        if pos < stop:
            new.append((pos, data[pos - offset :]))
        if conflict:
            self._count(version, "fragment_overlap")
        for o, piece in new:
            insort(starts, o)  # a memmove of at most 8,192 offsets (65,535 / 8)
            pieces[o] = piece
            n = len(piece)
            p.size += n
            self._bytes += n
            p.stop = max(p.stop, o + n)
            if p.end is not None:
                p.inside += max(0, min(o + n, p.end) - o)


def _header(f: Fragment, size: int) -> bytes:
    """A minimal IP header for the whole datagram: what the transport decoders read."""
    if f.version == 4:
        return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + size, f.ident, 0, 64, f.proto, 0,
                           f.src, f.dst)
    return struct.pack("!IHBB16s16s", 6 << 28, size, f.proto, 64, f.src, f.dst)
