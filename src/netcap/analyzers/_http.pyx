# cython: language_level=3
"""HTTP/1.0 and 1.1 transactions from a reassembled TCP connection, compiled.

The framing rules, bounds, record fields and violations are the ones documented in
`netcap.analyzers.http` (the Python face of this module). Here: how the work is done.
Message heads are checked by llhttp through its C API (vendor/llhttp, the version
httptools 0.9 ships, configured as httptools configured it: its strictness is the
anomaly signal). Everything else is our own framing over the bounded reader
(`netcap._buf`): the end of a head, bare LF line ends, chunk-size lines and trailer
blocks, and the header fields of an accepted head. Bodies are counted, not copied (only
the first SNIFF bytes are kept). Python objects are made only for what a record holds.
"""

cimport cython
from collections import deque

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy

from netcap._buf cimport Reader, here, left, peek, reader

cdef extern from "Python.h":
    # What Cython's dict literals are made with: room for `minused` keys. A
    # transaction's record gets its keys over the request, the response and the stream
    # stage: made with room for them, it is never resized.
    dict _PyDict_NewPresized(Py_ssize_t minused)


cdef extern from "llhttp.h":
    ctypedef struct llhttp_t:  # the fields read here
        void* data
        uint8_t method
        uint8_t http_major
        uint8_t http_minor
        uint8_t upgrade
        uint16_t status_code

    ctypedef int (*llhttp_data_cb)(llhttp_t*, const char* at, size_t length) noexcept
    ctypedef int (*llhttp_cb)(llhttp_t*) noexcept

    ctypedef struct llhttp_settings_t:
        llhttp_data_cb on_url
        llhttp_cb on_headers_complete

    ctypedef enum llhttp_type_t:
        HTTP_REQUEST
        HTTP_RESPONSE

    ctypedef enum llhttp_errno_t:
        HPE_OK
        HPE_PAUSED_UPGRADE

    void llhttp_init(llhttp_t* parser, llhttp_type_t type, const llhttp_settings_t* settings)
    void llhttp_settings_init(llhttp_settings_t* settings)
    llhttp_errno_t llhttp_execute(llhttp_t* parser, const char* data, size_t len)
    void llhttp_resume_after_upgrade(llhttp_t* parser)
    const char* llhttp_method_name(uint8_t method)


MAX_HEADER = 64 * 1024  # one message head, or one chunked trailer block
MAX_LINE = 4096  # one chunk-size line with its extensions
MAX_QUEUE = 100  # requests waiting for their response
MAX_ITEMS = 100  # cookies per header, query parameters per URL
SNIFF = 512  # body bytes kept for content sniffing (as Go's http.DetectContentType)

cdef enum:  # the same, as C constants
    _MAX_HEADER = 64 * 1024
    _MAX_LINE = 4096
    _MAX_QUEUE = 100
    _SNIFF = 512
    _RECORD_ROOM = 40  # keys a transaction's record may end with (HTTP has 32 fields)

# Direction states.
cdef enum:
    _IDLE, _HEAD, _LEN, _SIZE, _DATA, _CRLF, _TRAILER, _CLOSE, _PAUSE

cdef inline bint _in_body(int st) noexcept nogil:
    return st == _LEN or st == _DATA or st == _CLOSE


cdef inline bint _body_takes(_Dir d, uint64_t n) noexcept:
    """Whether the next n bytes of d are body bytes only (a Content-Length or
    close-delimited body, or a chunk's data, that they do not run past)."""
    return _in_body(d.state) and not d.buf and (d.state == _CLOSE or n <= d.remaining)


# llhttp's settings as httptools set them for a protocol object with on_url and
# on_headers_complete only (what the Python analyzer gave it); shared by every parser.
cdef llhttp_settings_t _SETTINGS


cdef int _on_url(llhttp_t* p, const char* at, size_t length) noexcept:
    cdef _Dir d = <_Dir>p.data
    try:
        d.head.url += at[:length]  # called more than once when the head came in pieces
    except BaseException:  # only MemoryError: llhttp reports a callback error
        return -1
    return 0


cdef int _on_headers_complete(llhttp_t* p) noexcept:
    cdef _Dir d = <_Dir>p.data
    d.head.complete = True
    return 1 if p.upgrade else 0  # as httptools: no body after an upgrade


llhttp_settings_init(&_SETTINGS)
_SETTINGS.on_url = _on_url
_SETTINGS.on_headers_complete = _on_headers_complete


cdef inline llhttp_t* _p(_Dir d) noexcept:
    return <llhttp_t*>d.parser


cdef inline Reader _view(object buf):
    """The bytes of buf (bytes or bytearray) as a bounded reader. Valid until buf is
    resized: taken again after anything that may clear a buffer (`_stop`)."""
    if PyBytes_CheckExact(buf):
        return reader(<const uint8_t*>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf))
    return reader(<const uint8_t*>PyByteArray_AS_STRING(buf), PyByteArray_GET_SIZE(buf))


