"""The packet decoder (decode/_decode.pyx) against the Python per-packet decoder it grew
from (tests/oracle_general.py, with its records tabulated as the batch decoder used to
tabulate them): the same tables (record types, rows, `pkt`, values of the same types:
ints, bools, bytes, option lists; payload offsets) and the same reason index per packet.
On every packet of every corpus and recorded capture, in batches of several sizes, with
every column setting the pipeline uses; on random bytes for every link type; on real
packets with bytes set and cut at every length; and on packets built with IPv6 extension
chains, IPv4 and TCP option areas, VLAN stacks and LLC/SNAP of random shapes and lengths
(hypothesis), to reach every length check."""

from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle_general as old
from corpus import PCAPS, absent, corpus_files
from netcap.decode.errors import describe
from netcap.decode.linktypes import IPV6_EXT, LINKTYPE_NAMES, LT
from netcap.decode.packets import Columns, decode_packets
from netcap.metrics.families import FAMILIES
from netcap.metrics.state import LabelConfig
from netcap.pipeline import counting_columns
from netcap.records.table import RecordTable
from netcap.records.types import RECORDS
from netcap.sinks.ncap import EncodeOptions
from netcap.sources.batch import PacketBatch
from netcap.sources.capture import CaptureError, open_capture

RECORDED = sorted((Path(__file__).parent / "data" / "recorded").glob("*.pcap"))
SAMPLE = Path(__file__).parent / "data" / "sample.pcap"
LINKTYPES = sorted(LINKTYPE_NAMES) + [147, -1, 2**31 - 1]

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


