# cython: language_level=3
"""The TLS hello reader's C face: the compiled stream stage cimports it to feed a
direction's bytes without a Python call."""

from netcap._buf cimport Reader


cdef class HelloReader:
    cdef readonly Py_ssize_t limit
    cdef readonly bint lean  # hellos with the fields the metrics read only (LEAN_*)
    cdef readonly bint done
    cdef readonly object violation  # str | None: why reading stopped, if not TLS or too long
    cdef bytearray _buf  # the start of a record not yet complete
    cdef bytearray _hs  # the start of a handshake message not yet complete
    # The record that began the pending handshake message: version, length.
    cdef int _version
    cdef int _length
    cdef bint _started
    cdef Py_ssize_t _seen

    cdef int _setup(self, Py_ssize_t limit, bint lean) except -1
    cpdef list feed(self, bytes data)
    cdef int _messages(self, Reader* rec, list out) except -1
    cdef void _stop(self, object violation) noexcept


cdef HelloReader hello_reader(bint lean)
