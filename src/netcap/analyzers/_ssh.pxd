# cython: language_level=3
"""SshReader's C face, for the compiled stream stage to cimport (feed/finish without a
Python call)."""


cdef class SshReader:
    cdef readonly bint is_client
    cdef readonly bint done
    cdef readonly object violation  # str | None
    cdef readonly object ident  # str | None: the banner, once read
    cdef readonly bytearray _buf  # bytes not yet consumed (bounded; a test reads it)
    cdef bint _banner  # the SSH-2 banner was read: binary packets follow
    cdef Py_ssize_t _scanned  # bytes of _buf already searched for LF / NUL
    cdef Py_ssize_t _consumed  # bytes of the stream before _buf (banner phase)
    cdef int _lines
    cdef int _packets

    cpdef list feed(self, data)
    cpdef list finish(self)
    cdef list _read_banner(self)
    cdef list _identified(self, bytes line)
    cdef list _read_packets(self)
    cdef int _stop(self, object violation) except -1
    cdef list _give_up(self, str reason)
    cdef dict _noted(self, str notes)
