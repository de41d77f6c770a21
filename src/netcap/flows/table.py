"""The connection table: per-batch flow summaries merged in input order, in packet time.

A flow ends when it is closed (a RST, or a FIN from each side) and `linger_ns` of packet
time has passed since its last packet (late retransmissions and the last ACK still
count), when it has been idle longer than its transport's timeout, when the table is
full (`max_flows`: the least recently seen flows go first, counted as evictions), or at
the end of input (`flush`). Ended flows come out as `Connection` record tables.

The rule is applied per packet: a packet that comes after its flow's connection has
ended by it starts a new connection, whether the end was found at a batch's end (its
latest packet time) or within the batch (the summaries cut flows where it may apply,
and `update` decides each cut). So connections do not depend on where batches end, as
long as a flow's packet times do not go back and the summaries were made with the
table's limits; what does is when an ended connection comes out, and evictions.

The table itself is compiled (_table.Table: one C array of open flows in the order they
came, an open-addressing index from key to row): merging a batch, recognising protocols
and the timeouts are C loops, one call per batch. Ended flows come out as numpy columns
(`_Rows`), which the records and metrics read. The clock is the latest packet time seen;
it never goes back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ..decode.linktypes import LT
from ..records.table import Ragged, RecordTable
from ..records.types import RECORDS
from . import _table
from .extract import APP_PROTOCOLS, LINGER_NS, TCP_TIMEOUT_NS, UDP_TIMEOUT_NS, FlowBatch

__all__ = ["ConnectionTable", "Ended"]

I64 = npt.NDArray[np.int64]
# Recognised connections, packed (extract.APP_ENTRY_BYTES each)
Apps = bytes | bytearray
_TCP = 6
# ApplicationProto as the metrics label it: 0 none, else APP_PROTOCOLS[x - 1].
_APP_LABELS = ("other", *(p.lower() for p in APP_PROTOCOLS))
# LinkProto: gopacket's names for the link types, as the Go Netcap writes them.
_LINK_NAMES = {LT.ETHERNET: "Ethernet", LT.NULL: "Null", LT.LOOP: "Loop", LT.RAW: "Raw",
               LT.IPV4: "IPv4", LT.IPV6: "IPv6", LT.LINUX_SLL: "Linux SLL",
               LT.LINUX_SLL2: "Linux SLL2", LT.IEEE802_11: "802.11",
               LT.IEEE802_11_RADIOTAP: "Radiotap"}


class _Rows(NamedTuple):
    """Ended flows, one row each (FlowBatch's layout, less the handshake state)."""

    key: npt.NDArray[np.uint8]  # (n, KEY_BYTES)
    first_ts: I64
    last_ts: I64
    a_first: npt.NDArray[np.bool_]  # the flow's first packet went A -> B
    packets: I64  # (n, 2): A->B, B->A
    wire: I64  # (n, 2)
    payload: I64
    flags: I64  # (n, 9)
    window: I64
    tcp_packets: I64
    link: I64
    macs: npt.NDArray[np.uint8]  # (n, 12)
    app: I64

    def __len__(self) -> int:  # the rows, not the columns
        return int(self.first_ts.shape[0])


@dataclass
class Ended:
    """Connections that ended (in the order they started)."""

    rows: _Rows
    evicted: int = 0  # of them, pushed out of a full table

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def records(self) -> RecordTable:
        """As Connection records (built only when asked for: writing files)."""
        return _records(self.rows)

    def label_counts(self) -> Counter[tuple[str, str]]:
        """Connections per (transport, application protocol), as the metrics label them
        (the same values as read back from the records' TransportProto and
        ApplicationProto fields, lower case). Counted as numbers, not a pair of str per
        connection: the parent's share of the metrics (~87,000 connections per million
        bench packets)."""
        apps = len(_APP_LABELS)
        pair = (self.rows.key[:, 1] == _TCP).astype(np.int64) * apps + self.rows.app
        counts = np.bincount(pair, minlength=2 * apps)
        return Counter({("tcp" if i >= apps else "udp", _APP_LABELS[i % apps]): int(counts[i])
                        for i in np.flatnonzero(counts).tolist()})

    @property
    def duration_ns(self) -> I64:
        return self.rows.last_ts - self.rows.first_ts

    @property
    def total_bytes(self) -> I64:
        out: I64 = self.rows.wire.sum(axis=1)
        return out


class ConnectionTable(_table.Table):
    def __init__(self, max_flows: int = 100_000, tcp_timeout_ns: int = TCP_TIMEOUT_NS,
                 udp_timeout_ns: int = UDP_TIMEOUT_NS, linger_ns: int = LINGER_NS) -> None:
        super().__init__(max_flows, tcp_timeout_ns, udp_timeout_ns, linger_ns)

    def update(self, fb: FlowBatch, apps: Apps = b"") -> Ended | None:
        """Merge one batch's flows, and the protocols the stream analyzers recognised on
        its segments (`recognise`: after the merge, which adds the rows, before anything
        can end); the connections that ended by its end."""
        return _ended(self._update(fb, apps))

    def recognise(self, apps: Apps) -> None:
        """TCP connections whose protocol a stream analyzer recognised, by the key
        (source address, port, destination address, port) of either direction, packed
        (`extract.APP_ENTRY_BYTES`): their ApplicationProto, unless one is set already
        (the first recognised holds). A connection no longer (or not) in the table is
        left alone."""
        super().recognise(apps)

    def advance(self, now: int) -> Ended | None:
        """Move the packet clock to `now` (if later) and end what timed out by then: a
        live capture's clock follows the wall clock while no packets arrive."""
        return _ended(self._advance(now))

    def flush(self) -> Ended | None:
        """Every open flow ends (end of input)."""
        return _ended(self._flush())


def _ended(out: tuple[tuple[Any, ...], int] | None) -> Ended | None:
    if out is None:
        return None
    cols, evicted = out
    return Ended(_Rows(*cols), evicted)


def _vocabulary(index: npt.NDArray[np.intp], names: list[bytes]) -> Ragged:
    """Ragged column of names[index[i]] (a few distinct values: gathered, not joined)."""
    vocab = Ragged.from_list(names)
    return Ragged.gather(vocab.data, vocab.starts[index], vocab.lens[index])


def _records(r: _Rows) -> RecordTable:
    """Connection records of ended flows (the per-connection text made by _table.texts)."""
    n = len(r)
    a_first = r.a_first
    src_ip, src_port, dst_ip, dst_port, src_mac, dst_mac, uid = (
        Ragged(data, lens) for data, lens in _table.texts(
            r.key, a_first.view(np.uint8), r.macs, r.link, r.first_ts))
    orig, resp = np.where(a_first, 0, 1), np.where(a_first, 1, 0)
    rows = np.arange(n)
    links, link_at = np.unique(r.link, return_inverse=True)
    cols: dict[str, Any] = {
        "TimestampFirst": r.first_ts,
        "LinkProto": _vocabulary(link_at, [_LINK_NAMES.get(x, f"linktype_{x}").encode()
                                           for x in links.tolist()]),
        "NetworkProto": _vocabulary((r.key[:, 0] != 4).astype(np.intp), [b"IPv4", b"IPv6"]),
        "TransportProto": _vocabulary((r.key[:, 1] != _TCP).astype(np.intp), [b"TCP", b"UDP"]),
        "ApplicationProto": _vocabulary(r.app.astype(np.intp),
                                        [b""] + [x.encode() for x in APP_PROTOCOLS]),
        "SrcMAC": src_mac, "DstMAC": dst_mac,
        "SrcIP": src_ip, "SrcPort": src_port,
        "DstIP": dst_ip, "DstPort": dst_port,
        "TotalSize": r.wire.sum(axis=1), "AppPayloadSize": r.payload,
        "NumPackets": r.packets.sum(axis=1),
        "UID": uid,
        "TimestampLast": r.last_ts, "Duration": r.last_ts - r.first_ts,
        "BytesClientToServer": r.wire[rows, orig], "BytesServerToClient": r.wire[rows, resp],
        "MeanWindowSize": np.where(r.tcp_packets > 0,
                                   r.window // np.maximum(r.tcp_packets, 1), 0),
    }
    for j, name in enumerate(("NumFINFlags", "NumRSTFlags", "NumACKFlags", "NumSYNFlags",
                              "NumURGFlags", "NumECEFlags", "NumPSHFlags", "NumCWRFlags",
                              "NumNSFlags")):
        cols[name] = r.flags[:, j]
    return RecordTable(RECORDS["Connection"], n, cols)
