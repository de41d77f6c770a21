# cython: language_level=3
"""SSH identification banners and key-exchange offers (SSH_MSG_KEXINIT), with their
HASSH / HASSH-server fingerprints.

`SshReader` sits on one direction of a reassembled TCP stream (sans-I/O: it is fed bytes,
in order, in chunks of any size, and returns records). It reads

1. the identification line (RFC 4253 4.2): "SSH-protoversion-softwareversion SP comments"
   ended by CR LF. A bare LF is accepted too, as OpenSSH, tshark and the corpus' Cisco and
   OpenSSH 3.9/4.3 servers do. A server may send other lines first (RFC 4253 4.2); they
   are skipped. A client may not: its first bytes must be "SSH-". Everything up to the
   banner is bounded (8 KiB, 32 lines) and a NUL in it is refused (as OpenSSH does),
   so that a binary non-SSH stream is given up on quickly.
2. then binary packets (RFC 4253 6): uint32 packet_length, byte padding_length, payload,
   padding; no MAC yet, because nothing is encrypted before the first NEWKEYS. The first
   SSH_MSG_KEXINIT (20) ends the reading. A few other packets (IGNORE, DEBUG, ...) are
   allowed before it, at most 8: after that the stream is not the SSH we expect.
   packet_length must be 5..35000 (RFC 4253 6.1's size every implementation must
   handle; the KEXINIT is far smaller) and leave at least the message number for the
   payload. Padding's own rules (>= 4 bytes, block multiple) are not checked: they do
   not affect reading, and tshark does not check them either.

The reader emits exactly one record per direction, then is `done` (the rest of the stream
is encrypted and of no use here):
- at the KEXINIT: {"Ident", "Algorithms", "HASSH", "IsClient"};
- for an SSH-1 banner (SSH-1.x, not SSH-1.99 which means "2.0 and 1.x"): {"Ident",
  "Notes": "ssh1", "IsClient"}, since SSH-1 has no KEXINIT;
- when the stream goes wrong after the banner: {"Ident", "Notes": <reason>, "IsClient"},
  so that the banner is not lost; `violation` holds the same reason;
- from `finish()` (end of stream) after a banner without a KEXINIT: Notes "no_kexinit".
Before a banner nothing is recorded (there is nothing SSH about the stream). The caller
adds Timestamp and Flow.

Violations (`violation`, stable: also ("ssh", reason) in decode.errors.REASONS):
"bad_banner" (no SSH identification line within the bounds, a NUL in it, a client line
not starting "SSH-", an unknown protocol version), "bad_packet" (packet_length or
padding_length out of range), "bad_kexinit" (a KEXINIT whose fields do not parse),
"too_long" (no KEXINIT within 8 packets).

HASSH (salesforce/hassh; tshark's ssh.kex.hassh / ssh.kex.hasshserver): the MD5 hex of
"kex_algorithms;encryption;mac;compression", each the name-list exactly as sent, taken
client-to-server for the client's HASSH and server-to-client for the server's
HASSH-server. The names must be printable US-ASCII without spaces (RFC 4251 6): that
keeps "Algorithms" a plain string whose MD5 is the HASSH.

Memory is bounded (at most the banner budget or one packet of 35004 bytes is kept after
a feed), every loop consumes input, and malformed input only ever ends the reading with a
violation: `feed` and `finish` do not raise. `hassh` / `parse_kexinit` raise
`DecodeError("ssh", "bad_kexinit")` on a malformed payload.

Compiled: the buffered bytes are read through the bounded reader (`_buf.pxd`); Python
objects are made only for what is kept (the banner line, the name-lists, the record).
`_ssh.pxd` declares `SshReader` for the compiled stream stage to cimport.
"""

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint8_t, uint32_t

from netcap._buf cimport Reader, find, here, left, peek, reader, skip, sub, u8, u32

from netcap.decode.errors import DecodeError

cdef enum:
    KEXINIT = 20
    PREBANNER = 8 * 1024  # bytes up to and including the banner's line end
    LINES = 32  # lines up to and including the banner
    PACKET_MAX = 35000  # packet_length (RFC 4253 6.1)
    # below: no room for padding_length, message number and padding. RFC 4253's own
    # minimum (12: a 16-byte packet) is not enforced, like its other padding rules
    PACKET_MIN = 5
    PACKETS = 8  # binary packets read while waiting for the KEXINIT
    NAME_LISTS = 10  # kex, host key, enc c2s/s2c, mac c2s/s2c, comp c2s/s2c, lang c2s/s2c

