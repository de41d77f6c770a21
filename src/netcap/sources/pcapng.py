"""pcapng files: sections, interfaces and the packet-block walk over one chunk.

Owns: Section Header Blocks (each with its own byte order; a new section forgets
the previous interfaces), Interface Description Blocks (link type, snaplen,
if_tsresol, if_tsoffset), and the three packet blocks: Enhanced (EPB), Simple (SPB)
and the obsolete Packet Block (OPB). Name resolution, statistics, custom, decryption
secrets and unknown blocks are checked for framing and skipped. Block framing is
validated (length >= the block's minimum, a multiple of 4, at most MAX_BLOCK, and
equal to the trailing copy); the first damaged block ends reading.

Limits: SPBs carry no timestamp and get ts = 0. Packet-block options (flags, hashes,
drop counts) are ignored. Packets are delivered with the original byte order of
their section; no option beyond if_tsresol/if_tsoffset changes the output.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..gather import gather_u8
from ._base import I64, U8, Buf, CaptureError, Columns, ParseResult

__all__ = ["MAX_BLOCK", "SHB_MAGIC", "Interface", "PcapngParser", "first_section_length"]

SHB_MAGIC = b"\x0a\x0d\x0d\x0a"  # block type 0x0A0D0D0A reads the same in both byte orders
_BOM = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}

# Refuse blocks above 16 MiB: a garbage length must not make the reader buffer
# the rest of the file (the largest legitimate packet is 256 KiB on most links).
MAX_BLOCK = 16 << 20

_T_SHB = 0x0A0D0D0A
_T_IDB = 1
_T_OPB = 2
_T_SPB = 3
_T_EPB = 6
_PACKET_TYPES = (_T_EPB, _T_SPB, _T_OPB)
_NAMES = {_T_SHB: "section header", _T_IDB: "interface description", _T_OPB: "packet",
          _T_SPB: "simple packet", _T_EPB: "enhanced packet"}  # fmt: skip
# Minimum total length per block type: 12 bytes of framing plus the fixed fields.
_MIN_LEN = {_T_SHB: 28, _T_IDB: 20, _T_OPB: 32, _T_SPB: 16, _T_EPB: 32}
_OPT_TSRESOL = 9
_OPT_TSOFFSET = 14

_U64 = npt.NDArray[np.uint64]


class _Damaged(Exception):
    """A block is malformed; the message is the Truncation / CaptureError reason."""


@dataclass(frozen=True, slots=True)
class Interface:
    linktype: int
    snaplen: int
    tsresol: int = 6  # if_tsresol byte: high bit set = 2^-k, else 10^-k seconds
    tsoffset: int = 0  # if_tsoffset, seconds added to every timestamp


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


def _options(buf: Buf, start: int, end: int, endian: str) -> list[tuple[int, bytes]]:
    """The options in buf[start:end]; raise _Damaged if one overruns the block."""
    out: list[tuple[int, bytes]] = []
    pos = start
    hdr = struct.Struct(endian + "HH")
    while pos < end:
        if pos + 4 > end:
            raise _Damaged("not enough data for an option header")
        code, length = hdr.unpack_from(buf, pos)
        pos += 4
        if code == 0:  # opt_endofopt
            break
        if pos + length > end:
            raise _Damaged(f"option of length {length} overruns its block")
        out.append((code, bytes(buf[pos : pos + length])))
        pos += (length + 3) & ~3
    return out


def shb_length(buf: Buf, pos: int) -> tuple[str, int]:
    """Byte order and total length of the SHB at pos (needs 12 bytes); raise _Damaged."""
    bom = bytes(buf[pos + 8 : pos + 12])
    endian = _BOM.get(bom)
    if endian is None:
        raise _Damaged(f"bad byte-order magic 0x{bom.hex()}")
    length = int(struct.unpack_from(endian + "I", buf, pos + 4)[0])
    _check_length(_T_SHB, length)
    return endian, length


def first_section_length(path: str, buf: bytes) -> int:
    """Total length of the SHB starting the file (needs 12 bytes); raise CaptureError."""
    try:
        return shb_length(buf, 0)[1]
    except _Damaged as e:
        raise CaptureError(f"{path}: damaged pcapng section header: {e}") from None


def _check_length(btype: int, length: int) -> None:
    minimum = _MIN_LEN.get(btype, 12)
    name = _NAMES.get(btype, f"type 0x{btype:08x}")
    if length < minimum:
        raise _Damaged(f"{name} block length {length} is below the minimum {minimum}")
    if length & 3:
        raise _Damaged(f"{name} block length {length} is not a multiple of 4")
    if length > MAX_BLOCK:
        raise _Damaged(f"{name} block length {length} exceeds maximum {MAX_BLOCK}")


def _check_trailer(buf: Buf, pos: int, length: int, endian: str) -> None:
    (trailer,) = struct.unpack_from(endian + "I", buf, pos + length - 4)
    if trailer != length:
        raise _Damaged(f"block trailing length {trailer} does not match {length}")


class PcapngParser:
    """Walks the blocks of a pcapng chunk, keeping section and interface state."""

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

    # Pickled to hand the walk over to another process (parallel capture): the state is
    # the section's byte order, its interfaces and the current run; struct helpers are
    # rebuilt from the byte order.
    def __getstate__(self) -> dict[str, object]:
        return {"endian": self._endian, "ifaces": self._ifaces, "kind": self._kind,
                "sections": self.sections}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__()  # type: ignore[misc]
        endian = str(state["endian"])
        self._endian = endian
        self._hdr = struct.Struct(endian + "II").unpack_from
        self._u4 = np.dtype(endian + "u4")
        self._u2 = np.dtype(endian + "u2")
        self._ifaces = list(state["ifaces"])  # type: ignore[call-overload]
        self._kind = int(state["kind"])  # type: ignore[call-overload]
        self.sections = int(state["sections"])  # type: ignore[call-overload]

    # -- section and interface blocks -------------------------------------------

    def begin(self, path: str, buf: bytes) -> int:
        """Validate the first SHB (all of it in buf); return its length.

        A file whose first section header is damaged is not a usable capture, so
        this raises CaptureError rather than reporting a truncation.
        """
        try:
            return self._section(buf, 0)
        except _Damaged as e:
            raise CaptureError(f"{path}: damaged pcapng section header: {e}") from None

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

    def cut_reason(self, tail: bytes) -> str:
        """Why reading stopped when the input ends with the partial block `tail`."""
        if len(tail) < 8 or (tail[:4] == SHB_MAGIC and len(tail) < 12):
            return "cut in the middle of a block header"
        try:
            if tail[:4] == SHB_MAGIC:
                _endian, length = shb_length(tail, 0)
            else:
                _btype, length = self._hdr(tail, 0)
        except _Damaged as e:
            return str(e)
        return f"cut in the middle of a block ({len(tail)} of {length} bytes)"
