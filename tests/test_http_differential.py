"""The compiled HTTP analyzer (`netcap.analyzers.http`, `_http.pyx`) against the Python
one it replaced (`tests/oracle_http.py`, httptools): the same records and the same
violation, call by call, on every TCP stream of the corpus and the recorded captures
(whole and cut in pieces) and on hypothesis-made splits, gaps and mutations of them."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import PCAPS, corpus_files
from netcap.analyzers.http import HttpConnection
from netcap.sources._base import CaptureError
from tcp_streams import conversations

sys.path.insert(0, str(Path(__file__).parent))
import oracle_http  # noqa: E402  (the old analyzer, beside this file)

RECORDED = Path(__file__).parent / "data" / "recorded"
Events = list[tuple[bool, bytes, int, int]]
# One call to an analyzer: ("client" | "server", data, ts), ("gap", (from_client, n), ts)
# or ("close", None, ts).
Call = tuple[str, Any, int]


@cache
def streams(path: Path) -> tuple[tuple[tuple[bool, bytes, int, int], ...], ...]:
    """The TCP streams of a capture (none when the capture is unreadable: some corpus
    files are broken on purpose)."""
    try:
        return tuple(tuple(c.events) for c in conversations(str(path)))
    except CaptureError:
        return ()


def _captures() -> list[Path]:
    """The corpus and recorded captures holding TCP streams."""
    paths = [PCAPS / name for name in corpus_files()] + sorted(RECORDED.glob("*.pcap"))
    return [p for p in paths if streams(p)]


def calls(events: Events | tuple[tuple[bool, bytes, int, int], ...], step: int = 0
          ) -> list[Call]:
    out: list[Call] = []
    last = 0
    for from_client, data, skip, ts in events:
        if skip:
            out.append(("gap", (from_client, skip), ts))
        side = "client" if from_client else "server"
        for i in range(0, len(data), step or len(data) or 1):
            out.append((side, data[i : i + (step or len(data))], ts))
        last = ts
    out.append(("close", None, last))
    return out


def run(conn: Any, script: list[Call]) -> list[Any]:
    """Every call's result, then the connection's final state."""
    got: list[Any] = []
    for kind, arg, ts in script:
        if kind == "gap":
            got.append(conn.gap(arg[0], arg[1], ts if arg[1] % 2 else None))
        elif kind == "close":
            got.append(conn.close(ts))
        else:
            got.append(getattr(conn, kind)(arg, ts))
    got.append((conn.done, conn.violation, conn.recognised))
    return got


def same(script: list[Call], detail: bool) -> None:
    ours = run(HttpConnection(detail), script)
    old = run(oracle_http.HttpConnection(detail), script)
    assert ours == old


@pytest.mark.corpus
@pytest.mark.parametrize("path", _captures(), ids=lambda p: p.name)
def test_every_stream_of_the_captures(path: Path) -> None:
    """Each TCP stream of each capture (content decides, not the port: the non-HTTP
    ones give the same violation), whole and in pieces, with and without detail."""
    for events in streams(path):
        for step in (0, 7, 1460):
            for detail in (True, False):
                same(calls(events, step), detail)


@cache
def _http_streams() -> list[tuple[tuple[bool, bytes, int, int], ...]]:
    out = []
    for path in _captures():
        for events in streams(path):
            if any(d[:4] in (b"GET ", b"POST", b"HEAD", b"HTTP", b"PUT ", b"CONN")
                   for _, d, _, _ in events):
                out.append(events[:30])
    return out


# Bytes that steer the framing and llhttp's checks: line ends, framing headers, odd
# characters, chunk lines, other methods and versions.
_FRAGMENTS = [b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\n\n", b" ", b"\t", b":", b"\x00", b"\x7f",
              b"\xff", b"Transfer-Encoding: chunked\r\n", b"Content-Length: 5\r\n",
              b"Content-Length: 0\r\n", b"Content-Length: 18446744073709551616\r\n",
              b"Upgrade: websocket\r\nConnection: upgrade\r\n", b"0\r\n\r\n", b"5;x=y\r\nabcde\r\n",
              b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 101 Switching\r\n\r\n",
              b"HTTP/1.0 204 No\r\n\r\n", b"HTTP/1.1 304 N\r\n\r\n", b"HEAD / HTTP/1.1\r\n\r\n",
              b"CONNECT a:443 HTTP/1.1\r\n\r\n", b"GET /x\r\n", b"HTTP/2.0", b"HTTP/1.1",
              b"Cookie: a=b; c\r\n", b"Set-Cookie: s=1; Max-Age=-5; SameSite=Lax\r\n",
              b"Transfer-Encoding: gzip\r\n", b" folded\r\n", b"?a=1&a=2&b",
              b"SET-COOKIE: k=v; Expires=Wed, 21 Oct 2015 07:28:00 GMT; HttpOnly\r\n",
              b"cOOkie:  x=1 ;y \t\r\n", b"host: a\r\nHOST: b \r\n", b"X-\xc0: \xe9\r\n",
              b"Content-Type: text/html\r\nContent-Encoding: gzip\r\n", b"a" * 70 + b": v\r\n",
              b"Transfer-Encoding: gzip, chunked\r\n",
              b"Content-Length: 3\r\nContent-Length: 3\r\n"]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(data=st.data())
def test_mutated_split_streams(data: st.DataObject) -> None:
    """A real HTTP stream, mutated (bytes replaced, fragments inserted, bytes cut),
    split at random points, with random gaps: the same results call by call."""
    pool = _http_streams()
    if not pool:
        pytest.skip("no HTTP streams (corpus absent)")
    events = data.draw(st.sampled_from(pool))
    script: list[Call] = []
    for from_client, d, skip, ts in events:
        b = bytearray(d)
        for _ in range(data.draw(st.integers(0, 3))):
            if not b:
                break
            at = data.draw(st.integers(0, len(b) - 1))
            how = data.draw(st.integers(0, 2))
            if how == 0:
                b[at] = data.draw(st.integers(0, 255))
            elif how == 1:
                b[at:at] = data.draw(st.sampled_from(_FRAGMENTS))
            else:
                del b[at : at + data.draw(st.integers(1, 40))]
        gap = data.draw(st.sampled_from([0, 0, 0, 0, 1, 2, 7, 100, 5000]))
        if skip + gap:
            script.append(("gap", (from_client, skip + gap), ts))
        cuts = sorted(data.draw(st.lists(st.integers(0, len(b)), max_size=6)))
        for start, stop in zip([0, *cuts], [*cuts, len(b)], strict=True):
            if stop > start:
                script.append(("client" if from_client else "server", bytes(b[start:stop]),
                               ts))
    script.append(("close", None, data.draw(st.integers(0, 2**40))))
    same(script, data.draw(st.booleans()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(client=st.lists(st.sampled_from(_FRAGMENTS + [b"GET / HTTP/1.1\r\n", b"Host: x\r\n",
                                                    b"POST /p HTTP/1.0\r\n", b"abcde"]),
                       max_size=12),
       server=st.lists(st.sampled_from(_FRAGMENTS + [b"HTTP/1.1 200 OK\r\n", b"abcde",
                                                    b"Server: s\r\n"]), max_size=12),
       order=st.lists(st.booleans(), max_size=30), detail=st.booleans())
def test_messages_from_fragments(client: list[bytes], server: list[bytes], order: list[bool],
                                 detail: bool) -> None:
    """Messages built from framing fragments, the two sides interleaved."""
    script: list[Call] = []
    c, s = list(client), list(server)
    for i, from_client in enumerate(order + [True] * len(c) + [False] * len(s)):
        side = c if from_client else s
        if side:
            script.append(("client" if from_client else "server", side.pop(0), i))
    script.append(("close", None, 99))
    same(script, detail)
