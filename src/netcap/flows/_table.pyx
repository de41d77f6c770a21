# cython: language_level=3
"""The flow stage compiled: a batch's TCP/UDP rows summarized per flow (`summarize`), and
the connection table those summaries merge into (`Table`), each one call per batch.

`summarize` groups rows by canonical key with a C hash table (one pass over the rows, no
sort of the rows); flows come out ordered as the numpy version ordered them (by the
64-bit mix of their key words, or by the words themselves if two keys share a mix), so
the table's row order, and with it the order of ended connections with equal start
times and of evictions with equal last times, is what it was. A flow's rows are cut
into segments (in batch order, each one a row of the summary) wherever a packet comes
longer than the split time after the flow's previous one: the places where the table's
rule may end a connection, which the table decides per segment (`Table._update`), so a
connection is the same whichever batches its packets come in.

`Table` keeps the open flows in one C array in insertion order (what the numpy table's
rows were) with an open-addressing index from key to row; removing flows compacts the
array and rebuilds the index (at most once per batch). Reads no packet bytes but the
12 MAC bytes of a flow's first Ethernet frame (typed memoryviews, bounds-checked).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcmp, memcpy, memset

import numpy as np

cdef enum:
    KEY = 38  # key bytes: version, transport, A address, A port, B address, B port
    NFLAGS = 9  # TCP flag counts, in extract.TCP_FLAG_COLUMNS order
    TCP = 6
    ETHERNET = 1
    NAPPS = 6
    APP_ENTRY = 38  # extract.APP_ENTRY_BYTES

cdef uint64_t[5] MIX
MIX[0] = 0x9E3779B97F4A7C15
MIX[1] = 0xC2B2AE3D27D4EB4F
MIX[2] = 0x165667B19E3779F9
MIX[3] = 0x27D4EB2F165667C5
MIX[4] = 0xFF51AFD7ED558CCD


cdef inline uint64_t _mix(const uint64_t* part) noexcept nogil:
    """extract.group_rows' mix of the five key words."""
    cdef uint64_t h = 0
    cdef int k
    for k in range(5):
        h ^= part[k] * MIX[k]
        h = (h << 23) | (h >> 41)
    return h


cdef inline int64_t _since(int64_t now, int64_t then) noexcept nogil:
    """now - then, wrapping as 64-bit numpy's does (packet times may jump anywhere): the
    idle times and gaps the connection rule compares."""
    return <int64_t>(<uint64_t>now - <uint64_t>then)


cdef inline uint64_t _pow2(int64_t n) noexcept nogil:
    cdef uint64_t c = 16
    while c < <uint64_t>n:
        c <<= 1
    return c


# -- per-batch summaries ------------------------------------------------------------------

cdef struct Group:
    uint64_t h
    uint64_t part[5]  # A address hi, lo; B address hi, lo; version|transport|ports
    int64_t first_pkt  # packet (batch index) of the segment's first row
    int64_t first_ts, last_ts
    int64_t start_ts, prev_ts  # time of the segment's first and latest row, in batch order
    int64_t packets[2]
    int64_t wire[2]
    int64_t payload
    int64_t flags[NFLAGS]
    int64_t window, tcp_packets
    int64_t syn_ts, synack_ts
    int64_t ack_ts[2]
    uint8_t first_ab, v6, proto, syn_ab, rst, app, has_syn, has_synack
    uint8_t fin[2]
    uint8_t has_ack[2]


cdef class _Groups:
    """Flow segments of one batch, in order of first appearance, and a hash index from
    key to its latest segment."""
    cdef Group* g
    cdef int64_t n, cap
    cdef int64_t* index  # -1: empty
    cdef uint64_t mask
    cdef uint64_t slot  # the index slot `find` last returned

    def __cinit__(self, int64_t rows):
        self.cap = 256
        self.g = <Group*>malloc(self.cap * sizeof(Group))
        cdef uint64_t size = _pow2(2 * rows)
        self.index = <int64_t*>malloc(size * sizeof(int64_t))
        if self.g == NULL or self.index == NULL:
            raise MemoryError()
        memset(self.index, 0xFF, size * sizeof(int64_t))
        self.mask = size - 1

    def __dealloc__(self):
        free(self.g)
        free(self.index)

    cdef Group* find(self, const uint64_t* part, bint* new) except NULL:
        cdef uint64_t h = _mix(part)
        cdef uint64_t i = h & self.mask
        cdef int64_t at
        while True:
            at = self.index[i]
            if at < 0:
                break
            if self.g[at].h == h and memcmp(self.g[at].part, part, 5 * sizeof(uint64_t)) == 0:
                new[0] = False
                self.slot = i
                return &self.g[at]
            i = (i + 1) & self.mask
        self.slot = i
        new[0] = True
        return self.add(h, part)

    cdef Group* add(self, uint64_t h, const uint64_t* part) except NULL:
        """A new segment of a key, indexed at `slot` (the key's slot from `find`)."""
        cdef Group* grown
        if self.n == self.cap:
            grown = <Group*>realloc(self.g, 2 * self.cap * sizeof(Group))
            if grown == NULL:
                raise MemoryError()
            self.g = grown
            self.cap *= 2
        self.index[self.slot] = self.n
        cdef Group* g = &self.g[self.n]
        self.n += 1
        memset(g, 0, sizeof(Group))
        g.h = h
        memcpy(g.part, part, 5 * sizeof(uint64_t))
        return g


