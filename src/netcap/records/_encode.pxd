# cython: language_level=3
from libc.stdint cimport uint8_t

# Go's net.IP.String() of an n-byte address (see _encode.pyx): shared with the stream
# stage, which names flows by the same text.
cdef Py_ssize_t _ip_text(const uint8_t* a, Py_ssize_t n, uint8_t* out) noexcept nogil

# One record (a dict) as its length-prefixed message: the stream stage encodes each
# record of a type written to a file as it makes it.
cdef bytes record_bytes(str name, dict r)
