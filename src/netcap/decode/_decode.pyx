# cython: language_level=3
"""The packet decoder, compiled: every supported layer of every packet of a batch, in one
pass per packet, into one table per record type (the semantics: `packets.py`).

Each layer has one function. It reads the packet through one bounded reader over its
captured bytes (`_buf.pxd`), at absolute offsets (`b8`/`b16`/`b32`: a byte past the packet
reads as 0, and every field used is behind a length check first), adds its row to its
record type's table (`_Rows`: an int64 matrix, one matrix row per column, so a column is a
contiguous view; it grows when full), and returns the decode-error reason index for the
packet (0: none), which stops the decoding where it is met: the outer layers' rows are
kept. A field that is bytes (addresses, option data, padding) is a row of offsets into
the batch buffer; `decode_packets` copies the bytes out only for the columns asked for.

Link layers chain without bound in crafted frames (802.1Q -> LLC/SNAP -> 802.1Q ...), so
`_l2` walks them in a loop, not by recursion: the decoding needs no stack depth that grows
with the input.

Adding a protocol: an enum of its matrix rows, a `_Rows` in `_Pass`, a function that
checks its header and fills a row (called from the layer below it), and its columns named
in `decode_packets`.
"""

cimport cython
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memset

import numpy as np

from netcap._buf cimport Reader, payload_at, peek, peek16, peek32, prefetch_head, reader

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
    IPPROTO_SCTP as _IPPROTO_SCTP,
    IPPROTO_TCP as _IPPROTO_TCP,
    IPPROTO_UDP as _IPPROTO_UDP,
    IPV6_EXT,
    IPV6_MAX_EXT as _IPV6_MAX_EXT,
    LT,
    MAX_VLAN_TAGS as _MAX_VLAN_TAGS,
    NULL_AF_INET as _NULL_AF_INET,
    NULL_AF_INET6,
)
from netcap.gather import gather_u8
from netcap.records.table import Children, Ragged, RecordTable
from netcap.records.types import RECORDS

__all__ = ["decode_packets", "gather", "option_lists"]

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
cdef uint32_t IPPROTO_SCTP = _IPPROTO_SCTP
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

# Decode-error reasons (errors.py holds the names and their stable order).
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
cdef int E_SCTP_TRUNC = code("sctp", "truncated")

cdef enum:
    MAX_OPTIONS = 40  # a 40-byte option area holds at most 40 options
    # How many packets ahead `_walk` prefetches a packet's first two cache lines (the
    # link, IP and TCP headers of a common packet). A batch does not stay in the cache
    # from the record walk to here (8 MiB chunks), and the first read of each packet
    # waited on memory: half the time of a pass over a batch from memory went there.
    PREFETCH = 8

# Matrix rows (columns of a table) per record type: the packet index and its time first
# in each (`_Rows.add` fills them); offsets are into the batch buffer.
cdef enum:
    E_PKT, E_TS, E_TYPE, E_PAYLOAD, E_POFF, E_BASE, E_N
cdef enum:
    L_PKT, L_TS, L_DSAP, L_IG, L_SSAP, L_CR, L_CONTROL, L_N
cdef enum:
    Q_PKT, Q_TS, Q_PRIO, Q_VID, Q_TYPE, Q_DROP, Q_N
cdef enum:  # R_ADDR: where the sender's hardware address starts (the four follow it)
    R_PKT, R_TS, R_HTYPE, R_PTYPE, R_HLEN, R_PLEN, R_OP, R_ADDR, R_N
cdef enum:  # A_OPT0, A_OPT1: the option area
    A_PKT, A_TS, A_IHL, A_TOS, A_LEN, A_ID, A_FLAGS, A_FRAG, A_TTL, A_PROTO, A_CSUM, A_PAYLOAD
    A_SPORT, A_DPORT, A_POFF, A_L3, A_OPT0, A_OPT1, A_N
cdef enum:
    B_PKT, B_TS, B_TC, B_FLOW, B_LEN, B_NH, B_HOP, B_PAYLOAD, B_SPORT, B_DPORT, B_POFF, B_L3, B_N
cdef enum:  # G_L3: the IPv6 header (for the addresses); G_POFF: the fragment's data
    G_PKT, G_TS, G_NH, G_RES1, G_OFF, G_RES2, G_MORE, G_ID, G_SPORT, G_DPORT, G_L3, G_POFF, G_N
cdef enum:  # T_FLAGS: the flags byte, NS as bit 8; T_SRC, T_ALEN: the source address
    T_PKT, T_TS, T_SPORT, T_DPORT, T_SEQ, T_ACK, T_DOFF, T_FLAGS, T_WIN, T_CSUM, T_URG
    T_PAYLOAD, T_POFF, T_SRC, T_ALEN, T_OPT0, T_OPT1, T_N
cdef enum:
    U_PKT, U_TS, U_SPORT, U_DPORT, U_LEN, U_CSUM, U_PAYLOAD, U_POFF, U_SRC, U_ALEN, U_N
cdef enum:
    C_PKT, C_TS, C_TC, C_CSUM, C_ID, C_SEQ, C_SRC, C_ALEN, C_N
cdef enum:
    D_PKT, D_TS, D_TC, D_CSUM, D_SRC, D_ALEN, D_N
cdef enum:
    S_PKT, S_TS, S_SPORT, S_DPORT, S_TAG, S_CSUM, S_SRC, S_ALEN, S_N