def typed(x: Any) -> Any:
    """x with every value's type spelled out and dict key order kept: True == 1 and
    {a, b} == {b, a} in Python, not here."""
    if isinstance(x, dict):
        return ("dict", [(k, typed(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [typed(v) for v in x])
    if isinstance(x, np.generic):
        return (type(x).__name__, x.item())
    return (type(x).__name__, x)


def reference(batch: PacketBatch, columns: Columns) -> tuple[dict[str, RecordTable],
                                                             list[int]]:
    """The oracle's records of every packet, tabulated per type as the batch decoder
    tabulated the general decoder's (payload offsets into the batch buffer)."""
    recs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    pkts: dict[str, list[int]] = defaultdict(list)
    errors = []
    for i in range(len(batch)):
        start = int(batch.offset[i])
        out, err = old.decode_packet(batch.packet(i), int(batch.linktype[i]))
        errors.append(err)
        for name, fields in out:
            if "_poff" in fields:
                fields["_poff"] += start
            recs[name].append(fields)
            pkts[name].append(i)
    tables: dict[str, RecordTable] = {}
    for name, rs in recs.items():
        pk = np.asarray(pkts[name], dtype=np.int64)
        only = None if columns is None else columns.get(name, frozenset())
        t = RecordTable.from_rows(RECORDS[name], rs, pk, only)
        t.cols["Timestamp"] = batch.ts[pk]
        if "_poff" in rs[0] and (only is None or "_poff" in only):
            t.cols["_poff"] = np.asarray([r["_poff"] for r in rs], dtype=np.int64)
        tables[name] = t
    return tables, errors


def rows(t: RecordTable) -> list[Any]:
    """A table's rows, typed, with their packet and payload offset."""
    assert t.pkt is not None
    poff = t.cols.get("_poff")
    offsets = [None] * t.n if poff is None else np.asarray(poff).tolist()
    return typed(list(zip(t.pkt.tolist(), offsets, t.to_dicts(render=False), strict=True)))


def same(batch: PacketBatch, columns: Columns = None) -> dict[str, RecordTable]:
    """Decoder == oracle on one batch; the decoder's tables."""
    tables, error = decode_packets(batch, columns)
    want, errors = reference(batch, columns)
    assert error.dtype == np.int16 and error.tolist() == errors
    assert sorted(tables) == sorted(want)
    for name, t in tables.items():
        assert t.rtype is RECORDS[name]
        assert rows(t) == rows(want[name]), name
    return tables


def one(data: bytes, lt: int) -> dict[str, RecordTable]:
    return same(PacketBatch.from_packets([data], [0], lt))


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


def captures() -> list[Path]:
    return [PCAPS / name for name in corpus_files()] + RECORDED + [SAMPLE]


# Every column setting in full batches; small batches (packets of one capture split over
# several) with all columns and with none.
CASES = [pytest.param(8192, c, id=f"8192-{i}") for c, i in zip(COLUMNS, COLUMN_IDS, strict=True)]
CASES += [pytest.param(size, c, id=f"{size}-{i}") for size in (61, 5)
          for c, i in zip(COLUMNS, COLUMN_IDS, strict=True) if c is None or c == {}]


@pytest.mark.corpus
@pytest.mark.parametrize(("size", "columns"), CASES)
def test_every_capture(size: int, columns: Columns) -> None:
    packets = errors = 0
    found: set[str] = set()
    for path in captures():
        try:
            for batch in open_capture(str(path), batch_packets=size):
                found.update(same(batch, columns))
                packets += len(batch)
                errors += int((decode_packets(batch, {})[1] != 0).sum())
        except CaptureError:
            pass  # a damaged capture: the batches before the damage were compared
    # the corpus reaches every record type the decoder makes, and decode errors
    assert packets > 3000 and errors > 0, (packets, errors)
    assert found == {"Ethernet", "Dot1Q", "LLC", "ARP", "IPv4", "IPv6", "IPv6Fragment",
                     "TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP"}, found


# Corpus packets of every shape the decoder knows, for the mutation tests.
SHAPES = ["zeek_http_bro.org.pcap", "zeek_q-in-q.pcap", "zeek_icmp6-nd-options.pcap",
          "zeek_linux_dlt_sll2.pcap", "zeek_ipv6-fragmented-dns.pcap",
          "tcpdump_802.1ad_QinQ.pcap", "zeek_radiotap.pcap", "zeek_linuxsll-arp.pcap",
          "tcpdump_LINKTYPE_RAW_ipv6.pcap", "zeek_ipv4_fragmented-1.pcap",
          "ja4_tls-alpn-h2-null.pcap", "zeek_wikipedia.pcap"]
PACKETS = [] if absent() else _packets([PCAPS / n for n in SHAPES if (PCAPS / n).exists()])


@pytest.mark.corpus
def test_every_cut_of_a_few_packets() -> None:
    """The first packets of each shape (and every tenth after), cut at every length: the
    cuts of one packet in one batch."""
    seen: set[tuple[int, int]] = set()
    for data, lt in PACKETS:
        key = (lt, len(data) // 64)
        if key in seen:
            continue
        seen.add(key)
        cuts = [data[:k] for k in range(len(data) + 1)]
        same(PacketBatch.from_packets(cuts, list(range(len(cuts))), lt))


_EDIT = st.tuples(
    st.integers(0, max(len(PACKETS) - 1, 0)),  # which packet
    st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),  # bytes set
    st.integers(0, 2000),  # bytes cut off the end (more than the packet: all of it)
    st.sampled_from([None, *LINKTYPES]),  # another link type, sometimes
)


@pytest.mark.corpus
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_EDIT, min_size=1, max_size=30), st.sampled_from(range(len(COLUMNS))))
def test_mutated_corpus_packets(edits: list[tuple[int, list[tuple[int, int]], int, int | None]],
                                which: int) -> None:
    """A batch of real packets, each with a few header bytes set, maybe cut short, maybe
    read as another link type."""
    pkts, lts = [], []
    for idx, sets, cut, linktype in edits:
        data, lt = PACKETS[idx]
        buf = bytearray(data)
        for pos, value in sets:
            if pos < len(buf):
                buf[pos] = value
        pkts.append(bytes(buf[: max(0, len(buf) - cut)]))
        lts.append(lt if linktype is None else linktype)
    same(PacketBatch.from_packets(pkts, list(range(len(pkts))), lts), COLUMNS[which])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=160), st.sampled_from(LINKTYPES)), max_size=12))