MSG_KEXINIT = KEXINIT
MAX_PREBANNER = PREBANNER
MAX_LINES = LINES
MAX_PACKET = PACKET_MAX
MIN_PACKET = PACKET_MIN
MAX_PACKETS = PACKETS

cdef const char* SSH_DASH = b"SSH-"


cdef list kexinit_lists(const uint8_t* data, Py_ssize_t n):
    """The ten name-lists of a KEXINIT payload (message number 20 first, then the 16-byte
    cookie), as sent; None if malformed. The trailing first_kex_packet_follows and
    reserved fields must be present; bytes after them are ignored (RFC 4253 allows no
    extension here, but they do not change the offer)."""
    cdef Reader r = reader(data, n)
    cdef Reader names
    cdef const uint8_t* start
    cdef uint32_t size
    cdef uint8_t b
    cdef int _i
    cdef Py_ssize_t _j
    if n < 17 or u8(&r) != KEXINIT:
        return None
    skip(&r, 16)
    cdef list out = []
    for _i in range(NAME_LISTS):
        if left(&r) < 4:
            return None
        size = u32(&r)
        if size > left(&r):
            return None
        start = here(&r)
        names = sub(&r, size)
        # Names are printable US-ASCII, no whitespace (RFC 4251 6); anything else is not
        # a name-list and would make "Algorithms" differ from the hashed bytes.
        for _j in range(size):
            b = u8(&names)
            if b < 0x21 or b > 0x7E:
                return None
        out.append(PyUnicode_DecodeASCII(<const char*>start, size, NULL))
    if left(&r) < 5:  # boolean first_kex_packet_follows, uint32 reserved
        return None
    return out


cdef tuple hassh_of(list lists, bint is_client):
    kex, enc_cs, enc_sc, mac_cs, mac_sc, comp_cs, comp_sc = (
        lists[0], lists[2], lists[3], lists[4], lists[5], lists[6], lists[7])
    parts = (kex, enc_cs, mac_cs, comp_cs) if is_client else (kex, enc_sc, mac_sc, comp_sc)
    text = ";".join(parts)
    return text, _md5()(text.encode(), usedforsecurity=False).hexdigest()


cdef object _hash_md5 = None


cdef object _md5():
    """hashlib.md5, imported at first use, not at import (the stream stage cimports this
    module, and an export that meets no SSH should not load OpenSSL: ~3 ms of every
    start), then held: an `import` statement in a compiled function goes through the
    import machinery at every call (~1,000 instructions)."""
    global _hash_md5
    if _hash_md5 is None:
        from hashlib import md5
        _hash_md5 = md5
    return _hash_md5


def parse_kexinit(const uint8_t[::1] payload not None):
    """The ten name-lists of a KEXINIT payload (see `kexinit_lists`); raises
    DecodeError("ssh", "bad_kexinit") if malformed."""
    lists = kexinit_lists(&payload[0] if payload.shape[0] else NULL, payload.shape[0])
    if lists is None:
        raise DecodeError("ssh", "bad_kexinit")
    return lists


def hassh(const uint8_t[::1] payload not None, bint is_client):
    """(HASSH algorithms string, its MD5 hex) of a KEXINIT payload: the client's HASSH
    from the client-to-server lists, or the server's HASSH-server from the
    server-to-client ones."""
    return hassh_of(parse_kexinit(payload), is_client)


