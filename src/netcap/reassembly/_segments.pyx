# cython: language_level=3
"""TCP segment picking, compiled: of a decoded batch's TCP table, the segments the stream
analyzers want, as the columns of a `streams.SegmentBatch` (the rules are `segments`'
docstring and the module docstring of `reassembly/streams.py`; `tests/oracle_segments.py`
is the numpy code this replaced, and the tests hold the two equal).

Three passes over the table's rows, each O(1) per row:

1. Each row's role from its ports (a hello/banner port, an HTTP port, DNS, or another
   port) and, on other ports, whether its payload starts an HTTP message: the port pairs
   of such rows, both ways round, make a set.
2. Rows on other ports whose port pair is in that set are HTTP; of the rest, those whose
   payload starts a TLS handshake record give their (source, destination) ports to a
   second set.
3. In row order, with per-direction state (a direction is the addresses and ports, in a
   hash table): the first `max_segments` rows of a hello/banner direction up to its first
   TLS application-data record; the HTTP rows, or with `hide_bodies` runs of body-only
   segments folded onto the last row of each run; the DNS rows.

Then one pass copies the picked rows' columns and addresses into the output, and their
payloads too unless the caller reads them in place (`copy` false: only where each starts
in the batch's data). Payload bytes are read through `_buf` (`payload_at`, a `Reader`);
the columns through bounds-checked memoryviews.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset

import os

import numpy as np

from netcap._buf cimport Reader, here, left, payload_at, peek, reader, u32, u64

# Roles and kinds share bits: a row's kinds are its ports' kinds (`Picker.kind`), masked
# by the kinds asked for.
cdef enum:
    TLS = 1
    HTTP = 2
    SSH = 4
    DNS = 8
    OTHER = 16  # a port of no analyzer asked for

KIND_BITS = {"TLS": TLS, "HTTP": HTTP, "SSH": SSH, "DNS": DNS}
cdef int _SYN = 1, _FIN = 2, _RST = 4

# Byte classes for hiding HTTP bodies (`streams.segments`): bytes of a head line
# (printable ASCII, tab, CR, LF), and the bytes llhttp refuses anywhere in a head (the
# control bytes but tab, CR and LF).
cdef uint8_t _TEXT[256]
cdef uint8_t _NOT_HEAD[256]


cdef void _classes() noexcept:
    cdef int c
    for c in range(256):
        _TEXT[c] = (0x20 <= c < 0x7F) or c == 9 or c == 10 or c == 13
        _NOT_HEAD[c] = (c < 0x20 and c != 9 and c != 10 and c != 13) or c == 0x7F


_classes()


cdef struct Direction:
    uint64_t key[5]  # source address (2 words), destination (2), ports
    int64_t rank  # hello/banner rows seen (SYNs included)
    bint app  # a TLS application-data record seen
    bint prev_hidden  # the previous HTTP row of the direction was hidden...
    uint64_t prev_end  # ...and its sequence number plus its size, mod 2**32
    bint run  # a run of hidden rows is open:
    int64_t run_seq  # its first sequence number,
    int64_t run_len  # its bytes,
    Py_ssize_t run_last  # its last row


cdef struct Directions:
    int32_t* slots  # hash slot -> index into dirs, -1 empty
    Py_ssize_t mask
    Direction* dirs
    Py_ssize_t n, cap


# The hash tables' seed, random per process: addresses and ports are the input's, so
# colliding keys (slow probing) cannot be chosen in advance.
cdef uint64_t _SEED = int.from_bytes(os.urandom(8), "little")


cdef inline uint64_t _mix(const uint64_t* k) noexcept nogil:
    cdef uint64_t h = _SEED
    cdef int i
    for i in range(5):
        h = (h ^ k[i]) * <uint64_t>0x9E3779B97F4A7C15
        h ^= h >> 29
    return h


cdef Direction* _direction(Directions* t, const uint64_t* key) except NULL:
    """The state of the direction `key`, made (zeroed) on its first row."""
    cdef Py_ssize_t s = <Py_ssize_t>(_mix(key) & <uint64_t>t.mask)
    cdef Direction* d
    while t.slots[s] >= 0:
        d = &t.dirs[t.slots[s]]
        if memcmp(d.key, key, sizeof(d.key)) == 0:
            return d
        s = (s + 1) & t.mask
    if t.n >= t.cap:  # invariant: cap counts every row that can make a direction
        raise RuntimeError("more directions than rows")
    d = &t.dirs[t.n]
    memset(d, 0, sizeof(Direction))
    memcpy(d.key, key, sizeof(d.key))
    t.slots[s] = <int32_t>t.n
    t.n += 1
    return d


cdef inline Py_ssize_t _pow2(Py_ssize_t n) noexcept:
    cdef Py_ssize_t p = 16
    while p < n:
        p <<= 1
    return p


cdef class _PortSet:
    """A set of 32-bit port pairs (source port << 16 | destination port): open
    addressing over a power-of-two table of key + 1 (0 is empty)."""

    cdef uint64_t[::1] slots
    cdef Py_ssize_t mask
    cdef Py_ssize_t n  # keys added (with repeats)

    def __init__(self, const int64_t[::1] keys, Py_ssize_t n):
        self.n = n
        self.slots = np.zeros(_pow2(2 * n), np.uint64)
        self.mask = self.slots.shape[0] - 1
        cdef Py_ssize_t i
        for i in range(n):
            self.add(keys[i])

    cdef int add(self, int64_t key) except -1:
        cdef Py_ssize_t s = <Py_ssize_t>(_mix32(key) & <uint64_t>self.mask)
        while self.slots[s] != 0 and self.slots[s] != <uint64_t>key + 1:
            s = (s + 1) & self.mask
        self.slots[s] = <uint64_t>key + 1
        return 0

    cdef int has(self, int64_t key) except -1:
        cdef Py_ssize_t s = <Py_ssize_t>(_mix32(key) & <uint64_t>self.mask)
        while self.slots[s] != 0:
            if self.slots[s] == <uint64_t>key + 1:
                return 1
            s = (s + 1) & self.mask
        return 0


cdef inline uint64_t _mix32(int64_t key) noexcept nogil:
    cdef uint64_t h = (<uint64_t>key ^ _SEED) * <uint64_t>0x9E3779B97F4A7C15
    return h ^ (h >> 32)


cdef inline void _addr(Reader* r, uint64_t* hi, uint64_t* lo) noexcept nogil:
    """An address as two big-endian 64-bit halves, as `flows.extract.addr_words` (an
    IPv4 address is the low 32 bits; another length is zeros)."""
    cdef Py_ssize_t n = left(r)
    hi[0] = 0
    lo[0] = 0
    if n == 4:
        lo[0] = u32(r)
    elif n == 16:
        hi[0] = u64(r)
        lo[0] = u64(r)


cdef class _Rows:
    """A batch's TCP table (the columns `pick` reads) and the picking's per-row state."""

    cdef const int64_t[::1] sport, dport, seq, poff, size, pkt, ts
    cdef const uint8_t[::1] syn, fin, rst, data
    cdef const uint8_t[::1] src, dst  # the addresses' bytes...
    cdef const int64_t[::1] src_lens, dst_lens
    cdef int64_t[::1] src_at, dst_at  # ...and where each starts
    cdef uint8_t[::1] role  # TLS/HTTP/SSH/DNS bits of the kinds asked for, or OTHER
    cdef uint8_t[::1] sel  # picked
    cdef int64_t[::1] hidden  # > 0: picked as that many hidden bytes...
    cdef int64_t[::1] run_seq  # ...from this sequence number

    cdef Reader payload(self, Py_ssize_t i) except *:
        return reader(payload_at(self.data, self.poff[i], self.size[i]), self.size[i])

    cdef uint64_t* key(self, uint64_t* key, Py_ssize_t i) except NULL:
        """Row i's direction: its addresses (as `addr_words`) and ports."""
        cdef Reader a = reader(payload_at(self.src, self.src_at[i], self.src_lens[i]),
                               self.src_lens[i])
        _addr(&a, &key[0], &key[1])
        a = reader(payload_at(self.dst, self.dst_at[i], self.dst_lens[i]), self.dst_lens[i])
        _addr(&a, &key[2], &key[3])
        key[4] = <uint64_t>(self.sport[i] << 16 | self.dport[i])
        return key