def test_random_bytes_every_link_type(packets: list[tuple[bytes, int]]) -> None:
    same(PacketBatch.from_packets([p for p, _ in packets], list(range(len(packets))),
                                  [lt for _, lt in packets]))


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
@given(st.lists(st.tuples(_l2(), st.integers(0, 40),
                          st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                   max_size=2)), min_size=1, max_size=4))
def test_built_packets(packets: list[tuple[tuple[bytes, int], int, list[tuple[int, int]]]]
                       ) -> None:
    pkts, lts = [], []
    for (data, lt), cut, edits in packets:
        buf = bytearray(data)
        for pos, value in edits:
            if pos < len(buf):
                buf[pos] = value
        pkts.append(bytes(buf[: len(buf) - cut] if cut else buf))
        lts.append(lt)
    same(PacketBatch.from_packets(pkts, list(range(len(pkts))), lts))


def _chain(cycles: int) -> bytes:
    """An Ethernet frame of 802.1Q tags, each carrying LLC/SNAP carrying the next tag."""
    step = struct.pack(">HHH", 0x8100, 5, 0x0100) + b"\xaa\xaa\x03\x00\x00\x00"
    return bytes(12) + step * cycles + struct.pack(">HBBH", 0x0800, 0x45, 0, 20) + bytes(16)


def test_deep_link_chains() -> None:
    """Link headers chained deep: equal to the Python where its recursion reaches, and
    decoded in full past that (where the Python raised RecursionError): the tables grow
    past a row per packet."""
    t = one(_chain(100), LT.ETHERNET)
    assert [t[k].n for k in ("Ethernet", "Dot1Q", "LLC", "IPv4")] == [1, 100, 100, 1]
    tables, error = decode_packets(PacketBatch.from_packets([_chain(20000)] * 2, [0, 1],
                                                            LT.ETHERNET))
    assert error.tolist() == [0, 0]
    assert [tables[k].n for k in ("Dot1Q", "LLC", "IPv4")] == [40000, 40000, 2]
    assert tables["Dot1Q"].pkt is not None and tables["Dot1Q"].pkt[20000] == 1
    with pytest.raises(RecursionError):
        old.decode_packet(_chain(20000), LT.ETHERNET)


