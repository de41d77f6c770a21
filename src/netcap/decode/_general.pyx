# cython: language_level=3
"""The general per-packet decoder, compiled: every supported layer, one packet at a time.

The reference semantics are in general.py's docstring; this is their code. Each layer
function reads the packet through one bounded reader over its captured bytes (`_buf.pxd`),
at absolute offsets (`b8`/`b16`/`b32`: a byte past the packet reads as 0, and every field
used is behind a length check first), appends its record, and returns the decode-error
reason index for the packet (0: none), which stops the decoding where it is met: the
outer layers already appended are kept. Python objects are made only for the records.

Link layers chain without bound in crafted frames (802.1Q -> LLC/SNAP -> 802.1Q ...), so
`_l2` walks them in a loop, not by recursion: the decoding needs no stack depth that
grows with the input (the Python it replaced recursed, and a frame of a few KB made it
raise RecursionError).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memset

from netcap._buf cimport Reader, here, left, peek, peek16, peek32, reader, seek, sub

from netcap.decode.errors import code
from netcap.decode.linktypes import (
    ETH_ARP as _ETH_ARP,
    ETH_IPV4 as _ETH_IPV4,
    ETH_IPV6 as _ETH_IPV6,
    ETH_MIN_TYPE as _ETH_MIN_TYPE,
    ETH_VLAN,
    IPPROTO_AH as _IPPROTO_AH,
    IPPROTO_FRAGMENT as _IPPROTO_FRAGMENT,
    IPPROTO_ICMP as _IPPROTO_ICMP,
    IPPROTO_ICMPV6 as _IPPROTO_ICMPV6,
    IPPROTO_TCP as _IPPROTO_TCP,
    IPPROTO_UDP as _IPPROTO_UDP,
    IPV6_EXT,
    IPV6_MAX_EXT as _IPV6_MAX_EXT,
    LT,
    MAX_VLAN_TAGS as _MAX_VLAN_TAGS,
    NULL_AF_INET as _NULL_AF_INET,
    NULL_AF_INET6,
)

__all__ = ["decode_packet"]

# The dispatch numbers, from linktypes.py (the one place they are declared).
cdef int LT_NULL = LT.NULL
cdef int LT_ETHERNET = LT.ETHERNET
cdef int LT_RAW = LT.RAW
cdef int LT_IEEE802_11 = LT.IEEE802_11
cdef int LT_LOOP = LT.LOOP
cdef int LT_LINUX_SLL = LT.LINUX_SLL
cdef int LT_RADIOTAP = LT.IEEE802_11_RADIOTAP
cdef int LT_IPV4 = LT.IPV4
cdef int LT_IPV6 = LT.IPV6
cdef int LT_LINUX_SLL2 = LT.LINUX_SLL2
cdef uint32_t ETH_IPV4 = _ETH_IPV4
cdef uint32_t ETH_IPV6 = _ETH_IPV6
cdef uint32_t ETH_ARP = _ETH_ARP
cdef uint32_t ETH_MIN_TYPE = _ETH_MIN_TYPE
cdef uint32_t IPPROTO_ICMP = _IPPROTO_ICMP
cdef uint32_t IPPROTO_TCP = _IPPROTO_TCP
cdef uint32_t IPPROTO_UDP = _IPPROTO_UDP
cdef uint32_t IPPROTO_ICMPV6 = _IPPROTO_ICMPV6
cdef uint32_t IPPROTO_FRAGMENT = _IPPROTO_FRAGMENT
cdef uint32_t IPPROTO_AH = _IPPROTO_AH
cdef int IPV6_MAX_EXT = _IPV6_MAX_EXT
cdef int MAX_VLAN_TAGS = _MAX_VLAN_TAGS
cdef uint32_t NULL_AF_INET = _NULL_AF_INET

# Per EtherType (16 bits): an 802.1Q/QinQ tag. Per IP protocol: an IPv6 extension header.
# Per BSD loopback family (when below 256): IPv6.
cdef uint8_t VLAN[65536]
cdef uint8_t EXT[256]
cdef uint8_t AF_INET6[256]
memset(VLAN, 0, sizeof(VLAN))
memset(EXT, 0, sizeof(EXT))
memset(AF_INET6, 0, sizeof(AF_INET6))
for _v in ETH_VLAN:
    VLAN[<uint32_t>_v & 0xFFFF] = 1
for _v in IPV6_EXT:
    EXT[<uint32_t>_v & 0xFF] = 1
for _v in NULL_AF_INET6:
    AF_INET6[<uint32_t>_v & 0xFF] = 1
if (any(not 0 <= _v <= 0xFFFF for _v in ETH_VLAN) or any(not 0 <= _v <= 0xFF for _v in IPV6_EXT)
        or any(not 0 <= _v <= 0xFF for _v in NULL_AF_INET6)):  # invariant, not input
    raise ImportError("decode/_general.pyx: a linktypes.py number out of its table")

# The reason indexes (errors.py, the one table of them).
cdef int E_LINK = code("link", "unsupported_link_type")
cdef int E_ETH_TRUNC = code("ethernet", "truncated")
cdef int E_DOT1Q_TRUNC = code("dot1q", "truncated")
cdef int E_DOT1Q_TAGS = code("dot1q", "too_many_tags")
cdef int E_LLC_TRUNC = code("llc", "truncated")
cdef int E_ARP_TRUNC = code("arp", "truncated")
cdef int E_NULL_TRUNC = code("null", "truncated")
cdef int E_SLL_TRUNC = code("sll", "truncated")
cdef int E_SLL2_TRUNC = code("sll2", "truncated")
cdef int E_RADIOTAP_TRUNC = code("radiotap", "truncated")
cdef int E_RADIOTAP_LENGTH = code("radiotap", "bad_length")
cdef int E_DOT11_TRUNC = code("dot11", "truncated")
cdef int E_DOT11_FRAME = code("dot11", "bad_frame")
cdef int E_IP_VERSION = code("ip", "bad_version")
cdef int E_IPV4_TRUNC = code("ipv4", "truncated")
cdef int E_IPV4_IHL = code("ipv4", "bad_ihl")
cdef int E_IPV4_LENGTH = code("ipv4", "bad_total_length")
cdef int E_IPV4_OPTION = code("ipv4", "bad_option_length")
cdef int E_IPV6_TRUNC = code("ipv6", "truncated")
cdef int E_IPV6_EXT_TRUNC = code("ipv6", "ext_truncated")
cdef int E_IPV6_EXT_LONG = code("ipv6", "ext_chain_too_long")
cdef int E_TCP_TRUNC = code("tcp", "truncated")
cdef int E_TCP_OFFSET = code("tcp", "bad_data_offset")
cdef int E_TCP_OPTION = code("tcp", "bad_option_length")
cdef int E_TCP_OPTIONS_CUT = code("tcp", "options_truncated")
cdef int E_UDP_TRUNC = code("udp", "truncated")
cdef int E_UDP_LENGTH = code("udp", "bad_length")
cdef int E_ICMP4_TRUNC = code("icmpv4", "truncated")
cdef int E_ICMP6_TRUNC = code("icmpv6", "truncated")


def decode_packet(bytes data not None, linktype):
    """Decode one packet's captured bytes. Never raises for any input bytes."""
    cdef list out = []
    cdef const uint8_t* p = data
    cdef Reader pk = reader(p, len(data))
    # A link type that is no int32 is as unsupported as any other unknown one.
    cdef int lt = linktype if -0x80000000 <= linktype <= 0x7FFFFFFF else -1
    return out, _link(&pk, lt, out)


