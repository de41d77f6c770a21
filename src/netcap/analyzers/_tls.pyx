# cython: language_level=3
"""TLS ClientHello and ServerHello (TLS 1.0-1.3; SSL 3.0 records too) and their JA3,
JA3S and JA4 fingerprints, compiled. `tls.py` is the Python face (and the docs).

Every byte of input is read through netcap._buf's bounded `Reader`: a vector is a
sub-reader of its declared length, so a length that overruns its container makes the
reader bad, and each check below is one `bad` test where the old field-by-field rules
decide. Error semantics are part of the interface (tests/oracle_tls.py is the Python
parser this replaced; tests/test_tls_differential.py holds them equal):

- a fixed field or vector that overruns its container: 'truncated'; an odd-length u16
  vector (cipher suites at once; groups, signature algorithms, versions) 'bad_length';
- the extension framing is checked to its end before any content error is raised (the
  first content error wins); bytes after the extensions block are ignored.

Fingerprint text is written into a C buffer sized for its worst case; only the hashing
(MD5, SHA-256) is a Python call (hashlib, OpenSSL).
"""

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint8_t, uint16_t, uint32_t

from netcap._buf cimport Reader, here, left, peek, reader, skip, sub, u8, u16

from netcap.decode.errors import DecodeError


cdef extern from "Python.h":
    # What Cython's dict literals are made with: room for `minused` keys. A hello's
    # record gets keys after the parse (the message's, then the stream stage's
    # addresses and time): made with room for them, it is never resized.
    dict _PyDict_NewPresized(Py_ssize_t minused)

__all__ = ["LEAN_CLIENT", "LEAN_SERVER", "HelloReader", "ja3", "ja3s", "ja4",
           "parse_client_hello", "parse_server_hello"]

# Extension types (IANA).
cdef enum:
    SNI = 0
    STATUS = 5
    GROUPS = 10
    POINTS = 11
    SIGALGS = 13
    ALPN = 16
    SCT = 18
    EMS = 23
    TICKET = 35
    PSK = 41
    VERSIONS = 43
    COOKIE = 44
    KEY_SHARE = 51
    NPN = 13172
    RENEGOTIATION = 65281

# A content error of an extension (raised once the framing is checked).
cdef enum:
    NO_ERROR = 0
    TRUNCATED = 1
    BAD_LENGTH = 2


# Keys a hello's record may end with, lean (the metrics' fields, the message's five, the
# stream stage's six) and in full (every field, fingerprints too).
cdef enum:
    _LEAN_ROOM = 16
    _FULL_ROOM = 40


cdef object _error(int which):
    return DecodeError("tls", "bad_length" if which == BAD_LENGTH else "truncated")


cdef inline bytes _rest(const Reader* r):
    """What is left of r, as bytes."""
    return PyBytes_FromStringAndSize(<const char*>here(r), left(r))


# One int object per 16-bit value, made when first seen and shared by every record
# after: a ClientHello's lists hold ~36 values above Python's small-int cache (cipher
# suites, extension types, groups, signature schemes), which were each an int object
# made for the record and freed with it. 512 KiB, made at the first hello.
cdef list _U16 = None


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline object _int16(uint16_t v):
    global _U16
    if _U16 is None:
        _U16 = [None] * 65536
    x = _U16[v]  # any uint16_t is an index of the 65,536
    if x is None:
        x = _U16[v] = <long>v
    return x


cdef list _u16s(Reader* r, Py_ssize_t count):
    cdef Py_ssize_t _i
    return [_int16(u16(r)) for _i in range(count)]


cdef list _u8s(Reader* r):
    cdef Py_ssize_t _i
    return [u8(r) for _i in range(left(r))]


cdef object _names(Reader* r):
    """Protocol names with 1-byte lengths filling r (the list inside ALPN and NPN), or
    None when the last one overruns it."""
    cdef list out = []
    cdef Reader name
    while left(r) > 0:
        name = sub(r, u8(r))
        if r.bad:
            return None
        out.append(_rest(&name))
    return out


