# cython: language_level=3
"""libpcap, in C: live capture handles whose packets go straight into a batch's columns,
and tcpdump-syntax filters run over a batch's packets.

A live read is one C callback per packet (a copy of the captured bytes into a buffer the
handle keeps, four column values), with the GIL released: no Python object per packet.
The pcapy-ng binding this replaces made a header object, a bytes object and three list
appends per packet, 1.2-1.7 µs of the live path's ~5 µs per packet (bench/live_bench.py).
A handle asks for nanosecond timestamps, and keeps microseconds where the kernel or
libpcap cannot give them.

Bounds: the bytes copied are libpcap's captured length of a packet libpcap hands over;
the filter reads a batch's packets only at offsets and lengths checked against its data.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memset
from posix.time cimport timeval

import numpy as np

from netcap.sources.batch import PAD


cdef extern from "pcap/pcap.h" nogil:
    ctypedef struct pcap_t:
        pass
    ctypedef unsigned int bpf_u_int32
    struct pcap_pkthdr:
        timeval ts
        bpf_u_int32 caplen
        bpf_u_int32 len
    struct pcap_stat:
        unsigned int ps_recv
        unsigned int ps_drop
        unsigned int ps_ifdrop
    struct bpf_insn:
        pass
    struct bpf_program:
        unsigned int bf_len
        bpf_insn* bf_insns
    ctypedef void (*pcap_handler)(uint8_t*, const pcap_pkthdr*, const uint8_t*) noexcept

    enum: PCAP_ERRBUF_SIZE
    int PCAP_ERROR
    int PCAP_ERROR_NO_SUCH_DEVICE
    int PCAP_ERROR_PERM_DENIED
    int PCAP_ERROR_PROMISC_PERM_DENIED
    int PCAP_ERROR_BREAK
    int PCAP_TSTAMP_PRECISION_NANO
    bpf_u_int32 PCAP_NETMASK_UNKNOWN

    pcap_t* pcap_create(const char* source, char* errbuf)
    int pcap_set_snaplen(pcap_t* p, int snaplen)
    int pcap_set_promisc(pcap_t* p, int promisc)
    int pcap_set_timeout(pcap_t* p, int to_ms)
    int pcap_set_buffer_size(pcap_t* p, int size)
    int pcap_set_tstamp_precision(pcap_t* p, int precision)
    int pcap_get_tstamp_precision(pcap_t* p)
    int pcap_activate(pcap_t* p)
    int pcap_setnonblock(pcap_t* p, int nonblock, char* errbuf)
    int pcap_get_selectable_fd(pcap_t* p)
    int pcap_datalink(pcap_t* p)
    int pcap_dispatch(pcap_t* p, int cnt, pcap_handler callback, uint8_t* user)
    void pcap_breakloop(pcap_t* p)
    int pcap_stats(pcap_t* p, pcap_stat* ps)
    int pcap_compile(pcap_t* p, bpf_program* fp, const char* s, int optimize,
                     bpf_u_int32 netmask)
    int pcap_setfilter(pcap_t* p, bpf_program* fp)
    void pcap_freecode(bpf_program* fp)
    int pcap_offline_filter(const bpf_program* fp, const pcap_pkthdr* h, const uint8_t* pkt)
    pcap_t* pcap_open_dead(int linktype, int snaplen)
    char* pcap_geterr(pcap_t* p)
    const char* pcap_statustostr(int error)
    void pcap_close(pcap_t* p)


class PcapError(Exception):
    """What libpcap said, one line; `code` is its status (PCAP_ERROR_*), -1 when it gave
    none."""

    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.code = code


cdef str _text(const char* s):
    return " ".join(s.decode("utf-8", "replace").split())


cdef struct Acc:
    # The packets of one read: bytes back to back, and per packet its columns.
    uint8_t* data
    Py_ssize_t used
    Py_ssize_t cap
    int64_t* offset
    int64_t* caplen
    int64_t* wirelen
    int64_t* ts
    Py_ssize_t n
    Py_ssize_t max_packets
    Py_ssize_t max_bytes  # once this many bytes are held, the read stops after the packet
    int64_t frac_ns  # ns per unit of ts.tv_usec: 1 (nanosecond handle) or 1000
    bint failed  # a buffer could not grow: the packet is lost, the read stops
    pcap_t* p


cdef void _copy_packet(uint8_t* user, const pcap_pkthdr* h, const uint8_t* pkt) noexcept nogil:
    cdef Acc* a = <Acc*>user
    cdef Py_ssize_t k = a.n
    cdef Py_ssize_t size = h.caplen
    cdef Py_ssize_t cap
    cdef uint8_t* grown
    if k >= a.max_packets or a.failed:  # dispatch's count keeps k below; never relied on
        pcap_breakloop(a.p)
        return
    if size > a.cap - a.used:
        cap = a.cap * 2
        while size > cap - a.used:
            cap *= 2
        grown = <uint8_t*>realloc(a.data, cap)
        if grown == NULL:
            a.failed = True
            pcap_breakloop(a.p)
            return
        a.data = grown
        a.cap = cap
    memcpy(a.data + a.used, pkt, size)
    a.offset[k] = a.used
    a.caplen[k] = size
    a.wirelen[k] = h.len
    a.ts[k] = <int64_t>h.ts.tv_sec * 1000000000 + <int64_t>h.ts.tv_usec * a.frac_ns
    a.used += size
    a.n = k + 1
    if a.used >= a.max_bytes:
        pcap_breakloop(a.p)


cdef class Handle:
    """An activated live capture, non-blocking (wait on `fileno()` for packets)."""

    cdef pcap_t* p
    cdef Acc acc
    cdef readonly int linktype  # libpcap's DLT_* of the interface
    cdef readonly bint nanoseconds  # whether timestamps have nanosecond resolution

    def __cinit__(self, str iface, int snaplen, bint promisc, int timeout_ms,
                  int buffer_bytes, int max_packets = 65536):
        cdef char errbuf[PCAP_ERRBUF_SIZE]
        cdef bytes name = iface.encode()
        cdef int code
        memset(&self.acc, 0, sizeof(Acc))
        errbuf[0] = 0
        self.p = pcap_create(name, errbuf)
        if self.p == NULL:
            raise PcapError(_text(errbuf))
        pcap_set_snaplen(self.p, snaplen)
        pcap_set_promisc(self.p, promisc)
        pcap_set_timeout(self.p, timeout_ms)
        pcap_set_buffer_size(self.p, buffer_bytes)
        pcap_set_tstamp_precision(self.p, PCAP_TSTAMP_PRECISION_NANO)  # kept if refused
        code = pcap_activate(self.p)
        if code < 0:
            # These four come with a message of the details; the others are their status.
            if code in (PCAP_ERROR, PCAP_ERROR_NO_SUCH_DEVICE, PCAP_ERROR_PERM_DENIED,
                        PCAP_ERROR_PROMISC_PERM_DENIED):
                text = _text(pcap_geterr(self.p)) or _text(pcap_statustostr(code))
            else:
                text = _text(pcap_statustostr(code))
            self._release()
            raise PcapError(text, code)
        if pcap_setnonblock(self.p, 1, errbuf) < 0:
            text = _text(errbuf)
            self._release()
            raise PcapError(text)
        self.linktype = pcap_datalink(self.p)
        self.nanoseconds = pcap_get_tstamp_precision(self.p) == PCAP_TSTAMP_PRECISION_NANO
        a = &self.acc
        a.p = self.p
        a.frac_ns = 1 if self.nanoseconds else 1000
        a.max_packets = max(max_packets, 1)
        a.cap = 1 << 20
        a.data = <uint8_t*>realloc(NULL, a.cap)
        a.offset = <int64_t*>realloc(NULL, 4 * a.max_packets * sizeof(int64_t))
        if a.data == NULL or a.offset == NULL:
            self._release()
            raise MemoryError()
        a.caplen = a.offset + a.max_packets
        a.wirelen = a.caplen + a.max_packets
        a.ts = a.wirelen + a.max_packets

    def __dealloc__(self):
        self._release()

    def close(self) -> None:
        self._release()

    cdef void _release(self) noexcept:
        if self.p != NULL:
            pcap_close(self.p)
            self.p = NULL
        free(self.acc.data)
        free(self.acc.offset)
        self.acc.data = NULL
        self.acc.offset = NULL

    cdef pcap_t* _open(self) except NULL:
        if self.p == NULL:
            raise PcapError("the capture is closed")
        return self.p

    def setfilter(self, str expr) -> None:
        cdef pcap_t* p = self._open()
        cdef bpf_program prog
        cdef bytes text = expr.encode()
        if pcap_compile(p, &prog, text, 1, PCAP_NETMASK_UNKNOWN) < 0:
            raise PcapError(_text(pcap_geterr(p)))
        code = pcap_setfilter(p, &prog)
        pcap_freecode(&prog)
        if code < 0:
            raise PcapError(_text(pcap_geterr(p)))

    def fileno(self) -> int:
        return pcap_get_selectable_fd(self._open())

    @property
    def held(self) -> tuple[int, int]:
        """(packets, captured bytes) read and not yet taken."""
        return self.acc.n, self.acc.used

    def fill(self, Py_ssize_t max_bytes) -> int:
        """Read what libpcap holds now into the handle's batch, up to its max_packets, and
        past `max_bytes` of captured bytes in all no further than the packet that crossed
        it. Returns the packets held."""
        cdef pcap_t* p = self._open()
        cdef Acc* a = &self.acc
        cdef int got = 0
        a.max_bytes = max(max_bytes, 1)
        with nogil:
            while a.n < a.max_packets and a.used < a.max_bytes and not a.failed:
                got = pcap_dispatch(p, <int>(a.max_packets - a.n), _copy_packet, <uint8_t*>a)
                if got <= 0:
                    break
        if a.failed:
            a.failed = False
            raise MemoryError()
        if got < 0 and got != PCAP_ERROR_BREAK:
            raise PcapError(_text(pcap_geterr(p)))
        return a.n

    def take(self):
        """The batch read so far as columns (data with PAD zero bytes after the last
        packet, offset, caplen, wirelen, ts in ns), None if it is empty; the handle's
        batch starts empty again."""
        cdef Acc* a = &self.acc
        if a.n == 0:
            return None
        out = (_bytes(a.data, a.used), _column(a.offset, a.n), _column(a.caplen, a.n),
               _column(a.wirelen, a.n), _column(a.ts, a.n))
        a.n = 0
        a.used = 0
        return out

    def stats(self) -> tuple[int, int, int]:
        """(received, dropped by the kernel, dropped by the interface) since activation."""
        cdef pcap_stat s
        cdef pcap_t* p = self._open()
        if pcap_stats(p, &s) < 0:
            raise PcapError(_text(pcap_geterr(p)))
        return s.ps_recv, s.ps_drop, s.ps_ifdrop


cdef object _bytes(const uint8_t* src, Py_ssize_t n):
    out = np.empty(n + PAD, np.uint8)
    cdef uint8_t[::1] o = out
    if n:
        memcpy(&o[0], src, n)
    memset(&o[n], 0, PAD)
    return out


cdef object _column(const int64_t* src, Py_ssize_t n):
    out = np.empty(n, np.int64)
    cdef int64_t[::1] o = out
    memcpy(&o[0], src, n * sizeof(int64_t))
    return out


cdef class Filter:
    """A tcpdump-syntax expression compiled for one link type, libpcap's DLT_* (a file's
    LINKTYPE_* through `live.dlt_of`)."""

    cdef bpf_program prog
    cdef bint compiled

    def __cinit__(self, str expr, int linktype, int snaplen = 262144):
        cdef pcap_t* dead = pcap_open_dead(linktype, snaplen)
        cdef bytes text = expr.encode()
        if dead == NULL:
            raise MemoryError()
        try:
            if pcap_compile(dead, &self.prog, text, 1, PCAP_NETMASK_UNKNOWN) < 0:
                raise PcapError(_text(pcap_geterr(dead)))
            self.compiled = True
        finally:
            pcap_close(dead)

    def __dealloc__(self):
        if self.compiled:
            pcap_freecode(&self.prog)

    def match(self, const uint8_t[::1] data, const int64_t[::1] offset,
              const int64_t[::1] caplen, const int64_t[::1] wirelen, uint8_t[::1] keep,
              const int32_t[::1] linktype = None, int only = 0) -> None:
        """keep[i] = whether packet i (data[offset[i]:offset[i] + caplen[i]], wirelen[i]
        bytes on the wire) matches; if `linktype` is given, only where linktype[i] ==
        `only` (keep[i] is left as it is elsewhere)."""
        cdef Py_ssize_t n = offset.shape[0], i
        cdef pcap_pkthdr h
        cdef int64_t start, size, most = 0xFFFFFFFF
        cdef bint every = linktype is None
        cdef const uint8_t* base = &data[0] if data.shape[0] else <const uint8_t*>""
        if caplen.shape[0] != n or wirelen.shape[0] != n or keep.shape[0] != n or (
                not every and linktype.shape[0] != n):
            raise ValueError("columns of different lengths")
        for i in range(n):
            start, size = offset[i], caplen[i]
            if start < 0 or size < 0 or size > most or size > data.shape[0] - start:
                raise ValueError(f"packet {i} lies outside the data")
        memset(&h, 0, sizeof(h))
        with nogil:
            for i in range(n):
                if not every and linktype[i] != only:
                    continue
                h.caplen = <bpf_u_int32>caplen[i]
                h.len = <bpf_u_int32>min(max(wirelen[i], caplen[i]), most)
                keep[i] = pcap_offline_filter(&self.prog, &h, base + offset[i]) != 0