# For the fuzz target, which drives `_walk` itself: the tables `_walk` returns, in order,
# and the matrix rows of the option areas and of the TCP source address and its length.
TABLES = ("Ethernet", "LLC", "Dot1Q", "ARP", "IPv4", "IPv6", "IPv6Fragment", "TCP", "UDP",
          "ICMPv4", "ICMPv6", "SCTP")
V4_OPTIONS = (A_OPT0, A_OPT1)
TCP_OPTIONS = (T_OPT0, T_OPT1)
TCP_ADDRESS = (T_SRC, T_ALEN)


# Absolute reads: the reader is the whole packet, its position always 0.
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


cdef struct Opt:
    int64_t kind
    int64_t length
    int64_t at  # where the option starts


cdef Py_ssize_t tlv_options(const Reader* r, Py_ssize_t p, Py_ssize_t e, Opt* out,
                            Py_ssize_t* eol) noexcept nogil:
    """The TCP or IPv4 option list (the same layout) in r[p:e] into out (room for
    MAX_OPTIONS): the number of options, or -1 if the list is malformed (an option's
    length missing, below 2 or past e). *eol: where the padding after an end-of-list
    option starts, or -1."""
    cdef Py_ssize_t k = 0
    cdef uint32_t kind, ln
    eol[0] = -1
    while p < e:
        if k == MAX_OPTIONS:  # cannot happen: areas are at most 40 bytes
            return -1
        kind = peek(r, p)
        ln = 1  # end of list (0), no-operation (1)
        if kind > 1:  # a length follows
            if p + 1 >= e:
                return -1
            ln = peek(r, p + 1)
            if ln < 2 or p + ln > e:
                return -1
        out[k].kind = kind
        out[k].length = ln
        out[k].at = p
        k += 1
        p += ln
        if kind == 0:
            eol[0] = p
            break
    return k


# ------------------------------------------------------------------------------ tables

cdef struct Row:
    # One row of a `_Rows` matrix while a layer fills it, held in locals: the row's value
    # in column 0, and the distance from one column to the next. (Written through the
    # matrix's own `p` and `cap`, every store made the compiler load both again, and the
    # reader's fields too: an int64 store may alias any of them. Layers read their
    # header's fields before they write the row, for the same reason.)
    int64_t* at
    Py_ssize_t stride


cdef inline void put(Row w, int k, int64_t v) noexcept nogil:
    w.at[k * w.stride] = v


@cython.final
cdef class _Rows:
    """The rows of one record type: an int64 matrix, one matrix row per column (so a
    column is a contiguous view), that doubles when full (link chains make any number
    of rows per packet). Written through a pointer: `add` makes the row, `row` gives
    where it is, and the column indexes are the type's enum, so every write is inside
    the matrix."""

    cdef object a  # the numpy matrix (columns, capacity)
    cdef int64_t* p  # its data: column k of row j at p[k * cap + j]
    cdef Py_ssize_t n, cap

    def __cinit__(self, Py_ssize_t columns, Py_ssize_t capacity):
        self.n = 0
        self._room(np.empty((columns, capacity if capacity > 0 else 1), np.int64))

    cdef int _room(self, a) except -1:
        cdef int64_t[:, ::1] m = a
        self.a = a
        self.p = &m[0, 0]
        self.cap = m.shape[1]
        return 0

    cdef int _grow(self) except -1:
        grown = np.empty((self.a.shape[0], 2 * self.cap), np.int64)
        grown[:, :self.cap] = self.a
        return self._room(grown)

    cdef inline Py_ssize_t add(self, Py_ssize_t pkt, int64_t ts) except -1:
        """A new row for packet `pkt` at time `ts`: its index."""
        cdef Py_ssize_t j = self.n
        if j == self.cap:
            self._grow()
        cdef int64_t* p = self.p
        p[j] = pkt
        p[self.cap + j] = ts
        self.n = j + 1
        return j

    cdef inline Row row(self, Py_ssize_t j) noexcept:
        cdef Row w
        w.at = self.p + j
        w.stride = self.cap
        return w

    cdef object used(self):
        """The rows filled. The columns made of them keep the whole matrix alive (as
        long as the batch's records live): a table with few rows gets a copy of its own."""
        if 2 * self.n < self.cap:
            return self.a[:, :self.n].copy()
        return self.a[:, :self.n]


@cython.final
cdef class _Pass:
    """The tables of one batch, and where the packet being decoded is."""

    cdef _Rows eth, llc, q, arp, v4, v6, frag, tcp, udp, icmp4, icmp6, sctp
    cdef Py_ssize_t i  # the packet's index in the batch
    cdef int64_t ts  # its time
    cdef int64_t base  # where it starts in the batch buffer
    # Its IP layer, which a TCP or UDP header gives ports: its table (v6 if ip6, else
    # v4) and row, and the first of the atomic IPv6 fragment headers after it (rows
    # frag0.. of `frag`).
    cdef bint ip6
    cdef Py_ssize_t ip_row, frag0

    def __cinit__(self, Py_ssize_t n):
        # Room for a row per packet in the tables most packets have a row in; a quarter
        # in the others (they grow if they need more).
        cdef Py_ssize_t some = n // 4 + 16
        self.eth = _Rows(E_N, n)
        self.llc = _Rows(L_N, 16)
        self.q = _Rows(Q_N, some)
        self.arp = _Rows(R_N, 16)
        self.v4 = _Rows(A_N, n)
        self.v6 = _Rows(B_N, some)
        self.frag = _Rows(G_N, 16)
        self.tcp = _Rows(T_N, n)
        self.udp = _Rows(U_N, some)
        self.icmp4 = _Rows(C_N, some)
        self.icmp6 = _Rows(D_N, some)
        self.sctp = _Rows(S_N, 16)


