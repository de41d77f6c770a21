"""Fuzz target: the compiled capture-file walks (netcap.sources._walk) through the parsers
that call them, PcapParser.parse and PcapngParser.parse, on one chunk.

Byte 0 of the input picks the parsers' state: for pcap the file header's byte order,
micro/nanoseconds, the modified format and the snaplen; for pcapng the section's byte
order, the current run's block type and 0-3 interfaces (with timestamp resolutions and
offsets that take each path of the conversion). The rest is the chunk. Besides what the
sanitizers catch, a packet outside the chunk, a position going backwards or past the end, a
negative need, or any exception (the pcapng walk leaving Python a packet block it should
have taken is one) is a finding.

Run: `make fuzz FUZZ_TARGETS=walk` (fuzz/run.py); alone: see docs/fuzzing.md.
"""

from __future__ import annotations

import sys

import numpy as np

from netcap.sources import _walk  # noqa: F401 - the compiled module this target drives
from netcap.sources._base import ParseResult
from netcap.sources.pcap import PcapHeader, PcapParser
from netcap.sources.pcapng import Interface, PcapngParser

SNAPLENS = (0, 65535, 262145, 2**32 - 1)
# if_tsresol/if_tsoffset pairs: decimal, decimal divided, beyond 10^19, binary fitting 64
# bits, binary needing 128, and a far offset.
CLOCKS = ((6, 0), (9, -5), (12, 0), (40, 0), (0x80 | 20, 1000), (0x80 | 40, 0),
          (0x80 | 70, 0), (3, 2**62))
KINDS = (0, 6, 3, 2)

PCAP = [PcapParser(PcapHeader(">" if b & 1 else "<", bool(b & 2), bool(b & 4), (2, 4),
                              SNAPLENS[(b >> 3) & 3], 1)) for b in range(32)]


def pcapng_state(b: int) -> dict[str, object]:
    ifaces = [Interface(b + i, 8 * i, *CLOCKS[(b + 3 * i) % len(CLOCKS)])
              for i in range((b >> 3) & 3)]
    return {"endian": ">" if b & 1 else "<", "ifaces": ifaces, "kind": KINDS[(b >> 1) & 3],
            "sections": 1}


PCAPNG = [pcapng_state(b) for b in range(32)]


def check(res: ParseResult, n: int, pos: int) -> None:
    if not pos <= res.pos <= max(n, pos) or res.need < 0:
        raise AssertionError(f"walk ended at {res.pos}, needing {res.need}, of {n}")
    if res.stop is not None and not pos <= res.stop[0] <= n:
        raise AssertionError(f"stop at {res.stop[0]} of {n}")
    c = res.cols
    if c is not None and len(c) and (int(c.start.min()) < pos
                                     or int((c.start + c.caplen).max()) > n
                                     or int(c.caplen.min()) < 0):
        raise AssertionError("a packet outside the chunk")


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    b = data[0] & 31
    chunk = data[1:]
    arr = np.frombuffer(chunk, np.uint8)
    check(PCAP[b].parse(chunk, arr, 0), len(chunk), 0)
    ng = PcapngParser()
    ng.__setstate__(PCAPNG[b])
    check(ng.parse(chunk, arr, 0), len(chunk), 0)


def seeds() -> list[bytes]:
    """The records of a few corpus captures after the file header (pcap) and whole pcapng
    files, cut to 4 KiB, with the state byte that matches them."""
    from seedfiles import captures

    out = []
    for path in captures(corpus=("dpkt_http.pcap", "zeek_ipv4_fragmented-1.pcap",
                                 "tcpdump_dns_udp.pcap", "ja4_ssh.pcapng",
                                 "zeek_pcapng-multi-interface.pcapng")):
        with open(path, "rb") as f:
            data = f.read(1 << 16)
        if path.endswith(".pcapng"):
            out.append(b"\x00" + data[:4095])
        else:
            nanos = 2 if data[:4] == b"\x4d\x3c\xb2\xa1" else 0
            out.append(bytes([nanos | 8]) + data[24:4119])
    return out


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
