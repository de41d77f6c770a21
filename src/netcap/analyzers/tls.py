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
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from ..decode.errors import DecodeError

__all__ = ["HelloReader", "ja3", "ja3s", "ja4", "parse_client_hello", "parse_server_hello"]

_SNI, _STATUS, _GROUPS, _POINTS, _SIGALGS, _ALPN = 0, 5, 10, 11, 13, 16
_SCT, _EMS, _TICKET, _PSK, _VERSIONS, _COOKIE, _KEY_SHARE = 18, 23, 35, 41, 43, 44, 51
_NPN, _RENEGOTIATION = 13172, 65281


_GREASE = frozenset(0x0A0A + 0x1010 * k for k in range(16))  # RFC 8701 values


def _grease(v: int) -> bool:
    return v in _GREASE


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.d = data
        self.p = 0

    def take(self, n: int) -> bytes:
        if self.p + n > len(self.d):
            raise DecodeError("tls", "truncated")
        out = self.d[self.p : self.p + n]
        self.p += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def vec(self, width: int) -> bytes:
        return self.take(int.from_bytes(self.take(width), "big"))

    @property
    def left(self) -> int:
        return len(self.d) - self.p


def _u16s(data: bytes) -> list[int]:
    if len(data) % 2:
        raise DecodeError("tls", "bad_length")
    return list(struct.unpack(f">{len(data) // 2}H", data))


def _extensions(r: _Reader) -> list[tuple[int, bytes]]:
    """The extensions block at the reader's position, to the end of the message. Read
    with plain indexing: it is most of a hello's parsing time."""
    body, p = r.d, r.p
    n = len(body)
    if p == n:
        return []  # no extensions block (TLS 1.0 and older hellos)
    if p + 2 > n:
        raise DecodeError("tls", "truncated")
    end = p + 2 + ((body[p] << 8) | body[p + 1])
    if end > n:
        raise DecodeError("tls", "truncated")
    p += 2
    out = []
    while p < end:
        if p + 4 > end:
            raise DecodeError("tls", "truncated")
        q = p + 4 + ((body[p + 2] << 8) | body[p + 3])
        if q > end:
            raise DecodeError("tls", "truncated")
        out.append(((body[p] << 8) | body[p + 1], body[p + 4 : q]))
        p = q
    r.p = end
    return out


def _names(data: bytes) -> list[bytes]:
    """ALPN / NPN protocol names (a 2-byte list length, then 1-byte-length names)."""
    r = _Reader(data)
    items = _Reader(r.vec(2))
    out = []
    while items.left:
        out.append(items.vec(1))
    return out


def parse_client_hello(body: bytes) -> dict[str, Any]:
    r = _Reader(body)
    rec: dict[str, Any] = {"HandshakeVersion": r.u16(), "Random": r.take(32)}
    session = r.vec(1)
    ciphers = _u16s(r.vec(2))
    compress = list(r.vec(1))
    exts = _extensions(r)
    rec.update(SessionIDLen=len(session), SessionID=session,
               CipherSuiteLen=2 * len(ciphers), CipherSuites=ciphers,
               CompressMethods=compress, Extensions=[k for k, _ in exts],
               ExtensionLen=sum(4 + len(v) for _, v in exts))
    for kind, value in exts:
        v = _Reader(value)
        if kind == _SNI and value:
            names = _Reader(v.vec(2))
            while names.left:
                name_type, name = names.u8(), names.vec(2)
                if name_type == 0:
                    rec["SNI"] = name
                    break
        elif kind == _STATUS:
            rec["OSCP"] = True
        elif kind == _GROUPS:
            rec["SupportedGroups"] = _u16s(v.vec(2))
        elif kind == _POINTS:
            rec["SupportedPoints"] = list(v.vec(1))
        elif kind == _SIGALGS:
            rec["SignatureAlgs"] = _u16s(v.vec(2))
        elif kind == _ALPN:
            rec["ALPNs"] = _names(value)
        elif kind == _VERSIONS:
            rec["_versions"] = _u16s(v.vec(1))
    return rec


def parse_server_hello(body: bytes) -> dict[str, Any]:
    r = _Reader(body)
    rec: dict[str, Any] = {"Version": r.u16(), "Random": r.take(32), "SessionID": r.vec(1),
                           "CipherSuite": r.u16(), "CompressionMethod": r.u8()}
    exts = _extensions(r)
    rec["Extensions"] = [k for k, _ in exts]
    for kind, value in exts:
        v = _Reader(value)
        if kind == _NPN:
            rec["NextProtoNeg"] = True
            rec["NextProtos"] = _names(len(value).to_bytes(2, "big") + value)
        elif kind == _STATUS:
            rec["OCSPStapling"] = True
        elif kind == _TICKET:
            rec["TicketSupported"] = True
        elif kind == _RENEGOTIATION:
            rec["SecureRenegotiationSupported"] = True
            rec["SecureRenegotiation"] = v.vec(1)
        elif kind == _ALPN:
            names = _names(value)
            if names:
                rec["AlpnProtocol"] = names[0]
        elif kind == _EMS:
            rec["Ems"] = True
        elif kind == _SCT:
            scts = _Reader(v.vec(2))
            rec["Scts"] = []
            while scts.left:
                rec["Scts"].append(scts.vec(2))
        elif kind == _VERSIONS and len(value) == 2:
            rec["SupportedVersion"] = v.u16()
        elif kind == _PSK and len(value) == 2:
            rec["SelectedIdentityPresent"] = True
            rec["SelectedIdentity"] = v.u16()
        elif kind == _COOKIE:
            rec["Cookie"] = v.vec(2)
        elif kind == _KEY_SHARE and len(value) >= 2:
            rec["SelectedGroup"] = v.u16()
    return rec


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _join(values: list[int]) -> str:
    return "-".join([str(x) for x in values if x not in _GREASE])