# ------------------------------------------------------------------------------ layers

cdef int _link(_Pass o, const Reader* pk, int lt) except -1:
    cdef Py_ssize_t n = pk.size
    cdef uint32_t fam
    if lt == LT_ETHERNET:
        return _ethernet(o, pk)
    if lt == LT_NULL or lt == LT_LOOP:
        if n < 4:
            return E_NULL_TRUNC
        fam = b32(pk, 0) if lt == LT_LOOP else l32(pk, 0)
        if lt == LT_NULL and fam & 0xFFFF0000:
            fam = b32(pk, 0)  # written on a host of the other byte order
        if fam == NULL_AF_INET:
            return _ipv4(o, pk, 4, n)
        if fam < 256 and AF_INET6[fam]:
            return _ipv6(o, pk, 4, n)
        return 0
    if lt == LT_LINUX_SLL:
        if n < 16:
            return E_SLL_TRUNC
        return _sll_protocol(o, pk, 16, b16(pk, 14))
    if lt == LT_LINUX_SLL2:
        if n < 20:
            return E_SLL2_TRUNC
        return _sll_protocol(o, pk, 20, b16(pk, 0))
    if lt == LT_RAW:
        if n < 1:
            return E_IPV4_TRUNC
        if b8(pk, 0) >> 4 == 4:
            return _ipv4(o, pk, 0, n)
        if b8(pk, 0) >> 4 == 6:
            return _ipv6(o, pk, 0, n)
        return E_IP_VERSION
    if lt == LT_IPV4:
        return _ipv4(o, pk, 0, n)
    if lt == LT_IPV6:
        return _ipv6(o, pk, 0, n)
    if lt == LT_RADIOTAP:
        return _radiotap(o, pk)
    if lt == LT_IEEE802_11:
        return _dot11(o, pk, 0, n)
    return E_LINK


cdef int _sll_protocol(_Pass o, const Reader* pk, Py_ssize_t off, uint32_t proto) except -1:
    # Linux cooked capture: protocol is an EtherType, or 0x0004 for 802.2 LLC frames.
    if proto == 0x0004:
        return _l2(o, pk, True, off, 0, pk.size)
    return _l2(o, pk, False, off, proto, pk.size)


cdef int _ethernet(_Pass o, const Reader* pk) except -1:
    cdef Py_ssize_t n = pk.size
    if n < 14:
        return E_ETH_TRUNC
    cdef uint32_t et = b16(pk, 12)
    cdef int64_t base = o.base
    cdef Row w = o.eth.row(o.eth.add(o.i, o.ts))
    put(w, E_TYPE, et if et >= ETH_MIN_TYPE else 0)
    put(w, E_PAYLOAD, n - 14)
    put(w, E_POFF, base + 14)
    put(w, E_BASE, base)
    return _l2(o, pk, et < ETH_MIN_TYPE, 14, et, n)


cdef int _l2(_Pass o, const Reader* pk, bint llc, Py_ssize_t off, uint32_t et,
             Py_ssize_t end) except -1:
    """What follows a link header: an LLC header in pk[off:end] if `llc`, else the
    payload of EtherType `et` at off (802.1Q tags, ARP, IP; any other: nothing, not an
    error). One step per header, in a loop (see the module docstring)."""
    cdef Py_ssize_t n = pk.size, size
    cdef int tags = 0
    cdef uint32_t dsap, ssap, control, tci
    cdef Row w
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
            w = o.llc.row(o.llc.add(o.i, o.ts))
            put(w, L_DSAP, dsap & 0xFE)
            put(w, L_IG, dsap & 1)
            put(w, L_SSAP, ssap & 0xFE)
            put(w, L_CR, ssap & 1)
            put(w, L_CONTROL, control)
            # SNAP (AA AA 03 + OUI + EtherType) carries an EtherType on 802.2 links.
            if dsap == 0xAA and ssap == 0xAA and control == 0x03 and end - off >= size + 5:
                et = b16(pk, off + size + 3)
                off += size + 5
                llc, tags, end = False, 0, n
                continue
            return 0
        if et == ETH_IPV4:
            return _ipv4(o, pk, off, n)
        if et == ETH_IPV6:
            return _ipv6(o, pk, off, n)
        if et == ETH_ARP:
            return _arp(o, pk, off)
        if et > 0xFFFF or not VLAN[et]:
            return 0  # any other EtherType: not decoded here (not an error)
        if tags >= MAX_VLAN_TAGS:
            return E_DOT1Q_TAGS
        if n - off < 4:
            return E_DOT1Q_TRUNC
        tci, et = b16(pk, off), b16(pk, off + 2)
        w = o.q.row(o.q.add(o.i, o.ts))
        put(w, Q_PRIO, tci >> 13)
        put(w, Q_DROP, (tci & 0x1000) != 0)
        put(w, Q_VID, tci & 0x0FFF)
        put(w, Q_TYPE, et)
        off += 4
        if et < ETH_MIN_TYPE:
            llc, end = True, n
        else:
            tags += 1