cdef inline void _addr(const uint8_t[:] data, int64_t start, int64_t n, uint64_t* hi,
                       uint64_t* lo):
    """extract.addr_words for one address: 4 bytes are the low word, 16 both words,
    anything else zeros."""
    cdef int k
    hi[0] = 0
    lo[0] = 0
    if n == 4:
        for k in range(4):
            lo[0] = (lo[0] << 8) | data[start + k]
    elif n == 16:
        for k in range(8):
            hi[0] = (hi[0] << 8) | data[start + k]
        for k in range(8):
            lo[0] = (lo[0] << 8) | data[start + 8 + k]


cdef int _rows(_Groups gs, int proto, const int64_t[:] pkt,
               const uint8_t[:] sdata, const int64_t[:] slens,
               const uint8_t[:] ddata, const int64_t[:] dlens,
               const int64_t[:] sport, const int64_t[:] dport, const int64_t[:] payload,
               list flags, const int64_t[:] window,
               const int64_t[:] ts, const int64_t[:] wirelen, const uint8_t[:] pktapp,
               int64_t split_ns) except -1:
    """One transport's rows (`flags` and `window` for TCP only, else None) into gs, a new
    segment of a flow where a row comes more than `split_ns` after its previous one."""
    cdef const uint8_t[:] f0, f1, f2, f3, f4, f5, f6, f7, f8
    cdef bint tcp = flags is not None
    if tcp:
        f0, f1, f2, f3, f4, f5, f6, f7, f8 = flags
    cdef Py_ssize_t n = pkt.shape[0], i
    cdef int64_t spos = 0, dpos = 0, sp, dp, p, t, ap, bp
    cdef uint64_t sh, sl, dh, dl
    cdef uint64_t part[5]
    cdef bint ab, v6, new, fin, rst, ack, syn
    cdef int d, j
    cdef uint8_t f[NFLAGS]
    cdef uint8_t pa
    cdef Group* g
    for i in range(n):
        _addr(sdata, spos, slens[i], &sh, &sl)
        _addr(ddata, dpos, dlens[i], &dh, &dl)
        spos += slens[i]
        dpos += dlens[i]
        v6 = slens[i] == 16
        sp = sport[i]
        dp = dport[i]
        # canonical side A: the lower (address, port)
        ab = sh < dh or (sh == dh and (sl < dl or (sl == dl and sp <= dp)))
        if ab:
            part[0], part[1], part[2], part[3], ap, bp = sh, sl, dh, dl, sp, dp
        else:
            part[0], part[1], part[2], part[3], ap, bp = dh, dl, sh, sl, dp, sp
        part[4] = ((<uint64_t>v6 << 40) | (<uint64_t>proto << 32) | (<uint64_t>ap << 16)
                   | <uint64_t>bp)
        g = gs.find(part, &new)
        p = pkt[i]
        t = ts[p]
        d = 0 if ab else 1
        if not new and _since(t, g.prev_ts) > split_ns:
            g = gs.add(g.h, part)
            new = True
        if new:
            g.first_pkt = p
            g.first_ts = t
            g.last_ts = t
            g.start_ts = t
            g.first_ab = ab
            g.v6 = v6
            g.proto = <uint8_t>proto
        else:
            if t < g.first_ts:
                g.first_ts = t
            if t > g.last_ts:
                g.last_ts = t
        g.prev_ts = t
        g.packets[d] += 1
        g.wire[d] += wirelen[p]
        g.payload += payload[i]
        pa = pktapp[p]
        if pa and (g.app == 0 or pa < g.app):
            g.app = pa
        if not tcp:
            continue
        f[0], f[1], f[2], f[3], f[4] = f0[i] != 0, f1[i] != 0, f2[i] != 0, f3[i] != 0, f4[i] != 0
        f[5], f[6], f[7], f[8] = f5[i] != 0, f6[i] != 0, f7[i] != 0, f8[i] != 0
        for j in range(NFLAGS):
            g.flags[j] += f[j]
        g.window += window[i]
        g.tcp_packets += 1
        fin, rst, ack, syn = f[0], f[1], f[2], f[3]
        if syn and not ack and not g.has_syn:
            g.has_syn = True
            g.syn_ts = t
            g.syn_ab = ab
        if syn and ack and not g.has_synack:
            g.has_synack = True
            g.synack_ts = t
        if ack and not syn and not fin and not rst and not g.has_ack[d]:
            g.has_ack[d] = True
            g.ack_ts[d] = t
        if fin:
            g.fin[d] = True
        if rst:
            g.rst = True
    return 0


