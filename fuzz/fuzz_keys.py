"""Fuzz target: the compiled per-row steps of the packet metrics (netcap.metrics._keys),
against the numpy formulas they replaced (tests/test_metric_keys.py has the same
comparisons). They parse no bytes, but they take values from audit records, which a file
may set to anything: every table lookup must stay inside its table. Any exception, any
difference from numpy, or any sanitizer report is a bug.

Input: one byte choosing the histogram bounds and the missing flag columns, then the
rest read as int64 values (little-endian; a short tail padded with zeros), used as ports,
EtherTypes, flag columns and histogram values, and as float64 for histogram values."""

from __future__ import annotations

import sys

import numpy as np

from netcap.metrics._keys import bucket_counts, lookup, services, small_buckets, stuck, tcp_keys
from netcap.metrics.families import ENTROPY_BUCKETS, LATENCY_BUCKETS, PAYLOAD_BUCKETS
from netcap.metrics.state import (
    _ETHERNET_KEY,
    _FLAGS_INDEX,
    _SERVICE_OF_PORT,
    SERVICE_NAMES,
    _set,
)

_BOUNDS = [np.asarray(b, np.float64) for b in (PAYLOAD_BUCKETS, ENTROPY_BUCKETS,
                                               LATENCY_BUCKETS)]
_NO_TABLE = np.zeros(0, np.uint8)
_TABLES = [small_buckets(b, 1 << 16) for b in _BOUNDS]  # as the metrics use them


def _check(what: str, got: np.ndarray, want: np.ndarray) -> None:
    if got.tolist() != want.tolist():
        raise RuntimeError(f"{what}: {got.tolist()} != {want.tolist()}")


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris's name)
    if not data:
        return
    head, rest = data[0], data[1:]
    rest += bytes(-len(rest) % 8)
    values = np.frombuffer(rest, "<i8").astype(np.int64)
    floats = np.frombuffer(rest, "<f8").astype(np.float64)
    n = values.shape[0]
    edges = _BOUNDS[head % 3]
    for v in (values, floats):
        want = np.bincount(np.searchsorted(edges, v, side="left"), minlength=len(edges) + 1)
        _check("bucket_counts", bucket_counts(v, edges, _NO_TABLE), want)
        _check("bucket_counts table", bucket_counts(v, edges, _TABLES[head % 3]), want)
    sport, dport = values, values[::-1].copy()
    s_src, s_dst = _SERVICE_OF_PORT[sport & 0xFFFF], _SERVICE_OF_PORT[dport & 0xFFFF]
    service = np.where(s_dst > 0, s_dst, s_src)
    _check("services", services(sport, dport, _SERVICE_OF_PORT), service)
    flags = [None if head >> (2 + k) & 1 else np.roll(values, k) & (1 << k) for k in range(6)]
    bits = np.zeros(n, np.uint8)
    for k, f in enumerate(flags):
        if f is not None:
            bits |= (f != 0).view(np.uint8) << k
    want = _FLAGS_INDEX[bits] * len(SERVICE_NAMES) + service
    _check("tcp_keys", tcp_keys([_set(f) for f in flags], service, _FLAGS_INDEX,
                                len(SERVICE_NAMES)), want)
    inside = (values >= 0) & (values < 65536)
    want = np.where(inside, _ETHERNET_KEY[np.where(inside, values, 0)], 5)
    _check("lookup", lookup(values, _ETHERNET_KEY, 5), want)
    pkts = np.abs(values % max(n, 1)) if n else values
    below, above = [pkts[: n // 2].copy()], [pkts[n // 2 :].copy()]
    error = (values & 3).astype(np.int16)
    marked = set(below[0].tolist()) - set(above[0].tolist())
    count = sum(1 for p in marked if error[p] == 0)
    if stuck(n, below, above, error) != count:
        raise RuntimeError("stuck")


def seeds() -> list[bytes]:
    """Ports of named services, common EtherTypes and sizes, and float edge cases."""
    ints = [0, 22, 53, 80, 443, 0x0800, 0x86DD, 0x8100, 65535, 65536, -1, 1500, 2**62]
    floats = [0.0, -0.0, 64.0, float("nan"), float("inf"), -float("inf"), 1e-4, 7.95]
    return [bytes([0]) + np.asarray(ints, "<i8").tobytes(),
            bytes([0xFD]) + np.asarray(floats, "<f8").tobytes()]


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
