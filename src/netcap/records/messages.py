"""Records read from audit-record files, as the columns the packet decoders produce.

A file is untrusted input: whoever wrote it, its records must meet the metrics as
packets do. So they become the columns of `records/table.py` that decoding makes —
addresses parsed back to their raw bytes (`Ragged`, 4 or 16 bytes for an IP), strings
as `Ragged`, repeated fields as a list per row (any mix of lengths), sub-records as
`Children` — and everything downstream applies the same closed label sets, budgets and
bounds, with memory a small multiple of the records' size. An address field holding
text that is not an address is left empty and counted (`ncap/bad_address`), and so is a
NaN or infinite number (`ncap/bad_number`): packets never give one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from .render import parse_address
from .schema import Field, Kind, RecordType, Render
from .table import Children, Ragged, RecordTable, object_column, scalar_dtype
from .types import RECORDS

__all__ = ["BAD_ADDRESS", "BAD_NUMBER", "record_table"]

BAD_ADDRESS = "ncap/bad_address"  # decode-error reasons (decode/errors.py)
BAD_NUMBER = "ncap/bad_number"


def record_table(record_type: str, msgs: Sequence[Any]) -> tuple[RecordTable, Counter[str]]:
    """Records of one type read from a file, as the columns the decoders make of packets
    (see records/table.py), plus decode errors by reason. Bytes fields (payloads) and
    repeated strings are left out: no metric reads them."""
    errors: Counter[str] = Counter()
    return _table(RECORDS[record_type], msgs, errors), errors


def _table(rtype: RecordType, msgs: Sequence[Any], errors: Counter[str]) -> RecordTable:
    n = len(msgs)
    cols: dict[str, Any] = {}
    for fl in rtype.fields:
        name = fl.name
        if fl.kind is Kind.BYTES or (fl.repeated and fl.kind is Kind.STRING):
            continue
        if fl.kind is Kind.MESSAGE:
            cols[name] = _children(fl, msgs, errors)
        elif fl.repeated:  # a list per row, as decoded: any mix of lengths
            rows = [list(getattr(m, name)) for m in msgs]
            if fl.kind is Kind.DOUBLE:
                rows = [_finite(r, errors) for r in rows]
            cols[name] = object_column(rows)
        elif fl.kind is Kind.STRING:
            texts = [getattr(m, name) for m in msgs]
            if fl.render is Render.NONE:
                cols[name] = Ragged.from_list([t.encode() for t in texts])
                continue
            parsed = {t: parse_address(t, fl.render) for t in set(texts)}  # few distinct
            raw = [parsed[t] for t in texts]
            bad = raw.count(None)
            if bad:
                errors[BAD_ADDRESS] += bad
            cols[name] = Ragged.from_list([r or b"" for r in raw])
        else:
            col = np.fromiter((getattr(m, name) for m in msgs), scalar_dtype(fl.kind), n)
            if fl.kind is Kind.DOUBLE:
                # NaN and infinities are never decoded from packets; in a histogram they
                # would make its sum NaN or infinite (and the backfill's text unwritable).
                nonfinite = ~np.isfinite(col)
                if nonfinite.any():
                    errors[BAD_NUMBER] += int(nonfinite.sum())
                    col[nonfinite] = 0.0  # as absent (proto3's default)
            cols[name] = col
    return RecordTable(rtype, n, cols)


def _finite(values: list[float], errors: Counter[str]) -> list[float]:
    """The finite values of a repeated double (the others counted, as for a scalar)."""
    kept = [v for v in values if math.isfinite(v)]
    if len(kept) != len(values):
        errors[BAD_NUMBER] += len(values) - len(kept)
    return kept


def _children(fl: Field, msgs: Sequence[Any], errors: Counter[str]) -> Children:
    """A message field's sub-records as a child table, parents ascending."""
    name = fl.name
    if fl.repeated:
        counts = [len(getattr(m, name)) for m in msgs]
        kids = [k for m in msgs for k in getattr(m, name)]
        parent = np.repeat(np.arange(len(msgs), dtype=np.int64), counts)
    else:
        rows = [i for i, m in enumerate(msgs) if m.HasField(name)]
        kids = [getattr(msgs[i], name) for i in rows]
        parent = np.asarray(rows, np.int64)
    return Children(parent, _table(RECORDS[fl.message or ""], kids, errors))
