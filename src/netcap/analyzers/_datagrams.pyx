# cython: language_level=3
"""The datagram-only analyzers, compiled: DHCPv4 / BOOTP (RFC 2131, 2132) and NTP
(RFC 5905), one message or a batch's messages per call. (DNS has its own module,
`_dns`: TCP streams use it too.)

DHCPv4: the fixed 236-byte part, the magic cookie and the options up to the end
option. Option values become text (DHCPOption.Data is a string in the Go Netcap's
format): address options as dotted quads joined by commas, names and other text options
as sent (bytes outside printable ASCII, and backslashes, as \\xHH), everything else as
hex. The Fingerprint is the parameter request list (option 55) as comma-separated codes,
the usual DHCP client fingerprint.

NTP: the 48-byte header; anything after it (extension fields, a MAC) is kept as
ExtensionBytes. Timestamps stay raw 64-bit NTP fixed-point values, as the Go Netcap
writes them. The header has a fixed layout, so a batch's messages become columns
(`ntp_columns`); `parse_ntp` is the same for one message (a test keeps the two equal).

Every read of a message goes through the bounded reader (`_buf.pxd`); an error is a
reason index internally (0: none), `DecodeError` at the Python face.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int8_t, int16_t, int64_t, uint8_t, uint32_t, uint64_t

import numpy as np

from netcap._buf cimport (
    Reader,
    find,
    here,
    left,
    payload_at,
    reader,
    seek,
    sub,
    u8,
    u16,
    u32,
    u64,
)

from netcap.decode.errors import REASONS, DecodeError, code
from netcap.records.table import Ragged

cdef int DHCP_TRUNCATED = code("dhcp", "truncated")
cdef int DHCP_BAD_MAGIC = code("dhcp", "bad_magic")
cdef int DHCP_BAD_OPTION_LENGTH = code("dhcp", "bad_option_length")
cdef int NTP_TRUNCATED = code("ntp", "truncated")

cdef enum:
    MAGIC = 0x63825363
    PAD = 0
    END = 255
    MESSAGE_TYPE = 53
    PARAMS = 55
    # The longest option text: 255 bytes as \xHH, or as "255," codes.
    OPTION_TEXT = 4 * 255 + 8
    # What an option's value is (KIND below).
    RAW = 0
    ADDRESSES = 1
    TEXT = 2

MESSAGE_TYPES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak",
                 7: "release", 8: "inform"}
# Options whose value is a list of IPv4 addresses.
_ADDRESS_OPTIONS = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 21, 28, 32, 33, 41, 42, 44,
                              45, 48, 49, 50, 54, 65, 68, 69, 70, 71, 72, 73, 74, 75, 76,
                              118})
# Options whose value is text.
_TEXT_OPTIONS = frozenset({12, 14, 15, 17, 18, 40, 47, 56, 60, 62, 64, 66, 67, 81, 114})

cdef uint8_t KIND[256]
for _code in range(256):
    KIND[_code] = (ADDRESSES if _code in _ADDRESS_OPTIONS else TEXT if _code in _TEXT_OPTIONS
                   else RAW)

cdef const char* HEX = b"0123456789abcdef"


cdef inline Py_ssize_t put_decimal(char* out, unsigned int v) noexcept:
    """v (0..255) in decimal; the digits written."""
    if v >= 100:
        out[0] = <char>(48 + v // 100)
        out[1] = <char>(48 + (v // 10) % 10)
        out[2] = <char>(48 + v % 10)
        return 3
    if v >= 10:
        out[0] = <char>(48 + v // 10)
        out[1] = <char>(48 + v % 10)
        return 2
    out[0] = <char>(48 + v)
    return 1


cdef bytes option_text(uint8_t opt, Reader raw):
    """An option's value as text (see the module docstring)."""
    cdef char out[OPTION_TEXT]
    cdef Py_ssize_t k = 0, size = left(&raw), i, _i
    cdef uint8_t b
    if KIND[opt] == ADDRESSES and size and size % 4 == 0:
        for i in range(size):
            if i:
                out[k] = b'.' if i % 4 else b','
                k += 1
            k += put_decimal(out + k, u8(&raw))
    elif KIND[opt] == TEXT:
        size = text_size(&raw)
        for _i in range(size):
            b = u8(&raw)
            if 0x20 <= b <= 0x7E and b != 0x5C:
                out[k] = <char>b
                k += 1
            else:
                out[k] = b'\\'
                out[k + 1] = b'x'
                out[k + 2] = HEX[b >> 4]
                out[k + 3] = HEX[b & 15]
                k += 4
    elif opt == MESSAGE_TYPE and size == 1:
        k = put_decimal(out, u8(&raw))
    else:
        for _i in range(size):
            b = u8(&raw)
            out[k] = HEX[b >> 4]
            out[k + 1] = HEX[b & 15]
            k += 2
    return PyBytes_FromStringAndSize(out, k)


