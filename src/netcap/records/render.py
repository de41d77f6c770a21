"""Raw address bytes to Netcap's text forms, vectorized.

IPs render as Go's `net.IP.String()`: 4 bytes dotted quad, 16 bytes RFC 5952 except that
IPv4-mapped addresses (::ffff:a.b.c.d) print as plain a.b.c.d, as Go's do; any other
length as '?' followed by hex. An empty address stays empty (Go would print "<nil>", but
Netcap never calls String() on an absent address). MACs (any length) render as Go's
`net.HardwareAddr.String()`: lower-case hex pairs joined by ':'.

Everything is vectorized over whole columns with lookup tables of the text of every
16-bit value: IPv4 is two lookups, a 6-byte MAC three, an IPv6 address eight plus the
"::" rule (formatted once per distinct address in the column). Odd sizes go through
Python, which is also the reference the tests compare against.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ..gather import gather_u8
from .schema import Render
from .table import Piece, Ragged, compact_pieces

__all__ = [
    "parse_address", "render_column", "render_pieces", "warm_tables",
]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
U64 = npt.NDArray[np.uint64]


def _octet_digits() -> tuple[U8, I64]:
    """Decimal text of 0..255, transposed (3, 256), plus lengths."""
    texts = [str(v).encode() for v in range(256)]
    mat = np.zeros((256, 3), np.uint8)
    for v, t in enumerate(texts):
        mat[v, : len(t)] = np.frombuffer(t, np.uint8)
    return np.ascontiguousarray(mat.T), np.fromiter(map(len, texts), np.int64, 256)


def _pair_table(name: str) -> tuple[U64, I64]:
    """Text of every 16-bit value (two address bytes): 8 bytes of text per value, zero
    padded, as one uint64 each (so a lookup moves 8 bytes at once), plus lengths."""
    a = np.repeat(np.arange(256), 256)
    b = np.tile(np.arange(256), 256)
    n = 65536
    one = np.ones(n, np.int64)
    dot = (np.full((1, n), ord("."), np.uint8), one)
    colon = (np.full((1, n), ord(":"), np.uint8), one)
    if name.startswith("ip"):
        d, dl = _octet_digits()
        pieces = [(d[:, a], dl[a]), dot, (d[:, b], dl[b])]
        if name == "ip_hi":
            pieces.append(dot)
    else:
        hexd = np.frombuffer(b"0123456789abcdef", np.uint8)
        two = np.full(n, 2, np.int64)
        pieces = [(np.stack([hexd[a >> 4], hexd[a & 15]]), two), colon,
                  (np.stack([hexd[b >> 4], hexd[b & 15]]), two)]
        if name == "mac_mid":
            pieces.append(colon)
    text = compact_pieces(pieces, n)
    mat = np.zeros((n, 8), np.uint8)
    mat[np.arange(8)[None, :] < text.lens[:, None]] = text.data
    return mat.view(np.uint64).reshape(n), text.lens


# IPv4 text is two lookups ("a.b." + "c.d"), a 6-byte MAC three ("xx:xx:" twice +
# "xx:xx"): no per-address formatting. Built on first use (a few ms each).
_TABLES: dict[str, tuple[U64, I64]] = {}


def _hex_table() -> tuple[U64, I64]:
    """Lower-case hex of every 16-bit value without leading zeros ("0" .. "ffff"), the
    text of one IPv6 group: 4 bytes zero padded (in a uint64) plus lengths."""
    v = np.arange(65536)
    ndig = 1 + (v >= 0x10).astype(np.int64) + (v >= 0x100) + (v >= 0x1000)
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    mat = np.zeros((65536, 8), np.uint8)
    for k in range(4):  # character k of the text is nibble (ndig - 1 - k), counted from the right
        shift = np.maximum(ndig - 1 - k, 0) * 4
        mat[:, k] = np.where(k < ndig, digits[(v >> shift) & 0xF], 0)
    return mat.view(np.uint64).reshape(65536), ndig


def warm_tables() -> None:
    """Build the lookup tables now (before forking workers, so they share them)."""
    for name in ("ip_hi", "ip_lo", "mac_mid", "mac_end", "hex16"):
        _table(name)


def _table(name: str) -> tuple[U64, I64]:
    t = _TABLES.get(name)
    if t is None:
        t = _TABLES[name] = _hex_table() if name == "hex16" else _pair_table(name)
    return t


def _lookup(name: str, keys: npt.NDArray[np.intp]) -> Piece:
    """Texts of 16-bit keys as a transposed (8, n) piece (a view; no copy)."""
    text, lens = _table(name)
    return text[keys].view(np.uint8).reshape(-1, 8).T, lens[keys]


def _pairs(raw: U8) -> npt.NDArray[np.intp]:
    """(n, 2k) bytes -> (n, k) big-endian 16-bit values."""
    return (raw[:, 0::2].astype(np.intp) << 8) | raw[:, 1::2]


def _ipv4_pieces(octets: U8) -> list[Piece]:
    pairs = _pairs(octets)
    return [_lookup("ip_hi", pairs[:, 0]), _lookup("ip_lo", pairs[:, 1])]


def _mac6_pieces(mac: U8) -> list[Piece]:
    pairs = _pairs(mac)
    return [_lookup("mac_mid", pairs[:, 0]), _lookup("mac_mid", pairs[:, 1]),
            _lookup("mac_end", pairs[:, 2])]


_V4_MAPPED = bytes(10) + b"\xff\xff"


def _ip_any(raw: bytes) -> bytes:
    if len(raw) == 16:
        if raw[:12] == _V4_MAPPED:  # Go prints IPv4-mapped addresses as IPv4 (ip.To4())
            return str(ipaddress.IPv4Address(raw[12:])).encode()
        return str(ipaddress.IPv6Address(raw)).encode()
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw)).encode()
    return b"?" + raw.hex().encode() if raw else b""


def _mac_any(raw: bytes) -> bytes:
    return raw.hex(":").encode()


def _texts_pieces(texts: list[bytes], rows: I64, n: int) -> Piece:
    """Python-made texts for some rows as one transposed piece (0 bytes elsewhere)."""
    tl = np.fromiter(map(len, texts), np.int64, len(texts))
    width = max(int(tl.max()) if len(texts) else 1, 1)
    sub = np.zeros((len(texts), width), np.uint8)
    sub[np.arange(width)[None, :] < tl[:, None]] = np.frombuffer(b"".join(texts), np.uint8)
    mat = np.zeros((width, n), np.uint8)
    lens = np.zeros(n, np.int64)
    mat[:, rows] = sub.T
    lens[rows] = tl
    return mat, lens


_COLONS = np.frombuffer(b"::", np.uint8)


def _ipv6_texts(addrs: U8) -> Ragged:
    """(u, 16) IPv6 addresses -> RFC 5952 text, as Go's net.IP.String() prints it:
    groups in lower-case hex without leading zeros, the longest run of two or more zero
    groups (the first, on a tie) shortened to "::", IPv4-mapped addresses as IPv4."""
    u = addrs.shape[0]
    groups = (addrs[:, 0::2].astype(np.intp) << 8) | addrs[:, 1::2]  # (u, 8)
    best_len = np.zeros(u, np.int64)
    best_end = np.zeros(u, np.int64)
    run = np.zeros(u, np.int64)
    for j in range(8):
        run = np.where(groups[:, j] == 0, run + 1, 0)
        better = run > best_len
        best_len = np.where(better, run, best_len)
        best_end = np.where(better, j, best_end)
    has = best_len >= 2
    start = np.where(has, best_end - best_len + 1, 9)  # groups start..end-1 become "::"
    end = np.where(has, best_end + 1, 9)
    colons = np.broadcast_to(_COLONS[:, None], (2, u))
    hexes, hex_lens = _table("hex16")
    pieces: list[Piece] = [(colons, np.where(start == 0, 2, 0))]
    for j in range(8):
        g = groups[:, j]
        inside = (j >= start) & (j < end)
        text4 = hexes[g].view(np.uint8).reshape(u, 8).T[:4]
        pieces.append((text4, np.where(inside, 0, hex_lens[g])))
        if j < 7:  # the boundary before group j + 1
            b = j + 1
            sep = np.where(b == start, 2, np.where((b > start) & (b <= end), 0, 1))
            pieces.append((colons, sep))
    text = compact_pieces(pieces, u)
    mapped = np.flatnonzero((addrs[:, :12] == np.frombuffer(_V4_MAPPED, np.uint8)).all(axis=1))
    if mapped.size == 0:
        return text
    rows = text.tolist()  # rare: Go prints these as IPv4
    for i in mapped.tolist():
        rows[i] = _ip_any(addrs[i].tobytes())
    return Ragged.from_list(rows)


def _ragged_piece(r: Ragged) -> Piece:
    """Rows of a Ragged as one transposed piece."""
    width = max(int(r.lens.max()) if len(r) else 1, 1)
    mat = np.zeros((len(r), width), np.uint8)
    mat[np.arange(width)[None, :] < r.lens[:, None]] = r.data
    return mat.T, r.lens


def _ipv6_piece(col: Ragged, rows: I64, starts: I64, n: int) -> Piece:
    """IPv6 rows: each distinct address formatted once, then gathered."""
    raw = gather_u8(col.data, starts[rows], 16)
    keys = np.ascontiguousarray(raw).view(np.dtype((np.void, 16))).reshape(-1)
    uniq, inverse = np.unique(keys, return_inverse=True)
    text = _ipv6_texts(uniq.view(np.uint8).reshape(-1, 16))
    umat, ulens = _ragged_piece(text)
    inverse = inverse.reshape(-1)
    mat = np.zeros((umat.shape[0], n), np.uint8)
    lens = np.zeros(n, np.int64)
    mat[:, rows] = umat[:, inverse]
    lens[rows] = ulens[inverse]
    return mat, lens


def _lut_pieces(col: Ragged, size: int, rows: B, starts: I64,
                build: Callable[[U8], list[Piece]]) -> list[Piece]:
    """Lookup-table pieces for the rows of one address size (other rows get 0 bytes)."""
    n = len(col)
    if col.data.shape[0] == size * n and bool(rows.all()):
        return build(col.data.reshape(n, size))
    idx = np.where(rows[:, None], starts[:, None] + np.arange(size)[None, :], 0)
    raw = col.data[idx] if col.data.size else np.zeros((n, size), np.uint8)
    return [(m, np.where(rows, ln, 0)) for m, ln in build(raw)]


def render_pieces(col: Ragged, how: Render) -> list[Piece]:
    """Rendered text of a column as transposed pieces whose row-wise concatenation is
    the text: what the encoder consumes (it compacts all pieces of a record at once).
    Rows of different address families go to different pieces, each empty elsewhere."""
    n = len(col)
    lens = col.lens
    starts = col.starts
    pieces: list[Piece] = []
    if how is Render.IP:
        v4, v6 = lens == 4, lens == 16
        if v4.any():
            pieces += _lut_pieces(col, 4, v4, starts, _ipv4_pieces)
        if v6.any():
            pieces.append(_ipv6_piece(col, np.flatnonzero(v6), starts, n))
        slow, done = _ip_any, v4 | v6
    elif how is Render.MAC:
        m6 = lens == 6
        if m6.any():
            pieces += _lut_pieces(col, 6, m6, starts, _mac6_pieces)
        slow, done = _mac_any, m6
    else:
        raise ValueError(f"not a rendered field: {how}")
    rest = np.flatnonzero(~done & (lens > 0))
    if rest.size:
        data = col.data.tobytes()
        texts = [slow(data[int(starts[i]) : int(starts[i] + lens[i])]) for i in rest.tolist()]
        pieces.append(_texts_pieces(texts, rest, n))
    return pieces or [(np.zeros((1, n), np.uint8), np.zeros(n, np.int64))]


def render_column(col: Ragged, how: Render) -> Ragged:
    if how is Render.NONE:
        return col
    return compact_pieces(render_pieces(col, how), len(col))


# The longest text of an address: IPv6 with an IPv4 tail, and 16 hex pairs with colons.
_MAX_ADDRESS_TEXT = {Render.IP: 45, Render.MAC: 47}
_MAC_TEXT = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})*")


def parse_address(text: str, how: Render) -> bytes | None:
    """The raw bytes of an address rendered as `how` (the inverse of rendering, for
    records read from files): b"" for an empty text, None for text that is not one.
    IPv4 gives 4 bytes and IPv6 16, so an address read back labels as the decoded one."""
    if not text:
        return b""
    if len(text) > _MAX_ADDRESS_TEXT[how]:
        return None
    if how is Render.IP:
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                return socket.inet_pton(family, text)
            except (OSError, ValueError):  # ValueError: an embedded NUL
                continue
        return None
    if not _MAC_TEXT.fullmatch(text):
        return None
    return bytes.fromhex(text.replace(":", ""))
