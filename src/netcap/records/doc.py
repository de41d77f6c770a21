"""`docs/records.md`, generated from the record declarations (run this module to print it)."""

from __future__ import annotations

from .schema import Kind
from .types import RECORDS

__all__ = ["records_markdown"]


def records_markdown() -> str:
    out = [
        "# Audit records",
        "",
        "Generated from `src/netcap/records/types.py` by `python -m netcap.records.doc`;"
        " do not edit.",
        "",
        "Names, field numbers and types are the Go Netcap's (`netcap.proto`), so files are"
        " interchangeable. Timestamps are Unix nanoseconds of the packet. *label* marks"
        " fields that are safe as Prometheus label values (bounded, no identifiers).",
        "",
    ]
    for rt in RECORDS.values():
        enum = f" (Header.Type {rt.type_enum})" if rt.type_enum is not None else ""
        out += [f"## {rt.name}{enum}", "", rt.doc, "", "| # | field | type | label | doc |",
                "|---|---|---|---|---|"]
        for fl in rt.fields:
            typ = fl.message if fl.kind is Kind.MESSAGE else fl.kind.value
            if fl.repeated:
                typ = f"repeated {typ}"
            out.append(f"| {fl.number} | {fl.name} | {typ} | {'yes' if fl.label else ''} |"
                       f" {fl.doc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(records_markdown(), end="")
