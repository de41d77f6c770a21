"""The compiled fast path (decode/_fast.pyx) against the numpy code it replaced
(tests/oracle_fast.py): the same `done` mask and the same tables (names and order, rows,
`pkt`, columns and their order, dtypes, values, Ragged bytes, option child tables) on
every corpus capture and every recorded capture, in batches of several sizes, with all
columns, with the counting columns, and with none; and on real packets with random
bytes spliced into their headers and cut short (hypothesis), to reach every length
check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle_fast as old
from corpus import PCAPS, absent, corpus_files
from netcap.decode.fast import Columns, decode_fast
from netcap.decode.linktypes import LT
from netcap.metrics.families import FAMILIES
from netcap.metrics.state import LabelConfig
from netcap.pipeline import counting_columns
from netcap.records.table import Children, Ragged, RecordTable
from netcap.sinks.ncap import EncodeOptions
from netcap.sources.batch import PacketBatch
from netcap.sources.capture import CaptureError, open_capture

RECORDED = sorted((Path(__file__).parent / "data" / "recorded").glob("*.pcap"))
SAMPLE = Path(__file__).parent / "data" / "sample.pcap"

_EVERY_LABEL = LabelConfig({f.name: f.optional for f in FAMILIES.values() if f.optional},
                           budget=100_000)
_STAGES = frozenset({"Connection", "DNS", "NTP", "DHCPv4", "TLSClientHello",
                     "TLSServerHello", "HTTP", "SSH"})
# None (files written), what counting alone decodes (with the later stages and without,
# with every opt-in label), and nothing but rows.
COLUMNS: list[Columns] = [
    None,
    counting_columns(LabelConfig(), EncodeOptions()),
    counting_columns(LabelConfig(), EncodeOptions(exclude=_STAGES)),
    counting_columns(_EVERY_LABEL, EncodeOptions(entropy=True)),
    {},
]
COLUMN_IDS = ["all", "counting", "counting-lean", "counting-labels", "rows-only"]


def same_array(a: Any, b: Any, where: str) -> None:
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
    assert a.dtype == b.dtype, f"{where}: {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, where
    assert np.array_equal(a, b), where


def same_table(a: RecordTable, b: RecordTable, where: str) -> None:
    assert a.rtype is b.rtype, where
    assert a.n == b.n, where
    if a.pkt is None or b.pkt is None:
        assert a.pkt is None and b.pkt is None, where
    else:
        same_array(a.pkt, b.pkt, f"{where}.pkt")
    assert list(a.cols) == list(b.cols), where
    for name, col in a.cols.items():
        other = b.cols[name]
        at = f"{where}.{name}"
        if isinstance(col, Ragged):
            assert isinstance(other, Ragged), at
            same_array(col.lens, other.lens, f"{at}.lens")
            same_array(col.data, other.data, f"{at}.data")
        elif isinstance(col, Children):
            assert isinstance(other, Children), at
            same_array(col.parent, other.parent, f"{at}.parent")
            same_table(col.table, other.table, at)
        else:
            same_array(col, other, at)


def same(batch: PacketBatch, columns: Columns, padded: PacketBatch | None = None) -> int:
    """Compiled == oracle on one batch (the oracle on `padded`, if given: the same
    packets in a buffer with the padding it needs); the number of packets taken."""
    new, ref = decode_fast(batch, columns), old.decode_fast(padded or batch, columns)
    same_array(new.done, ref.done, "done")
    assert list(new.tables) == list(ref.tables)
    for name, t in new.tables.items():
        same_table(t, ref.tables[name], name)
    return int(new.done.sum())


def captures() -> list[Path]:
    return [PCAPS / name for name in corpus_files()] + RECORDED + [SAMPLE]


# Every column setting in full batches; small batches (packets of one capture split over
# several) with all columns and with none.
CASES = [pytest.param(8192, c, id=f"8192-{i}") for c, i in zip(COLUMNS, COLUMN_IDS, strict=True)]
CASES += [pytest.param(size, c, id=f"{size}-{i}") for size in (61, 5)
          for c, i in zip(COLUMNS, COLUMN_IDS, strict=True) if c is None or c == {}]


@pytest.mark.corpus
@pytest.mark.parametrize(("size", "columns"), CASES)
def test_compiled_equals_oracle_on_every_capture(size: int, columns: Columns) -> None:
    taken = packets = 0
    for path in captures():
        try:
            for batch in open_capture(str(path), batch_packets=size):
                taken += same(batch, columns)
                packets += len(batch)
        except CaptureError:
            pass  # a damaged capture: the batches before the damage were compared
    assert packets > 3000 and taken > packets // 2  # the fast path was exercised


# --- made-up packets: real headers with random bytes spliced in, cut short -------------

SOURCES = ["zeek_http_bro.org.pcap", "zeek_wikipedia.pcap", "zeek_q-in-q.pcap",
           "zeek_icmp6-nd-options.pcap", "zeek_linux_dlt_sll2.pcap",
           "zeek_ipv6-fragmented-dns.pcap", "tcpdump_802.1ad_QinQ.pcap",
           "tcpdump_LINKTYPE_RAW_ipv6.pcap", "zeek_ipv4_fragmented-1.pcap",
           "zeek_linuxsll-arp.pcap", "ja4_tls-alpn-h2-null.pcap"]


def _packets() -> list[tuple[bytes, int]]:
    out: list[tuple[bytes, int]] = []
    for name in SOURCES:
        with open_capture(str(PCAPS / name)) as src:
            for b in src:
                out += [(b.packet(i), int(b.linktype[i])) for i in range(min(len(b), 60))]
    for path in RECORDED:  # TCP with options, UDP, loopback
        with open_capture(str(path)) as src:
            b = next(iter(src))
            out += [(b.packet(i), int(b.linktype[i])) for i in range(min(len(b), 30))]
    return out


PACKETS = [] if absent() else _packets()
LINKTYPES = [LT.NULL, LT.ETHERNET, LT.RAW, LT.LOOP, LT.LINUX_SLL, LT.IPV4, LT.IPV6,
             LT.LINUX_SLL2, 147]

_EDIT = st.tuples(
    st.integers(0, max(len(PACKETS) - 1, 0)),  # which packet
    st.integers(0, 120),  # where the splice goes (headers are in the first bytes)
    st.binary(min_size=1, max_size=8),  # bytes written over the packet there
    st.integers(0, 200),  # bytes cut off the end (more than the packet: all of it)
    st.sampled_from([None, *LINKTYPES]),  # another link type, sometimes
)


@pytest.mark.corpus
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_EDIT, min_size=1, max_size=30), st.sampled_from(range(len(COLUMNS))))
def test_compiled_equals_oracle_on_mutated_packets(
    edits: list[tuple[int, int, bytes, int, int | None]], which: int
) -> None:
    pkts, lts = [], []
    for idx, pos, splice, cut, linktype in edits:
        data, lt = PACKETS[idx]
        buf = bytearray(data)
        buf[pos : pos + len(splice)] = splice[: max(0, len(buf) - pos)]
        pkts.append(bytes(buf[: max(0, len(buf) - cut)]))
        lts.append(lt if linktype is None else linktype)
    same(PacketBatch.from_packets(pkts, list(range(len(pkts))), lts), COLUMNS[which])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=100), st.sampled_from(LINKTYPES)), max_size=12))
def test_compiled_equals_oracle_on_random_bytes(packets: list[tuple[bytes, int]]) -> None:
    batch = PacketBatch.from_packets([p for p, _ in packets], list(range(len(packets))),
                                     [lt for _, lt in packets])
    same(batch, None)


def test_every_packet_shape_is_taken() -> None:
    """The made-up stacks the fast path exists for are taken, and agree with the oracle:
    a test whose corpus had none of them could not fail."""
    tcp = (bytes.fromhex("0050 1f90 00000001 00000002 7012 ffff 0000 0000")  # doff 7
           + bytes.fromhex("020405b4 01 00 0000"))  # MSS, NOP, EOL, padding
    udp = bytes.fromhex("0035 d431 000c 0000") + b"abcd"
    icmp4 = bytes.fromhex("0800 0000 0001 0002")
    icmp6 = bytes.fromhex("8000 0000 0001 0002")

    def v4(proto: int, l4: bytes, opts: bytes = b"", frag: int = 0) -> bytes:
        ihl = 5 + len(opts) // 4
        return bytes([0x40 | ihl, 0]) + (ihl * 4 + len(l4)).to_bytes(2, "big") + bytes(
            [0, 1]) + frag.to_bytes(2, "big") + bytes([64, proto, 0, 0, 10, 0, 0, 1,
                                                      10, 0, 0, 2]) + opts + l4

    def v6(nh: int, l4: bytes, ext: bytes = b"") -> bytes:
        body = ext + l4
        return bytes([0x60, 0, 0, 1]) + len(body).to_bytes(2, "big") + bytes(
            [nh, 64]) + bytes(15) + b"\1" + bytes(15) + b"\2" + body

    eth = bytes(6) + bytes([2, 0, 0, 0, 0, 1])
    hop = bytes([6, 0]) + bytes(6)  # hop-by-hop, next: TCP
    frames = [
        (eth + b"\x08\x00" + v4(6, tcp, opts=b"\x07\x03\x00\x00"), LT.ETHERNET),
        (eth + b"\x81\x00\x00\x05\x88\xa8\x00\x07\x08\x00" + v4(17, udp), LT.ETHERNET),
        (eth + b"\x86\xdd" + v6(0, tcp, hop), LT.ETHERNET),
        (b"\x02\x00\x00\x00" + v4(1, icmp4), LT.NULL),
        (b"\x00\x00\x00\x1e" + v6(58, icmp6), LT.LOOP),
        (bytes(14) + b"\x08\x00" + v4(6, tcp, frag=0x2000), LT.LINUX_SLL),
        (b"\x86\xdd" + bytes(18) + v6(17, udp), LT.LINUX_SLL2),
        (v4(47, b"gre!"), LT.RAW),
        (v6(17, udp), LT.IPV6),
    ]
    batch = PacketBatch.from_packets([f for f, _ in frames], list(range(len(frames))),
                                     [lt for _, lt in frames])
    for columns in COLUMNS:
        assert same(batch, columns) == len(frames)
    d = decode_fast(batch)
    assert set(d.tables) == {"Ethernet", "Dot1Q", "IPv4", "IPv6", "TCP", "UDP", "ICMPv4",
                             "ICMPv6"}
    assert d.tables["TCP"].to_dicts()[0]["Options"][0] == {
        "OptionType": 2, "OptionLength": 4, "OptionData": b"\x05\xb4"}

    # At the edges of what the fast path takes: the last shape taken, then the first
    # left to the general decoder.
    dest = [bytes([60, 0]) + bytes(6)] * 9  # destination options headers
    taken = [
        (v6(60, udp, b"".join(dest[:8]) + bytes([17, 0]) + bytes(6)), LT.IPV6),  # 9
        (v6(17, bytes.fromhex("0035 d431 0008 0000")), LT.IPV6),  # UDP length 8
        (b"\x00\x00\x00\x18" + v6(17, udp), LT.NULL),  # AF_INET6 on NetBSD
        (b"\x18\x00\x00\x00" + v6(17, udp), LT.NULL),
    ]
    left = [
        (v6(60, udp, b"".join(dest) + bytes([17, 0]) + bytes(6)), LT.IPV6),  # 10
        (v6(17, bytes.fromhex("0035 d431 0007 0000")), LT.IPV6),  # UDP length 7
        (v4(6, tcp, opts=b"\x07\x01\x00\x00"), LT.IPV4),  # option length 1
        (v4(6, tcp[:12] + b"\x40" + tcp[13:]), LT.IPV4),  # data offset 4
        (v4(6, tcp)[:2] + b"\x00\x00" + v4(6, tcp)[4:], LT.IPV4),  # total length 0
        (v6(17, udp)[:4] + b"\x00\x00" + v6(17, udp)[6:], LT.IPV6),  # payload length 0
        (v6(44, bytes([17, 0, 0, 0, 0, 0, 0, 1]) + udp), LT.IPV6),  # fragment header
        (v4(58, icmp6), LT.IPV4),  # ICMPv6 in IPv4
        (v6(1, icmp4), LT.IPV6),  # ICMP in IPv6
        (eth + b"\x81\x00\x00\x05" * 3 + b"\x08\x00" + v4(17, udp), LT.ETHERNET),
        (v4(6, tcp)[:-1], LT.IPV4),  # options cut
        (eth + b"\x08\x06" + bytes(28), LT.ETHERNET),  # ARP
    ]
    batch = PacketBatch.from_packets([f for f, _ in taken + left],
                                     list(range(len(taken + left))),
                                     [lt for _, lt in taken + left])
    for columns in COLUMNS:
        same(batch, columns)
    assert decode_fast(batch).done.tolist() == [True] * len(taken) + [False] * len(left)


def test_nothing_read_past_the_last_packet() -> None:
    """A buffer that ends where its last packet does (no padding, which the numpy code
    needed): an option list that ends the packet with no-operations is taken, its empty
    option data with it (found by fuzz_fastdecode: the copy of the empty data "after"
    the last option raised)."""
    tcp = bytes.fromhex("0050 1f90 00000001 00000002 6010 ffff 0000 0000 01010101")
    ip = bytes.fromhex("4500") + (20 + len(tcp)).to_bytes(2, "big") + bytes.fromhex(
        "0001 0000 4006 0000 0a000001 0a000002") + tcp
    padded = PacketBatch.from_packets([ip], [0], LT.RAW)
    exact = PacketBatch(np.frombuffer(ip, np.uint8), padded.offset, padded.caplen,
                        padded.wirelen, padded.ts, padded.linktype, padded.iface)
    for columns in COLUMNS:
        assert same(exact, columns, padded) == 1
    opts = decode_fast(exact).tables["TCP"].to_dicts()[0]["Options"]
    assert opts == [{"OptionType": 1, "OptionLength": 1}] * 4
