"""The per-packet decoder as it was in Python, before it was compiled (then as
decode/_general.pyx beside a fast path for the common stack; now decode/_decode.pyx, one
decoder for every packet): the oracle of the differential test (test_decode_compiled.py).
Not used by netcap.

Every supported layer, one packet at a time. Sans-I/O: bytes and a link type in, records
out.

Output per packet: a list of (record name, fields) in layer order, plus one decode-error
reason index (0: none). Field values are raw: ints, bools, bytes (addresses as raw bytes,
rendered to text only when written). Each layer record also carries the private key
'_poff' (payload start, relative to the packet) where the record has a PayloadSize.

Rule for bad input (as gopacket, which the Go Netcap uses): a layer whose header is cut
short or invalid yields no record and stops decoding; the outer layers already decoded
are kept. A payload cut short by the snaplen is not an error.
"""

from __future__ import annotations

from typing import Any

from netcap.decode.errors import DecodeError
from netcap.decode.linktypes import (
    ETH_ARP,
    ETH_IPV4,
    ETH_IPV6,
    ETH_MIN_TYPE,
    ETH_VLAN,
    IPPROTO_AH,
    IPPROTO_FRAGMENT,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV6_EXT,
    IPV6_MAX_EXT,
    LT,
    MAX_VLAN_TAGS,
    NULL_AF_INET,
    NULL_AF_INET6,
)

__all__ = ["Rec", "decode_packet"]

Rec = tuple[str, dict[str, Any]]


def _u16(d: bytes, i: int) -> int:
    return (d[i] << 8) | d[i + 1]


def _u32(d: bytes, i: int) -> int:
    return int.from_bytes(d[i : i + 4], "big")


def decode_packet(data: bytes, linktype: int) -> tuple[list[Rec], int]:
    """Decode one packet's captured bytes. Never raises for any input bytes."""
    out: list[Rec] = []
    try:
        _link(data, linktype, out)
    except DecodeError as e:
        return out, e.index
    return out, 0


def _link(d: bytes, lt: int, out: list[Rec]) -> None:
    n = len(d)
    if lt == LT.ETHERNET:
        _ethernet(d, out)
    elif lt in (LT.NULL, LT.LOOP):
        if n < 4:
            raise DecodeError("null", "truncated")
        fam = int.from_bytes(d[:4], "big" if lt == LT.LOOP else "little")
        if lt == LT.NULL and fam & 0xFFFF0000:
            fam = int.from_bytes(d[:4], "big")  # written on a host of the other byte order
        if fam == NULL_AF_INET:
            _ipv4(d, 4, n, out)
        elif fam in NULL_AF_INET6:
            _ipv6(d, 4, n, out)
    elif lt == LT.LINUX_SLL:
        if n < 16:
            raise DecodeError("sll", "truncated")
        _sll_protocol(d, 16, _u16(d, 14), out)
    elif lt == LT.LINUX_SLL2:
        if n < 20:
            raise DecodeError("sll2", "truncated")
        _sll_protocol(d, 20, _u16(d, 0), out)
    elif lt == LT.RAW:
        if n < 1:
            raise DecodeError("ipv4", "truncated")
        _raw_ip(d, 0, out)
    elif lt == LT.IPV4:
        _ipv4(d, 0, n, out)
    elif lt == LT.IPV6:
        _ipv6(d, 0, n, out)
    elif lt == LT.IEEE802_11_RADIOTAP:
        _radiotap(d, out)
    elif lt == LT.IEEE802_11:
        _dot11(d, 0, n, out)
    else:
        raise DecodeError("link", "unsupported_link_type")


def _raw_ip(d: bytes, off: int, out: list[Rec]) -> None:
    version = d[off] >> 4
    if version == 4:
        _ipv4(d, off, len(d), out)
    elif version == 6:
        _ipv6(d, off, len(d), out)
    else:
        raise DecodeError("ip", "bad_version")


