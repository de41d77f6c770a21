# cython: language_level=3
"""IP defragmentation compiled (see ip.py for the rules): the fragments of a batch made
in one C loop (`build`), and the `Defragmenter`'s state in C.

Pending datagrams sit in one array of slots, chained oldest first (what the Python
version's OrderedDict kept) and found through an open-addressing index on their key
(version, transport, identification, source, destination). A datagram's bytes are held
as in the Python version: pieces that never overlap (the first copy of a byte wins),
sorted by offset, their bytes appended to one buffer of the datagram; memory is the
bytes held plus 24 bytes a piece, bounded by `max_datagrams` and `max_bytes`.
Fragment bytes are only copied (memcpy/memcmp within checked lengths).
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

cdef enum:
    MAX_DATAGRAM = 65535
    V4_HEADER = 20
    V6_HEADER = 40
    KEY = 40  # version, proto, src length, dst length, ident (4), src (16), dst (16)


def build(fragment, const int64_t[:] version, const uint8_t[:] addrs,
          const int64_t[:] src_at, const int64_t[:] src_len,
          const int64_t[:] dst_at, const int64_t[:] dst_len,
          const int64_t[:] ident, const int64_t[:] proto, const int64_t[:] offset,
          const uint8_t[:] more, const uint8_t[:] data, const int64_t[:] start,
          const int64_t[:] stop, const int64_t[:] ts, const int64_t[:] pkt,
          const int64_t[:] wire):
    """Fragment tuples (type `fragment`), one per row: addresses are addrs[at : at +
    len], data is data[start : stop] (cut to the buffer)."""
    cdef Py_ssize_t n = version.shape[0], i, size = data.shape[0]
    cdef int64_t a, z
    out = [None] * n
    for i in range(n):
        a = min(max(start[i], 0), size)
        z = min(max(stop[i], a), size)
        out[i] = tuple.__new__(fragment, (
            version[i], _bytes(addrs, src_at[i], src_len[i]),
            _bytes(addrs, dst_at[i], dst_len[i]), ident[i], proto[i], offset[i],
            more[i] != 0, _bytes(data, a, z - a), ts[i], pkt[i], wire[i]))
    return out


cdef bytes _bytes(const uint8_t[:] buf, int64_t at, int64_t n):
    if n <= 0:
        return b""
    if at < 0 or at + n > buf.shape[0]:
        raise IndexError("slice past the buffer")  # invariant (not input): cut above
    return PyBytes_FromStringAndSize(<const char*>&buf[at], n)


cdef struct Piece:
    int64_t offset
    int64_t size
    int64_t at  # where its bytes are in the datagram's buffer


cdef struct Pending:
    uint8_t key[KEY]
    uint64_t h
    int64_t version, first_ts
    int64_t end  # datagram length once the last fragment is seen, else -1
    int64_t size  # bytes held
    int64_t inside  # of them, below `end` (once known)
    int64_t stop  # where the furthest piece ends
    int64_t wire, count
    bint inconsistent
    bint used
    Piece* pieces
    int64_t npieces, cap_pieces
    uint8_t* buf
    int64_t nbuf, cap_buf
    int64_t prev, next  # oldest first; -1: none


cdef inline uint64_t _hash(const uint8_t* key) noexcept nogil:
    cdef uint64_t h = 14695981039346656037ULL  # FNV-1a
    cdef uint64_t prime = 1099511628211ULL
    cdef int i
    for i in range(KEY):
        h = (h ^ key[i]) * prime
    return h ^ (h >> 29)


cdef inline bint _later(int64_t now, int64_t first, int64_t timeout) noexcept nogil:
    """now - first > timeout, exactly (as Python's ints: packet times may be anything)."""
    cdef uint64_t gap, most
    if now >= first:
        gap = <uint64_t>now - <uint64_t>first  # exact: fits in 64 unsigned bits
        return timeout < 0 or gap > <uint64_t>timeout
    gap = <uint64_t>first - <uint64_t>now  # now - first = -gap
    if timeout >= 0:
        return False
    most = <uint64_t>(-(timeout + 1)) + 1  # -timeout, also for the most negative
    return gap < most


cdef class Defragmenter:
    """The C half of ip.Defragmenter."""
    cdef Pending* slots
    cdef int64_t nslots, cap
    cdef int64_t free_slot  # a chain of unused slots through `next`, -1: none
    cdef int64_t head, tail, count
    cdef int64_t* index  # slot of a key, -1: empty
    cdef uint64_t mask
    cdef int64_t held  # bytes held, all datagrams
    cdef public int64_t timeout_ns, max_datagrams, max_bytes
    cdef public object errors

    def __cinit__(self, *args, **kw):
        self.head = self.tail = self.free_slot = -1
        self.index = <int64_t*>malloc(64 * sizeof(int64_t))
        if self.index == NULL:
            raise MemoryError()
        memset(self.index, 0xFF, 64 * sizeof(int64_t))
        self.mask = 63

    def __init__(self, int64_t timeout_ns=30 * 10**9, int64_t max_datagrams=4096,
                 int64_t max_bytes=32 << 20):
        from collections import Counter
        self.timeout_ns = timeout_ns
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.errors = Counter()  # "ipv4/fragment_overlap" -> count

    def __dealloc__(self):
        cdef int64_t i
        for i in range(self.nslots):
            free(self.slots[i].pieces)
            free(self.slots[i].buf)
        free(self.slots)
        free(self.index)

    def __len__(self):
        return self.count

    cdef int _count(self, int64_t version, str reason) except -1:
        self.errors[f"ipv{version}/{reason}"] += 1
        return 0

    # -- the index ----------------------------------------------------------------------

    cdef int64_t _find(self, const uint8_t* key, uint64_t h) noexcept:
        """Index position of the key, or of the empty entry where it would go."""
        cdef uint64_t i = h & self.mask
        cdef int64_t s
        while True:
            s = self.index[i]
            if s < 0 or (self.slots[s].h == h and memcmp(self.slots[s].key, key, KEY) == 0):
                return <int64_t>i
            i = (i + 1) & self.mask

    cdef void _unindex(self, int64_t slot) noexcept:
        """Remove a slot's entry, shifting back the entries after it (linear probing
        without tombstones)."""
        cdef uint64_t i = <uint64_t>self._find(self.slots[slot].key, self.slots[slot].h)
        cdef uint64_t j = i, k
        while True:
            j = (j + 1) & self.mask
            if self.index[j] < 0:
                break
            k = self.slots[self.index[j]].h & self.mask
            # the entry at j may move to i unless its home k lies cyclically in (i, j]
            if (i <= j and (k <= i or k > j)) or (i > j and k <= i and k > j):
                self.index[i] = self.index[j]
                i = j
        self.index[i] = -1

    cdef int _grow_index(self) except -1:
        cdef uint64_t size = 2 * (self.mask + 1), i
        cdef int64_t* index = <int64_t*>malloc(size * sizeof(int64_t))
        cdef int64_t s
        if index == NULL:
            raise MemoryError()
        free(self.index)
        self.index = index
        self.mask = size - 1
        memset(self.index, 0xFF, size * sizeof(int64_t))
        for s in range(self.nslots):
            if self.slots[s].used:
                i = self.slots[s].h & self.mask
                while self.index[i] >= 0:
                    i = (i + 1) & self.mask
                self.index[i] = s
        return 0

    # -- pending datagrams --------------------------------------------------------------

    cdef int64_t _new(self, const uint8_t* key, uint64_t h, int64_t version,
                      int64_t ts) except -2:
        """A new datagram at the tail (the newest)."""
        cdef int64_t s
        cdef Pending* grown
        if 2 * (self.count + 1) > <int64_t>(self.mask + 1):
            self._grow_index()
        if self.free_slot >= 0:
            s = self.free_slot
            self.free_slot = self.slots[s].next
        else:
            if self.nslots == self.cap:
                grown = <Pending*>realloc(self.slots, max(16, 2 * self.cap) * sizeof(Pending))
                if grown == NULL:
                    raise MemoryError()
                self.slots = grown
                self.cap = max(16, 2 * self.cap)
            s = self.nslots
            self.nslots += 1
            self.slots[s].pieces = NULL
            self.slots[s].buf = NULL
            self.slots[s].cap_pieces = 0
            self.slots[s].cap_buf = 0
        cdef Pending* p = &self.slots[s]
        memcpy(p.key, key, KEY)
        p.h = h
        p.version = version
        p.first_ts = ts
        p.end = -1
        p.size = p.inside = p.stop = p.wire = p.count = 0
        p.inconsistent = False
        p.used = True
        p.npieces = p.nbuf = 0
        p.prev = self.tail
        p.next = -1
        if self.tail >= 0:
            self.slots[self.tail].next = s
        else:
            self.head = s
        self.tail = s
        self.count += 1
        self.index[self._find(key, h)] = s
        return s

    cdef void _release(self, int64_t s) noexcept:
        """Out of the chain, the index and the byte count; its memory freed."""
        cdef Pending* p = &self.slots[s]
        self._unindex(s)
        if p.prev >= 0:
            self.slots[p.prev].next = p.next
        else:
            self.head = p.next
        if p.next >= 0:
            self.slots[p.next].prev = p.prev
        else:
            self.tail = p.prev
        self.held -= p.size
        self.count -= 1
        p.used = False
        free(p.buf)
        free(p.pieces)
        p.buf = NULL
        p.pieces = NULL
        p.cap_buf = p.cap_pieces = 0
        p.next = self.free_slot
        self.free_slot = s

    cdef int _drop(self, int64_t s, str reason) except -1:
        cdef int64_t version = self.slots[s].version
        self._release(s)
        return self._count(version, reason)

    cdef int _expire(self, int64_t now) except -1:
        while self.head >= 0 and _later(now, self.slots[self.head].first_ts, self.timeout_ns):
            self._drop(self.head, "fragment_timeout")
        return 0

    def _advance(self, int64_t now):
        self._expire(now)

    def _flush(self):
        while self.head >= 0:
            self._drop(self.head, "fragment_timeout")

    # -- fragments ----------------------------------------------------------------------

    def _add(self, frags, datagram):
        """Fragments (ip.Fragment tuples) in; whole datagrams (made by `datagram`) out."""
        out = []
        cdef uint8_t key[KEY]
        cdef int64_t version, ident, proto, offset, ts, s, stop
        cdef Py_ssize_t ls, ld, n
        cdef const uint8_t* data
        cdef uint64_t h
        cdef Pending* p
        cdef bint more
        for f in frags:
            version, src, dst, ident, proto, offset, more, raw, ts, pkt, wire = f
            if type(raw) is not bytes:
                raw = bytes(raw)
            ls, ld, n = len(src), len(dst), len(raw)
            if ls > 16 or ld > 16 or offset < 0 or not (0 <= ident <= 0xFFFFFFFF):
                raise ValueError("not a fragment of the decoders")  # invariant (not input)
            self._expire(ts)
            memset(key, 0, KEY)
            key[0] = <uint8_t>version
            key[1] = <uint8_t>proto
            key[2] = <uint8_t>ls
            key[3] = <uint8_t>ld
            key[4], key[5], key[6], key[7] = ident >> 24, (ident >> 16) & 255, \
                (ident >> 8) & 255, ident & 255
            memcpy(key + 8, <const char*>src, ls)
            memcpy(key + 24, <const char*>dst, ld)
            if version != key[0] or proto != key[1]:
                raise ValueError("not a fragment of the decoders")  # invariant (not input)
            h = _hash(key)
            s = self.index[self._find(key, h)]
            if s < 0:
                s = self._new(key, h, version, ts)
                if self.count > self.max_datagrams:
                    if self.head == s:  # no room at all (max_datagrams < 1)
                        self._drop(s, "fragment_evicted")
                        continue
                    self._drop(self.head, "fragment_evicted")
            p = &self.slots[s]
            p.wire = <int64_t>(<uint64_t>p.wire + <uint64_t>(<int64_t>wire))  # wraps, never UB
            p.count += 1
            stop = offset + n if offset <= MAX_DATAGRAM else MAX_DATAGRAM + 1
            if stop > MAX_DATAGRAM:
                self._drop(s, "fragment_too_big")
                continue
            if not more:
                if p.end >= 0 and p.end != stop:
                    p.inconsistent = True  # a second, different end: the first one holds
                if p.end < 0:
                    p.end = stop
                    p.inside = _below(p, stop)
            data = <const uint8_t*>PyBytes_AS_STRING(raw)
            if self._put(s, offset, data, n):
                self._count(version, "fragment_overlap")
            p = &self.slots[s]
            if p.end >= 0 and p.stop > p.end:
                p.inconsistent = True  # data past the end: cut off when joined
            if p.end < 0 or p.inside < p.end:
                while self.held > self.max_bytes and self.head >= 0:
                    self._drop(self.head, "fragment_evicted")
                continue
            if version == 4 and p.end > MAX_DATAGRAM - V4_HEADER:
                # no IPv4 length field holds it (the Python version raised here)
                self._drop(s, "fragment_too_big")
                continue
            if p.inconsistent:
                self._count(version, "fragment_inconsistent")
            out.append(datagram(_join(p, src, dst), ts, pkt, p.wire, p.count))
            self._release(s)
        return out

    cdef int _put(self, int64_t s, int64_t offset, const uint8_t* data,
                  int64_t n) except -1:
        """Keep the bytes of [offset, offset + n) not held yet (first copy wins); whether
        held bytes differed. Only the pieces that overlap the new bytes are visited."""
        cdef Pending* p = &self.slots[s]
        cdef int64_t start = offset, stop = offset + n, pos = offset, lo = 0, hi = p.npieces
        cdef int64_t j, o, end, a, z, mid
        cdef bint conflict = False
        # the last piece starting at or before `start` (or the first)
        while lo < hi:
            mid = (lo + hi) // 2
            if p.pieces[mid].offset <= start:
                lo = mid + 1
            else:
                hi = mid
        j = max(lo - 1, 0)
        while j < p.npieces and p.pieces[j].offset < stop:
            o = p.pieces[j].offset
            end = o + p.pieces[j].size
            if end <= pos:
                j += 1
                continue
            if o > pos:  # a hole before this piece: new bytes, a piece before j
                self._piece(s, j, pos, data + (pos - offset), o - pos)
                p = &self.slots[s]
                j += 1
            a, z = max(start, o), min(stop, end)
            if z > a and memcmp(p.buf + p.pieces[j].at + (a - o), data + (a - offset),
                                z - a) != 0:
                conflict = True
            pos = end
            j += 1
        if pos < stop:
            self._piece(s, j, pos, data + (pos - offset), stop - pos)
        return conflict

    cdef int _piece(self, int64_t s, int64_t j, int64_t offset, const uint8_t* data,
                    int64_t n) except -1:
        """A new piece at position j of the sorted pieces."""
        cdef Pending* p = &self.slots[s]
        cdef Piece* pieces
        cdef uint8_t* buf
        cdef int64_t cap
        if p.npieces == p.cap_pieces:
            cap = max(8, 2 * p.cap_pieces)
            pieces = <Piece*>realloc(p.pieces, cap * sizeof(Piece))
            if pieces == NULL:
                raise MemoryError()
            p.pieces = pieces
            p.cap_pieces = cap
        if p.nbuf + n > p.cap_buf:
            cap = max(p.nbuf + n, 2 * p.cap_buf, 256)
            buf = <uint8_t*>realloc(p.buf, cap)
            if buf == NULL:
                raise MemoryError()
            p.buf = buf
            p.cap_buf = cap
        memmove(&p.pieces[j + 1], &p.pieces[j], (p.npieces - j) * sizeof(Piece))
        p.npieces += 1
        p.pieces[j].offset = offset
        p.pieces[j].size = n
        p.pieces[j].at = p.nbuf
        memcpy(p.buf + p.nbuf, data, n)
        p.nbuf += n
        p.size += n
        self.held += n
        p.stop = max(p.stop, offset + n)
        if p.end >= 0:
            p.inside += max(0, min(offset + n, p.end) - offset)
        return 0


cdef int64_t _below(const Pending* p, int64_t end) noexcept:
    """Bytes held below `end`."""
    cdef int64_t j, total = 0
    for j in range(p.npieces):
        total += max(0, min(p.pieces[j].offset + p.pieces[j].size, end) - p.pieces[j].offset)
    return total


cdef bytes _join(const Pending* p, bytes src, bytes dst):
    """The datagram as a raw IP packet: a minimal header (what the transport decoders
    read), then its pieces in order, cut at its end."""
    cdef int64_t hdr = V4_HEADER if p.version == 4 else V6_HEADER, size = p.end, j, take
    cdef int64_t pos = 0
    cdef bytes out = PyBytes_FromStringAndSize(NULL, hdr + size)
    cdef uint8_t* o = <uint8_t*>PyBytes_AS_STRING(out)
    cdef uint32_t ident = (p.key[4] << 24) | (p.key[5] << 16) | (p.key[6] << 8) | p.key[7]
    memset(o, 0, hdr)
    if p.version == 4:  # struct "!BBHHHBBH4s4s": 0x45, 0, length, ident, 0, 64, proto, 0
        o[0] = 0x45
        o[2], o[3] = <uint8_t>((20 + size) >> 8), <uint8_t>(20 + size)
        o[4], o[5] = <uint8_t>(ident >> 8), <uint8_t>ident
        o[8] = 64
        o[9] = p.key[1]
        memcpy(o + 12, <const char*>src, min(len(src), 4))
        memcpy(o + 16, <const char*>dst, min(len(dst), 4))
    else:  # struct "!IHBB16s16s": 6 << 28, length, proto, 64
        o[0] = 0x60
        o[4], o[5] = <uint8_t>(size >> 8), <uint8_t>size
        o[6] = p.key[1]
        o[7] = 64
        memcpy(o + 8, <const char*>src, len(src))
        memcpy(o + 24, <const char*>dst, len(dst))
    for j in range(p.npieces):
        if pos >= size:
            break
        take = min(p.pieces[j].size, size - pos)
        memcpy(o + hdr + pos, p.buf + p.pieces[j].at, take)
        pos += take
    return out