def test_every_shape_and_error() -> None:
    """Made-up stacks of every layer, so a corpus without one could not hide it: a frame
    each, decoded as the oracle does, then a few fields by hand."""
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
    dest = [bytes([60, 0]) + bytes(6)] * 9  # destination options headers
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
        (v6(60, udp, b"".join(dest[:8]) + bytes([17, 0]) + bytes(6)), LT.IPV6),
        (v6(60, udp, b"".join(dest) + bytes([17, 0]) + bytes(6)), LT.IPV6),
        (v6(17, bytes.fromhex("0035 d431 0007 0000")), LT.IPV6),  # UDP length 7
        (v4(6, tcp, opts=b"\x07\x01\x00\x00"), LT.IPV4),  # option length 1
        (v4(6, tcp[:12] + b"\x40" + tcp[13:]), LT.IPV4),  # data offset 4
        (v4(6, tcp)[:2] + b"\x00\x00" + v4(6, tcp)[4:], LT.IPV4),  # total length 0
        (v6(17, udp)[:4] + b"\x00\x00" + v6(17, udp)[6:], LT.IPV6),  # payload length 0
        (v6(44, bytes([17, 0, 0, 0, 0, 0, 0, 1]) + udp), LT.IPV6),  # atomic fragment
        (v6(44, bytes([17, 0, 0, 9, 0, 0, 0, 1]) + udp), LT.IPV6),  # a fragment
        (v4(58, icmp6), LT.IPV4),  # ICMPv6 in IPv4
        (v6(1, icmp4), LT.IPV6),  # ICMP in IPv6
        (eth + b"\x81\x00\x00\x05" * 9 + b"\x08\x00" + v4(17, udp), LT.ETHERNET),
        (v4(6, tcp)[:-1], LT.IPV4),  # options cut
        (eth + b"\x08\x06" + bytes.fromhex("0001 0800 06 04 0001") + bytes(20), LT.ETHERNET),
        (eth + b"\x00\x10" + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + v4(17, udp), LT.ETHERNET),
        (v4(132, bytes.fromhex("0007 0007 00000001 3761a746") + bytes(8)), LT.RAW),  # SCTP
        (v6(132, bytes.fromhex("0007 0007 00000001")), LT.IPV6),  # SCTP, cut
        (eth + b"\x00\x10" + b"\x43\x42\x03" + bytes(13), LT.ETHERNET),  # LLC: I/G set
        (eth + b"\x00\x10" + b"\x42\x43\x04\x05" + bytes(12), LT.ETHERNET),  # C/R, I-format
    ]
    batch = PacketBatch.from_packets([f for f, _ in frames], list(range(len(frames))),
                                     [lt for _, lt in frames])
    for columns in COLUMNS:
        same(batch, columns)
    tables, error = decode_packets(batch)
    assert set(tables) == {"Ethernet", "Dot1Q", "LLC", "ARP", "IPv4", "IPv6", "IPv6Fragment",
                           "TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP"}
    assert {i: describe(int(e)) for i, e in enumerate(error) if e} == {
        11: "udp/bad_length", 12: "ipv4/bad_option_length", 13: "tcp/bad_data_offset",
        20: "dot1q/too_many_tags", 21: "tcp/options_truncated", 25: "sctp/truncated"}
    tcp0 = tables["TCP"].to_dicts()[0]
    assert tcp0["Options"][0] == {"OptionType": 2, "OptionLength": 4, "OptionData": b"\x05\xb4"}
    assert tcp0["SYN"] is True and tcp0["ACK"] is True and "FIN" not in tcp0
    assert tables["SCTP"].to_dicts() == [{"Timestamp": 24, "SrcPort": 7, "DstPort": 7,
                                          "VerificationTag": 1, "Checksum": 0x3761A746,
                                          "SrcIP": "10.0.0.1", "DstIP": "10.0.0.2"}]
    assert [(r.get("IG", False), r.get("CR", False), r["Control"])
            for r in tables["LLC"].to_dicts()[-2:]] == [(True, False, 3), (False, True, 0x405)]
    frag = tables["IPv6Fragment"].to_dicts()
    assert [f.get("SrcPort") for f in frag] == [53, None]


def test_nothing_read_past_the_last_packet() -> None:
    """A buffer that ends where its last packet does: an option list that ends the packet
    with no-operations is decoded, its empty option data with it (found by
    fuzz_fastdecode: the copy of the empty data "after" the last option raised)."""
    tcp = bytes.fromhex("0050 1f90 00000001 00000002 6010 ffff 0000 0000 01010101")
    ip = bytes.fromhex("4500") + (20 + len(tcp)).to_bytes(2, "big") + bytes.fromhex(
        "0001 0000 4006 0000 0a000001 0a000002") + tcp
    padded = PacketBatch.from_packets([ip], [0], LT.RAW)
    exact = PacketBatch(np.frombuffer(ip, np.uint8), padded.offset, padded.caplen,
                        padded.wirelen, padded.ts, padded.linktype, padded.iface)
    for columns in COLUMNS:
        same(exact, columns)
    opts = decode_packets(exact)[0]["TCP"].to_dicts()[0]["Options"]
    assert opts == [{"OptionType": 1, "OptionLength": 1}] * 4


def test_a_wrong_field_is_seen() -> None:
    """The comparison sees a value of another type (True for 1) and keys in another order."""
    a = [("X", {"A": 1, "B": b""})]
    assert typed(a) != typed([("X", {"A": True, "B": b""})])
    assert typed(a) != typed([("X", {"B": b"", "A": 1})])
    assert typed(a) != typed([("X", {"A": 1, "B": bytearray()})])