cdef class Picker:
    """`streams.segments` for given port kinds, HTTP message starts and per-direction
    segment cap (the tables stay in streams.py)."""

    cdef uint8_t kind[65536]  # port -> its analyzers' bits
    cdef uint8_t starts[16][4]  # first bytes of an HTTP message
    cdef int nstarts
    cdef int max_segments

    def __init__(self, ports: dict[int, str], starts: tuple[bytes, ...], int max_segments):
        memset(self.kind, 0, sizeof(self.kind))
        for port, name in ports.items():
            if not 0 <= port < 65536:
                raise ValueError("port out of range")
            self.kind[port] |= KIND_BITS[name]
        if len(starts) > 16 or any(len(s) != 4 for s in starts):
            raise ValueError("HTTP starts: at most 16, of 4 bytes")
        cdef int i, k
        for i, s in enumerate(starts):
            for k in range(4):
                self.starts[i][k] = s[k]
        self.nstarts = len(starts)
        self.max_segments = max_segments

    def pick(self, int kinds, bint hide_bodies, sport, dport, seq, syn, fin, rst, poff,
             size, src, src_lens, dst, dst_lens, pkt, data, ts, int64_t first,
             bint copy=True):
        """The picked rows' (src bytes, src lens, sport, dst bytes, dst lens, dport, seq,
        flags, payload, at, size, hidden, ts, pkt + first), or None if there are none.
        The columns: int64 and bool (uint8) arrays, as the decoder makes them. `payload`
        holds the payloads back to back and `at` where each starts in it; without
        `copy`, `payload` is None and `at` is where each starts in `data`."""
        cdef _Rows b = _Rows()
        b.sport, b.dport, b.seq, b.poff, b.size = sport, dport, seq, poff, size
        b.syn, b.fin, b.rst, b.data, b.pkt, b.ts = syn, fin, rst, data, pkt, ts
        b.src, b.src_lens, b.dst, b.dst_lens = src, src_lens, dst, dst_lens
        cdef Py_ssize_t n = b.sport.shape[0]
        if not (b.dport.shape[0] == b.seq.shape[0] == b.syn.shape[0] == b.fin.shape[0]
                == b.rst.shape[0] == b.poff.shape[0] == b.size.shape[0]
                == b.src_lens.shape[0] == b.dst_lens.shape[0] == b.pkt.shape[0] == n):
            raise ValueError("TCP columns of different lengths")
        b.src_at, b.dst_at = np.empty(n, np.int64), np.empty(n, np.int64)
        b.role, b.sel = np.empty(n, np.uint8), np.zeros(n, np.uint8)
        b.hidden, b.run_seq = np.zeros(n, np.int64), np.empty(n, np.int64)
        self._pick(b, hide_bodies, self._roles(b, kinds))
        return _columns(b, first, copy)

    cdef _PortSet _roles(self, _Rows b, int kinds):
        """Passes 1 and 2 (see the module docstring): each row's role; the port pairs
        of the TLS hellos on other ports."""
        cdef Py_ssize_t n = b.sport.shape[0], i, ntalk = 0, nhello = 0, at_s = 0, at_d = 0
        cdef int64_t sp, dp
        cdef uint8_t c
        cdef Reader r
        talk_ = np.empty(2 * n, np.int64)
        cdef int64_t[::1] talk = talk_
        for i in range(n):
            sp, dp = b.sport[i], b.dport[i]
            if not (0 <= sp < 65536 and 0 <= dp < 65536):  # invariant (not input)
                raise ValueError("port out of range")
            if b.src_lens[i] < 0 or b.dst_lens[i] < 0:
                raise ValueError("negative address length")
            b.src_at[i], b.dst_at[i] = at_s, at_d
            at_s += b.src_lens[i]
            at_d += b.dst_lens[i]
            c = (self.kind[sp] | self.kind[dp]) & kinds
            b.role[i] = c if c else OTHER
            if c == 0 and kinds & HTTP and b.size[i] > 0:
                r = b.payload(i)
                if self._http_start(&r):
                    talk[ntalk], talk[ntalk + 1] = sp << 16 | dp, dp << 16 | sp
                    ntalk += 2
        cdef _PortSet pairs = _PortSet(talk, ntalk)
        for i in range(n):
            if b.role[i] != OTHER:
                continue
            if ntalk and pairs.has(b.sport[i] << 16 | b.dport[i]):
                b.role[i] = HTTP
            elif kinds & TLS and b.size[i] > 0:
                r = b.payload(i)
                if (peek(&r, 0) == 0x16 and (left(&r) < 2 or peek(&r, 1) == 3)
                        and (left(&r) < 3 or peek(&r, 2) <= 4)):
                    talk[nhello] = b.sport[i] << 16 | b.dport[i]  # (pairs has its copy)
                    nhello += 1
        return _PortSet(talk, nhello)

    cdef bint _http_start(self, Reader* r) noexcept:
        """Whether the payload is, or begins with, the first bytes of an HTTP message
        (its first min(size, 4) bytes are those of one of `starts`)."""
        cdef Py_ssize_t n = min(left(r), 4)
        cdef int i, k
        for i in range(self.nstarts):
            for k in range(n):
                if peek(r, k) != self.starts[i][k]:
                    break
            else:
                return n > 0
        return False

    cdef int _pick(self, _Rows b, bint hide_bodies, _PortSet hellos) except -1:
        """Pass 3, in row order, with the directions' state in a hash table sized for
        the rows that can make one."""
        cdef Py_ssize_t n = b.sport.shape[0], i, bound = 0
        for i in range(n):
            if ((b.role[i] & (TLS | SSH) or b.role[i] == OTHER) and (b.size[i] > 0 or b.syn[i])
                    or hide_bodies and b.role[i] & HTTP):
                bound += 1
        cdef Directions dirs
        dirs.mask = _pow2(2 * bound) - 1
        dirs.cap = bound
        dirs.n = 0
        dirs.slots = <int32_t*>PyMem_Malloc((dirs.mask + 1) * sizeof(int32_t))
        dirs.dirs = <Direction*>PyMem_Malloc((bound + 1) * sizeof(Direction))
        try:
            if dirs.slots == NULL or dirs.dirs == NULL:
                raise MemoryError()
            memset(dirs.slots, 0xFF, (dirs.mask + 1) * sizeof(int32_t))
            self._rows(b, hide_bodies, &dirs, hellos)
        finally:
            PyMem_Free(dirs.slots)
            PyMem_Free(dirs.dirs)
        return 0

    cdef int _rows(self, _Rows b, bint hide_bodies, Directions* dirs,
                   _PortSet hellos) except -1:
        cdef Py_ssize_t i, n = b.sport.shape[0]
        cdef uint64_t key[5]
        cdef Direction* d
        cdef Reader r
        cdef bint want, app
        cdef int64_t sz
        for i in range(n):
            sz = b.size[i]
            r = b.payload(i)
            # hello/banner ports, and the directions of TLS hellos on other ports
            want = (b.role[i] & (TLS | SSH)) != 0 or (
                hellos.n > 0 and sz > 0 and hellos.has(b.sport[i] << 16 | b.dport[i]))
            if want and (sz > 0 or b.syn[i]):  # a stream's first segments
                d = _direction(dirs, b.key(key, i))
                app = (sz >= 3 and not (self.kind[b.sport[i]] & SSH or self.kind[b.dport[i]] & SSH)
                       and peek(&r, 0) == 0x17 and peek(&r, 1) == 3 and peek(&r, 2) <= 4)
                if d.rank < self.max_segments and not d.app and not app:
                    b.sel[i] = 1
                d.rank += 1
                d.app = d.app or app
            if b.role[i] & HTTP and (sz > 0 or b.syn[i] or b.fin[i] or b.rst[i]):  # all
                if hide_bodies:
                    _hide(b, i, &r, _direction(dirs, b.key(key, i)))
                else:
                    b.sel[i] = 1
            if b.role[i] & DNS and (sz > 0 or b.syn[i]):  # every one
                b.sel[i] = 1
        for i in range(dirs.n):
            _end_run(b, &dirs.dirs[i])
        return 0


