"""`docs/metrics.md`, generated from the metric families (run this module to print it)."""

from __future__ import annotations

from .families import FAMILIES, PAYLOAD_BUCKETS, Kind

__all__ = ["metrics_markdown"]


def metrics_markdown() -> str:
    out = [
        "# Metrics",
        "",
        "Generated from `src/netcap/metrics/families.py` by `python -m netcap.metrics.doc`;"
        " do not edit.",
        "",
        "Served by `net export` on `/metrics` (default `127.0.0.1:7777`), beside the Python"
        " process and GC collectors (`process_*`, `python_*`). Every label takes values from"
        " a closed set (protocol and service names, reason codes, or `other`): no IP"
        " address, port or other identifier is ever a label value. Histogram buckets (bytes):"
        f" {', '.join(map(str, PAYLOAD_BUCKETS))}.",
        "",
        "",
        "Opt-in labels (`net export -labels FAMILY=LABEL,...`) add addresses or ports to a"
        " family; each family then stays under a series budget (`-series-budget`, default"
        " 1000): past it, new values become `other` (bounded labels are kept) and"
        " `nc_metric_label_overflow_total{metric}` counts the folded increments;"
        " `-label-expiry` forgets idle series.",
        "",
        "| name | type | labels | opt-in labels | meaning |",
        "|---|---|---|---|---|",
    ]
    for f in FAMILIES.values():
        name = f.name + "_info" if f.kind is Kind.INFO else f.exposed
        labels = ", ".join(f.labels) if f.kind is not Kind.INFO else "version, python"
        optional = ", ".join(f.optional)
        out.append(f"| `{name}` | {f.kind.value} | {labels} | {optional} | {f.doc} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(metrics_markdown(), end="")
