"""IP defragmentation: the corpus's fragmented captures through the whole pipeline, the
reassembly rules one by one, and a property test (any fragmentation, in any order, with
duplicates, gives the datagram back)."""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import PCAPS
from netcap.pipeline import CaptureOptions, run_capture
from netcap.reassembly.ip import Defragmenter, Fragment, decode_datagrams
from netcap.sources.ncap import NcapReader

SRC, DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def frag(offset: int, data: bytes, more: bool, ts: int = 0, ident: int = 7,
         version: int = 4) -> Fragment:
    return Fragment(version, SRC, DST, ident, 17, offset, more, data, ts, ts, len(data) + 34)


def records(name: str, kind: str) -> list[object]:
    with tempfile.TemporaryDirectory() as tmp:
        stats = run_capture(CaptureOptions(read=str(PCAPS / name), out=tmp, workers=1))
        path = os.path.join(tmp, f"{kind}.ncap.gz")
        out = list(NcapReader(path)) if os.path.exists(path) else []
    records.errors = stats.errors  # type: ignore[attr-defined]
    return out


@pytest.mark.corpus
def test_ipv6_fragmented_dns_response_is_decoded() -> None:
    """Zeek's trace: a 3,238-byte DNS TXT response in three IPv6 fragments."""
    dns = records("zeek_ipv6-fragmented-dns.pcap", "DNS")
    extra = [a for m in dns for a in m.Additionals]
    assert any(m.QR and m.ID == 40849 for m in dns)
    names = [q.Name for m in dns for q in m.Questions if m.QR]
    assert "txtpadding_3230.n1.netalyzr.icsi.berkeley.edu" in names  # the fragmented one
    assert "192.150.187.31" in [a.IP for a in extra]
    udp = records("zeek_ipv6-fragmented-dns.pcap", "UDP")
    assert 3238 in [u.Length for u in udp]


@pytest.mark.corpus
def test_overlapping_ipv4_fragments_are_counted() -> None:
    """Zeek's fragmented-1: a first fragment sent twice with different bytes; the first
    copy holds (as in tshark: UDP length 18) and the overlap is counted."""
    udp = records("zeek_ipv4_fragmented-1.pcap", "UDP")
    assert [(u.SrcPort, u.DstPort, u.Length) for u in udp] == [(123, 137, 18)]
    errors = records.errors  # type: ignore[attr-defined]
    assert errors["ipv4/fragment_overlap"] == 1 and errors["ipv4/fragment_inconsistent"] == 1


@pytest.mark.corpus
def test_incomplete_datagram_gives_no_transport() -> None:
    """fragmented-3: a TCP first fragment whose rest never comes: no TCP record, no
    connection (as tshark), and the datagram is dropped at the end of input."""
    assert records("zeek_ipv4_fragmented-3.pcap", "TCP") == []
    assert records.errors["ipv4/fragment_timeout"] == 1  # type: ignore[attr-defined]


def test_rules() -> None:
    d = Defragmenter()
    assert d.add([frag(8, b"B" * 8, False, ts=1)]) == []  # out of order
    done = d.add([frag(0, b"A" * 8, True, ts=2)])
    assert len(done) == 1 and done[0].packet[20:] == b"A" * 8 + b"B" * 8
    assert done[0].ts == 2 and done[0].fragments == 2 and len(d) == 0
    # the same bytes twice: not a conflict; different bytes: the first copy wins
    d.add([frag(0, b"A" * 8, True), frag(0, b"A" * 8, True)])
    done = d.add([frag(0, b"X" * 8, True), frag(8, b"C" * 4, False)])
    assert done[0].packet[20:] == b"A" * 8 + b"C" * 4
    assert d.errors == {"ipv4/fragment_overlap": 1}
    d.errors.clear()
    # a second, different end: the first end holds
    d.add([frag(16, b"E" * 8, False), frag(8, b"F" * 4, False)])
    done = d.add([frag(0, b"G" * 8, True), frag(8, b"H" * 8, True)])
    assert done[0].packet[20:] == b"G" * 8 + b"F" * 4 + b"H" * 4 + b"E" * 8
    assert d.errors == {"ipv4/fragment_inconsistent": 1, "ipv4/fragment_overlap": 1}