cdef Py_ssize_t text_size(const Reader* raw) noexcept:
    """The value's length without trailing NULs (text options are often NUL-ended)."""
    cdef Reader probe = raw[0]
    cdef Py_ssize_t size = left(raw), last = -1, i
    for i in range(size):
        if u8(&probe) != 0:
            last = i
    return last + 1


cdef bytes fingerprint(Reader raw):
    """Option 55's codes, comma-separated."""
    cdef char out[OPTION_TEXT]
    cdef Py_ssize_t k = 0, i, size = left(&raw)
    for i in range(size):
        if i:
            out[k] = b','
            k += 1
        k += put_decimal(out + k, u8(&raw))
    return PyBytes_FromStringAndSize(out, k)


cdef inline bytes take(Reader* r, Py_ssize_t pos, Py_ssize_t size):
    """Bytes pos..pos+size of a message already checked to hold them."""
    seek(r, pos)
    cdef Reader s = sub(r, size)
    if s.bad:  # invariant (callers check lengths first)
        raise IndexError("read outside the message")
    return PyBytes_FromStringAndSize(<const char*>here(&s), size)


cdef inline bytes until_nul(Reader* r, Py_ssize_t pos, Py_ssize_t size):
    """A fixed-size field cut at its first NUL (sname, file)."""
    seek(r, pos)
    cdef Reader s = sub(r, size)
    cdef Py_ssize_t nul = find(&s, 0)
    return take(r, pos, size if nul < 0 else nul)


cdef object dhcp_message(const uint8_t* data, Py_ssize_t n, int* err):
    """The DHCPv4 record fields of one message; None with err[0] set if malformed."""
    cdef Reader m = reader(data, n)
    cdef Reader* r = &m
    cdef Reader raw
    cdef Py_ssize_t pos = 240
    cdef uint8_t opt, size
    err[0] = 0
    if n < 240:
        err[0] = DHCP_TRUNCATED
        return None
    seek(r, 236)
    if u32(r) != MAGIC:
        err[0] = DHCP_BAD_MAGIC
        return None
    seek(r, 0)
    cdef uint8_t op = u8(r), htype = u8(r), hlen = u8(r), hops = u8(r)
    cdef uint32_t xid = u32(r)
    cdef unsigned int secs = u16(r), flags = u16(r)
    rec = {
        "Operation": op, "HardwareType": htype, "HardwareLen": hlen, "HardwareOpts": hops,
        "Xid": xid, "Secs": secs, "Flags": flags,
        "ClientIP": take(r, 12, 4), "YourClientIP": take(r, 16, 4),
        "NextServerIP": take(r, 20, 4), "RelayAgentIP": take(r, 24, 4),
        "ClientHWAddr": take(r, 28, hlen if hlen < 16 else 16),
        "ServerName": until_nul(r, 44, 64), "File": until_nul(r, 108, 128),
    }
    options = []
    while pos < n:
        seek(r, pos)
        opt = u8(r)
        if opt == PAD:
            pos += 1
            continue
        if opt == END:
            break
        if pos + 1 >= n:
            err[0] = DHCP_BAD_OPTION_LENGTH
            return None
        size = u8(r)
        if pos + 2 + size > n:
            err[0] = DHCP_BAD_OPTION_LENGTH
            return None
        raw = sub(r, size)
        options.append({"Type": opt, "Length": size, "Data": option_text(opt, raw)})
        if opt == PARAMS:
            rec["Fingerprint"] = fingerprint(raw)
        pos += 2 + size
    rec["Options"] = options
    return rec


cdef inline const uint8_t* start_of(const uint8_t[::1] msg) noexcept:
    return &msg[0] if msg.shape[0] else NULL


def parse_dhcp(const uint8_t[::1] msg not None):
    """The DHCPv4 record fields of one message."""
    cdef int err
    rec = dhcp_message(start_of(msg), msg.shape[0], &err)
    if err:
        raise DecodeError(*REASONS[err])
    return rec


