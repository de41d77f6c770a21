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
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from . import _walk
from ._base import I64, U8, Buf, CaptureError, Columns, ParseResult
from ._walk import walk_pcapng

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


def _iface_table(ifaces: list[Interface]) -> npt.NDArray[np.int64]:
    """The section's interfaces as the compiled walk reads them: a row each."""
    return np.array([(i.linktype, i.snaplen, i.tsresol, i.tsoffset) for i in ifaces],
                    dtype=np.int64).reshape(-1, 4)


class _Damaged(Exception):
    """A block is malformed; the message is the Truncation / CaptureError reason."""


class Interface(NamedTuple):
    linktype: int
    snaplen: int
    tsresol: int = 6  # if_tsresol byte: high bit set = 2^-k, else 10^-k seconds
    tsoffset: int = 0  # if_tsoffset, seconds added to every timestamp


def ts_to_ns(raw: _U64, tsresol: int, tsoffset: int) -> I64:
    """Raw 64-bit pcapng timestamps to Unix ns, exactly (integer arithmetic only; what the
    walk does per packet)."""
    ns: I64 = _walk.ts_to_ns(raw, tsresol, tsoffset)
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
    """Walks the blocks of a pcapng chunk, keeping section and interface state. The packet
    blocks are walked by _walk.walk_pcapng; every other block comes back here."""

    def __init__(self) -> None:
        self._endian = "<"
        self._hdr = struct.Struct("<II").unpack_from
        self._ifaces: list[Interface] = []
        self._table = _iface_table([])
        self._kind = 0  # block type of the current run of packet blocks (0: none)
        self.sections = 0

    # Pickled to hand the walk over to another process (parallel capture): the state is
    # the section's byte order, its interfaces and the current run; struct helpers and
    # the interface table are rebuilt from them.
    def __getstate__(self) -> dict[str, object]:
        return {"endian": self._endian, "ifaces": self._ifaces, "kind": self._kind,
                "sections": self.sections}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__()  # type: ignore[misc]
        endian = str(state["endian"])
        self._endian = endian
        self._hdr = struct.Struct(endian + "II").unpack_from
        self._ifaces = list(state["ifaces"])  # type: ignore[call-overload]
        self._table = _iface_table(self._ifaces)
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
        self._ifaces = []
        self._table = _iface_table([])
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
        self._table = _iface_table(self._ifaces)

    # -- the chunk walk -----------------------------------------------------------

    def parse(self, buf: Buf, arr: U8, pos: int) -> ParseResult:
        """Find the complete packet blocks in buf[pos:]; see ParseResult.

        The compiled walk takes runs of packet blocks and checks each (framing, trailer,
        interface, captured length). The first damaged one ends reading, but the walk
        goes on to the end of its run, as the Python walk did (it checked a run at its
        end): where the run ends is `pos` and `need`, the damaged block is `stop`, and it
        comes first whatever ended the run."""
        n = len(buf)
        parts: list[Columns] = []
        damage: tuple[int, str] | None = None
        need = 0
        stop: tuple[int, str] | None = None
        while True:
            cols, pos, self._kind, found = walk_pcapng(
                buf, pos, self._kind, self._endian == ">", damage is not None, self._table,
                MAX_BLOCK)
            if cols is not None:
                parts.append(cols)
            if found is not None:
                damage = found
            if pos + 12 > n:
                need = 12
                break
            try:
                step = self._block(buf, pos, n, damage is not None)
            except _Damaged as e:
                stop = (pos, str(e))
                break
            if step < 0:
                need = -step
                break
            if step == 0:  # the run before this block was damaged
                break
            pos += step
        if damage is not None:
            stop = damage
        return ParseResult(Columns.concat(parts) if parts else None, pos, need, stop)

    def _block(self, buf: Buf, pos: int, n: int, damaged: bool) -> int:
        """Handle the block at pos that the compiled walk left: its length, -bytes needed,
        or 0 when it ends a damaged run (a new section, interface or run of packets)."""
        if bytes(buf[pos : pos + 4]) == SHB_MAGIC:
            _endian, length = shb_length(buf, pos)
            if pos + length > n:
                return -length
            if damaged:
                return 0
            return self._section(buf, pos)
        btype, length = (int(v) for v in self._hdr(buf, pos))
        _check_length(btype, length)
        if pos + length > n:
            return -length
        if btype in _PACKET_TYPES or btype == _T_IDB:
            if damaged:
                return 0
            if btype in _PACKET_TYPES:  # the walk takes every other packet block
                raise RuntimeError(f"pcapng walk left a sound packet block at {pos}")
            self._interface(buf, pos, length)
        else:  # NRB, ISB, custom, DSB, unknown: framing only
            _check_trailer(buf, pos, length, self._endian)
        return length

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