# Absolute reads: `pk` is the whole packet, its position always 0.
cdef inline uint32_t b8(const Reader* pk, Py_ssize_t i) noexcept nogil:
    return peek(pk, i)


cdef inline uint32_t b16(const Reader* pk, Py_ssize_t i) noexcept nogil:
    return peek16(pk, i)


cdef inline uint32_t b32(const Reader* pk, Py_ssize_t i) noexcept nogil:
    return peek32(pk, i)


cdef inline uint32_t l16(const Reader* pk, Py_ssize_t i) noexcept nogil:
    return (<uint32_t>peek(pk, i + 1) << 8) | peek(pk, i)


cdef inline uint32_t l32(const Reader* pk, Py_ssize_t i) noexcept nogil:
    return ((<uint32_t>peek(pk, i + 3) << 24) | (<uint32_t>peek(pk, i + 2) << 16)
            | (<uint32_t>peek(pk, i + 1) << 8) | peek(pk, i))


cdef bytes _bytes(const Reader* pk, Py_ssize_t a, Py_ssize_t z):
    """pk[a:z] as a Python slice gives it (clamped to the packet, empty if z <= a)."""
    cdef Reader r = pk[0]
    cdef Reader s
    if a < 0:
        a = 0
    if z > r.size:
        z = r.size
    if z <= a:
        return b""
    seek(&r, a)
    s = sub(&r, z - a)
    return PyBytes_FromStringAndSize(<const char*>here(&s), left(&s))