def _sll_protocol(d: bytes, off: int, proto: int, out: list[Rec]) -> None:
    # Linux cooked capture: protocol is an EtherType, or 0x0004 for 802.2 LLC frames.
    if proto == 0x0004:
        _llc(d, off, len(d), out)
    else:
        _ethertype(d, off, proto, out, 0)


def _ethernet(d: bytes, out: list[Rec]) -> None:
    n = len(d)
    if n < 14:
        raise DecodeError("ethernet", "truncated")
    et = _u16(d, 12)
    out.append(("Ethernet", {
        "SrcMAC": d[6:12], "DstMAC": d[0:6], "EthernetType": et if et >= ETH_MIN_TYPE else 0,
        "PayloadSize": n - 14, "_poff": 14,
    }))
    if et < ETH_MIN_TYPE:
        _llc(d, 14, n, out)
    else:
        _ethertype(d, 14, et, out, 0)


def _ethertype(d: bytes, off: int, et: int, out: list[Rec], tags: int) -> None:
    if et == ETH_IPV4:
        _ipv4(d, off, len(d), out)
    elif et == ETH_IPV6:
        _ipv6(d, off, len(d), out)
    elif et in ETH_VLAN:
        _dot1q(d, off, out, tags)
    elif et == ETH_ARP:
        _arp(d, off, out)
    # Any other EtherType: not decoded here (not an error).


def _dot1q(d: bytes, off: int, out: list[Rec], tags: int) -> None:
    if tags >= MAX_VLAN_TAGS:
        raise DecodeError("dot1q", "too_many_tags")
    if len(d) - off < 4:
        raise DecodeError("dot1q", "truncated")
    tci, et = _u16(d, off), _u16(d, off + 2)
    out.append(("Dot1Q", {
        "Priority": tci >> 13, "DropEligible": bool(tci & 0x1000),
        "VLANIdentifier": tci & 0x0FFF, "Type": et,
    }))
    if et < ETH_MIN_TYPE:
        _llc(d, off + 4, len(d), out)
    else:
        _ethertype(d, off + 4, et, out, tags + 1)


def _llc(d: bytes, off: int, end: int, out: list[Rec]) -> None:
    if end - off < 3:
        raise DecodeError("llc", "truncated")
    dsap, ssap, control = d[off], d[off + 1], d[off + 2]
    size = 3
    if control & 0x1 == 0 or control & 0x3 == 0x1:  # I- and S-format: 2-byte control
        if end - off < 4:
            raise DecodeError("llc", "truncated")
        control = (control << 8) | d[off + 3]
        size = 4
    out.append(("LLC", {
        "DSAP": dsap & 0xFE, "IG": bool(dsap & 1), "SSAP": ssap & 0xFE, "CR": bool(ssap & 1),
        "Control": control,
    }))
    # SNAP (AA AA 03 + OUI + EtherType) carries an EtherType on 802.2 links (802.11).
    if dsap == 0xAA and ssap == 0xAA and control == 0x03 and end - off >= size + 5:
        _ethertype(d, off + size + 5, _u16(d, off + size + 3), out, 0)


def _arp(d: bytes, off: int, out: list[Rec]) -> None:
    if len(d) - off < 8:
        raise DecodeError("arp", "truncated")
    hlen, plen = d[off + 4], d[off + 5]
    if len(d) - off < 8 + 2 * (hlen + plen):
        raise DecodeError("arp", "truncated")
    p = off + 8
    sha, spa = d[p : p + hlen], d[p + hlen : p + hlen + plen]
    p += hlen + plen
    tha, tpa = d[p : p + hlen], d[p + hlen : p + hlen + plen]
    out.append(("ARP", {
        "AddrType": _u16(d, off), "Protocol": _u16(d, off + 2), "HwAddressSize": hlen,
        "ProtocolAddressSize": plen, "Operation": _u16(d, off + 6),
        "SrcHwAddress": sha, "SrcProtocolAddress": spa,
        "DstHwAddress": tha, "DstProtocolAddress": tpa,
    }))


