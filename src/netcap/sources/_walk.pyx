# cython: language_level=3
"""The record walks of capture files, in C: classic pcap records and pcapng packet blocks
over one chunk, filling the chunk's `Columns` (start, caplen, wirelen, ts in ns, linktype,
iface).

Each walk goes over the chunk twice: once to count the packets and find where it stops,
then again to fill arrays of exactly that size (an array sized for the most records a chunk
could hold would be mostly untouched, and numpy maps arrays that large on huge pages). The
bytes are read only through netcap._buf's Reader (bounds-checked); the positions it is
asked for are checked against the chunk before, so a bad reader is never the common case.

What stays in Python (pcap.py, pcapng.py): the file and section headers, interface
descriptions, the non-packet pcapng blocks and every message but the packet blocks' own.
The walks stop exactly where the Python loops they replaced stopped (tests/oracle_walk.py,
tests/test_walk_compiled.py).
"""

from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t

from netcap._buf cimport Reader, reader, seek, u16, u32

import numpy as np

from netcap.sources._base import Columns

cdef uint64_t NS = 1000000000
cdef uint64_t POW10[20]
POW10[0] = 1
for _i in range(1, 20):
    POW10[_i] = POW10[_i - 1] * 10

# pcapng block types the walk takes (pcapng.py has the rest).
cdef enum:
    T_OPB = 2
    T_SPB = 3
    T_EPB = 6

# The first check a packet block fails (the order of the Python walk's checks).
cdef enum:
    OK = 0
    NOT_ALIGNED = 1
    TOO_LONG = 2
    NO_IFACE = 3
    OVERRUN = 4
    TRAILER = 5

# Columns of an interface table row (pcapng.py builds the table from its Interfaces).
cdef enum:
    IF_LINKTYPE = 0
    IF_SNAPLEN = 1
    IF_TSRESOL = 2
    IF_TSOFFSET = 3


cdef inline uint32_t rd32(Reader* r, Py_ssize_t at, bint big) noexcept nogil:
    """The 32-bit field at `at`, in the file's byte order (0 and a bad reader if outside)."""
    seek(r, at)
    cdef uint32_t v = u32(r)
    if big:
        return v
    return (v >> 24) | ((v >> 8) & 0xFF00) | ((v << 8) & 0xFF0000) | (v << 24)


cdef inline uint16_t rd16(Reader* r, Py_ssize_t at, bint big) noexcept nogil:
    seek(r, at)
    cdef uint16_t v = u16(r)
    if big:
        return v
    return <uint16_t>((v >> 8) | (v << 8))


cdef Reader chunk_reader(const unsigned char[::1] data):
    if data.shape[0] == 0:
        return reader(NULL, 0)
    return reader(&data[0], data.shape[0])


cdef class Out:
    """The columns being filled: one row per packet, exactly as many as counted."""

    cdef object cols
    cdef int64_t[::1] start, caplen, wirelen, ts
    cdef int32_t[::1] linktype, iface

    def __cinit__(self, Py_ssize_t n) -> None:
        self.cols = Columns(np.empty(n, np.int64), np.empty(n, np.int64),
                            np.empty(n, np.int64), np.empty(n, np.int64),
                            np.empty(n, np.int32), np.empty(n, np.int32))
        self.start = self.cols.start
        self.caplen = self.cols.caplen
        self.wirelen = self.cols.wirelen
        self.ts = self.cols.ts
        self.linktype = self.cols.linktype
        self.iface = self.cols.iface

    cdef inline int put(self, Py_ssize_t i, int64_t start, int64_t caplen, int64_t wirelen,
                        int64_t ts, int32_t linktype, int32_t iface) except -1:
        self.start[i] = start
        self.caplen[i] = caplen
        self.wirelen[i] = wirelen
        self.ts[i] = ts
        self.linktype[i] = linktype
        self.iface[i] = iface
        return 0


# -- classic pcap -----------------------------------------------------------------------


cdef struct PcapWalk:
    Py_ssize_t pos  # the first record not taken
    Py_ssize_t need  # bytes from pos the next record needs (0: none, it is damaged)
    int64_t over  # the length above the maximum that stops the walk at pos (-1: none)
    Py_ssize_t count  # records taken


cdef PcapWalk pcap_walk(Reader* r, Py_ssize_t pos, bint big, Py_ssize_t hlen,
                        int64_t maxlen, int64_t frac_ns, int32_t linktype, Out out) except *:
    """Follow the incl_len chain from pos; with `out`, fill a row per complete record."""
    cdef PcapWalk w
    cdef int64_t incl, end, sec, frac
    w.pos = pos
    w.need = hlen
    w.over = -1
    w.count = 0
    while w.pos <= r.size - hlen:
        incl = rd32(r, w.pos + 8, big)
        end = w.pos + hlen + incl
        if incl > maxlen:
            # An oversized length stops the walk here: a complete record is damage now,
            # an incomplete one must not make the reader wait for that many bytes.
            w.over = incl
            w.need = hlen + incl if end > r.size else 0
            break
        if end > r.size:  # incomplete: the next read starts here
            w.need = hlen + incl
            break
        if out is not None:
            sec = rd32(r, w.pos, big)
            frac = rd32(r, w.pos + 4, big)
            # u32 seconds and fraction: at most ~4.3e18 + 4.3e12 ns, no overflow
            out.put(w.count, w.pos + hlen, incl, rd32(r, w.pos + 12, big),
                    sec * <int64_t>NS + frac * frac_ns, linktype, 0)
        w.count += 1
        w.pos = end
    return w


