"""The compiled TLS hello parser (netcap.analyzers._tls) against the Python one it
replaced (tests/oracle_tls.py): on every TLS stream direction of the corpus, whole and in
pieces, and on hellos mutated or built by hypothesis, both give the same records (the
same keys in the same order, the same values and types), the same fingerprints, the same
DecodeError reason, and the same reader state after each piece."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle_tls as old
from corpus import PCAPS, corpus_files
from helpers import skip_module_without_corpus
from netcap.analyzers import tls as new
from netcap.decode.batch import decode_batch
from netcap.decode.errors import DecodeError
from netcap.reassembly.streams import segments
from netcap.sources.capture import open_capture

pytestmark = pytest.mark.corpus
skip_module_without_corpus()  # read at import below

Outcome = tuple[str, Any]


def _streams() -> list[bytes]:
    """The first 16 kB of each direction of the corpus's TLS captures that starts with a
    handshake record (in packet order: enough for hellos)."""
    out: list[bytes] = []
    for name in corpus_files():
        if not any(k in name.lower() for k in ("tls", "ssl", "ja3", "ja4")):
            continue
        dirs: dict[tuple[Any, ...], bytearray] = {}
        for batch in open_capture(str(PCAPS / name)):
            segs = segments(decode_batch(batch))
            for seg in segs.rows() if segs is not None else ():
                dirs.setdefault(tuple(seg[:4]), bytearray()).extend(seg[6])
        out += [bytes(d[:16384]) for d in dirs.values() if d[:2] == b"\x16\x03"]
    return out


def _bodies(stream: bytes) -> list[tuple[int, bytes]]:
    """(handshake type, body) of the hellos that sit whole in one record."""
    out, p = [], 0
    while p + 5 <= len(stream) and stream[p] == 22:
        size = (stream[p + 3] << 8) | stream[p + 4]
        rec, p = stream[p + 5 : p + 5 + size], p + 5 + size
        if len(rec) >= 4 and rec[0] in (1, 2):
            out.append((rec[0], rec[4 : 4 + int.from_bytes(rec[1:4], "big")]))
    return out


STREAMS = _streams()
BODIES = [b for s in STREAMS for b in _bodies(s)]
CLIENT = [b for t, b in BODIES if t == 1]
SERVER = [b for t, b in BODIES if t == 2]


def _outcome(f: Any, *args: Any) -> Outcome:
    try:
        rec = f(*args)
    except DecodeError as e:
        return "error", e.index
    return "ok", _exact(rec)


def _exact(value: Any) -> Any:
    """The value with its types and dict key order made part of equality."""
    if isinstance(value, dict):
        return [(k, _exact(v)) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return type(value).__name__, [_exact(v) for v in value]
    return type(value).__name__, value


def _fingerprints(m: Any, htype: int, rec: dict[str, Any]) -> Any:
    if htype == 1:
        return m.ja3(rec), m.ja4(rec), m.ja4(rec, "q")
    return m.ja3s(rec)


def _parse_both(htype: int, body: bytes) -> None:
    """Both parsers of `htype` on body agree, and so do the fingerprints of what parses;
    the other hello parser too (a body of the wrong kind)."""
    for kind in (htype, 3 - htype):
        name = "parse_client_hello" if kind == 1 else "parse_server_hello"
        want = _outcome(getattr(old, name), body)
        assert _outcome(getattr(new, name), body) == want, (name, body.hex())
        if want[0] == "ok":
            rec = getattr(old, name)(body)
            assert _fingerprints(new, kind, rec) == _fingerprints(old, kind, rec), body.hex()


def _read(m: Any, pieces: list[bytes]) -> list[Any]:
    """What a reader gives for each piece (hellos with their fingerprints, or the error),
    and its state after it."""
    reader, out = m.HelloReader(), []
    for piece in pieces:
        try:
            hellos = reader.feed(piece)
        except DecodeError as e:
            got: Outcome = "error", e.index
        else:
            got = "ok", [(t, _exact(r), _fingerprints(m, t, r)) for t, r in hellos]
        out.append((got, reader.done, reader.violation))
    return out


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def test_corpus_has_hellos() -> None:
    assert len(STREAMS) > 100 and len(CLIENT) > 50 and len(SERVER) > 50


def test_corpus_streams_whole_and_in_pieces() -> None:
    for data in STREAMS:
        for step in (len(data), 1, 5, 97):
            pieces = [data[i : i + step] for i in range(0, len(data), step)]
            assert _read(new, pieces) == _read(old, pieces), data[:64].hex()


def test_corpus_hellos() -> None:
    for htype, body in BODIES:
        _parse_both(htype, body)
        for cut in range(0, len(body), 3):  # every truncation
            _parse_both(htype, body[:cut])


def _mutate(data: st.DataObject, base: bytes) -> bytes:
    """A few byte changes (biased to the values that make lengths overrun or vanish),
    insertions or deletions."""
    b = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        if not b:
            break
        i = data.draw(st.integers(0, len(b) - 1))
        op = data.draw(st.integers(0, 3))
        value = data.draw(st.sampled_from([0, 1, 2, 3, 0xFF]) | st.integers(0, 255))
        if op <= 1:
            b[i] = value
        elif op == 2:
            b.insert(i, value)
        else:
            del b[i]
    return bytes(b)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_hellos(data: st.DataObject) -> None:
    htype, body = data.draw(st.sampled_from(BODIES))
    _parse_both(htype, _mutate(data, body))


# Extension types the parsers read (and one they only list), with values built to be
# well formed, short or overrunning.
_KINDS = [0, 5, 10, 11, 13, 16, 18, 23, 35, 41, 43, 44, 51, 13172, 65281, 0x0A0A, 21]


def _vec(fmt: str, payload: bytes, slack: int) -> bytes:
    return struct.pack(fmt, max(0, min(len(payload) + slack, 0xFFFF if fmt == ">H" else 0xFF)))


_value = st.builds(
    lambda fmt, payload, slack, tail, inner: (_vec(fmt, payload, slack) + payload + tail
                                              if inner else payload),
    st.sampled_from([">H", ">B"]),
    st.binary(max_size=12) | st.sampled_from([b"\x00\x00\x03abc", b"\x02h2\x08http/1.1",
                                              b"\x0a\x0a\x00\x1d\x00\x17", b"\x00"]),
    st.integers(-2, 2), st.binary(max_size=3), st.booleans())


@st.composite
def _built(draw: st.DrawFn) -> tuple[int, bytes]:
    """A hello assembled from parts: fixed fields, then extensions of the types above
    with values that are sometimes well formed, sometimes not; the block's length may
    lie too."""
    htype = draw(st.sampled_from([1, 2]))
    head = b"\x03\x03" + bytes(32) + b"\x00"
    if htype == 1:
        ciphers = draw(st.lists(st.sampled_from([0x1301, 0x0A0A, 0xC02F, 0x002F]), max_size=5))
        head += struct.pack(">H", 2 * len(ciphers)) + struct.pack(f">{len(ciphers)}H", *ciphers)
        head += b"\x01\x00"
    else:
        head += b"\x13\x01\x00"
    exts = b""
    for kind, value in draw(st.lists(st.tuples(st.sampled_from(_KINDS), _value), max_size=6)):
        size = max(0, len(value) + draw(st.sampled_from([0, 0, 0, 1, -1])))
        exts += struct.pack(">HH", kind, size) + value
    block = struct.pack(">H", max(0, len(exts) + draw(st.sampled_from([0, 0, 0, 1, -1, 3]))))
    return htype, head + block + exts + draw(st.binary(max_size=2))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hello=_built())
def test_built_hellos(hello: tuple[int, bytes]) -> None:
    _parse_both(*hello)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_streams_in_pieces(data: st.DataObject) -> None:
    """Records and handshake messages mutated and cut anywhere: the same hellos, errors
    (after which both readers go on) and done / violation after every piece."""
    stream = _mutate(data, data.draw(st.sampled_from(STREAMS))[:3000])
    pieces = _pieces(stream, data.draw(st.lists(st.integers(0, 3000), max_size=6)))
    assert _read(new, pieces) == _read(old, pieces)


def test_long_lists() -> None:
    """Hellos with hundreds of ciphers, extensions, groups and signature algorithms
    (fingerprint texts longer than any cached one), GREASE among them; twice each (the
    second time from the digest caches, where they apply)."""
    for n in (1, 40, 170, 900):
        values = [(0x0A0A + 0x1010 * (i % 16)) if i % 7 == 0 else (i * 2654435761) & 0xFFFF
                  for i in range(n)]
        u16s = struct.pack(f">{n}H", *values)
        exts = b"".join(struct.pack(">HH", v, 0) for v in values[: n // 3])
        exts += struct.pack(">HHH", 10, 2 + 2 * n, 2 * n) + u16s  # groups
        exts += struct.pack(">HHH", 13, 2 + 2 * n, 2 * n) + u16s  # signature algorithms
        exts += struct.pack(">HHB", 11, 1 + n % 256, n % 256) + bytes(range(n % 256))
        body = (b"\x03\x03" + bytes(32) + b"\x00" + struct.pack(">H", 2 * n) + u16s
                + b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
        server = b"\x03\x03" + bytes(32) + b"\x00\x13\x01\x00" + struct.pack(">H", len(exts)) + exts
        for _ in range(2):
            _parse_both(1, body)
            _parse_both(2, server)
        assert len(new.ja3(new.parse_client_hello(body))[0]) > (1024 if n == 900 else 0)


def _lean_agrees(htype: int, body: bytes) -> None:
    """A lean hello (counting alone, no fingerprints) errs exactly when the full one does,
    and has the same values for the lean fields (the client's: only those)."""
    name, lean_keys = (("parse_client_hello", new.LEAN_CLIENT) if htype == 1
                       else ("parse_server_hello", new.LEAN_SERVER))
    full = _outcome(getattr(new, name), body)
    lean = _outcome(lambda b: getattr(new, name)(b, lean=True), body)
    if full[0] == "error":
        assert lean == full, body.hex()
        return
    want = {k: v for k, v in full[1] if k in lean_keys}
    got = dict(lean[1])
    assert {k: v for k, v in got.items() if k in lean_keys} == want, body.hex()
    if htype == 1:
        assert set(got) <= lean_keys


def test_lean_hellos_on_the_corpus() -> None:
    for htype, body in BODIES:
        for kind in (htype, 3 - htype):
            _lean_agrees(kind, body)
            for cut in range(0, len(body), 7):
                _lean_agrees(kind, body[:cut])


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_lean_mutated_hellos(data: st.DataObject) -> None:
    htype, body = data.draw(st.sampled_from(BODIES))
    _lean_agrees(htype, _mutate(data, body))


def test_lean_reader_gives_the_same_hellos() -> None:
    """The stream stage's lean reader: the same hellos, errors and end state."""
    def read(lean: bool, pieces: list[bytes]) -> list[Any]:
        reader, out = new.HelloReader(lean=lean), []
        for piece in pieces:
            try:
                got: Any = [(t, {k: v for k, v in r.items()
                                 if k in new.LEAN_CLIENT | new.LEAN_SERVER
                                 | {"Type", "MessageLen", "HandshakeType", "HandshakeLen"}})
                            for t, r in reader.feed(piece)]
            except DecodeError as e:
                got = e.index
            out.append((got, reader.done, reader.violation))
        return out

    for data in STREAMS:
        for step in (len(data), 97):
            pieces = [data[i : i + step] for i in range(0, len(data), step)]
            assert read(True, pieces) == read(False, pieces), data[:64].hex()


def test_lean_hellos_hold_what_the_metrics_read() -> None:
    """What counting reads of the hello records (without the fingerprints, which a lean
    reader is never used with) is in the lean fields or added by the reader."""
    from netcap.metrics.state import STREAM_RECORD_COLUMNS

    added = {"Type", "MessageLen", "HandshakeType", "HandshakeLen", "Version", "Timestamp",
             "SrcIP", "SrcPort", "DstIP", "DstPort"}
    fingerprints = {"Ja3", "Ja4", "Ja3s"}
    assert STREAM_RECORD_COLUMNS["TLSClientHello"] - fingerprints <= new.LEAN_CLIENT | added
    assert STREAM_RECORD_COLUMNS["TLSServerHello"] - fingerprints <= new.LEAN_SERVER | added
