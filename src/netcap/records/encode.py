"""Vectorized proto3 encoding of record tables.

Per-record protobuf objects cost ~1 µs plus the Python work to fill them; a capture
gives several records per packet, so the writer encodes whole columns with numpy
instead. Every field becomes, per row, its encoded bytes (tag + value; nothing for a
proto3 default), small fixed-width fields as one padded byte matrix with a length per
row, strings/bytes/sub-messages as `Ragged` rows; then rows are concatenated field by
field in field-number order. The result is byte-identical to the protobuf library's
`SerializeToString()` (tested), which is how the Go Netcap writes too.

Repeated scalars, strings and bytes (application records: cipher suites, TXT strings)
are lists per row and encoded row by row in Python: they are few, and exactness matters
more than speed there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .render import render_column, render_pieces
from .schema import Field, Kind, Render
from .table import Children, Piece, Ragged, RecordTable, compact_pieces, exclusive_cumsum

__all__ = ["encode_delimited", "encode_delimited_array", "encode_delimited_sized", "encode_rows",
           "varint_matrix"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LEN = 0, 1, 2
_THRESHOLDS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def _varint_bytes(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative ints: 64-bit two's complement, as proto3 writes them
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint_bytes((number << 3) | wire)


def _tagged_varints(tag: bytes, values: U64, vmax: int | None = None) -> tuple[U8, I64]:
    """tag + base-128 varint of every value, transposed: a (len(tag) + w, n) matrix
    (byte k of every row in matrix row k), plus the bytes each row uses."""
    n = values.shape[0]
    t = len(tag)
    if vmax is None:
        vmax = int(values.max()) if n else 0
    width = max(1, (vmax.bit_length() + 6) // 7)
    mat = np.empty((t + width, n), np.uint8)
    mat[:t] = np.frombuffer(tag, np.uint8)[:, None]
    if width == 1:  # the common case (flags, small numbers): the value is the byte
        mat[t] = values
        return mat, np.broadcast_to(np.int64(t + 1), (n,))  # a view: costs nothing
    nbytes = np.ones(n, np.int64)
    for k in range(1, width):
        nbytes += values >= _THRESHOLDS[k - 1]
    v = values
    for k in range(width - 1):
        row = mat[t + k]
        row[:] = v & np.uint64(0x7F)
        row |= (nbytes > k + 1).view(np.uint8) << 7  # continuation bit
        v = v >> np.uint64(7)
    mat[t + width - 1] = v
    return mat, nbytes + t


def varint_matrix(values: U64) -> tuple[U8, I64]:
    """Base-128 varints of uint64 values, transposed: a (w, n) matrix (byte k of every
    value in row k) plus the bytes used per value."""
    return _tagged_varints(b"", values)


def _as_u64(col: npt.NDArray[Any]) -> U64:
    # Negative int32/int64 encode as their 64-bit two's complement (10 bytes), as proto3 does.
    if col.dtype == np.uint64:
        return col
    if col.dtype == np.bool_:
        return col.astype(np.uint64)
    return col.astype(np.int64, copy=False).view(np.uint64)


_R8 = np.arange(256, dtype=np.uint8)  # row positions for masks of short rows
# Rows of ragged bytes up to this long are padded into the fixed-width matrix (cheap);
# longer ones (payloads) stay ragged and are stitched in by `concat_rows`.
_MAX_PAD = 255

# A field's bytes for every row: a fixed-width transposed Piece, or Ragged.
AnyPiece = Piece | Ragged


def _pad(r: Ragged) -> AnyPiece:
    """A ragged column as a fixed-width piece when its rows are short."""
    n = r.lens.shape[0]
    width = int(r.lens.max()) if n else 0
    if width > _MAX_PAD:
        return r
    mat = np.zeros((n, max(width, 1)), np.uint8)
    mat[_R8[None, : mat.shape[1]] < r.lens.astype(np.uint8)[:, None]] = r.data
    return mat.T, r.lens


def _assemble(pieces: list[AnyPiece], n: int) -> Ragged:
    """Row i = row i of every piece, in order. Runs of fixed-width pieces are stacked into
    one (w, n) matrix, transposed once, and compacted with a single boolean mask."""
    parts: list[Ragged] = []
    run: list[Piece] = []

    def flush() -> None:
        if run:
            parts.append(compact_pieces(run, n))
            run.clear()

    for p in pieces:
        if isinstance(p, Ragged):
            flush()
            parts.append(p)
        else:
            run.append(p)
    flush()
    return concat_rows([p for p in parts if p.data.size] or parts[:1], n)


def _lens(p: AnyPiece) -> I64:
    return p.lens if isinstance(p, Ragged) else p[1]


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


def _head(tag: bytes, lens: I64, present: npt.NDArray[np.bool_]) -> Piece:
    """tag + varint(len) per row as a fixed-width piece (nothing where not present)."""
    mat, used = _tagged_varints(tag, lens.astype(np.uint64))
    return mat, np.where(present, used, 0)


def _field_pieces(fl: Field, col: Any, n: int) -> list[AnyPiece]:
    if isinstance(col, Children):
        return _message_pieces(fl, col, n)
    if fl.repeated:
        return _repeated_pieces(fl, col)
    if fl.kind in (Kind.STRING, Kind.BYTES):
        if not isinstance(col, Ragged):  # invariant (not input)
            raise TypeError("unexpected column types")
        if not col.data.size:
            return []
        ltag = _tag(fl.number, _WIRE_LEN)
        if fl.render is not Render.NONE:
            texts = render_pieces(col, fl.render)
            lens = np.add.reduce([ln for _, ln in texts]) if len(texts) > 1 else texts[0][1]
            if int(lens.max()) > _MAX_PAD:  # odd ARP address sizes: long "?hex" text
                return [_head(ltag, lens, lens > 0), render_column(col, fl.render)]
            return [_head(ltag, lens, lens > 0), *texts]
        return [_head(ltag, col.lens, col.lens > 0), _pad(col)]
    arr = np.asarray(col)
    tag_bytes = _tag(fl.number, _WIRE_FIXED64 if fl.kind is Kind.DOUBLE else _WIRE_VARINT)
    tag: U8 = np.frombuffer(tag_bytes, np.uint8)
    t = tag.shape[0]
    if fl.kind is Kind.DOUBLE:
        bits = arr.astype(np.float64).view(np.uint64)
        present = bits != 0  # proto3 writes -0.0 (bits set), skips +0.0
        if not present.any():
            return []
        mat = np.empty((t + 8, n), np.uint8)
        mat[:t] = tag[:, None]
        mat[t:] = bits.astype("<u8").view(np.uint8).reshape(n, 8).T
        return [(mat, np.where(present, t + 8, 0))]
    if fl.kind is Kind.BOOL or arr.dtype == np.bool_:
        present = arr.astype(np.bool_, copy=False)
        if not present.any():
            return []
        mat = np.empty((t + 1, n), np.uint8)
        mat[:t] = tag[:, None]
        mat[t] = 1
        return [(mat, np.where(present, t + 1, 0))]
    values = _as_u64(arr)
    vmax = int(values.max()) if n else 0
    if vmax == 0:
        return []
    mat, used = _tagged_varints(tag_bytes, values, vmax)
    return [(mat, np.where(values != 0, used, 0))]


def _repeated_pieces(fl: Field, col: npt.NDArray[Any]) -> list[AnyPiece]:
    """A repeated scalar (packed: one tag, the length, every varint) or a repeated string
    or bytes field (tag + length + bytes per element, empty elements too), row by row."""
    ltag = _tag(fl.number, _WIRE_LEN)
    rows: list[bytes] = []
    for items in col:
        if not items:
            rows.append(b"")
        elif fl.kind in (Kind.STRING, Kind.BYTES):
            rows.append(b"".join(
                ltag + _varint_bytes(len(b)) + b
                for b in (x.encode() if isinstance(x, str) else bytes(x) for x in items)))
        elif fl.kind.is_varint:
            body = b"".join(_varint_bytes(int(x)) for x in items)
            rows.append(ltag + _varint_bytes(len(body)) + body)
        else:
            raise NotImplementedError(f"repeated {fl.kind.value} field {fl.name}")
    return [_pad(Ragged.from_list(rows))]


def _message_pieces(fl: Field, col: Children, n: int) -> list[AnyPiece]:
    m = col.table.n
    if m == 0:
        return []
    kid_pieces = _table_pieces(col.table)
    kid_lens = (np.add.reduce([_lens(p) for p in kid_pieces]) if kid_pieces
                else np.zeros(m, np.int64))
    # Each child: tag + len + body (an empty child is still written: tag + 0).
    head = _head(_tag(fl.number, _WIRE_LEN), kid_lens, np.ones(m, np.bool_))
    framed = _assemble([head, *kid_pieces], m)
    # Children are contiguous per parent and ascending, so the parents' bytes are the
    # framed bytes in order; only the per-parent lengths need summing.
    lens = np.bincount(col.parent, weights=framed.lens, minlength=n).astype(np.int64)
    return [_pad(Ragged(framed.data, lens))]


def _table_pieces(table: RecordTable) -> list[AnyPiece]:
    pieces: list[AnyPiece] = []
    for fl in table.rtype.fields:
        col = table.cols.get(fl.name)
        if col is not None:
            pieces += _field_pieces(fl, col, table.n)
    return pieces


def encode_rows(table: RecordTable) -> Ragged:
    """Each row's protobuf message bytes (no length prefix)."""
    return _assemble(_table_pieces(table), table.n)


def encode_delimited(table: RecordTable) -> bytes:
    """Rows as a varint-length-delimited stream, the body of an audit-record file."""
    return encode_delimited_array(table).tobytes()


def encode_delimited_array(table: RecordTable) -> U8:
    """`encode_delimited` as a numpy byte array (no copy into a bytes object)."""
    return encode_delimited_sized(table)[0]


def encode_delimited_sized(table: RecordTable) -> tuple[U8, I64]:
    """`encode_delimited_array` and the size of each delimited record in it (so records
    encoded apart can be interleaved)."""
    n = table.n
    pieces = _table_pieces(table)
    total = np.add.reduce([_lens(p) for p in pieces]) if pieces else np.zeros(n, np.int64)
    lmat, lbytes = varint_matrix(total.astype(np.uint64))
    sizes = np.asarray(total, np.int64) + np.asarray(lbytes, np.int64)
    return _assemble([(lmat, lbytes), *pieces], n).data, sizes
