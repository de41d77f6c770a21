"""The capture-file record walks as they were in Python, before sources/_walk.pyx: the
oracle for tests/test_walk_compiled.py (compiled == this, on every capture and on made and
mutated ones). Section headers, interfaces and messages come from the package, unchanged;
what is here is the walk and the numpy columns.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from netcap.gather import gather_u8
from netcap.sources._base import I64, U8, Buf, Columns, ParseResult
from netcap.sources.pcap import MAX_RECORD, MAX_RECORD_CAP, PcapHeader
from netcap.sources.pcapng import (
    _MIN_LEN,
    _OPT_TSOFFSET,
    _OPT_TSRESOL,
    _PACKET_TYPES,
    _T_EPB,
    _T_IDB,
    _T_SPB,
    MAX_BLOCK,
    SHB_MAGIC,
    Interface,
    _check_length,
    _check_trailer,
    _Damaged,
    _options,
    shb_length,
)

_U64 = npt.NDArray[np.uint64]


def _wrap64(v: int) -> int:
    """Python int to the int64 it wraps to (garbage timestamps must not raise)."""
    return ((v + (1 << 63)) % (1 << 64)) - (1 << 63)


def ts_to_ns(raw: _U64, tsresol: int, tsoffset: int) -> I64:
    """Raw 64-bit pcapng timestamps to Unix ns, exactly (integer arithmetic only)."""
    k = tsresol & 0x7F
    ns: I64
    if tsresol & 0x80:
        if k <= 34:
            # Split seconds from the binary fraction so frac * 10^9 fits in 64 bits.
            sec = (raw >> np.uint64(k)).astype(np.int64)
            frac = raw & np.uint64((1 << k) - 1)
            ns = sec * 1_000_000_000 + ((frac * np.uint64(10**9)) >> np.uint64(k)).astype(np.int64)
        else:  # finer than 2^-34 s: no real clock, but keep it exact with Python ints
            mask = (1 << k) - 1
            ns = np.array(
                [_wrap64((v >> k) * 10**9 + (((v & mask) * 10**9) >> k)) for v in raw.tolist()],
                dtype=np.int64,
            )
    elif k <= 9:
        ns = raw.astype(np.int64) * (10 ** (9 - k))
    elif k - 9 <= 19:  # 10^19 is the largest power of ten in a uint64
        ns = (raw // np.uint64(10 ** (k - 9))).astype(np.int64)
    else:
        ns = np.zeros(raw.shape[0], dtype=np.int64)
    if tsoffset:
        ns = ns + np.int64(_wrap64(tsoffset * 1_000_000_000))
    return ns



class OraclePcapParser:
    """The Python record walk pcap.PcapParser.parse replaced."""

    def __init__(self, header: PcapHeader) -> None:
        self.header = header
        self._hlen = 24 if header.modified else 16
        self._len_at = struct.Struct(header.endian + "I").unpack_from
        self._maxlen = min(max(header.snaplen, MAX_RECORD), MAX_RECORD_CAP)
        self._u4 = np.dtype(header.endian + "u4")
        self._frac_ns = 1 if header.nanos else 1000
        self._linktype = header.linktype

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


class OraclePcapngParser:
    """The Python block walk pcapng.PcapngParser.parse replaced (with its section and
    interface handling, as it was)."""

    def __init__(self) -> None:
        self._endian = "<"
        self._hdr = struct.Struct("<II").unpack_from
        self._u4 = np.dtype("<u4")
        self._u2 = np.dtype("<u2")
        self._ifaces: list[Interface] = []
        self._kind = 0  # block type of the current run of packet blocks (0: none)
        self._offs: list[int] = []  # starts of the current run's blocks in this chunk
        self._parts: list[Columns] = []
        self._pending_stop: tuple[int, str] | None = None
        self.sections = 0

    # -- section and interface blocks -------------------------------------------

    def _section(self, buf: Buf, pos: int) -> int:
        endian, length = shb_length(buf, pos)
        major, minor = struct.unpack_from(endian + "HH", buf, pos + 12)
        if major != 1:
            raise _Damaged(f"pcapng version {major}.{minor} unsupported")
        # Options before the trailer, as wiretap does: a broken option is the more
        # useful message when both are wrong.
        _options(buf, pos + 24, pos + length - 4, endian)
        _check_trailer(buf, pos, length, endian)
        self._endian = endian
        self._hdr = struct.Struct(endian + "II").unpack_from
        self._u4 = np.dtype(endian + "u4")
        self._u2 = np.dtype(endian + "u2")
        self._ifaces = []
        self._kind = 0
        self.sections += 1
        return length

    def _interface(self, buf: Buf, pos: int, length: int) -> None:
        e = self._endian
        linktype, _reserved, snaplen = struct.unpack_from(e + "HHI", buf, pos + 8)
        tsresol, tsoffset = 6, 0
        for code, value in _options(buf, pos + 16, pos + length - 4, e):
            if code == _OPT_TSRESOL and len(value) == 1:
                tsresol = value[0]
            elif code == _OPT_TSOFFSET and len(value) == 8:
                (tsoffset,) = struct.unpack(e + "q", value)
        _check_trailer(buf, pos, length, e)
        self._ifaces.append(Interface(linktype, snaplen, tsresol, tsoffset))

    # -- the chunk walk -----------------------------------------------------------

    def parse(self, buf: Buf, arr: U8, pos: int) -> ParseResult:
        """Find the complete packet blocks in buf[pos:]; see ParseResult."""
        n = len(buf)
        self._parts = []
        self._offs = []
        need = 0
        stop: tuple[int, str] | None = None
        while True:
            kind = self._kind
            if kind:
                # Hot loop: consecutive packet blocks of the current kind. Only the
                # chain of lengths is followed here; the rest of the validation is
                # vectorized in _flush.
                ap = self._offs.append
                hdr = self._hdr
                minimum = _MIN_LEN[kind]
                while pos + 8 <= n:
                    btype, length = hdr(buf, pos)
                    end = pos + length
                    if btype != kind or not pos + minimum <= end <= n:
                        break
                    ap(pos)
                    pos = end
            if pos + 12 > n:
                need = 12
                break
            try:
                step = self._block(buf, arr, pos, n)
            except _Damaged as e:
                stop = (pos, str(e))
                break
            if step < 0:
                need = -step
                break
            if step == 0:  # an earlier packet block in the run was damaged
                stop = self._pending_stop
                break
            pos += step
        flushed = self._flush(arr)
        if flushed is not None:  # damage found in the last run comes first
            stop = flushed
        cols = Columns.concat(self._parts) if self._parts else None
        self._parts = []
        return ParseResult(cols, pos, need, stop)

    def _block(self, buf: Buf, arr: U8, pos: int, n: int) -> int:
        """Handle the block at pos: its length, -bytes needed, or 0 (see _pending_stop)."""
        if bytes(buf[pos : pos + 4]) == SHB_MAGIC:
            _endian, length = shb_length(buf, pos)
            if pos + length > n:
                return -length
            if self._flush_stops(arr):
                return 0
            return self._section(buf, pos)
        btype, length = (int(v) for v in self._hdr(buf, pos))
        _check_length(btype, length)
        if pos + length > n:
            return -length
        if btype in _PACKET_TYPES:
            if btype != self._kind:
                if self._flush_stops(arr):
                    return 0
                self._kind = btype
            self._offs.append(pos)
            return length
        if btype == _T_IDB:
            if self._flush_stops(arr):
                return 0
            self._interface(buf, pos, length)
        else:  # NRB, ISB, custom, DSB, unknown: framing only
            _check_trailer(buf, pos, length, self._endian)
        return length

    def _flush_stops(self, arr: U8) -> bool:
        """Flush the current run; True if it hit a damaged block (kept in _pending_stop)."""
        self._pending_stop = self._flush(arr)
        return self._pending_stop is not None

    def _flush(self, arr: U8) -> tuple[int, str] | None:
        """Turn the current run of packet blocks into Columns; return the first damage."""
        offs = self._offs
        if not offs:
            return None
        self._offs = []
        o = np.fromiter(offs, dtype=np.int64, count=len(offs))
        cols, bad = self._run_columns(arr, o, self._kind)
        if len(cols):
            self._parts.append(cols)
        if bad is not None:  # cols already ends before the damaged block
            k, reason = bad
            return (offs[k], reason)
        return None

    def _run_columns(self, arr: U8, o: I64, kind: int) -> tuple[Columns, tuple[int, str] | None]:
        n = int(o.shape[0])
        ifaces = self._ifaces
        nif = len(ifaces)
        if kind == _T_SPB:
            h = gather_u8(arr, o, 12).view(self._u4)
            length = h[:, 1].astype(np.int64)
            wirelen = h[:, 2].astype(np.int64)
            iface = np.zeros(n, dtype=np.int64)
            avail = length - 16
            caplen = np.minimum(wirelen, avail)
            if nif and ifaces[0].snaplen:
                caplen = np.minimum(caplen, ifaces[0].snaplen)
            start = o + 12
            raw = None
        else:  # EPB and OPB share the layout apart from the interface id's width
            g = gather_u8(arr, o, 28)
            h = g.view(self._u4)
            length = h[:, 1].astype(np.int64)
            if kind == _T_EPB:
                iface = h[:, 2].astype(np.int64)
            else:
                iface = g.view(self._u2)[:, 4].astype(np.int64)
            caplen = h[:, 5].astype(np.int64)
            wirelen = h[:, 6].astype(np.int64)
            avail = length - 32
            start = o + 28
            raw = (h[:, 3].astype(np.uint64) << np.uint64(32)) | h[:, 4].astype(np.uint64)
        trailer = gather_u8(arr, o + length - 4, 4).view(self._u4)[:, 0].astype(np.int64)
        checks: list[tuple[npt.NDArray[np.bool_], Callable[[int], str]]] = [
            ((length & 3) != 0, lambda i: f"block length {length[i]} is not a multiple of 4"),
            (length > MAX_BLOCK, lambda i: f"block length {length[i]} exceeds maximum {MAX_BLOCK}"),
            (iface >= nif, lambda i: f"packet on undefined interface {iface[i]}"),
            (caplen > avail, lambda i: f"captured length {caplen[i]} overruns its block"),
            (trailer != length, lambda i: f"block trailing length {trailer[i]} does not match "
                                          f"{length[i]}"),
        ]  # fmt: skip
        bad_any = checks[0][0]
        for mask, _ in checks[1:]:
            bad_any = bad_any | mask
        cut: tuple[int, str] | None = None
        if bad_any.any():
            k = int(np.argmax(bad_any))
            for mask, reason in checks:
                if mask[k]:
                    cut = (k, reason(k))
                    break
            o, start, caplen, wirelen, iface = o[:k], start[:k], caplen[:k], wirelen[:k], iface[:k]
            if raw is not None:
                raw = raw[:k]
            n = k
        lt_table = np.array([i.linktype for i in ifaces] or [0], dtype=np.int32)
        if raw is None:
            ts = np.zeros(n, dtype=np.int64)
        elif n == 0:
            ts = np.zeros(0, dtype=np.int64)
        elif nif == 1 or bool((iface == iface[0]).all()):
            i0 = ifaces[int(iface[0])]
            ts = ts_to_ns(raw, i0.tsresol, i0.tsoffset)
        else:
            ts = np.empty(n, dtype=np.int64)
            for j in np.unique(iface).tolist():
                sel = iface == j
                ts[sel] = ts_to_ns(raw[sel], ifaces[j].tsresol, ifaces[j].tsoffset)
        cols = Columns(
            start=start,
            caplen=caplen,
            wirelen=wirelen,
            ts=ts,
            linktype=lt_table[iface] if nif else np.zeros(n, dtype=np.int32),
            iface=iface.astype(np.int32),
        )
        return cols, cut
