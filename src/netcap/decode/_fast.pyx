# cython: language_level=3
"""The fast path, compiled: the common stack for a whole batch, one pass per packet.

Covers Ethernet (up to two VLAN tags), BSD loopback, Linux SLL/SLL2 and raw-IP links,
IPv4 (options; fragments stop at IP), IPv6 with up to 9 hop-by-hop, routing or
destination-options headers, and complete TCP (with options), UDP, ICMPv4 and ICMPv6
headers; IP packets carrying another protocol, and later fragments, are complete at the
IP layer. Every packet outside that (IPv6 fragment and AH headers, ARP, LLC, other link
types, or anything malformed or cut short) is left to the general decoder, which owns
the error semantics; the fast path only ever takes packets it decodes exactly as the
general path would (a test checks this on every corpus packet).

`_walk` is the per-packet pass. `take` decodes one packet's headers, read through a
bounded reader of its own captured bytes (`_buf.pxd`; a read past them is 0, and every
field used is behind a length check against the packet's or the IP datagram's end),
into a `Packet` struct, one section per layer: adding a protocol is a branch there, a
table (an enum of its matrix rows) filled by `_walk`, and its columns named in
`decode_fast`. A packet taken adds one row to each of its layers' tables, in packet
order: preallocated int64 matrices (one matrix row per column, so a column is a
contiguous view), cut to the rows used. `decode_fast` turns those into `RecordTable`s,
building only the columns asked for; byte columns (addresses, option data, padding) are
copied from the batch buffer by offset, and only when wanted.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t

import numpy as np

from netcap._buf cimport Reader, left, payload_at, peek, peek16, peek32, reader

from netcap.decode.linktypes import (
    ETH_IPV4 as _ETH_IPV4,
    ETH_IPV6 as _ETH_IPV6,
    ETH_VLAN,
    IPPROTO_AH,
    IPPROTO_FRAGMENT,
    IPV6_EXT,
    LT,
    NULL_AF_INET as _NULL_AF_INET,
    NULL_AF_INET6,
)
from netcap.gather import gather_u8
from netcap.records.table import Children, Ragged, RecordTable
from netcap.records.types import RECORDS

__all__ = ["FastResult", "decode_fast", "gather", "option_lists"]

# The dispatch numbers, from linktypes.py (the one place they are declared).
cdef int LT_NULL = LT.NULL
cdef int LT_ETHERNET = LT.ETHERNET
cdef int LT_RAW = LT.RAW
cdef int LT_LOOP = LT.LOOP
cdef int LT_LINUX_SLL = LT.LINUX_SLL
cdef int LT_LINUX_SLL2 = LT.LINUX_SLL2
cdef int LT_IPV4 = LT.IPV4
cdef int LT_IPV6 = LT.IPV6
cdef int ETH_IPV4 = _ETH_IPV4
cdef int ETH_IPV6 = _ETH_IPV6
cdef uint32_t NULL_AF_INET = _NULL_AF_INET

# Per EtherType low byte would not do: VLAN types are a handful of 16-bit values.
cdef int VLAN_TYPES[3]
if len(ETH_VLAN) != 3:  # invariant (linktypes.py), not input
    raise ImportError("decode/_fast.pyx expects three VLAN EtherTypes")
for _k, _v in enumerate(sorted(ETH_VLAN)):
    VLAN_TYPES[_k] = _v

# Per IP protocol number: 1 = an IPv6 extension header the fast path walks (sized
# (len + 1) * 8, no record of its own), 2 = one it leaves to the general decoder
# (fragment, AH).
cdef uint8_t IPV6_HEADER[256]
for _k in range(256):
    IPV6_HEADER[_k] = 0
for _v in IPV6_EXT:
    IPV6_HEADER[_v] = 2 if _v in (IPPROTO_FRAGMENT, IPPROTO_AH) else 1

cdef uint8_t AF_INET6[256]
for _k in range(256):
    AF_INET6[_k] = 0
for _v in NULL_AF_INET6:
    AF_INET6[_v] = 1

cdef enum:
    MAX_TAGS = 2  # VLAN tags taken; deeper stacks go to the general path
    MAX_EXT = 9  # IPv6 extension headers walked
    MAX_OPTIONS = 40  # a 40-byte option area holds at most 40 options
    PROTO_ICMP = 1
    PROTO_TCP = 6
    PROTO_UDP = 17
    PROTO_ICMPV6 = 58

# Matrix rows (columns of a table) per record type. PKT: the packet index.
cdef enum:
    E_PKT, E_TS, E_TYPE, E_PAYLOAD, E_POFF, E_BASE, E_N
cdef enum:
    Q_PKT, Q_TS, Q_PRIO, Q_VID, Q_TYPE, Q_DROP, Q_N
cdef enum:
    A_PKT, A_TS, A_IHL, A_TOS, A_LEN, A_ID, A_FLAGS, A_FRAG, A_TTL, A_PROTO, A_CSUM, A_PAYLOAD
    A_SPORT, A_DPORT, A_POFF, A_L3, A_OPT0, A_OPT1, A_N
cdef enum:
    B_PKT, B_TS, B_TC, B_FLOW, B_LEN, B_NH, B_HOP, B_PAYLOAD, B_SPORT, B_DPORT, B_POFF, B_L3, B_N
cdef enum:
    T_PKT, T_TS, T_SPORT, T_DPORT, T_SEQ, T_ACK, T_DOFF, T_WIN, T_CSUM, T_URG, T_PAYLOAD
    T_POFF, T_SRC, T_ALEN, T_OPT0, T_OPT1, T_N
cdef enum:  # TCP flags (a bool matrix)
    F_FIN, F_SYN, F_RST, F_PSH, F_ACK, F_URG, F_ECE, F_CWR, F_NS, F_N
cdef enum:
    U_PKT, U_TS, U_SPORT, U_DPORT, U_LEN, U_CSUM, U_PAYLOAD, U_POFF, U_SRC, U_ALEN, U_N
cdef enum:
    C_PKT, C_TS, C_TC, C_CSUM, C_ID, C_SEQ, C_SRC, C_ALEN, C_N
cdef enum:
    D_PKT, D_TS, D_TC, D_CSUM, D_SRC, D_ALEN, D_N

# For the fuzz target, which drives `_walk` itself: the matrix rows of the IPv4 and TCP
# option areas and of the TCP source address and its length.
V4_OPTIONS = (A_OPT0, A_OPT1)
TCP_OPTIONS = (T_OPT0, T_OPT1)
TCP_ADDRESS = (T_SRC, T_ALEN)

# What a taken packet carries after IP.
cdef enum:
    L4_NONE, L4_TCP, L4_UDP, L4_ICMP4, L4_ICMP6


cdef inline uint32_t b8(const Reader* r, Py_ssize_t k) noexcept nogil:
    return peek(r, k)


cdef inline uint32_t b16(const Reader* r, Py_ssize_t k) noexcept nogil:
    return peek16(r, k)


cdef inline uint32_t b32(const Reader* r, Py_ssize_t k) noexcept nogil:
    return peek32(r, k)


cdef inline uint32_t l32(const Reader* r, Py_ssize_t k) noexcept nogil:
    return ((<uint32_t>peek(r, k + 3) << 24) | (<uint32_t>peek(r, k + 2) << 16)
            | (<uint32_t>peek(r, k + 1) << 8) | peek(r, k))


cdef inline bint is_vlan(int64_t et) noexcept nogil:
    return et == VLAN_TYPES[0] or et == VLAN_TYPES[1] or et == VLAN_TYPES[2]


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


cdef struct Packet:
    # What `take` found in one packet: where its layers start (offsets in the packet)
    # and the header fields its rows hold.
    bint eth
    int64_t outer  # the link layer's EtherType (before VLAN tags)
    int ntag
    uint32_t tci[MAX_TAGS]
    uint32_t ttype[MAX_TAGS]
    bint v4  # IPv4 (else IPv6)
    Py_ssize_t l3, hl, l4, pend  # network layer, its header length, transport, IP end
    uint32_t w0, w4, w8  # the IP header's first 12 bytes (IPv6: the first 8)
    uint32_t csum4  # IPv4 header checksum
    int l4kind
    uint32_t h0, h4, h8, h12, h16  # the transport header's first 20 bytes (as many as it has)
    Py_ssize_t doff  # TCP header length in words


cdef bint take(const Reader* r, int64_t lt, Packet* p) noexcept nogil:
    """Decode one packet's headers into p; whether the fast path takes the packet."""
    cdef Py_ssize_t cl = left(r), l3 = 0, at, eol, k = 0
    cdef int64_t et
    cdef uint32_t fam, tot, nh, size, proto
    cdef bint transport
    cdef Opt opts[MAX_OPTIONS]

    # --- link layer -> (EtherType, network-layer offset) -------------------------------
    p.eth = False
    if lt == LT_ETHERNET:
        if cl < 14:
            return False
        et = b16(r, 12)
        l3 = 14
        p.eth = True
    elif lt == LT_NULL or lt == LT_LOOP:
        if cl < 4:
            return False
        fam = b32(r, 0) if lt == LT_LOOP else l32(r, 0)
        if lt == LT_NULL and (fam >> 16) != 0:  # written byte-swapped
            fam = b32(r, 0)
        et = ETH_IPV4 if fam == NULL_AF_INET else (
            ETH_IPV6 if fam < 256 and AF_INET6[fam] else -1)
        l3 = 4
    elif lt == LT_LINUX_SLL:
        if cl < 16:
            return False
        et = b16(r, 14)
        l3 = 16
    elif lt == LT_LINUX_SLL2:
        if cl < 20:
            return False
        et = b16(r, 0)
        l3 = 20
    elif lt == LT_RAW:
        if cl < 1:
            return False
        k = b8(r, 0) >> 4
        et = ETH_IPV4 if k == 4 else (ETH_IPV6 if k == 6 else -1)
    elif lt == LT_IPV4:
        et = ETH_IPV4
    elif lt == LT_IPV6:
        et = ETH_IPV6
    else:
        return False
    p.outer = et

    # --- VLAN tags (Ethernet only) -----------------------------------------------------
    p.ntag = 0
    if p.eth:
        while p.ntag < MAX_TAGS and is_vlan(et) and l3 + 4 <= cl:
            p.tci[p.ntag] = b16(r, l3)
            et = b16(r, l3 + 2)
            p.ttype[p.ntag] = et
            p.ntag += 1
            l3 += 4
    if is_vlan(et):  # deeper stacks or cut tags: general path
        return False

    # --- IPv4 / IPv6 -------------------------------------------------------------------
    p.l3 = l3
    if et == ETH_IPV4:
        if l3 + 20 > cl or b8(r, l3) >> 4 != 4:
            return False
        p.hl = (b8(r, l3) & 0x0F) * 4
        tot = b16(r, l3 + 2)
        # Header complete, total length consistent (0, TCP offload, is left to the
        # general path, as are bad IHLs and total lengths), options well formed.
        if p.hl < 20 or l3 + p.hl > cl or tot < p.hl:
            return False
        if tlv_options(r, l3 + 20, l3 + p.hl, opts, &eol) < 0:
            return False
        p.v4 = True
        p.w0 = b32(r, l3)
        p.w4 = b32(r, l3 + 4)
        p.w8 = b32(r, l3 + 8)
        proto = (p.w8 >> 16) & 0xFF
        p.l4 = l3 + p.hl
        p.pend = l3 + tot if l3 + tot < cl else cl
        # A fragment (more fragments, or an offset) is complete at the IP layer: its
        # transport is decoded from the reassembled datagram (reassembly/ip.py).
        transport = (p.w4 & 0x3FFF) == 0
    elif et == ETH_IPV6:
        if l3 + 40 > cl or b8(r, l3) >> 4 != 6:
            return False
        p.w0 = b32(r, l3)
        p.w4 = b32(r, l3 + 4)
        if p.w4 >> 16 == 0:  # payload length 0 (jumbogram): general path
            return False
        p.v4 = False
        p.pend = l3 + 40 + (p.w4 >> 16)
        if p.pend > cl:
            p.pend = cl
        nh = (p.w4 >> 8) & 0xFF
        at = l3 + 40
        # Hop-by-hop, routing and destination-options headers; fragment and AH
        # headers, long chains and cut headers go to the general path.
        k = 0
        while k < MAX_EXT and IPV6_HEADER[nh] == 1:
            if at + 2 > p.pend:
                break
            size = (b8(r, at + 1) + 1) * 8
            if at + size > p.pend:
                break
            nh = b8(r, at)
            at += size
            k += 1
        if IPV6_HEADER[nh] != 0:  # cut, fragment / AH, or a chain too long
            return False
        proto = nh
        p.l4 = at
        transport = True
    else:
        return False

    # --- transport ---------------------------------------------------------------------
    # IP packets whose payload is not a transport decoded here (or a fragment) are
    # complete at the IP layer; the others only if their transport header decodes.
    p.l4kind = L4_NONE
    if not transport:
        return True
    at = p.l4
    if proto == PROTO_TCP:
        if at + 20 > p.pend:
            return False
        p.doff = b8(r, at + 12) >> 4
        if p.doff < 5 or at + p.doff * 4 > p.pend:
            return False
        if tlv_options(r, at + 20, at + p.doff * 4, opts, &eol) < 0:
            return False
        p.l4kind = L4_TCP
        p.h16 = b32(r, at + 16)
        p.h12 = b32(r, at + 12)
    elif proto == PROTO_UDP:
        if at + 8 > p.pend:
            return False
        p.h4 = b32(r, at + 4)
        if 0 < p.h4 >> 16 < 8:  # a length shorter than the header
            return False
        p.l4kind = L4_UDP
    elif proto == PROTO_ICMP:
        if not p.v4 or at + 8 > p.pend:
            return False
        p.l4kind = L4_ICMP4
    elif proto == PROTO_ICMPV6:
        if p.v4 or at + 4 > p.pend:
            return False
        p.l4kind = L4_ICMP6
    else:
        return True
    p.h0 = b32(r, at)
    p.h4 = b32(r, at + 4)  # (zero for ICMPv6's 4-byte header)
    p.h8 = b32(r, at + 8)
    return True