cdef int _arp(_Pass o, const Reader* pk, Py_ssize_t off) except -1:
    cdef Py_ssize_t n = pk.size
    if n - off < 8:
        return E_ARP_TRUNC
    cdef Py_ssize_t hlen = b8(pk, off + 4), plen = b8(pk, off + 5)
    if n - off < 8 + 2 * (hlen + plen):
        return E_ARP_TRUNC
    cdef uint32_t htype = b16(pk, off), ptype = b16(pk, off + 2), op = b16(pk, off + 6)
    cdef int64_t base = o.base
    cdef Row w = o.arp.row(o.arp.add(o.i, o.ts))
    put(w, R_HTYPE, htype)
    put(w, R_PTYPE, ptype)
    put(w, R_HLEN, hlen)
    put(w, R_PLEN, plen)
    put(w, R_OP, op)
    put(w, R_ADDR, base + off + 8)
    return 0


cdef int _ipv4(_Pass o, const Reader* pk, Py_ssize_t off, Py_ssize_t end) except -1:
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
    cdef Opt opts[MAX_OPTIONS]
    cdef Py_ssize_t eol
    if hl > 20 and tlv_options(pk, off + 20, off + hl, opts, &eol) < 0:
        return E_IPV4_OPTION
    cdef uint32_t tos = b8(pk, off + 1), ident = b16(pk, off + 4), ff = b16(pk, off + 6)
    cdef uint32_t ttl = b8(pk, off + 8), proto = b8(pk, off + 9), csum = b16(pk, off + 10)
    cdef Py_ssize_t pend = off + (length if length < avail else avail)
    cdef int64_t base = o.base
    cdef Py_ssize_t j = o.v4.add(o.i, o.ts)
    cdef Row w = o.v4.row(j)
    put(w, A_IHL, ihl)
    put(w, A_TOS, tos)
    put(w, A_LEN, length)
    put(w, A_ID, ident)
    put(w, A_FLAGS, ff >> 13)
    put(w, A_FRAG, ff & 0x1FFF)
    put(w, A_TTL, ttl)
    put(w, A_PROTO, proto)
    put(w, A_CSUM, csum)
    put(w, A_PAYLOAD, pend - off - hl)
    put(w, A_SPORT, 0)
    put(w, A_DPORT, 0)
    put(w, A_POFF, base + off + hl)
    put(w, A_L3, base + off)
    put(w, A_OPT0, base + off + 20)
    put(w, A_OPT1, base + off + hl)
    if ff & 0x3FFF:  # a fragment: reassembly/ip.py decodes its transport
        return 0
    o.ip6, o.ip_row, o.frag0 = False, j, o.frag.n
    return _transport(o, pk, off + hl, pend, length > avail, proto, base + off + 12, 4)


cdef int _ipv6(_Pass o, const Reader* pk, Py_ssize_t off, Py_ssize_t end) except -1:
    cdef Py_ssize_t avail = end - off
    if avail < 1:
        return E_IPV6_TRUNC
    if b8(pk, off) >> 4 != 6:
        return E_IP_VERSION
    if avail < 40:
        return E_IPV6_TRUNC
    cdef uint32_t word = b32(pk, off)
    cdef Py_ssize_t plen = b16(pk, off + 4)
    cdef uint32_t nh = b8(pk, off + 6), hop = b8(pk, off + 7)
    cdef Py_ssize_t pend = end if plen == 0 or off + 40 + plen > end else off + 40 + plen
    cdef int64_t base = o.base
    cdef Py_ssize_t j = o.v6.add(o.i, o.ts)
    cdef Row w = o.v6.row(j)
    put(w, B_TC, (word >> 20) & 0xFF)
    put(w, B_FLOW, word & 0xFFFFF)
    put(w, B_LEN, plen)
    put(w, B_NH, nh)
    put(w, B_HOP, hop)
    put(w, B_PAYLOAD, pend - off - 40)
    put(w, B_SPORT, 0)
    put(w, B_DPORT, 0)
    put(w, B_POFF, base + off + 40)
    put(w, B_L3, base + off)
    o.ip6, o.ip_row, o.frag0 = True, j, o.frag.n
    cdef Py_ssize_t p = off + 40, size
    cdef uint32_t fo, fnh, res1, ident
    cdef int _i
    for _i in range(IPV6_MAX_EXT):
        if not EXT[nh]:
            break
        if nh == IPPROTO_FRAGMENT:
            if pend - p < 8:
                return E_IPV6_EXT_TRUNC
            fnh, res1, fo, ident = b8(pk, p), b8(pk, p + 1), b16(pk, p + 2), b32(pk, p + 4)
            w = o.frag.row(o.frag.add(o.i, o.ts))
            put(w, G_NH, fnh)
            put(w, G_RES1, res1)
            put(w, G_OFF, fo >> 3)
            put(w, G_RES2, (fo >> 1) & 0x3)
            put(w, G_MORE, fo & 1)
            put(w, G_ID, ident)
            put(w, G_SPORT, 0)
            put(w, G_DPORT, 0)
            put(w, G_L3, base + off)
            put(w, G_POFF, base + p + 8)
            nh = fnh
            p += 8
            if fo >> 3 or fo & 1:  # a fragment (not an atomic one): reassembly/ip.py
                return 0
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
    return _transport(o, pk, p, pend, plen != 0 and off + 40 + plen > end, nh,
                      base + off + 8, 16)


