"""Fuzz target: the compiled HTTP/1.x analyzer (`netcap.analyzers._http`, with llhttp).

Input: byte 0 bit 0 says detail on or off; then steps, each a control byte and what it
names: the low 2 bits the kind (0 client bytes, 1 server bytes, 2 a client gap, 3 a server
gap), the upper 6 bits `k` a size: bytes k*k + 1 of the input (k = 63: all the rest), a gap
of k*k bytes (odd k: with a time). Every step goes to one `HttpConnection`, then `close`.
A finding: anything raised; a buffer beyond its bound; a violation that is not one of the
stable reason codes; a connection not done after close, or giving records once done.
tests/test_http_differential.py checks the records against the Python oracle.

Run: `make fuzz FUZZ_TARGETS=http` (fuzz/run.py).
"""

from __future__ import annotations

import sys

from netcap.analyzers._http import MAX_HEADER, MAX_QUEUE, HttpConnection

VIOLATIONS = frozenset({None, "bad_request", "bad_response", "gap", "too_long", "http09",
                        "no_request", "truncated"})


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris's name)
    if not data:
        return
    conn = HttpConnection(bool(data[0] & 1))
    pos, n, ts = 1, len(data), 0
    while pos < n:
        ctl = data[pos]
        pos += 1
        kind, k = ctl & 3, ctl >> 2
        ts += 1
        if kind < 2:
            size = n - pos if k == 63 else k * k + 1
            piece = data[pos : pos + size]
            pos += size
            (conn.client if kind == 0 else conn.server)(piece, ts)
            if (len(conn._c.buf) > MAX_HEADER + len(piece)
                    or len(conn._s.buf) > MAX_HEADER + len(piece)
                    or len(conn._order) > MAX_QUEUE):
                raise AssertionError("a buffer beyond its bound")
        else:
            conn.gap(kind == 2, k * k, ts if k & 1 else None)
    conn.close(ts + 1)
    if not conn.done or conn.violation not in VIOLATIONS:
        raise AssertionError(f"after close: done={conn.done} violation={conn.violation!r}")
    if conn.client(b"GET / HTTP/1.1\r\n\r\n", ts + 2) or conn.close(ts + 3):
        raise AssertionError("records from a connection that is done")


def _encode(events: list[tuple[bool, bytes, int, int]], detail: bool) -> bytes:
    """A stream's events in the input format above."""
    out = bytearray([1 if detail else 0])
    for from_client, data, skip, _ in events:
        while skip > 0:
            k = min(62, int(skip**0.5))
            out.append(k << 2 | (2 if from_client else 3))
            skip -= k * k if k else skip
        pos = 0
        while pos < len(data):
            k = min(62, int((len(data) - pos - 1) ** 0.5))
            out.append(k << 2 | (0 if from_client else 1))
            out += data[pos : pos + k * k + 1]
            pos += k * k + 1
    return bytes(out)


def seeds() -> list[bytes]:
    """The HTTP connections of the project's recorded HTTP capture and, where the public
    corpus is, of two of its HTTP captures (first 30 events each), with and without
    detail."""
    from seedfiles import captures  # puts tests/ on sys.path

    from tcp_streams import conversations

    out: list[bytes] = []
    for path in captures(("http",), ("zeek_http_pipelined-requests.pcap", "dpkt_http.pcap")):
        for conv in conversations(path)[:20]:
            out.append(_encode(conv.events[:30], True))
            out.append(_encode(conv.events[:30], False))
    return out


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