def ja3(rec: dict[str, Any]) -> tuple[str, str]:
    """(JA3 string, its MD5) of a ClientHello record."""
    text = ",".join([str(rec.get("HandshakeVersion", 0)), _join(rec.get("CipherSuites", [])),
                     _join(rec.get("Extensions", [])), _join(rec.get("SupportedGroups", [])),
                     "-".join(str(x) for x in rec.get("SupportedPoints", []))])
    return text, _md5(text)


def ja3s(rec: dict[str, Any]) -> tuple[str, str]:
    text = ",".join([str(rec.get("Version", 0)), str(rec.get("CipherSuite", 0)),
                     _join(rec.get("Extensions", []))])
    return text, _md5(text)


_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                 0x0002: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


def _sha12(items: list[str]) -> str:
    if not items:
        return "000000000000"
    return hashlib.sha256(",".join(items).encode()).hexdigest()[:12]


def ja4(rec: dict[str, Any], transport: str = "t") -> str:
    """JA4 of a ClientHello record (transport 't' TCP, 'q' QUIC, 'd' DTLS)."""
    versions = [v for v in rec.get("_versions", []) if v not in _GREASE]
    version = _JA4_VERSIONS.get(max(versions) if versions else rec.get("HandshakeVersion", 0),
                                "00")
    ciphers = [c for c in rec.get("CipherSuites", []) if c not in _GREASE]
    exts = [e for e in rec.get("Extensions", []) if e not in _GREASE]
    alpns = rec.get("ALPNs", [])
    alpn = "00"
    if alpns and alpns[0]:
        first = alpns[0]
        a, z = chr(first[0]), chr(first[-1])
        if a.isascii() and a.isalnum() and z.isascii() and z.isalnum():
            alpn = a + z
        else:
            h = first.hex()
            alpn = h[0] + h[-1]
    sni = "d" if _SNI in exts else "i"
    head = f"{transport}{version}{sni}{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn}"
    cipher_hash = _sha12(sorted([f"{c:04x}" for c in ciphers]))
    ext_list = sorted([f"{e:04x}" for e in exts if e not in (_SNI, _ALPN)])
    sigs = [f"{s:04x}" for s in rec.get("SignatureAlgs", [])]
    if not ext_list:
        ext_hash = "000000000000"
    else:
        # With no signature algorithms the string still ends in '_' (as suricata's JA4
        # and its published test values; FoxIO's description says the '_' is dropped).
        text = ",".join(ext_list) + "_" + ",".join(sigs)
        ext_hash = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{head}_{cipher_hash}_{ext_hash}"


class HelloReader:
    """One direction of a stream: TLS records in, ClientHello / ServerHello records out
    (as (handshake type, record fields)). Reading goes on past a hello (a HelloRetryRequest
    brings a second ClientHello) and ChangeCipherSpec records, and stops (`done`) at the
    first other handshake message, alert or application data, or after `limit` bytes.
    A stream that does not start with a TLS handshake record is not TLS: done with
    nothing (`violation` says why)."""

    def __init__(self, limit: int = 64 * 1024) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._hs = bytearray()
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
        self._buf += data
        self._seen += len(data)
        while len(self._buf) >= 5 and not self.done:
            ctype, major, length = self._buf[0], self._buf[1], (self._buf[3] << 8) | self._buf[4]
            if major != 3 or ctype not in (20, 21, 22, 23):
                self._stop("not_tls" if not self._started else None)
                break
            if not self._started and ctype != 22:
                self._stop("not_tls")
                break
            if len(self._buf) < 5 + length:
                break
            self._started = True
            if ctype == 22:
                if not self._hs:
                    self._record = (ctype, (self._buf[1] << 8) | self._buf[2], length)
                self._hs += self._buf[5 : 5 + length]
            del self._buf[: 5 + length]
            if ctype in (21, 23):  # alert, encrypted data: no more hellos
                self._stop(None)
                break
            out += self._messages()
        if not self.done and self._seen > self.limit:
            self._stop("too_long")
        return out

    def _messages(self) -> list[tuple[int, dict[str, Any]]]:
        out = []
        while len(self._hs) >= 4 and not self.done:
            htype = self._hs[0]
            size = int.from_bytes(self._hs[1:4], "big")
            if len(self._hs) < 4 + size:
                break
            body = bytes(self._hs[4 : 4 + size])
            del self._hs[: 4 + size]
            if htype not in (1, 2):
                self._stop(None)  # past the hellos
                break
            rec = parse_client_hello(body) if htype == 1 else parse_server_hello(body)
            assert self._record is not None
            rec.update(Type=self._record[0], MessageLen=self._record[2], HandshakeType=htype,
                       HandshakeLen=size)
            if htype == 1:
                rec["Version"] = self._record[1]
            out.append((htype, rec))
        return out

    def _stop(self, violation: str | None) -> None:
        self.done = True
        self.violation = violation
