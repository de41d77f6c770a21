"""The Python reader that `netcap.analyzers._ssh` replaced, kept unchanged as the
oracle of a differential test (tests/test_compiled_analyzers.py). What it read:

SSH identification banners and key-exchange offers (SSH_MSG_KEXINIT), with their
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
"""

from __future__ import annotations

import hashlib
from typing import Any

from netcap.decode.errors import REASONS, DecodeError

__all__ = ["SshReader", "hassh", "parse_kexinit"]

MSG_KEXINIT = 20
MAX_PREBANNER = 8 * 1024  # bytes up to and including the banner's line end
MAX_LINES = 32  # lines up to and including the banner
MAX_PACKET = 35000  # packet_length (RFC 4253 6.1)
MIN_PACKET = 5  # below: no room for padding_length, message number and padding. RFC 4253's
# own minimum (12: a 16-byte packet) is not enforced, like its other padding rules
MAX_PACKETS = 8  # binary packets read while waiting for the KEXINIT
_NAME_LISTS = 10  # kex, host key, enc c2s/s2c, mac c2s/s2c, comp c2s/s2c, lang c2s/s2c
_NAME_BYTES = bytes(range(0x21, 0x7F))  # printable US-ASCII but space; ',' separates


def parse_kexinit(payload: bytes) -> list[str]:
    """The ten name-lists of a KEXINIT payload (message number 20 first, then the 16-byte
    cookie), as sent. The trailing first_kex_packet_follows and reserved fields must be
    present; bytes after them are ignored (RFC 4253 allows no extension here, but they
    do not change the offer)."""
    n = len(payload)
    if n < 17 or payload[0] != MSG_KEXINIT:
        raise DecodeError("ssh", "bad_kexinit")
    p = 17
    out: list[str] = []
    for _ in range(_NAME_LISTS):
        if p + 4 > n:
            raise DecodeError("ssh", "bad_kexinit")
        end = p + 4 + int.from_bytes(payload[p : p + 4], "big")
        if end > n:
            raise DecodeError("ssh", "bad_kexinit")
        raw = payload[p + 4 : end]
        # Names are printable US-ASCII, no whitespace (RFC 4251 6); anything else is not
        # a name-list and would make "Algorithms" differ from the hashed bytes.
        if raw.translate(None, _NAME_BYTES):
            raise DecodeError("ssh", "bad_kexinit")
        out.append(raw.decode("ascii"))
        p = end
    if p + 5 > n:  # boolean first_kex_packet_follows, uint32 reserved
        raise DecodeError("ssh", "bad_kexinit")
    return out


def hassh(payload: bytes, is_client: bool) -> tuple[str, str]:
    """(HASSH algorithms string, its MD5 hex) of a KEXINIT payload: the client's HASSH
    from the client-to-server lists, or the server's HASSH-server from the
    server-to-client ones."""
    kex, _host_key, enc_cs, enc_sc, mac_cs, mac_sc, comp_cs, comp_sc, _, _ = parse_kexinit(
        payload)
    parts = (kex, enc_cs, mac_cs, comp_cs) if is_client else (kex, enc_sc, mac_sc, comp_sc)
    text = ";".join(parts)
    return text, hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class SshReader:
    """One direction of one TCP connection: bytes in, at most one SSH record out (see the
    module docstring). `is_client` says which side sent these bytes: it chooses the
    HASSH variant and whether lines before the banner are allowed."""

    def __init__(self, is_client: bool) -> None:
        self.is_client = is_client
        self.done = False
        self.violation: str | None = None
        self.ident: str | None = None  # the banner, once read
        self._buf = bytearray()
        self._banner = False  # the SSH-2 banner was read: binary packets follow
        self._scanned = 0  # bytes of _buf already searched for LF / NUL
        self._consumed = 0  # bytes of the stream before _buf (banner phase)
        self._lines = 0
        self._packets = 0

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        if self.done or not data:
            return []
        self._buf += data
        out = [] if self._banner else self._read_banner()
        if self._banner and not self.done:
            out += self._read_packets()
        return out

    def finish(self) -> list[dict[str, Any]]:
        """The end of the stream (or of the caller's interest): a banner without a KEXINIT
        still gives its record, with Notes "no_kexinit"."""
        if self.done:
            return []
        self._stop(None)
        return [self._noted("no_kexinit")] if self.ident is not None else []

    def _read_banner(self) -> list[dict[str, Any]]:
        buf = self._buf
        while True:
            # A client's first line is its banner: anything else is caught at the first
            # byte that differs from "SSH-" rather than at the line's end, far later.
            if self.is_client and not b"SSH-".startswith(bytes(buf[:4])):
                return self._give_up("bad_banner")
            nl = buf.find(b"\n", self._scanned)
            end = len(buf) if nl < 0 else nl
            if buf.find(b"\0", self._scanned, end) >= 0:
                return self._give_up("bad_banner")
            if nl < 0:
                self._scanned = len(buf)
                if self._consumed + len(buf) > MAX_PREBANNER:
                    return self._give_up("bad_banner")
                return []
            self._consumed += nl + 1
            self._lines += 1
            if self._consumed > MAX_PREBANNER:
                return self._give_up("bad_banner")
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            self._scanned = 0
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.startswith(b"SSH-"):
                return self._identified(line)
            if self._lines >= MAX_LINES:
                return self._give_up("bad_banner")

    def _identified(self, line: bytes) -> list[dict[str, Any]]:
        self.ident = line.decode("utf-8", "backslashreplace")
        # protoversion is up to the next '-'; a banner without softwareversion ("SSH-2.0")
        # breaks RFC 4253 but still says which protocol follows, so it is accepted.
        proto = line[4:].split(b"-", 1)[0].split(b" ", 1)[0]
        if proto in (b"2.0", b"1.99"):  # 1.99: a server that speaks both; SSH-2 follows
            self._banner = True
            return []
        if proto.startswith(b"1."):  # SSH-1: no KEXINIT to read, the banner is all
            self._stop(None)
            return [self._noted("ssh1")]
        return self._give_up("bad_banner")

    def _read_packets(self) -> list[dict[str, Any]]:
        buf = self._buf
        while len(buf) >= 5:
            size, padding = int.from_bytes(buf[:4], "big"), buf[4]
            # Checked as soon as the header is in, so that a bad length is not waited on
            # (and buffered) for up to 4 GiB.
            if not MIN_PACKET <= size <= MAX_PACKET or padding > size - 2:
                return self._give_up("bad_packet")
            if len(buf) < 4 + size:
                return []
            payload = bytes(buf[5 : 4 + size - padding])
            del buf[: 4 + size]
            self._packets += 1
            if payload[0] == MSG_KEXINIT:
                try:
                    algorithms, digest = hassh(payload, self.is_client)
                except DecodeError as e:
                    return self._give_up(REASONS[e.index][1])
                self._stop(None)
                return [{"Ident": self.ident, "Algorithms": algorithms, "HASSH": digest,
                         "IsClient": self.is_client}]
            if self._packets >= MAX_PACKETS:
                return self._give_up("too_long")
        return []

    def _stop(self, violation: str | None) -> None:
        self.done = True
        self.violation = violation
        self._buf = bytearray()  # the rest of the stream is not ours to keep

    def _give_up(self, reason: str) -> list[dict[str, Any]]:
        self._stop(reason)
        return [self._noted(reason)] if self.ident is not None else []

    def _noted(self, notes: str) -> dict[str, Any]:
        return {"Ident": self.ident, "Notes": notes, "IsClient": self.is_client}
