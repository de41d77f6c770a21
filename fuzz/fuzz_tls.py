"""Fuzz target: the compiled TLS hello reader and parsers (`netcap.analyzers._tls`).

Input: byte 0 says into how many pieces (1-3) the rest is cut, bytes 1 and 2 where (as
fractions of its length); the rest, from byte 3, is one direction of a stream. The pieces
go to one `HelloReader`, the whole rest to `parse_client_hello` and `parse_server_hello`,
and every hello that comes out gets its JA3 / JA3S / JA4. Only `DecodeError` may come out
of the parsers; a reader that is done gives nothing more; the fingerprints have their fixed
shapes. tests/test_tls_differential.py checks the values against the Python oracle.

Run: `make fuzz FUZZ_TARGETS=tls` (fuzz/run.py).
"""

from __future__ import annotations

import sys
from typing import Any

from netcap.analyzers._tls import (
    HelloReader,
    ja3,
    ja3s,
    ja4,
    parse_client_hello,
    parse_server_hello,
)
from netcap.decode.errors import DecodeError

PARSERS = ((1, parse_client_hello), (2, parse_server_hello))


def _fingerprints(htype: int, rec: dict[str, Any]) -> None:
    if htype == 1:
        text, digest = ja3(rec)
        fp = ja4(rec)
        if len(digest) != 32 or text.count(",") != 4 or len(fp) != 36 or fp[10] != "_":
            raise AssertionError(f"fingerprint shapes: {text!r} {digest!r} {fp!r}")
    else:
        text, digest = ja3s(rec)
        if len(digest) != 32 or text.count(",") != 2:
            raise AssertionError(f"fingerprint shapes: {text!r} {digest!r}")


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris's name)
    if len(data) < 3:
        return
    body = data[3:]
    n = len(body)
    cuts = sorted({(data[1] * n) >> 8, (data[2] * n) >> 8})[: data[0] % 3]
    lean = data[0] >= 0xC0  # a quarter of the inputs: the reader of counting alone
    reader = HelloReader(lean=lean)
    start = 0
    for cut in (*cuts, n):
        try:
            hellos = reader.feed(body[start:cut])
        except DecodeError:
            hellos = []
        start = cut
        if not lean:  # lean hellos have no fingerprint fields (never fingerprinted)
            for htype, rec in hellos:
                _fingerprints(htype, rec)
    if reader.done and reader.feed(b"\x16\x03\x01\x00\x04\x01\x00\x00\x00"):
        raise AssertionError("a reader that is done gave a hello")
    for htype, parse in PARSERS:
        try:
            rec = parse(body)
        except DecodeError:
            continue
        _fingerprints(htype, rec)


def seeds() -> list[bytes]:
    """The directions that start with a TLS handshake record in the project's recorded
    TLS capture and, where the public corpus is, two of its TLS captures (first 4 kB of
    each; whole, and cut in two and three pieces)."""
    from seedfiles import captures

    from netcap.decode.batch import decode_batch
    from netcap.reassembly.streams import segments
    from netcap.sources.capture import open_capture

    out: list[bytes] = []
    for path in captures(("tls",), ("ja3_ssl-chrome.pcap", "ja4_tls-handshake.pcapng")):
        dirs: dict[tuple[Any, ...], bytearray] = {}
        for batch in open_capture(path):
            segs = segments(decode_batch(batch))
            for seg in segs.rows() if segs is not None else ():
                dirs.setdefault(tuple(seg[:4]), bytearray()).extend(seg[6])
        streams = [bytes(d[:4096]) for d in dirs.values() if d[:2] == b"\x16\x03"][:8]
        cuts = (b"\0\0\0", b"\x01\x40\0", b"\x02\x20\xa0")
        out += [prefix + s for s in streams for prefix in cuts]
    return out


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
