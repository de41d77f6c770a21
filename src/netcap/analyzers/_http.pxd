# cython: language_level=3
"""HTTP/1.x transactions, compiled (see _http.pyx): the classes a compiled stream stage
cimports. llhttp (vendor/llhttp) stays private to _http.pyx: a module cimporting this
needs no llhttp header."""

from libc.stdint cimport int64_t, uint64_t


cdef class _Txn:
    """One request and (later) its response."""
    cdef dict rec
    cdef str method
    cdef int64_t start
    cdef bint req_done
    cdef bint res_done
    cdef bint tunnel_wait  # CONNECT or Upgrade: client bytes wait for the answer


cdef class _Head:
    """What llhttp reported of one message head."""
    cdef public bytes url  # the request target, as llhttp reported it (pieces joined)
    cdef public bytes raw  # the complete head with CRLF line ends, as llhttp read it
    cdef bint complete


cdef class _Dir:
    """The framing state of one direction."""
    cdef bint client
    cdef readonly bytearray buf  # bytes not yet consumed (an incomplete head or line)
    cdef int64_t buf_ts  # time of the chunk that brought buf's first byte
    cdef Py_ssize_t new_from  # where the current chunk starts in buf
    cdef int64_t ts  # time of the latest chunk
    cdef int state
    cdef uint64_t remaining  # body or chunk bytes still to come
    cdef Py_ssize_t fed  # bytes of the current head already given to the parser
    cdef Py_ssize_t scanned  # bytes of the current size line / trailer block searched
    cdef bint line_checked  # the request line was checked for HTTP/0.9
    cdef public _Head head
    cdef void* parser  # an llhttp_t (_http.pyx), re-initialised for every message head
    cdef int64_t start_ts
    cdef int64_t body_len
    cdef bytearray sniff
    cdef bint sniff_open  # body bytes still go to sniff (not after a gap or SNIFF)
    cdef _Txn txn


cdef class HttpConnection:
    cdef readonly bint detail
    cdef readonly _Dir _c  # the client direction (read by tests: its buffer)
    cdef readonly _Dir _s
    cdef object _waiting  # deque of _Txn: requests without a (final) response yet
    cdef readonly object _order  # deque of _Txn: requests not yet emitted, in order
    cdef list _out
    cdef bint _resume  # the client direction may go on (a CONNECT was refused)
    cdef public bint done
    cdef public object violation  # str or None
    cdef public bint recognised  # a message head was read: the connection speaks HTTP

    cdef int _setup(self, bint detail) except -1
    cpdef list client(self, object data, int64_t ts)
    cpdef list server(self, object data, int64_t ts)
    cpdef list gap(self, bint from_client, int64_t nbytes, object ts=*)
    cpdef list close(self, int64_t ts)
    cpdef _request(self, _Dir d)

    cdef bint counts(self, bint from_client, Py_ssize_t n) noexcept
    cdef list skipped(self, bint from_client, int64_t nbytes, int64_t ts)
    cdef list _missing(self, _Dir d, int64_t nbytes)
    cdef list _feed(self, _Dir d, object data, int64_t ts)
    cdef list _take(self)
    cdef int _bad(self, _Dir d) except -1
    cdef int _run(self, _Dir d, object buf) except -1
    cdef Py_ssize_t _head(self, _Dir d, object buf, Py_ssize_t pos) except -2
    cdef int _http09(self, _Dir d, object buf, Py_ssize_t pos, Py_ssize_t new) except -1
    cdef int _response(self, _Dir d) except -1
    cdef int _frame(self, _Dir d, dict h, bint has_body) except -1
    cdef int _body_end(self, _Dir d) except -1
    cdef int _complete(self, _Dir d) except -1
    cdef int _stop(self, object violation) except -1


cdef HttpConnection http_connection(bint detail)
