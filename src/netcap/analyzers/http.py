"""HTTP/1.0 and 1.1 transactions from a reassembled TCP connection (sans-I/O).

`HttpConnection` is fed both directions' in-order bytes in packet order (`client`,
`server`), the sizes of holes in them (`gap`) and the end (`close`); each call returns
the HTTP records (Netcap field names, see `records.types` "HTTP") of the transactions it
completed. It never sees sockets, files or clocks: timestamps come with the bytes.

How the bytes are cut (our own framing, so every position is known exactly):
- A message head ends at the first CRLF CRLF; it is parsed by llhttp (vendored C, through
  its C API: `_http.pyx`), a fresh parser per message, fed only the head. llhttp is
  strict (no bare LF, no obs-fold, no duplicate Content-Length, no Content-Length with
  Transfer-Encoding, only the known methods): its refusals are the anomaly signal
  `bad_request` / `bad_response`. The header fields are then read from the accepted head
  by our own scan (exact because llhttp is strict; with detail=False only the ones the
  record and the framing use).
  We frame the body ourselves (RFC 9112 section 6.3) because llhttp cannot be told that a
  response answers HEAD or a CONNECT, and because a gap can only be skipped when we know
  how many body bytes remain: responses to HEAD, 1xx, 204 and 304 have no body; then
  `Transfer-Encoding` ending in chunked -> chunked (size lines checked here, strictly);
  other transfer codings -> until close (a request with one is refused by llhttp); then
  `Content-Length`; else a request has no body and a response runs until close.
- Requests are queued when their head is complete and answered FIFO (pipelining). A 1xx
  other than 101 is interim: it does not answer the request. A 101, or a 2xx to CONNECT,
  turns the connection into a tunnel: the transaction is emitted and we detach quietly
  (`done`, no violation). Client bytes after a CONNECT or an Upgrade request wait (at most
  `MAX_HEADER` of them) until the answer says whether they are HTTP.
- A record is emitted when both its request and its final response are complete, in
  request order. Every request whose head was parsed gives exactly one record: at `close`
  or on detaching, the rest are emitted with what is known (StatusCode 0 without a
  response head; no DoneAfter without a complete response).
- Gaps (bytes the capture lost) are never data. Inside a body whose remaining length is
  known (Content-Length, a chunk's data) or that runs until close they are skipped and
  counted in the body length, so the framing stays in sync and the length stays the one on
  the wire; content sniffing stops at the first gap. Anywhere else the message boundaries
  are lost: detach with `gap`.
- HTTP/0.9 (a request line without version, answered by a bare body): tshark does not
  dissect it and it carries no headers; the request is recorded (Proto "HTTP/0.9",
  StatusCode 0) and we detach with `http09` rather than count the answer as a body.

Bounds: a message head (or chunk trailer) at most `MAX_HEADER` bytes, a chunk-size line at
most `MAX_LINE`, at most `MAX_QUEUE` requests waiting for a response (else `too_long`);
the only bytes kept are an incomplete head or line and the first `SNIFF` bytes of a body.
Bodies are not kept: RequestBody / ResponseBody stay unset. Body bytes that do not end their
body (or chunk) are only counted, without copying or parsing: most chunks are such.

Record fields: a field is present when its value was seen (header fields only when the
header was sent; FirstByteAfter / DoneAfter only when measured; ContentTypeDetected /
ResContentTypeDetected only when a body byte was seen); Timestamp, Proto, Method, URL,
StatusCode, ReqContentLength and ResContentLength are always present. Strings are decoded
as latin-1 (never fails, keeps every byte). Header names are kept as sent; repeated
headers (matched case-insensitively) are joined with ", " under the first spelling.
Times are packet times in Unix ns: Timestamp is the time of the chunk holding the
request's first byte, FirstByteAfter runs to the chunk holding the first byte of the final
response (an interim 100 Continue does not count), DoneAfter to the chunk holding the
final response's last byte.

Violations (`violation`, stable; also ("http", reason) in decode.errors.REASONS):
bad_request, bad_response (llhttp or our chunk framing refused the bytes, e.g. an SSH
banner where a status line should be), gap, too_long, http09, no_request (response bytes
with no request waiting), truncated (the connection closed inside a message). Nothing
here raises on input bytes.
"""

from __future__ import annotations

from ._http import MAX_HEADER, MAX_LINE, MAX_QUEUE, SNIFF, detect_content_type
from ._http import HttpConnection as _CompiledConnection
from ._http import _head_end as _head_end  # the end-of-head search, seen by tests

__all__ = ["MAX_HEADER", "MAX_LINE", "MAX_QUEUE", "SNIFF", "HttpConnection",
           "detect_content_type"]


class HttpConnection(_CompiledConnection):
    """One TCP connection's HTTP/1.x transactions (see the module docstring); the work is
    the compiled class's. A Python class, so an instance takes attributes (the stream
    stage's oracle marks one counted) and a subclass may override a method (a test
    injects a bug through `StreamStage.http_class`). The compiled stage makes the
    compiled class itself."""
