"""Fuzz target: the compiled general packet decoder (netcap.decode._general), one packet
per input. Any exception, a reason index outside errors.REASONS, a record the decoder
does not make, or a payload (`_poff`, `PayloadSize`) outside the packet's captured bytes
(the batch code slices payloads by them), or any sanitizer report is a bug.

Input: one byte choosing the link type (low 4 bits: each one the decoder knows, the
common ones twice, and one it does not), then the packet's captured bytes."""

from __future__ import annotations

import sys

from netcap.decode._general import decode_packet
from netcap.decode.errors import REASONS

_LINKTYPES = [0, 1, 101, 105, 108, 113, 127, 228, 229, 276, 1, 1, 113, 276, 101, 147]
_NREASONS = len(REASONS)
_RECORDS = frozenset({"Ethernet", "Dot1Q", "LLC", "ARP", "IPv4", "IPv6", "IPv6Fragment",
                      "TCP", "UDP", "ICMPv4", "ICMPv6"})


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    packet = data[1:]
    n = len(packet)
    records, err = decode_packet(packet, _LINKTYPES[data[0] & 15])
    if not 0 <= err < _NREASONS:
        raise AssertionError(f"reason {err} out of the table")
    for name, fields in records:
        if name not in _RECORDS:
            raise AssertionError(f"record {name!r}")
        poff = fields.get("_poff")
        if poff is not None:
            size = fields.get("PayloadSize", 0)
            if not 0 <= poff <= n or size < 0 or poff + size > n:
                raise AssertionError(f"{name}: payload {poff}+{size} outside {n} bytes")


def seeds() -> list[bytes]:
    """The first packets of the recorded captures and of corpus captures of every link
    type and shape the decoder knows."""
    from seedfiles import captures

    from netcap.sources.capture import open_capture

    out = []
    for path in captures(("tls", "dns", "http", "dhcp"), (
            "zeek_q-in-q.pcap", "tcpdump_802.1ad_QinQ.pcap", "zeek_icmp6-nd-options.pcap",
            "zeek_linux_dlt_sll2.pcap", "zeek_linuxsll-arp.pcap", "zeek_radiotap.pcap",
            "tcpdump_LINKTYPE_RAW_ipv6.pcap", "zeek_ipv6-fragmented-dns.pcap",
            "zeek_ipv4_fragmented-1.pcap", "zeek_wikipedia.pcap")):
        with open_capture(path) as src:
            b = next(iter(src))
            lt = int(b.linktype[0])
            head = bytes([_LINKTYPES.index(lt) if lt in _LINKTYPES else 15])
            out += [head + b.packet(i) for i in range(min(len(b), 12))]
    return out


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