cdef int _by_mix(const void* a, const void* b) noexcept nogil:
    """By mix, a key's segments in the order they came (their place in _Groups.g)."""
    cdef const Group* x = (<const Group**>a)[0]
    cdef const Group* y = (<const Group**>b)[0]
    if x.h != y.h:
        return 1 if x.h > y.h else -1
    return (x > y) - (x < y)


cdef int _by_parts(const void* a, const void* b) noexcept nogil:
    cdef const Group* x = (<const Group**>a)[0]
    cdef const Group* y = (<const Group**>b)[0]
    cdef int k
    for k in range(5):
        if x.part[k] != y.part[k]:
            return 1 if x.part[k] > y.part[k] else -1
    return (x > y) - (x < y)


def summarize(list parts, const int64_t[:] ts, const int64_t[:] wirelen,
              const int32_t[:] linktype, const uint8_t[:] data, const int64_t[:] offset,
              list apps, int64_t tcp_timeout_ns, int64_t udp_timeout_ns, int64_t linger_ns):
    """Flow segments of one batch. `parts`: per transport present, (proto, pkt, src data,
    src lens, dst data, dst lens, sport, dport, payload, flags or None, window or None);
    `apps`: the packet indexes of the DNS, NTP and DHCPv4 records. A flow's rows are
    split where the rule of a `Table` with these limits may end its connection: where one
    comes more than the linger (TCP: a closed connection's end) or the timeout after the
    one before. The FlowBatch fields, in its order."""
    cdef Py_ssize_t npk = ts.shape[0], rows = 0, k, i
    for part in parts:
        rows += len(part[1])
    # per packet: 1 + the first of APP_PROTOCOLS[:3] with a record on it, 0: none
    pktapp_arr = np.zeros(npk, np.uint8)
    cdef uint8_t[:] pktapp = pktapp_arr
    cdef const int64_t[:] on
    for k in range(len(apps) - 1, -1, -1):
        if apps[k] is None:
            continue
        on = apps[k]
        for i in range(on.shape[0]):
            pktapp[on[i]] = <uint8_t>(k + 1)
    cdef _Groups gs = _Groups(rows)
    for part in parts:
        _rows(gs, part[0], part[1], part[2], part[3], part[4], part[5], part[6], part[7],
              part[8], part[9], part[10], ts, wirelen, pktapp,
              min(linger_ns, tcp_timeout_ns) if part[0] == TCP else udp_timeout_ns)
    cdef int64_t m = gs.n
    cdef Group** order = <Group**>malloc(max(m, 1) * sizeof(Group*))
    if order == NULL:
        raise MemoryError()
    for i in range(m):
        order[i] = &gs.g[i]
    qsort(order, m, sizeof(Group*), _by_mix)
    for i in range(1, m):
        if order[i].h == order[i - 1].h and memcmp(
                order[i].part, order[i - 1].part, 5 * sizeof(uint64_t)) != 0:
            qsort(order, m, sizeof(Group*), _by_parts)  # two keys share a mix: by the words
            break
    key_a = np.zeros((m, KEY), np.uint8)
    first_ts_a = np.empty(m, np.int64)
    last_ts_a = np.empty(m, np.int64)
    start_ts_a = np.empty(m, np.int64)
    first_ab_a = np.zeros(m, np.bool_)
    packets_a = np.empty((m, 2), np.int64)
    wire_a = np.empty((m, 2), np.int64)
    payload_a = np.empty(m, np.int64)
    flags_a = np.empty((m, NFLAGS), np.int64)
    window_a = np.empty(m, np.int64)
    tcp_a = np.empty(m, np.int64)
    syn_ts_a = np.empty(m, np.int64)
    syn_ab_a = np.zeros(m, np.bool_)
    synack_a = np.empty(m, np.int64)
    ack_a = np.empty((m, 2), np.int64)
    fin_a = np.zeros((m, 2), np.bool_)
    rst_a = np.zeros(m, np.bool_)
    link_a = np.empty(m, np.int64)
    macs_a = np.zeros((m, 12), np.uint8)
    app_a = np.empty(m, np.int64)
    cdef uint8_t[:, :] key = key_a, fin = fin_a.view(np.uint8), macs = macs_a
    cdef int64_t[:] first_ts = first_ts_a, last_ts = last_ts_a, payload = payload_a
    cdef int64_t[:] start_ts = start_ts_a
    cdef int64_t[:] window = window_a, tcp = tcp_a, syn_ts = syn_ts_a, synack = synack_a
    cdef int64_t[:] link = link_a, app = app_a
    cdef int64_t[:, :] packets = packets_a, wire = wire_a, flags = flags_a, ack = ack_a
    cdef uint8_t[:] first_ab = first_ab_a.view(np.uint8), syn_ab = syn_ab_a.view(np.uint8)
    cdef uint8_t[:] rst = rst_a.view(np.uint8)
    cdef Group* g
    cdef int j, b
    cdef int64_t at
    try:
        for i in range(m):
            g = order[i]
            key[i, 0] = 6 if g.v6 else 4
            key[i, 1] = g.proto
            for b in range(8):
                key[i, 2 + b] = <uint8_t>(g.part[0] >> (56 - 8 * b))
                key[i, 10 + b] = <uint8_t>(g.part[1] >> (56 - 8 * b))
                key[i, 20 + b] = <uint8_t>(g.part[2] >> (56 - 8 * b))
                key[i, 28 + b] = <uint8_t>(g.part[3] >> (56 - 8 * b))
            key[i, 18] = <uint8_t>(g.part[4] >> 24)
            key[i, 19] = <uint8_t>(g.part[4] >> 16)
            key[i, 36] = <uint8_t>(g.part[4] >> 8)
            key[i, 37] = <uint8_t>g.part[4]
            first_ts[i] = g.first_ts
            last_ts[i] = g.last_ts
            start_ts[i] = g.start_ts
            first_ab[i] = g.first_ab
            for j in range(2):
                packets[i, j] = g.packets[j]
                wire[i, j] = g.wire[j]
                ack[i, j] = g.ack_ts[j] if g.has_ack[j] else -1
                fin[i, j] = g.fin[j]
            payload[i] = g.payload
            for j in range(NFLAGS):
                flags[i, j] = g.flags[j]
            window[i] = g.window
            tcp[i] = g.tcp_packets
            syn_ts[i] = g.syn_ts if g.has_syn else -1
            syn_ab[i] = g.syn_ab
            synack[i] = g.synack_ts if g.has_synack else -1
            rst[i] = g.rst
            app[i] = g.app
            link[i] = linktype[g.first_pkt]
            if link[i] == ETHERNET:
                at = offset[g.first_pkt]
                for j in range(12):
                    if at + j < data.shape[0]:
                        macs[i, j] = data[at + j]
    finally:
        free(order)
    return (key_a, first_ts_a, last_ts_a, start_ts_a, first_ab_a, packets_a, wire_a,
            payload_a, flags_a, window_a, tcp_a, syn_ts_a, syn_ab_a, synack_a, ack_a, fin_a,
            rst_a, link_a, macs_a, app_a)


