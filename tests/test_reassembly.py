"""TCP reassembly: order, overlaps, retransmissions, wrap-around, gaps, limits."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import PCAPS, corpus_files
from netcap.reassembly.tcp import Chunk, Stream


def _bytes(chunks: list[Chunk]) -> bytes:
    return b"".join(c.data for c in chunks)


def test_in_order_out_of_order_and_retransmission() -> None:
    s = Stream()
    s.syn(1000)
    assert _bytes(s.segment(1001, b"hello ", 1)) == b"hello "
    assert s.segment(1012, b"!", 2) == []  # out of order: waits
    assert _bytes(s.segment(1007, b"world", 3)) == b"world!"
    assert s.segment(1001, b"hello ", 4) == []  # retransmitted, already delivered
    assert _bytes(s.segment(1010, b"ld!more", 5)) == b"more"  # overlap: only new bytes
    assert s.delivered == 16 and s.gaps == 0


def test_first_copy_wins_and_conflicts_are_counted() -> None:
    s = Stream()
    s.syn(0)
    s.segment(5, b"XXXX", 1)
    s.segment(5, b"YYYY", 2)  # same place, other bytes: counted, first kept
    assert _bytes(s.segment(1, b"abcd", 3)) == b"abcdXXXX"
    assert s.conflicts == 1


def test_sequence_wraps_around() -> None:
    s = Stream()
    s.syn(2**32 - 3)  # data starts at 2**32 - 2
    assert _bytes(s.segment(2**32 - 2, b"ab", 1)) == b"ab"
    assert _bytes(s.segment(0, b"cd", 2)) == b"cd"  # wrapped
    assert s.segment(2**32 - 1, b"bc", 3) == []  # old bytes across the wrap


def test_picked_up_mid_way() -> None:
    s = Stream()
    assert _bytes(s.segment(777_777, b"middle", 1)) == b"middle"


def test_gap_is_reported_never_filled() -> None:
    s = Stream(max_buffer=10)
    s.syn(0)
    s.segment(1, b"ab", 1)
    assert s.segment(20, b"0123456789", 2) == []  # a hole at 3..19, 10 bytes wait
    out = s.segment(30, b"X", 3)  # over the limit: skip to what is buffered
    assert [(c.skip, c.data) for c in out] == [(17, b"0123456789"), (0, b"X")]
    assert s.gaps == 17 and s.overflows == 1 and b"\0" not in _bytes(out)


def test_flush_delivers_what_waits_with_its_gaps() -> None:
    s = Stream()
    s.syn(0)
    s.segment(11, b"late", 1)
    s.segment(5, b"mid", 2)
    out = s.flush()
    assert [(c.skip, c.data) for c in out] == [(4, b"mid"), (3, b"late")]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_order_any_duplication_gives_the_stream(data: st.DataObject) -> None:
    """Split a byte string into segments, shuffle, duplicate and overlap them: the
    output is the string, delivered once, whatever the order."""
    payload = data.draw(st.binary(min_size=1, max_size=400))
    isn = data.draw(st.integers(0, 2**32 - 1))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(payload)), max_size=12)))
    bounds = [0, *cuts, len(payload)]
    segs = [(a, payload[a:b]) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    segs += data.draw(st.lists(st.sampled_from(segs), max_size=5))  # retransmissions
    rnd = random.Random(data.draw(st.integers(0, 1000)))
    rnd.shuffle(segs)
    s = Stream()
    s.syn(isn)
    got = b"".join(_bytes(s.segment((isn + 1 + a) % 2**32, d, 0)) for a, d in segs)
    assert got + _bytes(s.flush()) == payload and s.gaps == 0


@pytest.mark.corpus  # test_analyzers.DNS: corpus messages
def test_dns_over_tcp_across_segments_and_gaps() -> None:
    """The stream stage: DNS messages split over segments (in any order) come out once;
    after a gap the cut message is lost, not invented."""
    from netcap.reassembly.streams import StreamStage
    from test_analyzers import DNS

    msg = DNS[0]
    framed = len(msg).to_bytes(2, "big") + msg
    a, b = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"

    def seg(seq: int, data: bytes, syn: bool = False) -> tuple[bytes, int, bytes, int, int,
                                                                bool, bytes, int, int]:
        return (a, 40000, b, 53, seq, syn, data, 1000 + seq, seq)

    stage = StreamStage()
    out = stage.update([seg(99, b"", True), seg(100 + 5, framed[5:]), seg(100, framed[:5])])
    (pkt, rec), = out.records["DNS"]
    assert rec["ID"] == int.from_bytes(msg[:2], "big") and rec["DstPort"] == 53
    assert pkt == 100  # the segment that completed it
    # Two more messages with the middle of the first one missing: one comes out.
    base = 100 + len(framed)
    later = stage.update([seg(base, framed[:3]), seg(base + len(framed), framed)])
    assert later.records == {}
    flushed = stage.flush()
    assert len(flushed.records["DNS"]) == 1 and flushed.gap_bytes == len(framed) - 3


@pytest.mark.corpus
def test_hidden_http_bodies_give_the_same_records() -> None:
    """Counting only, the workers ship HTTP body segments that no parser needs as their
    length (`segments(hide_bodies=True)`): on every corpus capture the HTTP records, and
    all other stream records, equal those from shipping every byte."""

    from netcap.decode.batch import decode_batch
    from netcap.reassembly.streams import StreamStage, segments
    from netcap.sources.capture import CaptureError, open_capture

    hidden = 0
    for path in (PCAPS / name for name in corpus_files()):
        outs = []
        for hide in (False, True):
            stage = StreamStage(detail=False, fingerprints=frozenset())
            recs: list[tuple[str, dict[str, object]]] = []
            try:
                for batch in open_capture(str(path), batch_packets=64):  # runs span batches
                    segs = segments(decode_batch(batch), hide_bodies=hide)
                    hidden += int((segs.hidden > 0).sum()) if segs is not None else 0
                    for name, t in stage.update(segs).tables().items():
                        recs += [(name, r) for r in t.to_dicts()]
            except CaptureError:
                break
            for name, t in stage.flush().tables().items():
                recs += [(name, r) for r in t.to_dicts()]
            outs.append(recs)
        if len(outs) == 2:
            assert outs[0] == outs[1], path.name
    assert hidden > 50  # 88: the corpus's binary bodies (images, gzip, the ISO download)


def test_stage_bounds_out_of_order_bytes_in_total() -> None:
    """Many streams each holding out-of-order bytes: past the stage's total, the fullest
    direction gives up waiting (an overflow, its hole a gap) and the total stays bounded;
    the bytes after the hole still reach the analyzer."""
    from netcap.reassembly.streams import StreamStage

    stage = StreamStage(max_total=10_000)
    out_overflows = gaps = 0
    for i in range(40):  # 40 DNS-over-TCP streams, each missing its first 100 bytes
        src = bytes([10, 0, 0, i])
        seg = (src, 40000 + i, bytes([10, 0, 0, 200]), 53, 1100, 0, b"x" * 1000, i, i)
        out = stage.update([(src, 40000 + i, bytes([10, 0, 0, 200]), 53, 999, 1, b"", i, i),
                            seg])
        out_overflows += out.overflows
        gaps += out.gap_bytes
        assert stage._buffered <= 10_000
    assert out_overflows >= 30 and gaps == out_overflows * 100