cdef int _link(const Reader* pk, int lt, list out) except -1:
    cdef Py_ssize_t n = pk.size
    cdef uint32_t fam
    if lt == LT_ETHERNET:
        return _ethernet(pk, out)
    if lt == LT_NULL or lt == LT_LOOP:
        if n < 4:
            return E_NULL_TRUNC
        fam = b32(pk, 0) if lt == LT_LOOP else l32(pk, 0)
        if lt == LT_NULL and fam & 0xFFFF0000:
            fam = b32(pk, 0)  # written on a host of the other byte order
        if fam == NULL_AF_INET:
            return _ipv4(pk, 4, n, out)
        if fam < 256 and AF_INET6[fam]:
            return _ipv6(pk, 4, n, out)
        return 0
    if lt == LT_LINUX_SLL:
        if n < 16:
            return E_SLL_TRUNC
        return _sll_protocol(pk, 16, b16(pk, 14), out)
    if lt == LT_LINUX_SLL2:
        if n < 20:
            return E_SLL2_TRUNC
        return _sll_protocol(pk, 20, b16(pk, 0), out)
    if lt == LT_RAW:
        if n < 1:
            return E_IPV4_TRUNC
        if b8(pk, 0) >> 4 == 4:
            return _ipv4(pk, 0, n, out)
        if b8(pk, 0) >> 4 == 6:
            return _ipv6(pk, 0, n, out)
        return E_IP_VERSION
    if lt == LT_IPV4:
        return _ipv4(pk, 0, n, out)
    if lt == LT_IPV6:
        return _ipv6(pk, 0, n, out)
    if lt == LT_RADIOTAP:
        return _radiotap(pk, out)
    if lt == LT_IEEE802_11:
        return _dot11(pk, 0, n, out)
    return E_LINK


cdef int _sll_protocol(const Reader* pk, Py_ssize_t off, uint32_t proto, list out) except -1:
    # Linux cooked capture: protocol is an EtherType, or 0x0004 for 802.2 LLC frames.
    if proto == 0x0004:
        return _l2(pk, True, off, 0, pk.size, out)
    return _l2(pk, False, off, proto, pk.size, out)


cdef int _ethernet(const Reader* pk, list out) except -1:
    cdef Py_ssize_t n = pk.size
    if n < 14:
        return E_ETH_TRUNC
    cdef uint32_t et = b16(pk, 12)
    out.append(("Ethernet", {
        "SrcMAC": _bytes(pk, 6, 12), "DstMAC": _bytes(pk, 0, 6),
        "EthernetType": et if et >= ETH_MIN_TYPE else 0,
        "PayloadSize": n - 14, "_poff": 14,
    }))
    return _l2(pk, et < ETH_MIN_TYPE, 14, et, n, out)


