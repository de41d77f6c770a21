"""Test oracle: the Python HTTP analyzer (httptools) that `netcap.analyzers._http`
replaced, kept unchanged for tests/test_http_differential.py (compiled == this).

HTTP/1.0 and 1.1 transactions from a reassembled TCP connection (sans-I/O).

`HttpConnection` is fed both directions' in-order bytes in packet order (`client`,
`server`), the sizes of holes in them (`gap`) and the end (`close`); each call returns
the HTTP records (Netcap field names, see `records.types` "HTTP") of the transactions it
completed. It never sees sockets, files or clocks: timestamps come with the bytes.

How the bytes are cut (our own framing, so every position is known exactly):
- A message head ends at the first CRLF CRLF; it is parsed by llhttp (`httptools`), a
  fresh parser per message, fed only the head. llhttp is strict (no bare LF, no obs-fold,
  no duplicate Content-Length, no Content-Length with Transfer-Encoding, only the known
  methods): its refusals are the anomaly signal `bad_request` / `bad_response`. The header
  fields are then read from the accepted head with a regex (exact because llhttp is
  strict; with detail=False only the ones the record and the framing use).
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

import email.utils
import re
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

import httptools

__all__ = ["MAX_HEADER", "MAX_LINE", "MAX_QUEUE", "SNIFF", "HttpConnection",
           "detect_content_type"]

MAX_HEADER = 64 * 1024  # one message head, or one chunked trailer block
MAX_LINE = 4096  # one chunk-size line with its extensions
MAX_QUEUE = 100  # requests waiting for their response
MAX_ITEMS = 100  # cookies per header, query parameters per URL
SNIFF = 512  # body bytes kept for content sniffing (as Go's http.DetectContentType)

# Direction states.
_IDLE, _HEAD, _LEN, _SIZE, _DATA, _CRLF, _TRAILER, _CLOSE, _PAUSE = range(9)
_BODY_STATES = (_LEN, _DATA, _CLOSE)
_BARE_LF = re.compile(rb"(?<!\r)\n")
# The LF ending the last line of a head and the empty line after it: the leftmost match
# is the earliest empty line (one scan, where two finds looked at most bytes twice).
_EMPTY_LINE = re.compile(rb"\n\r?\n")


class _Head:
    """httptools callbacks collecting one message head.

    The header fields are not collected by callback (one Python call per field cost more
    than llhttp's whole parse): once llhttp has accepted the complete head, they are read
    from `raw`, the head as llhttp was given it (see `_fields`)."""

    __slots__ = ("complete", "raw", "url")

    def __init__(self) -> None:
        self.url = b""
        self.raw = b""
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url  # called more than once when the head arrives in pieces

    def on_headers_complete(self) -> None:
        self.complete = True


class _Txn:
    """One request and (later) its response."""

    __slots__ = ("method", "rec", "req_done", "res_done", "start", "tunnel_wait")

    def __init__(self, rec: dict[str, Any], method: str, start: int) -> None:
        self.rec = rec
        self.method = method
        self.start = start
        self.req_done = False
        self.res_done = False
        self.tunnel_wait = False  # CONNECT or Upgrade: client bytes wait for the answer


class _Dir:
    """The framing state of one direction."""

    __slots__ = ("body_len", "buf", "buf_ts", "client", "fed", "head", "line_checked",
                 "new_from", "parser", "remaining", "scanned", "sniff", "sniff_open",
                 "start_ts", "state", "ts", "txn")

    def __init__(self, client: bool) -> None:
        self.client = client
        self.buf = bytearray()  # bytes not yet consumed (an incomplete head or line)
        self.buf_ts = 0  # time of the chunk that brought buf's first byte
        self.new_from = 0  # where the current chunk starts in buf
        self.ts = 0  # time of the latest chunk
        self.state = _IDLE
        self.remaining = 0  # body or chunk bytes still to come
        self.fed = 0  # bytes of the current head already given to the parser
        # Bytes of the current chunk-size line or trailer block already searched for its
        # end: a line arriving a byte at a time is searched once, not once per byte.
        self.scanned = 0
        self.line_checked = False  # the request line was checked for HTTP/0.9
        self.head = _Head()
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser | None = None
        self.start_ts = 0
        self.body_len = 0
        self.sniff = bytearray()
        self.sniff_open = True  # body bytes still go to sniff (not after a gap or SNIFF)
        self.txn: _Txn | None = None


def _s(b: bytes) -> str:
    return b.decode("latin-1")


# Header fields of a head that llhttp accepted: it is strict (see the module docstring), so
# every field line follows a CRLF (the start line holds none) and is a token name, ':',
# optional blanks (which llhttp skips too) and a value without CR, LF or NUL, kept as llhttp
# reports it (trailing blanks included). Checked against llhttp's own on_header reports.
# Matched in the head decoded once (latin-1 maps each byte to one character).
_FIELD = re.compile(r"\r\n([^:\r\n]+):[ \t]*([^\r]*)")


def _fields(head: bytes) -> list[tuple[str, str]]:
    """The (name, value) header fields of a complete, accepted head with CRLF line ends."""
    return _FIELD.findall(_s(head))


def _headers(raw: list[tuple[str, str]]) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The header map entries (first spelling, repeated values joined with ", ") and the
    same keyed by lower-case name."""
    entries: list[dict[str, str]] = []
    lower: dict[str, dict[str, str]] = {}
    for key, val in raw:
        val = val.strip(" \t")
        low = key.lower()
        entry = lower.get(low)
        if entry is None:
            entry = lower[low] = {"Key": key, "Value": val}
            entries.append(entry)
        else:
            entry["Value"] += ", " + val
    return entries, {k: e["Value"] for k, e in lower.items()}


# The headers a record or the framing reads (the rest only matter with detail=True), by
# lower-case name, and their field lines (as `_FIELD`; bytes case folding is ASCII, as
# token names are).
_USED_KEYS = {name.encode(): name for name in (
    "host", "user-agent", "referer", "content-type", "content-encoding", "server",
    "content-length", "transfer-encoding")}
_USED = re.compile(rb"\r\n(" + rb"|".join(map(re.escape, _USED_KEYS)) + rb"):[ \t]*([^\r]*)",
                   re.IGNORECASE)


def _used_headers(head: bytes) -> dict[str, str]:
    """`_headers(_fields(head))[1]` restricted to the `_USED` headers, for detail=False:
    one regex scan finds just them, no other field is decoded."""
    h: dict[str, str] = {}
    for name, value in _USED.findall(head):
        key = _USED_KEYS[name.lower()]
        val = value.rstrip(b" \t").decode("latin-1")
        prev = h.get(key)
        h[key] = val if prev is None else prev + ", " + val
    return h


def _cookies(raw: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Cookie headers: "a=b; c=d" pairs."""
    out: list[dict[str, Any]] = []
    for name, value in raw:
        if name.lower() != "cookie":
            continue
        for part in value.split(";", MAX_ITEMS)[:MAX_ITEMS]:
            key, _, val = part.strip(" \t").partition("=")
            if key and len(out) < MAX_ITEMS:
                out.append({"Name": key.strip(" \t"), "Value": val.strip(" \t")})
    return out


_SAMESITE = {"lax": 2, "strict": 3, "none": 4}  # Go's http.SameSite; other values: 1


def _set_cookie(text: str) -> dict[str, Any] | None:
    """One Set-Cookie header (one cookie each: its Expires may hold a comma)."""
    parts = text.split(";", MAX_ITEMS)
    key, sep, val = parts[0].partition("=")
    if not sep or not key.strip(" \t"):
        return None  # as Go's net/http: a cookie needs a name and '='
    c: dict[str, Any] = {"Name": key.strip(" \t"), "Value": val.strip(" \t")}
    for attr in parts[1:MAX_ITEMS]:
        k, _, v = attr.strip(" \t").partition("=")
        k, v = k.strip(" \t").lower(), v.strip(" \t")
        if k == "path":
            c["Path"] = v
        elif k == "domain":
            c["Domain"] = v
        elif k == "expires":
            try:
                when = int(email.utils.parsedate_to_datetime(v).timestamp())
            except (TypeError, ValueError, OverflowError, IndexError):
                continue
            if when > 0:
                c["Expires"] = when
        elif k == "max-age":
            digits = v[1:] if v.startswith("-") else v
            if digits.isascii() and digits.isdigit() and len(digits) <= 9:
                c["MaxAge"] = int(v)
        elif k == "secure":
            c["Secure"] = True
        elif k == "httponly":
            c["HttpOnly"] = True
        elif k == "samesite":
            c["SameSite"] = _SAMESITE.get(v.lower(), 1)
    return c


def _parameters(url: str) -> list[dict[str, str]]:
    """Query parameters of a request target, repeated names joined with ", "."""
    query = url.partition("?")[2].partition("#")[0]
    if not query:
        return []
    # Bounded before parsing: parse_qsl's own limit raises instead of truncating.
    query = "&".join(query.split("&", MAX_ITEMS)[:MAX_ITEMS])
    out: dict[str, dict[str, str]] = {}
    for key, val in parse_qsl(query, keep_blank_values=True, errors="replace"):
        entry = out.get(key)
        if entry is None:
            out[key] = {"Key": key, "Value": val}
        else:
            entry["Value"] += ", " + val
    return list(out.values())


# --- content sniffing: the signatures of Go's http.DetectContentType (WHATWG MIME
# sniffing), the common ones.
_HTML_TAGS = (b"<!DOCTYPE HTML", b"<HTML", b"<HEAD", b"<SCRIPT", b"<IFRAME", b"<H1", b"<DIV",
              b"<FONT", b"<TABLE", b"<A", b"<STYLE", b"<TITLE", b"<B", b"<BODY", b"<BR",
              b"<P", b"<!--")
_MAGIC = ((b"%PDF-", "application/pdf"), (b"%!PS-Adobe-", "application/postscript"),
          (b"\xfe\xff", "text/plain; charset=utf-16be"),
          (b"\xff\xfe", "text/plain; charset=utf-16le"),
          (b"\xef\xbb\xbf", "text/plain; charset=utf-8"),
          (b"\x00\x00\x01\x00", "image/x-icon"), (b"\x00\x00\x02\x00", "image/x-icon"),
          (b"BM", "image/bmp"), (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"),
          (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
          (b"OggS\x00", "application/ogg"), (b"ID3", "audio/mpeg"),
          (b"\x1f\x8b\x08", "application/x-gzip"), (b"PK\x03\x04", "application/zip"),
          (b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
          (b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
          (b"\x00asm", "application/wasm"), (b"wOFF", "font/woff"), (b"wOF2", "font/woff2"))
_MAGIC_PREFIXES = tuple(magic for magic, _ in _MAGIC)
_BINARY = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])
# Every byte that is not binary: deleting these (bytes.translate, in C) leaves only the
# binary bytes, instead of a Python loop over up to SNIFF bytes per body.
_NOT_BINARY = bytes(b for b in range(256) if b not in _BINARY)


def detect_content_type(data: bytes) -> str:
    """The MIME type of a body from its first bytes, as Go's http.DetectContentType."""
    data = data[:SNIFF]
    text = data.lstrip(b"\t\n\x0c\r ")
    upper = text[:16].upper()
    if upper.startswith(_HTML_TAGS):  # one C call rules out most bodies
        for tag in _HTML_TAGS:  # in order: "<B" is tried before "<BODY"
            if upper.startswith(tag) and len(text) > len(tag) and text[len(tag)] in b" >":
                return "text/html; charset=utf-8"
    if text.startswith(b"<?xml"):
        return "text/xml; charset=utf-8"
    if data.startswith(_MAGIC_PREFIXES):
        for magic, kind in _MAGIC:
            if data.startswith(magic):
                return kind
    if data[:4] == b"RIFF" and data[8:14] == b"WEBPVP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wave"
    if data.translate(None, _NOT_BINARY):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


class HttpConnection:
    """One TCP connection's HTTP/1.x transactions (see the module docstring)."""

    def __init__(self, detail: bool = True) -> None:
        # detail=False: records for counting only (no header maps, cookies or query
        # parameters: a third of the work on header-heavy traffic).
        self.detail = detail
        self._c = _Dir(True)
        self._s = _Dir(False)
        self._waiting: deque[_Txn] = deque()  # requests without a (final) response yet
        self._order: deque[_Txn] = deque()  # requests not yet emitted, in order
        self._out: list[dict[str, Any]] = []
        self._resume = False  # the client direction may go on (a CONNECT was refused)
        self.done = False
        self.violation: str | None = None
        self.recognised = False  # a message head was read: the connection speaks HTTP

    # --- public API

    def client(self, data: bytes, ts: int) -> list[dict[str, Any]]:
        return self._feed(self._c, data, ts)

    def server(self, data: bytes, ts: int) -> list[dict[str, Any]]:
        return self._feed(self._s, data, ts)

    def gap(self, from_client: bool, nbytes: int, ts: int | None = None
            ) -> list[dict[str, Any]]:
        """`nbytes` of this direction are not here: missing, or (with `ts`, the time
        of the segment that ended them) on the wire but not shipped, as body bytes no
        parser needs (see `reassembly.streams.segments`)."""
        d = self._c if from_client else self._s
        if ts is not None:
            d.ts = ts
        if self.done or nbytes <= 0:
            return self._take()
        if d.state in _BODY_STATES and not d.buf and (d.state == _CLOSE
                                                       or nbytes <= d.remaining):
            # The framing survives: count the missing bytes as body, never as data.
            d.body_len += nbytes
            d.sniff_open = False
            if d.state != _CLOSE:
                d.remaining -= nbytes
                if d.remaining == 0:
                    self._body_end(d)
        else:
            self._stop("gap")
        return self._take()

    def close(self, ts: int) -> list[dict[str, Any]]:
        if not self.done:
            s = self._s
            if s.state == _CLOSE:
                self._complete(s)  # a response delimited by the end of the connection
            busy = any(d.state not in (_IDLE, _PAUSE) or (d.buf and d.state == _IDLE)
                       for d in (self._c, self._s))
            self._stop("truncated" if busy else None)
        return self._take()

    # --- framing

    def _feed(self, d: _Dir, data: bytes, ts: int) -> list[dict[str, Any]]:
        if self.done or not data:
            return self._take()
        d.ts = ts
        st = d.state
        if st in _BODY_STATES and not self._resume:
            # Fast path, most chunks: body bytes that do not reach the end of the body (or
            # of the chunk's data). Only counted; just the first SNIFF bytes are kept. In a
            # body state d.buf is always empty (_run consumes every byte of a body).
            n = len(data)
            if st == _CLOSE or n < d.remaining:
                d.body_len += n
                if d.sniff_open:
                    d.sniff += data[: SNIFF - len(d.sniff)]
                    d.sniff_open = len(d.sniff) < SNIFF
                if st != _CLOSE:
                    d.remaining -= n
                return []  # nothing completed (and _out is empty between calls)
        buf = d.buf
        if buf:  # an incomplete head or line waits: the new bytes go after it
            d.new_from = len(buf)
            buf += data
            self._run(d, buf)
        else:  # read data in place: only an unconsumed rest is copied into d.buf
            d.buf_ts, d.new_from = ts, 0
            self._run(d, data)
        if self._resume and not self.done:
            self._resume = False
            self._c.new_from = 0
            self._run(self._c, self._c.buf)
        return self._take()

    def _take(self) -> list[dict[str, Any]]:
        out, self._out = self._out, []
        return out

    def _bad(self, d: _Dir) -> None:
        self._stop("bad_request" if d.client else "bad_response")

    def _run(self, d: _Dir, buf: bytes | bytearray) -> None:
        """Consume as much of buf (d.buf, or the new chunk when d.buf was empty) as can
        be framed. Positions only move forward in buf: the consumed bytes are dropped
        once at the end, never per message or chunk."""
        pos, n = 0, len(buf)
        while pos < n and not self.done:
            st = d.state
            if st in _BODY_STATES:
                take = n - pos if st == _CLOSE else min(d.remaining, n - pos)
                d.body_len += take
                if d.sniff_open:
                    d.sniff += buf[pos : pos + min(take, SNIFF - len(d.sniff))]
                    d.sniff_open = len(d.sniff) < SNIFF
                pos += take
                if st != _CLOSE:
                    d.remaining -= take
                    if d.remaining == 0:
                        self._body_end(d)
            elif st == _IDLE:
                if buf[pos] in b"\r\n":
                    pos += 1  # empty lines before a message are ignored (RFC 9112 2.2)
                    continue
                if not d.client and not self._waiting:
                    self._stop("no_request")
                    break
                d.state, d.fed, d.line_checked = _HEAD, 0, False
                d.head = _Head()
                d.parser = (httptools.HttpRequestParser(d.head) if d.client
                            else httptools.HttpResponseParser(d.head))
                d.start_ts = d.buf_ts if pos < d.new_from else d.ts
            elif st == _HEAD:
                end = self._head(d, buf, pos)
                if end < 0:
                    break  # the head is incomplete: keep it (from pos) in buf
                pos = end
            elif st == _SIZE:
                nl = buf.find(b"\n", pos + d.scanned, pos + MAX_LINE)
                if nl < 0:
                    if n - pos >= MAX_LINE:
                        self._stop("too_long")
                    d.scanned = n - pos
                    break
                d.scanned = 0
                size = _chunk_size(bytes(buf[pos:nl]))
                if size < 0:
                    self._bad(d)
                    break
                pos = nl + 1
                if size:
                    d.state, d.remaining = _DATA, size
                else:
                    d.state = _TRAILER
            elif st == _CRLF:  # the line end after a chunk's data
                if buf[pos] == 10:
                    pos += 1
                elif buf[pos] != 13:
                    self._bad(d)
                    break
                elif n - pos < 2:
                    break
                elif buf[pos + 1] != 10:
                    self._bad(d)
                    break
                else:
                    pos += 2
                d.state = _SIZE
            elif st == _TRAILER:
                # After the last chunk: an empty line, or trailer fields (rare, not
                # recorded) and then one.
                if buf[pos] == 10:
                    end = pos + 1
                elif buf[pos] == 13:
                    if n - pos < 2:
                        break
                    if buf[pos + 1] != 10:
                        self._bad(d)
                        break
                    end = pos + 2
                else:
                    end = _head_end(buf, pos + d.scanned - 2 if d.scanned > 2 else pos)
                    if end < 0:
                        if n - pos >= MAX_HEADER:
                            self._stop("too_long")
                        d.scanned = n - pos
                        break
                d.scanned = 0
                pos = end
                self._complete(d)
            else:  # _PAUSE: bytes after CONNECT / Upgrade wait for the answer
                if n - pos > MAX_HEADER:
                    self._stop("too_long")
                break
        if self.done:
            d.buf.clear()
        elif buf is d.buf:
            del buf[:pos]
            d.buf_ts = d.ts if pos >= d.new_from else d.buf_ts
        elif pos < n:
            d.buf += buf[pos:]  # d.buf was empty and d.buf_ts is this chunk's time

    def _head(self, d: _Dir, buf: bytes | bytearray, pos: int) -> int:
        """Give the new bytes of the head at pos in buf to the parser; the position after
        the head once it is complete, else -1."""
        stop = _head_end(buf, pos + d.fed - 2 if d.fed > 2 else pos)
        complete = stop >= 0
        if not complete:
            stop = len(buf)
        if stop - pos > MAX_HEADER:
            self._stop("too_long")
            return -1
        parser = d.parser
        if parser is None:  # pragma: no cover - set with the _HEAD state
            self._bad(d)
            return -1
        start = pos + d.fed
        if stop > start:
            piece = bytes(buf[start:stop])
            if piece.count(b"\n") != piece.count(b"\r\n"):
                piece = _crlf(piece, start > pos and buf[start - 1] == 13)
            try:
                parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                pass  # CONNECT or Upgrade: the head itself was fine
            except httptools.HttpParserError as e:
                # A 101 without an Upgrade header pauses llhttp too, but httptools then
                # raises a plain error: that head was fine as well.
                if not (d.head.complete and str(e) == "Pause on CONNECT/Upgrade"):
                    self._bad(d)
                    return -1
            d.fed = stop - pos
        if not complete:
            if d.client and not d.line_checked:
                self._http09(d, buf, pos, start)
            return -1
        if not d.head.complete:  # pragma: no cover - llhttp completes every head
            self._bad(d)
            return -1
        # The head as llhttp read it, for its header fields (start == pos: it came in one
        # piece, which is then the whole head).
        d.head.raw = piece if start == pos else _crlf(bytes(buf[pos:stop]), False)
        if d.client:
            self._request(d)
        else:
            self._response(d)
        return stop

    def _http09(self, d: _Dir, buf: bytes | bytearray, pos: int, new: int) -> None:
        """The head at pos is incomplete: is its request line (when complete) one of
        HTTP/0.9? Only the bytes new since the last call (from `new`) are searched."""
        nl = buf.find(b"\n", new, pos + d.fed)
        if nl < 0:
            return
        d.line_checked = True
        if buf[pos:nl].rstrip(b"\r").count(b" ") != 1 or not d.head.url:
            return  # a request line with a version: go on reading the head
        parser = d.parser
        if not isinstance(parser, httptools.HttpRequestParser):  # pragma: no cover
            return  # a client direction's parser is always one
        self.recognised = True
        url = _s(d.head.url)
        rec: dict[str, Any] = {"Timestamp": d.start_ts, "Proto": "HTTP/0.9",
                               "Method": _s(parser.get_method()), "URL": url,
                               "StatusCode": 0, "ReqContentLength": 0, "ResContentLength": 0}
        params = _parameters(url) if self.detail else None
        if params:
            rec["Parameters"] = params
        self._order.append(_Txn(rec, rec["Method"], d.start_ts))
        self._stop("http09")

    def _request(self, d: _Dir) -> None:
        parser = d.parser
        if not isinstance(parser, httptools.HttpRequestParser):  # pragma: no cover
            self._bad(d)  # a client direction's parser is always one
            return
        self.recognised = True
        method = parser.get_method().decode("latin-1")
        url = d.head.url.decode("latin-1")
        if self.detail:
            fields = _fields(d.head.raw)
            entries, h = _headers(fields)
        else:
            fields, entries, h = [], [], _used_headers(d.head.raw)
        version = "HTTP/" + parser.get_http_version()
        rec: dict[str, Any] = {"Timestamp": d.start_ts, "Proto": version, "Method": method,
                               "URL": url, "StatusCode": 0, "ReqContentLength": 0,
                               "ResContentLength": 0}
        for key, field in (("host", "Host"), ("user-agent", "UserAgent"),
                           ("referer", "Referer"), ("content-type", "ContentType"),
                           ("content-encoding", "ReqContentEncoding")):
            if key in h:
                rec[field] = h[key]
        if self.detail:
            cookies = _cookies(fields)
            if cookies:
                rec["ReqCookies"] = cookies
            if entries:
                rec["RequestHeader"] = entries
            params = _parameters(url)
            if params:
                rec["Parameters"] = params
        if len(self._waiting) >= MAX_QUEUE:
            self._stop("too_long")
            return
        txn = _Txn(rec, method, d.start_ts)
        txn.tunnel_wait = method == "CONNECT" or parser.should_upgrade()
        self._waiting.append(txn)
        self._order.append(txn)
        d.txn = txn
        self._frame(d, h, has_body=True)

    def _response(self, d: _Dir) -> None:
        parser = d.parser
        if not isinstance(parser, httptools.HttpResponseParser) or not self._waiting:
            self._bad(d)  # pragma: no cover - a server direction's parser is always one,
            return  # and its head is read only while a request waits (see _run)
        self.recognised = True
        status = parser.get_status_code()
        txn = self._waiting[0]
        if 100 <= status < 200 and status != 101:
            d.state = _IDLE  # interim: the final response is still to come
            return
        if self.detail:
            fields = _fields(d.head.raw)
            entries, h = _headers(fields)
        else:
            fields, entries, h = [], [], _used_headers(d.head.raw)
        rec = txn.rec
        rec["StatusCode"] = status
        rec["FirstByteAfter"] = d.start_ts - txn.start
        for key, field in (("server", "ServerName"), ("content-type", "ResContentType"),
                           ("content-encoding", "ResContentEncoding")):
            if key in h:
                rec[field] = h[key]
        cookies: list[dict[str, Any]] = []
        for name, value in fields:
            if name.lower() == "set-cookie" and len(cookies) < MAX_ITEMS:
                c = _set_cookie(value)
                if c is not None:
                    cookies.append(c)
        if cookies:
            rec["ResCookies"] = cookies
        if entries and self.detail:
            rec["ResponseHeader"] = entries
        d.txn = txn
        if status == 101 or (txn.method == "CONNECT" and 200 <= status < 300):
            # A tunnel: what follows is not HTTP. Emit and detach without complaint.
            self._complete(d)
            self._stop(None)
            return
        no_body = txn.method == "HEAD" or status in (204, 304)
        self._frame(d, h, has_body=not no_body)

    def _frame(self, d: _Dir, h: dict[str, str], has_body: bool) -> None:
        """Choose how the body after a complete head ends (RFC 9112 6.3)."""
        # Sniffing only for complete records (counting reads no sniffed type).
        d.body_len, d.sniff, d.sniff_open = 0, bytearray(), self.detail
        te, cl = h.get("transfer-encoding"), h.get("content-length")
        if not has_body:
            self._complete(d)
        elif te is not None:
            if te.rpartition(",")[2].strip(" \t").lower() == "chunked":
                d.state = _SIZE
            elif d.client:  # pragma: no cover - llhttp refuses these requests
                self._bad(d)
            else:
                d.state = _CLOSE
        elif cl is not None:
            if not (cl.isascii() and cl.isdigit()):  # pragma: no cover - llhttp checks
                self._bad(d)
            elif int(cl):
                d.state, d.remaining = _LEN, int(cl)
            else:
                self._complete(d)
        elif d.client:
            self._complete(d)
        else:
            d.state = _CLOSE

    def _body_end(self, d: _Dir) -> None:
        if d.state == _LEN:
            self._complete(d)
        else:
            d.state = _CRLF

    def _complete(self, d: _Dir) -> None:
        """The current message of d is complete."""
        txn = d.txn
        if txn is None:  # pragma: no cover - set whenever a message is read
            self._bad(d)
            return
        d.state = _IDLE
        d.txn = None
        rec = txn.rec
        if d.client:
            txn.req_done = True
            rec["ReqContentLength"] = d.body_len
            if d.sniff:
                rec["ContentTypeDetected"] = detect_content_type(bytes(d.sniff))
            if txn.tunnel_wait and not txn.res_done:
                d.state = _PAUSE
        else:
            self._waiting.popleft()
            txn.res_done = True
            rec["ResContentLength"] = d.body_len
            rec["DoneAfter"] = d.ts - txn.start
            if d.sniff:
                rec["ResContentTypeDetected"] = detect_content_type(bytes(d.sniff))
            if self._c.state == _PAUSE:
                self._c.state = _IDLE  # not a tunnel after all: read on
                self._resume = True
        d.body_len, d.sniff = 0, bytearray()
        while self._order and self._order[0].req_done and self._order[0].res_done:
            self._out.append(self._order.popleft().rec)

    def _stop(self, violation: str | None) -> None:
        """Detach: emit every request seen, with what is known of it."""
        if self.done:
            return
        self.done = True
        self.violation = violation
        for d in (self._c, self._s):
            txn = d.txn
            if txn is not None and d.state != _HEAD:  # a body was being read
                key = "ReqContentLength" if d.client else "ResContentLength"
                txn.rec[key] = d.body_len
            d.buf.clear()
            d.sniff = bytearray()
            d.parser = None
        self._out.extend(t.rec for t in self._order)
        self._order.clear()
        self._waiting.clear()


def _head_end(buf: bytes | bytearray, start: int) -> int:
    """The position after the empty line that ends a head (CRLF CRLF, or with bare LFs),
    searching from start; -1 when there is none yet."""
    m = _EMPTY_LINE.search(buf, start)
    return -1 if m is None else m.end()


def _crlf(piece: bytes, after_cr: bool) -> bytes:
    """piece with bare LF line ends made CRLF (after_cr: the byte before piece is a CR).
    RFC 9112 2.2 lets a recipient accept them (tshark, zeek and common servers do); llhttp
    wants CRLF, so it is given CRLF."""
    prev = b"\r" if after_cr else b""
    return _BARE_LF.sub(b"\r\n", prev + piece)[len(prev) :]


def _chunk_size(line: bytes) -> int:
    """The size in a chunk-size line (without its LF), or -1 when it is malformed."""
    size = line.removesuffix(b"\r").partition(b";")[0]
    if not size or len(size) > 15 or size.strip(b"0123456789abcdefABCDEF"):
        return -1
    return int(size, 16)