@cython.freelist(64)
cdef class SshReader:
    """One direction of one TCP connection: bytes in, at most one SSH record out (see the
    module docstring). `is_client` says which side sent these bytes: it chooses the
    HASSH variant and whether lines before the banner are allowed."""

    def __init__(self, bint is_client):
        self.is_client = is_client
        self.done = False
        self.violation = None
        self.ident = None
        self._buf = bytearray()
        self._banner = False
        self._scanned = 0
        self._consumed = 0
        self._lines = 0
        self._packets = 0

    cpdef list feed(self, data):
        if self.done or len(data) == 0:
            return []
        self._buf += data
        cdef list out = [] if self._banner else self._read_banner()
        if self._banner and not self.done:
            out += self._read_packets()
        return out

    cpdef list finish(self):
        """The end of the stream (or of the caller's interest): a banner without a KEXINIT
        still gives its record, with Notes "no_kexinit"."""
        if self.done:
            return []
        self._stop(None)
        return [self._noted("no_kexinit")] if self.ident is not None else []

    cdef list _read_banner(self):
        cdef bytearray buf = self._buf
        cdef Reader r, scan
        cdef Py_ssize_t n, nl, end, i
        cdef bytes line
        while True:
            n = len(buf)
            r = reader(<const uint8_t*>PyByteArray_AS_STRING(buf), n)
            # A client's first line is its banner: anything else is caught at the first
            # byte that differs from "SSH-" rather than at the line's end, far later.
            if self.is_client:
                for i in range(4 if n > 4 else n):
                    if peek(&r, i) != <uint8_t>SSH_DASH[i]:
                        return self._give_up("bad_banner")
            skip(&r, self._scanned)
            nl = find(&r, 10)  # LF
            if nl >= 0:
                nl += self._scanned
            end = n if nl < 0 else nl
            scan = sub(&r, end - self._scanned)
            if find(&scan, 0) >= 0:
                return self._give_up("bad_banner")
            if nl < 0:
                self._scanned = n
                if self._consumed + n > PREBANNER:
                    return self._give_up("bad_banner")
                return []
            self._consumed += nl + 1
            self._lines += 1
            if self._consumed > PREBANNER:
                return self._give_up("bad_banner")
            line = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf), nl)
            del buf[: nl + 1]
            self._scanned = 0
            if line.endswith(b"\r"):
                line = line[: len(line) - 1]
            if line.startswith(b"SSH-"):
                return self._identified(line)
            if self._lines >= LINES:
                return self._give_up("bad_banner")

    cdef list _identified(self, bytes line):
        self.ident = line.decode("utf-8", "backslashreplace")
        # protoversion is up to the next '-'; a banner without softwareversion ("SSH-2.0")
        # breaks RFC 4253 but still says which protocol follows, so it is accepted.
        proto = line[4:].split(b"-", 1)[0].split(b" ", 1)[0]
        if proto == b"2.0" or proto == b"1.99":  # 1.99: speaks both; SSH-2 follows
            self._banner = True
            return []
        if proto.startswith(b"1."):  # SSH-1: no KEXINIT to read, the banner is all
            self._stop(None)
            return [self._noted("ssh1")]
        return self._give_up("bad_banner")

    cdef list _read_packets(self):
        cdef bytearray buf = self._buf
        cdef Reader r
        cdef uint32_t size
        cdef uint8_t padding
        cdef list lists
        cdef bint kexinit
        while len(buf) >= 5:
            r = reader(<const uint8_t*>PyByteArray_AS_STRING(buf), len(buf))
            size = u32(&r)
            padding = u8(&r)
            # Checked as soon as the header is in, so that a bad length is not waited on
            # (and buffered) for up to 4 GiB.
            if size < PACKET_MIN or size > PACKET_MAX or padding > size - 2:
                return self._give_up("bad_packet")
            if left(&r) < size - 1:
                return []
            # The payload: size - 1 - padding >= 1 bytes after padding_length.
            kexinit = peek(&r, 0) == KEXINIT
            if kexinit:
                lists = kexinit_lists(here(&r), size - 1 - padding)
            del buf[: 4 + size]
            self._packets += 1
            if kexinit:
                if lists is None:
                    return self._give_up("bad_kexinit")
                algorithms, digest = hassh_of(lists, self.is_client)
                self._stop(None)
                return [{"Ident": self.ident, "Algorithms": algorithms, "HASSH": digest,
                         "IsClient": self.is_client}]
            if self._packets >= PACKETS:
                return self._give_up("too_long")
        return []

    cdef int _stop(self, object violation) except -1:
        self.done = True
        self.violation = violation
        self._buf = bytearray()  # the rest of the stream is not ours to keep
        return 0

    cdef list _give_up(self, str reason):
        self._stop(reason)
        return [self._noted(reason)] if self.ident is not None else []

    cdef dict _noted(self, str notes):
        return {"Ident": self.ident, "Notes": notes, "IsClient": self.is_client}