# -- the connection table -----------------------------------------------------------------

cdef struct Flow:
    uint8_t key[40]  # KEY bytes, then two zeros (five whole words to hash)
    uint64_t h
    int64_t first_ts, last_ts
    int64_t packets[2]
    int64_t wire[2]
    int64_t payload
    int64_t flags[NFLAGS]
    int64_t window, tcp_packets
    int64_t syn_ts, synack_ts, link, app
    int64_t row  # position when sorted (stable sorts compare it last)
    uint8_t a_first, syn_ab, rtt_done, rst, ended
    uint8_t dead  # ended by a later segment of its key in this batch (out of the index)
    uint8_t fin[2]
    uint8_t macs[12]


cdef inline uint64_t _key_hash(const uint8_t* key) noexcept nogil:
    cdef uint64_t w[5]
    memcpy(w, key, 40)
    return _mix(w)


cdef int _by_first(const void* a, const void* b) noexcept nogil:
    cdef const Flow* x = <const Flow*>a
    cdef const Flow* y = <const Flow*>b
    if x.first_ts != y.first_ts:
        return 1 if x.first_ts > y.first_ts else -1
    return (x.row > y.row) - (x.row < y.row)


cdef int _by_last(const void* a, const void* b) noexcept nogil:
    cdef const Flow* x = (<const Flow**>a)[0]
    cdef const Flow* y = (<const Flow**>b)[0]
    if x.last_ts != y.last_ts:
        return 1 if x.last_ts > y.last_ts else -1
    return (x.row > y.row) - (x.row < y.row)


