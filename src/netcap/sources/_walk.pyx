# cython: language_level=3
"""The record walks of capture files, in C: classic pcap records and pcapng packet blocks
over one chunk, filling the chunk's `Columns` (start, caplen, wirelen, ts in ns, linktype,
iface).

A walk is two loops. The first follows the chain of lengths (each record's position
depends on the one before, so this loop waits on memory: it prefetches the lines ahead)
and notes where each packet starts; the second fills columns of exactly that many rows from
those starts, loads the CPU can overlap (walking the chain a second time to fill would
wait on memory again: a 4 MiB chunk does not stay in this machine's 1 MiB L2 cache). The
bytes are read only through netcap._buf's Reader (bounds-checked); the positions it is asked
for are checked against the chunk before, so a bad reader is never the common case.

What stays in Python (pcap.py, pcapng.py): the file and section headers, interface
descriptions, the non-packet pcapng blocks and every message but the packet blocks' own.
The walks stop exactly where the Python loops they replaced stopped (tests/oracle_walk.py,
tests/test_walk_compiled.py).
"""

from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t

from netcap._buf cimport Reader, __builtin_prefetch, reader, seek, u16, u32

import numpy as np

from netcap.sources._base import Columns


cdef uint64_t NS = 1000000000
cdef Py_ssize_t AHEAD = 2048  # how far ahead of the walk to prefetch (a few records)
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


cdef inline void ahead(const Reader* r, Py_ssize_t* fetched, Py_ssize_t pos) noexcept nogil:
    """Prefetch every cache line of the chunk up to AHEAD bytes past pos, from where the
    last call stopped (`fetched`). Fetching only a line ahead of each record missed the
    next records' headers as often as not; streaming every line ahead of the chain made
    the walk of bench1m.pcap from memory (4 MiB chunks) about 1.5x faster."""
    cdef Py_ssize_t until = min(pos + AHEAD, r.size)
    if fetched[0] < pos:
        fetched[0] = pos
    while fetched[0] < until:
        __builtin_prefetch(r.data + fetched[0])
        fetched[0] += 64


cdef Reader chunk_reader(const unsigned char[::1] data):
    if data.shape[0] == 0:
        return reader(NULL, 0)
    return reader(&data[0], data.shape[0])


cdef class Out:
    """The columns being filled: one row per packet, exactly as many as found."""

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


# -- classic pcap -----------------------------------------------------------------------


cdef struct PcapWalk:
    Py_ssize_t pos  # the first record not taken
    Py_ssize_t need  # bytes from pos the next record needs (0: none, it is damaged)
    int64_t over  # the length above the maximum that stops the walk at pos (-1: none)
    Py_ssize_t count  # records taken