cdef int _transport(_Pass o, const Reader* pk, Py_ssize_t off, Py_ssize_t end, bint cut,
                    uint32_t proto, int64_t src, int64_t alen) except -1:
    """The transport header at pk[off:end]; `cut`: the IP header says the packet goes
    on past `end` (the capture's snaplen cut it). `src`, `alen`: the source address
    (the destination follows it) in the batch buffer, and its length."""
    cdef Row w
    cdef uint32_t tc, csum, ident, seq
    if proto == IPPROTO_TCP:
        return _tcp(o, pk, off, end, cut, src, alen)
    if proto == IPPROTO_UDP:
        return _udp(o, pk, off, end, src, alen)
    if proto == IPPROTO_SCTP:
        return _sctp(o, pk, off, end, src, alen)
    if proto == IPPROTO_ICMP:
        if end - off < 8:
            return E_ICMP4_TRUNC
        tc, csum, ident, seq = b16(pk, off), b16(pk, off + 2), b16(pk, off + 4), b16(pk, off + 6)
        w = o.icmp4.row(o.icmp4.add(o.i, o.ts))
        put(w, C_TC, tc)
        put(w, C_CSUM, csum)
        put(w, C_ID, ident)
        put(w, C_SEQ, seq)
        put(w, C_SRC, src)
        put(w, C_ALEN, alen)
    elif proto == IPPROTO_ICMPV6:
        if end - off < 4:
            return E_ICMP6_TRUNC
        tc, csum = b16(pk, off), b16(pk, off + 2)
        w = o.icmp6.row(o.icmp6.add(o.i, o.ts))
        put(w, D_TC, tc)
        put(w, D_CSUM, csum)
        put(w, D_SRC, src)
        put(w, D_ALEN, alen)
    return 0


cdef int _set_ports(_Pass o, uint32_t sport, uint32_t dport) except -1:
    """The transport's ports on its IP layer's row and its atomic fragment headers'."""
    cdef Py_ssize_t j
    cdef Row w
    if o.ip6:
        w = o.v6.row(o.ip_row)
        put(w, B_SPORT, sport)
        put(w, B_DPORT, dport)
    else:
        w = o.v4.row(o.ip_row)
        put(w, A_SPORT, sport)
        put(w, A_DPORT, dport)
    for j in range(o.frag0, o.frag.n):
        w = o.frag.row(j)
        put(w, G_SPORT, sport)
        put(w, G_DPORT, dport)
    return 0


cdef int _tcp(_Pass o, const Reader* pk, Py_ssize_t off, Py_ssize_t end, bint cut,
              int64_t src, int64_t alen) except -1:
    if end - off < 20:
        return E_TCP_TRUNC
    cdef uint32_t doff = b8(pk, off + 12) >> 4
    if doff < 5:
        return E_TCP_OFFSET
    cdef Py_ssize_t hl = doff * 4
    cdef bint options_cut = hl > end - off
    cdef Opt opts[MAX_OPTIONS]
    cdef Py_ssize_t eol
    if options_cut and not cut:  # the IP length ends inside the header: malformed
        return E_TCP_TRUNC
    if options_cut:
        # The snaplen cut the options (`tcpdump -s 64` for flow statistics): the fixed
        # 20 bytes are whole, so the record keeps them, as tshark shows them, with no
        # options and no payload; the cut is counted (`tcp/options_truncated`).
        hl = end - off
    elif hl > 20 and tlv_options(pk, off + 20, off + hl, opts, &eol) < 0:
        return E_TCP_OPTION
    cdef uint32_t sport = b16(pk, off), dport = b16(pk, off + 2)
    cdef uint32_t seq = b32(pk, off + 4), ack = b32(pk, off + 8)
    cdef uint32_t flags = b8(pk, off + 13) | (b8(pk, off + 12) & 0x01) << 8
    cdef uint32_t win = b16(pk, off + 14), csum = b16(pk, off + 16), urg = b16(pk, off + 18)
    cdef int64_t at = o.base + off
    cdef Row w = o.tcp.row(o.tcp.add(o.i, o.ts))
    put(w, T_SPORT, sport)
    put(w, T_DPORT, dport)
    put(w, T_SEQ, seq)
    put(w, T_ACK, ack)
    put(w, T_DOFF, doff)
    put(w, T_FLAGS, flags)
    put(w, T_WIN, win)
    put(w, T_CSUM, csum)
    put(w, T_URG, urg)
    put(w, T_PAYLOAD, end - off - hl)
    put(w, T_POFF, at + hl)
    put(w, T_SRC, src)
    put(w, T_ALEN, alen)
    put(w, T_OPT0, at + 20 if not options_cut else at + hl)
    put(w, T_OPT1, at + hl)
    _set_ports(o, sport, dport)
    if options_cut:
        return E_TCP_OPTIONS_CUT
    return 0


cdef int _udp(_Pass o, const Reader* pk, Py_ssize_t off, Py_ssize_t end, int64_t src,
              int64_t alen) except -1:
    if end - off < 8:
        return E_UDP_TRUNC
    cdef Py_ssize_t length = b16(pk, off + 4)
    if 0 < length < 8:
        return E_UDP_LENGTH
    # 0: jumbogram, use the rest
    cdef Py_ssize_t pend = end if length == 0 or off + length > end else off + length
    cdef uint32_t sport = b16(pk, off), dport = b16(pk, off + 2), csum = b16(pk, off + 6)
    cdef int64_t base = o.base
    cdef Row w = o.udp.row(o.udp.add(o.i, o.ts))
    put(w, U_SPORT, sport)
    put(w, U_DPORT, dport)
    put(w, U_LEN, length)
    put(w, U_CSUM, csum)
    put(w, U_PAYLOAD, pend - off - 8)
    put(w, U_POFF, base + off + 8)
    put(w, U_SRC, src)
    put(w, U_ALEN, alen)
    _set_ports(o, sport, dport)
    return 0


