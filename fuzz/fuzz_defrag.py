"""Fuzz target: the compiled IP defragmentation (netcap.reassembly._ip.Defragmenter) with
small limits, on a few fragments decoded from the input, then flushed. Any exception, a
datagram that is not a whole IP packet, more datagrams pending than the limit, or any
sanitizer report is a bug.

Input: one byte of limits, then per fragment six bytes (flags: version, identification,
transport, more fragments, offset size, addresses; offset, two bytes; length; time step;
wire length, whose low bit asks for a clock advance after the fragment's batch) and
`length` bytes of its data."""

from __future__ import annotations

import io
import sys

from netcap.reassembly._ip import Defragmenter
from netcap.reassembly.ip import Datagram, Fragment

_A, _B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
_ADDRS = [(_A, _B), (_B, _A), (bytes(15) + b"\1", bytes(15) + b"\2"), (b"", b"\1\2\3")]
_TIMEOUTS = [0, 1, 5, 20, 100, 10**9, -1, 2**62]
_STARTS = [0, 2**63 - 2**16, -2**63 + 2**16, 10**18]


_LO, _HI = -2**63, 2**63 - 1


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    limits = data[0]
    max_datagrams = 1 + (limits & 3)
    d = Defragmenter(_TIMEOUTS[(limits >> 2) & 7], max_datagrams, 64 << ((limits >> 5) & 7))
    now = _STARTS[limits & 3]
    # Fragments as plain tuples in ip.Fragment's field order (what _add unpacks), read
    # with a stream rather than positions: in the sanitizer build every object costs (a
    # NamedTuple's constructor is a Python call, and every int above 256 a malloc).
    frags: list[tuple[int, bytes, bytes, int, int, int, bool, bytes, int, int, int]] = []
    stream = io.BytesIO(data)  # shares the input's bytes
    stream.seek(1)
    read = stream.read
    while len(frags) < 64:
        head = read(6)
        if len(head) < 6:
            break
        f, h1, h2, size, step, wire = head
        # small offsets (overlaps, completion), or anywhere up to 65,528
        offset = (((h1 << 8) | h2) & 0x1FFF) * 8 if f & 32 else (h1 & 63) * 8
        now += step - 128 if step != 255 else 2**40
        now = _HI if now > _HI else _LO if now < _LO else now
        src, dst = _ADDRS[f >> 6]
        frags.append((6 if f & 1 else 4, src, dst, (f >> 1) & 3, 6 if f & 8 else 17, offset,
                      bool(f & 16), read(size), now, len(frags), wire * 64))
    for k in range(0, len(frags), 4):  # batches of four
        for done in d._add(frags[k : k + 4], Datagram):
            head = 20 if done.packet[0] >> 4 == 4 else 40
            if done.packet[0] >> 4 not in (4, 6) or len(done.packet) < head:
                raise RuntimeError("not an IP packet")
        if len(d) > max_datagrams:
            raise RuntimeError("more datagrams pending than the limit")
        if frags[k][10] & 64:  # the wire length's low bit: a clock advance
            d._advance(now)
    d._flush()
    if len(d):
        raise RuntimeError("datagrams left after flush")


def _encode(frags: list[Fragment]) -> bytes:
    out = bytearray([0xF5])  # two datagrams may wait, a 1 s timeout, 8 KiB held
    for f in frags:
        pair = next((k for k, (s, t) in enumerate(_ADDRS) if (s, t) == (f.src, f.dst)), 0)
        for start in range(0, max(len(f.data), 1), 248):  # longer than 255 bytes: cut
            piece = f.data[start : start + 248]
            o = (f.offset + start) // 8
            more = f.more or start + 248 < len(f.data)
            flags = (pair << 6) | 32 | more << 4 | (8 if f.proto == 6 else 0) | (
                f.ident & 3) << 1 | (f.version == 6)
            out += bytes([flags, (o >> 8) & 0x1F, o & 0xFF, len(piece), 129, 24]) + piece
    return bytes(out)


def seeds() -> list[bytes]:
    """The corpus's fragments (fragmented-1, -3 and the IPv6 DNS response) encoded."""
    from seedfiles import captures

    from netcap.decode.batch import decode_batch
    from netcap.reassembly.ip import fragments
    from netcap.sources.capture import open_capture

    out = []
    for path in captures(corpus=("zeek_ipv4_fragmented-1.pcap", "zeek_ipv4_fragmented-3.pcap",
                                 "zeek_ipv6-fragmented-dns.pcap")):
        frags = [f for b in open_capture(path) for f in fragments(decode_batch(b)) or ()]
        out.append(_encode(frags))
    return out


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
