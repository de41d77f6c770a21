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

import numpy as np
import numpy.typing as npt

from .schema import Render
from .table import Ragged

__all__ = ["render_column", "render_ip", "render_mac"]

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


def _ipv4_text(octets: U8) -> Ragged:
    """(n, 4) octets -> dotted quads."""
    n = octets.shape[0]
    mat = np.empty((n, 16), dtype=np.uint8)
    lens = np.empty((n, 4), dtype=np.int64)
    for k in range(3):
        mat[:, 4 * k : 4 * k + 4] = _OCT_DOT[octets[:, k]]
        lens[:, k] = _OCT_DOT_LEN[octets[:, k]]
    mat[:, 12:16] = _OCT[octets[:, 3]]
    lens[:, 3] = _OCT_LEN[octets[:, 3]]
    mask = (np.arange(4)[None, None, :] < lens[:, :, None]).reshape(n, 16)
    return Ragged(mat[mask], lens.sum(axis=1))


def _mac6_text(mac: U8) -> Ragged:
    n = mac.shape[0]
    mat = _HEX_COLON[mac].reshape(n, 18)[:, :17]
    return Ragged(np.ascontiguousarray(mat).reshape(-1), np.full(n, 17, np.int64))


def _ip_any(raw: bytes) -> bytes:
    if len(raw) == 16:
        return str(ipaddress.IPv6Address(raw)).encode()
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw)).encode()
    return b"?" + raw.hex().encode() if raw else b""


def _mac_any(raw: bytes) -> bytes:
    return raw.hex(":").encode()


def _render(col: Ragged, fast_len: int, fast: object, slow: object) -> Ragged:
    lens = col.lens
    n = lens.shape[0]
    if n == 0:
        return col
    fast_rows = lens == fast_len
    if bool(fast_rows.all()):
        return fast(col.data.reshape(n, fast_len))  # type: ignore[operator,no-any-return]
    out: list[bytes] = [b""] * n
    starts = col.starts
    if fast_rows.any():
        idx = np.flatnonzero(fast_rows)
        sub = col.data[starts[idx][:, None] + np.arange(fast_len)[None, :]]
        out_fast = fast(sub).tolist()  # type: ignore[operator]
        for i, s in zip(idx.tolist(), out_fast, strict=True):
            out[i] = s
    raw = col.data.tobytes()
    cache: dict[bytes, bytes] = {}
    for i in np.flatnonzero(~fast_rows).tolist():
        s0 = int(starts[i])
        key = raw[s0 : s0 + int(lens[i])]
        text = cache.get(key)
        if text is None:
            text = cache[key] = slow(key)  # type: ignore[operator]
        out[i] = text
    return Ragged.from_list(out)


def render_ip(col: Ragged) -> Ragged:
    return _render(col, 4, _ipv4_text, _ip_any)


def render_mac(col: Ragged) -> Ragged:
    return _render(col, 6, _mac6_text, _mac_any)


def render_column(col: Ragged, how: Render) -> Ragged:
    if how is Render.IP:
        return render_ip(col)
    if how is Render.MAC:
        return render_mac(col)
    return col
