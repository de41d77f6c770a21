"""The numpy record encoder that `netcap.records._encode` replaced, kept as the oracle of
tests/test_encode_compiled.py (compiled == this, byte for byte).

Every field becomes, per row, its encoded bytes (tag + value; nothing for a proto3
default), small fixed-width fields as one padded byte matrix with a length per row,
strings/bytes/sub-messages as `Ragged` rows; then rows are concatenated field by field in
field-number order. Rendered fields (addresses as text) go through lookup tables of the
text of every 16-bit value. Repeated scalars, strings and bytes are encoded row by row in
Python. Also the Python `RecordTable.from_rows` (record dicts to columns). (Moved here
from src/netcap/records/encode.py, render.py and table.py.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from netcap.gather import gather_u8
from netcap.records.schema import Field, Kind, RecordType, Render
from netcap.records.table import (
    Children,
    Column,
    Ragged,
    RecordTable,
    exclusive_cumsum,
    object_column,
    scalar_dtype,
)
from netcap.records.types import RECORDS

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
B = npt.NDArray[np.bool_]

# Per-row bytes of fixed maximum width, *transposed*: a (w, n) uint8 matrix holding
# byte k of every row in matrix row k (so building it is contiguous work), plus the
# bytes used per row (<= w).
Piece = tuple[U8, I64]

_R8 = np.arange(256, dtype=np.uint8)  # row positions for masks of short rows


def compact_pieces(pieces: Sequence[Piece], n: int) -> Ragged:
    """Row i = the used bytes of row i of every piece, in order: the pieces are stacked
    into one (w, n) matrix and compacted, in record order, with one boolean mask."""
    width = sum(m.shape[0] for m, _ in pieces)
    mat = np.empty((width, n), np.uint8)
    mask = np.empty((width, n), np.bool_)
    total = np.zeros(n, np.int64)
    row = 0
    for m, ln in pieces:
        w = m.shape[0]
        mat[row : row + w] = m
        if w <= 256:  # the usual case: compare in uint8, 8x less memory traffic
            mask[row : row + w] = _R8[:w, None] < ln.astype(np.uint8)[None, :]
        else:
            mask[row : row + w] = np.arange(w)[:, None] < ln[None, :]
        total += ln
        row += w
    # Row-major order of the transpose is record order. Indexing the transposed views
    # directly measured faster than making them contiguous first.
    data = mat.T[mask.T]
    return Ragged(data, total)



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


def _utf8(v: Any) -> Any:
    return v.encode() if isinstance(v, str) else v


def from_rows(rtype: RecordType, rows: Sequence[dict[str, Any]], pkt: Iterable[int] | None,
              only: frozenset[str] | None = None) -> RecordTable:
    """The Python `RecordTable.from_rows` the compiled one replaced: columns from
    per-record dicts of raw values; with `only`, just those columns.

    Values: ints/bools/floats for scalars, bytes or str (stored as UTF-8) for strings
    and bytes (raw address bytes for rendered fields), a list of dicts for repeated
    messages.
    """
    n = len(rows)
    present = {k for r in rows for k in r}
    if only is not None:
        present &= only
    cols: dict[str, Column] = {}
    for fl in rtype.fields:
        if fl.name not in present:
            continue
        if fl.kind is Kind.MESSAGE:
            parents: list[int] = []
            kids: list[dict[str, Any]] = []
            for i, r in enumerate(rows):
                v = r.get(fl.name)
                items = v if fl.repeated else ([v] if v is not None else [])
                for kid in items or []:
                    parents.append(i)
                    kids.append(kid)
            child = from_rows(RECORDS[fl.message or ""], kids, None)
            cols[fl.name] = Children(np.asarray(parents, dtype=np.int64), child)
        elif fl.repeated:  # repeated scalars, strings or bytes: a list per row
            cols[fl.name] = object_column([list(r.get(fl.name) or ()) for r in rows])
        elif fl.kind in (Kind.STRING, Kind.BYTES):
            cols[fl.name] = Ragged.from_list([_utf8(r.get(fl.name, b"")) for r in rows])
        else:
            cols[fl.name] = np.asarray([r.get(fl.name, 0) for r in rows],
                                       dtype=scalar_dtype(fl.kind))
    return RecordTable(
        rtype, n, cols, None if pkt is None else np.fromiter(pkt, dtype=np.int64, count=n)
    )