def _ipv4(d: bytes, off: int, end: int, out: list[Rec]) -> None:
    avail = end - off
    if avail < 1:
        raise DecodeError("ipv4", "truncated")
    if d[off] >> 4 != 4:
        raise DecodeError("ip", "bad_version")
    if avail < 20:
        raise DecodeError("ipv4", "truncated")
    ihl = d[off] & 0x0F
    if ihl < 5:
        raise DecodeError("ipv4", "bad_ihl")
    hl = ihl * 4
    length = _u16(d, off + 2)
    if length == 0:  # TCP segmentation offload: the NIC fills it in later
        length = avail
    if length < hl:
        raise DecodeError("ipv4", "bad_total_length")
    if hl > avail:
        raise DecodeError("ipv4", "truncated")
    options, padding = _options(d, off + 20, off + hl, "ipv4")
    ff = _u16(d, off + 6)
    src, dst = d[off + 12 : off + 16], d[off + 16 : off + 20]
    pend = off + min(length, avail)
    rec: dict[str, Any] = {
        "Version": 4, "IHL": ihl, "TOS": d[off + 1], "Length": length, "Id": _u16(d, off + 4),
        "Flags": ff >> 13, "FragOffset": ff & 0x1FFF, "TTL": d[off + 8],
        "Protocol": d[off + 9], "Checksum": _u16(d, off + 10), "SrcIP": src, "DstIP": dst,
        "Padding": padding, "Options": options, "PayloadSize": pend - off - hl,
        "_poff": off + hl,
    }
    out.append(("IPv4", rec))
    if ff & 0x3FFF == 0:  # not a fragment: fragments go to reassembly/ip.py
        _transport(d, off + hl, pend, length > avail, d[off + 9], src, dst, out, (rec,))


def _options(d: bytes, start: int, end: int, proto: str) -> tuple[list[dict[str, Any]], bytes]:
    """IPv4/TCP option lists (same TLV layout). Returns (options, padding after EOL)."""
    opts: list[dict[str, Any]] = []
    p = start
    while p < end:
        kind = d[p]
        if kind == 0:  # end of option list: the rest is padding
            opts.append({"OptionType": 0, "OptionLength": 1})
            return opts, d[p + 1 : end]
        if kind == 1:
            opts.append({"OptionType": 1, "OptionLength": 1})
            p += 1
            continue
        if p + 1 >= end:
            raise DecodeError(proto, "bad_option_length")
        ln = d[p + 1]
        if ln < 2 or p + ln > end:
            raise DecodeError(proto, "bad_option_length")
        opts.append({"OptionType": kind, "OptionLength": ln, "OptionData": d[p + 2 : p + ln]})
        p += ln
    return opts, b""


def _ipv6(d: bytes, off: int, end: int, out: list[Rec]) -> None:
    avail = end - off
    if avail < 1:
        raise DecodeError("ipv6", "truncated")
    if d[off] >> 4 != 6:
        raise DecodeError("ip", "bad_version")
    if avail < 40:
        raise DecodeError("ipv6", "truncated")
    word = _u32(d, off)
    plen, nh = _u16(d, off + 4), d[off + 6]
    src, dst = d[off + 8 : off + 24], d[off + 24 : off + 40]
    pend = end if plen == 0 else min(end, off + 40 + plen)
    rec: dict[str, Any] = {
        "Version": 6, "TrafficClass": (word >> 20) & 0xFF, "FlowLabel": word & 0xFFFFF,
        "Length": plen, "NextHeader": nh, "HopLimit": d[off + 7], "SrcIP": src, "DstIP": dst,
        "PayloadSize": pend - off - 40, "_poff": off + 40,
    }
    out.append(("IPv6", rec))
    targets: list[dict[str, Any]] = [rec]
    p = off + 40
    for _ in range(IPV6_MAX_EXT):
        if nh not in IPV6_EXT:
            break
        if nh == IPPROTO_FRAGMENT:
            if pend - p < 8:
                raise DecodeError("ipv6", "ext_truncated")
            fo = _u16(d, p + 2)
            frag: dict[str, Any] = {
                "NextHeader": d[p], "Reserved1": d[p + 1], "FragmentOffset": fo >> 3,
                "Reserved2": (fo >> 1) & 0x3, "MoreFragments": bool(fo & 1),
                "Identification": _u32(d, p + 4), "SrcIP": src, "DstIP": dst,
                "_poff": p + 8,  # the fragment's data
            }
            out.append(("IPv6Fragment", frag))
            nh, p = d[p], p + 8
            if fo >> 3 or fo & 1:  # a fragment (not an atomic one): reassembly/ip.py
                return
            targets.append(frag)
            continue
        if pend - p < 2:
            raise DecodeError("ipv6", "ext_truncated")
        size = (d[p + 1] + 2) * 4 if nh == IPPROTO_AH else (d[p + 1] + 1) * 8
        if pend - p < size:
            raise DecodeError("ipv6", "ext_truncated")
        nh, p = d[p], p + size
    else:
        if nh in IPV6_EXT:
            raise DecodeError("ipv6", "ext_chain_too_long")
    _transport(d, p, pend, plen != 0 and off + 40 + plen > end, nh, src, dst, out,
               tuple(targets))