def parse_ntp(const uint8_t[::1] msg not None):
    """The NTP record fields of one message."""
    cdef Py_ssize_t n = msg.shape[0]
    if n < 48:
        raise DecodeError("ntp", "truncated")
    cdef Reader m = reader(&msg[0], n)
    cdef Reader* r = &m
    cdef uint8_t first = u8(r), stratum = u8(r)
    cdef int8_t poll = <int8_t>u8(r), precision = <int8_t>u8(r)
    cdef uint32_t delay = u32(r), dispersion = u32(r), ref_id = u32(r)
    cdef uint64_t ref_ts = u64(r), orig_ts = u64(r), recv_ts = u64(r), xmit_ts = u64(r)
    return {
        "LeapIndicator": first >> 6, "Version": (first >> 3) & 0x7, "Mode": first & 0x7,
        "Stratum": stratum, "Poll": poll, "Precision": precision, "RootDelay": delay,
        "RootDispersion": dispersion, "ReferenceID": ref_id, "ReferenceTimestamp": ref_ts,
        "OriginTimestamp": orig_ts, "ReceiveTimestamp": recv_ts,
        "TransmitTimestamp": xmit_ts, "ExtensionBytes": take(r, 48, n - 48),
    }


def dhcp_batch(const uint8_t[::1] data not None, const int64_t[::1] poff not None,
               const int64_t[::1] size not None):
    """Every payload data[poff[i]:poff[i]+size[i]] parsed: (records of those that parsed,
    their indexes, indexes of those that failed, their reasons)."""
    cdef Py_ssize_t i, m = poff.shape[0], nok = 0, nbad = 0
    cdef int err
    cdef int64_t[::1] ok = np.empty(m, np.int64)
    cdef int64_t[::1] bad = np.empty(m, np.int64)
    cdef int16_t[::1] reasons = np.empty(m, np.int16)
    recs = []
    for i in range(m):
        rec = dhcp_message(payload_at(data, poff[i], size[i]), size[i], &err)
        if err:
            bad[nbad] = i
            reasons[nbad] = <int16_t>err
            nbad += 1
        else:
            recs.append(rec)
            ok[nok] = i
            nok += 1
    return recs, np.asarray(ok[:nok]), np.asarray(bad[:nbad]), np.asarray(reasons[:nbad])


def ntp_columns(data_array, poff_array, size_array):
    """The NTP record columns of messages at data[poff:poff+size], all of at least 48
    bytes (shorter ones are `ntp/truncated`: the caller leaves them out)."""
    cdef const uint8_t[::1] data = data_array
    cdef const int64_t[::1] poff = poff_array
    cdef const int64_t[::1] size = size_array
    cdef Py_ssize_t i, m = poff.shape[0]
    cdef Reader r
    cdef uint8_t first
    cdef int64_t[:, ::1] small = np.empty((9, m), np.int64)
    cdef uint64_t[:, ::1] stamps = np.empty((4, m), np.uint64)
    for i in range(m):
        if size[i] < 48:  # invariant (the caller filters)
            raise ValueError("NTP message shorter than its header")
        r = reader(payload_at(data, poff[i], size[i]), size[i])
        first = u8(&r)
        small[0, i] = first >> 6
        small[1, i] = (first >> 3) & 7
        small[2, i] = first & 7
        small[3, i] = u8(&r)
        small[4, i] = <int8_t>u8(&r)
        small[5, i] = <int8_t>u8(&r)
        small[6, i] = u32(&r)
        small[7, i] = u32(&r)
        small[8, i] = u32(&r)
        stamps[0, i] = u64(&r)
        stamps[1, i] = u64(&r)
        stamps[2, i] = u64(&r)
        stamps[3, i] = u64(&r)
    s = np.asarray(small)
    t = np.asarray(stamps)
    starts = np.asarray(poff_array, np.int64) + 48
    return {
        "LeapIndicator": s[0], "Version": s[1], "Mode": s[2], "Stratum": s[3],
        "Poll": s[4], "Precision": s[5], "RootDelay": s[6], "RootDispersion": s[7],
        "ReferenceID": s[8], "ReferenceTimestamp": t[0], "OriginTimestamp": t[1],
        "ReceiveTimestamp": t[2], "TransmitTimestamp": t[3],
        "ExtensionBytes": Ragged.gather(data_array, starts,
                                        np.asarray(size_array, np.int64) - 48),
    }