cdef int _l2(const Reader* pk, bint llc, Py_ssize_t off, uint32_t et, Py_ssize_t end,
             list out) except -1:
    """What follows a link header: an LLC header in pk[off:end] if `llc`, else the
    payload of EtherType `et` at off (802.1Q tags, ARP, IP; any other: nothing, not an
    error). One step per header, in a loop (see the module docstring)."""
    cdef Py_ssize_t n = pk.size
    cdef int tags = 0
    cdef uint32_t dsap, ssap, control, tci
    cdef Py_ssize_t size
    while True:
        if llc:
            if end - off < 3:
                return E_LLC_TRUNC
            dsap, ssap, control = b8(pk, off), b8(pk, off + 1), b8(pk, off + 2)
            size = 3
            if control & 0x1 == 0 or control & 0x3 == 0x1:  # I- and S-format: 2 bytes
                if end - off < 4:
                    return E_LLC_TRUNC
                control = (control << 8) | b8(pk, off + 3)
                size = 4
            out.append(("LLC", {
                "DSAP": dsap & 0xFE, "IG": <bint>(dsap & 1), "SSAP": ssap & 0xFE,
                "CR": <bint>(ssap & 1), "Control": control,
            }))
            # SNAP (AA AA 03 + OUI + EtherType) carries an EtherType on 802.2 links.
            if dsap == 0xAA and ssap == 0xAA and control == 0x03 and end - off >= size + 5:
                et = b16(pk, off + size + 3)
                off += size + 5
                llc, tags, end = False, 0, n
                continue
            return 0
        if et == ETH_IPV4:
            return _ipv4(pk, off, n, out)
        if et == ETH_IPV6:
            return _ipv6(pk, off, n, out)
        if et == ETH_ARP:
            return _arp(pk, off, out)
        if et > 0xFFFF or not VLAN[et]:
            return 0  # any other EtherType: not decoded here (not an error)
        if tags >= MAX_VLAN_TAGS:
            return E_DOT1Q_TAGS
        if n - off < 4:
            return E_DOT1Q_TRUNC
        tci, et = b16(pk, off), b16(pk, off + 2)
        out.append(("Dot1Q", {
            "Priority": tci >> 13, "DropEligible": <bint>(tci & 0x1000),
            "VLANIdentifier": tci & 0x0FFF, "Type": et,
        }))
        off += 4
        if et < ETH_MIN_TYPE:
            llc, end = True, n
        else:
            tags += 1


cdef int _arp(const Reader* pk, Py_ssize_t off, list out) except -1:
    cdef Py_ssize_t n = pk.size
    if n - off < 8:
        return E_ARP_TRUNC
    cdef Py_ssize_t hlen = b8(pk, off + 4), plen = b8(pk, off + 5)
    if n - off < 8 + 2 * (hlen + plen):
        return E_ARP_TRUNC
    cdef Py_ssize_t p = off + 8
    cdef Py_ssize_t q = p + hlen + plen
    out.append(("ARP", {
        "AddrType": b16(pk, off), "Protocol": b16(pk, off + 2), "HwAddressSize": hlen,
        "ProtocolAddressSize": plen, "Operation": b16(pk, off + 6),
        "SrcHwAddress": _bytes(pk, p, p + hlen),
        "SrcProtocolAddress": _bytes(pk, p + hlen, p + hlen + plen),
        "DstHwAddress": _bytes(pk, q, q + hlen),
        "DstProtocolAddress": _bytes(pk, q + hlen, q + hlen + plen),
    }))
    return 0


cdef Py_ssize_t _options(const Reader* pk, Py_ssize_t p, Py_ssize_t end,
                         list opts) except -2:
    """IPv4/TCP option lists (the same TLV layout) in pk[p:end], appended to opts.
    Returns where the padding after an end-of-list option starts (end if none), or -1
    for a bad option length."""
    cdef uint32_t kind, ln
    while p < end:
        kind = b8(pk, p)
        if kind == 0:  # end of option list: the rest is padding
            opts.append({"OptionType": 0, "OptionLength": 1})
            return p + 1
        if kind == 1:
            opts.append({"OptionType": 1, "OptionLength": 1})
            p += 1
            continue
        if p + 1 >= end:
            return -1
        ln = b8(pk, p + 1)
        if ln < 2 or p + ln > end:
            return -1
        opts.append({"OptionType": kind, "OptionLength": ln,
                     "OptionData": _bytes(pk, p + 2, p + ln)})
        p += ln
    return end