cdef PcapWalk pcap_walk(Reader* r, Py_ssize_t pos, bint big, Py_ssize_t hlen,
                        int64_t maxlen, int64_t[::1] starts) except *:
    """Follow the incl_len chain from pos, noting each complete record's start."""
    cdef PcapWalk w
    cdef int64_t incl, end
    w.pos = pos
    w.need = hlen
    w.over = -1
    w.count = 0
    cdef Py_ssize_t fetched = pos
    while w.pos <= r.size - hlen:
        ahead(r, &fetched, w.pos)
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
        starts[w.count] = w.pos
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
    cdef int64_t[::1] starts = np.empty(max(data.shape[0] - pos, 0) // hlen + 1, np.int64)
    cdef PcapWalk w = pcap_walk(&r, pos, big, hlen, maxlen, starts)
    if w.count == 0 and not (w.over >= 0 and w.need == 0):
        return None, w.pos, w.need, w.over
    cdef Out out = Out(w.count)
    cdef Py_ssize_t i, p
    cdef int64_t sec, frac
    for i in range(w.count):
        p = starts[i]
        sec = rd32(&r, p, big)
        frac = rd32(&r, p + 4, big)
        out.start[i] = p + hlen
        out.caplen[i] = rd32(&r, p + 8, big)
        out.wirelen[i] = rd32(&r, p + 12, big)
        out.ts[i] = sec * <int64_t>NS + frac * frac_ns  # u32 seconds: no overflow
        out.linktype[i] = linktype
        out.iface[i] = 0
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


cdef struct Packet:
    uint32_t kind
    int64_t length, start, caplen, wirelen, iface
    uint64_t raw  # the timestamp as stored (SPB: none)


cdef inline int64_t min_len(uint32_t kind) noexcept nogil:
    """12 bytes of framing plus the fixed fields."""
    return 16 if kind == T_SPB else 32


cdef int read_packet(Packet* k, Reader* r, Py_ssize_t p, bint big,
                     const int64_t[:, ::1] ifaces, int64_t max_block) except -1:
    """The packet block at p (complete, at least its minimum length) into k; the first
    check it fails (OK if none), in the order of the Python walk's checks."""
    cdef Py_ssize_t nif = ifaces.shape[0]
    cdef int64_t trailer
    k.kind = rd32(r, p, big)
    k.length = rd32(r, p + 4, big)
    if k.kind == T_SPB:  # no interface id, no timestamp; cut to the first snaplen
        k.wirelen = rd32(r, p + 8, big)
        k.caplen = min(k.wirelen, k.length - 16)
        if nif and ifaces[0, IF_SNAPLEN]:
            k.caplen = min(k.caplen, ifaces[0, IF_SNAPLEN])
        k.iface = 0
        k.start = p + 12
        k.raw = 0
    else:  # EPB and OPB share the layout apart from the interface id's width
        k.iface = rd32(r, p + 8, big) if k.kind == T_EPB else rd16(r, p + 8, big)
        k.raw = (<uint64_t>rd32(r, p + 12, big) << 32) | rd32(r, p + 16, big)
        k.caplen = rd32(r, p + 20, big)
        k.wirelen = rd32(r, p + 24, big)
        k.start = p + 28
    trailer = rd32(r, p + k.length - 4, big)
    if k.length & 3:
        return NOT_ALIGNED
    if k.length > max_block:
        return TOO_LONG
    if k.iface >= nif:
        return NO_IFACE
    if k.caplen > k.length - min_len(k.kind):
        return OVERRUN
    if trailer != k.length:
        return TRAILER
    return OK


cdef int take(NgWalk* w, Reader* r, const int64_t[:, ::1] ifaces, int64_t max_block,
              int64_t[::1] starts) except -1:
    """The packet block of the run at w.pos: check it, note its start if sound, note the
    damage and take no more blocks if not."""
    cdef Packet k
    cdef int what
    if w.damaged:
        return 0
    what = read_packet(&k, r, w.pos, w.big, ifaces, max_block)
    if what == OK:
        starts[w.count] = w.pos
        w.count += 1
        return 0
    w.damaged = True
    w.what = what
    w.bad_pos = w.pos
    w.bad_length = k.length
    w.bad_value = (k.iface if what == NO_IFACE else k.caplen if what == OVERRUN
                   else rd32(r, w.pos + k.length - 4, w.big))
    return 0


cdef int ng_walk(NgWalk* w, Reader* r, const int64_t[:, ::1] ifaces, int64_t max_block,
                 int64_t[::1] starts) except -1:
    """Walk packet blocks from w.pos; stop at the first block Python must see (a section
    header, an interface, any other block, a damaged or incomplete one, a new run after a
    damaged block) or where fewer than 12 bytes are left."""
    cdef Py_ssize_t n = r.size
    cdef int64_t btype, length, end, least
    cdef Py_ssize_t fetched = w.pos
    while True:
        if w.kind:
            # Hot loop: consecutive packet blocks of the run's kind. Only the chain of
            # lengths decides where it ends; the rest is checked in `take`.
            least = min_len(w.kind)
            while w.pos + 8 <= n:
                ahead(r, &fetched, w.pos)
                btype = rd32(r, w.pos, w.big)
                length = rd32(r, w.pos + 4, w.big)
                end = w.pos + length
                if btype != w.kind or not (w.pos + least <= end <= n):
                    break
                take(w, r, ifaces, max_block, starts)
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
        take(w, r, ifaces, max_block, starts)
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
    # Every packet block taken is at least 16 bytes (an SPB's minimum).
    cdef int64_t[::1] starts = np.empty(max(data.shape[0] - pos, 0) // 16 + 1, np.int64)
    ng_walk(&w, &r, ifaces, max_block, starts)
    cols = None
    cdef Out out
    cdef Packet k
    cdef Py_ssize_t i
    if w.count:
        out = Out(w.count)
        for i in range(w.count):
            read_packet(&k, &r, starts[i], big, ifaces, max_block)
            out.start[i] = k.start
            out.caplen[i] = k.caplen
            out.wirelen[i] = k.wirelen
            out.iface[i] = <int32_t>k.iface
            out.linktype[i] = <int32_t>ifaces[k.iface, IF_LINKTYPE]
            if k.kind == T_SPB:  # no timestamp in the format
                out.ts[i] = 0
            else:
                out.ts[i] = ts_ns(k.raw, ifaces[k.iface, IF_TSRESOL],
                                  ifaces[k.iface, IF_TSOFFSET])
        cols = out.cols
    damage = None
    if w.damaged and not damaged:
        damage = (w.bad_pos, damage_reason(&w, max_block))
    return cols, w.pos, w.kind, damage
