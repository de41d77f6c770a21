"""Fuzz target: `-bpf` on files, libpcap's filters run over a batch's packets in C
(`netcap.sources._pcap.Filter.match`). The input makes a batch: up to 12 packets of any
bytes, each with a captured and a wire length and a link type, placed in one buffer at
offsets that leave gaps, then a few filters run over it. Each packet's answer must equal
the answer for that packet alone in a buffer of its own bytes (so a wrong offset or length
is a finding, not only a read outside the buffer, which the sanitizers catch in our code),
and columns that do not fit the buffer must raise ValueError. Anything else is a bug.

Run: `make fuzz FUZZ_TARGETS=pcap` (fuzz/run.py); alone: see docs/fuzzing.md.
"""

from __future__ import annotations

import sys

import numpy as np

from netcap.sources._pcap import Filter

# Expressions that read headers at fixed and computed offsets, lengths and payload bytes,
# for the link types a batch can hold (Ethernet, raw IP, Linux cooked).
_EXPRS = ("tcp port 80", "greater 100", "ip[2:2] > 40 and udp", "ether[0] & 1 != 0",
          "vlan and udp", "ip6 and tcp[13] & 2 != 0", "tcp[((tcp[12] & 0xf0) >> 2)] = 0x16",
          "icmp or arp")
_LINKTYPES = (1, 101, 113)
_FILTERS: dict[tuple[int, int], Filter | None] = {}


def _filter(expr: int, linktype: int) -> Filter | None:
    key = (expr, linktype)
    if key not in _FILTERS:
        try:
            _FILTERS[key] = Filter(_EXPRS[expr], linktype)
        except Exception:  # noqa: BLE001 (an expression that does not apply to the link)
            _FILTERS[key] = None
    return _FILTERS[key]


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris's name)
    if len(data) < 2:
        return
    n = data[0] % 13
    exprs = [data[1] >> k & 7 for k in (0, 3)]
    pos, buf = 2, bytearray()
    offset, caplen, wirelen, linktype, packets = [], [], [], [], []
    for _ in range(n):
        head = data[pos : pos + 4].ljust(4, b"\0")
        pos += 4
        size = head[0] if head[1] & 1 else head[0] % 64
        body = data[pos : pos + size]
        pos += size
        buf += bytes(head[2] % 5)  # a gap before the packet
        offset.append(len(buf))
        caplen.append(len(body))
        wirelen.append(len(body) + (head[3] if head[1] & 2 else 0) - (head[1] & 4 != 0))
        linktype.append(_LINKTYPES[head[1] >> 3 & 1 if head[1] & 64 else 0])
        packets.append(bytes(body))
        buf += body
    arr = np.frombuffer(bytes(buf), np.uint8)
    cols = (np.array(offset, np.int64), np.array(caplen, np.int64),
            np.array(wirelen, np.int64))
    types = np.array(linktype, np.int32)
    for e in exprs:
        for lt in set(linktype):
            f = _filter(e, lt)
            if f is None:
                continue
            keep = np.zeros(n, np.uint8)
            f.match(arr, *cols, keep, types, lt)
            for i in range(n):
                alone = np.zeros(1, np.uint8)
                f.match(np.frombuffer(packets[i], np.uint8), np.zeros(1, np.int64),
                        cols[1][i : i + 1], cols[2][i : i + 1], alone)
                if keep[i] != (alone[0] if linktype[i] == lt else 0):
                    raise AssertionError(f"{_EXPRS[e]!r}: packet {i} differs alone")
            if n and data[-1] & 1:  # a packet past the buffer's end must be refused
                bad = cols[0].copy()
                bad[data[-1] % n] = len(buf) - cols[1][data[-1] % n] + 1
                try:
                    f.match(arr, bad, cols[1], cols[2], keep)
                except ValueError:
                    continue
                raise AssertionError("a packet past the end of the data was read")


def seeds() -> list[bytes]:
    """A TCP SYN to port 80 and a UDP datagram, Ethernet, with and without gaps."""
    syn = (bytes(12) + b"\x08\x00" + b"\x45\x00\x00\x28" + bytes(5) + b"\x06" + bytes(10)
           + b"\x30\x39\x00\x50" + bytes(8) + b"\x50\x02" + bytes(6))
    udp = (bytes(12) + b"\x08\x00" + b"\x45\x00\x00\x30" + bytes(5) + b"\x11" + bytes(10)
           + b"\x00\x35\x00\x35\x00\x1c\x00\x00" + bytes(20))
    out = []
    for gap in (0, 3):
        body = b""
        for p in (syn, udp):
            body += bytes([len(p), 1 | 2, gap, 200]) + p
        out.append(bytes([2, 0b001000]) + body + b"\x01")
    return out


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
