"""Link-type, EtherType and IP-protocol numbers: the dispatch tables in one place."""

from __future__ import annotations

__all__ = [
    "ETH_ARP", "ETH_IPV4", "ETH_IPV6", "ETH_VLAN", "IPPROTO_ICMP", "IPPROTO_ICMPV6",
    "IPPROTO_SCTP", "IPPROTO_TCP", "IPPROTO_UDP", "IPV6_EXT", "LINKTYPE_NAMES", "LT",
]


class LT:
    """LINKTYPE_* values as stored in pcap/pcapng files."""

    NULL = 0
    ETHERNET = 1
    RAW = 101
    IEEE802_11 = 105
    LOOP = 108
    LINUX_SLL = 113
    IEEE802_11_RADIOTAP = 127
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


LINKTYPE_NAMES: dict[int, str] = {
    LT.NULL: "null",
    LT.ETHERNET: "ethernet",
    LT.RAW: "raw",
    LT.IEEE802_11: "ieee802_11",
    LT.LOOP: "loop",
    LT.LINUX_SLL: "linux_sll",
    LT.IEEE802_11_RADIOTAP: "radiotap",
    LT.IPV4: "ipv4",
    LT.IPV6: "ipv6",
    LT.LINUX_SLL2: "linux_sll2",
}

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
# 802.1Q, 802.1ad (QinQ service tag) and the pre-standard QinQ 0x9100.
ETH_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
# Below this, the EtherType field of an Ethernet frame is an 802.3 length (then LLC).
ETH_MIN_TYPE = 0x0600

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132
IPPROTO_FRAGMENT = 44
IPPROTO_AH = 51
# IPv6 extension headers walked before the transport header (RFC 8200 and AH).
IPV6_EXT = frozenset({0, 43, 44, 51, 60, 135, 139, 140})
# Extension headers walked per packet (a libpcap test chains 100); more is an error.
IPV6_MAX_EXT = 128

# BSD loopback address families meaning IPv6 (NetBSD/OpenBSD, FreeBSD, Darwin).
NULL_AF_INET = 2
NULL_AF_INET6 = frozenset({24, 28, 30})
MAX_VLAN_TAGS = 8
