"""Fuzz target: the compiled fast packet decoder (netcap.decode._fast) on a small batch
made from the input: the per-packet pass (`_walk`), then the option walk and the byte
copies over what it found (what `decode_fast` builds its option and address columns
with; the rest of `decode_fast` is numpy glue over these, and costs a hundred times the
pass). Any exception, a `done` mask of the wrong shape, a row for a packet not taken or
out of the batch, rows out of packet order, an option list the pass took called
malformed, or any sanitizer report is a bug.

Input: one byte choosing the link type (low 4 bits), then up to four packets, each a
length byte and that many bytes (fewer at the end of the input). The batch's buffer is
the input itself, without the zero padding sources add: a read past a packet's captured
bytes into the next one, or past the last one, is a finding."""

from __future__ import annotations

import sys

import numpy as np

from netcap.decode._fast import TCP_ADDRESS, TCP_OPTIONS, V4_OPTIONS, _walk, gather, option_lists

_LINKTYPES = [0, 1, 101, 108, 113, 228, 229, 276, 1, 1, 1, 1, 113, 276, 101, 147]


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
    buf = np.frombuffer(data, np.uint8)
    done, *tables = _walk(buf, np.asarray(offsets, np.int64), np.asarray(lens, np.int64),
                          np.full(n, _LINKTYPES[data[0] & 15], np.int32),
                          np.arange(n, dtype=np.int64))
    if done.shape != (n,) or done.dtype != np.bool_:
        raise AssertionError("done is not one bool per packet")
    for t in tables:
        if t.shape[1] and t.dtype == np.int64:
            pkt = t[0]
            if pkt.min() < 0 or pkt.max() >= n or not done[pkt].all() or (
                    np.diff(pkt) < 0).any():
                raise AssertionError("rows for packets not taken, or out of order")
    v4, tcp = tables[2], tables[4]
    for rows, (a, b) in ((v4, V4_OPTIONS), (tcp, TCP_OPTIONS)):
        if rows.shape[1]:
            bad, opts, _ = option_lists(buf, rows[a], rows[b])
            if bad.any():
                raise AssertionError("an option list the pass took is malformed")
            gather(buf, opts[3], opts[4])
    if tcp.shape[1]:
        src, alen = tcp[TCP_ADDRESS[0]], tcp[TCP_ADDRESS[1]]
        gather(buf, src, alen)
        gather(buf, src + alen, alen)


def _encode(packets: list[bytes], linktype: int) -> bytes:
    out = bytearray([_LINKTYPES.index(linktype) if linktype in _LINKTYPES else 15])
    for p in packets[:4]:
        out += bytes([min(len(p), 255)]) + p[:255]
    return bytes(out)


def seeds() -> list[bytes]:
    """Packets of the recorded captures and a few corpus captures, a few per input."""
    from seedfiles import captures

    from netcap.sources.capture import open_capture

    out = []
    for path in captures(("tls", "dns", "http", "ssh", "ntp", "dhcp"), (
            "zeek_q-in-q.pcap", "zeek_icmp6-nd-options.pcap", "zeek_linux_dlt_sll2.pcap",
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
