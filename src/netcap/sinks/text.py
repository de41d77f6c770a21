"""Records as text: JSON lines, CSV and a readable table (what `net dump` prints).

Keys and columns are the Netcap field names from the declarations. Values: integers as
JSON numbers (Timestamp stays integer nanoseconds), IPs and MACs as the text stored in the
file, bytes fields as lower-case hex (CSV, table) or base64 (JSON, as protobuf's JSON
mapping does), nested messages as JSON objects. JSON lines omit proto3 defaults
(absent = 0/false/empty), like protobuf's JSON mapping, which also gives the JSON
spelling of non-finite doubles ("NaN", "Infinity", "-Infinity"); CSV has every column.
"""

from __future__ import annotations

import base64
import csv
import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from ..records.schema import Kind, RecordType
from ..records.types import RECORDS

__all__ = ["to_dict", "write_csv", "write_json", "write_table"]


def to_dict(rtype: RecordType, msg: Any, omit_defaults: bool = True,
            bytes_as: str = "base64") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fl in rtype.fields:
        value = getattr(msg, fl.name)
        if fl.kind is Kind.MESSAGE:
            sub = RECORDS[fl.message or ""]
            if fl.repeated:
                v: Any = [to_dict(sub, m, omit_defaults, bytes_as) for m in value]
            else:
                v = to_dict(sub, value, omit_defaults, bytes_as) if msg.HasField(fl.name) else None
        elif fl.kind is Kind.BYTES:
            if fl.repeated:
                v = [_bytes(b, bytes_as) for b in value]
            else:
                v = _bytes(value, bytes_as) if value else ""
        elif fl.repeated:
            v = list(value)
        else:
            v = value
        if omit_defaults and not v:
            continue
        out[fl.name] = v
    return out


def _bytes(b: bytes, how: str) -> str:
    return base64.b64encode(b).decode() if how == "base64" else b.hex()


# JSON has no NaN or infinities; protobuf's JSON mapping writes them as these strings.
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return _NON_FINITE[repr(v)]
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def write_json(rtype: RecordType, msgs: Iterable[Any], out: TextIO) -> None:
    for m in msgs:
        d = to_dict(rtype, m)
        try:
            line = json.dumps(d, separators=(",", ":"), allow_nan=False)
        except ValueError:  # a NaN or infinite double somewhere (rare: damaged or foreign)
            line = json.dumps(_json_value(d), separators=(",", ":"))
        out.write(line + "\n")


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":")) if v else ""
    if v is None:
        return ""
    return str(v)


def write_csv(rtype: RecordType, msgs: Iterable[Any], out: TextIO) -> None:
    w = csv.writer(out, lineterminator="\n")
    names = [f.name for f in rtype.fields]
    w.writerow(names)
    for m in msgs:
        d = to_dict(rtype, m, omit_defaults=False, bytes_as="hex")
        w.writerow([_cell(d.get(n)) for n in names])


def _compact(v: Any) -> str:
    """Nested records in a table cell: each one's values joined by '/', e.g. TCP options
    `2/4/05b4 1/1` (kind/length/data)."""
    items = v if isinstance(v, list) else [v]
    return " ".join(
        "/".join(_cell(x) for x in (i.values() if isinstance(i, dict) else [i])) for i in items
    )


def _time(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    try:
        stamp = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ns)
    return f"{stamp}.{frac:09d}"


# A page also ends after this much cell text, so memory does not grow with the size of
# the records (a file may hold records of megabytes: 50 of them would be held at once).
_PAGE_TEXT = 1 << 20


def write_table(rtype: RecordType, msgs: Iterable[Any], out: TextIO, page: int = 50) -> None:
    """Aligned columns, widths fitted per page of records; only columns with a value in
    the page are shown, so wide record types stay readable."""
    batch: list[dict[str, str]] = []
    text = 0

    def flush() -> None:
        if not batch:
            return
        cols = [f.name for f in rtype.fields if any(r.get(f.name) for r in batch)]
        widths = {c: max(len(c), *(len(r.get(c, "")) for r in batch)) for c in cols}
        out.write("  ".join(c.ljust(widths[c]) for c in cols).rstrip() + "\n")
        for r in batch:
            out.write("  ".join(r.get(c, "").ljust(widths[c]) for c in cols).rstrip() + "\n")
        batch.clear()

    for m in msgs:
        d = to_dict(rtype, m, omit_defaults=True, bytes_as="hex")
        row = {k: (_time(v) if k.startswith("Timestamp") and isinstance(v, int)
                   else _compact(v) if isinstance(v, list | dict) else _cell(v))
               for k, v in d.items()}
        batch.append(row)
        text += sum(map(len, row.values()))
        if len(batch) >= page or text >= _PAGE_TEXT:
            flush()
            out.write("\n")
            text = 0
    flush()
