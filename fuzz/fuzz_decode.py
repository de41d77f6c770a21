"""Fuzz target: the compiled packet decoder (netcap.decode._decode) on a small batch made
from the input: `decode_packets` with every column (the per-packet pass, then the option
walks and byte copies that build the columns from what it found). Any exception, a
reason index outside errors.REASONS, a table the decoder does not make, rows for a
packet outside the batch or out of packet order, a payload (`_poff`, `PayloadSize`)
outside its packet's captured bytes (the stages after slice payloads by them), or any
sanitizer report is a bug.

Input: one byte choosing the link type (low 4 bits: each one the decoder knows, the
common ones twice, and one it does not), then up to four packets, each a length byte and
that many bytes (fewer at the end of the input). The batch's buffer is the input itself,
without the zero padding sources add: a read past a packet's captured bytes into the
next one, or past the last one, is a finding."""

from __future__ import annotations

import sys

import numpy as np

from netcap.decode._decode import TABLES, decode_packets
from netcap.decode.errors import REASONS
from netcap.sources.batch import PacketBatch

_LINKTYPES = [0, 1, 101, 105, 108, 113, 127, 228, 229, 276, 1, 1, 113, 276, 101, 147]
_NREASONS = len(REASONS)
_TABLES = frozenset(TABLES)


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    offsets, lens = [], []
    pos = 1
    while pos < len(data) and len(offsets) < 4:
        size = min(data[pos], len(data) - pos - 1)
        offsets.append(pos + 1)
        lens.append(size)
        pos += 1 + size
    n = len(offsets)
    off = np.asarray(offsets, np.int64)
    cap = np.asarray(lens, np.int64)
    batch = PacketBatch(np.frombuffer(data, np.uint8), off, cap, cap.copy(),
                        np.arange(n, dtype=np.int64),
                        np.full(n, _LINKTYPES[data[0] & 15], np.int32), np.zeros(n, np.int32))
    tables, error = decode_packets(batch)
    if error.shape != (n,) or error.dtype != np.int16:
        raise AssertionError("not one reason per packet")
    if n and not (error.min() >= 0 and error.max() < _NREASONS):
        raise AssertionError("a reason out of the table")
    for name, t in tables.items():
        if name not in _TABLES:
            raise AssertionError(f"table {name!r}")
        pkt = t.pkt
        if pkt is None or pkt.shape != (t.n,) or pkt.min() < 0 or pkt.max() >= n or (
                np.diff(pkt) < 0).any():
            raise AssertionError(f"{name}: rows for packets outside the batch, or out of order")
        poff = t.cols.get("_poff")
        if poff is not None:
            size = t.cols.get("PayloadSize", 0)  # (IPv6Fragment: where its data starts)
            end = off[pkt] + cap[pkt]
            if (poff < off[pkt]).any() or np.any(size < 0) or (poff + size > end).any():
                raise AssertionError(f"{name}: a payload outside its packet")


def _encode(packets: list[bytes], linktype: int) -> bytes:
    out = bytearray([_LINKTYPES.index(linktype) if linktype in _LINKTYPES else 15])
    for p in packets[:4]:
        out += bytes([min(len(p), 255)]) + p[:255]
    return bytes(out)


def seeds() -> list[bytes]:
    """Packets of the recorded captures and of corpus captures of every link type and
    shape the decoder knows, a few per input."""
    from seedfiles import captures

    from netcap.sources.capture import open_capture

    out = []
    for path in captures(("tls", "dns", "http", "ssh", "ntp", "dhcp"), (
            "zeek_q-in-q.pcap", "tcpdump_802.1ad_QinQ.pcap", "zeek_icmp6-nd-options.pcap",
            "zeek_linux_dlt_sll2.pcap", "zeek_linuxsll-arp.pcap", "zeek_radiotap.pcap",
            "tcpdump_LINKTYPE_RAW_ipv6.pcap", "zeek_ipv6-fragmented-dns.pcap",
            "zeek_ipv4_fragmented-1.pcap", "zeek_wikipedia.pcap")):
        with open_capture(path) as src:
            b = next(iter(src))
            packets = [b.packet(i) for i in range(min(len(b), 24))]
            for k in range(0, len(packets), 3):
                out.append(_encode(packets[k : k + 3], int(b.linktype[0])))
    return out


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
