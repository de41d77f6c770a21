"""Label values and request/response matching for the application-layer metrics.

Label values are closed sets (a name per well-known code, else `other`). DNS response
times are measured in packet time: a query waits in a bounded table under its
transaction key (client address and port, server address and port, ID) until the
response with the same key arrives; queries never answered leave after `timeout_ns` of
packet time, or when the table is full (oldest first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..analyzers.dhcp import MESSAGE_TYPES
from ..records.table import Children, Ragged

__all__ = ["DHCP_TYPES", "DNS_OPCODES", "DNS_QTYPES", "DNS_RCODES", "NTP_MODES",
           "Transactions", "children", "name_of", "transaction_keys", "values"]

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

    def pair(self, responses: Sequence[Any], keys: Sequence[Hashable], times: Sequence[int]
             ) -> tuple[list[float], list[tuple[Hashable, int]]]:
        """Messages in turn (is it a response, its key, its packet time): a request waits
        under its key (a repeated one restarts the clock), a response takes the request
        waiting under its key. Returns the response times in seconds and the responses
        that found no request (or one later than themselves) as (key, time).

        One loop for a batch: a method call per message cost more than its work."""
        pending, limit, timeout = self.pending, self.limit, self.timeout_ns
        latencies: list[float] = []
        orphans: list[tuple[Hashable, int]] = []
        for is_response, key, ts in zip(responses, keys, times, strict=True):
            if is_response:
                start = pending.pop(key, None)
                if start is None or ts < start:
                    orphans.append((key, ts))
                else:
                    latencies.append((ts - start) / 1e9)
                continue
            pending.pop(key, None)
            pending[key] = ts
            if len(pending) > limit:
                pending.popitem(last=False)
            # Oldest first (packet time rarely goes back): drop the expired ones.
            while pending and ts - next(iter(pending.values())) > timeout:
                pending.popitem(last=False)
        return latencies, orphans


def transaction_keys(responses: npt.NDArray[np.bool_], cols: dict[str, Any], n: int,
                     id_field: str) -> list[bytes]:
    """Each message's transaction key as bytes: (client address, client port, server
    address, server port, `id_field`), the client being the sender of a request and the
    receiver of a response. Made for a whole batch in numpy (a tuple per message, of an
    address bytes object each side, cost ~0.5 us a message)."""
    src, dst = cols.get("SrcIP"), cols.get("DstIP")
    w = 2 + max(_longest(src), _longest(dst)) + 2  # an endpoint: length, address, port
    key = np.zeros((n, 2 * w + 2), np.uint8)
    _endpoint(key[:, :w], src, cols.get("SrcPort"))
    _endpoint(key[:, w : 2 * w], dst, cols.get("DstPort"))
    key[:, 2 * w :] = _u16(cols.get(id_field), n)
    flip = np.flatnonzero(responses)  # responses: the receiver is the client
    if flip.size:
        sender = key[flip, :w]
        key[flip, :w] = key[flip, w : 2 * w]
        key[flip, w : 2 * w] = sender
    out: list[bytes] = key.view(f"V{key.shape[1]}").ravel().tolist()
    return out


def _longest(col: Any) -> int:
    return int(col.lens.max()) if isinstance(col, Ragged) and len(col) else 0


def _endpoint(out: npt.NDArray[np.uint8], addr: Any, port: Any) -> None:
    """Fill rows of (address length: 2 bytes, the address zero-padded, port: 2 bytes), so
    that addresses of different lengths never read the same. No column: zeros."""
    n, width = out.shape[0], out.shape[1] - 4
    if isinstance(addr, Ragged) and n:
        lens = addr.lens
        out[:, :2] = _u16(np.minimum(lens, 0xFFFF), n)
        if lens[0] == width and (lens == width).all():  # the usual batch: one family
            out[:, 2 : 2 + width] = addr.data.reshape(n, width)
        else:
            out[:, 2 : 2 + width][np.arange(width) < lens.reshape(-1, 1)] = addr.data
    out[:, 2 + width :] = _u16(port, n)


def _u16(col: Any, n: int) -> npt.NDArray[np.uint8]:
    """A port, ID or length column as 2 bytes a row (0 when absent)."""
    v = np.zeros(n, np.uint16) if col is None else np.asarray(col).astype(np.uint16)
    return v.reshape(-1, 1).view(np.uint8)
