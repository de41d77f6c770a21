"""Raw address bytes to Netcap's text forms, vectorized.

IPs render as Go's `net.IP.String()`: 4 bytes dotted quad, 16 bytes RFC 5952 (IPv4-mapped
addresses as `::ffff:a.b.c.d`, which is what Python's `ipaddress` prints too); any other
length as '?' followed by hex, empty as empty. MACs (any length) render as Go's
`net.HardwareAddr.String()`: lower-case hex pairs joined by ':'.

IPv4 and 6-byte MACs, the bulk of every capture, are rendered with lookup tables over
whole columns; IPv6 goes through `ipaddress` once per distinct address in the column.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .schema import Render
from .table import Ragged

__all__ = ["IP_TEXT_MAX", "render_column", "render_ip", "render_mac", "render_matrix"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def _octet_table(dot: bool) -> tuple[U8, I64]:
    table = np.zeros((256, 4), dtype=np.uint8)
    lens = np.zeros(256, dtype=np.int64)
    for v in range(256):
        s = (str(v) + ("." if dot else "")).encode()
        table[v, : len(s)] = np.frombuffer(s, np.uint8)
        lens[v] = len(s)
    return table, lens


_OCT_DOT, _OCT_DOT_LEN = _octet_table(True)
_OCT, _OCT_LEN = _octet_table(False)
_HEX_COLON = np.frombuffer(
    b"".join(f"{v:02x}:".encode() for v in range(256)), np.uint8
).reshape(256, 3)


def _ipv4_text(octets: U8) -> tuple[U8, I64]:
    """(n, 4) octets -> dotted quads as an (n, 15) matrix plus lengths.

    A column holds few distinct addresses, so each is formatted once and gathered."""
    keys = np.ascontiguousarray(octets).view(np.uint32).reshape(-1)
    uniq, inverse = np.unique(keys, return_inverse=True)
    if uniq.shape[0] * 2 > keys.shape[0]:
        return _ipv4_format(octets)
    mat, lens = _ipv4_format(uniq.view(np.uint8).reshape(-1, 4))
    inverse = inverse.reshape(-1)
    return mat[inverse], lens[inverse]


def _ipv4_format(octets: U8) -> tuple[U8, I64]:
    n = octets.shape[0]
    mat = np.empty((n, 16), dtype=np.uint8)
    lens = np.empty((n, 4), dtype=np.int64)
    for k in range(3):
        mat[:, 4 * k : 4 * k + 4] = _OCT_DOT[octets[:, k]]
        lens[:, k] = _OCT_DOT_LEN[octets[:, k]]
    mat[:, 12:16] = _OCT[octets[:, 3]]
    lens[:, 3] = _OCT_LEN[octets[:, 3]]
    mask = (np.arange(4)[None, None, :] < lens[:, :, None]).reshape(n, 16)
    total = lens.sum(axis=1)
    out = np.zeros((n, 15), dtype=np.uint8)
    out[np.arange(15)[None, :] < total[:, None]] = mat[mask]
    return out, total


def _mac6_text(mac: U8) -> tuple[U8, I64]:
    n = mac.shape[0]
    mat = _HEX_COLON[mac].reshape(n, 18)[:, :17]
    return mat, np.full(n, 17, np.int64)


def _ip_any(raw: bytes) -> bytes:
    if len(raw) == 16:
        return str(ipaddress.IPv6Address(raw)).encode()
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw)).encode()
    return b"?" + raw.hex().encode() if raw else b""


def _mac_any(raw: bytes) -> bytes:
    return raw.hex(":").encode()


def _texts(items: list[bytes], width: int) -> tuple[U8, I64]:
    mat = np.zeros((len(items), width), dtype=np.uint8)
    lens = np.zeros(len(items), dtype=np.int64)
    for i, t in enumerate(items):
        mat[i, : len(t)] = np.frombuffer(t, np.uint8)
        lens[i] = len(t)
    return mat, lens


def _ipv6_text(addrs: U8) -> tuple[U8, I64]:
    """(n, 16) addresses -> text, formatting each distinct address once."""
    keys = np.ascontiguousarray(addrs).view(np.dtype((np.void, 16))).reshape(-1)
    uniq, inverse = np.unique(keys, return_inverse=True)
    texts = [_ip_any(u.tobytes()) for u in uniq]
    mat, lens = _texts(texts, max(len(t) for t in texts))
    return mat[inverse.reshape(-1)], lens[inverse.reshape(-1)]


Renderer = Callable[[U8], tuple[U8, I64]]

# Longest texts: IPv6 with an embedded IPv4 ("::ffff:255.255.255.255" is 22; a full
# 8-group form is 39); any other length renders as "?"+hex, bounded by the input size.
IP_TEXT_MAX = 45


def _render(col: Ragged, fixed: dict[int, Renderer], slow: Callable[[bytes], bytes]
            ) -> tuple[U8, I64]:
    """Text of every row as an (n, w) matrix plus lengths."""
    lens = col.lens
    n = lens.shape[0]
    if n and col.data.shape[0] in (n * size for size in fixed):
        size = col.data.shape[0] // n
        if bool((lens == size).all()):  # one address family in the whole column
            return fixed[size](col.data.reshape(n, size))
    starts = col.starts
    parts: list[tuple[I64, U8, I64]] = []
    done = np.zeros(n, np.bool_)
    for size, fn in fixed.items():
        rows = np.flatnonzero(lens == size)
        if rows.size:
            raw = col.data[starts[rows][:, None] + np.arange(size)[None, :]]
            m, ln = fn(raw)
            parts.append((rows, m, ln))
            done[rows] = True
    rest = np.flatnonzero(~done & (lens > 0))
    if rest.size:
        data = col.data.tobytes()
        texts = [slow(data[int(starts[i]) : int(starts[i]) + int(lens[i])]) for i in rest.tolist()]
        m, ln = _texts(texts, max(len(t) for t in texts))
        parts.append((rest, m, ln))
    width = max((m.shape[1] for _, m, _ in parts), default=1)
    mat = np.zeros((n, width), dtype=np.uint8)
    out_lens = np.zeros(n, dtype=np.int64)
    for rows, m, ln in parts:
        mat[rows, : m.shape[1]] = m
        out_lens[rows] = ln
    return mat, out_lens


def render_ip(col: Ragged) -> tuple[U8, I64]:
    return _render(col, {4: _ipv4_text, 16: _ipv6_text}, _ip_any)


def render_mac(col: Ragged) -> tuple[U8, I64]:
    return _render(col, {6: _mac6_text}, _mac_any)


def render_matrix(col: Ragged, how: Render) -> tuple[U8, I64]:
    """Rendered text of a column as an (n, w) byte matrix plus per-row lengths."""
    if how is Render.IP:
        return render_ip(col)
    if how is Render.MAC:
        return render_mac(col)
    raise ValueError(f"not a rendered field: {how}")


def render_column(col: Ragged, how: Render) -> Ragged:
    if how is Render.NONE:
        return col
    mat, lens = render_matrix(col, how)
    return Ragged.from_matrix(mat, lens)
