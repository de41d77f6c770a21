# cython: language_level=3
"""TCP reassembly and the stream stage (_streams.pyx): the types other compiled modules
may cimport."""

from libc.stdint cimport int64_t, uint32_t


cdef class Hidden:
    cdef readonly Py_ssize_t n


cdef class Chunk:
    cdef readonly object data  # bytes, or Hidden
    cdef readonly int64_t skip
    cdef readonly int64_t ts


cdef class Stream:
    cdef public Py_ssize_t max_buffer
    cdef bint has_seq
    cdef uint32_t next  # sequence number of the next byte to deliver (once has_seq)
    cdef int64_t base  # absolute offset of next (bytes delivered or skipped)
    cdef dict pending  # absolute offset -> (data, ts); None until one is held
    cdef list starts  # heap of the keys of pending; None with it
    cdef readonly int64_t buffered  # bytes waiting out of order
    cdef readonly int64_t delivered  # bytes delivered
    cdef readonly int64_t gaps  # bytes skipped
    cdef readonly int64_t conflicts  # overlapping bytes that differed
    cdef readonly int64_t overflows  # times the buffer limit forced a skip
    cdef readonly bint finished
    cdef readonly int64_t last_ts  # packet time of the latest segment

    cdef int _setup(self, Py_ssize_t max_buffer) except -1
    cpdef syn(self, int64_t seq)
    cdef int add(self, uint32_t seq, object data, int64_t ts, list out) except -1
    cdef int deliver(self, list out) except -1
    cdef void advance(self, int64_t n) noexcept
    cdef int skip_to_first(self, list out) except -1
    cdef int drain(self, list out) except -1
