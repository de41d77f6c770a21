"""Label values and request/response matching for the application-layer metrics.

Label values are closed sets (a name per well-known code, else `other`). DNS response
times are measured in packet time: a query waits in a bounded table under its
transaction key (client address and port, server address and port, ID) until the
response with the same key arrives; queries never answered leave after `timeout_ns` of
packet time, or when the table is full (oldest first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

from ..analyzers.dhcp import MESSAGE_TYPES
from ..records.table import Children, Ragged

__all__ = ["DHCP_TYPES", "DNS_OPCODES", "DNS_QTYPES", "DNS_RCODES", "NTP_MODES",
           "Transactions", "children", "name_of", "values"]

DNS_OPCODES = {0: "query", 1: "iquery", 2: "status", 4: "notify", 5: "update", 6: "dso"}
DNS_RCODES = {0: "noerror", 1: "formerr", 2: "servfail", 3: "nxdomain", 4: "notimp",
              5: "refused", 6: "yxdomain", 7: "yxrrset", 8: "nxrrset", 9: "notauth",
              10: "notzone"}
DNS_QTYPES = {1: "a", 2: "ns", 5: "cname", 6: "soa", 12: "ptr", 13: "hinfo", 15: "mx",
              16: "txt", 28: "aaaa", 33: "srv", 35: "naptr", 41: "opt", 43: "ds",
              46: "rrsig", 47: "nsec", 48: "dnskey", 64: "svcb", 65: "https", 252: "axfr",
              255: "any"}
NTP_MODES = {0: "reserved", 1: "symmetric_active", 2: "symmetric_passive", 3: "client",
             4: "server", 5: "broadcast", 6: "control", 7: "private"}
DHCP_TYPES = MESSAGE_TYPES


def name_of(table: dict[int, str], code: int) -> str:
    return table.get(code, "other")


def values(col: Any, n: int) -> list[Any]:
    """A column as a list of Python values (raw bytes for decoded addresses, text for
    addresses read from files: either is a fine matching key within one run)."""
    if col is None:
        return [None] * n
    if isinstance(col, Ragged):
        return col.tolist()
    out: list[Any] = np.asarray(col).tolist()
    return out


def children(col: Any, n: int) -> list[list[dict[str, Any]]]:
    """Per row, its sub-records as dicts: from a decoded Children column, or as already
    listed (records read from a file)."""
    if col is None:
        return [[] for _ in range(n)]
    if isinstance(col, Children):
        out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        for p, kid in zip(col.parent.tolist(), col.table.to_dicts(render=False), strict=True):
            out[p].append(kid)
        return out
    return list(col)


class Transactions:
    """Requests waiting for their responses, by key, in packet time."""

    def __init__(self, limit: int = 65536, timeout_ns: int = 60 * 10**9) -> None:
        self.limit = limit
        self.timeout_ns = timeout_ns
        self.pending: OrderedDict[Hashable, int] = OrderedDict()

    def request(self, key: Hashable, ts: int) -> None:
        self.pending.pop(key, None)  # a repeated request restarts the clock
        self.pending[key] = ts
        while len(self.pending) > self.limit:
            self.pending.popitem(last=False)
        # Oldest first (packet time rarely goes back): drop the expired ones.
        while self.pending:
            first_ts = next(iter(self.pending.values()))
            if ts - first_ts <= self.timeout_ns:
                break
            self.pending.popitem(last=False)

    def response(self, key: Hashable, ts: int) -> float | None:
        """Seconds since the request with this key, or None if none is waiting."""
        start = self.pending.pop(key, None)
        if start is None or ts < start:
            return None
        return (ts - start) / 1e9