def _walk(const uint8_t[::1] data, const int64_t[::1] offset, const int64_t[::1] caplen,
          const int32_t[::1] linktype, const int64_t[::1] ts):
    """The per-packet pass: (done, and per record type the matrix of its rows)."""
    cdef Py_ssize_t n = offset.shape[0]
    if caplen.shape[0] != n or linktype.shape[0] != n or ts.shape[0] != n:  # invariant
        raise ValueError("batch columns of different lengths")
    done_a = np.zeros(n, np.uint8)
    eth_a = np.empty((E_N, n), np.int64)
    q_a = np.empty((Q_N, MAX_TAGS * n), np.int64)
    v4_a = np.empty((A_N, n), np.int64)
    v6_a = np.empty((B_N, n), np.int64)
    tcp_a = np.empty((T_N, n), np.int64)
    flags_a = np.empty((F_N, n), np.uint8)
    udp_a = np.empty((U_N, n), np.int64)
    icmp4_a = np.empty((C_N, n), np.int64)
    icmp6_a = np.empty((D_N, n), np.int64)
    cdef uint8_t[::1] done = done_a
    cdef int64_t[:, ::1] E = eth_a
    cdef int64_t[:, ::1] Q = q_a
    cdef int64_t[:, ::1] A = v4_a
    cdef int64_t[:, ::1] B = v6_a
    cdef int64_t[:, ::1] T = tcp_a
    cdef uint8_t[:, ::1] F = flags_a
    cdef int64_t[:, ::1] U = udp_a
    cdef int64_t[:, ::1] C = icmp4_a
    cdef int64_t[:, ::1] D = icmp6_a
    cdef Py_ssize_t ne = 0, nq = 0, n4 = 0, n6 = 0, nt = 0, nu = 0, nc = 0, nd = 0
    cdef Py_ssize_t i, k, cl, l3, l4, hl, upend
    cdef int64_t off, src, alen, sport, dport, ulen
    cdef uint32_t fl
    cdef Packet p
    cdef Reader r
    for i in range(n):
        off = offset[i]
        cl = caplen[i]
        r = reader(payload_at(data, off, cl), cl)
        if not take(&r, linktype[i], &p):
            continue
        # The packet is taken: its rows, from the fields `take` read.
        done[i] = 1
        l3, l4 = p.l3, p.l4
        if p.eth:
            E[E_PKT, ne] = i
            E[E_TS, ne] = ts[i]
            E[E_TYPE, ne] = p.outer
            E[E_PAYLOAD, ne] = cl - 14
            E[E_POFF, ne] = off + 14
            E[E_BASE, ne] = off
            ne += 1
        for k in range(p.ntag):  # outer tag first
            Q[Q_PKT, nq] = i
            Q[Q_TS, nq] = ts[i]
            Q[Q_PRIO, nq] = p.tci[k] >> 13
            Q[Q_DROP, nq] = (p.tci[k] & 0x1000) != 0
            Q[Q_VID, nq] = p.tci[k] & 0x0FFF
            Q[Q_TYPE, nq] = p.ttype[k]
            nq += 1
        sport = 0
        dport = 0
        if p.l4kind == L4_TCP or p.l4kind == L4_UDP:
            sport = p.h0 >> 16
            dport = p.h0 & 0xFFFF
        if p.v4:
            hl = p.hl
            A[A_PKT, n4] = i
            A[A_TS, n4] = ts[i]
            A[A_IHL, n4] = hl // 4
            A[A_TOS, n4] = (p.w0 >> 16) & 0xFF
            A[A_LEN, n4] = p.w0 & 0xFFFF
            A[A_ID, n4] = p.w4 >> 16
            A[A_FLAGS, n4] = (p.w4 & 0xFFFF) >> 13
            A[A_FRAG, n4] = p.w4 & 0x1FFF
            A[A_TTL, n4] = p.w8 >> 24
            A[A_PROTO, n4] = (p.w8 >> 16) & 0xFF
            A[A_CSUM, n4] = p.w8 & 0xFFFF
            A[A_PAYLOAD, n4] = p.pend - l3 - hl
            A[A_SPORT, n4] = sport
            A[A_DPORT, n4] = dport
            A[A_POFF, n4] = off + l3 + hl
            A[A_L3, n4] = off + l3
            A[A_OPT0, n4] = off + l3 + 20
            A[A_OPT1, n4] = off + l3 + hl
            n4 += 1
            src = off + l3 + 12
            alen = 4
        else:
            B[B_PKT, n6] = i
            B[B_TS, n6] = ts[i]
            B[B_TC, n6] = (p.w0 >> 20) & 0xFF
            B[B_FLOW, n6] = p.w0 & 0xFFFFF
            B[B_LEN, n6] = p.w4 >> 16
            B[B_NH, n6] = (p.w4 >> 8) & 0xFF
            B[B_HOP, n6] = p.w4 & 0xFF
            B[B_PAYLOAD, n6] = p.pend - l3 - 40
            B[B_SPORT, n6] = sport
            B[B_DPORT, n6] = dport
            B[B_POFF, n6] = off + l3 + 40
            B[B_L3, n6] = off + l3
            n6 += 1
            src = off + l3 + 8
            alen = 16
        if p.l4kind == L4_TCP:
            fl = (p.h12 >> 16) & 0xFF
            T[T_PKT, nt] = i
            T[T_TS, nt] = ts[i]
            T[T_SPORT, nt] = sport
            T[T_DPORT, nt] = dport
            T[T_SEQ, nt] = p.h4
            T[T_ACK, nt] = p.h8
            T[T_DOFF, nt] = p.doff
            T[T_WIN, nt] = p.h12 & 0xFFFF
            T[T_CSUM, nt] = p.h16 >> 16
            T[T_URG, nt] = p.h16 & 0xFFFF
            T[T_PAYLOAD, nt] = p.pend - l4 - p.doff * 4
            T[T_POFF, nt] = off + l4 + p.doff * 4
            T[T_SRC, nt] = src
            T[T_ALEN, nt] = alen
            T[T_OPT0, nt] = off + l4 + 20
            T[T_OPT1, nt] = off + l4 + p.doff * 4
            for k in range(8):  # FIN, SYN, RST, PSH, ACK, URG, ECE, CWR: bits 0..7
                F[k, nt] = (fl >> k) & 1
            F[F_NS, nt] = (p.h12 >> 24) & 1
            nt += 1
        elif p.l4kind == L4_UDP:
            ulen = p.h4 >> 16
            upend = p.pend if ulen == 0 or p.pend < l4 + ulen else l4 + ulen
            U[U_PKT, nu] = i
            U[U_TS, nu] = ts[i]
            U[U_SPORT, nu] = sport
            U[U_DPORT, nu] = dport
            U[U_LEN, nu] = ulen
            U[U_CSUM, nu] = p.h4 & 0xFFFF
            U[U_PAYLOAD, nu] = upend - l4 - 8
            U[U_POFF, nu] = off + l4 + 8
            U[U_SRC, nu] = src
            U[U_ALEN, nu] = alen
            nu += 1
        elif p.l4kind == L4_ICMP4:
            C[C_PKT, nc] = i
            C[C_TS, nc] = ts[i]
            C[C_TC, nc] = p.h0 >> 16
            C[C_CSUM, nc] = p.h0 & 0xFFFF
            C[C_ID, nc] = p.h4 >> 16
            C[C_SEQ, nc] = p.h4 & 0xFFFF
            C[C_SRC, nc] = src
            C[C_ALEN, nc] = alen
            nc += 1
        elif p.l4kind == L4_ICMP6:
            D[D_PKT, nd] = i
            D[D_TS, nd] = ts[i]
            D[D_TC, nd] = p.h0 >> 16
            D[D_CSUM, nd] = p.h0 & 0xFFFF
            D[D_SRC, nd] = src
            D[D_ALEN, nd] = alen
            nd += 1
    return (done_a.view(np.bool_), _used(eth_a, ne), _used(q_a, nq), _used(v4_a, n4),
            _used(v6_a, n6), _used(tcp_a, nt), _used(flags_a, nt).view(np.bool_),
            _used(udp_a, nu), _used(icmp4_a, nc), _used(icmp6_a, nd))