cdef int _hide(_Rows b, Py_ssize_t i, Reader* r, Direction* d) except -1:
    """HTTP row i with `hide_bodies`: picked, or hidden (a body-only segment) in its
    direction's run of hidden rows that continue each other in sequence space."""
    cdef int64_t sz = left(r), seq = b.seq[i]
    cdef bint hide = sz > 1 and not (b.syn[i] or b.fin[i] or b.rst[i]) and _body(r)
    if hide and d.prev_hidden and d.prev_end == <uint64_t>seq:
        d.run_len += sz  # continues the run
        d.run_last = i
    else:
        _end_run(b, d)
        if hide:
            d.run, d.run_seq, d.run_len, d.run_last = True, seq, sz, i
        else:
            b.sel[i] = 1
    d.prev_hidden = hide
    d.prev_end = (<uint64_t>seq + <uint64_t>sz) & 0xFFFFFFFF
    return 0


cdef int _end_run(_Rows b, Direction* d) except -1:
    """A run of hidden rows ends: picked as its length, on its last row, from its first
    sequence number."""
    if d.run:
        b.sel[d.run_last] = 1
        b.hidden[d.run_last] = d.run_len
        b.run_seq[d.run_last] = d.run_seq
        d.run = False
    return 0


cdef bint _body(Reader* r) noexcept:
    """Whether an HTTP payload (2 bytes or more) holds no byte of a head or of chunked
    framing (`streams.segments`): it does not start with LF, ends in a byte that is not
    text, holds no CRLF, and holds a byte that no head holds."""
    cdef Py_ssize_t n = left(r), k
    if peek(r, 0) == 10 or _TEXT[peek(r, n - 1)]:
        return False
    for k in range(n):
        if _NOT_HEAD[peek(r, k)]:
            break
    else:
        return False
    # CRLF: each CR, found by memchr over the reader's bytes (as a copy would read them)
    cdef const uint8_t* p = here(r)
    cdef const uint8_t* cr
    k = 0
    while k < n - 1:
        cr = <const uint8_t*>memchr(p + k, 13, <size_t>(n - 1 - k))
        if cr == NULL:
            return True
        k = cr - p
        if peek(r, k + 1) == 10:
            return False
        k += 1
    return True