cdef dict _client_hello(const uint8_t* data, Py_ssize_t n, bint lean):
    """The ClientHello's fields. `lean`: only those the metrics read without fingerprints
    (`LEAN_CLIENT`); the same checks, the same errors."""
    cdef Reader r = reader(data, n)
    cdef Reader rnd, sid, ciphers, comp, exts, val, vec, name
    cdef uint16_t version, size, kind, length
    cdef uint8_t sid_len, entry
    cdef int bad = NO_ERROR
    cdef list kinds = []
    cdef dict rec
    version = u16(&r)
    rnd = sub(&r, 32)
    sid_len = u8(&r)
    sid = sub(&r, sid_len)
    size = u16(&r)
    ciphers = sub(&r, size)
    if r.bad:
        raise _error(TRUNCATED)
    if size & 1:
        raise _error(BAD_LENGTH)
    comp = sub(&r, u8(&r))
    if r.bad:
        raise _error(TRUNCATED)
    rec = _PyDict_NewPresized(_LEAN_ROOM if lean else _FULL_ROOM)
    rec["HandshakeVersion"] = _int16(version)
    if not lean:
        rec["Random"] = _rest(&rnd)
        rec["SessionIDLen"] = sid_len
        rec["SessionID"] = _rest(&sid)
        rec["CipherSuiteLen"] = size
        rec["CipherSuites"] = _u16s(&ciphers, size >> 1)
        rec["CompressMethods"] = _u8s(&comp)
        rec["Extensions"] = kinds
        rec["ExtensionLen"] = 0
    if left(&r) == 0:
        return rec  # no extensions block (TLS 1.0 and older hellos)
    size = u16(&r)
    exts = sub(&r, size)
    if r.bad:
        raise _error(TRUNCATED)
    if not lean:
        rec["ExtensionLen"] = size
    while left(&exts) > 0:
        kind = u16(&exts)
        size = u16(&exts)
        val = sub(&exts, size)
        if exts.bad:
            raise _error(TRUNCATED)
        if not lean:
            kinds.append(_int16(kind))
        if kind == GROUPS or kind == SIGALGS:
            length = u16(&val)
            vec = sub(&val, length)
            if val.bad:
                bad = bad or TRUNCATED
            elif length & 1:
                bad = bad or BAD_LENGTH
            elif not lean:
                rec["SupportedGroups" if kind == GROUPS else "SignatureAlgs"] = _u16s(
                    &vec, length >> 1)
        elif kind == SNI:
            if size == 0:
                continue  # empty (as in a ServerHello's echo): nothing to read
            vec = sub(&val, u16(&val))
            if val.bad:
                bad = bad or TRUNCATED
                continue
            while left(&vec) > 0:  # (type, 2-byte-length name) entries; the first host name
                entry = u8(&vec)
                name = sub(&vec, u16(&vec))
                if vec.bad:
                    bad = bad or TRUNCATED
                    break
                if entry == 0:
                    rec["SNI"] = _rest(&name)
                    break
        elif kind == POINTS:
            vec = sub(&val, u8(&val))
            if val.bad:
                bad = bad or TRUNCATED
            elif not lean:
                rec["SupportedPoints"] = _u8s(&vec)
        elif kind == ALPN:
            vec = sub(&val, u16(&val))
            names = _names(&vec) if not val.bad else None
            if names is None:
                bad = bad or TRUNCATED
            elif not lean:
                rec["ALPNs"] = names
        elif kind == VERSIONS:
            length = u8(&val)
            vec = sub(&val, length)
            if val.bad:
                bad = bad or TRUNCATED
            elif length & 1:
                bad = bad or BAD_LENGTH
            else:
                rec["SupportedVersions"] = _u16s(&vec, length >> 1)
        elif kind == STATUS and not lean:
            rec["OSCP"] = True
    if bad != NO_ERROR:
        raise _error(bad)
    return rec