def _transport(
    d: bytes, off: int, end: int, cut: bool, proto: int, src: bytes, dst: bytes,
    out: list[Rec], ip_recs: tuple[dict[str, Any], ...],
) -> None:
    """The transport header at d[off:end]; `cut`: the IP header says the packet goes on
    past `end` (the capture's snaplen cut it)."""
    if proto == IPPROTO_TCP:
        _tcp(d, off, end, cut, src, dst, out, ip_recs)
    elif proto == IPPROTO_UDP:
        _udp(d, off, end, src, dst, out, ip_recs)
    elif proto == IPPROTO_ICMP:
        if end - off < 8:
            raise DecodeError("icmpv4", "truncated")
        out.append(("ICMPv4", {
            "TypeCode": _u16(d, off), "Checksum": _u16(d, off + 2), "Id": _u16(d, off + 4),
            "Seq": _u16(d, off + 6), "SrcIP": src, "DstIP": dst,
        }))
    elif proto == IPPROTO_ICMPV6:
        if end - off < 4:
            raise DecodeError("icmpv6", "truncated")
        out.append(("ICMPv6", {
            "TypeCode": _u16(d, off), "Checksum": _u16(d, off + 2), "SrcIP": src, "DstIP": dst,
        }))
    elif proto == IPPROTO_SCTP:  # (added with the compiled decoder, issue 14)
        if end - off < 12:
            raise DecodeError("sctp", "truncated")
        out.append(("SCTP", {
            "SrcPort": _u16(d, off), "DstPort": _u16(d, off + 2),
            "VerificationTag": _u32(d, off + 4), "Checksum": _u32(d, off + 8),
            "SrcIP": src, "DstIP": dst,
        }))


def _set_ports(ip_recs: tuple[dict[str, Any], ...], sport: int, dport: int) -> None:
    for r in ip_recs:
        r["SrcPort"], r["DstPort"] = sport, dport


def _tcp(d: bytes, off: int, end: int, cut: bool, src: bytes, dst: bytes, out: list[Rec],
         ip_recs: tuple[dict[str, Any], ...]) -> None:
    if end - off < 20:
        raise DecodeError("tcp", "truncated")
    doff = d[off + 12] >> 4
    if doff < 5:
        raise DecodeError("tcp", "bad_data_offset")
    hl = doff * 4
    options_cut = hl > end - off
    options: list[dict[str, Any]]
    if options_cut and not cut:  # the IP length ends inside the header: malformed
        raise DecodeError("tcp", "truncated")
    if options_cut:
        # The snaplen cut the options (`tcpdump -s 64` for flow statistics): the fixed
        # 20 bytes are whole, so the record keeps them, as tshark shows them, with no
        # options and no payload; the cut is counted (`tcp/options_truncated`).
        options, padding, hl = [], b"", end - off
    else:
        options, padding = _options(d, off + 20, off + hl, "tcp")
    fl = d[off + 13]
    sport, dport = _u16(d, off), _u16(d, off + 2)
    out.append(("TCP", {
        "SrcPort": sport, "DstPort": dport, "SeqNum": _u32(d, off + 4),
        "AckNum": _u32(d, off + 8), "DataOffset": doff,
        "FIN": bool(fl & 0x01), "SYN": bool(fl & 0x02), "RST": bool(fl & 0x04),
        "PSH": bool(fl & 0x08), "ACK": bool(fl & 0x10), "URG": bool(fl & 0x20),
        "ECE": bool(fl & 0x40), "CWR": bool(fl & 0x80), "NS": bool(d[off + 12] & 0x01),
        "Window": _u16(d, off + 14), "Checksum": _u16(d, off + 16), "Urgent": _u16(d, off + 18),
        "Padding": padding, "Options": options, "PayloadSize": end - off - hl,
        "SrcIP": src, "DstIP": dst, "_poff": off + hl,
    }))
    _set_ports(ip_recs, sport, dport)
    if options_cut:
        raise DecodeError("tcp", "options_truncated")


