"""Vectorized proto3 encoding of record tables.

Per-record protobuf objects cost ~1 µs plus the Python work to fill them; a capture
gives several records per packet, so the writer encodes whole columns with numpy
instead. Every field becomes, per row, its encoded bytes (tag + value; nothing for a
proto3 default), small fixed-width fields as one padded byte matrix with a length per
row, strings/bytes/sub-messages as `Ragged` rows; then rows are concatenated field by
field in field-number order. The result is byte-identical to the protobuf library's
`SerializeToString()` (tested), which is how the Go Netcap writes too.

Limits: packed repeated scalars are not needed by the layer records yet and raise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .render import render_column
from .schema import Field, Kind, Render
from .table import Children, Ragged, RecordTable, exclusive_cumsum

__all__ = ["encode_delimited", "encode_rows", "varint_matrix"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LEN = 0, 1, 2
_THRESHOLDS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def _tag(number: int, wire: int) -> bytes:
    v = (number << 3) | wire
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def varint_matrix(values: U64) -> tuple[U8, I64]:
    """Base-128 varints of uint64 values as an (n, w) matrix plus bytes used per row."""
    n = values.shape[0]
    nbytes = 1 + (values[:, None] >= _THRESHOLDS[None, :]).sum(axis=1).astype(np.int64)
    width = int(nbytes.max()) if n else 1
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    mat = ((values[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    cont = np.arange(width)[None, :] < (nbytes - 1)[:, None]
    mat |= cont.astype(np.uint8) << 7
    return mat, nbytes


def _as_u64(col: npt.NDArray[Any]) -> U64:
    # Negative int32/int64 encode as their 64-bit two's complement (10 bytes), as proto3 does.
    if col.dtype == np.uint64:
        return col
    if col.dtype == np.bool_:
        return col.astype(np.uint64)
    return col.astype(np.int64, copy=False).view(np.uint64)


class _Segments:
    """Encoded fields of one table, in order; adjacent fixed-width ones merged lazily."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: list[Ragged] = []
        self._mats: list[U8] = []
        self._lens: list[I64] = []

    def fixed(self, mat: U8, lens: I64) -> None:
        self._mats.append(mat)
        self._lens.append(lens)

    def ragged(self, r: Ragged) -> None:
        self._flush()
        if r.data.size:
            self.parts.append(r)

    def _flush(self) -> None:
        if not self._mats:
            return
        mat = np.hstack(self._mats) if len(self._mats) > 1 else self._mats[0]
        masks = [np.arange(m.shape[1])[None, :] < ln[:, None]
                 for m, ln in zip(self._mats, self._lens, strict=True)]
        mask = np.hstack(masks) if len(masks) > 1 else masks[0]
        lens = np.add.reduce(self._lens) if len(self._lens) > 1 else self._lens[0]
        self._mats, self._lens = [], []
        r = Ragged(mat[mask], lens.astype(np.int64, copy=False))
        if r.data.size:
            self.parts.append(r)

    def rows(self) -> Ragged:
        self._flush()
        return concat_rows(self.parts, self.n)


def concat_rows(parts: list[Ragged], n: int) -> Ragged:
    """Row i of the result = row i of parts[0] + row i of parts[1] + ..."""
    if not parts:
        return Ragged(np.zeros(0, np.uint8), np.zeros(n, np.int64))
    if len(parts) == 1:
        return parts[0]
    total = np.add.reduce([p.lens for p in parts])
    out = np.empty(int(total.sum()), dtype=np.uint8)
    pos = exclusive_cumsum(total)
    for p in parts:
        size = p.data.shape[0]
        if size:
            idx = np.repeat(pos - exclusive_cumsum(p.lens), p.lens) + np.arange(size)
            out[idx] = p.data
        pos = pos + p.lens
    return Ragged(out, total.astype(np.int64, copy=False))


def _length_delimited(tag: bytes, body: Ragged, present: npt.NDArray[np.bool_]) -> Ragged:
    """tag + varint(len) + body for rows where `present`; nothing elsewhere."""
    n = body.lens.shape[0]
    lmat, lbytes = varint_matrix(body.lens.astype(np.uint64))
    head = np.hstack([np.tile(np.frombuffer(tag, np.uint8), (n, 1)), lmat])
    hlens = np.where(present, len(tag) + lbytes, 0)
    return concat_rows([Ragged.from_matrix(head, hlens), body], n)


def _encode_field(seg: _Segments, fl: Field, col: Any, n: int) -> None:
    if isinstance(col, Children):
        _encode_message_field(seg, fl, col, n)
        return
    if fl.repeated:
        raise NotImplementedError(f"packed repeated field {fl.name}")
    if fl.kind in (Kind.STRING, Kind.BYTES):
        assert isinstance(col, Ragged)
        if fl.render is not Render.NONE:
            col = render_column(col, fl.render)
        if col.data.size:
            seg.ragged(_length_delimited(_tag(fl.number, _WIRE_LEN), col, col.lens > 0))
        return
    arr = np.asarray(col)
    if fl.kind is Kind.DOUBLE:
        bits = arr.astype(np.float64).view(np.uint64)
        present = bits != 0  # proto3 writes -0.0 (bits set), skips +0.0
        if not present.any():
            return
        tag = np.frombuffer(_tag(fl.number, _WIRE_FIXED64), np.uint8)
        mat = np.hstack([np.tile(tag, (n, 1)), bits.astype("<u8").view(np.uint8).reshape(n, 8)])
        seg.fixed(mat, np.where(present, mat.shape[1], 0))
        return
    values = _as_u64(arr)
    present = values != 0
    if not present.any():
        return
    tag = np.frombuffer(_tag(fl.number, _WIRE_VARINT), np.uint8)
    vmat, vbytes = varint_matrix(values)
    seg.fixed(np.hstack([np.tile(tag, (n, 1)), vmat]), np.where(present, len(tag) + vbytes, 0))


def _encode_message_field(seg: _Segments, fl: Field, col: Children, n: int) -> None:
    if col.table.n == 0:
        return
    kids = encode_rows(col.table)
    # Each child: tag + len + body (an empty child is still written: tag + 0).
    framed = _length_delimited(
        _tag(fl.number, _WIRE_LEN), kids, np.ones(col.table.n, dtype=np.bool_)
    )
    # Children are contiguous per parent and ascending, so the parents' bytes are the
    # framed bytes in order; only the per-parent lengths need summing.
    lens = np.bincount(col.parent, weights=framed.lens, minlength=n).astype(np.int64)
    seg.ragged(Ragged(framed.data, lens))


def encode_rows(table: RecordTable) -> Ragged:
    """Each row's protobuf message bytes (no length prefix)."""
    seg = _Segments(table.n)
    for fl in table.rtype.fields:
        col = table.cols.get(fl.name)
        if col is not None:
            _encode_field(seg, fl, col, table.n)
    return seg.rows()


def encode_delimited(table: RecordTable) -> bytes:
    """Rows as a varint-length-delimited stream, the body of an audit-record file."""
    body = encode_rows(table)
    lmat, lbytes = varint_matrix(body.lens.astype(np.uint64))
    return concat_rows([Ragged.from_matrix(lmat, lbytes), body], table.n).data.tobytes()