cdef dict _server_hello(const uint8_t* data, Py_ssize_t n, bint lean):
    """The ServerHello's fields. `lean`: only those the metrics read without
    fingerprints (`LEAN_SERVER`); the same checks, the same errors."""
    cdef Reader r = reader(data, n)
    cdef Reader rnd, sid, exts, val, vec, item
    cdef uint16_t version, cipher, size, kind
    cdef uint8_t compression
    cdef bint bad = False
    cdef list kinds = []
    cdef list scts
    cdef dict rec
    version = u16(&r)
    rnd = sub(&r, 32)
    sid = sub(&r, u8(&r))
    cipher = u16(&r)
    compression = u8(&r)
    if r.bad:
        raise _error(TRUNCATED)
    rec = _PyDict_NewPresized(_LEAN_ROOM if lean else _FULL_ROOM)
    rec["Version"] = _int16(version)
    if not lean:
        rec["Random"] = _rest(&rnd)
        rec["SessionID"] = _rest(&sid)
        rec["CipherSuite"] = _int16(cipher)
        rec["CompressionMethod"] = compression
        rec["Extensions"] = kinds
    if left(&r) == 0:
        return rec  # no extensions block
    exts = sub(&r, u16(&r))
    if r.bad:
        raise _error(TRUNCATED)
    while left(&exts) > 0:
        kind = u16(&exts)
        size = u16(&exts)
        val = sub(&exts, size)
        if exts.bad:
            raise _error(TRUNCATED)
        if not lean:
            kinds.append(_int16(kind))
        if kind == RENEGOTIATION:
            rec["SecureRenegotiationSupported"] = True
            vec = sub(&val, u8(&val))
            if val.bad:
                bad = True
            else:
                rec["SecureRenegotiation"] = _rest(&vec)
        elif kind == VERSIONS:
            if size == 2:
                rec["SupportedVersion"] = u16(&val)
        elif kind == KEY_SHARE:
            if size >= 2:
                rec["SelectedGroup"] = u16(&val)
        elif kind == ALPN:
            vec = sub(&val, u16(&val))
            names = _names(&vec) if not val.bad else None
            if names is None:
                bad = True
            elif names:
                rec["AlpnProtocol"] = names[0]
        elif kind == EMS:
            rec["Ems"] = True
        elif kind == STATUS:
            rec["OCSPStapling"] = True
        elif kind == TICKET:
            rec["TicketSupported"] = True
        elif kind == PSK:
            if size == 2:
                rec["SelectedIdentityPresent"] = True
                rec["SelectedIdentity"] = u16(&val)
        elif kind == SCT:
            vec = sub(&val, u16(&val))
            if val.bad:
                bad = True
                continue
            scts = []
            rec["Scts"] = scts
            while left(&vec) > 0:
                item = sub(&vec, u16(&vec))
                if vec.bad:
                    bad = True
                    break
                scts.append(_rest(&item))
        elif kind == COOKIE:
            vec = sub(&val, u16(&val))
            if val.bad:
                bad = True
            else:
                rec["Cookie"] = _rest(&vec)
        elif kind == NPN:
            rec["NextProtoNeg"] = True
            names = _names(&val)  # the whole value is the list
            if names is None:
                bad = True
            else:
                rec["NextProtos"] = names
    if bad:
        raise _error(TRUNCATED)
    return rec


# The fields a lean hello has (besides those HelloReader adds): what the metrics read when
# no fingerprint is asked for (metrics.state.STREAM_RECORD_COLUMNS; a test holds them so).
LEAN_CLIENT = frozenset({"HandshakeVersion", "SNI", "SupportedVersions"})
LEAN_SERVER = frozenset({"Version", "SupportedVersion"})


def parse_client_hello(bytes body not None, bint lean=False):
    """The fields of a ClientHello body (the bytes after the 4-byte handshake header);
    DecodeError("tls", reason) if malformed. `lean`: the `LEAN_CLIENT` fields only."""
    return _client_hello(<const uint8_t*>PyBytes_AS_STRING(body), len(body), lean)


def parse_server_hello(bytes body not None, bint lean=False):
    """The fields of a ServerHello body; errors as parse_client_hello's (all 'truncated').
    `lean`: the `LEAN_SERVER` fields (and a few small others) only."""
    return _server_hello(<const uint8_t*>PyBytes_AS_STRING(body), len(body), lean)


