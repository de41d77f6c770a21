"""Datagram analyzers: which UDP payloads go to which parser, run on a decoded batch.

Dispatch is one table, by port, destination port first (as gopacket decides the layer
after UDP). Only the selected datagrams cost per-packet Python work: the ports are
matched vectorized over the batch's UDP table. A parser's `DecodeError` becomes the
packet's decode-error reason (the layers below stay decoded); a message with an error
yields no record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode.errors import DecodeError
from ..records.table import Ragged, RecordTable
from ..records.types import RECORDS
from ..sources.batch import PacketBatch
from .dhcp import parse_dhcp
from .dns import parse_dns
from .ntp import parse_ntp

__all__ = ["UDP_COLUMNS", "UDP_PORTS", "analyze_datagrams"]

# UDP port -> record type of the analyzer for it (53 DNS, 5353 mDNS, 5355 LLMNR).
UDP_PORTS: dict[int, str] = {53: "DNS", 5353: "DNS", 5355: "DNS", 123: "NTP", 67: "DHCPv4",
                             68: "DHCPv4"}
# The UDP record columns this stage reads (decoding for metrics alone must build them).
UDP_COLUMNS = frozenset({"SrcPort", "DstPort", "SrcIP", "DstIP", "PayloadSize", "_poff"})

_PARSERS: dict[str, Callable[[bytes, bool], dict[str, Any]]] = {
    "DNS": parse_dns, "NTP": lambda msg, _full: parse_ntp(msg),
    "DHCPv4": lambda msg, _full: parse_dhcp(msg)}
_NAMES = tuple(_PARSERS)
_LUT = np.zeros(65536, np.int8)  # port -> 1 + index into _NAMES, 0: none
for _port, _name in UDP_PORTS.items():
    _LUT[_port] = 1 + _NAMES.index(_name)


def analyze_datagrams(batch: PacketBatch, tables: dict[str, RecordTable],
                      error: npt.NDArray[np.int16], full: bool = True
                      ) -> dict[str, RecordTable]:
    """Records of the analyzed UDP payloads of a batch, by record type (rows in packet
    order); sets `error` for packets whose payload failed to parse. full=False: only
    what the metrics read (DNS: header and question types; the same checks)."""
    udp = tables.get("UDP")
    if udp is None or udp.pkt is None:
        return {}
    sport = np.asarray(udp.cols["SrcPort"])
    dport = np.asarray(udp.cols["DstPort"])
    which = np.where(_LUT[dport] > 0, _LUT[dport], _LUT[sport])
    rows = np.flatnonzero(which)
    if not rows.size:
        return {}
    poff = np.asarray(udp.cols["_poff"])[rows].tolist()
    size = np.asarray(udp.cols["PayloadSize"])[rows].tolist()
    src_ip, dst_ip = udp.cols["SrcIP"], udp.cols["DstIP"]
    assert isinstance(src_ip, Ragged) and isinstance(dst_ip, Ragged)
    srcs, dsts = src_ip.take(rows).tolist(), dst_ip.take(rows).tolist()
    pkts = udp.pkt[rows].tolist()
    data = batch.data
    recs: dict[str, list[dict[str, Any]]] = {}
    at: dict[str, list[int]] = {}
    for k, (w, row) in enumerate(zip(which[rows].tolist(), rows.tolist(), strict=True)):
        name = _NAMES[w - 1]
        try:
            rec = _PARSERS[name](data[poff[k] : poff[k] + size[k]].tobytes(), full)
        except DecodeError as e:
            if error[pkts[k]] == 0:
                error[pkts[k]] = e.index
            continue
        rec.update(SrcIP=srcs[k], DstIP=dsts[k], SrcPort=int(sport[row]),
                   DstPort=int(dport[row]))
        recs.setdefault(name, []).append(rec)
        at.setdefault(name, []).append(pkts[k])
    out: dict[str, RecordTable] = {}
    for name, rs in recs.items():
        table = RecordTable.from_rows(RECORDS[name], rs, at[name])
        assert table.pkt is not None
        table.cols["Timestamp"] = batch.ts[table.pkt]
        out[name] = table
    return out