cdef class Table:
    """The open flows (see table.py for the rules: this is their C half)."""
    cdef Flow* rows
    cdef int64_t n, cap
    cdef int64_t* index  # row of a key, -1: empty
    cdef uint64_t mask
    cdef public int64_t max_flows, tcp_timeout_ns, udp_timeout_ns, linger_ns, clock
    cdef public list rtts

    def __cinit__(self, *args, **kw):
        self.cap = 64
        self.rows = <Flow*>malloc(self.cap * sizeof(Flow))
        self.index = <int64_t*>malloc(128 * sizeof(int64_t))
        if self.rows == NULL or self.index == NULL:
            raise MemoryError()
        memset(self.index, 0xFF, 128 * sizeof(int64_t))
        self.mask = 127

    def __init__(self, int64_t max_flows, int64_t tcp_timeout_ns, int64_t udp_timeout_ns,
                 int64_t linger_ns):
        self.max_flows = max_flows
        self.tcp_timeout_ns = tcp_timeout_ns
        self.udp_timeout_ns = udp_timeout_ns
        self.linger_ns = linger_ns
        self.clock = 0
        self.rtts = []  # handshake RTTs (seconds) completed since last taken

    def __dealloc__(self):
        free(self.rows)
        free(self.index)

    def __len__(self):
        return self.n

    cdef uint64_t _slot(self, const uint8_t* key, uint64_t h) noexcept:
        """The index slot of a key: its row's, or the empty one it would take."""
        cdef uint64_t i = h & self.mask
        cdef int64_t at
        while True:
            at = self.index[i]
            if at < 0 or (self.rows[at].h == h and memcmp(self.rows[at].key, key, KEY) == 0):
                return i
            i = (i + 1) & self.mask

    cdef int64_t _find(self, const uint8_t* key, uint64_t h) noexcept:
        return self.index[self._slot(key, h)]

    cdef inline bint _ends(self, const Flow* r, int64_t idle) noexcept:
        """The rule: closed (a RST, or a FIN each way) and idle past the linger, or idle
        past its transport's timeout."""
        return ((r.rst or (r.fin[0] and r.fin[1])) and idle > self.linger_ns) or idle > (
            self.tcp_timeout_ns if r.key[1] == TCP else self.udp_timeout_ns)

    cdef void _put(self, int64_t row) noexcept:
        cdef uint64_t i = self.rows[row].h & self.mask
        while self.index[i] >= 0:
            i = (i + 1) & self.mask
        self.index[i] = row

    cdef int _reserve(self, int64_t more) except -1:
        """Room for `more` rows, and an index at most half full."""
        cdef int64_t want = self.n + more
        cdef Flow* grown
        cdef int64_t* index
        cdef uint64_t size
        if want > self.cap:
            grown = <Flow*>realloc(self.rows, max(want, 2 * self.cap) * sizeof(Flow))
            if grown == NULL:
                raise MemoryError()
            self.rows = grown
            self.cap = max(want, 2 * self.cap)
        if <uint64_t>(2 * want) > self.mask + 1:
            size = _pow2(4 * want)
            index = <int64_t*>malloc(size * sizeof(int64_t))
            if index == NULL:
                raise MemoryError()
            free(self.index)
            self.index = index
            self._reindex(size)
        return 0

    cdef void _reindex(self, uint64_t size) noexcept:
        self.mask = size - 1
        memset(self.index, 0xFF, size * sizeof(int64_t))
        cdef int64_t r
        for r in range(self.n):
            self._put(r)

    def _update(self, fb, apps):
        """Merge a FlowBatch (then `recognise(apps)`); the ended rows or None. A segment
        that comes after its flow's row has ended by the rule (its first packet that
        long after the row's last) ends the row and starts a new one."""
        cdef const uint8_t[:, :] key = fb.key
        cdef const int64_t[:] first_ts = fb.first_ts, last_ts = fb.last_ts
        cdef const int64_t[:] start_ts = fb.start_ts
        cdef const int64_t[:] payload = fb.payload, window = fb.window
        cdef const int64_t[:] tcp = fb.tcp_packets, syn_ts = fb.syn_ts, synack = fb.synack_ts
        cdef const int64_t[:] link = fb.link, app = fb.app
        cdef const int64_t[:, :] packets = fb.packets, wire = fb.wire, flags = fb.flags
        cdef const int64_t[:, :] ack = fb.ack_ts
        cdef const uint8_t[:] first_ab = fb.first_ab.view(np.uint8)
        cdef const uint8_t[:] syn_ab = fb.syn_ab.view(np.uint8), rst = fb.rst.view(np.uint8)
        cdef const uint8_t[:, :] fin = fb.fin_ab.view(np.uint8), macs = fb.macs
        cdef Py_ssize_t m = first_ts.shape[0], i
        cdef int j
        cdef uint8_t k[40]
        cdef uint64_t h
        cdef int64_t at, client_ack, latest = 0
        cdef uint64_t slot
        cdef Flow* r
        at_a = np.empty(m, np.int64)
        cdef int64_t[:] rows = at_a
        self._reserve(m)
        memset(k, 0, 40)
        for i in range(m):
            for j in range(KEY):
                k[j] = key[i, j]
            h = _key_hash(k)
            slot = self._slot(k, h)
            at = self.index[slot]
            if at >= 0 and self._ends(&self.rows[at], _since(start_ts[i], self.rows[at].last_ts)):
                self.rows[at].dead = True
                at = -1
            if at < 0:  # a new flow: a row at the end
                at = self.n
                self.n += 1
                r = &self.rows[at]
                memcpy(r.key, k, 40)
                r.h = h
                r.first_ts = first_ts[i]
                r.last_ts = last_ts[i]
                r.a_first = first_ab[i]
                for j in range(2):
                    r.packets[j] = packets[i, j]
                    r.wire[j] = wire[i, j]
                    r.fin[j] = fin[i, j]
                r.payload = payload[i]
                for j in range(NFLAGS):
                    r.flags[j] = flags[i, j]
                r.window = window[i]
                r.tcp_packets = tcp[i]
                r.syn_ts = syn_ts[i]
                r.syn_ab = syn_ab[i]
                r.synack_ts = synack[i]
                r.rtt_done = False
                r.rst = rst[i]
                r.dead = False
                r.link = link[i]
                for j in range(12):
                    r.macs[j] = macs[i, j]
                r.app = app[i]
                self.index[slot] = at
            else:
                r = &self.rows[at]
                r.first_ts = min(r.first_ts, first_ts[i])
                r.last_ts = max(r.last_ts, last_ts[i])
                for j in range(2):
                    r.packets[j] += packets[i, j]
                    r.wire[j] += wire[i, j]
                    r.fin[j] |= fin[i, j]
                r.payload += payload[i]
                for j in range(NFLAGS):
                    r.flags[j] += flags[i, j]
                r.window += window[i]
                r.tcp_packets += tcp[i]
                if r.syn_ts < 0 and syn_ts[i] >= 0:
                    r.syn_ts = syn_ts[i]
                    r.syn_ab = syn_ab[i]
                if r.synack_ts < 0:
                    r.synack_ts = synack[i]
                r.rst |= rst[i]
                if r.app == 0:
                    r.app = app[i]
            rows[i] = at
        self.recognise(apps)
        for i in range(m):
            r = &self.rows[rows[i]]
            # handshake RTT: SYN -> the client's first pure ACK after the SYN+ACK
            if r.syn_ts >= 0 and r.synack_ts >= 0 and not r.rtt_done:
                client_ack = ack[i, 0] if r.syn_ab else ack[i, 1]
                if client_ack >= r.synack_ts:
                    r.rtt_done = True
                    self.rtts.append((client_ack - r.syn_ts) / 1e9)
            if i == 0 or last_ts[i] > latest:
                latest = last_ts[i]
        self.clock = max(self.clock, latest if m else 0)
        return self._expire()

    def recognise(self, apps):
        """See ConnectionTable.recognise (`apps`: extract.APP_ENTRY_BYTES each)."""
        cdef const uint8_t[::1] p = apps
        cdef uint8_t k[40]
        cdef uint8_t a[18]
        cdef uint8_t b[18]
        cdef int64_t at
        cdef const uint8_t* e
        cdef Py_ssize_t i, n, length
        if p.shape[0] % APP_ENTRY:  # invariant (not input): the stream stage packs them
            raise ValueError("recognised connections of a bad size")
        n = p.shape[0] // APP_ENTRY
        for i in range(n):
            e = &p[i * APP_ENTRY]
            length = e[1]
            if e[0] >= NAPPS or length > 16:  # invariant (not input), as above
                raise ValueError("recognised connection out of range")
            memset(a, 0, 18)
            memset(b, 0, 18)
            memcpy(a + 16 - length, e + 2, length)  # addresses right-aligned
            memcpy(a + 16, e + 18, 2)
            memcpy(b + 16 - length, e + 20, length)
            memcpy(b + 16, e + 36, 2)
            memset(k, 0, 40)
            k[0] = 6 if length == 16 else 4
            k[1] = TCP
            if memcmp(a, b, 18) <= 0:
                memcpy(k + 2, a, 18)
                memcpy(k + 20, b, 18)
            else:
                memcpy(k + 2, b, 18)
                memcpy(k + 20, a, 18)
            at = self._find(k, _key_hash(k))
            if at >= 0 and self.rows[at].app == 0:
                self.rows[at].app = e[0] + 1

    def _advance(self, int64_t now):
        self.clock = max(self.clock, now)
        return self._expire()

    cdef object _expire(self):
        cdef int64_t now = self.clock, i, ended = 0, over, rest = 0
        cdef Flow* r
        cdef Flow** order
        for i in range(self.n):
            r = &self.rows[i]
            r.ended = r.dead or self._ends(r, _since(now, r.last_ts))
            ended += r.ended
        over = self.n - ended - self.max_flows
        if over > 0:  # full: the least recently seen of the rest go too
            order = <Flow**>malloc(self.n * sizeof(Flow*))
            if order == NULL:
                raise MemoryError()
            for i in range(self.n):
                r = &self.rows[i]
                if not r.ended:
                    r.row = i
                    order[rest] = r
                    rest += 1
            qsort(order, rest, sizeof(Flow*), _by_last)
            for i in range(min(over, rest)):
                order[i].ended = True
                ended += 1
            free(order)
        if ended == 0:
            return None
        return self._remove(ended, max(over, 0))

    def _flush(self):
        cdef int64_t i
        if self.n == 0:
            return None
        for i in range(self.n):
            self.rows[i].ended = True
        return self._remove(self.n, 0)

    cdef object _remove(self, int64_t count, int64_t evicted):
        """The rows marked ended out of the table (the rest keep their order), as
        (columns, evicted), in the order they started."""
        cdef Flow* gone = <Flow*>malloc(max(count, 1) * sizeof(Flow))
        if gone == NULL:
            raise MemoryError()
        cdef int64_t i, kept = 0, out = 0
        for i in range(self.n):
            if self.rows[i].ended:
                gone[out] = self.rows[i]
                gone[out].row = out
                out += 1
            else:
                if kept != i:
                    self.rows[kept] = self.rows[i]
                kept += 1
        self.n = kept
        self._reindex(self.mask + 1)
        try:
            qsort(gone, out, sizeof(Flow), _by_first)
            return _columns(gone, out), evicted
        finally:
            free(gone)