@cython.freelist(256)
cdef class HelloReader:
    """One direction of a stream: TLS records in, ClientHello / ServerHello records out
    (as (handshake type, record fields)). Reading goes on past a hello (a HelloRetryRequest
    brings a second ClientHello) and ChangeCipherSpec records, and stops (`done`) at the
    first other handshake message, alert or application data, or after `limit` bytes.
    A stream that does not start with a TLS handshake record is not TLS: done with
    nothing (`violation` says why).

    Records and handshake messages are read in place from the data fed (the usual case:
    a segment holding whole records); only a partial record (`_buf`) or a handshake
    message split across records (`_hs`) is copied aside. A hello that raises
    `DecodeError` is consumed: the reader's state is as after it."""

    def __init__(self, Py_ssize_t limit=64 * 1024, bint lean=False):
        self._setup(limit, lean)

    cdef int _setup(self, Py_ssize_t limit, bint lean) except -1:
        self.limit = limit
        self.lean = lean
        self._buf = bytearray()
        self._hs = bytearray()
        self._version = 0
        self._length = 0
        self._started = False
        self.done = False
        self.violation = None
        self._seen = 0
        return 0

    cpdef list feed(self, bytes data):
        cdef list out = []
        cdef bytearray buf = self._buf
        cdef bint joined = len(buf) > 0
        cdef Reader r, rec
        cdef uint8_t ctype
        cdef Py_ssize_t length
        if data is None:
            raise TypeError("HelloReader.feed takes bytes")
        if self.done:
            return out
        self._seen += len(data)
        if joined:
            buf += data
            r = reader(<const uint8_t*>PyByteArray_AS_STRING(buf), len(buf))
        else:
            r = reader(<const uint8_t*>PyBytes_AS_STRING(data), len(data))
        try:
            while left(&r) >= 5:
                ctype = peek(&r, 0)
                if peek(&r, 1) != 3 or ctype < 20 or ctype > 23:  # not a TLS record
                    self._stop(None if self._started else "not_tls")
                    break
                if not self._started and ctype != 22:
                    self._stop("not_tls")
                    break
                length = (peek(&r, 3) << 8) | peek(&r, 4)
                if left(&r) - 5 < length:
                    break  # wait for the rest of the record
                self._started = True
                if ctype == 22 and len(self._hs) == 0:  # the record a message starts in
                    self._version = (peek(&r, 1) << 8) | peek(&r, 2)
                    self._length = length
                skip(&r, 5)
                rec = sub(&r, length)  # consumed, whatever it holds
                if ctype == 22:
                    if self._messages(&rec, out):
                        break  # past the hellos
                elif ctype != 20:  # alert, encrypted data: no more hellos
                    self._stop(None)
                    break
        finally:  # keep the partial record (also when a hello raised)
            if joined:
                del buf[:r.pos]
            elif r.pos < len(data) and not self.done:
                buf += data[r.pos:]
        if not self.done and self._seen > self.limit:
            self._stop("too_long")
        return out

    cdef int _messages(self, Reader* rec, list out) except -1:
        """Handshake messages of the record `rec`, after the pending start of one
        (`_hs`), to `out`; the start of an incomplete last one goes to `_hs`. 1 when a
        message other than a hello ended the reading."""
        cdef bytearray hs = self._hs
        cdef bint joined = len(hs) > 0
        cdef Reader r, body
        cdef uint8_t htype
        cdef Py_ssize_t size
        cdef dict d
        if joined:  # a message split across records: join its pieces
            hs += _rest(rec)
            r = reader(<const uint8_t*>PyByteArray_AS_STRING(hs), len(hs))
        else:
            r = rec[0]
        try:
            while left(&r) >= 4:
                htype = peek(&r, 0)
                size = (peek(&r, 1) << 16) | (peek(&r, 2) << 8) | peek(&r, 3)
                if left(&r) - 4 < size:
                    break
                skip(&r, 4)
                body = sub(&r, size)
                if htype == 1:
                    d = _client_hello(here(&body), size, self.lean)
                elif htype == 2:
                    d = _server_hello(here(&body), size, self.lean)
                else:
                    self._stop(None)  # past the hellos
                    return 1
                d["Type"] = 22
                d["MessageLen"] = self._length
                d["HandshakeType"] = htype
                d["HandshakeLen"] = size
                if htype == 1:
                    d["Version"] = self._version
                out.append((htype, d))
        finally:  # keep what follows the last whole message (also when a hello raised)
            if joined:
                del hs[:r.pos]
            elif left(&r) > 0:
                hs += _rest(&r)
        return 0

    cdef void _stop(self, object violation) noexcept:
        self.done = True
        self.violation = violation


