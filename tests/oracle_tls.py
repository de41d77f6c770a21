# The Python TLS hello parser that src/netcap/analyzers/_tls.pyx replaced, kept as the
# oracle of tests/test_tls_differential.py: the compiled one must give the same records,
# fingerprints and DecodeError reasons. Unchanged but for its import of DecodeError.
"""TLS ClientHello and ServerHello (TLS 1.0-1.3; SSL 3.0 records too) and their JA3,
JA3S and JA4 fingerprints.

`parse_client_hello` / `parse_server_hello` take the body of one handshake message (the
bytes after its 4-byte header) and return the record fields, raising
`DecodeError("tls", reason)` on a malformed hello. `HelloReader` sits on one direction of
a reassembled TCP stream: it collects TLS records, joins handshake fragments across
records and segments, and returns the first hello, then stops (`done`).

Fingerprints (BSD-licensed methods; JA4+'s other methods are under the FoxIO licence and
not implemented):
- JA3 = MD5 of "version,ciphers,extensions,groups,point formats", values in decimal
  joined with '-', GREASE values (RFC 8701) left out; JA3S = MD5 of
  "version,cipher,extensions". As tshark's tls.handshake.ja3/ja3s.
- JA4 (TLS client): t<version><d|i><ciphers:02><extensions:02><alpn>_<sha256 of the
  sorted cipher list, 12 hex>_<sha256 of the sorted extensions without SNI and ALPN,
  then '_' and the signature algorithms in order, 12 hex>. Checked against FoxIO's and
  suricata-verify's published values for the corpus captures.

This runs once per TLS stream direction in the parent process, so it is written for
speed: hellos are read with plain indexing at computed offsets (no reader object, no
per-field calls), u16 vectors with one precompiled `struct` unpack, and fingerprint
strings from cached number-to-text tables. Error semantics are part of the interface
(fuzzed by the tests): the same input gives the same `DecodeError` reason as a
straightforward field-by-field reader would, see `parse_client_hello`.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_left, bisect_right
from functools import lru_cache
from typing import Any

from netcap.decode.errors import DecodeError

__all__ = ["HelloReader", "ja3", "ja3s", "ja4", "parse_client_hello", "parse_server_hello"]

_SNI, _STATUS, _GROUPS, _POINTS, _SIGALGS, _ALPN = 0, 5, 10, 11, 13, 16
_SCT, _EMS, _TICKET, _PSK, _VERSIONS, _COOKIE, _KEY_SHARE = 18, 23, 35, 41, 43, 44, 51
_NPN, _RENEGOTIATION = 13172, 65281

_GREASE = frozenset(0x0A0A + 0x1010 * k for k in range(16))  # RFC 8701 values

# Precompiled big-endian u16 vector formats for the usual lengths (cipher suites, groups,
# signature algorithms); longer vectors compile their format on the spot.
_U16S = [struct.Struct(f">{n}H") for n in range(128)]

_EXT_HEADER = struct.Struct(">HH").unpack_from  # an extension's type and length


def _u16s(data: bytes, start: int, count: int) -> list[int]:
    """`count` big-endian u16 values at data[start:] (the caller checked the bounds)."""
    if count < 128:
        return list(_U16S[count].unpack_from(data, start))
    return list(struct.unpack_from(f">{count}H", data, start))


def _truncated() -> DecodeError:
    return DecodeError("tls", "truncated")


def _names(data: bytes, start: int, stop: int) -> list[bytes] | None:
    """Protocol names with 1-byte lengths filling data[start:stop] (the list inside ALPN
    and NPN), or None when the last one overruns `stop`."""
    out = []
    while start < stop:
        end = start + 1 + data[start]
        if end > stop:
            return None
        out.append(data[start + 1 : end])
        start = end
    return out


def _vec16(data: bytes, start: int, stop: int) -> int:
    """End of the 2-byte-length vector at data[start:stop], or -1 if it does not fit."""
    if stop - start < 2:
        return -1
    end = start + 2 + ((data[start] << 8) | data[start + 1])
    return end if end <= stop else -1


# The ClientHello extensions giving fields: the rest are only listed.
_CLIENT_FIELDS = frozenset((_SNI, _STATUS, _GROUPS, _POINTS, _SIGALGS, _ALPN, _VERSIONS))


def parse_client_hello(body: bytes) -> dict[str, Any]:
    """The fields of a ClientHello body.

    Errors are those of reading field by field from the start: the first fixed field or
    vector that overruns the body is 'truncated', an odd-length u16 vector (cipher suites
    right away; groups, signature algorithms, versions) is 'bad_length'. The extension
    framing is checked to its end before any extension's content: a content error is
    raised only if the framing of all extensions is sound (the first content error wins).
    Bytes after the extensions block are ignored."""
    n = len(body)
    if n < 35:  # version, random, session id length
        raise _truncated()
    p = 35 + body[34]  # after the session id
    if p + 2 > n:
        raise _truncated()
    size = (body[p] << 8) | body[p + 1]
    p += 2
    if p + size > n:
        raise _truncated()
    if size & 1:
        raise DecodeError("tls", "bad_length")
    ciphers = _u16s(body, p, size >> 1)
    p += size
    if p >= n:
        raise _truncated()
    q = p + 1 + body[p]  # after the compression methods
    if q > n:
        raise _truncated()
    kinds: list[int] = []
    rec: dict[str, Any] = {
        "HandshakeVersion": (body[0] << 8) | body[1], "Random": body[2:34],
        "SessionIDLen": body[34], "SessionID": body[35 : 35 + body[34]],
        "CipherSuiteLen": size, "CipherSuites": ciphers, "CompressMethods": list(body[p + 1 : q]),
        "Extensions": kinds, "ExtensionLen": 0}
    if q == n:
        return rec  # no extensions block (TLS 1.0 and older hellos)
    end = _vec16(body, q, n)
    if end < 0:
        raise _truncated()
    rec["ExtensionLen"] = end - q - 2
    p = q + 2
    bad: str | None = None  # the first content error, raised once the framing is checked
    wanted, append, header = _CLIENT_FIELDS, kinds.append, _EXT_HEADER
    while p < end:
        # A 4-byte header (type, length) and the value. A header cut by `end` makes the
        # value run past it too (or the header past the body: struct.error): 'truncated'
        # either way.
        try:
            kind, size = header(body, p)
        except struct.error:
            raise _truncated() from None
        v = p + 4  # the value is body[v:p]
        p = v + size
        if p > end:
            raise _truncated()
        append(kind)
        if kind not in wanted:
            continue
        if kind in (_GROUPS, _SIGALGS):
            if p - v < 2 or (e := v + 2 + ((body[v] << 8) | body[v + 1])) > p:
                bad = bad or "truncated"
            elif (e - v) & 1:
                bad = bad or "bad_length"
            else:
                rec["SupportedGroups" if kind == _GROUPS else "SignatureAlgs"] = _u16s(
                    body, v + 2, (e - v - 2) >> 1)
        elif kind == _SNI:
            if v == p:
                continue  # empty (as in a ServerHello's echo): nothing to read
            e = _vec16(body, v, p)
            if e < 0:
                bad = bad or "truncated"
                continue
            i = v + 2
            while i < e:  # (type, 2-byte-length name) entries; the first host name wins
                if i + 3 > e or (j := i + 3 + ((body[i + 1] << 8) | body[i + 2])) > e:
                    bad = bad or "truncated"
                    break
                if body[i] == 0:
                    rec["SNI"] = body[i + 3 : j]
                    break
                i = j
        elif kind == _POINTS:
            if v == p or (e := v + 1 + body[v]) > p:
                bad = bad or "truncated"
            else:
                rec["SupportedPoints"] = list(body[v + 1 : e])
        elif kind == _ALPN:
            e = _vec16(body, v, p)
            names = _names(body, v + 2, e) if e >= 0 else None
            if names is None:
                bad = bad or "truncated"
            else:
                rec["ALPNs"] = names
        elif kind == _VERSIONS:
            if v == p or (e := v + 1 + body[v]) > p:
                bad = bad or "truncated"
            elif (e - v - 1) & 1:
                bad = bad or "bad_length"
            else:
                rec["SupportedVersions"] = list(_u16s(body, v + 1, (e - v - 1) >> 1))
        elif kind == _STATUS:
            rec["OSCP"] = True
    if bad is not None:
        raise DecodeError("tls", bad)
    return rec


def parse_server_hello(body: bytes) -> dict[str, Any]:
    """The fields of a ServerHello body; errors as `parse_client_hello`'s (all
    'truncated')."""
    n = len(body)
    if n < 35:  # version, random, session id length
        raise _truncated()
    p = 35 + body[34]  # after the session id
    if p + 3 > n:  # cipher suite, compression method
        raise _truncated()
    kinds: list[int] = []
    rec: dict[str, Any] = {
        "Version": (body[0] << 8) | body[1], "Random": body[2:34], "SessionID": body[35:p],
        "CipherSuite": (body[p] << 8) | body[p + 1], "CompressionMethod": body[p + 2],
        "Extensions": kinds}
    p += 3
    if p == n:
        return rec  # no extensions block
    end = _vec16(body, p, n)
    if end < 0:
        raise _truncated()
    p += 2
    bad = False  # a content error, raised once the framing is checked
    header = _EXT_HEADER
    while p < end:
        try:  # header and value, as in parse_client_hello
            kind, size = header(body, p)
        except struct.error:
            raise _truncated() from None
        v = p + 4  # the value is body[v:p]
        p = v + size
        if p > end:
            raise _truncated()
        kinds.append(kind)
        if kind == _RENEGOTIATION:
            rec["SecureRenegotiationSupported"] = True
            if v == p or (e := v + 1 + body[v]) > p:
                bad = True
            else:
                rec["SecureRenegotiation"] = body[v + 1 : e]
        elif kind == _VERSIONS:
            if p - v == 2:
                rec["SupportedVersion"] = (body[v] << 8) | body[v + 1]
        elif kind == _KEY_SHARE:
            if p - v >= 2:
                rec["SelectedGroup"] = (body[v] << 8) | body[v + 1]
        elif kind == _ALPN:
            e = _vec16(body, v, p)
            names = _names(body, v + 2, e) if e >= 0 else None
            if names is None:
                bad = True
            elif names:
                rec["AlpnProtocol"] = names[0]
        elif kind == _EMS:
            rec["Ems"] = True
        elif kind == _STATUS:
            rec["OCSPStapling"] = True
        elif kind == _TICKET:
            rec["TicketSupported"] = True
        elif kind == _PSK:
            if p - v == 2:
                rec["SelectedIdentityPresent"] = True
                rec["SelectedIdentity"] = (body[v] << 8) | body[v + 1]
        elif kind == _SCT:
            e = _vec16(body, v, p)
            if e < 0:
                bad = True
                continue
            scts: list[bytes] = []
            rec["Scts"] = scts
            i = v + 2
            while i < e:
                j = _vec16(body, i, e)
                if j < 0:
                    bad = True
                    break
                scts.append(body[i + 2 : j])
                i = j
        elif kind == _COOKIE:
            e = _vec16(body, v, p)
            if e < 0:
                bad = True
            else:
                rec["Cookie"] = body[v + 2 : e]
        elif kind == _NPN:
            rec["NextProtoNeg"] = True
            names = _names(body, v, p)  # the whole value is the list
            if names is None:
                bad = True
            else:
                rec["NextProtos"] = names
    if bad:
        raise _truncated()
    return rec


class _Text(dict[int, str]):
    """u16 value -> its text in one format, filled on first use (so at most 65536
    entries); GREASE values -> "" if `grease` is "" (for `filter(None, ...)` to drop).
    Looking numbers up through `map` runs in C: much cheaper than formatting them, or a
    comprehension, for every fingerprint."""

    def __init__(self, fmt: str, grease: str | None = None) -> None:
        super().__init__()
        self.fmt = fmt
        if grease is not None:
            self.update(dict.fromkeys(_GREASE, grease))

    def __missing__(self, key: int) -> str:
        text = self[key] = self.fmt % key
        return text


_DEC = _Text("%d", grease="")  # JA3 leaves GREASE out of every list (but point formats,
_DEC_ALL = _Text("%d")  # which cannot hold any: one byte each)
_HEX = _Text("%04x", grease="")  # JA4 leaves it out of the ciphers and extensions
_HEX_ALL = _Text("%04x")  # but not the signature algorithms


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _join(values: tuple[int, ...]) -> str:
    """Decimal values joined with '-', GREASE left out (JA3)."""
    return "-".join(filter(None, map(_DEC.__getitem__, values)))


# The fingerprints are pure functions of a few fields, and a capture's hellos come from
# few client and server stacks: they are cached on those fields (as tuples, from the
# parsers' lists of u16 values), which costs less than a tenth of computing them.
_CACHED = 4096


def ja3(rec: dict[str, Any]) -> tuple[str, str]:
    """(JA3 string, its MD5) of a ClientHello record."""
    return _ja3(rec.get("HandshakeVersion", 0), tuple(rec.get("CipherSuites", ())),
                tuple(rec.get("Extensions", ())), tuple(rec.get("SupportedGroups", ())),
                tuple(rec.get("SupportedPoints", ())))


@lru_cache(maxsize=_CACHED)
def _ja3(version: int, ciphers: tuple[int, ...], exts: tuple[int, ...],
         groups: tuple[int, ...], points: tuple[int, ...]) -> tuple[str, str]:
    text = ",".join([str(version), _join(ciphers), _join(exts), _join(groups),
                     "-".join(map(_DEC_ALL.__getitem__, points))])
    return text, _md5(text)


def ja3s(rec: dict[str, Any]) -> tuple[str, str]:
    """(JA3S string, its MD5) of a ServerHello record."""
    return _ja3s(rec.get("Version", 0), rec.get("CipherSuite", 0),
                 tuple(rec.get("Extensions", ())))


@lru_cache(maxsize=_CACHED)
def _ja3s(version: int, cipher: int, exts: tuple[int, ...]) -> tuple[str, str]:
    text = ",".join([str(version), str(cipher), _join(exts)])
    return text, _md5(text)


_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                 0x0002: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


def _sorted_hex(values: tuple[int, ...]) -> list[str]:
    """The values without GREASE as 4-digit hex, sorted (sorting u16 numbers sorts
    their fixed-width lowercase hex alike)."""
    return [*filter(None, map(_HEX.__getitem__, sorted(values)))]


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ja4(rec: dict[str, Any], transport: str = "t") -> str:
    """JA4 of a ClientHello record (transport 't' TCP, 'q' QUIC, 'd' DTLS)."""
    alpns = rec.get("ALPNs")
    # The extensions' order does not count (browsers shuffle them): sorted, they make one
    # cache entry.
    return _ja4(transport, rec.get("HandshakeVersion", 0), tuple(rec.get("SupportedVersions", ())),
                tuple(rec.get("CipherSuites", ())), tuple(sorted(rec.get("Extensions", ()))),
                tuple(rec.get("SignatureAlgs", ())), alpns[0] if alpns else b"")


@lru_cache(maxsize=_CACHED)
def _ja4(transport: str, version: int, supported: tuple[int, ...], cipher_list: tuple[int, ...],
         ext_list: tuple[int, ...], sig_list: tuple[int, ...], first: bytes) -> str:
    if supported and (plain := [v for v in supported if v not in _GREASE]):
        version = max(plain)
    ciphers = _sorted_hex(cipher_list)
    exts = _sorted_hex(ext_list)
    alpn = "00"
    if first:
        a, z = chr(first[0]), chr(first[-1])
        if a.isascii() and a.isalnum() and z.isascii() and z.isalnum():
            alpn = a + z
        else:
            h = first.hex()
            alpn = h[0] + h[-1]
    sni = "d" if exts and exts[0] == "0000" else "i"  # sorted: SNI (0) would come first
    head = (f"{transport}{_JA4_VERSIONS.get(version, '00')}{sni}"
            f"{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn}")
    cipher_hash = _sha12(",".join(ciphers)) if ciphers else "000000000000"
    # The extensions but SNI and ALPN: cut out of the sorted list (SNI leads it).
    lo = bisect_right(exts, "0000")
    i, j = bisect_left(exts, "0010", lo), bisect_right(exts, "0010", lo)
    rest = exts[lo:i] + exts[j:] if i < j else exts[lo:]
    if not rest:
        ext_hash = "000000000000"
    else:
        # With no signature algorithms the string still ends in '_' (as suricata's JA4
        # and its published test values; FoxIO's description says the '_' is dropped).
        sigs = ",".join(map(_HEX_ALL.__getitem__, sig_list))
        ext_hash = _sha12(",".join(rest) + "_" + sigs)
    return f"{head}_{cipher_hash}_{ext_hash}"


class HelloReader:
    """One direction of a stream: TLS records in, ClientHello / ServerHello records out
    (as (handshake type, record fields)). Reading goes on past a hello (a HelloRetryRequest
    brings a second ClientHello) and ChangeCipherSpec records, and stops (`done`) at the
    first other handshake message, alert or application data, or after `limit` bytes.
    A stream that does not start with a TLS handshake record is not TLS: done with
    nothing (`violation` says why).

    Records and handshake messages are read in place from the data fed (the usual case:
    a segment holding whole records); only a partial record (`_buf`) or a handshake
    message split across records (`_hs`) is copied aside. A hello that raises
    `DecodeError` is consumed: the reader's state is as after it."""

    def __init__(self, limit: int = 64 * 1024) -> None:
        self.limit = limit
        self._buf = bytearray()  # the start of a record not yet complete
        self._hs = bytearray()  # the start of a handshake message not yet complete
        self._record: tuple[int, int, int] | None = None  # type, version, length of the
        # record that began the pending handshake message
        self._started = False
        self.done = False
        self.violation: str | None = None
        self._seen = 0

    def feed(self, data: bytes) -> list[tuple[int, dict[str, Any]]]:
        out: list[tuple[int, dict[str, Any]]] = []
        if self.done:
            return out
        self._seen += len(data)
        buf: bytes | bytearray = data
        if self._buf:
            self._buf += data
            buf = self._buf
        n, p = len(buf), 0
        try:
            while n - p >= 5:
                ctype = buf[p]
                if buf[p + 1] != 3 or ctype < 20 or ctype > 23:  # not a TLS record
                    self._stop("not_tls" if not self._started else None)
                    break
                if not self._started and ctype != 22:
                    self._stop("not_tls")
                    break
                start = p + 5
                length = (buf[p + 3] << 8) | buf[p + 4]
                if n - start < length:
                    break  # wait for the rest of the record
                self._started = True
                p = start + length  # consumed, whatever the record holds
                if ctype == 22:
                    if not self._hs:
                        self._record = (ctype, (buf[start - 4] << 8) | buf[start - 3], length)
                    if self._messages(buf, start, p, out):
                        break  # past the hellos
                elif ctype != 20:  # alert, encrypted data: no more hellos
                    self._stop(None)
                    break
        finally:  # keep the partial record (also when a hello raised)
            if buf is self._buf:
                del buf[:p]
            elif p < n and not self.done:
                self._buf += buf[p:]
        if not self.done and self._seen > self.limit:
            self._stop("too_long")
        return out

    def _messages(self, buf: bytes | bytearray, start: int, stop: int,
                  out: list[tuple[int, dict[str, Any]]]) -> bool:
        """Handshake messages of the record buf[start:stop], after the pending start of
        one (`_hs`), to `out`; the start of an incomplete last one goes to `_hs`. True
        when a message other than a hello ended the reading."""
        hs = self._hs
        if hs:  # a message split across records: join its pieces
            hs += buf[start:stop]
            buf, start, stop = hs, 0, len(hs)
        p = start
        try:
            while stop - p >= 4:
                htype = buf[p]
                size = (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3]
                end = p + 4 + size
                if end > stop:
                    break
                body = buf[p + 4 : end]
                p = end
                if htype == 1:
                    rec = parse_client_hello(bytes(body))
                elif htype == 2:
                    rec = parse_server_hello(bytes(body))
                else:
                    self._stop(None)  # past the hellos
                    return True
                record = self._record
                if record is None:  # invariant (not input)
                    raise TypeError("record is not set")
                rec["Type"] = record[0]
                rec["MessageLen"] = record[2]
                rec["HandshakeType"] = htype
                rec["HandshakeLen"] = size
                if htype == 1:
                    rec["Version"] = record[1]
                out.append((htype, rec))
        finally:  # keep what follows the last whole message (also when a hello raised)
            if buf is hs:
                del hs[:p]
            elif p < stop:
                hs += buf[p:stop]
        return False

    def _stop(self, violation: str | None) -> None:
        self.done = True
        self.violation = violation
