"""The compiled stream stage and TCP reassembly (reassembly/_streams.pyx) against the
Python ones they replaced (tests/oracle_streams.py): the same chunks, counters, records,
errors and limits on the corpus streams and on generated segment orders, overlaps, gaps
and limits."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle_streams as old
from corpus import PCAPS, corpus_files
from netcap.reassembly import tcp
from netcap.reassembly.output import StreamOutput
from netcap.reassembly.streams import SegmentBatch, StreamStage, segments


def _chunks(chunks: list[Any]) -> list[tuple[int, Any, int]]:
    """Chunks as plain tuples (a Hidden as its length, the types being apart)."""
    return [(c.skip, c.data if isinstance(c.data, bytes) else len(c.data), c.ts)
            for c in chunks]


def _counters(s: Any) -> tuple[int, ...]:
    return (s.delivered, s.gaps, s.conflicts, s.overflows, s.buffered, s.last_ts,
            s.next_seq is None)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_direction_reassembles_as_before(data: st.DataObject) -> None:
    """Any order, duplication, overlap (with other bytes), holes, wrap-around, hidden
    pieces and a small buffer: the same chunks and counters, segment by segment."""
    isn = data.draw(st.sampled_from([0, 2**32 - 5, data.draw(st.integers(0, 2**32 - 1))]))
    max_buffer = data.draw(st.sampled_from([8, 40, 256 * 1024]))
    segs = data.draw(st.lists(st.tuples(
        st.integers(-20, 120),  # offset from the initial sequence number
        st.one_of(st.binary(max_size=30), st.integers(1, 30)),  # bytes, or hidden
        st.integers(0, 50)), max_size=25))
    syn = data.draw(st.booleans())
    new, ref = tcp.Stream(max_buffer), old.Stream(max_buffer)
    if syn:
        new.syn(isn)
        ref.syn(isn)
    for off, payload, ts in segs:
        seq = (isn + 1 + off) % 2**32
        got = new.segment(seq, payload if isinstance(payload, bytes)
                          else tcp.Hidden(payload), ts)
        want = ref.segment(seq, payload if isinstance(payload, bytes)
                           else old.Hidden(payload), ts)
        assert _chunks(got) == _chunks(want)
        assert _counters(new) == _counters(ref)
    if data.draw(st.booleans()):
        assert _chunks(new.shed()) == _chunks(ref.shed())
        assert _counters(new) == _counters(ref)
    assert _chunks(new.flush()) == _chunks(ref.flush())
    assert _counters(new) == _counters(ref) and new.finished and ref.finished


def _same(got: StreamOutput, want: StreamOutput) -> None:
    assert got.records == want.records
    assert got.errors == want.errors
    assert (got.gap_bytes, got.overflows) == (want.gap_bytes, want.overflows)
    assert got.tls_handshakes == want.tls_handshakes
    assert got.apps == want.apps


LIMITS = [{}, {"max_streams": 3, "max_buffer": 300, "max_total": 2000}]


@pytest.mark.corpus
@pytest.mark.parametrize("limits", LIMITS, ids=["default", "small"])
def test_the_stage_gives_what_it_gave_on_the_corpus(limits: dict[str, int]) -> None:
    """Every corpus capture, in batches of 64 packets (streams span batches), with the
    default limits and with small ones (eviction, overflows, shedding): update by
    update, the same output."""
    from netcap.decode.batch import decode_batch
    from netcap.sources.capture import CaptureError, open_capture

    records = 0
    for path in (PCAPS / name for name in corpus_files()):
        for hide in (False, True):
            new = StreamStage(detail=not hide, **limits)
            ref = old.StreamStage(detail=not hide, **limits)
            try:
                for batch in open_capture(str(path), batch_packets=64):
                    segs = segments(decode_batch(batch), hide_bodies=hide)
                    got, want = new.update(segs), ref.update(segs)
                    _same(got, want)
                    records += sum(len(r) for r in got.records.values())
                    assert new._buffered == ref._buffered
            except CaptureError:
                pass
            _same(new.flush(), ref.flush())
    assert records > 500  # 604 on the corpus of this writing


CLIENTS = [b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", bytes(15) + b"\x03"]
SERVER4, SERVER6 = b"\xc0\xa8\x00\x01", bytes(15) + b"\x09"
# Application bytes per kind of port; other ports are sniffed from the first bytes.
PAYLOADS = {
    80: [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"],
    8888: [b"POST /x HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", b"HTTP/1.0 204 No\r\n\r\n"],
    443: [bytes.fromhex("16030100310100002d0303") + bytes(32) + bytes.fromhex("0000020035010000"
                                                                              "0200ff"),
          b"\x16\x03\x03\x00\x05\x02\x00\x00\x01\x00"],
    22: [b"SSH-2.0-OpenSSH_9.0\r\n", b"SSH-2.0-x\r\n\x00\x00\x00\x0c\x0a\x14" + bytes(16)],
    53: [b"\x00\x0c" + bytes.fromhex("abcd01000001000000000000"), b"\x00\x02\xff\xff"],
    5000: [b"GET /o HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x02\x01\x00", b"zzzz"],
}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_stage_gives_what_it_gave_on_generated_segments(data: st.DataObject) -> None:
    """A few connections on each kind of port, both directions, their bytes cut into
    segments that are reordered, duplicated, dropped and hidden, with SYN/FIN/RST and
    limits small enough to evict, overflow and shed: the same output."""
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    segs: list[tuple[Any, ...]] = []
    for _ in range(data.draw(st.integers(1, 5))):
        port = data.draw(st.sampled_from(sorted(PAYLOADS)))
        client = rnd.choice(CLIENTS)
        server = SERVER6 if len(client) == 16 else SERVER4
        cport = rnd.randrange(1024, 65536)
        for forward in (True, False):
            a, ap, b, bp = (client, cport, server, port) if forward else (server, port,
                                                                            client, cport)
            isn = rnd.choice([rnd.randrange(2**32), 2**32 - 3])
            stream = b"".join(rnd.choice(PAYLOADS[port]) for _ in range(rnd.randint(0, 3)))
            if rnd.random() < 0.7:
                segs.append((a, ap, b, bp, isn, 1, b""))
            pos = 0
            while pos < len(stream):
                n = rnd.randint(1, 12)
                piece: bytes | int = stream[pos : pos + n]
                if rnd.random() < 0.1:
                    piece = len(piece)  # hidden (a body no parser needs)
                if rnd.random() < 0.1:
                    piece = bytes(len(stream[pos : pos + n]))  # other bytes, same place
                if rnd.random() > 0.1:  # else lost
                    segs.append((a, ap, b, bp, (isn + 1 + pos) % 2**32, 0, piece))
                if rnd.random() < 0.15:
                    segs.append((a, ap, b, bp, (isn + 1 + pos) % 2**32, 0, piece))
                pos += n
            if rnd.random() < 0.5:
                segs.append((a, ap, b, bp, (isn + 1 + len(stream)) % 2**32,
                             rnd.choice([2, 4]), b""))
    for i in range(len(segs)):  # local reordering
        j = min(len(segs) - 1, i + rnd.randint(0, 3))
        segs[i], segs[j] = segs[j], segs[i]
    rows = [(*s, 1000 + i, i) for i, s in enumerate(segs)]
    limits = data.draw(st.sampled_from([{}, {"max_streams": 2, "max_buffer": 16,
                                             "max_total": 40}]))
    new, ref = StreamStage(**limits), old.StreamStage(**limits)
    cut = data.draw(st.integers(0, len(rows)))
    for part in (rows[:cut], rows[cut:]):
        batch = SegmentBatch.from_rows(part) if part else None
        _same(new.update(batch), ref.update(batch))
        assert new._buffered == ref._buffered
    _same(new.flush(), ref.flush())


_EDGE_ADDRESSES = [bytes(16), bytes(15) + b"\x01", b"\x00" * 10 + b"\xff\xff" + bytes(4),
                   b"\x00" * 10 + b"\xff\xff\x01\x02\x03\x04", b"\x00" * 12 + b"\x01\x02\x03\x04",
                   bytes.fromhex("00010000000100000000000100000001"),
                   bytes.fromhex("fe800000000000000000000000000001"), bytes(4), b"\xff" * 4]


@settings(max_examples=300)
@given(st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16),
                 st.lists(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\xab\xcd"]),
                          min_size=8, max_size=8).map(b"".join),
                 st.sampled_from(_EDGE_ADDRESSES)),
       st.sampled_from(_EDGE_ADDRESSES))
def test_flow_text_is_pythons_address_text(a: bytes, b: bytes) -> None:
    """SSH records name their flow by Python's address text (as the stage did through
    ipaddress); the C formatter it now uses must agree, IPv4-mapped IPv6 included."""
    from netcap.reassembly._streams import _flow

    assert _flow((a, 1, b, 65535)) == old._flow((a, 1, b, 65535))


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from([-1, 0, 1, 2, 7]), st.integers(0, 3),
                          st.sampled_from([b"\x01", b"\x02"]), st.integers(0, 2)),
                max_size=12))
def test_canonical_order_is_the_sorted_order(rows: list[tuple[int, int, bytes, int]]) -> None:
    """The order check that skips the sort compares packet numbers first and whole keys
    only on ties: it must give exactly a stable sort by `record_order`."""
    from netcap.reassembly._streams import record_order

    out = StreamOutput()
    made = []
    for i, (pkt, ts, ip, port) in enumerate(rows):
        rec = {"Timestamp": ts, "SrcIP": ip, "SrcPort": port, "DstIP": b"\x09",
               "DstPort": i}
        out.add("DNS", pkt, rec)
        made.append((pkt, rec))
    got = out.canonical().records.get("DNS", [])
    assert [id(r) for _, r in got] == [id(r) for _, r in sorted(made, key=record_order)]