cdef HelloReader hello_reader(bint lean):
    """`HelloReader(lean=lean)` without a Python call (argument parsing, keywords): the
    stream stage makes one per TLS direction."""
    cdef HelloReader h = HelloReader.__new__(HelloReader)
    h._setup(64 * 1024, lean)
    return h


# ---- fingerprints -------------------------------------------------------------------

cdef inline bint _grease(uint32_t v) noexcept nogil:
    """An RFC 8701 GREASE value (0x0a0a, 0x1a1a, ... 0xfafa)."""
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


# Fingerprint text being written: a buffer sized for the worst case by its maker; a
# write past `cap` is dropped (cannot happen with the sizes below).
cdef struct Text:
    char* p
    Py_ssize_t cap
    Py_ssize_t n


cdef inline void _put(Text* t, char c) noexcept nogil:
    if t.n < t.cap:
        t.p[t.n] = c
        t.n += 1


cdef inline void _dec(Text* t, uint32_t v) noexcept nogil:
    """v in decimal (at most 10 digits)."""
    cdef char digits[10]
    cdef int k = 0
    while True:
        digits[k] = <char>(48 + v % 10)
        v //= 10
        k += 1
        if v == 0 or k == 10:
            break
    while k > 0:
        k -= 1
        _put(t, digits[k])


cdef const char* _HEXDIGITS = b"0123456789abcdef"


cdef inline void _hex4(Text* t, uint16_t v) noexcept nogil:
    _put(t, _HEXDIGITS[v >> 12])
    _put(t, _HEXDIGITS[(v >> 8) & 15])
    _put(t, _HEXDIGITS[(v >> 4) & 15])
    _put(t, _HEXDIGITS[v & 15])


cdef int _dec_list(Text* t, object values, bint drop_grease) except -1:
    """Decimal values joined with '-' (at most 6 characters each), GREASE left out if
    asked (JA3)."""
    cdef uint16_t v
    cdef bint first = True
    for x in values:
        v = x
        if drop_grease and _grease(v):
            continue
        if not first:
            _put(t, b'-')
        _dec(t, v)
        first = False
    return 0


cdef inline bytes _text(const Text* t):
    return PyBytes_FromStringAndSize(t.p, t.n)


# Hashing (OpenSSL through hashlib) costs more than writing the text: ~1.5 µs a call. A
# capture's hellos come from few client and server stacks, so the digests are kept by
# their text (a dict lookup, ~0.1 µs): texts up to _LONGEST bytes (a usual JA3 text has
# 100-600; a crafted hello's can have 190,000), up to _CACHED of each kind, then the
# cache starts afresh. So each cache holds at most ~5 MB.
cdef Py_ssize_t _CACHED = 4096
cdef Py_ssize_t _LONGEST = 1024
cdef dict _md5s = {}
cdef dict _sha12s = {}


cdef object _hashlib = None


cdef object _hashes():
    """hashlib, imported at first use, not at import (the stream stage cimports this
    module, and an export without JA3/JA4 should not load OpenSSL: ~3 ms of every
    start), then held: an `import` statement in a compiled function goes through the
    import machinery at every call (~1,000 instructions)."""
    global _hashlib
    if _hashlib is None:
        import hashlib
        _hashlib = hashlib
    return _hashlib


