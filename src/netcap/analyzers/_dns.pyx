# cython: language_level=3
"""DNS messages (RFC 1035; mDNS is the same format): header, questions, resource records.

Rules kept: a compression pointer must point strictly before the name it occurs in, so
no name can loop; names longer than 255 bytes, labels with reserved type bits, and
records running past the message are errors, and a message with an error yields no
record (as gopacket, which the Go Netcap uses, fails the whole layer). Trailing bytes
after the announced sections are ignored. Names are text: labels joined by dots, bytes
outside printable ASCII (and dots or backslashes inside a label) escaped as in zone
files (\\DDD, \\., \\\\); the root is the empty name.

Compiled: every read of the message goes through the bounded reader (`_buf.pxd`); the
checks that decide an error are made before the read, with the same reason codes as
the message's Python face (`dns.py`) documents. Internally an error is a reason index
(0: none), not an exception, so that a batch of datagrams is read without raising;
`parse_dns` / `check_dns` raise `DecodeError` with that reason. Name text is written
into one growing buffer per message (the *arena*), which the memo points into.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport free, malloc, realloc

import numpy as np

from netcap._buf cimport Reader, payload_at, reader, seek, u8, u16, u32

from netcap.decode.errors import REASONS, DecodeError, code

cdef enum:
    MAX_NAME = 255
    # Text of one name, at most: each wire byte is at most 4 bytes of text (\DDD; a
    # length byte becomes one dot), and a name is at most MAX_NAME wire bytes.
    NAME_TEXT = 4 * MAX_NAME + 4
    # Compression pointers have 14 bits: only positions below this can be named by one.
    POINTER_SPACE = 1 << 14
    MAX_LABELS = 128  # a label costs at least 2 of the 255 wire bytes

cdef enum:
    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28
    SRV = 33

# Reason indexes (decode/errors.py), read once.
cdef int TRUNCATED = code("dns", "truncated")
cdef int BAD_LABEL = code("dns", "bad_label")
cdef int BAD_POINTER = code("dns", "bad_pointer")
cdef int NAME_TOO_LONG = code("dns", "name_too_long")
cdef int BAD_RDATA = code("dns", "bad_rdata")
cdef int NO_MEMORY = -1  # not a reason: MemoryError


cdef struct Known:
    # A name suffix already read, by the position it starts at (a label, or a pointer
    # that leads to it): its wire length and (when names are built) its text in the
    # arena. Record names are usually pointers to the question's name, which then costs
    # one lookup and one copy; and a chain of pointers is followed once per message,
    # not once per name that uses it (a 64 KiB message of such names cost 0.4 s of CPU
    # before). The answer is the same either way: a suffix checked once stays valid
    # when reached again (its own pointers pointed before an earlier or equal start).
    int32_t wire  # wire bytes (the 255-byte limit counts these); -1: not known
    int32_t text  # arena offset
    int32_t size  # text bytes


cdef struct Step:
    # A position the name being read went through: a label or a pointer.
    int32_t pos
    int32_t text  # where the text of the suffix from here starts (if not empty)
    int32_t before  # wire length before it


cdef struct Names:
    Reader msg  # the whole message (read at absolute positions: seek, then read)
    char* arena  # name text; NULL when only checking
    Py_ssize_t used
    Py_ssize_t cap
    Known* memo  # positions 0 .. nmemo-1
    Py_ssize_t nmemo
    Step* steps  # the current name's: at most one pointer per position, and its labels
    Py_ssize_t nsteps


cdef int names_init(Names* c, const uint8_t* data, Py_ssize_t n, bint text) noexcept nogil:
    """(NO_MEMORY if out of memory; names_free in any case.)"""
    cdef Py_ssize_t i
    c.msg = reader(data, n)
    c.used = 0
    c.cap = 2 * NAME_TEXT if text else 0
    c.nmemo = n if n < POINTER_SPACE else POINTER_SPACE
    c.nsteps = c.nmemo + MAX_LABELS + 1
    c.arena = <char*>malloc(c.cap) if text else NULL
    c.memo = <Known*>malloc((c.nmemo + 1) * sizeof(Known))
    c.steps = <Step*>malloc(c.nsteps * sizeof(Step))
    if (text and c.arena == NULL) or c.memo == NULL or c.steps == NULL:
        return NO_MEMORY
    for i in range(c.nmemo):
        c.memo[i].wire = -1
    return 0


cdef void names_free(Names* c) noexcept nogil:
    free(c.arena)
    free(c.memo)
    free(c.steps)
    c.arena = NULL
    c.memo = NULL
    c.steps = NULL


cdef inline int reserve(Names* c) noexcept nogil:
    """Room for one more name's text at the end of the arena."""
    cdef char* grown
    if c.cap - c.used >= NAME_TEXT:
        return 0
    grown = <char*>realloc(c.arena, 2 * c.cap + NAME_TEXT)
    if grown == NULL:
        return NO_MEMORY
    c.arena = grown
    c.cap = 2 * c.cap + NAME_TEXT
    return 0


