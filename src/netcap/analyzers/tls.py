"""TLS ClientHello and ServerHello (TLS 1.0-1.3; SSL 3.0 records too) and their JA3,
JA3S and JA4 fingerprints. The work is compiled (`_tls.pyx`); this is its Python face.

`parse_client_hello` / `parse_server_hello` take the body of one handshake message (the
bytes after its 4-byte header) and return the record fields, raising
`DecodeError("tls", reason)` on a malformed hello. `HelloReader` sits on one direction of
a reassembled TCP stream: it collects TLS records, joins handshake fragments across
records and segments, and returns the first hello, then stops (`done`). `lean` (all
three): hellos with only the fields the metrics read without fingerprints (`LEAN_CLIENT`,
`LEAN_SERVER`), for counting alone: the same checks and errors, fewer objects.

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

from ._tls import (
    LEAN_CLIENT,
    LEAN_SERVER,
    HelloReader,
    ja3,
    ja3s,
    ja4,
    parse_client_hello,
    parse_server_hello,
)

__all__ = ["LEAN_CLIENT", "LEAN_SERVER", "HelloReader", "ja3", "ja3s", "ja4",
           "parse_client_hello", "parse_server_hello"]