cdef object _md5(bytes text):
    return _hashes().md5(text, usedforsecurity=False)


cdef object _sha256(bytes text):
    return _hashes().sha256(text)


cdef str _md5_hex(bytes text):
    if len(text) > _LONGEST:
        return _md5(text).hexdigest()
    digest = _md5s.get(text)
    if digest is None:
        if len(_md5s) >= _CACHED:
            _md5s.clear()
        digest = _md5s[text] = _md5(text).hexdigest()
    return digest


cdef tuple _ja3_result(Text* t):
    text = _text(t)
    return text.decode("ascii"), _md5_hex(text)


def ja3(dict rec not None):
    """(JA3 string, its MD5) of a ClientHello record: "version,ciphers,extensions,groups,
    point formats", values in decimal joined with '-', GREASE left out."""
    ciphers = rec.get("CipherSuites", ())
    exts = rec.get("Extensions", ())
    groups = rec.get("SupportedGroups", ())
    points = rec.get("SupportedPoints", ())
    cdef Text t
    t.cap = 16 + 6 * (len(ciphers) + len(exts) + len(groups) + len(points))
    t.n = 0
    t.p = <char*>PyMem_Malloc(t.cap)
    if t.p == NULL:
        raise MemoryError()
    try:
        _dec(&t, <uint16_t>rec.get("HandshakeVersion", 0))
        _put(&t, b',')
        _dec_list(&t, ciphers, True)
        _put(&t, b',')
        _dec_list(&t, exts, True)
        _put(&t, b',')
        _dec_list(&t, groups, True)
        _put(&t, b',')
        _dec_list(&t, points, False)  # one byte each: no GREASE
        return _ja3_result(&t)
    finally:
        PyMem_Free(t.p)


def ja3s(dict rec not None):
    """(JA3S string, its MD5) of a ServerHello record: "version,cipher,extensions"."""
    exts = rec.get("Extensions", ())
    cdef Text t
    t.cap = 16 + 6 * len(exts)
    t.n = 0
    t.p = <char*>PyMem_Malloc(t.cap)
    if t.p == NULL:
        raise MemoryError()
    try:
        _dec(&t, <uint16_t>rec.get("Version", 0))
        _put(&t, b',')
        _dec(&t, <uint16_t>rec.get("CipherSuite", 0))
        _put(&t, b',')
        _dec_list(&t, exts, True)
        return _ja3_result(&t)
    finally:
        PyMem_Free(t.p)


cdef void _sort(uint16_t* v, Py_ssize_t n) noexcept nogil:
    """Shell sort (Ciura's gaps): no allocation, no calls; insertion sort for the usual
    few dozen values, and n^1.3-ish for the longest lists a hello can hold."""
    cdef Py_ssize_t[9] gaps = [1750, 701, 301, 132, 57, 23, 10, 4, 1]
    cdef Py_ssize_t g, gap, i, j
    cdef uint16_t x
    for g in range(9):
        gap = gaps[g]
        for i in range(gap, n):
            x = v[i]
            j = i
            while j >= gap and v[j - gap] > x:
                v[j] = v[j - gap]
                j -= gap
            v[j] = x


cdef Py_ssize_t _sorted(object values, uint16_t* out, bint drop_grease) except -1:
    """The values (GREASE left out if asked) sorted into out (room for all); how many."""
    cdef Py_ssize_t n = 0
    cdef uint16_t v
    for x in values:
        v = x
        if drop_grease and _grease(v):
            continue
        out[n] = v
        n += 1
    _sort(out, n)
    return n


cdef str _ja4_version(uint32_t v):
    if v == 0x0304:
        return "13"
    if v == 0x0303:
        return "12"
    if v == 0x0302:
        return "11"
    if v == 0x0301:
        return "10"
    if v == 0x0300:
        return "s3"
    if v == 0x0002:
        return "s2"
    if v == 0xFEFF:
        return "d1"
    if v == 0xFEFD:
        return "d2"
    if v == 0xFEFC:
        return "d3"
    return "00"


cdef inline bint _alnum(uint8_t c) noexcept nogil:
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