cdef inline Py_ssize_t put_label(char* out, Reader* r, Py_ssize_t size) noexcept nogil:
    """A label's bytes as name text (zone-file escapes); the text length."""
    cdef Py_ssize_t _i, k = 0
    cdef uint8_t b
    for _i in range(size):
        b = u8(r)
        if 0x21 <= b <= 0x7E and b != 0x2E and b != 0x5C:
            out[k] = <char>b
            k += 1
        elif b == 0x2E or b == 0x5C:
            out[k] = b'\\'
            out[k + 1] = <char>b
            k += 2
        else:
            out[k] = b'\\'
            out[k + 1] = <char>(48 + b // 100)
            out[k + 2] = <char>(48 + (b // 10) % 10)
            out[k + 3] = <char>(48 + b % 10)
            k += 4
    return k


cdef int read_name(Names* c, Py_ssize_t pos, Py_ssize_t* after, Py_ssize_t* text,
                   Py_ssize_t* size) noexcept nogil:
    """The name at pos: the position after it (after its first pointer, if any), and
    (if c builds text) its text, as an arena offset and size; 0 or a reason index. The
    checks are the same with or without text (counting and full decoding agree)."""
    cdef Reader* r = &c.msg
    cdef Py_ssize_t n = r.size, length = 0, end = -1, start = pos, target, i, j
    cdef Py_ssize_t nsteps = 0, k = 0, first = 0, nlabels = 0
    cdef uint8_t b, kind
    cdef Known known
    cdef char* out = c.arena
    if out != NULL:
        if reserve(c) != 0:
            return NO_MEMORY
        out = c.arena
        first = k = c.used
    while True:
        if pos >= n:
            return TRUNCATED
        seek(r, pos)
        b = u8(r)
        if b == 0:
            pos += 1
            break
        kind = b & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                return TRUNCATED
            target = ((b & 0x3F) << 8) | u8(r)
            if target >= start:
                return BAD_POINTER
            if end < 0:
                end = pos + 2
            if nsteps < c.nsteps:  # always: one pointer per position below nmemo
                c.steps[nsteps].pos = <int32_t>pos
                c.steps[nsteps].text = <int32_t>(k + 1 if nlabels else k)
                c.steps[nsteps].before = <int32_t>length
                nsteps += 1
            if target < c.nmemo and c.memo[target].wire >= 0:
                known = c.memo[target]
                if length + known.wire > MAX_NAME:
                    return NAME_TOO_LONG
                if out != NULL and known.size:
                    if nlabels:
                        out[k] = b'.'
                        k += 1
                    for j in range(known.size):  # the arena, not the message
                        out[k + j] = out[known.text + j]
                    k += known.size
                length += known.wire
                break
            pos = start = target
            continue
        if kind:
            return BAD_LABEL  # 0x40/0x80: extended/reserved labels
        if pos + 1 + b > n:
            return TRUNCATED
        length += b + 1
        if length > MAX_NAME:
            return NAME_TOO_LONG
        if out != NULL and nlabels:
            out[k] = b'.'
            k += 1
        if nsteps < c.nsteps:  # always: at most MAX_LABELS labels
            c.steps[nsteps].pos = <int32_t>pos
            c.steps[nsteps].text = <int32_t>k
            c.steps[nsteps].before = <int32_t>(length - b - 1)
            nsteps += 1
        nlabels += 1
        if out != NULL:
            k += put_label(out + k, r, b)
        pos += 1 + b
    for i in range(nsteps):  # each step starts a name a pointer may name
        j = c.steps[i].pos
        if j < c.nmemo:
            c.memo[j].wire = <int32_t>(length - c.steps[i].before)
            c.memo[j].text = c.steps[i].text
            c.memo[j].size = <int32_t>(k - c.steps[i].text if k > c.steps[i].text else 0)
    after[0] = pos if end < 0 else end
    if out != NULL:
        c.used = k
        text[0] = first
        size[0] = k - first
    return 0


cdef inline int check_name(Names* c, Py_ssize_t pos, Py_ssize_t* after) noexcept nogil:
    """The position after the name at pos, checked, without its text (for counting)."""
    cdef Py_ssize_t unused
    return read_name(c, pos, after, &unused, &unused)


cdef inline unsigned int u16_at(Reader* r, Py_ssize_t pos) noexcept nogil:
    seek(r, pos)
    return u16(r)


cdef inline uint32_t u32_at(Reader* r, Py_ssize_t pos) noexcept nogil:
    seek(r, pos)
    return u32(r)


cdef inline bytes slice_at(Reader* r, Py_ssize_t pos, Py_ssize_t size):
    """Bytes pos..pos+size of the message, checked by the caller to be inside it."""
    if pos < 0 or size < 0 or pos + size > r.size:  # invariant (callers check first)
        raise IndexError("dns slice outside the message")
    return PyBytes_FromStringAndSize(<const char*>r.data + pos, size)


cdef object name_bytes(Names* c, Py_ssize_t text, Py_ssize_t size):
    return PyBytes_FromStringAndSize(c.arena + text, size)


cdef object read_rr(Names* c, Py_ssize_t* pos, int* err):
    """One resource record at pos[0] (advanced past it); None with err[0] set if bad."""
    cdef Reader* r = &c.msg
    cdef Py_ssize_t n = r.size, p, t, s, p2, t2, s2, data_at, end
    cdef unsigned int rtype, rdlen, size
    cdef int e = read_name(c, pos[0], &p, &t, &s)
    if e:
        err[0] = e
        return None
    name = name_bytes(c, t, s)
    if p + 10 > n:
        err[0] = TRUNCATED
        return None
    rtype = u16_at(r, p)
    rdlen = u16_at(r, p + 8)
    data_at = p + 10
    end = data_at + rdlen
    if end > n:
        err[0] = TRUNCATED
        return None
    data = slice_at(r, data_at, rdlen)
    cdef dict rr = {"Name": name, "Type": rtype, "Class": u16_at(r, p + 2),
                    "TTL": u32_at(r, p + 4), "DataLength": rdlen, "Data": data}
    if rtype == A or rtype == AAAA:
        if rdlen != (4 if rtype == A else 16):
            err[0] = BAD_RDATA
            return None
        rr["IP"] = data
    elif rtype == NS or rtype == CNAME or rtype == PTR:
        e = read_name(c, data_at, &p, &t, &s)
        if e == 0 and p > end:
            e = BAD_RDATA
        if e:
            err[0] = e
            return None
        rr["NS" if rtype == NS else "CNAME" if rtype == CNAME else "PTR"] = name_bytes(c, t, s)
    elif rtype == SOA:
        e = read_name(c, data_at, &p, &t, &s)
        if e == 0:
            e = read_name(c, p, &p2, &t2, &s2)
        if e == 0 and p2 + 20 > end:
            e = BAD_RDATA
        if e:
            err[0] = e
            return None
        rr["SOA"] = {"MName": name_bytes(c, t, s), "RName": name_bytes(c, t2, s2),
                     "Serial": u32_at(r, p2), "Refresh": u32_at(r, p2 + 4),
                     "Retry": u32_at(r, p2 + 8), "Expire": u32_at(r, p2 + 12),
                     "Minimum": u32_at(r, p2 + 16)}
    elif rtype == MX:
        if rdlen < 3:
            err[0] = BAD_RDATA
            return None
        e = read_name(c, data_at + 2, &p, &t, &s)
        if e == 0 and p > end:
            e = BAD_RDATA
        if e:
            err[0] = e
            return None
        rr["MX"] = {"Preference": u16_at(r, data_at), "Name": name_bytes(c, t, s)}
    elif rtype == SRV:
        if rdlen < 7:
            err[0] = BAD_RDATA
            return None
        e = read_name(c, data_at + 6, &p, &t, &s)
        if e == 0 and p > end:
            e = BAD_RDATA
        if e:
            err[0] = e
            return None
        rr["SRV"] = {"Priority": u16_at(r, data_at), "Weight": u16_at(r, data_at + 2),
                     "Port": u16_at(r, data_at + 4), "Name": name_bytes(c, t, s)}
    elif rtype == TXT:
        txts = []
        p = data_at
        while p < end:
            seek(r, p)
            size = u8(r)
            if p + 1 + size > end:
                err[0] = BAD_RDATA
                return None
            txts.append(slice_at(r, p + 1, size))
            p += 1 + size
        rr["TXTs"] = txts
    pos[0] = end
    return rr


cdef object parse_message(const uint8_t* data, Py_ssize_t n, int* err):
    """The DNS record fields of one message; None with err[0] set (a reason index, or
    NO_MEMORY) if it has an error."""
    cdef Names c
    cdef Reader* r
    cdef Py_ssize_t pos, p, t, s
    cdef unsigned int flags, qd, an, ns, ar, _i, section, count
    cdef int e
    err[0] = 0
    if n < 12:
        err[0] = TRUNCATED
        return None
    if names_init(&c, data, n, True) != 0:
        names_free(&c)
        err[0] = NO_MEMORY
        return None
    try:
        r = &c.msg
        flags = u16_at(r, 2)
        qd, an, ns, ar = u16_at(r, 4), u16_at(r, 6), u16_at(r, 8), u16_at(r, 10)
        rec = {
            "ID": u16_at(r, 0), "QR": bool(flags & 0x8000), "OpCode": (flags >> 11) & 0xF,
            "AA": bool(flags & 0x0400), "TC": bool(flags & 0x0200),
            "RD": bool(flags & 0x0100), "RA": bool(flags & 0x0080), "Z": (flags >> 4) & 0x7,
            "ResponseCode": flags & 0xF, "QDCount": qd, "ANCount": an, "NSCount": ns,
            "ARCount": ar,
        }
        pos = 12
        questions = []
        for _i in range(qd):
            e = read_name(&c, pos, &p, &t, &s)
            if e == 0 and p + 4 > n:
                e = TRUNCATED
            if e:
                err[0] = e
                return None
            questions.append({"Name": name_bytes(&c, t, s), "Type": u16_at(r, p),
                              "Class": u16_at(r, p + 2)})
            pos = p + 4
        rec["Questions"] = questions
        for section in range(3):
            count = an if section == 0 else ns if section == 1 else ar
            rrs = []
            for _i in range(count):
                rr = read_rr(&c, &pos, err)
                if rr is None:
                    return None
                rrs.append(rr)
            rec["Answers" if section == 0 else "Authorities" if section == 1
                else "Additionals"] = rrs
        return rec
    finally:
        names_free(&c)


cdef int check_rdata(Names* c, unsigned int rtype, Py_ssize_t at,
                     Py_ssize_t end) noexcept nogil:
    """The checks `read_rr` makes on record data, without building anything."""
    cdef Reader* r = &c.msg
    cdef Py_ssize_t size = end - at, p, skip = 0
    cdef int e
    if rtype == A or rtype == AAAA:
        if size != (4 if rtype == A else 16):
            return BAD_RDATA
    elif rtype == NS or rtype == CNAME or rtype == PTR or rtype == MX or rtype == SRV:
        skip = 2 if rtype == MX else 6 if rtype == SRV else 0  # fixed fields before the name
        if skip and size < skip + 1:
            return BAD_RDATA
        e = check_name(c, at + skip, &p)
        if e:
            return e
        if p > end:
            return BAD_RDATA
    elif rtype == SOA:
        e = check_name(c, at, &p)
        if not e:
            e = check_name(c, p, &p)
        if e:
            return e
        if p + 20 > end:
            return BAD_RDATA
    elif rtype == TXT:
        p = at
        while p < end:
            seek(r, p)
            p += 1 + u8(r)
            if p > end:
                return BAD_RDATA
    return 0


cdef int check_sections(Names* c, int64_t* types, Py_ssize_t room,
                        Py_ssize_t* ntypes) noexcept nogil:
    cdef Reader* r = &c.msg
    cdef Py_ssize_t n = r.size, pos = 12, end
    cdef unsigned int qd, rrs, _i
    cdef int e
    qd = u16_at(r, 4)
    rrs = u16_at(r, 6) + u16_at(r, 8) + u16_at(r, 10)
    for _i in range(qd):
        e = check_name(c, pos, &pos)
        if e:
            return e
        if pos + 4 > n:
            return TRUNCATED
        if ntypes[0] < room:  # always: each question read took >= 5 bytes
            types[ntypes[0]] = u16_at(r, pos)
            ntypes[0] += 1
        pos += 4
    for _i in range(rrs):
        e = check_name(c, pos, &pos)
        if e:
            return e
        if pos + 10 > n:
            return TRUNCATED
        end = pos + 10 + u16_at(r, pos + 8)
        if end > n:
            return TRUNCATED
        e = check_rdata(c, u16_at(r, pos), pos + 10, end)
        if e:
            return e
        pos = end
    return 0


cdef int check_message(const uint8_t* data, Py_ssize_t n, int64_t* types,
                       Py_ssize_t room, Py_ssize_t* ntypes) noexcept nogil:
    """For counting alone: checks a message exactly as `parse_message` does (the same
    errors, tested) without building names or records, and writes its question types
    to types[0 .. ntypes) (room >= n // 5: a question takes at least 5 bytes); 0, a
    reason index, or NO_MEMORY."""
    cdef Names c
    cdef int e
    ntypes[0] = 0
    if n < 12:
        return TRUNCATED
    e = names_init(&c, data, n, False)
    if e == 0:
        e = check_sections(&c, types, room, ntypes)
    names_free(&c)
    return e


cdef inline const uint8_t* start_of(const uint8_t[::1] msg) noexcept:
    return &msg[0] if msg.shape[0] else NULL


cdef void _raise(int err) except *:
    if err == NO_MEMORY:
        raise MemoryError()
    raise DecodeError(*REASONS[err])


def parse_dns(const uint8_t[::1] msg not None):
    """The DNS record fields of one message (without Timestamp, addresses and ports)."""
    cdef int err
    rec = parse_message(start_of(msg), msg.shape[0], &err)
    if err:
        _raise(err)
    return rec


def check_dns(const uint8_t[::1] msg not None):
    """For counting alone: the question types of a message, after checking all of it
    exactly as `parse_dns` does (the same errors, tested), without building names or
    records."""
    cdef Py_ssize_t n = msg.shape[0], ntypes
    cdef int64_t[::1] types = np.empty(n // 5 + 1, np.int64)
    cdef int err = check_message(start_of(msg), n, &types[0], types.shape[0], &ntypes)
    if err:
        _raise(err)
    return [types[i] for i in range(ntypes)]


def parse_batch(const uint8_t[::1] data not None, const int64_t[::1] poff not None,
                const int64_t[::1] size not None):
    """Every payload data[poff[i]:poff[i]+size[i]] parsed: (records of those that parsed,
    their indexes, indexes of those that failed, their reasons)."""
    cdef Py_ssize_t i, m = poff.shape[0], nok = 0, nbad = 0
    cdef int err
    cdef int64_t[::1] ok = np.empty(m, np.int64)
    cdef int64_t[::1] bad = np.empty(m, np.int64)
    cdef int16_t[::1] reasons = np.empty(m, np.int16)
    recs = []
    for i in range(m):
        rec = parse_message(payload_at(data, poff[i], size[i]), size[i], &err)
        if err == NO_MEMORY:
            raise MemoryError()
        if err:
            bad[nbad] = i
            reasons[nbad] = <int16_t>err
            nbad += 1
        else:
            recs.append(rec)
            ok[nok] = i
            nok += 1
    return recs, np.asarray(ok[:nok]), np.asarray(bad[:nbad]), np.asarray(reasons[:nbad])


def check_batch(const uint8_t[::1] data not None, const int64_t[::1] poff not None,
                const int64_t[::1] size not None):
    """Counting: every payload checked as `check_dns` does. (indexes that passed, indexes
    that failed, their reasons, question types, the index into the passed of the message
    of each type, header fields of the passed: rows ID, flags, QDCount, ANCount)."""
    cdef Py_ssize_t i, j, m = poff.shape[0], nok = 0, nbad = 0, ntypes, nq = 0, total = 0
    cdef int err
    cdef const uint8_t* p
    cdef Reader h
    for i in range(m):
        total += size[i] // 5 + 1
    cdef int64_t[::1] ok = np.empty(m, np.int64)
    cdef int64_t[::1] bad = np.empty(m, np.int64)
    cdef int16_t[::1] reasons = np.empty(m, np.int16)
    cdef int64_t[::1] types = np.empty(total + 1, np.int64)
    cdef int64_t[::1] parents = np.empty(total + 1, np.int64)
    cdef int64_t[:, ::1] head = np.empty((4, m), np.int64)
    for i in range(m):
        p = payload_at(data, poff[i], size[i])
        err = check_message(p, size[i], &types[nq], types.shape[0] - nq, &ntypes)
        if err == NO_MEMORY:
            raise MemoryError()
        if err:
            bad[nbad] = i
            reasons[nbad] = <int16_t>err
            nbad += 1
            continue
        h = reader(p, size[i])  # checked: at least the 12-byte header
        for j in range(4):
            head[j, nok] = u16(&h)
        for j in range(ntypes):
            parents[nq + j] = nok
        nq += ntypes
        ok[nok] = i
        nok += 1
    return (np.asarray(ok[:nok]), np.asarray(bad[:nbad]), np.asarray(reasons[:nbad]),
            np.asarray(types[:nq]), np.asarray(parents[:nq]), np.asarray(head)[:, :nok])
