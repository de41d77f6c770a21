"""The compiled TCP segment picking (reassembly/_segments.pyx, `streams.segments`) against
the numpy code it replaced (tests/oracle_segments.py): the same SegmentBatch (rows, order,
columns and their dtypes, payload bytes, hidden lengths) for every batch of every corpus
capture and recorded capture, with and without `hide_bodies`, for several sets of stream
analyzers and batch sizes; and on made-up TCP packets (hypothesis: connections on every kind
of port and on others, both directions, payloads that start or nearly start HTTP messages
and TLS records, binary and text bodies, SYN/FIN/RST, sequence numbers that continue,
repeat, jump and wrap, IPv4 addresses and IPv6 ones that `addr_words` reads alike)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle_segments as old
from corpus import PCAPS, corpus_files
from netcap.decode.batch import Decoded, decode_batch
from netcap.decode.linktypes import LT
from netcap.reassembly.streams import ALL_KINDS, SegmentBatch, segments
from netcap.sources.batch import PacketBatch
from netcap.sources.capture import CaptureError, open_capture

RECORDED = Path(__file__).parent / "data" / "recorded"
FIELDS = list(SegmentBatch.__dataclass_fields__)
KINDS = [ALL_KINDS, frozenset({"TLS"}), frozenset({"HTTP"}), frozenset({"SSH", "DNS"}),
         frozenset({"TLS", "HTTP"})]


def same(d: Decoded, kinds: frozenset[str], hide: bool) -> int:
    """Compiled and old picking of one batch are equal; the rows picked."""
    a, b = segments(d, kinds, hide_bodies=hide), old.segments(d, kinds, hide_bodies=hide)
    assert (a is None) == (b is None)
    if a is None or b is None:
        return 0
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if name in ("src", "dst"):
            assert x.equals(y) and x.data.dtype == y.data.dtype == np.uint8, name
            assert x.lens.dtype == y.lens.dtype == np.int64, name
        elif name == "payload":
            assert isinstance(x, bytes) and x == y
        elif name == "at":  # the old picker leaves them back to back (None)
            assert np.array_equal(a.starts(), b.starts())
        else:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert np.array_equal(x, y), name
    # Read in place, the payloads stay in the batch's buffer: the same segments.
    c = segments(d, kinds, hide_bodies=hide, in_place=True)
    assert c is not None and c.payload is d.batch.data
    assert list(c.rows()) == list(a.rows())
    return len(a)


def each_batch(path: Path, batch: int) -> list[Decoded]:
    out = []
    try:
        for b in open_capture(str(path), batch_packets=batch):
            out.append(decode_batch(b))
    except CaptureError:  # unusable or cut short: what was read counts
        pass
    return out


@pytest.mark.corpus
@pytest.mark.parametrize("batch", [7, 64, 65536])
def test_compiled_picking_equals_the_old_on_the_corpus(batch: int) -> None:
    rows = hidden = 0
    for name in corpus_files():
        for d in each_batch(PCAPS / name, batch):
            for hide in (False, True):
                for kinds in KINDS:
                    rows += same(d, kinds, hide)
            s = segments(d, hide_bodies=True)
            hidden += 0 if s is None else int((s.hidden > 0).sum())
    assert rows > 3000 and hidden > 20  # the corpus has HTTP bodies to hide


@pytest.mark.parametrize("batch", [5, 64, 65536])
def test_compiled_picking_equals_the_old_on_the_recorded_captures(batch: int) -> None:
    rows = 0
    for path in sorted(RECORDED.glob("*.pcap")):
        for d in each_batch(path, batch):
            for hide in (False, True):
                for kinds in KINDS:
                    rows += same(d, kinds, hide)
    assert rows > 200


# -- made-up packets ----------------------------------------------------------------------

# 10.0.0.1 and ::10.0.0.1 are one address to `addr_words` (the low 32 bits), so one
# direction to both: kept alike (a "twin" connection is another's in the other version).
ADDRS4 = [bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes([10, 0, 0, 3])]
ADDRS6 = [bytes(12) + bytes([10, 0, 0, 1]), bytes(12) + bytes([10, 0, 0, 2]),
          bytes.fromhex("20010db8" + "00" * 11 + "01")]
SERVER_PORTS = [80, 8080, 443, 993, 22, 2222, 53, 5000, 40001]
CLIENT_PORTS = [40000, 40001, 5000, 443]
SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10
# A payload: a head (the first bytes of an HTTP message, of a TLS record of any version, of
# other protocols) then a tail (binary and text bodies, CRLF or CR or LF in places).
HEADS = [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\n", b"POST", b"G",
         b"GE", b"GET", b"HT", b"HTT", b"PO", b"DELE", b"GEX", b"TRAC", b"\x16", b"\x17",
         *(bytes([k, 3, v]) for k in (0x16, 0x17) for v in (0, 3, 4, 5)), b"\x16\x02",
         b"\x17\x02", b"SSH-2.0-x\r\n", b"\x00\x0c\xab\xcd", b"\n", b"\r", b"", b""]
TAILS = [b"", b"", bytes(range(256)), b"\x00\x01\x02\xff\xfe" * 9, b"\x80\x81\x00abc\xff",
         b"ab\r\n\x00\xff", b"abc\r\x00\xff", b"\x00\xff\r", b"\x7f\x80", b"\xc3\xa9t\xc3\xa9",
         b"hello world", b"\x01\r\n", b"x\r\n\r\n"]
payloads = st.tuples(st.sampled_from(HEADS), st.sampled_from(TAILS) | st.binary(max_size=30),
                     st.sampled_from([1, 2, 3, 4, 5, 10**6, 10**6, 10**6]))  # cut there


def _frame(v6: bool, src: bytes, sport: int, dst: bytes, dport: int, seq: int, flags: int,
           payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq % 2**32, 0, 5 << 4, flags, 65535, 0,
                      0) + payload
    if v6:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, src, dst)
        kind = 0x86DD
    else:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst)
        kind = 0x0800
    return bytes(6) + bytes(6) + struct.pack("!H", kind) + ip + tcp


connections = st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 2),
                                 st.sampled_from(CLIENT_PORTS), st.sampled_from(SERVER_PORTS),
                                 st.sampled_from([0, 1000, 2**32 - 7, 2**31])),
                       min_size=1, max_size=4)
packets = st.tuples(st.integers(0, 4), st.booleans(),
                    st.sampled_from([ACK, ACK, ACK, SYN, SYN | ACK, FIN | ACK, RST, RST | FIN]),
                    payloads, st.sampled_from(["next", "next", "next", "again", "jump"]))


@settings(max_examples=400, deadline=None)
@given(connections, st.lists(packets, min_size=1, max_size=60), st.data())
def test_compiled_picking_equals_the_old_on_made_up_packets(
        conns: list[tuple[Any, ...]], pkts: list[tuple[Any, ...]], data: st.DataObject) -> None:
    if data.draw(st.booleans()):  # a twin of the first connection
        v6, *rest = conns[0]
        conns = [conns[0], (not v6, *rest), *conns[1:]]
    frames = []
    seqs: dict[tuple[int, bool], int] = {}
    for conn, back, flags, (head, tail, cut), how in pkts:
        v6, a, b, cport, sport, isn = conns[conn % len(conns)]
        client, server = (ADDRS6 if v6 else ADDRS4)[a], (ADDRS6 if v6 else ADDRS4)[b]
        payload = (head + tail)[:cut]
        key = (conn % len(conns), back)
        seq = seqs.get(key, isn + back * 7777)
        if how == "jump":
            seq += 1 + len(tail)
        elif how == "again":
            seq -= len(payload)
        seqs[key] = seq + len(payload)
        frames.append(_frame(v6, server, sport, client, cport, seq, flags, payload) if back
                      else _frame(v6, client, cport, server, sport, seq, flags, payload))
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(frames)), max_size=3))))
    kinds = data.draw(st.sampled_from(KINDS) | st.frozensets(
        st.sampled_from(sorted(ALL_KINDS)), max_size=4))
    first = data.draw(st.integers(0, 10**6))
    for lo, hi in zip([0, *cuts], [*cuts, len(frames)], strict=True):
        if hi <= lo:
            continue
        d = decode_batch(PacketBatch.from_packets(frames[lo:hi], list(range(lo, hi)),
                                                  LT.ETHERNET, first=first + lo))
        for hide in (False, True):
            same(d, kinds, hide)


def test_hidden_runs_are_one_per_direction() -> None:
    """Body-only HTTP segments of several directions, interleaved in a batch: each
    direction's run, contiguous in sequence space, is one hidden segment on its last row,
    from its first sequence number (the numpy code cut runs by other rows' directions)."""
    body = b"\x00\x01\x02\xff" * 100
    frames, starts = [], {}
    for k in range(5):
        for conn in range(4):
            client = bytes([10, 0, 0, 1 + conn])
            seq = 1000 * conn + k * len(body)
            starts.setdefault(conn, seq)
            frames.append(_frame(False, bytes([10, 0, 0, 9]), 80, client, 40000 + conn, seq,
                                 ACK, body))
    d = decode_batch(PacketBatch.from_packets(frames, list(range(len(frames))), LT.ETHERNET))
    s = segments(d, hide_bodies=True)
    assert s is not None and len(s) == 4
    assert s.hidden.tolist() == [5 * len(body)] * 4 and s.size.tolist() == [0] * 4
    assert s.payload == b"" and s.seq.tolist() == [starts[c] for c in range(4)]
    assert s.pkt.tolist() == list(range(16, 20))  # the last segment of each
    shown = segments(d, hide_bodies=False)
    assert shown is not None and shown.payload == body * 20 and not shown.hidden.any()


def test_a_direction_is_its_addresses_as_addr_words_reads_them() -> None:
    """The per-direction cap (a batch's SYNs and first data segments of a TLS direction)
    counts 10.0.0.1 and ::10.0.0.1 as one address, as `flows.extract.addr_words` (the
    numpy code's grouping) does: 3 + 3 data segments of the two, interleaved, give 4."""
    hello = b"\x16\x03\x01\x00\x04\x01\x00\x00\x00"
    frames = []
    for k in range(3):
        for v6 in (False, True):
            client, server = (ADDRS6 if v6 else ADDRS4)[0], (ADDRS6 if v6 else ADDRS4)[1]
            frames.append(_frame(v6, client, 40000, server, 443, 1000 + k * len(hello), ACK,
                                 hello))
    d = decode_batch(PacketBatch.from_packets(frames, list(range(len(frames))), LT.ETHERNET))
    s = segments(d)
    assert s is not None and s.pkt.tolist() == [0, 1, 2, 3]
    assert same(d, ALL_KINDS, False) == 4
