# cython: language_level=3
"""The per-row steps of the packet metrics, compiled (their semantics: state.py).

A batch's metrics were a numpy pass per operation: ~20 passes over a TCP table to turn
six flag columns and two ports into each row's label key, two more (searchsorted on
float bounds, then bincount) per histogram. Each function here is one pass over the
rows. The values may come from an audit-record file (any int64 or float64), so every
table lookup is masked to its table's size first, and nothing is assumed of them.
"""

cimport cython
from libc.stdint cimport int16_t, int64_t, uint8_t, uint64_t

import numpy as np

__all__ = ["bucket_counts", "lookup", "services", "small_buckets", "stuck", "tcp_keys"]

ctypedef fused number:
    int64_t
    double


@cython.boundscheck(False)  # i < values' length, k < m, v < small's length: all in range
@cython.wraparound(False)
def bucket_counts(const number[::1] values, const double[::1] bounds,
                  const uint8_t[::1] small):
    """How many of `values` fall in each bucket: bucket k holds those above bounds[k-1]
    and at most bounds[k] (numpy's searchsorted, side "left"), bucket len(bounds) those
    above every bound, and NaN (as numpy sorts it, last). `bounds` ascending. `small`:
    the bucket of each integer from 0 (`small_buckets`), looked up for integer values
    it covers (sizes: one load instead of a compare per bound)."""
    cdef Py_ssize_t m = bounds.shape[0], i, k, at
    cdef uint64_t covered = small.shape[0]
    out_a = np.zeros(m + 1, np.int64)
    cdef int64_t[::1] out = out_a
    cdef double x
    for i in range(values.shape[0]):
        if number is int64_t:
            if <uint64_t>values[i] < covered:
                out[small[values[i]]] += 1
                continue
        x = <double>values[i]
        # The bounds below x, counted without a branch (a search's branches went wrong
        # on mixed values); NaN is below none, so it counts m.
        at = 0
        for k in range(m):
            at += not (bounds[k] >= x)
        out[at] += 1
    return out_a


def small_buckets(const double[::1] bounds, Py_ssize_t n):
    """The bucket (see bucket_counts) of each integer 0..n-1, as bytes (at most 255
    bounds)."""
    if bounds.shape[0] > 255:
        raise ValueError("too many bounds for a byte")
    return np.searchsorted(np.asarray(bounds), np.arange(n), side="left").astype(np.uint8)


@cython.boundscheck(False)  # lengths checked; table indexes masked to the table's size
def services(const int64_t[::1] sport, const int64_t[::1] dport,
             const int64_t[::1] of_port):
    """Each row's service index (`of_port`, 65536 entries, 0: none): its destination
    port's, else its source port's."""
    cdef Py_ssize_t n = sport.shape[0], i
    if dport.shape[0] != n or of_port.shape[0] != 65536:  # invariant (not input)
        raise ValueError("ports of different lengths, or not a port table")
    out_a = np.empty(n, np.int64)
    cdef int64_t[::1] out = out_a
    cdef int64_t s
    for i in range(n):
        s = of_port[dport[i] & 0xFFFF]
        out[i] = s if s > 0 else of_port[sport[i] & 0xFFFF]
    return out_a


@cython.boundscheck(False)  # lengths checked; bits[i] < 64, the index's size
def tcp_keys(flags, const int64_t[::1] service, const int64_t[::1] flag_index,
             int64_t services):
    """Each TCP row's key: flag_index[its FIN..URG bits] * services + its service.
    `flags`: the six flag columns in bit order, each a uint8 array (0: not set) or None
    (never set); `flag_index` has 64 entries."""
    cdef Py_ssize_t n = service.shape[0], i, k
    if len(flags) != 6 or flag_index.shape[0] != 64:  # invariant (not input)
        raise ValueError("six flag columns and a 64-entry index")
    bits_a = np.zeros(n, np.uint8)
    cdef uint8_t[::1] bits = bits_a
    cdef const uint8_t[::1] f
    for k in range(6):
        if flags[k] is None:
            continue
        f = flags[k]
        if f.shape[0] != n:  # invariant (not input)
            raise ValueError("flag columns of different lengths")
        for i in range(n):  # a loop the compiler vectorizes
            bits[i] |= (f[i] != 0) << k
    out_a = np.empty(n, np.int64)
    cdef int64_t[::1] out = out_a
    for i in range(n):
        out[i] = flag_index[bits[i] & 63] * services + service[i]
    return out_a


@cython.boundscheck(False)  # i < n; a value is looked up only inside the table
def lookup(const int64_t[::1] values, const int64_t[::1] table, int64_t default):
    """table[v] for each value v, `default` for one outside the table."""
    cdef Py_ssize_t n = values.shape[0], i, m = table.shape[0]
    out_a = np.empty(n, np.int64)
    cdef int64_t[::1] out = out_a
    cdef int64_t v
    for i in range(n):
        v = values[i]
        out[i] = table[v] if 0 <= v < m else default
    return out_a


@cython.boundscheck(False)  # each packet index is checked against n before it is used
@cython.wraparound(False)
def stuck(Py_ssize_t n, below, above, const int16_t[::1] error):
    """How many of n packets have a row in one of the tables `below` (their packet
    indexes: arrays) and none in `above`, and no decode error: packets whose decoding
    stopped there for want of a decoder for the next layer. (The memoryviews' own
    checks on every index made this 129 us a batch of 16,000 packets, a fifth of the
    batch's metrics.)"""
    if error.shape[0] != n:  # invariant (not input)
        raise ValueError("an error per packet")
    mark_a = np.zeros(n, np.uint8)
    cdef uint8_t[::1] mark = mark_a
    cdef Py_ssize_t count = 0
    _mark(mark, below, 1)
    _mark(mark, above, 0)
    cdef Py_ssize_t i
    for i in range(n):
        count += mark[i] & (error[i] == 0)
    return count


@cython.boundscheck(False)  # j < mark's length, checked
@cython.wraparound(False)
cdef void _mark(uint8_t[::1] mark, tables, uint8_t value) except *:
    cdef const int64_t[::1] pkt
    cdef Py_ssize_t i
    cdef int64_t j
    cdef uint64_t n = mark.shape[0]
    for pkt in tables:
        for i in range(pkt.shape[0]):
            j = pkt[i]
            if <uint64_t>j >= n:  # the decoder's indexes are in range: an invariant
                raise IndexError(f"packet index {j} outside a batch of {n}")
            mark[j] = value