cdef int _sctp(_Pass o, const Reader* pk, Py_ssize_t off, Py_ssize_t end, int64_t src,
               int64_t alen) except -1:
    # The 12-byte common header; the chunks after it are not decoded.
    if end - off < 12:
        return E_SCTP_TRUNC
    cdef uint32_t sport = b16(pk, off), dport = b16(pk, off + 2)
    cdef uint32_t tag = b32(pk, off + 4), csum = b32(pk, off + 8)
    cdef Row w = o.sctp.row(o.sctp.add(o.i, o.ts))
    put(w, S_SPORT, sport)
    put(w, S_DPORT, dport)
    put(w, S_TAG, tag)
    put(w, S_CSUM, csum)
    put(w, S_SRC, src)
    put(w, S_ALEN, alen)
    return 0


cdef int _radiotap(_Pass o, const Reader* pk) except -1:
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
    return _dot11(o, pk, rlen, end)


cdef int _dot11(_Pass o, const Reader* pk, Py_ssize_t off, Py_ssize_t end) except -1:
    # Data frames are decoded on through LLC/SNAP so IP traffic over Wi-Fi is seen.
    # Management, control and protected frames stop here (no record: counted as packets).
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
    return _l2(o, pk, True, off + hdr, 0, end)


# -------------------------------------------------------------------------- the pass

def _walk(const uint8_t[::1] data, const int64_t[::1] offset, const int64_t[::1] caplen,
          const int32_t[::1] linktype, const int64_t[::1] ts):
    """The per-packet pass: (per packet its decode-error reason, and per record type of
    `TABLES` the matrix of its rows)."""
    cdef Py_ssize_t n = offset.shape[0], i
    if caplen.shape[0] != n or linktype.shape[0] != n or ts.shape[0] != n:  # invariant
        raise ValueError("batch columns of different lengths")
    error_a = np.zeros(n, np.int16)
    cdef int16_t[::1] error = error_a
    cdef _Pass o = _Pass(n)
    cdef Reader r
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    for i in range(n):
        if i + PREFETCH < n:  # the headers of a packet ahead
            prefetch_head(base, data.shape[0], offset[i + PREFETCH])
        r = reader(payload_at(data, offset[i], caplen[i]), caplen[i])
        o.i, o.ts, o.base = i, ts[i], offset[i]
        error[i] = _link(o, &r, linktype[i])
    return (error_a, o.eth.used(), o.llc.used(), o.q.used(), o.arp.used(), o.v4.used(),
            o.v6.used(), o.frag.used(), o.tcp.used(), o.udp.used(), o.icmp4.used(),
            o.icmp6.used(), o.sctp.used())


def option_lists(const uint8_t[::1] data, const int64_t[::1] start, const int64_t[::1] stop,
                 bint keep=True):
    """The option lists data[start[i]:stop[i]] (TCP or IPv4 layout), walked as the pass
    walks them: (bad per list; and, with `keep`, per option its list, kind, length, data
    start and data length; per list where its padding starts, or -1)."""
    cdef Py_ssize_t m = start.shape[0]
    if stop.shape[0] != m:  # invariant, not input
        raise ValueError("start and stop of different lengths")
    cdef Py_ssize_t i, j, k, cnt, eol, room = 0, total = 0
    for i in range(m):
        if stop[i] > start[i]:
            room += stop[i] - start[i]  # an option is at least one byte
    bad_a = np.zeros(m, np.uint8)
    opt_a = np.empty((5, room if keep else 0), np.int64)
    pad_a = np.full(m, -1, np.int64)
    cdef uint8_t[::1] bad = bad_a
    cdef int64_t[:, ::1] out = opt_a
    cdef int64_t[::1] pad = pad_a
    cdef Opt opts[MAX_OPTIONS]
    cdef Reader r
    for i in range(m):
        cnt = stop[i] - start[i] if stop[i] > start[i] else 0
        r = reader(payload_at(data, start[i], cnt), cnt)
        k = tlv_options(&r, 0, cnt, opts, &eol)
        if k < 0:
            bad[i] = 1
            continue
        if not keep:
            continue
        if eol >= 0:
            pad[i] = start[i] + eol
        for j in range(k):
            out[0, total] = i
            out[1, total] = opts[j].kind
            out[2, total] = opts[j].length
            out[3, total] = start[i] + opts[j].at + 2
            out[4, total] = opts[j].length - 2 if opts[j].kind > 1 else 0
            total += 1
    return bad_a.view(np.bool_), opt_a[:, :total], pad_a


def gather(const uint8_t[::1] data, const int64_t[::1] starts, const int64_t[::1] lens):
    """The byte strings data[starts[i] : starts[i] + lens[i]] as a Ragged (a copy)."""
    cdef Py_ssize_t m = starts.shape[0], i, j, total = 0, at = 0
    if lens.shape[0] != m:  # invariant, not input
        raise ValueError("starts and lens of different lengths")
    for i in range(m):
        # (An empty one may start anywhere: a no-operation option at the end of the
        # buffer has its data "after" it.)
        if lens[i] < 0 or lens[i] and (starts[i] < 0 or starts[i] + lens[i] > data.shape[0]):
            raise ValueError("a byte string outside the batch")  # invariant, not input
        total += lens[i]
    out_a = np.empty(total, np.uint8)
    cdef uint8_t[::1] out = out_a
    for i in range(m):
        for j in range(starts[i], starts[i] + lens[i]):
            out[at] = data[j]
            at += 1
    return Ragged(out_a, np.array(lens, np.int64))


