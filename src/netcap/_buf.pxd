# cython: language_level=3
"""The one bounds-checked reader every compiled parser reads untrusted bytes through.

A `Reader` is a pointer, a length and a position. Reads past the end never touch
memory: they return 0 and make the reader *bad* for good (sticky, as Go's
cryptobyte.String), so a parser reads a whole structure and checks `r.bad` once where
it decides, instead of checking every field. No parser indexes `data` itself.
Everything is `nogil` and `noexcept`: no Python object, no exception, no assert.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t


cdef struct Reader:
    const uint8_t* data
    Py_ssize_t size
    Py_ssize_t pos
    bint bad  # a read went past the end (or was asked for a negative length)


cdef inline Reader reader(const uint8_t* data, Py_ssize_t size) noexcept nogil:
    cdef Reader r
    r.data = data
    r.size = size if size > 0 else 0
    r.pos = 0
    r.bad = False
    return r


cdef inline Py_ssize_t left(const Reader* r) noexcept nogil:
    """Bytes not yet read (0 once bad)."""
    if r.bad:
        return 0
    return r.size - r.pos


cdef inline bint need(Reader* r, Py_ssize_t n) noexcept nogil:
    """Whether n more bytes can be read; if not, the reader goes bad."""
    if r.bad or n < 0 or n > r.size - r.pos:
        r.bad = True
        return False
    return True


cdef inline uint8_t u8(Reader* r) noexcept nogil:
    if not need(r, 1):
        return 0
    r.pos += 1
    return r.data[r.pos - 1]


cdef inline uint16_t u16(Reader* r) noexcept nogil:
    """Big-endian (network order), as every other multi-byte read here."""
    if not need(r, 2):
        return 0
    r.pos += 2
    return (<uint16_t>r.data[r.pos - 2] << 8) | r.data[r.pos - 1]


cdef inline uint32_t u24(Reader* r) noexcept nogil:
    if not need(r, 3):
        return 0
    r.pos += 3
    return ((<uint32_t>r.data[r.pos - 3] << 16) | (<uint32_t>r.data[r.pos - 2] << 8)
            | r.data[r.pos - 1])


cdef inline uint32_t u32(Reader* r) noexcept nogil:
    if not need(r, 4):
        return 0
    r.pos += 4
    return ((<uint32_t>r.data[r.pos - 4] << 24) | (<uint32_t>r.data[r.pos - 3] << 16)
            | (<uint32_t>r.data[r.pos - 2] << 8) | r.data[r.pos - 1])


cdef inline uint64_t u64(Reader* r) noexcept nogil:
    if not need(r, 8):
        return 0
    cdef uint64_t hi = u32(r)
    return (hi << 32) | u32(r)


cdef inline uint8_t peek(const Reader* r, Py_ssize_t k) noexcept nogil:
    """Byte k ahead of the position without reading it; 0 if there is none (the
    reader does not go bad: a peek is a question, not a read)."""
    if r.bad or k < 0 or k >= r.size - r.pos:
        return 0
    return r.data[r.pos + k]


cdef inline uint16_t peek16(const Reader* r, Py_ssize_t k) noexcept nogil:
    """Big-endian 16 bits k bytes ahead of the position, as `peek` (0 if not all there).
    One check for the field, where two peeks make two: headers read at fixed offsets."""
    if r.bad or k < 0 or k > r.size - r.pos - 2:
        return 0
    return (<uint16_t>r.data[r.pos + k] << 8) | r.data[r.pos + k + 1]


cdef inline uint32_t peek32(const Reader* r, Py_ssize_t k) noexcept nogil:
    """Big-endian 32 bits k bytes ahead of the position, as `peek16`."""
    if r.bad or k < 0 or k > r.size - r.pos - 4:
        return 0
    cdef const uint8_t* p = r.data + r.pos + k
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline bint skip(Reader* r, Py_ssize_t n) noexcept nogil:
    if not need(r, n):
        return False
    r.pos += n
    return True


cdef inline Reader sub(Reader* r, Py_ssize_t n) noexcept nogil:
    """The next n bytes as a reader of their own (read past here); a bad reader if
    there are not n bytes (and r goes bad too)."""
    cdef Reader s
    if not need(r, n):
        s = reader(NULL, 0)
        s.bad = True
        return s
    s = reader(r.data + r.pos, n)
    r.pos += n
    return s


cdef inline const uint8_t* here(const Reader* r) noexcept nogil:
    """Where the next byte is: only for handing `left(r)` bytes to a copy (bytes
    objects, memcmp); never indexed past that."""
    return r.data + r.pos


cdef inline Py_ssize_t find(const Reader* r, uint8_t byte) noexcept nogil:
    """Offset (from the position) of the first `byte` left to read; -1 if none."""
    cdef Py_ssize_t i
    if r.bad:
        return -1
    for i in range(r.size - r.pos):
        if r.data[r.pos + i] == byte:
            return i
    return -1


cdef inline bint seek(Reader* r, Py_ssize_t pos) noexcept nogil:
    """Move to an absolute position 0..size (a DNS compression pointer, a field at a
    known offset); out of range: the reader goes bad."""
    if r.bad or pos < 0 or pos > r.size:
        r.bad = True
        return False
    r.pos = pos
    return True


cdef inline const uint8_t* payload_at(const uint8_t[::1] data, int64_t off,
                                      int64_t size) except? NULL:
    """The payload data[off:off+size] of a batch's packet bytes, for a reader (checked:
    an offset from the decoder is an invariant, not input, so a bad one raises)."""
    if off < 0 or size < 0 or off + size > data.shape[0]:
        raise ValueError("payload outside the batch")
    return &data[off] if size else NULL


cdef extern from *:
    # A hint to the CPU, never a read: nothing is loaded through it, and it cannot fault.
    void __builtin_prefetch(const void* addr) noexcept nogil


cdef inline void prefetch_head(const uint8_t* data, Py_ssize_t size,
                               Py_ssize_t at) noexcept nogil:
    """Prefetch the first two cache lines at data[at:] (the headers of a packet, the
    start of a payload), each only if it starts inside data[:size]: a loop over packets
    or payloads asks for the one a few steps ahead, which a batch too large for the
    cache would otherwise wait on memory for when its turn comes."""
    if 0 <= at < size:
        __builtin_prefetch(data + at)
        if at + 64 < size:
            __builtin_prefetch(data + at + 64)