def test_bounds_and_timeouts() -> None:
    d = Defragmenter(timeout_ns=10, max_datagrams=3)
    d.add([frag(0, b"x" * 8, True, ident=i) for i in range(5)])
    assert len(d) == 3 and d.errors == {"ipv4/fragment_evicted": 2}
    d.add([frag(0, b"x" * 8, True, ts=100, ident=99)])  # the others are 100 ns old
    assert len(d) == 1 and d.errors["ipv4/fragment_timeout"] == 3
    d.add([frag(65528, b"x" * 16, False, ts=100, ident=99)])
    assert len(d) == 0 and d.errors["ipv4/fragment_too_big"] == 1
    small = Defragmenter(max_bytes=100)
    small.add([frag(0, b"x" * 64, True, ident=1), frag(0, b"y" * 64, True, ident=2)])
    assert len(small) == 1 and small.errors == {"ipv4/fragment_evicted": 1}


@pytest.mark.corpus
def test_reassembled_udp_is_decoded_from_the_transport_up() -> None:
    payload = bytes.fromhex("0035d6e3") + (8 + 24).to_bytes(2, "big") + b"\0\0" + b"z" * 24
    d = Defragmenter()
    done = d.add([frag(16, payload[16:], False), frag(0, payload[:16], True)])
    upper = decode_datagrams(done)
    assert set(upper.tables) == {"UDP"}  # no second IP record: the fragments have theirs
    assert upper.records("UDP")[0][1]["SrcPort"] == 53


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.data())
def test_any_fragmentation_in_any_order(payload: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, (len(payload) - 1) // 8)),
                                    max_size=20)))
    bounds = [0, *(c * 8 for c in cuts if c * 8 < len(payload)), len(payload)]
    frags = [frag(a, payload[a:z], z < len(payload))
             for a, z in zip(bounds[:-1], bounds[1:], strict=True) if z > a]
    frags += data.draw(st.lists(st.sampled_from(frags), max_size=4))  # duplicates
    order = data.draw(st.permutations(frags))
    d = Defragmenter()
    done = d.add(list(order))
    assert len(done) >= 1 and done[0].packet[20:] == payload
    assert not d.errors


@pytest.mark.corpus
def test_a_reassembled_datagram_joins_its_flow_wherever_the_batch_ends(
        tmp_path: Path) -> None:
    """Zeek's fragmented DNS trace, then a packet of another flow two minutes later, in
    one batch: the response reassembled from fragments joins its query's connection
    (it came 83 ms after it). Its flow used to be merged after the batch's timeouts,
    which ended the query's connection by the batch's latest packet time (past the
    60-second UDP idle timeout), so the response made a connection of its own, or not,
    depending on where batches ended."""
    trace = (PCAPS / "zeek_ipv6-fragmented-dns.pcap").read_bytes()
    first = trace[24 : 24 + 16 + 135]  # the first query: Ethernet, IPv6, UDP
    sec, usec, incl, orig = struct.unpack("<IIII", first[:16])
    late = bytearray(first)
    late[:16] = struct.pack("<IIII", sec + 140, usec, incl, orig)
    late[16 + 54 : 16 + 56] = (40000).to_bytes(2, "big")  # another source port: a flow
    path = tmp_path / "late.pcap"
    path.write_bytes(trace + bytes(late))
    run_capture(CaptureOptions(read=str(path), out=str(tmp_path / "o"), workers=1))
    conns = list(NcapReader(str(tmp_path / "o" / "Connection.ncap.gz")))
    # the trace's two DNS flows (client ports 51850 and 51851) and the late packet's
    assert sorted(c.SrcPort for c in conns) == ["40000", "51850", "51851"]
    (frag,) = (c for c in conns if c.SrcPort == "51851")
    # two queries and the response completed by its last fragment (20.237826 s in)
    assert frag.NumPackets == 3 and frag.TimestampLast == 1331084298_676270_000
    assert frag.BytesClientToServer and frag.BytesServerToClient