cdef object _columns(const Flow* f, int64_t n):
    """Ended flows as table._Rows' columns."""
    key_a = np.empty((n, KEY), np.uint8)
    first_a = np.empty(n, np.int64)
    last_a = np.empty(n, np.int64)
    a_first_a = np.zeros(n, np.bool_)
    packets_a = np.empty((n, 2), np.int64)
    wire_a = np.empty((n, 2), np.int64)
    payload_a = np.empty(n, np.int64)
    flags_a = np.empty((n, NFLAGS), np.int64)
    window_a = np.empty(n, np.int64)
    tcp_a = np.empty(n, np.int64)
    link_a = np.empty(n, np.int64)
    macs_a = np.empty((n, 12), np.uint8)
    app_a = np.empty(n, np.int64)
    cdef uint8_t[:, :] key = key_a, macs = macs_a
    cdef int64_t[:] first = first_a, last = last_a, payload = payload_a, window = window_a
    cdef int64_t[:] tcp = tcp_a, link = link_a, app = app_a
    cdef int64_t[:, :] packets = packets_a, wire = wire_a, flags = flags_a
    cdef uint8_t[:] a_first = a_first_a.view(np.uint8)
    cdef int64_t i
    cdef int j
    for i in range(n):
        for j in range(KEY):
            key[i, j] = f[i].key[j]
        for j in range(12):
            macs[i, j] = f[i].macs[j]
        first[i] = f[i].first_ts
        last[i] = f[i].last_ts
        a_first[i] = f[i].a_first
        for j in range(2):
            packets[i, j] = f[i].packets[j]
            wire[i, j] = f[i].wire[j]
        payload[i] = f[i].payload
        for j in range(NFLAGS):
            flags[i, j] = f[i].flags[j]
        window[i] = f[i].window
        tcp[i] = f[i].tcp_packets
        link[i] = f[i].link
        app[i] = f[i].app
    return (key_a, first_a, last_a, a_first_a, packets_a, wire_a, payload_a, flags_a,
            window_a, tcp_a, link_a, macs_a, app_a)