cdef int _ipv4(const Reader* pk, Py_ssize_t off, Py_ssize_t end, list out) except -1:
    cdef Py_ssize_t avail = end - off
    if avail < 1:
        return E_IPV4_TRUNC
    if b8(pk, off) >> 4 != 4:
        return E_IP_VERSION
    if avail < 20:
        return E_IPV4_TRUNC
    cdef Py_ssize_t ihl = b8(pk, off) & 0x0F
    if ihl < 5:
        return E_IPV4_IHL
    cdef Py_ssize_t hl = ihl * 4
    cdef Py_ssize_t length = b16(pk, off + 2)
    if length == 0:  # TCP segmentation offload: the NIC fills it in later
        length = avail
    if length < hl:
        return E_IPV4_LENGTH
    if hl > avail:
        return E_IPV4_TRUNC
    cdef list options = []
    cdef Py_ssize_t pad = _options(pk, off + 20, off + hl, options)
    if pad < 0:
        return E_IPV4_OPTION
    cdef uint32_t ff = b16(pk, off + 6)
    cdef bytes src = _bytes(pk, off + 12, off + 16)
    cdef bytes dst = _bytes(pk, off + 16, off + 20)
    cdef Py_ssize_t pend = off + (length if length < avail else avail)
    cdef dict rec = {
        "Version": 4, "IHL": ihl, "TOS": b8(pk, off + 1), "Length": length,
        "Id": b16(pk, off + 4), "Flags": ff >> 13, "FragOffset": ff & 0x1FFF,
        "TTL": b8(pk, off + 8), "Protocol": b8(pk, off + 9), "Checksum": b16(pk, off + 10),
        "SrcIP": src, "DstIP": dst, "Padding": _bytes(pk, pad, off + hl), "Options": options,
        "PayloadSize": pend - off - hl, "_poff": off + hl,
    }
    out.append(("IPv4", rec))
    if ff & 0x3FFF == 0:  # not a fragment: fragments go to reassembly/ip.py
        return _transport(pk, off + hl, pend, length > avail, b8(pk, off + 9), src, dst, out,
                          (rec,))
    return 0


cdef int _ipv6(const Reader* pk, Py_ssize_t off, Py_ssize_t end, list out) except -1:
    cdef Py_ssize_t avail = end - off
    if avail < 1:
        return E_IPV6_TRUNC
    if b8(pk, off) >> 4 != 6:
        return E_IP_VERSION
    if avail < 40:
        return E_IPV6_TRUNC
    cdef uint32_t word = b32(pk, off)
    cdef Py_ssize_t plen = b16(pk, off + 4)
    cdef uint32_t nh = b8(pk, off + 6)
    cdef bytes src = _bytes(pk, off + 8, off + 24)
    cdef bytes dst = _bytes(pk, off + 24, off + 40)
    cdef Py_ssize_t pend = end if plen == 0 or off + 40 + plen > end else off + 40 + plen
    cdef dict rec = {
        "Version": 6, "TrafficClass": (word >> 20) & 0xFF, "FlowLabel": word & 0xFFFFF,
        "Length": plen, "NextHeader": nh, "HopLimit": b8(pk, off + 7), "SrcIP": src,
        "DstIP": dst, "PayloadSize": pend - off - 40, "_poff": off + 40,
    }
    out.append(("IPv6", rec))
    cdef list targets = [rec]
    cdef Py_ssize_t p = off + 40, size
    cdef uint32_t fo
    cdef dict frag
    cdef int _i
    for _i in range(IPV6_MAX_EXT):
        if not EXT[nh]:
            break
        if nh == IPPROTO_FRAGMENT:
            if pend - p < 8:
                return E_IPV6_EXT_TRUNC
            fo = b16(pk, p + 2)
            frag = {
                "NextHeader": b8(pk, p), "Reserved1": b8(pk, p + 1), "FragmentOffset": fo >> 3,
                "Reserved2": (fo >> 1) & 0x3, "MoreFragments": <bint>(fo & 1),
                "Identification": b32(pk, p + 4), "SrcIP": src, "DstIP": dst,
                "_poff": p + 8,  # the fragment's data
            }
            out.append(("IPv6Fragment", frag))
            nh = b8(pk, p)
            p += 8
            if fo >> 3 or fo & 1:  # a fragment (not an atomic one): reassembly/ip.py
                return 0
            targets.append(frag)
            continue
        if pend - p < 2:
            return E_IPV6_EXT_TRUNC
        size = (b8(pk, p + 1) + 2) * 4 if nh == IPPROTO_AH else (b8(pk, p + 1) + 1) * 8
        if pend - p < size:
            return E_IPV6_EXT_TRUNC
        nh = b8(pk, p)
        p += size
    if EXT[nh]:
        return E_IPV6_EXT_LONG
    return _transport(pk, p, pend, plen != 0 and off + 40 + plen > end, nh, src, dst, out,
                      tuple(targets))


