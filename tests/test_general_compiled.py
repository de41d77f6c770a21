"""The compiled general decoder (decode/_general.pyx) against the Python one it replaced
(tests/oracle_general.py): the same records (names, order, dict keys in the same order,
values of the same types: ints, bools, bytes, option lists) and the same reason index, on
every packet of every corpus capture and recorded capture; on random bytes for every link
type; on real packets with bytes set and cut at every length; and on packets built with
IPv6 extension chains, IPv4 and TCP option areas, VLAN stacks and LLC/SNAP of random
shapes and lengths (hypothesis), to reach every length check."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle_general as old
from corpus import PCAPS, absent, corpus_files
from netcap.decode import general as new
from netcap.decode.linktypes import IPV6_EXT, LINKTYPE_NAMES, LT
from netcap.sources.capture import CaptureError, open_capture

RECORDED = sorted((Path(__file__).parent / "data" / "recorded").glob("*.pcap"))
SAMPLE = Path(__file__).parent / "data" / "sample.pcap"
LINKTYPES = sorted(LINKTYPE_NAMES) + [147, -1, 2**31, 2**40]


def typed(x: Any) -> Any:
    """x with every value's type spelled out and dict key order kept: True == 1 and
    {a, b} == {b, a} in Python, not here."""
    if isinstance(x, dict):
        return ("dict", [(k, typed(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [typed(v) for v in x])
    return (type(x).__name__, x)


def same(data: bytes, lt: int) -> tuple[list[Any], int]:
    want = old.decode_packet(data, lt)
    got = new.decode_packet(data, lt)
    assert typed(got) == typed(want), (data.hex(), lt)
    return got


def _packets(paths: list[Path]) -> list[tuple[bytes, int]]:
    out: list[tuple[bytes, int]] = []
    for path in paths:
        try:
            with open_capture(str(path)) as src:
                for b in src:
                    out += [(b.packet(i), int(b.linktype[i])) for i in range(len(b))]
        except CaptureError:
            pass  # a damaged capture: the packets before the damage are compared
    return out


@pytest.mark.corpus
def test_every_corpus_packet() -> None:
    packets = errors = 0
    records: set[str] = set()
    for name in corpus_files():
        for data, lt in _packets([PCAPS / name]):
            recs, err = same(data, lt)
            packets += 1
            errors += err != 0
            records.update(r for r, _ in recs)
    # the corpus reaches every record type the decoder makes, and decode errors
    assert packets > 3000 and errors > 0, (packets, errors)
    assert records == {"Ethernet", "Dot1Q", "LLC", "ARP", "IPv4", "IPv6", "IPv6Fragment",
                       "TCP", "UDP", "ICMPv4", "ICMPv6"}, records


@pytest.mark.parametrize("path", [*RECORDED, SAMPLE], ids=lambda p: p.name)
def test_every_recorded_packet(path: Path) -> None:
    for data, lt in _packets([path]):
        same(data, lt)


# Corpus packets of every shape the decoder knows, for the mutation tests.
SHAPES = ["zeek_http_bro.org.pcap", "zeek_q-in-q.pcap", "zeek_icmp6-nd-options.pcap",
          "zeek_linux_dlt_sll2.pcap", "zeek_ipv6-fragmented-dns.pcap",
          "tcpdump_802.1ad_QinQ.pcap", "zeek_radiotap.pcap", "zeek_linuxsll-arp.pcap",
          "tcpdump_LINKTYPE_RAW_ipv6.pcap", "zeek_ipv4_fragmented-1.pcap",
          "ja4_tls-alpn-h2-null.pcap"]
PACKETS = [] if absent() else _packets([PCAPS / n for n in SHAPES if (PCAPS / n).exists()])


@pytest.mark.corpus
def test_every_cut_of_a_few_packets() -> None:
    """The first packets of each shape (and every tenth after), cut at every length."""
    seen: set[tuple[int, int]] = set()
    for data, lt in PACKETS:
        key = (lt, len(data) // 64)
        if key in seen:
            continue
        seen.add(key)
        for k in range(len(data) + 1):
            same(data[:k], lt)


@pytest.mark.corpus
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, max(len(PACKETS) - 1, 0)),
       st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
       st.integers(0, 2000), st.sampled_from([None, *LINKTYPES]))
def test_mutated_corpus_packets(idx: int, edits: list[tuple[int, int]], cut: int,
                                linktype: int | None) -> None:
    """A real packet with a few header bytes set, maybe cut short, maybe read as
    another link type."""
    data, lt = PACKETS[idx]
    buf = bytearray(data)
    for pos, value in edits:
        if pos < len(buf):
            buf[pos] = value
    same(bytes(buf[: max(0, len(buf) - cut)]), lt if linktype is None else linktype)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=160), st.sampled_from(LINKTYPES))
def test_random_bytes_every_link_type(data: bytes, linktype: int) -> None:
    same(data, linktype)


# Packets built from the shapes' parts with random lengths: IPv6 extension chains
# (fragments, AH, atomic fragments), option areas, VLAN tags and LLC/SNAP.
_EXT = st.sampled_from(sorted(IPV6_EXT) + [44, 44, 51, 6])


@st.composite
def _ipv6_chain(draw: st.DrawFn) -> bytes:
    nhs = draw(st.lists(_EXT, min_size=0, max_size=12))
    last, l4 = draw(_l4())
    body = b""
    for i, nh in enumerate(nhs):
        nxt = nhs[i + 1] if i + 1 < len(nhs) else last
        if nh == 44:
            off = draw(st.sampled_from([0, 0, 1, 8]))
            more = draw(st.booleans())
            body += bytes([nxt, draw(st.integers(0, 255))]) + struct.pack(
                ">HI", off << 3 | draw(st.integers(0, 3)) << 1 | more, draw(st.integers(0, 9)))
        else:
            ln = draw(st.integers(0, 3))
            size = (ln + 2) * 4 if nh == 51 else (ln + 1) * 8
            body += bytes([nxt, ln]) + draw(st.binary(min_size=size - 2, max_size=size - 2))
    body += l4
    plen = draw(st.sampled_from([len(body), 0, len(body) + 9, max(len(body) - 5, 0)]))
    first = nhs[0] if nhs else last
    return (bytes([0x60, 0, 0, 1]) + struct.pack(">HBB", plen, first, 64)
            + bytes(range(32)) + body)


@st.composite
def _options(draw: st.DrawFn, room: int) -> bytes:
    parts = draw(st.lists(st.one_of(
        st.sampled_from([b"\x00", b"\x01", b"\x02\x04\x05\xb4", b"\x08\x0a" + bytes(8),
                         b"\x02", b"\x05\x01", b"\x07\x30"]),
        st.binary(max_size=6)), max_size=8))
    return b"".join(parts)[:room]


@st.composite
def _l4(draw: st.DrawFn) -> tuple[int, bytes]:
    """(IP protocol number, transport header and a little payload)."""
    kind = draw(st.sampled_from(["tcp", "tcp", "tcp", "udp", "icmp", "raw"]))
    if kind == "tcp":
        opts = draw(_options(40))
        doff = draw(st.sampled_from([(20 + len(opts) + 3) // 4, 5, 4, 15, 0]))
        head = struct.pack(">HHIIBBHHH", 443, 5555, 1, 2, doff << 4 | draw(st.integers(0, 1)),
                           draw(st.integers(0, 255)), 512, 0, 0)
        return 6, head + opts + draw(st.binary(max_size=8))
    if kind == "udp":
        ln = draw(st.sampled_from([8, 0, 5, 20, 300]))
        return 17, struct.pack(">HHHH", 53, 1000, ln, 0) + draw(st.binary(max_size=12))
    return draw(st.sampled_from([1, 58, 47, 59])), draw(st.binary(max_size=12))


@st.composite
def _ipv4(draw: st.DrawFn) -> bytes:
    opts = draw(_options(40))
    opts += bytes(-len(opts) % 4)
    ihl = draw(st.sampled_from([5 + len(opts) // 4, 4, 15, 5]))
    proto, l4 = draw(_l4())
    total = draw(st.sampled_from([20 + len(opts) + len(l4), 0, 10, 20 + len(opts) + len(l4) + 7,
                                  21]))
    frag = draw(st.sampled_from([0, 0, 0x4000, 0x2000, 0x0001]))
    head = struct.pack(">BBHHHBBH", 0x40 | ihl, 0, total, 7, frag, 64, proto, 0)
    return head + bytes(range(8)) + opts + l4


_IP = st.one_of(_ipv4(), _ipv6_chain())


@st.composite
def _l2(draw: st.DrawFn) -> tuple[bytes, int]:
    ip = draw(_IP)
    et = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    inner = struct.pack(">H", et) + ip
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 8, 9]))):
        tag = draw(st.sampled_from([0x8100, 0x88A8, 0x9100]))
        inner = struct.pack(">HH", tag, draw(st.integers(0, 0xFFFF))) + inner
    if draw(st.booleans()):  # LLC/SNAP carrying it (an 802.3 length, then AA AA 03 OUI)
        inner = struct.pack(">H", 0x0100) + b"\xaa\xaa\x03\x00\x00\x00" + inner
    kind = draw(st.sampled_from(["eth", "sll", "sll2", "raw", "null", "dot11"]))
    if kind == "eth":
        return bytes(12) + inner, LT.ETHERNET
    if kind == "sll":
        return bytes(14) + inner, LT.LINUX_SLL
    if kind == "sll2":
        return inner[:2] + bytes(18) + inner[2:], LT.LINUX_SLL2
    if kind == "null":
        return struct.pack("<I", 2 if et == 0x0800 else 30) + ip, LT.NULL
    if kind == "dot11":
        qos = draw(st.booleans())
        head = bytes([0x88 if qos else 0x08, draw(st.sampled_from([0, 1, 2, 3, 0x80, 0x83]))])
        head += bytes(22 + (6 if head[1] & 3 == 3 else 0) + (2 if qos else 0)
                      + (4 if qos and head[1] & 0x80 else 0))
        return head + b"\xaa\xaa\x03\x00\x00\x00" + inner, LT.IEEE802_11
    return ip, LT.RAW


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_l2(), st.integers(0, 40), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                           max_size=2))
def test_built_packets(packet: tuple[bytes, int], cut: int,
                       edits: list[tuple[int, int]]) -> None:
    data, lt = packet
    buf = bytearray(data)
    for pos, value in edits:
        if pos < len(buf):
            buf[pos] = value
    same(bytes(buf[: len(buf) - cut] if cut else buf), lt)


def _chain(cycles: int) -> bytes:
    """An Ethernet frame of 802.1Q tags, each carrying LLC/SNAP carrying the next tag."""
    step = struct.pack(">HHH", 0x8100, 5, 0x0100) + b"\xaa\xaa\x03\x00\x00\x00"
    return bytes(12) + step * cycles + struct.pack(">HBBH", 0x0800, 0x45, 0, 20) + bytes(16)


def test_deep_link_chains() -> None:
    """Link headers chained deep: equal to the Python where its recursion reaches, and
    decoded in full past that (where the Python raised RecursionError)."""
    records, err = same(_chain(100), LT.ETHERNET)
    assert len(records) == 2 + 2 * 100 and err == 0
    records, err = new.decode_packet(_chain(20000), LT.ETHERNET)
    assert len(records) == 2 + 2 * 20000 and err == 0
    with pytest.raises(RecursionError):
        old.decode_packet(_chain(20000), LT.ETHERNET)


def test_a_wrong_field_is_seen() -> None:
    """The comparison sees a value of another type (True for 1) and keys in another order."""
    a = [("X", {"A": 1, "B": b""})]
    assert typed(a) != typed([("X", {"A": True, "B": b""})])
    assert typed(a) != typed([("X", {"B": b"", "A": 1})])
    assert typed(a) != typed([("X", {"A": 1, "B": bytearray()})])
