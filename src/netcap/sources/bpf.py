"""`-bpf EXPR` on capture files: tcpdump-syntax filters compiled by libpcap, run over each
batch's packets in C (`_pcap.Filter`) before decoding (a live capture filters in the kernel
instead). The filter sees each packet's length on the wire, as tcpdump's does: `len`,
`greater` and `less` compare that.
"""

from __future__ import annotations

import numpy as np

from ._pcap import Filter, PcapError
from .batch import PacketBatch
from .live import LiveError, check_bpf, dlt_of

__all__ = ["bpf_filter", "check_bpf"]

_filters: dict[tuple[str, int], Filter] = {}  # (expression, link type) -> its filter


def _filter(expr: str, linktype: int) -> Filter:
    f = _filters.get((expr, linktype))
    if f is None:
        try:
            f = Filter(expr, dlt_of(linktype))
        except PcapError as e:
            raise LiveError(f"-bpf {expr!r} does not apply to link type {linktype}: {e}")\
                from None
        _filters[(expr, linktype)] = f
    return f


def bpf_filter(batch: PacketBatch, expr: str) -> PacketBatch:
    """The packets of `batch` that match `expr`, in order (numbered from the batch's
    first number on, so numbers stay unique and in input order)."""
    n = len(batch)
    if not n:
        return batch
    keep = np.zeros(n, np.uint8)
    types = np.unique(batch.linktype)
    for lt in types.tolist():
        _filter(expr, lt).match(batch.data, batch.offset, batch.caplen, batch.wirelen, keep,
                                None if len(types) == 1 else batch.linktype, lt)
    if keep.all():
        return batch
    k = keep.view(np.bool_)
    return PacketBatch(data=batch.data, offset=batch.offset[k], caplen=batch.caplen[k],
                       wirelen=batch.wirelen[k], ts=batch.ts[k],
                       clock_error=None if batch.clock_error is None
                       else batch.clock_error[k],
                       linktype=batch.linktype[k], iface=batch.iface[k],
                       first=batch.first)
