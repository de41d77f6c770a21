"""Columnar audit records: one table per record type per batch.

A `RecordTable` holds the records of one type, one row per record, as columns keyed by
the Netcap field name. Rows are in packet order; `pkt` gives each row's packet index in
its batch. A column is one of

- a numpy array (scalar fields; absent column = every value is the proto3 default),
- a `Ragged` (string and bytes fields: all rows' bytes back to back plus lengths;
  fields with a `render` hold the *raw* address bytes, rendered to text on output),
- `Children` (message fields: a child table plus, per child row, its parent row;
  parents ascending, so a parent's children are contiguous and in order).

Columns whose name starts with '_' are private helper columns (e.g. payload offsets)
that sinks may use; they are never encoded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import Kind, RecordType, Render

__all__ = ["Children", "Column", "Ragged", "RecordTable", "exclusive_cumsum", "object_column",
           "scalar_dtype"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]


def exclusive_cumsum(lens: npt.NDArray[Any]) -> I64:
    out = np.zeros(lens.shape[0], dtype=np.int64)
    if lens.shape[0] > 1:
        np.cumsum(lens[:-1], out=out[1:])
    return out


@dataclass(slots=True)
class Ragged:
    """Variable-length byte strings, row i = data[starts[i] : starts[i] + lens[i]]."""

    data: U8
    lens: I64

    def __len__(self) -> int:
        return int(self.lens.shape[0])

    @property
    def starts(self) -> I64:
        return exclusive_cumsum(self.lens)

    def row(self, i: int) -> bytes:
        s = int(self.lens[:i].sum())
        return self.data[s : s + int(self.lens[i])].tobytes()

    def tolist(self) -> list[bytes]:
        from ._encode import ragged_rows  # compiled; it imports this module

        return ragged_rows(self)

    @staticmethod
    def from_list(items: Sequence[bytes]) -> Ragged:
        lens = np.fromiter((len(b) for b in items), dtype=np.int64, count=len(items))
        return Ragged(np.frombuffer(b"".join(items), dtype=np.uint8).copy(), lens)

    @staticmethod
    def from_matrix(mat: U8, lens: I64 | None = None) -> Ragged:
        """Rows of a 2-D byte matrix, each cut to its length (default: full width)."""
        n, w = mat.shape
        if lens is None:
            return Ragged(np.ascontiguousarray(mat).reshape(-1), np.full(n, w, np.int64))
        mask = np.arange(w)[None, :] < lens[:, None]
        return Ragged(mat[mask], lens.astype(np.int64, copy=False))

    @staticmethod
    def gather(buf: U8, starts: I64, lens: I64) -> Ragged:
        """Slices buf[starts[i] : starts[i] + lens[i]] of a flat buffer, vectorized."""
        lens = lens.astype(np.int64, copy=False)
        total = int(lens.sum())
        if total == 0:
            return Ragged(np.zeros(0, np.uint8), lens.copy())
        idx = np.repeat(starts - exclusive_cumsum(lens), lens) + np.arange(total)
        return Ragged(buf[idx], lens.copy())

    def take(self, rows: I64) -> Ragged:
        return Ragged.gather(self.data, self.starts[rows], self.lens[rows])

    @staticmethod
    def concat(parts: Sequence[Ragged]) -> Ragged:
        return Ragged(
            np.concatenate([p.data for p in parts]) if parts else np.zeros(0, np.uint8),
            np.concatenate([p.lens for p in parts]) if parts else np.zeros(0, np.int64),
        )

    def equals(self, other: Ragged) -> bool:
        return np.array_equal(self.lens, other.lens) and np.array_equal(self.data, other.data)


@dataclass(slots=True)
class Children:
    """Rows of a child table attached to parent rows (ascending `parent`)."""

    parent: I64
    table: RecordTable


Column = npt.NDArray[Any] | Ragged | Children


@dataclass(slots=True)
class RecordTable:
    rtype: RecordType
    n: int
    cols: dict[str, Column] = field(default_factory=dict)
    pkt: I64 | None = None  # packet index within the batch; None for child tables

    def take(self, rows: I64) -> RecordTable:
        """A new table of the given rows, in the given order."""
        cols: dict[str, Column] = {}
        for name, col in self.cols.items():
            if isinstance(col, Ragged):
                cols[name] = col.take(rows)
            elif isinstance(col, Children):
                cols[name] = _take_children(col, rows, self.n)
            else:
                cols[name] = col[rows]
        pkt = None if self.pkt is None else self.pkt[rows]
        return RecordTable(self.rtype, int(rows.shape[0]), cols, pkt)

    @staticmethod
    def concat(tables: Sequence[RecordTable]) -> RecordTable:
        """Rows of all tables, one after another (all of one record type)."""
        tables = [t for t in tables if t.n]
        if not tables:
            raise ValueError("concat of no rows")
        rtype = tables[0].rtype
        if len(tables) == 1:
            return tables[0]
        names = {name for t in tables for name in t.cols}
        cols: dict[str, Column] = {}
        for name in _field_order(rtype, names):
            parts = [t.cols.get(name) for t in tables]
            cols[name] = _concat_column(rtype, name, parts, [t.n for t in tables])
        pkts = [t.pkt for t in tables if t.pkt is not None]
        pkt = np.concatenate(pkts) if len(pkts) == len(tables) else None
        return RecordTable(rtype, sum(t.n for t in tables), cols, pkt)

    def sorted_by_packet(self) -> RecordTable:
        if self.pkt is None:  # invariant (not input)
            raise TypeError("self.pkt is not set")
        if self.n < 2 or bool(np.all(self.pkt[1:] >= self.pkt[:-1])):
            return self
        return self.take(np.argsort(self.pkt, kind="stable"))

    def to_dicts(self, render: bool = True) -> list[dict[str, Any]]:
        """Rows as dicts of Python values, keyed by Netcap field names.

        Absent and default-valued fields are left out, as in the protobuf encoding;
        rendered fields become text (IPs, MACs) when `render` is true.
        """
        from .render import render_column  # local: render (through _encode) imports this module

        rows: list[dict[str, Any]] = [{} for _ in range(self.n)]
        for fl in self.rtype.fields:
            col = self.cols.get(fl.name)
            if col is None:
                continue
            values: list[Any]
            if isinstance(col, Children):
                kids = col.table.to_dicts(render)
                grouped: list[list[dict[str, Any]]] = [[] for _ in range(self.n)]
                for p, kid in zip(col.parent.tolist(), kids, strict=True):
                    grouped[p].append(kid)
                values = grouped if fl.repeated else [g[0] if g else None for g in grouped]
            elif isinstance(col, Ragged):
                if render and fl.render is not Render.NONE:
                    col = render_column(col, fl.render)
                raw = col.tolist()
                values = [b.decode("utf-8", "replace") for b in raw] if (
                    fl.kind is Kind.STRING
                ) else raw
            elif col.dtype.kind == "O":  # repeated scalars, strings or bytes
                values = [[x.decode("utf-8", "replace") if isinstance(x, bytes) else x
                           for x in v] if fl.kind is Kind.STRING else list(v) for v in col]
            elif fl.kind is Kind.BOOL:
                values = col.astype(bool).tolist()
            elif fl.kind is Kind.DOUBLE:
                values = col.astype(np.float64).tolist()
            elif fl.kind in (Kind.UINT32, Kind.UINT64):
                values = col.astype(np.uint64).tolist()
            else:
                values = col.astype(np.int64).tolist()
            for row, v in zip(rows, values, strict=True):
                if _present(v, fl.kind, fl.repeated):
                    row[fl.name] = v
        return rows

    @staticmethod
    def from_rows(rtype: RecordType, rows: Sequence[dict[str, Any]], pkt: Iterable[int] | None,
                  only: frozenset[str] | None = None) -> RecordTable:
        """Build columns from per-record dicts of raw values (the stream analyzers' and
        datagram analyzers' output); with `only`, just those columns. Compiled (its loops
        over rows are C): `_encode.from_rows`.

        Values: ints/bools/floats for scalars, bytes or str (stored as UTF-8) for strings
        and bytes (raw address bytes for rendered fields), a list of dicts for repeated
        messages.
        """
        from ._encode import from_rows  # local: _encode imports this module

        return from_rows(rtype, rows, pkt, only)


def object_column(items: list[Any]) -> npt.NDArray[Any]:
    """A 1-D object array holding these items (numpy would make a 2-D array of lists of
    one length, and refuse lists of different lengths)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _present(v: Any, kind: Kind, repeated: bool) -> bool:
    """Whether proto3 writes this value: not the default. -0.0 is written (its bits are
    not zero); a singular sub-message is written whenever it is set, even if empty."""
    if repeated and kind is not Kind.MESSAGE:
        return bool(v)
    if kind is Kind.DOUBLE:
        return bool(v) or math.copysign(1.0, v) < 0
    if kind is Kind.MESSAGE and not repeated:
        return v is not None
    return bool(v)