cdef object _used(object matrix, Py_ssize_t rows):
    """The first `rows` columns of a table's matrix. The columns made of it keep all of
    it alive (as long as the batch's records live): a table with few rows gets a copy of
    its own."""
    if 2 * rows < matrix.shape[1]:
        return matrix[:, :rows].copy()
    return matrix[:, :rows]


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


cdef class FastResult:
    """What the fast path decoded: `done`, per packet, whether it was fully decoded here
    (the others go to the general decoder); `tables`, per record type, its rows."""

    cdef readonly object done
    cdef readonly dict tables

    def __init__(self, done, dict tables):
        self.done = done
        self.tables = tables


def _table(str name, rows, int pkt, int stamp, dict cols, columns):
    """The record table of one type, from its matrix `rows` (packet indexes and
    timestamps in matrix rows `pkt` and `stamp`). A column given as a function is
    computed only if wanted: decoding for metrics alone skips the costly ones (addresses,
    options)."""
    keep = None if columns is None else columns.get(name, frozenset())
    full = {"Timestamp": rows[stamp]}
    for k, v in cols.items():
        if keep is None or k in keep:
            full[k] = v() if callable(v) else v
    return RecordTable(RECORDS[name], int(rows.shape[1]), full, rows[pkt])


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


def decode_fast(batch, columns=None):
    """Decode the packets of `batch` the fast path takes; `columns` (per record type,
    the columns a consumer reads; None: all) limits what is built. Rows (and `pkt`) are
    always there; a type missing from the mapping gets no columns but its Timestamp."""
    data = np.ascontiguousarray(batch.data, np.uint8)
    done, eth, q, v4, v6, tcp, flags, udp, icmp4, icmp6 = _walk(
        data, np.ascontiguousarray(batch.offset, np.int64),
        np.ascontiguousarray(batch.caplen, np.int64),
        np.ascontiguousarray(batch.linktype, np.int32),
        np.ascontiguousarray(batch.ts, np.int64))
    tables = {}
    if eth.shape[1]:
        tables["Ethernet"] = _table("Ethernet", eth, E_PKT, E_TS, {
            "SrcMAC": lambda: _fixed(data, eth[E_BASE] + 6, 6),
            "DstMAC": lambda: _fixed(data, eth[E_BASE], 6),
            "EthernetType": eth[E_TYPE], "PayloadSize": eth[E_PAYLOAD], "_poff": eth[E_POFF],
        }, columns)
    if q.shape[1]:
        tables["Dot1Q"] = _table("Dot1Q", q, Q_PKT, Q_TS, {
            "Priority": q[Q_PRIO], "DropEligible": q[Q_DROP] != 0,
            "VLANIdentifier": q[Q_VID], "Type": q[Q_TYPE],
        }, columns)
    if v4.shape[1]:
        cols = {
            "Version": np.full(v4.shape[1], 4, np.int64), "IHL": v4[A_IHL],
            "TOS": v4[A_TOS], "Length": v4[A_LEN], "Id": v4[A_ID], "Flags": v4[A_FLAGS],
            "FragOffset": v4[A_FRAG], "TTL": v4[A_TTL], "Protocol": v4[A_PROTO],
            "Checksum": v4[A_CSUM], "SrcIP": lambda: _fixed(data, v4[A_L3] + 12, 4),
            "DstIP": lambda: _fixed(data, v4[A_L3] + 16, 4),
        }
        if _wants(columns, "IPv4", "Options", "Padding"):
            cols.update(_option_columns(data, v4[A_OPT0], v4[A_OPT1], "IPv4Option"))
        cols.update({"PayloadSize": v4[A_PAYLOAD], "SrcPort": v4[A_SPORT],
                     "DstPort": v4[A_DPORT], "_poff": v4[A_POFF]})
        tables["IPv4"] = _table("IPv4", v4, A_PKT, A_TS, cols, columns)
    if v6.shape[1]:
        tables["IPv6"] = _table("IPv6", v6, B_PKT, B_TS, {
            "Version": np.full(v6.shape[1], 6, np.int64), "TrafficClass": v6[B_TC],
            "FlowLabel": v6[B_FLOW], "Length": v6[B_LEN], "NextHeader": v6[B_NH],
            "HopLimit": v6[B_HOP], "SrcIP": lambda: _fixed(data, v6[B_L3] + 8, 16),
            "DstIP": lambda: _fixed(data, v6[B_L3] + 24, 16),
            "PayloadSize": v6[B_PAYLOAD], "SrcPort": v6[B_SPORT], "DstPort": v6[B_DPORT],
            "_poff": v6[B_POFF],
        }, columns)
    if tcp.shape[1]:
        cols = {
            "SrcPort": tcp[T_SPORT], "DstPort": tcp[T_DPORT], "SeqNum": tcp[T_SEQ],
            "AckNum": tcp[T_ACK], "DataOffset": tcp[T_DOFF],
            "FIN": flags[F_FIN], "SYN": flags[F_SYN], "RST": flags[F_RST],
            "PSH": flags[F_PSH], "ACK": flags[F_ACK], "URG": flags[F_URG],
            "ECE": flags[F_ECE], "CWR": flags[F_CWR], "NS": flags[F_NS],
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
        tables["TCP"] = _table("TCP", tcp, T_PKT, T_TS, cols, columns)
    if udp.shape[1]:
        tables["UDP"] = _table("UDP", udp, U_PKT, U_TS, {
            "SrcPort": udp[U_SPORT], "DstPort": udp[U_DPORT], "Length": udp[U_LEN],
            "Checksum": udp[U_CSUM], "PayloadSize": udp[U_PAYLOAD],
            "SrcIP": lambda: _addr(data, udp[U_SRC], udp[U_ALEN], 0),
            "DstIP": lambda: _addr(data, udp[U_SRC], udp[U_ALEN], 1),
            "_poff": udp[U_POFF],
        }, columns)
    if icmp4.shape[1]:
        tables["ICMPv4"] = _table("ICMPv4", icmp4, C_PKT, C_TS, {
            "TypeCode": icmp4[C_TC], "Checksum": icmp4[C_CSUM], "Id": icmp4[C_ID],
            "Seq": icmp4[C_SEQ],
            "SrcIP": lambda: _addr(data, icmp4[C_SRC], icmp4[C_ALEN], 0),
            "DstIP": lambda: _addr(data, icmp4[C_SRC], icmp4[C_ALEN], 1),
        }, columns)
    if icmp6.shape[1]:
        tables["ICMPv6"] = _table("ICMPv6", icmp6, D_PKT, D_TS, {
            "TypeCode": icmp6[D_TC], "Checksum": icmp6[D_CSUM],
            "SrcIP": lambda: _addr(data, icmp6[D_SRC], icmp6[D_ALEN], 0),
            "DstIP": lambda: _addr(data, icmp6[D_SRC], icmp6[D_ALEN], 1),
        }, columns)
    return FastResult(done, tables)