def walk_pcap(const unsigned char[::1] data, Py_ssize_t pos, bint big, Py_ssize_t hlen,
              int64_t maxlen, int64_t frac_ns, int32_t linktype):
    """The complete records of a classic pcap chunk from pos: (Columns or None, pos, need,
    over), see pcap.PcapParser.parse. The Columns are there (maybe empty) when a complete
    record is too long, so that the packets before it are delivered."""
    if pos < 0 or hlen < 16:
        raise ValueError(f"bad walk arguments: pos {pos}, header length {hlen}")
    cdef Reader r = chunk_reader(data)
    cdef PcapWalk w = pcap_walk(&r, pos, big, hlen, maxlen, frac_ns, linktype, None)
    if w.count == 0 and not (w.over >= 0 and w.need == 0):
        return None, w.pos, w.need, w.over
    cdef Out out = Out(w.count)
    pcap_walk(&r, pos, big, hlen, maxlen, frac_ns, linktype, out)
    return out.cols, w.pos, w.need, w.over


# -- pcapng -----------------------------------------------------------------------------


cdef int64_t ts_ns(uint64_t raw, int64_t tsresol, int64_t tsoffset) noexcept nogil:
    """A raw pcapng timestamp in Unix ns, exactly (if_tsresol: high bit set = 2^-k s units,
    else 10^-k s; if_tsoffset seconds added). Garbage wraps to int64, never traps."""
    cdef int k = tsresol & 0x7F
    cdef uint64_t ns, m, a, b, lo, hi
    if tsresol & 0x80:
        if k <= 34:  # the fraction times 10^9 fits in 64 bits
            ns = (raw >> k) * NS + (((raw & ((<uint64_t>1 << k) - 1)) * NS) >> k)
        else:  # the fraction times 10^9 in 128 bits (hi, lo), shifted right by k
            m = raw if k >= 64 else raw & ((<uint64_t>1 << k) - 1)
            a = (m >> 32) * NS
            b = (m & <uint64_t>0xFFFFFFFF) * NS
            lo = (a << 32) + b
            hi = (a >> 32) + (1 if lo < b else 0)
            if k >= 64:
                ns = hi >> (k - 64)
            else:
                ns = (raw >> k) * NS + ((hi << (64 - k)) | (lo >> k))
    elif k <= 9:
        ns = raw * POW10[9 - k]
    elif k <= 28:  # 10^19 is the largest power of ten in 64 bits
        ns = raw // POW10[k - 9]
    else:
        ns = 0
    return <int64_t>(ns + <uint64_t>tsoffset * NS)


def ts_to_ns(const uint64_t[:] raw, int64_t tsresol, int64_t tsoffset):
    """Raw pcapng timestamps to Unix ns (see ts_ns), as an int64 array."""
    out = np.empty(raw.shape[0], np.int64)
    cdef int64_t[::1] o = out
    cdef Py_ssize_t i
    for i in range(raw.shape[0]):
        o[i] = ts_ns(raw[i], tsresol, tsoffset)
    return out


cdef struct NgWalk:
    Py_ssize_t pos  # the next block
    uint32_t kind  # block type of the current run of packet blocks (0: none)
    bint big  # the section's byte order
    bint damaged  # a block of the run is damaged: the rest is walked, not taken
    int what  # the check it failed
    Py_ssize_t bad_pos
    int64_t bad_value, bad_length
    Py_ssize_t count  # packets taken


cdef inline int64_t min_len(uint32_t kind) noexcept nogil:
    """12 bytes of framing plus the fixed fields."""
    return 16 if kind == T_SPB else 32


