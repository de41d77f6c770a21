# cython: language_level=3
"""proto3 encoding of record tables, compiled: one C pass per table writes every row's
message straight into one output buffer, byte-identical to the protobuf library's
`SerializeToString()` (tests/test_encode.py proves it against the library,
tests/test_encode_compiled.py against the numpy encoder this replaced).

How a table is encoded (`_encode`):
1. plan: each present field of the record type becomes a `_Col`, the column as a typed
   buffer plus how it is written (`VARINT`, `BOOL`, `FIXED64`, `LEN`, `IP`/`MAC` text,
   or `RAW` bytes already encoded: sub-message tables, encoded first by the same
   function, and repeated fields);
2. measure: column by column, the bytes of every row's message body;
3. write: the row prefixes (`varint(len)`, or `tag varint(len)` for a sub-message), then,
   column by column in field-number order, each row's tag and value at that row's
   cursor, so every row's fields end up in field-number order.

proto3 rules kept: a field equal to its default (0, false, +0.0, empty) is not written;
-0.0 is (its bits are not zero); negative int32/int64 are 10-byte varints (64-bit two's
complement); repeated scalars are packed (one tag and length, then every varint);
repeated strings and bytes are one tag + length + bytes per element, empty ones too; a
sub-message is written whenever present, even if empty (tag + 0).

Records given as dicts (the stream analyzers') are written row by row by
`encode_records`, to the same bytes, without columns made of them first (see there).

Rendered fields hold raw address bytes; their text (Go's `net.IP.String()`,
`net.HardwareAddr.String()`) is written by `_ip_text` / `_mac_text` in place: the same
functions make `render_column` for everything else that shows addresses.

Bounds: the columns are trusted in-memory arrays, but a Ragged's lengths came from
decoded input, so every source range is checked against its buffer before it is read,
and every write against the output's size (sized exactly in step 2; a row whose cursor
does not end where step 2 said is an internal error, raised).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItemWithError
from cpython.long cimport PyLong_AsUnsignedLongLongMask
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memmove

import numpy as np

from .schema import Kind, Render
from .table import Children, Ragged, RecordTable, scalar_dtype
from .types import RECORDS

cdef enum:
    VARINT = 0  # tag + varint, skipped when 0
    BOOL = 1  # tag + 1, skipped when false
    FIXED64 = 2  # tag + 8 bytes little-endian (a double's bits), skipped when all zero
    LEN = 3  # tag + varint(len) + bytes of a Ragged row, skipped when empty
    RAW = 4  # the row's bytes as they are (already encoded elsewhere)
    IP = 5  # LEN of the row's raw address as IP text
    MAC = 6  # LEN of the row's raw address as MAC text

cdef enum:
    WIRE_VARINT = 0
    WIRE_FIXED64 = 1
    WIRE_LEN = 2

cdef const char* HEX = b"0123456789abcdef"


cdef class _Col:
    """One field of a table, ready for the C passes."""
    cdef int op
    cdef uint64_t tag  # the tag's varint value (number << 3 | wire type)
    cdef const uint64_t[::1] vals  # VARINT, FIXED64
    cdef const uint8_t[::1] flags  # BOOL
    cdef const uint8_t[::1] data  # LEN, RAW, IP, MAC: all rows' bytes back to back
    cdef const int64_t[::1] lens  # LEN, RAW, IP, MAC: bytes of each row in `data`
    cdef int64_t[::1] tlens  # IP, MAC: length of each row's text (measured)


# -- varints ------------------------------------------------------------------------------

cdef inline int _vlen(uint64_t v) noexcept nogil:
    cdef int n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline Py_ssize_t _put(uint8_t* buf, Py_ssize_t cap, Py_ssize_t p,
                            uint64_t v) noexcept nogil:
    """The varint of v at buf[p]: the position after it, or -1 if it would not fit
    (or p already is -1)."""
    if p < 0 or p + _vlen(v) > cap:
        return -1
    while v >= 0x80:
        buf[p] = <uint8_t>((v & 0x7F) | 0x80)
        v >>= 7
        p += 1
    buf[p] = <uint8_t>v
    return p + 1


cdef inline Py_ssize_t _copy(uint8_t* buf, Py_ssize_t cap, Py_ssize_t p,
                             const uint8_t* src, Py_ssize_t n) noexcept nogil:
    """n bytes of src (a range its caller checked) at buf[p], or -1 if they would not fit."""
    if p < 0 or n > cap - p:
        return -1
    if n:
        memcpy(buf + p, src, n)
    return p + n


# -- address text -------------------------------------------------------------------------

cdef inline Py_ssize_t _dec(uint8_t v, uint8_t* out, Py_ssize_t p) noexcept nogil:
    """Decimal text of one octet at out[p] (out NULL: just count)."""
    if v >= 100:
        if out != NULL:
            out[p] = <uint8_t>(48 + v // 100)
        p += 1
    if v >= 10:
        if out != NULL:
            out[p] = <uint8_t>(48 + (v // 10) % 10)
        p += 1
    if out != NULL:
        out[p] = <uint8_t>(48 + v % 10)
    return p + 1


cdef inline Py_ssize_t _quad(const uint8_t* a, uint8_t* out, Py_ssize_t p) noexcept nogil:
    """a[0..3] as a dotted quad."""
    cdef int k
    for k in range(4):
        if k:
            if out != NULL:
                out[p] = 46  # '.'
            p += 1
        p = _dec(a[k], out, p)
    return p


cdef Py_ssize_t _ip_text(const uint8_t* a, Py_ssize_t n, uint8_t* out) noexcept nogil:
    """The text of an n-byte IP address (Go's net.IP.String()) written to out, which
    holds at least the length this returns when called with out NULL.

    4 bytes: dotted quad; 16: RFC 5952 (lower-case hex groups without leading zeros, the
    longest run of two or more zero groups, the first on a tie, as "::"), except that
    IPv4-mapped addresses (::ffff:a.b.c.d) print as plain a.b.c.d, as Go's do; empty:
    nothing; any other length: '?' and hex."""
    cdef Py_ssize_t p = 0
    cdef int k, i, run = 0, best = 0, start = 9, end = 9, digits
    cdef unsigned int g[8]
    if n == 4:
        return _quad(a, out, 0)
    if n == 16:
        for k in range(10):
            if a[k]:
                break
        else:
            if a[10] == 0xFF and a[11] == 0xFF:
                return _quad(a + 12, out, 0)
        for k in range(8):
            g[k] = (<unsigned int>a[2 * k] << 8) | a[2 * k + 1]
            run = run + 1 if g[k] == 0 else 0
            if run > best:
                best = run
                end = k + 1
        if best >= 2:
            start = end - best
        else:
            end = 9
        i = 0
        while i < 8:
            if i == start:
                if out != NULL:
                    out[p] = 58  # ':'
                    out[p + 1] = 58
                p += 2
                i = end
                continue
            if i > 0 and i != end:
                if out != NULL:
                    out[p] = 58
                p += 1
            digits = 1 + (g[i] >= 0x10) + (g[i] >= 0x100) + (g[i] >= 0x1000)
            if out != NULL:
                for k in range(digits):
                    out[p + k] = <uint8_t>HEX[(g[i] >> (4 * (digits - 1 - k))) & 0xF]
            p += digits
            i += 1
        return p
    if n == 0:
        return 0
    if out != NULL:
        out[0] = 63  # '?'
        for k in range(n):
            out[1 + 2 * k] = <uint8_t>HEX[a[k] >> 4]
            out[2 + 2 * k] = <uint8_t>HEX[a[k] & 0xF]
    return 1 + 2 * n


cdef Py_ssize_t _mac_text(const uint8_t* a, Py_ssize_t n, uint8_t* out) noexcept nogil:
    """Lower-case hex pairs joined by ':' (Go's net.HardwareAddr.String(), any length)."""
    cdef Py_ssize_t k
    if n == 0:
        return 0
    if out != NULL:
        for k in range(n):
            if k:
                out[3 * k - 1] = 58
            out[3 * k] = <uint8_t>HEX[a[k] >> 4]
            out[3 * k + 1] = <uint8_t>HEX[a[k] & 0xF]
    return 3 * n - 1


cdef inline Py_ssize_t _text(int op, const uint8_t* a, Py_ssize_t n,
                             uint8_t* out) noexcept nogil:
    return _ip_text(a, n, out) if op == IP else _mac_text(a, n, out)


# -- planning -----------------------------------------------------------------------------

cdef inline uint64_t _tag(int number, int wire):
    return (<uint64_t>number << 3) | <uint64_t>wire


cdef object _u64(object arr):
    """A scalar column as uint64 varint values: negative int32/int64 as their 64-bit two's
    complement (10 bytes), as proto3 writes them."""
    if arr.dtype == np.uint64:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint64)
    return np.ascontiguousarray(arr.astype(np.int64, copy=False)).view(np.uint64)


cdef object _ragged_lens(object col, Py_ssize_t n):
    lens = np.ascontiguousarray(col.lens, dtype=np.int64)
    if lens.shape[0] != n:
        raise ValueError(f"a column of {lens.shape[0]} rows in a table of {n}")
    return lens


cdef _Col _scalar(object fl, object col, Py_ssize_t n):
    cdef _Col c = _Col()
    arr = np.asarray(col)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{fl.name}: a column of shape {arr.shape} in a table of {n} rows")
    if fl.kind is Kind.DOUBLE:
        c.op = FIXED64
        c.tag = _tag(fl.number, WIRE_FIXED64)
        c.vals = np.ascontiguousarray(arr.astype(np.float64, copy=False)).view(np.uint64)
    elif fl.kind is Kind.BOOL or arr.dtype == np.bool_:
        c.op = BOOL
        c.tag = _tag(fl.number, WIRE_VARINT)
        c.flags = np.ascontiguousarray(arr.astype(np.bool_, copy=False)).view(np.uint8)
    else:
        c.op = VARINT
        c.tag = _tag(fl.number, WIRE_VARINT)
        c.vals = _u64(arr)
    return c


cdef uint64_t _item_u64(object x) except? 0xFFFFFFFFFFFFFFFF:
    """A repeated scalar's item as its varint value (64-bit two's complement)."""
    if type(x) is int:  # the low 64 bits: what the two ways below give an int
        return PyLong_AsUnsignedLongLongMask(x)
    try:
        return <uint64_t>(<int64_t>x)
    except (OverflowError, TypeError):  # beyond int64 (large uint64), or not an int
        return <uint64_t>(int(x) & 0xFFFFFFFFFFFFFFFF)


cdef bytes _item_bytes(object x):
    """A repeated string or bytes field's item as its bytes (str as UTF-8)."""
    return x.encode() if isinstance(x, str) else bytes(x)


cdef object _as_bytes(object v):
    """A string or bytes field's value as its bytes: bytes, str as UTF-8, any other
    buffer through b"".join (as a Ragged column of them is made)."""
    if type(v) is bytes:
        return v
    if type(v) is str:
        return (<str>v).encode()
    return b"".join([v.encode() if isinstance(v, str) else v])


cdef _Col _repeated(object fl, object col, Py_ssize_t n):
    """A repeated scalar (packed: one tag, the length, every varint) or a repeated string
    or bytes field (tag + length + bytes per element, empty elements too), as RAW bytes
    per row. The column is an object array of one list per row."""
    cdef _Col c = _Col()
    cdef uint64_t tag = _tag(fl.number, WIRE_LEN)
    cdef int tl = _vlen(tag)
    cdef Py_ssize_t i, j, k = 0, m, total = 0, p = 0, cap, body, items_total = 0
    cdef bint text = fl.kind is Kind.STRING or fl.kind is Kind.BYTES
    cdef list rows = col.tolist() if isinstance(col, np.ndarray) else list(col)
    cdef list flat = []
    cdef bytes b
    cdef uint8_t* buf
    if len(rows) != n:
        raise ValueError(f"{fl.name}: a column of {len(rows)} rows in a table of {n}")
    counts_a = np.zeros(n, np.int64)
    lens_a = np.zeros(n, np.int64)
    bodies_a = np.zeros(n, np.int64)
    cdef int64_t[::1] counts = counts_a
    cdef int64_t[::1] lens = lens_a
    cdef int64_t[::1] bodies = bodies_a
    for i in range(n):
        items = rows[i]
        if items is not None:
            counts[i] = len(items)
            items_total += counts[i]
    if items_total and not text and not fl.kind.is_varint:
        raise NotImplementedError(f"repeated {fl.kind.value} field {fl.name}")
    # The items' values: bytes per string (a list), or varints written straight into
    # an array (no Python int per item).
    vals_a = np.empty(0 if text else items_total, np.uint64)
    cdef uint64_t[::1] vals = vals_a
    for i in range(n):
        if not counts[i]:
            continue
        items = rows[i]
        if text:
            for x in items:
                flat.append(_item_bytes(x))
        else:
            for x in items:
                if k == items_total:  # an item list that grew while read: not ours
                    raise RuntimeError(f"{fl.name}: items changed while encoded")
                vals[k] = _item_u64(x)
                k += 1
    if len(flat) + k != items_total:
        raise RuntimeError(f"{fl.name}: items changed while encoded")
    k = 0
    for i in range(n):  # measure
        if not counts[i]:
            continue
        body = 0
        for j in range(counts[i]):
            if text:
                b = flat[k + j]  # typed: a bytes object, checked
                m = PyBytes_GET_SIZE(b)
                body += tl + _vlen(m) + m
            else:
                body += _vlen(vals[k + j])
        bodies[i] = body
        lens[i] = body if text else tl + _vlen(body) + body
        k += counts[i]
        total += lens[i]
    out_a = np.empty(total, np.uint8)
    cdef uint8_t[::1] out = out_a
    cap = total
    buf = &out[0] if total else NULL
    k = 0
    for i in range(n):  # write
        if not counts[i]:
            continue
        if text:
            for j in range(counts[i]):
                b = flat[k + j]
                m = PyBytes_GET_SIZE(b)
                p = _put(buf, cap, p, tag)
                p = _put(buf, cap, p, <uint64_t>m)
                p = _copy(buf, cap, p, <const uint8_t*>PyBytes_AS_STRING(b), m)
        else:
            p = _put(buf, cap, p, tag)
            p = _put(buf, cap, p, <uint64_t>bodies[i])
            for j in range(counts[i]):
                p = _put(buf, cap, p, vals[k + j])
        k += counts[i]
    if p != total:
        raise RuntimeError(f"{fl.name}: encoder size mismatch")
    c.op = RAW
    c.data = out_a
    c.lens = lens_a
    return c


cdef _Col _message(object fl, object col, Py_ssize_t n):
    """A sub-message field: the child table encoded (each child row framed as tag +
    length + body), then each parent's children's bytes as RAW bytes of the parent row.
    Children are contiguous per parent and ascending (Children's invariant, checked)."""
    cdef _Col c = _Col()
    cdef Py_ssize_t k, m = col.table.n, prev = 0
    parent_a = np.ascontiguousarray(col.parent, dtype=np.int64)
    if parent_a.shape[0] != m:
        raise ValueError(f"{fl.name}: {parent_a.shape[0]} parents of {m} children")
    data, framed_a = _encode(col.table, _tag(fl.number, WIRE_LEN), True)
    cdef const int64_t[::1] parent = parent_a
    cdef const int64_t[::1] framed = framed_a
    lens_a = np.zeros(n, np.int64)
    cdef int64_t[::1] lens = lens_a
    for k in range(m):
        if parent[k] < prev:
            raise ValueError(f"{fl.name}: children not in ascending parent order")
        prev = parent[k]
        lens[parent[k]] += framed[k]  # bounds-checked: a parent beyond the table raises
    c.op = RAW
    c.data = data
    c.lens = lens_a
    return c


cdef list _plan(object table):
    cdef list cols = []
    cdef _Col c
    cdef Py_ssize_t n = table.n
    for fl in table.rtype.fields:
        col = table.cols.get(fl.name)
        if col is None:
            continue
        if isinstance(col, Children):
            if col.table.n:
                cols.append(_message(fl, col, n))
        elif fl.kind is Kind.MESSAGE:
            raise TypeError(f"{fl.name}: a message field needs a Children column")
        elif fl.repeated:
            cols.append(_repeated(fl, col, n))
        elif fl.kind is Kind.STRING or fl.kind is Kind.BYTES:
            if not isinstance(col, Ragged):  # invariant (not input)
                raise TypeError("unexpected column types")
            c = _Col()
            c.lens = _ragged_lens(col, n)
            c.data = np.ascontiguousarray(col.data, dtype=np.uint8)
            c.tag = _tag(fl.number, WIRE_LEN)
            c.op = (LEN if fl.render is Render.NONE else IP if fl.render is Render.IP
                    else MAC)
            if c.op != LEN:
                c.tlens = np.zeros(n, np.int64)
            cols.append(c)
        else:
            cols.append(_scalar(fl, col, n))
    return cols


# -- the two passes -----------------------------------------------------------------------

cdef void _measure(_Col c, int64_t[::1] size, Py_ssize_t n) except *:
    """Add the bytes of this field to each row's body size."""
    cdef Py_ssize_t i, pos = 0, avail
    cdef int64_t ln, t
    cdef uint64_t v
    cdef int tl = _vlen(c.tag)
    if c.op == VARINT:
        for i in range(n):
            v = c.vals[i]
            if v:
                size[i] += tl + _vlen(v)
    elif c.op == BOOL:
        for i in range(n):
            if c.flags[i]:
                size[i] += tl + 1
    elif c.op == FIXED64:
        for i in range(n):
            if c.vals[i]:
                size[i] += tl + 8
    else:
        avail = c.data.shape[0]
        for i in range(n):
            ln = c.lens[i]
            if ln < 0 or ln > avail - pos:
                raise ValueError("a ragged column's lengths exceed its bytes")
            if c.op == RAW:
                size[i] += ln
            elif c.op == LEN:
                if ln:
                    size[i] += tl + _vlen(<uint64_t>ln) + ln
            elif ln:
                t = _text(c.op, &c.data[pos], ln, NULL)
                c.tlens[i] = t
                if t:
                    size[i] += tl + _vlen(<uint64_t>t) + t
            pos += ln


cdef void _write(_Col c, uint8_t* buf, Py_ssize_t cap, int64_t[::1] cur,
                 Py_ssize_t n) except *:
    """Write this field of every row at the row's cursor, and move the cursor past it.
    (_measure checked every source range; every write checks the output's size.)"""
    cdef Py_ssize_t i, k, p, pos = 0
    cdef int64_t ln, t
    cdef uint64_t v
    if c.op == VARINT:
        for i in range(n):
            v = c.vals[i]
            if v:
                cur[i] = _put(buf, cap, _put(buf, cap, cur[i], c.tag), v)
    elif c.op == BOOL:
        for i in range(n):
            if c.flags[i]:
                cur[i] = _put(buf, cap, _put(buf, cap, cur[i], c.tag), 1)
    elif c.op == FIXED64:
        for i in range(n):
            v = c.vals[i]
            if v:
                p = _put(buf, cap, cur[i], c.tag)
                if 0 <= p <= cap - 8:
                    for k in range(8):
                        buf[p + k] = <uint8_t>(v >> (8 * k))
                    p += 8
                else:
                    p = -1
                cur[i] = p
    else:
        for i in range(n):
            ln = c.lens[i]
            if c.op == RAW:
                if ln:
                    cur[i] = _copy(buf, cap, cur[i], &c.data[pos], ln)
            elif c.op == LEN:
                if ln:
                    p = _put(buf, cap, _put(buf, cap, cur[i], c.tag), <uint64_t>ln)
                    cur[i] = _copy(buf, cap, p, &c.data[pos], ln)
            else:
                t = c.tlens[i]
                if t:
                    p = _put(buf, cap, _put(buf, cap, cur[i], c.tag), <uint64_t>t)
                    if 0 <= p and t <= cap - p:
                        _text(c.op, &c.data[pos], ln, buf + p)
                        p += t
                    else:
                        p = -1
                    cur[i] = p
            pos += ln


cdef tuple _encode(object table, uint64_t tag, bint prefixed):
    """Every row's message into one buffer, in row order: with `prefixed`, each message
    after its length (`varint(len)`, or `tag varint(len)` when tag is not 0, as a
    sub-message field). Returns the buffer and each row's bytes in it."""
    cdef Py_ssize_t n = table.n, i, total = 0, cap
    cdef int tl = _vlen(tag) if tag else 0
    cdef int64_t rl
    cdef _Col c
    cdef uint8_t* buf
    cols = _plan(table)
    size_a = np.zeros(n, np.int64)
    rows_a = np.empty(n, np.int64)
    cur_a = np.empty(n, np.int64)
    cdef int64_t[::1] size = size_a
    cdef int64_t[::1] rows = rows_a
    cdef int64_t[::1] cur = cur_a
    for c in cols:
        _measure(c, size, n)
    for i in range(n):
        rl = size[i]
        if prefixed:
            rl += tl + _vlen(<uint64_t>size[i])
        rows[i] = rl
        total += rl
    out_a = np.empty(total, np.uint8)
    cdef uint8_t[::1] out = out_a
    cap = total
    buf = &out[0] if total else NULL
    total = 0
    for i in range(n):  # the prefixes; each cursor then at its row's body
        cur[i] = total
        if prefixed:
            if tag:
                cur[i] = _put(buf, cap, cur[i], tag)
            cur[i] = _put(buf, cap, cur[i], <uint64_t>size[i])
        total += rows[i]
    for c in cols:
        _write(c, buf, cap, cur, n)
    total = 0
    for i in range(n):
        total += rows[i]
        if cur[i] != total:
            raise RuntimeError(f"{table.rtype.name}: encoder size mismatch in row {i}")
    return out_a, rows_a


# -- the Python face ----------------------------------------------------------------------

def encode_delimited_sized(table):
    """Rows as a varint-length-delimited stream (the body of an audit-record file) in a
    uint8 array, and the size of each delimited record in it (so records encoded apart
    can be interleaved)."""
    return _encode(table, 0, True)


def encode_rows(table):
    """Each row's protobuf message bytes (no length prefix), as a Ragged."""
    data, lens = _encode(table, 0, False)
    return Ragged(data, lens)


def render_column(col, how):
    """A Ragged column of raw addresses as their text (`how`: a Render); Render.NONE
    gives the column back as it is."""
    if how is Render.NONE:
        return col
    if how is not Render.IP and how is not Render.MAC:
        raise ValueError(f"not a rendered field: {how}")
    cdef int op = IP if how is Render.IP else MAC
    cdef Py_ssize_t n = len(col), i, pos = 0, total = 0, avail, p = 0
    cdef int64_t ln
    lens_a = np.ascontiguousarray(col.lens, dtype=np.int64)
    data_a = np.ascontiguousarray(col.data, dtype=np.uint8)
    cdef const int64_t[::1] lens = lens_a
    cdef const uint8_t[::1] data = data_a
    tlens_a = np.zeros(n, np.int64)
    cdef int64_t[::1] tlens = tlens_a
    avail = data.shape[0]
    for i in range(n):
        ln = lens[i]
        if ln < 0 or ln > avail - pos:
            raise ValueError("a ragged column's lengths exceed its bytes")
        if ln:
            tlens[i] = _text(op, &data[pos], ln, NULL)
            total += tlens[i]
        pos += ln
    out_a = np.empty(total, np.uint8)
    cdef uint8_t[::1] out = out_a
    pos = 0
    for i in range(n):
        ln = lens[i]
        if tlens[i]:
            if tlens[i] > total - p:
                raise RuntimeError("render size mismatch")
            _text(op, &data[pos], ln, &out[p])
            p += tlens[i]
        pos += ln
    return Ragged(out_a, tlens_a)


def ragged_rows(col):
    """A Ragged column's rows as bytes objects (Ragged.tolist): one C loop, where the
    Python one cost ~175 ns a row (the metrics list addresses and names per batch)."""
    lens_a = np.ascontiguousarray(col.lens, dtype=np.int64)
    data_a = np.ascontiguousarray(col.data, dtype=np.uint8)
    cdef const int64_t[::1] lens = lens_a
    cdef const uint8_t[::1] data = data_a
    cdef Py_ssize_t n = lens.shape[0], i, pos = 0, avail = data.shape[0]
    cdef const char* base = <const char*>&data[0] if avail else NULL
    cdef int64_t ln
    cdef list out = [None] * n
    for i in range(n):
        ln = lens[i]
        if ln < 0 or ln > avail - pos:
            raise ValueError("a ragged column's lengths exceed its bytes")
        out[i] = PyBytes_FromStringAndSize(base + pos if ln else NULL, ln)
        pos += ln
    return out


def varint_matrix(values):
    """Base-128 varints of uint64 values, transposed: a (w, n) matrix (byte k of every
    value in row k, zero past its last byte) plus the bytes used per value."""
    vals_a = np.ascontiguousarray(values, dtype=np.uint64)
    cdef const uint64_t[::1] vals = vals_a
    cdef Py_ssize_t n = vals.shape[0], i
    cdef int k, w = 1
    cdef uint64_t v
    for i in range(n):
        w = max(w, _vlen(vals[i]))
    mat_a = np.zeros((w, n), np.uint8)
    used_a = np.empty(n, np.int64)
    cdef uint8_t[:, ::1] mat = mat_a
    cdef int64_t[::1] used = used_a
    for i in range(n):
        v = vals[i]
        used[i] = _vlen(v)
        for k in range(used[i]):
            mat[k, i] = <uint8_t>((v & 0x7F) | (0x80 if k < used[i] - 1 else 0))
            v >>= 7
    return mat_a, used_a


# -- records as dicts to columns ----------------------------------------------------------

def from_rows(rtype, rows, pkt, only=None):
    """`RecordTable.from_rows` (see there), its loops over rows in C: the stream analyzers
    give their records as dicts."""
    cdef list rs = rows if type(rows) is list else list(rows)
    cdef Py_ssize_t n = len(rs), i
    cdef dict r
    cdef list vals, parents, kids
    cdef set present = set()
    cdef bint repeated
    cdef object[::1] lists
    if only is None:
        for r in rs:
            present.update(r)
    else:  # only the columns asked for, each looked for until a row has it (the union
        # of every row's keys was a fifth of a counting stream process's record tables)
        for name in only:
            for r in rs:
                if name in r:
                    present.add(name)
                    break
    cols = {}
    for fl in rtype.fields:
        name = fl.name
        if name not in present:
            continue
        if fl.kind is Kind.MESSAGE:
            parents = []
            kids = []
            repeated = fl.repeated
            for i in range(n):
                r = rs[i]
                v = r.get(name)
                items = v if repeated else ([v] if v is not None else None)
                if items:
                    for kid in items:
                        parents.append(i)
                        kids.append(kid)
            child = from_rows(RECORDS[fl.message or ""], kids, None)
            cols[name] = Children(np.asarray(parents, dtype=np.int64), child)
        elif fl.repeated:  # repeated scalars, strings or bytes: a list per row (the
            # record's own: the encoder only reads it)
            col = np.empty(n, dtype=object)
            lists = col
            for i in range(n):
                r = rs[i]
                v = r.get(name)
                lists[i] = v if type(v) is list else list(v or ())
            cols[name] = col
        elif fl.kind is Kind.STRING or fl.kind is Kind.BYTES:
            cols[name] = _ragged(rs, name, n)
        else:
            dtype = scalar_dtype(fl.kind)
            col = _ints(rs, name, n) if dtype is np.int64 else None
            if col is None:  # not all ints: numpy's conversion rules
                vals = [None] * n
                for i in range(n):
                    r = rs[i]
                    vals[i] = r.get(name, 0)
                col = np.asarray(vals, dtype=dtype)
            cols[name] = col
    return RecordTable(rtype, n, cols,
                       None if pkt is None else np.fromiter(pkt, dtype=np.int64, count=n))


cdef object _ints(list rs, object name, Py_ssize_t n):
    """One int64 field of every row (0 where a row has none), or None if a value is no
    int (then numpy converts the values). Past int64: OverflowError, as numpy's."""
    out_a = np.empty(n, np.int64)
    cdef int64_t[::1] out = out_a
    cdef Py_ssize_t i
    cdef dict r
    for i in range(n):
        r = rs[i]
        v = r.get(name, 0)
        if type(v) is not int and type(v) is not bool:
            return None
        out[i] = v
    return out_a


cdef object _ragged(list rs, object name, Py_ssize_t n):
    """The bytes of one field of every row as a Ragged (b"" where a row has none): one
    copy into the column when every value is bytes or str. A str is stored as UTF-8,
    read in place (CPython keeps an ASCII str's characters as its UTF-8; another's UTF-8
    is made once and cached in the str), so the analyzers' text needs no bytes copy."""
    cdef list vals = [None] * n
    cdef Py_ssize_t i, m, total = 0, at = 0
    cdef dict r
    cdef bint plain = True
    cdef const char* p
    lens_a = np.empty(n, np.int64)
    cdef int64_t[::1] lens = lens_a
    for i in range(n):
        r = rs[i]
        v = r.get(name, b"")
        vals[i] = v
        if type(v) is bytes:
            lens[i] = PyBytes_GET_SIZE(v)
        elif type(v) is str:
            PyUnicode_AsUTF8AndSize(v, &m)
            lens[i] = m
        else:
            plain = False
            vals[i] = v = _as_bytes(v)
            lens[i] = len(v)
        total += lens[i]
    if not plain:  # str values are still str here: each through _as_bytes
        return Ragged(np.frombuffer(b"".join([_as_bytes(v) for v in vals]),
                                    dtype=np.uint8).copy(), lens_a)
    data_a = np.empty(total, np.uint8)
    cdef uint8_t[::1] data = data_a
    for i in range(n):  # the lengths are the values' own: they fill `data` exactly
        if lens[i]:
            v = vals[i]
            p = (PyBytes_AS_STRING(v) if type(v) is bytes
                 else PyUnicode_AsUTF8AndSize(v, &m))
            memcpy(&data[at], p, lens[i])
            at += lens[i]
    return Ragged(data_a, lens_a)


# -- records as dicts, encoded row by row -------------------------------------------------
#
# `net capture` writes the stream analyzers' records (dicts) without counting them: made
# into columns (`from_rows`) only to be encoded, the columns cost more than the encoding.
# `encode_records` writes each dict's message straight into one growing buffer, with the
# values converted as `from_rows` converts them into columns, so the bytes are those of
# `encode_delimited_sized(from_rows(...))` (tests/test_encode_compiled.py holds them
# equal on every stream record of the corpus and on made-up edge cases).

cdef enum:
    R_VARINT = 0  # int32, int64, uint32, enum: as int64, negative as 10 bytes
    R_UINT64 = 1
    R_BOOL = 2
    R_DOUBLE = 3
    R_TEXT = 4  # string or bytes: bytes as they are, str as UTF-8
    R_IP = 5  # raw address bytes written as text
    R_MAC = 6
    R_PACKED = 7  # repeated varint kinds
    R_TEXTS = 8  # repeated string or bytes
    R_MESSAGE = 9  # a sub-message, or repeated ones
    R_UNSUPPORTED = 10  # a repeated double: refused when it holds items


cdef class _Field:
    cdef object name
    cdef int op
    cdef bint repeated
    cdef uint64_t tag
    cdef tuple child  # R_MESSAGE: the sub-message's fields
    cdef object fl


cdef dict _SPECS = {}


cdef tuple _spec(object rtype):
    """The fields of a record type as the row encoder reads them (made once per type)."""
    cdef _Field f
    cdef list out = []
    spec = _SPECS.get(rtype.name)
    if spec is not None:
        return <tuple>spec
    for fl in rtype.fields:
        f = _Field()
        f.name = fl.name
        f.fl = fl
        f.repeated = fl.repeated
        f.tag = _tag(fl.number, WIRE_LEN)
        if fl.kind is Kind.MESSAGE:
            f.op = R_MESSAGE
            f.child = _spec(RECORDS[fl.message or ""])
        elif fl.repeated:
            f.op = (R_TEXTS if fl.kind is Kind.STRING or fl.kind is Kind.BYTES
                    else R_PACKED if fl.kind.is_varint else R_UNSUPPORTED)
        elif fl.kind is Kind.STRING or fl.kind is Kind.BYTES:
            f.op = (R_TEXT if fl.render is Render.NONE else R_IP if fl.render is Render.IP
                    else R_MAC)
        elif fl.kind is Kind.DOUBLE:
            f.op = R_DOUBLE
            f.tag = _tag(fl.number, WIRE_FIXED64)
        else:
            f.op = (R_BOOL if fl.kind is Kind.BOOL else R_UINT64 if fl.kind is Kind.UINT64
                    else R_VARINT)
            f.tag = _tag(fl.number, WIRE_VARINT)
        out.append(f)
    spec = _SPECS[rtype.name] = tuple(out)
    return <tuple>spec


cdef struct _Buf:
    uint8_t* p
    Py_ssize_t n, cap


cdef int _room(_Buf* b, Py_ssize_t more) except -1:
    """Room for `more` bytes after b.n (the buffer grown by half or to fit)."""
    cdef Py_ssize_t want
    cdef uint8_t* grown
    if more <= b.cap - b.n:
        return 0
    if more > PY_SSIZE_T_MAX // 2 - b.n:
        raise MemoryError()
    want = max(b.n + more, b.cap + b.cap // 2, 4096)
    grown = <uint8_t*>PyMem_Realloc(b.p, want)
    if grown == NULL:
        raise MemoryError()
    b.p = grown
    b.cap = want
    return 0


cdef inline int _varint(_Buf* b, uint64_t v) except -1:
    _room(b, 10)
    b.n = _put(b.p, b.cap, b.n, v)
    return 0


cdef inline int _bytes(_Buf* b, const uint8_t* src, Py_ssize_t n) except -1:
    _room(b, n)
    b.n = _copy(b.p, b.cap, b.n, src, n)
    return 0


cdef int _framed(_Buf* b, uint64_t tag, Py_ssize_t start) except -1:
    """The bytes written since `start` made a length-prefixed field (tag 0: just the
    length): the prefix is put before them, moving them up by its size."""
    cdef Py_ssize_t body = b.n - start
    cdef int tl = _vlen(tag) if tag else 0
    cdef int pre = tl + _vlen(<uint64_t>body)
    cdef Py_ssize_t p
    _room(b, pre)
    memmove(b.p + start + pre, b.p + start, body)
    p = _put(b.p, b.cap, start, tag) if tag else start
    _put(b.p, b.cap, p, <uint64_t>body)
    b.n += pre
    return 0


cdef int _text_field(_Buf* b, _Field f, object v) except -1:
    cdef const char* p
    cdef Py_ssize_t n, t
    cdef int op
    if type(v) is str:
        p = PyUnicode_AsUTF8AndSize(v, &n)
    else:
        v = _as_bytes(v)
        p = PyBytes_AS_STRING(v)
        n = PyBytes_GET_SIZE(v)
    if f.op == R_TEXT:
        if n:
            _varint(b, f.tag)
            _varint(b, <uint64_t>n)
            _bytes(b, <const uint8_t*>p, n)
        return 0
    op = IP if f.op == R_IP else MAC
    t = _text(op, <const uint8_t*>p, n, NULL)
    if t:
        _varint(b, f.tag)
        _varint(b, <uint64_t>t)
        _room(b, t)
        _text(op, <const uint8_t*>p, n, b.p + b.n)
        b.n += t
    return 0


cdef int _scalar_field(_Buf* b, _Field f, object v) except -1:
    cdef uint64_t u
    cdef double d
    if f.op == R_VARINT:
        if type(v) is int or type(v) is bool:
            u = <uint64_t>(<int64_t>v)
        else:  # numpy's conversion, as a column of mixed values gets
            u = <uint64_t>(<int64_t>np.asarray(v, dtype=np.int64))
        if u:
            _varint(b, f.tag)
            _varint(b, u)
    elif f.op == R_UINT64:
        u = <uint64_t>v if type(v) is int or type(v) is bool else <uint64_t>np.asarray(
            v, dtype=np.uint64)
        if u:
            _varint(b, f.tag)
            _varint(b, u)
    elif f.op == R_BOOL:
        if (v if type(v) is bool or type(v) is int else bool(np.asarray(v, dtype=np.bool_))):
            _varint(b, f.tag)
            _varint(b, 1)
    else:  # R_DOUBLE
        d = <double>v if type(v) is float or type(v) is int else <double>np.asarray(
            v, dtype=np.float64)
        memcpy(&u, &d, 8)
        if u:
            _varint(b, f.tag)
            _room(b, 8)
            memcpy(b.p + b.n, &u, 8)  # little-endian, as the column encoder writes it
            b.n += 8
    return 0


cdef int _repeated_field(_Buf* b, _Field f, object v) except -1:
    cdef list items = v if type(v) is list else list(v or ())
    cdef Py_ssize_t start
    if not items:
        return 0
    if f.op == R_UNSUPPORTED:
        raise NotImplementedError(f"repeated {f.fl.kind.value} field {f.name}")
    if f.op == R_TEXTS:
        for x in items:
            x = _item_bytes(x)
            _varint(b, f.tag)
            _varint(b, <uint64_t>PyBytes_GET_SIZE(x))
            _bytes(b, <const uint8_t*>PyBytes_AS_STRING(x), PyBytes_GET_SIZE(x))
        return 0
    start = b.n
    for x in items:
        _varint(b, _item_u64(x))
    _framed(b, f.tag, start)
    return 0


cdef int _message_fields(_Buf* b, tuple spec, dict r) except -1:
    """One record's fields, in field-number order."""
    cdef _Field f
    cdef PyObject* o
    cdef Py_ssize_t start
    for x in spec:
        f = <_Field>x
        o = PyDict_GetItemWithError(r, f.name)  # raises only if a key's __eq__ does
        if o == NULL:
            continue
        v = <object>o
        if f.op == R_MESSAGE:
            if v is None:
                continue
            for kid in (v if f.repeated else (v,)):
                start = b.n
                _message_fields(b, f.child, <dict?>kid)
                _framed(b, f.tag, start)
        elif f.repeated:
            _repeated_field(b, f, v)
        elif f.op == R_TEXT or f.op == R_IP or f.op == R_MAC:
            _text_field(b, f, v)
        else:
            _scalar_field(b, f, v)
    return 0


cdef inline int _record(_Buf* b, tuple spec, dict r) except -1:
    """One record's message, length-prefixed, after the bytes in b."""
    cdef Py_ssize_t start = b.n
    _message_fields(b, spec, r)
    _framed(b, 0, start)
    return 0


def encode_records(rtype, rows):
    """Records (dicts of raw values, as `from_rows` takes them) as a varint-length-delimited
    stream of their messages: the bytes `encode_delimited_sized(from_rows(rtype, rows,
    None))[0]` holds, as bytes."""
    cdef tuple spec = _spec(rtype)
    cdef _Buf b
    b.p = NULL
    b.n = b.cap = 0
    try:
        for r in rows:
            _record(&b, spec, <dict?>r)
        return PyBytes_FromStringAndSize(<const char*>b.p, b.n) if b.n else b""
    finally:
        PyMem_Free(b.p)


cdef bytes record_bytes(str name, dict r):
    """One record of type `name` as `encode_records` writes it: the stream stage encodes
    each record as it makes it, while the record is in the cache."""
    cdef tuple spec = _spec(RECORDS[name])
    cdef _Buf b
    b.p = NULL
    b.n = b.cap = 0
    try:
        _record(&b, spec, r)
        return PyBytes_FromStringAndSize(<const char*>b.p, b.n)
    finally:
        PyMem_Free(b.p)