# --------------------------------------------------------------------------- columns

def _table(str name, rows, dict cols, columns):
    """The record table of one type, from its matrix `rows`. A column given as a
    function is computed only if wanted: decoding for metrics alone skips the costly
    ones (addresses, options)."""
    keep = None if columns is None else columns.get(name, frozenset())
    full = {"Timestamp": rows[1]}
    for k, v in cols.items():
        if keep is None or k in keep:
            full[k] = v() if callable(v) else v
    return RecordTable(RECORDS[name], int(rows.shape[1]), full, rows[0])


def _wants(columns, str name, *fields):
    return columns is None or any(f in columns.get(name, ()) for f in fields)


def _fixed(data, starts, int width):
    """`width` bytes at each start, as a Ragged."""
    return Ragged.from_matrix(gather_u8(data, starts, width))


def _addr(data, src, alen, int dst):
    """Source (dst=0) or destination (dst=1) IP address at each row's offsets."""
    return gather(data, src + dst * alen, alen)


def _option_columns(data, start, stop, str child):
    """Padding and Options columns of a table whose rows have these option areas."""
    cols = {}
    _, opts, pad = option_lists(data, start, stop)
    has_pad = pad >= 0
    if has_pad.any():
        pad_lens = np.where(has_pad, stop - pad, 0)
        if pad_lens.any():
            cols["Padding"] = gather(data, np.where(has_pad, pad, 0), pad_lens)
    if opts.shape[1]:
        table = RecordTable(RECORDS[child], int(opts.shape[1]), {
            "OptionType": opts[1], "OptionLength": opts[2],
            "OptionData": gather(data, opts[3], opts[4]),
        })
        cols["Options"] = Children(opts[0], table)
    return cols


def _flag(flags, int bit):
    return (flags >> bit & 1).astype(np.bool_)