cdef int take(NgWalk* w, Reader* r, int64_t length, const int64_t[:, ::1] ifaces,
              int64_t max_block, Out out) except -1:
    """The packet block of the run at w.pos (complete, at least its minimum length): check
    it as the Python walk did, and with `out`, fill its row."""
    cdef Py_ssize_t p = w.pos
    cdef Py_ssize_t nif = ifaces.shape[0]
    cdef int64_t caplen, wirelen, avail, iface, start, trailer, ts = 0
    cdef uint64_t raw = 0
    cdef int what = OK
    cdef int64_t value = 0
    if w.damaged:
        return 0
    if w.kind == T_SPB:  # no interface id, no timestamp; cut to the first snaplen
        wirelen = rd32(r, p + 8, w.big)
        avail = length - 16
        caplen = min(wirelen, avail)
        if nif and ifaces[0, IF_SNAPLEN]:
            caplen = min(caplen, ifaces[0, IF_SNAPLEN])
        iface = 0
        start = p + 12
    else:  # EPB and OPB share the layout apart from the interface id's width
        iface = rd32(r, p + 8, w.big) if w.kind == T_EPB else rd16(r, p + 8, w.big)
        raw = (<uint64_t>rd32(r, p + 12, w.big) << 32) | rd32(r, p + 16, w.big)
        caplen = rd32(r, p + 20, w.big)
        wirelen = rd32(r, p + 24, w.big)
        avail = length - 32
        start = p + 28
    trailer = rd32(r, p + length - 4, w.big)
    if length & 3:
        what = NOT_ALIGNED
    elif length > max_block:
        what = TOO_LONG
    elif iface >= nif:
        what, value = NO_IFACE, iface
    elif caplen > avail:
        what, value = OVERRUN, caplen
    elif trailer != length:
        what, value = TRAILER, trailer
    if what != OK:
        w.damaged = True
        w.what = what
        w.bad_pos = p
        w.bad_value = value
        w.bad_length = length
        return 0
    if out is not None:
        if w.kind != T_SPB:
            ts = ts_ns(raw, ifaces[iface, IF_TSRESOL], ifaces[iface, IF_TSOFFSET])
        out.put(w.count, start, caplen, wirelen, ts, <int32_t>ifaces[iface, IF_LINKTYPE],
                <int32_t>iface)
    w.count += 1
    return 0


cdef int ng_walk(NgWalk* w, Reader* r, const int64_t[:, ::1] ifaces, int64_t max_block,
                 Out out) except -1:
    """Walk packet blocks from w.pos; stop at the first block Python must see (a section
    header, an interface, any other block, a damaged or incomplete one, a new run after a
    damaged block) or where fewer than 12 bytes are left."""
    cdef Py_ssize_t n = r.size
    cdef int64_t btype, length, end, least
    while True:
        if w.kind:
            # Hot loop: consecutive packet blocks of the run's kind. Only the chain of
            # lengths decides where it ends; the rest is checked in `take`.
            least = min_len(w.kind)
            while w.pos + 8 <= n:
                btype = rd32(r, w.pos, w.big)
                length = rd32(r, w.pos + 4, w.big)
                end = w.pos + length
                if btype != w.kind or not (w.pos + least <= end <= n):
                    break
                take(w, r, length, ifaces, max_block, out)
                w.pos = end
        if w.pos + 12 > n:
            return 0
        btype = rd32(r, w.pos, w.big)
        length = rd32(r, w.pos + 4, w.big)
        if btype != T_EPB and btype != T_SPB and btype != T_OPB:
            return 0
        if (length < min_len(btype) or length & 3 or length > max_block
                or w.pos + length > n):
            return 0
        if btype != w.kind:  # a new run
            if w.damaged:
                return 0
            w.kind = btype
        take(w, r, length, ifaces, max_block, out)
        w.pos += length


cdef str damage_reason(const NgWalk* w, int64_t max_block):
    if w.what == NOT_ALIGNED:
        return f"block length {w.bad_length} is not a multiple of 4"
    if w.what == TOO_LONG:
        return f"block length {w.bad_length} exceeds maximum {max_block}"
    if w.what == NO_IFACE:
        return f"packet on undefined interface {w.bad_value}"
    if w.what == OVERRUN:
        return f"captured length {w.bad_value} overruns its block"
    return f"block trailing length {w.bad_value} does not match {w.bad_length}"


def walk_pcapng(const unsigned char[::1] data, Py_ssize_t pos, uint32_t kind, bint big,
                bint damaged, const int64_t[:, ::1] ifaces, int64_t max_block):
    """The packet blocks of a pcapng chunk from pos, up to the first block Python must see:
    (Columns or None, pos, kind, damage), see pcapng.PcapngParser.parse.

    kind is the run's block type (0: none) and is returned updated; `damaged` says an
    earlier walk of this chunk found a damaged block in the run; `damage` is (offset,
    reason) of the first damaged packet block this walk found. ifaces: a row (linktype,
    snaplen, tsresol, tsoffset) per interface of the section."""
    if pos < 0 or kind not in (0, T_EPB, T_SPB, T_OPB) or ifaces.shape[1] != 4:
        raise ValueError(f"bad walk arguments: pos {pos}, kind {kind}")
    cdef Reader r = chunk_reader(data)
    cdef NgWalk w
    w.pos, w.kind, w.big, w.damaged, w.count = pos, kind, big, damaged, 0
    w.what, w.bad_pos, w.bad_value, w.bad_length = OK, -1, 0, 0
    cdef NgWalk start = w
    ng_walk(&w, &r, ifaces, max_block, None)
    cdef Out out
    cols = None
    if w.count:
        out = Out(w.count)
        ng_walk(&start, &r, ifaces, max_block, out)
        cols = out.cols
    damage = None
    if w.damaged and not damaged:
        damage = (w.bad_pos, damage_reason(&w, max_block))
    return cols, w.pos, w.kind, damage