cdef str _sha12(Text* t):
    """The first 12 hex digits of the SHA-256 of the text."""
    text = _text(t)
    if len(text) > _LONGEST:
        return _sha256(text).hexdigest()[:12]
    digest = _sha12s.get(text)
    if digest is None:
        if len(_sha12s) >= _CACHED:
            _sha12s.clear()
        digest = _sha12s[text] = _sha256(text).hexdigest()[:12]
    return digest


def ja4(dict rec not None, str transport not None="t"):
    """JA4 of a ClientHello record (transport 't' TCP, 'q' QUIC, 'd' DTLS):
    t<version><d|i><ciphers:02><extensions:02><alpn>_<sha256 of the sorted cipher list,
    12 hex>_<sha256 of the sorted extensions without SNI and ALPN, then '_' and the
    signature algorithms in order, 12 hex>."""
    cdef uint32_t version = <uint16_t>rec.get("HandshakeVersion", 0)
    cdef uint32_t best = 0
    cdef bint any_plain = False
    cdef uint16_t v
    cdef Py_ssize_t nc, ne, i, rest = 0
    cdef uint16_t* ciphers
    cdef uint16_t* exts
    cdef bytes first = b""
    cdef Reader r
    cdef uint8_t c0, c1
    cdef Text t
    cipher_list = rec.get("CipherSuites", ())
    ext_list = rec.get("Extensions", ())
    sig_list = rec.get("SignatureAlgs", ())
    for x in rec.get("SupportedVersions", ()):
        v = x
        if not _grease(v):
            best = v if not any_plain or v > best else best
            any_plain = True
    if any_plain:
        version = best
    alpns = rec.get("ALPNs")
    if alpns:
        first = alpns[0]
    nc, ne = len(cipher_list), len(ext_list)
    ciphers = <uint16_t*>PyMem_Malloc((nc + ne + 1) * sizeof(uint16_t))
    if ciphers == NULL:
        raise MemoryError()
    exts = ciphers + nc
    t.cap = 8 + 5 * (nc + ne + len(sig_list))
    t.p = <char*>PyMem_Malloc(t.cap)
    if t.p == NULL:
        PyMem_Free(ciphers)
        raise MemoryError()
    try:
        nc = _sorted(cipher_list, ciphers, True)
        ne = _sorted(ext_list, exts, True)
        alpn = "00"
        if len(first) > 0:  # its first and last characters, or else nibbles
            r = reader(<const uint8_t*>PyBytes_AS_STRING(first), len(first))
            c0, c1 = peek(&r, 0), peek(&r, len(first) - 1)
            if _alnum(c0) and _alnum(c1):
                alpn = chr(c0) + chr(c1)
            else:
                alpn = "%x%x" % (c0 >> 4, c1 & 15)
        # sorted: SNI (0) would come first
        head = (f"{transport}{_ja4_version(version)}{'d' if ne and exts[0] == SNI else 'i'}"
                f"{min(nc, 99):02d}{min(ne, 99):02d}{alpn}")
        cipher_hash = "000000000000"
        if nc:
            t.n = 0
            for i in range(nc):
                if i:
                    _put(&t, b',')
                _hex4(&t, ciphers[i])
            cipher_hash = _sha12(&t)
        ext_hash = "000000000000"
        t.n = 0
        for i in range(ne):  # the extensions but SNI and ALPN
            if exts[i] == SNI or exts[i] == ALPN:
                continue
            if rest:
                _put(&t, b',')
            _hex4(&t, exts[i])
            rest += 1
        if rest:
            # With no signature algorithms the string still ends in '_' (as suricata's JA4
            # and its published test values; FoxIO's description says the '_' is dropped).
            _put(&t, b'_')
            i = 0
            for x in sig_list:
                if i:
                    _put(&t, b',')
                _hex4(&t, x)
                i += 1
            ext_hash = _sha12(&t)
        return f"{head}_{cipher_hash}_{ext_hash}"
    finally:
        PyMem_Free(ciphers)
        PyMem_Free(t.p)