def scalar_dtype(kind: Kind) -> type[np.generic]:
    """The column dtype of a scalar field of this kind."""
    if kind is Kind.BOOL:
        return np.bool_
    if kind is Kind.DOUBLE:
        return np.float64
    if kind is Kind.UINT64:
        return np.uint64
    return np.int64


def _field_order(rtype: RecordType, names: set[str]) -> list[str]:
    known = [f.name for f in rtype.fields if f.name in names]
    return known + sorted(names - set(known))


def _concat_column(
    rtype: RecordType, name: str, parts: list[Column | None], sizes: list[int]
) -> Column:
    fl = rtype.by_name.get(name)
    sample = next(p for p in parts if p is not None)
    if isinstance(sample, Ragged):
        return Ragged.concat(
            [p if isinstance(p, Ragged) else Ragged(np.zeros(0, np.uint8), np.zeros(n, np.int64))
             for p, n in zip(parts, sizes, strict=True)]
        )
    if isinstance(sample, Children):
        offset = 0
        parents: list[I64] = []
        tables: list[RecordTable] = []
        for p, n in zip(parts, sizes, strict=True):
            if isinstance(p, Children) and p.table.n:
                parents.append(p.parent + offset)
                tables.append(p.table)
            offset += n
        if not tables:
            return Children(np.zeros(0, np.int64), RecordTable(sample.table.rtype, 0))
        return Children(np.concatenate(parents), RecordTable.concat(tables))
    dtype = sample.dtype if fl is None else np.result_type(
        *[p.dtype for p in parts if isinstance(p, np.ndarray)]
    )
    if dtype.kind == "O":  # lists per row: a missing part is empty lists
        return np.concatenate([p if isinstance(p, np.ndarray) else object_column([[]] * n)
                               for p, n in zip(parts, sizes, strict=True)])
    return np.concatenate(
        [p if isinstance(p, np.ndarray) else np.zeros(n, dtype)
         for p, n in zip(parts, sizes, strict=True)]
    )


def _take_children(col: Children, rows: I64, nparent: int) -> Children:
    # Position of each old parent row in the new order (-1: dropped); rows are unique.
    newpos = np.full(nparent, -1, dtype=np.int64)
    newpos[rows] = np.arange(rows.shape[0], dtype=np.int64)
    mapped = newpos[col.parent]
    keep = np.flatnonzero(mapped >= 0)
    order = keep[np.argsort(mapped[keep], kind="stable")]
    return Children(mapped[order], col.table.take(order))