cdef int _transport(const Reader* pk, Py_ssize_t off, Py_ssize_t end, bint cut,
                    uint32_t proto, bytes src, bytes dst, list out,
                    tuple ip_recs) except -1:
    """The transport header at pk[off:end]; `cut`: the IP header says the packet goes
    on past `end` (the capture's snaplen cut it)."""
    if proto == IPPROTO_TCP:
        return _tcp(pk, off, end, cut, src, dst, out, ip_recs)
    if proto == IPPROTO_UDP:
        return _udp(pk, off, end, src, dst, out, ip_recs)
    if proto == IPPROTO_ICMP:
        if end - off < 8:
            return E_ICMP4_TRUNC
        out.append(("ICMPv4", {
            "TypeCode": b16(pk, off), "Checksum": b16(pk, off + 2), "Id": b16(pk, off + 4),
            "Seq": b16(pk, off + 6), "SrcIP": src, "DstIP": dst,
        }))
    elif proto == IPPROTO_ICMPV6:
        if end - off < 4:
            return E_ICMP6_TRUNC
        out.append(("ICMPv6", {
            "TypeCode": b16(pk, off), "Checksum": b16(pk, off + 2), "SrcIP": src, "DstIP": dst,
        }))
    return 0


cdef int _set_ports(tuple ip_recs, uint32_t sport, uint32_t dport) except -1:
    cdef dict r
    for r in ip_recs:
        r["SrcPort"] = sport
        r["DstPort"] = dport
    return 0


cdef int _tcp(const Reader* pk, Py_ssize_t off, Py_ssize_t end, bint cut, bytes src,
              bytes dst, list out, tuple ip_recs) except -1:
    if end - off < 20:
        return E_TCP_TRUNC
    cdef uint32_t doff = b8(pk, off + 12) >> 4
    if doff < 5:
        return E_TCP_OFFSET
    cdef Py_ssize_t hl = doff * 4
    cdef bint options_cut = hl > end - off
    cdef list options = []
    cdef bytes padding = b""
    cdef Py_ssize_t pad
    if options_cut and not cut:  # the IP length ends inside the header: malformed
        return E_TCP_TRUNC
    if options_cut:
        # The snaplen cut the options (`tcpdump -s 64` for flow statistics): the fixed
        # 20 bytes are whole, so the record keeps them, as tshark shows them, with no
        # options and no payload; the cut is counted (`tcp/options_truncated`).
        hl = end - off
    else:
        pad = _options(pk, off + 20, off + hl, options)
        if pad < 0:
            return E_TCP_OPTION
        padding = _bytes(pk, pad, off + hl)
    cdef uint32_t fl = b8(pk, off + 13)
    cdef uint32_t sport = b16(pk, off), dport = b16(pk, off + 2)
    out.append(("TCP", {
        "SrcPort": sport, "DstPort": dport, "SeqNum": b32(pk, off + 4),
        "AckNum": b32(pk, off + 8), "DataOffset": doff,
        "FIN": <bint>(fl & 0x01), "SYN": <bint>(fl & 0x02), "RST": <bint>(fl & 0x04),
        "PSH": <bint>(fl & 0x08), "ACK": <bint>(fl & 0x10), "URG": <bint>(fl & 0x20),
        "ECE": <bint>(fl & 0x40), "CWR": <bint>(fl & 0x80),
        "NS": <bint>(b8(pk, off + 12) & 0x01),
        "Window": b16(pk, off + 14), "Checksum": b16(pk, off + 16),
        "Urgent": b16(pk, off + 18), "Padding": padding, "Options": options,
        "PayloadSize": end - off - hl, "SrcIP": src, "DstIP": dst, "_poff": off + hl,
    }))
    _set_ports(ip_recs, sport, dport)
    if options_cut:
        return E_TCP_OPTIONS_CUT
    return 0