cdef object _columns(_Rows b, int64_t first, bint copy):
    """The picked rows' columns (see `Picker.pick`), filled in one pass."""
    cdef Py_ssize_t n = b.sel.shape[0], m = 0, i, j = 0, nbytes = 0, s_bytes = 0, d_bytes = 0
    for i in range(n):
        if b.sel[i]:
            m += 1
            s_bytes += b.src_lens[i]
            d_bytes += b.dst_lens[i]
            if copy and b.hidden[i] == 0 and b.size[i] > 0:
                nbytes += b.size[i]
    if m == 0:
        return None
    cols = [np.empty(m, np.int64) for _ in range(11)]
    cdef int64_t[::1] o_sport = cols[0], o_dport = cols[1], o_seq = cols[2]
    cdef int64_t[::1] o_flags = cols[3], o_size = cols[4], o_hidden = cols[5]
    cdef int64_t[::1] o_ts = cols[6], o_pkt = cols[7], o_slens = cols[8], o_dlens = cols[9]
    cdef int64_t[::1] o_at = cols[10]
    src, dst = np.empty(s_bytes, np.uint8), np.empty(d_bytes, np.uint8)
    cdef uint8_t[::1] o_src = src, o_dst = dst
    payload = PyBytes_FromStringAndSize(NULL, nbytes) if copy else None
    cdef char* blob = PyBytes_AS_STRING(payload) if copy else NULL
    cdef Py_ssize_t at = 0, at_s = 0, at_d = 0
    cdef int64_t sz
    cdef Reader r
    for i in range(n):
        if not b.sel[i]:
            continue
        o_sport[j], o_dport[j] = b.sport[i], b.dport[i]
        o_flags[j] = b.syn[i] * _SYN | b.fin[i] * _FIN | b.rst[i] * _RST
        o_hidden[j] = b.hidden[i]
        o_seq[j] = b.run_seq[i] if b.hidden[i] > 0 else b.seq[i]
        sz = 0 if b.hidden[i] > 0 else b.size[i]
        o_size[j] = sz
        o_at[j] = at if copy else b.poff[i] if sz > 0 else 0
        if sz > 0:
            r = b.payload(i)  # bounds-checked, copied or not
            if copy:
                memcpy(blob + at, here(&r), left(&r))
                at += sz
        o_ts[j] = b.ts[b.pkt[i]]
        o_pkt[j] = b.pkt[i] + first
        o_slens[j], o_dlens[j] = b.src_lens[i], b.dst_lens[i]
        if b.src_lens[i]:
            r = reader(payload_at(b.src, b.src_at[i], b.src_lens[i]), b.src_lens[i])
            memcpy(&o_src[at_s], here(&r), left(&r))
            at_s += b.src_lens[i]
        if b.dst_lens[i]:
            r = reader(payload_at(b.dst, b.dst_at[i], b.dst_lens[i]), b.dst_lens[i])
            memcpy(&o_dst[at_d], here(&r), left(&r))
            at_d += b.dst_lens[i]
        j += 1
    return (src, cols[8], cols[0], dst, cols[9], cols[1], cols[2], cols[3], payload, cols[10],
            cols[4], cols[5], cols[6], cols[7])