# -- the text columns of Connection records -----------------------------------------------

cdef inline int _decimal(uint8_t* out, int64_t v) noexcept:
    """v (0..65535) in decimal; its length."""
    cdef int n = 1, k
    cdef int64_t x = v
    while x >= 10:
        x //= 10
        n += 1
    x = v
    for k in range(n - 1, -1, -1):
        out[k] = <uint8_t>(48 + x % 10)
        x //= 10
    return n


def texts(const uint8_t[:, :] key, const uint8_t[:] a_first, const uint8_t[:, :] macs,
          const int64_t[:] link, const int64_t[:] first_ts):
    """The per-connection text columns of Connection records, each as Ragged's (data,
    lens): SrcIP, SrcPort, DstIP, DstPort (the originator is side A if `a_first`; an
    IPv4 address is the last 4 of the key's 16 bytes), SrcMAC, DstMAC (of an Ethernet
    first frame, else empty), UID (16 hex digits of the key and start time mixed)."""
    cdef Py_ssize_t n = key.shape[0], i
    cdef int side, j, k, at, w
    cdef uint64_t uid, word
    cdef uint8_t words[48]
    cdef bint v4
    widths = (16, 5, 16, 5, 6, 6, 16)
    datas = [np.empty(n * w, np.uint8) for w in widths]
    lenss = [np.empty(n, np.int64) for _ in widths]
    cdef uint8_t[:] sip = datas[0], sport = datas[1], dip = datas[2], dport = datas[3]
    cdef uint8_t[:] smac = datas[4], dmac = datas[5], uidt = datas[6]
    cdef int64_t[:] sip_n = lenss[0], sport_n = lenss[1], dip_n = lenss[2]
    cdef int64_t[:] dport_n = lenss[3], smac_n = lenss[4], dmac_n = lenss[5], uid_n = lenss[6]
    cdef int64_t pos[7]
    cdef uint8_t digits[5]
    cdef uint8_t[:] ip
    cdef uint8_t[:] port
    memset(pos, 0, sizeof(pos))
    for i in range(n):
        v4 = key[i, 0] == 4
        for side in range(2):  # the originator, then the responder
            at = 2 if (a_first[i] != 0) == (side == 0) else 20  # side A's or B's
            ip, port = (sip, sport) if side == 0 else (dip, dport)
            w = 4 if v4 else 16
            for j in range(w):
                ip[pos[2 * side] + j] = key[i, at + 16 - w + j]
            pos[2 * side] += w
            k = _decimal(digits, (<int64_t>key[i, at + 16] << 8) | key[i, at + 17])
            for j in range(k):
                port[pos[2 * side + 1] + j] = digits[j]
            pos[2 * side + 1] += k
            if side == 0:
                sip_n[i], sport_n[i] = w, k
            else:
                dip_n[i], dport_n[i] = w, k
        if link[i] == ETHERNET:
            for j in range(6):
                smac[pos[4] + j] = macs[i, 6 + j]
                dmac[pos[5] + j] = macs[i, j]
            pos[4] += 6
            pos[5] += 6
            smac_n[i] = dmac_n[i] = 6
        else:
            smac_n[i] = dmac_n[i] = 0
        memset(words, 0, 48)
        for j in range(KEY):
            words[j] = key[i, j]
        for j in range(8):
            words[40 + j] = <uint8_t>(<uint64_t>first_ts[i] >> (8 * j))
        uid = 0
        for k in range(5):
            word = 0
            for j in range(7, -1, -1):  # little-endian words
                word = (word << 8) | words[8 * k + j]
            uid += word * MIX[k]
        word = 0
        for j in range(7, -1, -1):
            word = (word << 8) | words[40 + j]
        uid ^= word
        for j in range(16):
            uidt[pos[6] + j] = b"0123456789abcdef"[(uid >> (60 - 4 * j)) & 15]
        pos[6] += 16
        uid_n[i] = 16
    return [(datas[c][: pos[c]], lenss[c]) for c in range(7)]