cdef int _udp(const Reader* pk, Py_ssize_t off, Py_ssize_t end, bytes src, bytes dst,
              list out, tuple ip_recs) except -1:
    if end - off < 8:
        return E_UDP_TRUNC
    cdef Py_ssize_t length = b16(pk, off + 4)
    if 0 < length < 8:
        return E_UDP_LENGTH
    # 0: jumbogram, use the rest
    cdef Py_ssize_t pend = end if length == 0 or off + length > end else off + length
    cdef uint32_t sport = b16(pk, off), dport = b16(pk, off + 2)
    out.append(("UDP", {
        "SrcPort": sport, "DstPort": dport, "Length": length, "Checksum": b16(pk, off + 6),
        "PayloadSize": pend - off - 8, "SrcIP": src, "DstIP": dst, "_poff": off + 8,
    }))
    _set_ports(ip_recs, sport, dport)
    return 0


cdef int _radiotap(const Reader* pk, list out) except -1:
    cdef Py_ssize_t n = pk.size
    if n < 8:
        return E_RADIOTAP_TRUNC
    cdef Py_ssize_t rlen = l16(pk, 2)
    if b8(pk, 0) != 0 or rlen < 8:
        return E_RADIOTAP_LENGTH
    if rlen > n:
        return E_RADIOTAP_TRUNC
    # Find the Flags field (bit 1) to learn whether the frame ends in an FCS: walk the
    # present words (bit 31 = another word follows), then TSFT (bit 0) is 8 bytes,
    # 8-aligned, and Flags is the next byte.
    cdef Py_ssize_t p = 4
    cdef uint32_t present = l32(pk, 4)
    cdef uint32_t word = present
    while word & 0x80000000:
        p += 4
        if p + 4 > rlen:
            return E_RADIOTAP_LENGTH
        word = l32(pk, p)
    p += 4
    cdef Py_ssize_t end = n
    if present & 0x2:
        if present & 0x1:
            p = (p + 7) & ~7
            p += 8
        if p < rlen and b8(pk, p) & 0x10:
            end = n - 4  # FCS at the end of the frame
    return _dot11(pk, rlen, end, out)


cdef int _dot11(const Reader* pk, Py_ssize_t off, Py_ssize_t end, list out) except -1:
    # Frames are counted by the caller; data frames are decoded on through LLC/SNAP so
    # IP traffic over Wi-Fi is seen. Management, control and protected frames stop here.
    if end - off < 2:
        return E_DOT11_TRUNC
    cdef uint32_t fc0 = b8(pk, off), fc1 = b8(pk, off + 1)
    cdef uint32_t ftype = (fc0 >> 2) & 0x3, subtype = fc0 >> 4
    if fc0 & 0x3:
        return E_DOT11_FRAME  # protocol version must be 0
    if ftype != 2 or fc1 & 0x40 or subtype & 0x4:
        return 0  # not data, protected, or a null-data frame: nothing to decode on
    cdef Py_ssize_t hdr = 24 + (6 if fc1 & 0x3 == 0x3 else 0)
    if subtype & 0x8:  # QoS data: QoS control, plus HT control when +HTC/Order is set
        hdr += 2 + (4 if fc1 & 0x80 else 0)
    if end - off < hdr:
        return E_DOT11_TRUNC
    return _l2(pk, True, off + hdr, 0, end, out)