def decode_packets(batch, columns=None):
    """Decode every packet of `batch`: (per record type that occurred its table, rows in
    packet order; per packet its decode-error reason, 0 for none). `columns` (per record
    type, the columns a consumer reads; None: all) limits what is built: rows (and
    `pkt`) are always there; a type missing from the mapping gets no columns but its
    Timestamp."""
    data = np.ascontiguousarray(batch.data, np.uint8)
    error, eth, llc, q, arp, v4, v6, frag, tcp, udp, icmp4, icmp6, sctp = _walk(
        data, np.ascontiguousarray(batch.offset, np.int64),
        np.ascontiguousarray(batch.caplen, np.int64),
        np.ascontiguousarray(batch.linktype, np.int32),
        np.ascontiguousarray(batch.ts, np.int64))
    tables = {}
    if eth.shape[1]:
        tables["Ethernet"] = _table("Ethernet", eth, {
            "SrcMAC": lambda: _fixed(data, eth[E_BASE] + 6, 6),
            "DstMAC": lambda: _fixed(data, eth[E_BASE], 6),
            "EthernetType": eth[E_TYPE], "PayloadSize": eth[E_PAYLOAD], "_poff": eth[E_POFF],
        }, columns)
    if llc.shape[1]:
        tables["LLC"] = _table("LLC", llc, {
            "DSAP": llc[L_DSAP], "IG": llc[L_IG] != 0, "SSAP": llc[L_SSAP],
            "CR": llc[L_CR] != 0, "Control": llc[L_CONTROL],
        }, columns)
    if q.shape[1]:
        tables["Dot1Q"] = _table("Dot1Q", q, {
            "Priority": q[Q_PRIO], "DropEligible": q[Q_DROP] != 0,
            "VLANIdentifier": q[Q_VID], "Type": q[Q_TYPE],
        }, columns)
    if arp.shape[1]:
        hl, pl, at = arp[R_HLEN], arp[R_PLEN], arp[R_ADDR]
        tables["ARP"] = _table("ARP", arp, {
            "AddrType": arp[R_HTYPE], "Protocol": arp[R_PTYPE], "HwAddressSize": hl,
            "ProtocolAddressSize": pl, "Operation": arp[R_OP],
            "SrcHwAddress": lambda: gather(data, at, hl),
            "SrcProtocolAddress": lambda: gather(data, at + hl, pl),
            "DstHwAddress": lambda: gather(data, at + hl + pl, hl),
            "DstProtocolAddress": lambda: gather(data, at + 2 * hl + pl, pl),
        }, columns)
    if v4.shape[1]:
        cols = {
            "Version": lambda: np.full(v4.shape[1], 4, np.int64), "IHL": v4[A_IHL],
            "TOS": v4[A_TOS], "Length": v4[A_LEN], "Id": v4[A_ID], "Flags": v4[A_FLAGS],
            "FragOffset": v4[A_FRAG], "TTL": v4[A_TTL], "Protocol": v4[A_PROTO],
            "Checksum": v4[A_CSUM], "SrcIP": lambda: _fixed(data, v4[A_L3] + 12, 4),
            "DstIP": lambda: _fixed(data, v4[A_L3] + 16, 4),
        }
        if _wants(columns, "IPv4", "Options", "Padding"):
            cols.update(_option_columns(data, v4[A_OPT0], v4[A_OPT1], "IPv4Option"))
        cols.update({"PayloadSize": v4[A_PAYLOAD], "SrcPort": v4[A_SPORT],
                     "DstPort": v4[A_DPORT], "_poff": v4[A_POFF]})
        tables["IPv4"] = _table("IPv4", v4, cols, columns)
    if v6.shape[1]:
        tables["IPv6"] = _table("IPv6", v6, {
            "Version": lambda: np.full(v6.shape[1], 6, np.int64), "TrafficClass": v6[B_TC],
            "FlowLabel": v6[B_FLOW], "Length": v6[B_LEN], "NextHeader": v6[B_NH],
            "HopLimit": v6[B_HOP], "SrcIP": lambda: _fixed(data, v6[B_L3] + 8, 16),
            "DstIP": lambda: _fixed(data, v6[B_L3] + 24, 16),
            "PayloadSize": v6[B_PAYLOAD], "SrcPort": v6[B_SPORT], "DstPort": v6[B_DPORT],
            "_poff": v6[B_POFF],
        }, columns)
    if frag.shape[1]:
        tables["IPv6Fragment"] = _table("IPv6Fragment", frag, {
            "NextHeader": frag[G_NH], "Reserved1": frag[G_RES1],
            "FragmentOffset": frag[G_OFF], "Reserved2": frag[G_RES2],
            "MoreFragments": frag[G_MORE] != 0, "Identification": frag[G_ID],
            "SrcPort": frag[G_SPORT], "DstPort": frag[G_DPORT],
            "SrcIP": lambda: _fixed(data, frag[G_L3] + 8, 16),
            "DstIP": lambda: _fixed(data, frag[G_L3] + 24, 16),
            "_poff": frag[G_POFF],
        }, columns)
    if tcp.shape[1]:
        fl = tcp[T_FLAGS]
        cols = {
            "SrcPort": tcp[T_SPORT], "DstPort": tcp[T_DPORT], "SeqNum": tcp[T_SEQ],
            "AckNum": tcp[T_ACK], "DataOffset": tcp[T_DOFF],
            "FIN": lambda: _flag(fl, 0), "SYN": lambda: _flag(fl, 1),
            "RST": lambda: _flag(fl, 2), "PSH": lambda: _flag(fl, 3),
            "ACK": lambda: _flag(fl, 4), "URG": lambda: _flag(fl, 5),
            "ECE": lambda: _flag(fl, 6), "CWR": lambda: _flag(fl, 7),
            "NS": lambda: _flag(fl, 8),
            "Window": tcp[T_WIN], "Checksum": tcp[T_CSUM], "Urgent": tcp[T_URG],
        }
        if _wants(columns, "TCP", "Options", "Padding"):
            cols.update(_option_columns(data, tcp[T_OPT0], tcp[T_OPT1], "TCPOption"))
        cols.update({
            "PayloadSize": tcp[T_PAYLOAD],
            "SrcIP": lambda: _addr(data, tcp[T_SRC], tcp[T_ALEN], 0),
            "DstIP": lambda: _addr(data, tcp[T_SRC], tcp[T_ALEN], 1),
            "_poff": tcp[T_POFF],
        })
        tables["TCP"] = _table("TCP", tcp, cols, columns)
    if udp.shape[1]:
        tables["UDP"] = _table("UDP", udp, {
            "SrcPort": udp[U_SPORT], "DstPort": udp[U_DPORT], "Length": udp[U_LEN],
            "Checksum": udp[U_CSUM], "PayloadSize": udp[U_PAYLOAD],
            "SrcIP": lambda: _addr(data, udp[U_SRC], udp[U_ALEN], 0),
            "DstIP": lambda: _addr(data, udp[U_SRC], udp[U_ALEN], 1),
            "_poff": udp[U_POFF],
        }, columns)
    if icmp4.shape[1]:
        tables["ICMPv4"] = _table("ICMPv4", icmp4, {
            "TypeCode": icmp4[C_TC], "Checksum": icmp4[C_CSUM], "Id": icmp4[C_ID],
            "Seq": icmp4[C_SEQ],
            "SrcIP": lambda: _addr(data, icmp4[C_SRC], icmp4[C_ALEN], 0),
            "DstIP": lambda: _addr(data, icmp4[C_SRC], icmp4[C_ALEN], 1),
        }, columns)
    if icmp6.shape[1]:
        tables["ICMPv6"] = _table("ICMPv6", icmp6, {
            "TypeCode": icmp6[D_TC], "Checksum": icmp6[D_CSUM],
            "SrcIP": lambda: _addr(data, icmp6[D_SRC], icmp6[D_ALEN], 0),
            "DstIP": lambda: _addr(data, icmp6[D_SRC], icmp6[D_ALEN], 1),
        }, columns)
    if sctp.shape[1]:
        tables["SCTP"] = _table("SCTP", sctp, {
            "SrcPort": sctp[S_SPORT], "DstPort": sctp[S_DPORT],
            "VerificationTag": sctp[S_TAG], "Checksum": sctp[S_CSUM],
            "SrcIP": lambda: _addr(data, sctp[S_SRC], sctp[S_ALEN], 0),
            "DstIP": lambda: _addr(data, sctp[S_SRC], sctp[S_ALEN], 1),
        }, columns)
    return tables, error