cdef inline Reader _window(const Reader* r, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Bytes [start, stop) of r (clipped to it) as a reader of their own."""
    if stop > r.size:
        stop = r.size
    if start < 0 or start >= stop:
        return reader(r.data, 0)  # empty, but never NULL: `here` adds to it (UBSan)
    return reader(r.data + start, stop - start)


cdef inline Py_ssize_t _find(const Reader* r, uint8_t byte, Py_ssize_t start,
                             Py_ssize_t stop) noexcept nogil:
    """Position in r of the first `byte` in [start, stop); -1 if none. memchr over the
    window's `left` bytes (as `find`, vectorised: heads are searched several times)."""
    cdef Reader w = _window(r, start, stop)
    if left(&w) == 0:
        return -1  # memchr wants a non-NULL pointer even for no bytes
    cdef const void* at = memchr(here(&w), byte, <size_t>left(&w))
    return -1 if at == NULL else start + (<const uint8_t*>at - here(&w))


# Bytes given to the end-of-head search, in all: the tests' measure of its work (a
# search per segment over all a head holds so far would be quadratic; see `searched`).
cdef unsigned long long _searched = 0


def searched() -> int:
    """Bytes the end-of-head search has been given since the module was loaded."""
    return _searched


cdef Py_ssize_t _empty_line(const Reader* r, Py_ssize_t start) noexcept nogil:
    """The position after the empty line that ends a head (CRLF CRLF, or with bare
    LFs: the first LF followed by [CR] LF), searching from start; -1 when none yet."""
    global _searched
    if r.size > start:
        _searched += <unsigned long long>(r.size - start)
    cdef Py_ssize_t i = _find(r, 10, start, r.size)
    cdef Py_ssize_t k
    while i >= 0:
        k = i + 1 - r.pos  # peek is relative to the position (0 here)
        if peek(r, k) == 13 and peek(r, k + 1) == 10:
            return i + 3
        if peek(r, k) == 10:
            return i + 2
        i = _find(r, 10, i + 1, r.size)
    return -1


def _head_end(buf: bytes | bytearray, start: int) -> int:
    """`_empty_line` from Python (for tests)."""
    cdef Reader r = _view(buf)
    return _empty_line(&r, start if start > 0 else 0)


cdef bint _bare_lf(const Reader* r, bint after_cr) noexcept nogil:
    """Whether r holds an LF not preceded by CR (after_cr: the byte before r is a CR)."""
    cdef Py_ssize_t i = _find(r, 10, 0, r.size)
    while i >= 0:
        if (i == 0 and not after_cr) or (i > 0 and peek(r, i - 1) != 13):
            return True
        i = _find(r, 10, i + 1, r.size)
    return False


cdef bytes _crlf(const Reader* r, bint after_cr):
    """r's bytes with bare LF line ends made CRLF (after_cr: the byte before r is a CR).
    RFC 9112 2.2 lets a recipient accept them (tshark, zeek and common servers do);
    llhttp wants CRLF, so it is given CRLF."""
    cdef bytearray out = bytearray()
    cdef Py_ssize_t i = 0, nl
    cdef Reader w
    while i < r.size:
        nl = _find(r, 10, i, r.size)
        if nl < 0:
            nl = r.size
        w = _window(r, i, nl)
        out += here(&w)[:left(&w)]
        if nl < r.size:
            if (nl == 0 and not after_cr) or (nl > 0 and peek(r, nl - 1) != 13):
                out += b"\r\n"
            else:
                out += b"\n"
        i = nl + 1
    return bytes(out)


cdef int64_t _chunk_size(const Reader* line) noexcept nogil:
    """The size in a chunk-size line (without its LF), or -1 when it is malformed:
    1 to 15 hex digits, then optionally ';' and extensions, then optionally one CR."""
    cdef Py_ssize_t n = line.size, i
    cdef int64_t size = 0
    cdef uint8_t c
    if n and peek(line, n - 1) == 13:
        n -= 1
    cdef Py_ssize_t semi = _find(line, 59, 0, n)
    if semi >= 0:
        n = semi
    if n == 0 or n > 15:
        return -1
    for i in range(n):
        c = peek(line, i)
        if 48 <= c <= 57:
            size = size * 16 + (c - 48)
        elif 97 <= c <= 102:
            size = size * 16 + (c - 87)
        elif 65 <= c <= 70:
            size = size * 16 + (c - 55)
        else:
            return -1
    return size


cdef inline str _s(const Reader* r, Py_ssize_t start, Py_ssize_t stop):
    cdef Reader w = _window(r, start, stop)
    return PyUnicode_DecodeLatin1(<const char*>here(&w), left(&w), NULL)


# Header names and short values repeat across a capture's heads ("Host", "Content-Type",
# "keep-alive", a server's name): each was a str made for its record and freed with it,
# and a detailed HTTP record holds ~35 of them. They are kept here by their bytes, one
# per slot of a fixed table (a new text takes its slot over), so the memory is bounded
# whatever the traffic.
cdef enum:
    _SLOTS = 1024  # a power of two
    _TEXT_MAX = 96  # longer texts are made each time


cdef struct _Cached:
    PyObject* s  # a reference the table holds, or NULL
    Py_ssize_t n
    uint8_t b[_TEXT_MAX]


cdef _Cached _CACHE[_SLOTS]


cdef str _cached(const uint8_t* p, Py_ssize_t n):
    """p[:n] decoded as Latin-1, the same str as the last time these bytes came if
    their slot still holds them."""
    cdef uint32_t h = 2166136261  # FNV-1a
    cdef Py_ssize_t i
    cdef _Cached* c
    if n > _TEXT_MAX:
        return PyUnicode_DecodeLatin1(<const char*>p, n, NULL)
    for i in range(n):
        h = (h ^ p[i]) * 16777619
    c = &_CACHE[h & (_SLOTS - 1)]
    if c.s != NULL and c.n == n and (n == 0 or memcmp(c.b, p, n) == 0):
        return <str>c.s
    text = PyUnicode_DecodeLatin1(<const char*>p, n, NULL)
    Py_XDECREF(c.s)
    Py_INCREF(text)
    c.s = <PyObject*>text
    c.n = n
    if n:  # p may be NULL for no bytes
        memcpy(c.b, p, n)
    return text


cdef inline str _text(const Reader* r, Py_ssize_t start, Py_ssize_t stop):
    """`_s`, through the cache."""
    cdef Reader w = _window(r, start, stop)
    return _cached(here(&w), left(&w))


# The field lines of a head that llhttp accepted (it is strict: every field line follows
# a CRLF, the start line holds none) read as the regex r"\r\n([^:\r\n]+):[ \t]*([^\r]*)"
# did: after each CRLF a name without ':', CR or LF, a ':', blanks (skipped, as llhttp
# does) and a value up to the next CR (trailing blanks kept, as llhttp reports it).
cdef bint _field(const Reader* r, Py_ssize_t crlf, Py_ssize_t* name_end,
                 Py_ssize_t* value, Py_ssize_t* value_end) noexcept nogil:
    cdef Py_ssize_t i = crlf + 2, n = r.size
    cdef uint8_t c
    while i < n:
        c = peek(r, i)
        if c == 58 or c == 13 or c == 10:
            break
        i += 1
    if i == crlf + 2 or i >= n or peek(r, i) != 58:
        return False
    name_end[0] = i
    i += 1
    while i < n and (peek(r, i) == 32 or peek(r, i) == 9):
        i += 1
    value[0] = i
    cdef Py_ssize_t cr = _find(r, 13, i, n)
    value_end[0] = n if cr < 0 else cr
    return True


cdef str _lower(const Reader* r, Py_ssize_t start, Py_ssize_t stop, str name):
    """The lower-case spelling of the header name r[start:stop] (`name`, decoded)."""
    cdef char low[64]
    cdef Py_ssize_t n = stop - start, i
    cdef uint8_t c
    cdef bint upper = False
    if n > 64:
        return name.lower()
    for i in range(n):
        c = peek(r, start + i)
        if c >= 128:
            return name.lower()  # not a token: llhttp refuses these; str.lower anyway
        if 65 <= c <= 90:
            upper = True
            c += 32
        low[i] = <char>c
    return _cached(<const uint8_t*>low, n) if upper else name


cdef tuple _header_map(const Reader* r):
    """The header fields of a complete, accepted head with CRLF line ends: the header
    map entries (first spelling, repeated values joined with ", " after stripping
    blanks), the same values keyed by lower-case name, and the Cookie and Set-Cookie
    values as sent (for detail=True)."""
    cdef list entries = [], cookie = [], set_cookie = []
    cdef dict h = {}, first = {}
    cdef dict entry
    cdef Py_ssize_t i = 0, name_end = 0, value = 0, value_end = 0, e
    while True:
        i = _find(r, 13, i, r.size)
        if i < 0:
            return entries, h, cookie, set_cookie
        if peek(r, i + 1) == 10 and _field(r, i, &name_end, &value, &value_end):
            key = _text(r, i + 2, name_end)
            low = _lower(r, i + 2, name_end, key)
            e = value_end
            while e > value and (peek(r, e - 1) == 32 or peek(r, e - 1) == 9):
                e -= 1
            val = _text(r, value, e)
            if low == "cookie":
                cookie.append(_s(r, value, value_end))
            elif low == "set-cookie":
                set_cookie.append(_s(r, value, value_end))
            entry = first.get(low)
            if entry is None:
                entry = {"Key": key, "Value": val}
                first[low] = entry
                entries.append(entry)
                h[low] = val
            else:
                val = entry["Value"] + ", " + val
                entry["Value"] = val
                h[low] = val
            i = value_end
        else:
            i += 1


# The headers a record or the framing reads (the rest only matter with detail=True),
# by lower-case name.
cdef tuple _USED = ("host", "user-agent", "referer", "content-type", "content-encoding",
                    "server", "content-length", "transfer-encoding")
cdef tuple _USED_B = tuple(name.encode() for name in _USED)


cdef Py_ssize_t _USED_LEN[8]
cdef const uint8_t* _USED_P[8]  # their bytes (the tuple keeps them)
for _k in range(8):
    _USED_LEN[_k] = len(_USED_B[_k])
    _USED_P[_k] = <const uint8_t*>PyBytes_AS_STRING(<bytes>_USED_B[_k])


cdef inline bint _named(const Reader* r, Py_ssize_t start, int k) noexcept nogil:
    """Whether r[start:] begins with `_USED[k]` (ASCII case-insensitive) and a ':'."""
    cdef Py_ssize_t m = _USED_LEN[k], i
    cdef uint8_t c
    for i in range(m):
        c = peek(r, start + i)  # 0 past the end: in no name
        if 65 <= c <= 90:
            c += 32
        if c != _USED_P[k][i]:
            return False
    return peek(r, start + m) == 58


cdef int _used_at(const Reader* r, Py_ssize_t start) noexcept nogil:
    """Which `_USED` header the field line at `start` names (the name up to its ':',
    ASCII case-insensitive), or -1. The name's first letter picks the candidates, so
    a line of another header is passed over after a byte or a few."""
    cdef uint8_t c = peek(r, start) | 0x20  # lower case, for letters
    cdef int k
    if c == 99:  # 'c': content-type, content-encoding, content-length
        return (3 if _named(r, start, 3) else 4 if _named(r, start, 4)
                else 6 if _named(r, start, 6) else -1)
    k = (0 if c == 104 else 1 if c == 117 else 2 if c == 114 else 5 if c == 115  # h u r s
         else 7 if c == 116 else -1)  # t
    return k if k >= 0 and _named(r, start, k) else -1


cdef dict _used_headers(const Reader* r):
    """`_header_map(r)[1]` restricted to the `_USED` headers, for detail=False: only
    they are decoded. Each field line (after a CRLF) is matched by `_used_at` at its
    start; any other line is passed over to its CR, as `_field` would have read it (a
    name holds no CR, nor do the ':' and blanks after it)."""
    cdef dict h = {}
    cdef Py_ssize_t i = 0, value, value_end, e
    cdef int k
    while True:
        i = _find(r, 13, i, r.size)
        if i < 0:
            return h
        k = _used_at(r, i + 2) if peek(r, i + 1) == 10 else -1
        if k < 0:
            i += 1
            continue
        value = i + 2 + _USED_LEN[k] + 1
        while peek(r, value) == 32 or peek(r, value) == 9:
            value += 1
        value_end = _find(r, 13, value, r.size)
        if value_end < 0:
            value_end = r.size
        e = value_end
        while e > value and (peek(r, e - 1) == 32 or peek(r, e - 1) == 9):
            e -= 1
        key = _USED[k]
        val = _text(r, value, e)
        prev = h.get(key)
        h[key] = val if prev is None else prev + ", " + val
        i = value_end


cdef list _cookies(list values):
    """Cookie headers (their values): "a=b; c=d" pairs."""
    cdef list out = []
    for value in values:
        for part in value.split(";", MAX_ITEMS)[:MAX_ITEMS]:
            key, _, val = part.strip(" \t").partition("=")
            if key and len(out) < MAX_ITEMS:
                out.append({"Name": key.strip(" \t"), "Value": val.strip(" \t")})
    return out


_SAMESITE = {"lax": 2, "strict": 3, "none": 4}  # Go's http.SameSite; other values: 1


cdef dict _set_cookie(str text):
    """One Set-Cookie header (one cookie each: its Expires may hold a comma)."""
    parts = text.split(";", MAX_ITEMS)
    key, sep, val = parts[0].partition("=")
    if not sep or not key.strip(" \t"):
        return None  # as Go's net/http: a cookie needs a name and '='
    cdef dict c = {"Name": key.strip(" \t"), "Value": val.strip(" \t")}
    for attr in parts[1:MAX_ITEMS]:
        k, _, v = attr.strip(" \t").partition("=")
        k, v = k.strip(" \t").lower(), v.strip(" \t")
        if k == "path":
            c["Path"] = v
        elif k == "domain":
            c["Domain"] = v
        elif k == "expires":
            # email.utils (and the email package) serves only a cookie's Expires:
            # imported at first use, not when netcap starts.
            from email.utils import parsedate_to_datetime
            try:
                when = int(parsedate_to_datetime(v).timestamp())
            except (TypeError, ValueError, OverflowError, IndexError):
                continue
            if when > 0:
                c["Expires"] = when
        elif k == "max-age":
            digits = v[1:] if v.startswith("-") else v
            if digits.isascii() and digits.isdigit() and len(digits) <= 9:
                c["MaxAge"] = int(v)
        elif k == "secure":
            c["Secure"] = True
        elif k == "httponly":
            c["HttpOnly"] = True
        elif k == "samesite":
            c["SameSite"] = _SAMESITE.get(v.lower(), 1)
    return c


cdef list _parameters(str url):
    """Query parameters of a request target, repeated names joined with ", "."""
    query = url.partition("?")[2].partition("#")[0]
    if not query:
        return []
    # Bounded before parsing: parse_qsl's own limit raises instead of truncating.
    query = "&".join(query.split("&", MAX_ITEMS)[:MAX_ITEMS])
    from urllib.parse import parse_qsl  # on first use: the stream stage cimports this
    # module, and `net capture` has no other use for urllib
    cdef dict out = {}
    for key, val in parse_qsl(query, keep_blank_values=True, errors="replace"):
        entry = out.get(key)
        if entry is None:
            out[key] = {"Key": key, "Value": val}
        else:
            entry["Value"] += ", " + val
    return list(out.values())


# --- content sniffing: the signatures of Go's http.DetectContentType (WHATWG MIME
# sniffing), the common ones.
_HTML_TAGS = (b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV",
              b"<FONT", b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR",
              b"<P", b"<!--")
_MAGIC = ((b"%PDF-", "application/pdf"), (b"%!PS-Adobe-", "application/postscript"),
          (b"\xfe\xff", "text/plain; charset=utf-16be"),
          (b"\xff\xfe", "text/plain; charset=utf-16le"),
          (b"\xef\xbb\xbf", "text/plain; charset=utf-8"),
          (b"\x00\x00\x01\x00", "image/x-icon"), (b"\x00\x00\x02\x00", "image/x-icon"),
          (b"BM", "image/bmp"), (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"),
          (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
          (b"OggS\x00", "application/ogg"), (b"ID3", "audio/mpeg"),
          (b"\x1f\x8b\x08", "application/x-gzip"), (b"PK\x03\x04", "application/zip"),
          (b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
          (b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
          (b"\x00asm", "application/wasm"), (b"wOFF", "font/woff"), (b"wOF2", "font/woff2"))
_MAGIC_PREFIXES = tuple(magic for magic, _ in _MAGIC)


cdef inline bint _binary(uint8_t c) noexcept nogil:
    return c <= 0x08 or c == 0x0B or 0x0E <= c <= 0x1A or 0x1C <= c <= 0x1F


def detect_content_type(data: bytes) -> str:
    """The MIME type of a body from its first bytes, as Go's http.DetectContentType."""
    data = bytes(data[:_SNIFF])
    text = data.lstrip(b"\t\n\x0c\r ")
    upper = text[:16].upper()
    if upper.startswith(_HTML_TAGS):  # one C call rules out most bodies
        for tag in _HTML_TAGS:  # in order: "<B" is tried before "<BODY"
            if upper.startswith(tag) and len(text) > len(tag) and text[len(tag)] in b" >":
                return "text/html; charset=utf-8"
    if text.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    if data.startswith(_MAGIC_PREFIXES):
        for magic, kind in _MAGIC:
            if data.startswith(magic):
                return kind
    if data[:4] == b"RIFF" and data[8:14] == b"WEBPVP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wave"
    cdef Reader r = _view(data)
    cdef Py_ssize_t i
    for i in range(r.size):
        if _binary(peek(&r, i)):
            return "application/octet-stream"
    return "text/plain; charset=utf-8"


@cython.freelist(64)
cdef class _Txn:
    pass


cdef _Txn _txn(dict rec, str method, int64_t start):
    cdef _Txn t = _Txn.__new__(_Txn)
    t.rec = rec
    t.method = method
    t.start = start
    return t


@cython.freelist(64)
cdef class _Head:
    pass


cdef _Head _head():
    """A new head (no __cinit__: Cython's no-argument constructor wrapper does pointer
    arithmetic on a NULL argument array, which UBSan reports)."""
    cdef _Head h = _Head.__new__(_Head)
    h.url = b""
    h.raw = b""
    return h


@cython.freelist(128)
cdef class _Dir:

    def __cinit__(self, bint client):
        self.parser = PyMem_Malloc(sizeof(llhttp_t))
        if self.parser is NULL:
            raise MemoryError()
        self.client = client
        self.buf = bytearray()
        self.state = _IDLE
        self.head = _head()
        self.sniff = bytearray()
        self.sniff_open = True

    def __dealloc__(self):
        PyMem_Free(self.parser)


cdef inline int _put(dict rec, str field, dict h, str key) except -1:
    """rec[field] = h[key] when the header was sent."""
    v = h.get(key)
    if v is not None:
        rec[field] = v
    return 0


cdef class HttpConnection:
    """One TCP connection's HTTP/1.x transactions (see `netcap.analyzers.http`)."""

    def __init__(self, detail: bool = True) -> None:
        self._setup(detail)

    cdef int _setup(self, bint detail) except -1:
        # detail=False: records for counting only (no header maps, cookies or query
        # parameters: a third of the work on header-heavy traffic).
        self.detail = detail
        self._c = _Dir(True)
        self._s = _Dir(False)
        self._waiting = deque()
        self._order = deque()
        self._out = []
        self._resume = False
        self.done = False
        self.violation = None
        self.recognised = False
        return 0

    # --- public API

    cpdef list client(self, object data, int64_t ts):
        return self._feed(self._c, data, ts)

    cpdef list server(self, object data, int64_t ts):
        return self._feed(self._s, data, ts)

    cpdef list gap(self, bint from_client, int64_t nbytes, object ts=None):
        """`nbytes` of this direction are not here: missing, or (with `ts`, the time
        of the segment that ended them) on the wire but not shipped, as body bytes no
        parser needs (see `reassembly.streams.segments`)."""
        cdef _Dir d = self._c if from_client else self._s
        if ts is not None:
            d.ts = ts
        return self._missing(d, nbytes)

    cdef list skipped(self, bint from_client, int64_t nbytes, int64_t ts):
        """`gap(from_client, nbytes, ts)` without boxing the time: body bytes on the
        wire, not shipped (or counted by the stream stage, see `counts`)."""
        cdef _Dir d = self._c if from_client else self._s
        d.ts = ts
        return self._missing(d, nbytes)

    cdef list _missing(self, _Dir d, int64_t nbytes):
        if self.done or nbytes <= 0:
            return self._take()
        if _body_takes(d, <uint64_t>nbytes):
            # The framing survives: count the missing bytes as body, never as data.
            d.body_len += nbytes
            d.sniff_open = False
            if d.state != _CLOSE:
                d.remaining -= <uint64_t>nbytes
                if d.remaining == 0:
                    self._body_end(d)
        else:
            self._stop("gap")
        return self._take()

    cpdef list close(self, int64_t ts):
        cdef _Dir d
        cdef bint busy = False
        if not self.done:
            if self._s.state == _CLOSE:
                self._complete(self._s)  # a response delimited by the end of the connection
            for d in (self._c, self._s):
                if ((d.state != _IDLE and d.state != _PAUSE)
                        or (d.buf and d.state == _IDLE)):
                    busy = True
            self._stop("truncated" if busy else None)
        return self._take()

    cdef bint counts(self, bint from_client, Py_ssize_t n) noexcept:
        """Whether the next n bytes from this side are body bytes that would only be
        counted (`_body_takes`, none of them sniffed): then `skipped` does what
        `client`/`server` would with them, and the stream stage passes their count
        instead of a copy."""
        cdef _Dir d = self._c if from_client else self._s
        return (not self.done and not self._resume and not d.sniff_open
                and _body_takes(d, <uint64_t>n))

    # --- framing

    cdef list _feed(self, _Dir d, object data, int64_t ts):
        if self.done or not data:
            return self._take()
        if not PyBytes_CheckExact(data):
            data = bytes(data)
        d.ts = ts
        cdef int st = d.state
        cdef Py_ssize_t n, k
        if _in_body(st) and not self._resume:
            # Fast path, most chunks: body bytes that do not reach the end of the body
            # (or of the chunk's data). Only counted; just the first SNIFF bytes are
            # kept. In a body state d.buf is always empty (_run consumes every body byte).
            n = PyBytes_GET_SIZE(data)
            if st == _CLOSE or <uint64_t>n < d.remaining:
                d.body_len += n
                if d.sniff_open:
                    k = _SNIFF - PyByteArray_GET_SIZE(d.sniff)
                    d.sniff += data[:k] if k < n else data
                    d.sniff_open = PyByteArray_GET_SIZE(d.sniff) < _SNIFF
                if st != _CLOSE:
                    d.remaining -= <uint64_t>n
                return []  # nothing completed (and _out is empty between calls)
        if d.buf:  # an incomplete head or line waits: the new bytes go after it
            d.new_from = PyByteArray_GET_SIZE(d.buf)
            d.buf += data
            self._run(d, d.buf)
        else:  # read data in place: only an unconsumed rest is copied into d.buf
            d.buf_ts, d.new_from = ts, 0
            self._run(d, data)
        if self._resume and not self.done:
            self._resume = False
            self._c.new_from = 0
            self._run(self._c, self._c.buf)
        return self._take()

    cdef list _take(self):
        if not self._out:
            return []
        out, self._out = self._out, []
        return out

    cdef int _bad(self, _Dir d) except -1:
        self._stop("bad_request" if d.client else "bad_response")
        return 0

    cdef int _run(self, _Dir d, object buf) except -1:
        """Consume as much of buf (d.buf, or the new chunk when d.buf was empty) as can
        be framed. Positions only move forward in buf: the consumed bytes are dropped
        once at the end, never per message or chunk."""
        cdef Reader r = _view(buf)
        cdef Py_ssize_t pos = 0, n = r.size, take, nl, end, k
        cdef int64_t size
        cdef int st
        cdef uint8_t c
        cdef Reader line
        while pos < n and not self.done:
            r = _view(buf)  # a previous step may have resized nothing, but be sure
            st = d.state
            if _in_body(st):
                take = n - pos
                if st != _CLOSE and d.remaining < <uint64_t>take:
                    take = <Py_ssize_t>d.remaining
                d.body_len += take
                if d.sniff_open:
                    k = _SNIFF - PyByteArray_GET_SIZE(d.sniff)
                    if k > take:
                        k = take
                    d.sniff += buf[pos:pos + k]
                    d.sniff_open = PyByteArray_GET_SIZE(d.sniff) < _SNIFF
                pos += take
                if st != _CLOSE:
                    d.remaining -= <uint64_t>take
                    if d.remaining == 0:
                        self._body_end(d)
            elif st == _IDLE:
                c = peek(&r, pos)
                if c == 13 or c == 10:
                    pos += 1  # empty lines before a message are ignored (RFC 9112 2.2)
                    continue
                if not d.client and not self._waiting:
                    self._stop("no_request")
                    break
                d.state, d.fed, d.line_checked = _HEAD, 0, False
                d.head = _head()
                llhttp_init(_p(d), HTTP_REQUEST if d.client else HTTP_RESPONSE,
                            &_SETTINGS)
                _p(d).data = <void*>d
                d.start_ts = d.buf_ts if pos < d.new_from else d.ts
            elif st == _HEAD:
                end = self._head(d, buf, pos)
                if end < 0:
                    break  # the head is incomplete: keep it (from pos) in buf
                pos = end
            elif st == _SIZE:
                nl = _find(&r, 10, pos + d.scanned, pos + _MAX_LINE)
                if nl < 0:
                    if n - pos >= _MAX_LINE:
                        self._stop("too_long")
                    d.scanned = n - pos
                    break
                d.scanned = 0
                line = _window(&r, pos, nl)
                size = _chunk_size(&line)
                if size < 0:
                    self._bad(d)
                    break
                pos = nl + 1
                if size:
                    d.state, d.remaining = _DATA, <uint64_t>size
                else:
                    d.state = _TRAILER
            elif st == _CRLF:  # the line end after a chunk's data
                c = peek(&r, pos)
                if c == 10:
                    pos += 1
                elif c != 13:
                    self._bad(d)
                    break
                elif n - pos < 2:
                    break
                elif peek(&r, pos + 1) != 10:
                    self._bad(d)
                    break
                else:
                    pos += 2
                d.state = _SIZE
            elif st == _TRAILER:
                # After the last chunk: an empty line, or trailer fields (rare, not
                # recorded) and then one.
                c = peek(&r, pos)
                if c == 10:
                    end = pos + 1
                elif c == 13:
                    if n - pos < 2:
                        break
                    if peek(&r, pos + 1) != 10:
                        self._bad(d)
                        break
                    end = pos + 2
                else:
                    end = _empty_line(&r, pos + d.scanned - 2 if d.scanned > 2 else pos)
                    if end < 0:
                        if n - pos >= _MAX_HEADER:
                            self._stop("too_long")
                        d.scanned = n - pos
                        break
                d.scanned = 0
                pos = end
                self._complete(d)
            else:  # _PAUSE: bytes after CONNECT / Upgrade wait for the answer
                if n - pos > _MAX_HEADER:
                    self._stop("too_long")
                break
        if self.done:
            del d.buf[:]
        elif buf is d.buf:
            del d.buf[:pos]
            d.buf_ts = d.ts if pos >= d.new_from else d.buf_ts
        elif pos < n:
            d.buf += buf[pos:]  # d.buf was empty and d.buf_ts is this chunk's time
        return 0

    cdef Py_ssize_t _head(self, _Dir d, object buf, Py_ssize_t pos) except -2:
        """Give the new bytes of the head at pos in buf to the parser; the position after
        the head once it is complete, else -1."""
        cdef Reader r = _view(buf)
        cdef Py_ssize_t stop = _empty_line(&r, pos + d.fed - 2 if d.fed > 2 else pos)
        cdef bint complete = stop >= 0
        cdef Py_ssize_t start = pos + d.fed
        cdef Reader piece, whole
        cdef object fed = None  # the piece as llhttp was given it, when converted
        cdef llhttp_errno_t err
        if not complete:
            stop = r.size
        if stop - pos > _MAX_HEADER:
            self._stop("too_long")
            return -1
        if stop > start:
            piece = _window(&r, start, stop)
            if _bare_lf(&piece, start > pos and peek(&r, start - 1) == 13):
                fed = _crlf(&piece, start > pos and peek(&r, start - 1) == 13)
                piece = _view(fed)
            err = llhttp_execute(_p(d), <const char*>here(&piece), <size_t>left(&piece))
            if _p(d).upgrade == 1 and err == HPE_PAUSED_UPGRADE:
                llhttp_resume_after_upgrade(_p(d))  # CONNECT or Upgrade: head fine
            elif err != HPE_OK:
                # A 101 without an Upgrade header pauses llhttp too: that head was fine.
                if not (d.head.complete and err == HPE_PAUSED_UPGRADE):
                    self._bad(d)
                    return -1
            d.fed = stop - pos
        if not complete:
            if d.client and not d.line_checked:
                self._http09(d, buf, pos, start)
            return -1
        if not d.head.complete:  # llhttp completes every head
            self._bad(d)
            return -1
        # The head as llhttp read it, for its header fields (start == pos: it came in one
        # piece, which is then the whole head).
        if start == pos and fed is not None:
            d.head.raw = fed
        else:
            whole = _window(&r, pos, stop)
            d.head.raw = (_crlf(&whole, False) if start != pos and _bare_lf(&whole, False)
                          else here(&whole)[:left(&whole)])
        if d.client:
            self._request(d)
        else:
            self._response(d)
        return stop

    cdef int _http09(self, _Dir d, object buf, Py_ssize_t pos, Py_ssize_t new) except -1:
        """The head at pos is incomplete: is its request line (when complete) one of
        HTTP/0.9? Only the bytes new since the last call (from `new`) are searched."""
        cdef Reader r = _view(buf)
        cdef Py_ssize_t nl = _find(&r, 10, new, pos + d.fed), e, i, spaces = 0
        if nl < 0:
            return 0
        d.line_checked = True
        e = nl
        while e > pos and peek(&r, e - 1) == 13:
            e -= 1
        for i in range(pos, e):
            if peek(&r, i) == 32:
                spaces += 1
        if spaces != 1 or not d.head.url:
            return 0  # a request line with a version: go on reading the head
        self.recognised = True
        url = d.head.url.decode("latin-1")
        cdef dict rec = {"Timestamp": d.start_ts, "Proto": "HTTP/0.9",
                         "Method": _method(_p(d)), "URL": url,
                         "StatusCode": 0, "ReqContentLength": 0, "ResContentLength": 0}
        params = _parameters(url) if self.detail else None
        if params:
            rec["Parameters"] = params
        self._order.append(_txn(rec, rec["Method"], d.start_ts))
        self._stop("http09")
        return 0

    cpdef _request(self, _Dir d):
        cdef Reader raw = _view(d.head.raw)
        cdef list entries, cookie
        cdef dict h
        self.recognised = True
        method = _method(_p(d))
        url = d.head.url.decode("latin-1")
        if self.detail:
            entries, h, cookie, _ = _header_map(&raw)
        else:
            entries, h, cookie = [], _used_headers(&raw), []
        version = _version(_p(d))
        cdef dict rec = _PyDict_NewPresized(_RECORD_ROOM)
        rec["Timestamp"] = d.start_ts
        rec["Proto"] = version
        rec["Method"] = method
        rec["URL"] = url
        rec["StatusCode"] = 0
        rec["ReqContentLength"] = 0
        rec["ResContentLength"] = 0
        _put(rec, "Host", h, "host")
        _put(rec, "UserAgent", h, "user-agent")
        _put(rec, "Referer", h, "referer")
        _put(rec, "ContentType", h, "content-type")
        _put(rec, "ReqContentEncoding", h, "content-encoding")
        if self.detail:
            cookies = _cookies(cookie)
            if cookies:
                rec["ReqCookies"] = cookies
            if entries:
                rec["RequestHeader"] = entries
            params = _parameters(url)
            if params:
                rec["Parameters"] = params
        if len(self._waiting) >= _MAX_QUEUE:
            self._stop("too_long")
            return
        cdef _Txn txn = _txn(rec, method, d.start_ts)
        txn.tunnel_wait = method == "CONNECT" or _p(d).upgrade
        self._waiting.append(txn)
        self._order.append(txn)
        d.txn = txn
        self._frame(d, h, True)

    cdef int _response(self, _Dir d) except -1:
        if not self._waiting:
            self._bad(d)  # its head is read only while a request waits (see _run)
            return 0
        self.recognised = True
        cdef int status = _p(d).status_code
        cdef _Txn txn = self._waiting[0]
        if 100 <= status < 200 and status != 101:
            d.state = _IDLE  # interim: the final response is still to come
            return 0
        cdef Reader raw = _view(d.head.raw)
        cdef list entries, set_cookie
        cdef dict h
        if self.detail:
            entries, h, _, set_cookie = _header_map(&raw)
        else:
            entries, h, set_cookie = [], _used_headers(&raw), []
        cdef dict rec = txn.rec
        rec["StatusCode"] = status
        rec["FirstByteAfter"] = d.start_ts - txn.start
        _put(rec, "ServerName", h, "server")
        _put(rec, "ResContentType", h, "content-type")
        _put(rec, "ResContentEncoding", h, "content-encoding")
        cdef list cookies = []
        for value in set_cookie:
            if len(cookies) < MAX_ITEMS:
                c = _set_cookie(value)
                if c is not None:
                    cookies.append(c)
        if cookies:
            rec["ResCookies"] = cookies
        if entries and self.detail:
            rec["ResponseHeader"] = entries
        d.txn = txn
        if status == 101 or (txn.method == "CONNECT" and 200 <= status < 300):
            # A tunnel: what follows is not HTTP. Emit and detach without complaint.
            self._complete(d)
            self._stop(None)
            return 0
        cdef bint no_body = txn.method == "HEAD" or status == 204 or status == 304
        self._frame(d, h, not no_body)
        return 0

    cdef int _frame(self, _Dir d, dict h, bint has_body) except -1:
        """Choose how the body after a complete head ends (RFC 9112 6.3)."""
        # Sniffing only for complete records (counting reads no sniffed type).
        d.body_len = 0
        if d.sniff:
            d.sniff = bytearray()
        d.sniff_open = self.detail
        te, cl = h.get("transfer-encoding"), h.get("content-length")
        if not has_body:
            self._complete(d)
        elif te is not None:
            if te.rpartition(",")[2].strip(" \t").lower() == "chunked":
                d.state = _SIZE
            elif d.client:  # llhttp refuses these requests
                self._bad(d)
            else:
                d.state = _CLOSE
        elif cl is not None:
            length = int(cl) if cl.isascii() and cl.isdigit() else -1
            if not 0 <= length <= 0xFFFFFFFFFFFFFFFF:
                self._bad(d)  # llhttp checks both
            elif length:
                d.state, d.remaining = _LEN, length
            else:
                self._complete(d)
        elif d.client:
            self._complete(d)
        else:
            d.state = _CLOSE
        return 0

    cdef int _body_end(self, _Dir d) except -1:
        if d.state == _LEN:
            self._complete(d)
        else:
            d.state = _CRLF
        return 0

    cdef int _complete(self, _Dir d) except -1:
        """The current message of d is complete."""
        cdef _Txn txn = d.txn
        if txn is None:  # set whenever a message is read
            self._bad(d)
            return 0
        d.state = _IDLE
        d.txn = None
        cdef dict rec = txn.rec
        if d.client:
            txn.req_done = True
            rec["ReqContentLength"] = d.body_len
            if d.sniff:
                rec["ContentTypeDetected"] = detect_content_type(bytes(d.sniff))
            if txn.tunnel_wait and not txn.res_done:
                d.state = _PAUSE
        else:
            self._waiting.popleft()
            txn.res_done = True
            rec["ResContentLength"] = d.body_len
            rec["DoneAfter"] = d.ts - txn.start
            if d.sniff:
                rec["ResContentTypeDetected"] = detect_content_type(bytes(d.sniff))
            if self._c.state == _PAUSE:
                self._c.state = _IDLE  # not a tunnel after all: read on
                self._resume = True
        d.body_len = 0
        if d.sniff:
            d.sniff = bytearray()
        cdef _Txn first
        while self._order:
            first = self._order[0]
            if not (first.req_done and first.res_done):
                break
            self._out.append(first.rec)
            self._order.popleft()
        return 0

    cdef int _stop(self, object violation) except -1:
        """Detach: emit every request seen, with what is known of it."""
        cdef _Dir d
        cdef _Txn t
        if self.done:
            return 0
        self.done = True
        self.violation = violation
        for d in (self._c, self._s):
            t = d.txn
            if t is not None and d.state != _HEAD:  # a body was being read
                t.rec["ReqContentLength" if d.client else "ResContentLength"] = d.body_len
            del d.buf[:]
            d.sniff = bytearray()
        for t in self._order:
            self._out.append(t.rec)
        self._order.clear()
        self._waiting.clear()
        return 0


cdef list _METHODS = [None] * 256  # llhttp's method names, decoded once each


cdef str _method(const llhttp_t* p):
    cdef str m = _METHODS[p.method]
    if m is None:
        m = _METHODS[p.method] = (<bytes>llhttp_method_name(p.method)).decode("latin-1")
    return m


cdef str _version(const llhttp_t* p):
    if p.http_major == 1 and p.http_minor == 1:
        return "HTTP/1.1"
    if p.http_major == 1 and p.http_minor == 0:
        return "HTTP/1.0"
    return f"HTTP/{p.http_major}.{p.http_minor}"


cdef HttpConnection http_connection(bint detail):
    """`HttpConnection(detail)` without a Python call: the stream stage makes one per
    HTTP connection."""
    cdef HttpConnection c = HttpConnection.__new__(HttpConnection)
    c._setup(detail)
    return c