def _udp(d: bytes, off: int, end: int, src: bytes, dst: bytes, out: list[Rec],
         ip_recs: tuple[dict[str, Any], ...]) -> None:
    if end - off < 8:
        raise DecodeError("udp", "truncated")
    length = _u16(d, off + 4)
    if 0 < length < 8:
        raise DecodeError("udp", "bad_length")
    pend = end if length == 0 else min(end, off + length)  # 0: jumbogram, use the rest
    sport, dport = _u16(d, off), _u16(d, off + 2)
    out.append(("UDP", {
        "SrcPort": sport, "DstPort": dport, "Length": length, "Checksum": _u16(d, off + 6),
        "PayloadSize": pend - off - 8, "SrcIP": src, "DstIP": dst, "_poff": off + 8,
    }))
    _set_ports(ip_recs, sport, dport)


def _radiotap(d: bytes, out: list[Rec]) -> None:
    n = len(d)
    if n < 8:
        raise DecodeError("radiotap", "truncated")
    rlen = int.from_bytes(d[2:4], "little")
    if d[0] != 0 or rlen < 8:
        raise DecodeError("radiotap", "bad_length")
    if rlen > n:
        raise DecodeError("radiotap", "truncated")
    # Find the Flags field (bit 1) to learn whether the frame ends in an FCS: walk the
    # present words (bit 31 = another word follows), then TSFT (bit 0) is 8 bytes,
    # 8-aligned, and Flags is the next byte.
    p = 4
    present = int.from_bytes(d[4:8], "little")
    word = present
    while word & 0x80000000:
        p += 4
        if p + 4 > rlen:
            raise DecodeError("radiotap", "bad_length")
        word = int.from_bytes(d[p : p + 4], "little")
    p += 4
    end = n
    if present & 0x2:
        if present & 0x1:
            p = (p + 7) & ~7
            p += 8
        if p < rlen and d[p] & 0x10:
            end = n - 4  # FCS at the end of the frame
    _dot11(d, rlen, end, out)


def _dot11(d: bytes, off: int, end: int, out: list[Rec]) -> None:
    # Frames are counted by the caller; data frames are decoded on through LLC/SNAP so
    # IP traffic over Wi-Fi is seen. Management, control and protected frames stop here.
    if end - off < 2:
        raise DecodeError("dot11", "truncated")
    fc0, fc1 = d[off], d[off + 1]
    ftype, subtype = (fc0 >> 2) & 0x3, fc0 >> 4
    if fc0 & 0x3:
        raise DecodeError("dot11", "bad_frame")  # protocol version must be 0
    if ftype != 2 or fc1 & 0x40 or subtype & 0x4:
        return  # not data, protected, or a null-data frame: nothing to decode on
    hdr = 24 + (6 if fc1 & 0x3 == 0x3 else 0)
    if subtype & 0x8:  # QoS data: QoS control, plus HT control when +HTC/Order is set
        hdr += 2 + (4 if fc1 & 0x80 else 0)
    if end - off < hdr:
        raise DecodeError("dot11", "truncated")
    _llc(d, off + hdr, end, out)
