"""The compiled IP defragmentation (reassembly/_ip.pyx) against the Python it replaced
(tests/oracle_defrag.py): the same fragments picked from every batch, the same datagrams,
the same counted errors and the same pending count after every step, on every corpus
capture, on made-up fragment sets (hypothesis: a few identifications, overlapping and
conflicting offsets, second ends, timestamps that go back and jump, small limits) and on
made-up packets of both IP versions in one batch."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle_defrag as old
from corpus import PCAPS, corpus_files
from netcap.decode.batch import decode_batch
from netcap.decode.linktypes import LT
from netcap.reassembly.ip import Defragmenter, Fragment, fragments
from netcap.sources.batch import PacketBatch
from netcap.sources.capture import CaptureError, open_capture

A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6, B6 = bytes(15) + b"\1", bytes(15) + b"\2"


class Both:
    def __init__(self, **limits: int) -> None:
        self.new = Defragmenter(**limits)
        self.old = old.Defragmenter(**limits)
        self.done = 0

    def same(self) -> None:
        assert self.new.errors == self.old.errors
        assert len(self.new) == len(self.old)

    def add(self, frags: list[Fragment] | None) -> None:
        a, b = self.new.add(frags), self.old.add(frags)
        assert a == b
        self.done += len(a)
        self.same()

    def advance(self, now: int) -> None:
        self.new.advance(now)
        self.old.advance(now)
        self.same()

    def flush(self) -> None:
        self.new.flush()
        self.old.flush()
        self.same()
        assert len(self.new) == 0


def batch(d: Any, both: Both) -> None:
    frags = fragments(d)
    assert frags == old.fragments(d)
    both.add(frags)


@pytest.mark.corpus
def test_compiled_defrag_equals_the_old_on_the_corpus() -> None:
    datagrams = 0
    for name in corpus_files():
        both = Both()
        try:
            for b in open_capture(str(PCAPS / name), batch_packets=3):
                batch(decode_batch(b), both)
        except CaptureError:  # unusable or cut short: what was read counts
            pass
        both.flush()
        datagrams += both.done
    assert datagrams >= 2  # fragmented-1's NTP and the fragmented DNS response


# -- made-up fragment sets ----------------------------------------------------------------

BASES = [bytes(range(256)) * 2, bytes(range(255, -1, -1)) * 2]  # conflicting copies

fragment = st.tuples(
    st.sampled_from([(4, A4, B4), (6, A6, B6), (4, B4, A4)]), st.integers(1, 3),
    st.sampled_from([6, 17]), st.integers(0, 8),
    st.sampled_from([8, 16, 24, 32]) | st.integers(0, 40), st.booleans(),
    st.integers(0, 1) | st.just(0), st.integers(-10, 20))  # version+addresses, id, proto, offset/8,
# length, more, which base, time step


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(fragment, max_size=12), min_size=1, max_size=8),
       st.integers(1, 4), st.integers(16, 600), st.integers(-5, 200), st.data())
def test_compiled_defrag_equals_the_old_on_made_up_fragments(
        steps: list[list[Any]], max_datagrams: int, max_bytes: int, timeout: int,
        data: st.DataObject) -> None:
    both = Both(timeout_ns=timeout, max_datagrams=max_datagrams, max_bytes=max_bytes)
    now = data.draw(st.sampled_from([1000, -2**63 + 10, 2**63 - 10**4]))  # packet times: any
    pkt = 0
    for step in steps:
        frags = []
        for (version, src, dst), ident, proto, off8, length, more, base, dt in step:
            now = min(max(-2**63, now + dt), 2**63 - 1)
            pkt += 1
            off = off8 * 8
            frags.append(Fragment(version, src, dst, ident, proto, off, more,
                                  BASES[base][off : off + length], now, pkt, length + 34))
        both.add(frags)
        if data.draw(st.booleans()):
            both.advance(max(-2**63, now + data.draw(st.integers(-50, 100))))
    both.flush()


def test_an_ipv4_datagram_too_long_for_its_header_is_counted_not_raised() -> None:
    """65,530 bytes of IPv4 payload fit no IPv4 length field with a header (the Python
    version raised struct.error on such a datagram, from crafted fragments): dropped and
    counted as fragment_too_big."""
    d = Defragmenter()
    frags = [Fragment(4, A4, B4, 9, 17, off, off + 1480 < 65530, bytes(min(1480, 65530 - off)),
                      1, 1, 1500) for off in range(0, 65530, 1480)]
    assert d.add(frags) == [] and len(d) == 0
    assert d.errors == {"ipv4/fragment_too_big": 1}
    v6 = [f._replace(version=6, src=A6, dst=B6) for f in frags]  # IPv6: its length fits
    assert len(d.add(v6)) == 1


# -- made-up packets: both versions in a batch --------------------------------------------

def _v4(ident: int, off: int, more: bool, payload: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident,
                       (more << 13) | off // 8, 64, 17, 0, A4, B4) + payload


def _v6(ident: int, off: int, more: bool, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, 8 + len(payload), 44, 64, A6, B6) + struct.pack(
        "!BBHI", 17, 0, (off // 8) << 3 | more, ident) + payload


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 2), st.integers(0, 6),
                          st.integers(0, 30), st.booleans(), st.integers(0, 1)),
                min_size=1, max_size=20), st.integers(1, 8))
def test_compiled_fragments_equal_the_old_on_made_up_packets(
        rows: list[tuple[bool, int, int, int, bool, int]], per_batch: int) -> None:
    packets = [(_v6 if v6 else _v4)(ident, off8 * 8, more, BASES[base][off8 * 8 : off8 * 8 + n])
               for v6, ident, off8, n, more, base in rows]
    both = Both()
    for lo in range(0, len(packets), per_batch):
        part = packets[lo : lo + per_batch]
        batch(decode_batch(PacketBatch.from_packets(part, list(range(lo, lo + len(part))),
                                                    LT.RAW, first=lo)), both)
    both.flush()
