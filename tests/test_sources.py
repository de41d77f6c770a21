"""Capture-file sources (netcap.sources.capture): corpus against the tshark oracle, crafted files.

The oracle for every corpus capture is tshark 4.0.17's per-frame JSON (the public corpus's oracle/).
Crafted files are written to tmp_path with struct so each format feature is pinned by bytes
whose meaning is stated here, independently of the reader's code.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import zlib
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import EXPECTED, ORACLE, PCAPS, absent, corpus_files
from netcap.sources.batch import PAD, PacketBatch
from netcap.sources.capture import (
    CaptureError,
    CaptureReader,
    Truncation,
    open_capture,
)
from netcap.sources.pcapng import ts_to_ns

EXPECTED_TG = EXPECTED / "pcapng-test-generator"
CAPTURES = corpus_files()

# Files tshark cannot open at all (oracle .stderr and no frames): open_capture must refuse them.
INVALID = {
    "libpcap_pcap-invalid-version-1.pcap": "pcap major version 1 unsupported",
    "libpcap_shb-option-too-long.pcapng": "option of length 12336 overruns its block",
}
# Cut or damaged files: (packets tshark read, our reason). The offset is checked separately
# (see test_truncation_offsets): it must be the start of the first undelivered record.
TRUNCATED = {
    "dpkt_truncated_dns_2-cut-record-header.pcap": (1, "cut in the middle of a record header"),
    "DERIVED_zeek_http-vlan-0_cut-mid-record.pcap": (
        10,
        "cut in the middle of record data (35 of 70 bytes)",
    ),
    "sv_tls_DER-incomplete-header-damaged.pcap": (
        6,
        "record length 4325376 exceeds maximum 262144",
    ),
}
# First protocol tshark shows for a frame -> the LINKTYPE_* values it can come from.
LINKTYPE_OF_PROTO = {
    "eth": {1},
    "null": {0},
    "raw": {101},
    "ip": {228},
    "radiotap": {127},
    "sll": {113, 276},
}

Packet = tuple[int, int, int, int, int, bytes]  # ts, caplen, wirelen, iface, linktype, bytes


# -- helpers ------------------------------------------------------------------------------


def oracle_ns(text: str) -> int:
    """tshark's frame.time_epoch as exact integer ns (never via float).

    tshark prints seconds, '.', then the raw nanosecond field. For pcap-ns records whose
    fraction is >= 10^9 (tcpdump_timestamp_invalid_nano.pcap) the field has 10 digits, and
    once it is >= 2^31 tshark, holding it in a signed int, prints a leading '-'. The raw
    fields are what the reader's stated arithmetic uses (tcpdump's published output for that
    file shows the same: "17:16:10.2147483648 (invalid ns)"), so then ns = sec*10^9 + frac.
    """
    negative = text.startswith("-")
    sec, frac = text.lstrip("-").split(".")
    if len(frac) > 9:
        return int(sec) * 1_000_000_000 + int(frac)
    value = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0"))
    return -value if negative else value


def load_oracle(name: str) -> list[dict[str, Any]]:
    with open(ORACLE / f"{name}.jsonl") as f:
        return [json.loads(line) for line in f]


def packets_of(reader: CaptureReader) -> tuple[list[Packet], list[PacketBatch]]:
    batches = list(reader)
    out: list[Packet] = []
    for b in batches:
        for i in range(len(b)):
            out.append(
                (
                    int(b.ts[i]),
                    int(b.caplen[i]),
                    int(b.wirelen[i]),
                    int(b.iface[i]),
                    int(b.linktype[i]),
                    b.packet(i),
                )
            )
    return out, batches


def read_all(path: str | Path, **kw: int) -> tuple[CaptureReader, list[Packet], list[PacketBatch]]:
    with open_capture(str(path), **kw) as r:
        pk, batches = packets_of(r)
    return r, pk, batches


def check_batch_contract(batches: list[PacketBatch]) -> None:
    expect_first = 0
    for b in batches:
        n = len(b)
        assert n > 0
        assert b.first == expect_first
        expect_first += n
        assert b.data.dtype == np.uint8 and b.offset.dtype == np.int64
        assert b.caplen.dtype == np.int64 and b.wirelen.dtype == np.int64
        assert b.ts.dtype == np.int64
        assert b.linktype.dtype == np.int32 and b.iface.dtype == np.int32
        for a in (b.offset, b.caplen, b.wirelen, b.ts, b.linktype, b.iface):
            assert a.shape == (n,)
        # packets back to back, then PAD zero bytes
        ends = b.offset + b.caplen
        assert b.offset[0] == 0
        assert np.array_equal(b.offset[1:], ends[:-1])
        total = int(ends[-1])
        assert b.data.shape == (total + PAD,)
        assert not b.data[total:].any()


# pcap / pcapng writers for crafted files -------------------------------------------------


def pcap_file(
    records: list[tuple[int, int, bytes, int]],
    *,
    magic: int = 0xA1B2C3D4,
    endian: str = "<",
    network: int = 1,
    snaplen: int = 65535,
    modified: bool = False,
) -> bytes:
    """records: (ts_sec, ts_frac, data, orig_len)."""
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, network)]
    for sec, frac, data, orig in records:
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), orig))
        if modified:  # ifindex u32, protocol u16, pkt_type u8, pad u8
            out.append(struct.pack(endian + "IHBB", 7, 0x0800, 4, 0))
        out.append(data)
    return b"".join(out)


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def ng_block(btype: int, body: bytes, e: str = "<") -> bytes:
    body = _pad4(body)
    length = 12 + len(body)
    return struct.pack(e + "II", btype, length) + body + struct.pack(e + "I", length)


def ng_opt(code: int, value: bytes, e: str = "<") -> bytes:
    return struct.pack(e + "HH", code, len(value)) + _pad4(value)


def ng_shb(e: str = "<") -> bytes:
    return ng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def ng_idb(linktype: int, snaplen: int = 0, opts: bytes = b"", e: str = "<") -> bytes:
    if opts:
        opts += ng_opt(0, b"", e)
    return ng_block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts, e)


def ng_epb(iface: int, ts: int, data: bytes, wirelen: int | None = None, e: str = "<") -> bytes:
    wl = len(data) if wirelen is None else wirelen
    hdr = struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), wl)
    return ng_block(6, hdr + _pad4(data), e)


def ng_spb(data: bytes, wirelen: int, e: str = "<") -> bytes:
    return ng_block(3, struct.pack(e + "I", wirelen) + _pad4(data), e)


def ng_opb(iface: int, ts: int, data: bytes, e: str = "<") -> bytes:
    hdr = struct.pack(e + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    return ng_block(2, hdr + _pad4(data), e)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


# -- the corpus against tshark -------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("name", CAPTURES)
def test_corpus_matches_tshark(name: str) -> None:
    oracle = load_oracle(name)
    stderr = ORACLE / f"{name}.stderr"
    if name in INVALID:
        assert stderr.exists() and not oracle
        with pytest.raises(CaptureError) as exc:
            open_capture(str(PCAPS / name))
        msg = str(exc.value)
        assert INVALID[name] in msg and "\n" not in msg and name in msg
        return
    r, pk, batches = read_all(PCAPS / name)
    if r.format == "pcapng":
        # tshark 4.0 shows pcapng custom blocks as frames with no interface
        # (test_pcapng_block_counts proves that is what they are); they are not packets.
        oracle = [o for o in oracle if "frame.interface_id" in o]
    assert len(pk) == len(oracle)
    assert r.packets == len(pk)
    check_batch_contract(batches)
    for (ts, caplen, wirelen, iface, linktype, data), o in zip(pk, oracle, strict=True):
        n = o["frame.number"]
        if "frame.time_epoch" in o:
            assert ts == oracle_ns(o["frame.time_epoch"][0]), n
        else:  # pcapng SPB: the format has no timestamp
            assert ts == 0, n
        assert caplen == int(o["frame.cap_len"][0]) == len(data), n
        assert wirelen == int(o["frame.len"][0]), n
        if "frame.interface_id" in o:
            assert iface == int(o["frame.interface_id"][0]), n
        else:
            assert iface == 0
        proto = o["frame.protocols"][0].split(":")[0]
        if proto in LINKTYPE_OF_PROTO:
            assert linktype in LINKTYPE_OF_PROTO[proto], n
    if stderr.exists():
        assert r.truncation is not None
        assert r.truncation.path == str(PCAPS / name)
        assert (len(pk), r.truncation.reason) == TRUNCATED[name]
    else:
        assert r.truncation is None


@pytest.mark.corpus
def test_truncation_table_covers_every_stderr_file() -> None:
    with_stderr = {n for n in CAPTURES if (ORACLE / f"{n}.stderr").exists()}
    assert with_stderr == set(INVALID) | set(TRUNCATED)


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_truncation_offsets(name: str) -> None:
    # Independent of the reader: the first undelivered record starts after the 24-byte
    # file header and the 16-byte header + data of every frame tshark read.
    oracle = load_oracle(name)
    expect = 24 + sum(16 + int(o["frame.cap_len"][0]) for o in oracle)
    r, pk, _ = read_all(PCAPS / name)
    assert r.truncation == Truncation(str(PCAPS / name), expect, TRUNCATED[name][1])
    assert os.path.getsize(PCAPS / name) > expect


def _walk_blocks(data: bytes) -> list[str]:
    """Block type names of a pcapng file, by a minimal walker independent of the reader."""
    names = {0x0A0D0D0A: "SHB", 1: "IDB", 2: "PB", 3: "SPB", 4: "NRB", 5: "ISB", 6: "EPB",
             0xBAD: "CB", 0x40000BAD: "DCB"}  # fmt: skip
    out = []
    pos = 0
    e = "<"
    while pos < len(data):
        if data[pos : pos + 4] == b"\n\r\r\n":
            e = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, length = struct.unpack_from(e + "II", data, pos)
        out.append(names.get(btype, hex(btype)))
        pos += length
    return out


@pytest.mark.corpus
@pytest.mark.parametrize("txt", sorted(p.name for p in EXPECTED_TG.glob("*.txt")))
def test_pcapng_block_counts(txt: str) -> None:
    name = txt.removesuffix(".txt")
    text = (EXPECTED_TG / txt).read_text()
    counts = {k: int(v) for k, v in re.findall(r"^\s+(\w+): (\d+)$", text, re.M)}
    sequence = re.search(r"Block sequence: (.*)", text)
    assert sequence is not None
    blocks = _walk_blocks((PCAPS / name).read_bytes())
    assert blocks == sequence.group(1).split(", ")
    r, pk, _ = read_all(PCAPS / name)
    assert len(pk) == counts.get("EPB", 0) + counts.get("SPB", 0) + counts.get("PB", 0)
    # The frames tshark shows beyond the packet blocks are exactly the custom blocks.
    no_iface = sum("frame.interface_id" not in o for o in load_oracle(name))
    assert no_iface == counts.get("CB", 0) + counts.get("DCB", 0)
    # Interface ids restart in every section and stay below that section's IDB count.
    sections: list[int] = []
    for b in blocks:
        if b == "SHB":
            sections.append(0)
        elif b == "IDB":
            sections[-1] += 1
    assert max(p[3] for p in pk) < max(sections)


@pytest.mark.corpus
def test_gzip_corpus_file_is_streamed() -> None:
    r, pk, _ = read_all(PCAPS / "zeek_http_iso-download.pcap.gz")
    assert r.compressed and r.format == "pcap" and r.truncation is None
    raw = gzip.decompress((PCAPS / "zeek_http_iso-download.pcap.gz").read_bytes())
    assert sum(16 + p[1] for p in pk) + 24 == len(raw)


# -- batching and chunking -----------------------------------------------------------------

BATCHING_FILES = [
    "zeek_http_bro.org.pcap",
    "zeek_http_iso-download.pcap.gz",
    "ja4_tls-handshake.pcapng",
    "pcapngtg_le_test202_mixed-endian-sections.pcapng",
    "pcapngtg_le_test201_multisection.pcapng",
    "zeek_pcapng-multi-interface.pcapng",
    "pcapparser_modified-format.pcap",
    "DERIVED_zeek_http-vlan-0_cut-mid-record.pcap",
    "sv_tls_DER-incomplete-header-damaged.pcap",
]


@pytest.mark.corpus
@pytest.mark.parametrize("name", BATCHING_FILES)
def test_batching_and_chunking_do_not_change_results(name: str) -> None:
    r0, whole, batches0 = read_all(PCAPS / name, batch_packets=1 << 20, chunk_bytes=64 << 20)
    assert len(batches0) <= 1
    r1, small, batches1 = read_all(PCAPS / name, batch_packets=3)
    assert small == whole and r1.truncation == r0.truncation
    assert all(len(b) <= 3 for b in batches1)
    check_batch_contract(batches1)
    # 64-byte chunks: nearly every record straddles a chunk boundary
    r2, tiny, batches2 = read_all(PCAPS / name, chunk_bytes=64)
    assert tiny == whole and r2.truncation == r0.truncation
    check_batch_contract(batches2)
    r3, odd, _ = read_all(PCAPS / name, chunk_bytes=1000, batch_packets=7)
    assert odd == whole and r3.truncation == r0.truncation


@pytest.mark.corpus
def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        open_capture(str(PCAPS / "zeek_empty.pcap"), batch_packets=0)
    with pytest.raises(ValueError):
        open_capture(str(PCAPS / "zeek_empty.pcap"), chunk_bytes=0)


# -- crafted classic pcap ------------------------------------------------------------------


def test_big_endian_nanosecond_pcap(tmp_path: Path) -> None:
    recs = [
        (1_700_000_000, 123_456_789, b"\xaa" * 60, 60),
        (1_700_000_001, 999_999_999, b"\xbb" * 10, 1514),
        (4_000_000_000, 0, b"", 0),  # seconds are unsigned 32-bit
    ]
    # Upper 4 bits of the link type carry FCS information and are not part of it.
    data = pcap_file(recs, magic=0xA1B23C4D, endian=">", network=0x10000000 | 113)
    assert data[:4] == b"\xa1\xb2\x3c\x4d"
    r, pk, batches = read_all(write(tmp_path, "be.bin", data))
    assert r.format == "pcap" and not r.compressed and r.truncation is None
    assert [p[0] for p in pk] == [
        1_700_000_000_123_456_789,
        1_700_000_001_999_999_999,
        4_000_000_000_000_000_000,
    ]
    assert [p[1:3] for p in pk] == [(60, 60), (10, 1514), (0, 0)]
    assert [p[4] for p in pk] == [113] * 3
    assert [p[5] for p in pk] == [b"\xaa" * 60, b"\xbb" * 10, b""]
    check_batch_contract(batches)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_microsecond_pcap_both_byte_orders(tmp_path: Path, endian: str) -> None:
    recs = [(1_600_000_000, 999_999, b"x" * 20, 40), (1_600_000_001, 1, b"y" * 3, 3)]
    r, pk, _ = read_all(write(tmp_path, "us.pcap", pcap_file(recs, endian=endian)))
    assert [p[0] for p in pk] == [1_600_000_000_999_999_000, 1_600_000_001_000_001_000]
    assert [(p[1], p[2]) for p in pk] == [(20, 40), (3, 3)]


def test_modified_pcap(tmp_path: Path) -> None:
    recs = [(1_712_763_541, 734_807, bytes(range(98)), 98), (1_712_763_542, 5, b"\x01\x02", 77)]
    data = pcap_file(recs, magic=0xA1B2CD34, modified=True)
    assert data[:4] == b"\x34\xcd\xb2\xa1"
    r, pk, _ = read_all(write(tmp_path, "mod.pcap", data))
    assert r.truncation is None
    assert [(p[0], p[1], p[2], p[5]) for p in pk] == [
        (1_712_763_541_734_807_000, 98, 98, bytes(range(98))),
        (1_712_763_542_000_005_000, 2, 77, b"\x01\x02"),
    ]


def test_record_longer_than_maximum_stops_reading(tmp_path: Path) -> None:
    good = (1, 0, b"a" * 10, 10)
    head = pcap_file([good, good])
    # a third record header claiming 300000 bytes (> max(snaplen 65535, 262144))
    data = head + struct.pack("<IIII", 1, 0, 300000, 300000) + b"z" * 50
    r, pk, _ = read_all(write(tmp_path, "big.pcap", data))
    assert len(pk) == 2
    assert r.truncation is not None
    assert r.truncation.offset == len(head)
    assert r.truncation.reason == "record length 300000 exceeds maximum 262144"
    # the same when the oversized record lies wholly inside the chunk
    data2 = head + struct.pack("<IIII", 1, 0, 300000, 300000) + bytes(300000) + head[24:]
    r2, pk2, _ = read_all(write(tmp_path, "big2.pcap", data2))
    assert len(pk2) == 2 and r2.truncation == Truncation(
        r2.path, len(head), "record length 300000 exceeds maximum 262144"
    )


@pytest.mark.corpus
def test_pcap_cut_at_every_byte_of_last_record(tmp_path: Path) -> None:
    src = (PCAPS / "zeek_icmp_5-pings.pcap").read_bytes()
    _, full, _ = read_all(PCAPS / "zeek_icmp_5-pings.pcap")
    last_start = len(src) - 16 - full[-1][1]
    for cut in range(last_start, len(src) + 1):
        path = write(tmp_path, "cut.pcap", src[:cut])
        r, pk, batches = read_all(path, chunk_bytes=97)
        if cut in (last_start, len(src)):  # ends on a record boundary: a valid file
            assert pk == full[: len(pk)] and len(pk) >= len(full) - 1
            assert r.truncation is None
            continue
        assert pk == full[:-1], cut
        check_batch_contract(batches)
        assert r.truncation is not None and r.truncation.offset == last_start
        if cut - last_start < 16:
            assert r.truncation.reason == "cut in the middle of a record header"
        else:
            assert r.truncation.reason.startswith("cut in the middle of record data")


@pytest.mark.corpus
def test_pcapng_cut_at_every_byte_of_last_block(tmp_path: Path) -> None:
    src = (PCAPS / "pcapngtg_be_test001.pcapng").read_bytes()
    _, full, _ = read_all(PCAPS / "pcapngtg_be_test001.pcapng")
    (last_len,) = struct.unpack(">I", src[-4:])
    last_start = len(src) - last_len
    for cut in range(last_start + 1, len(src)):
        r, pk, _ = read_all(write(tmp_path, "cut.pcapng", src[:cut]), chunk_bytes=200)
        assert pk == full[:-1], cut
        assert r.truncation is not None and r.truncation.offset == last_start
        assert r.truncation.reason.startswith("cut in the middle of a block")


# -- crafted pcapng ------------------------------------------------------------------------


def test_pcapng_tsresol_power_of_two_and_tsoffset(tmp_path: Path) -> None:
    # interface 0: 2^-20 s units, 1000 s offset; interface 1: 10^-3 s units; interface 2:
    # default (10^-6); interface 3: 2^-40 (beyond 64-bit intermediate arithmetic).
    idb0 = ng_idb(1, 0, ng_opt(9, b"\x94") + ng_opt(14, struct.pack("<q", 1000)))
    idb1 = ng_idb(101, 0, ng_opt(9, b"\x03"))
    idb2 = ng_idb(0, 0)
    idb3 = ng_idb(1, 0, ng_opt(9, bytes([0x80 | 40])))
    raw0 = (1_700_000_000 << 20) + 777_777
    raw1 = 1_700_000_000_123
    raw2 = 1_700_000_000_654_321
    raw3 = (10_000_000 << 40) + 987_654_321_987  # 2^-40 units leave 24 bits of seconds
    data = ng_shb() + idb0 + idb1 + idb2 + idb3
    data += ng_epb(0, raw0, b"p0") + ng_epb(1, raw1, b"p1") + ng_epb(2, raw2, b"p2")
    data += ng_epb(3, raw3, b"p3") + ng_epb(0, raw0 + 1, b"p4")
    r, pk, _ = read_all(write(tmp_path, "res.pcapng", data))
    assert r.format == "pcapng" and r.truncation is None

    def exact(raw: int, unit: Fraction, offset: int) -> int:
        return int(raw * unit * 10**9 // 1) + offset * 10**9

    assert [p[0] for p in pk] == [
        exact(raw0, Fraction(1, 2**20), 1000),
        exact(raw1, Fraction(1, 10**3), 0),
        exact(raw2, Fraction(1, 10**6), 0),
        exact(raw3, Fraction(1, 2**40), 0),
        exact(raw0 + 1, Fraction(1, 2**20), 1000),
    ]
    assert [p[3] for p in pk] == [0, 1, 2, 3, 0]
    assert [p[4] for p in pk] == [1, 101, 0, 1, 1]
    assert [p[5] for p in pk] == [b"p0", b"p1", b"p2", b"p3", b"p4"]


@pytest.mark.parametrize(
    "tsresol",
    [0, 1, 6, 9, 10, 12, 19, 28, 29, 127, 0x80, 0x80 | 10, 0x80 | 30, 0x80 | 34, 0x80 | 35,
     0x80 | 63, 0x80 | 64, 0x80 | 127],
)  # fmt: skip
def test_ts_to_ns_is_exact(tsresol: int) -> None:
    raws = [0, 1, 999, 2**32 - 1, 2**32, 1_700_000_000_123_456, 2**40 + 12345, 2**63 - 1]
    unit = Fraction(1, 2 ** (tsresol & 0x7F)) if tsresol & 0x80 else Fraction(1, 10**tsresol)
    got = ts_to_ns(np.array(raws, dtype=np.uint64), tsresol, 0).tolist()
    for raw, ns in zip(raws, got, strict=True):
        want = int(raw * unit * 10**9 // 1)
        if -(2**63) <= want < 2**63:  # beyond int64 the value wraps (garbage in)
            assert ns == want, (raw, tsresol)


def test_pcapng_spb_opb_sections_and_byte_orders(tmp_path: Path) -> None:
    s1 = ng_shb("<") + ng_idb(1, 8) + ng_spb(b"0123456789", 10) + ng_spb(b"ab", 2)
    s1 += ng_opb(0, 5_000_000, b"opb!")
    # big-endian section: interfaces restart at 0
    s2 = ng_shb(">") + ng_idb(113, 0, e=">") + ng_idb(101, 0, e=">")
    s2 += ng_epb(1, 42, b"be", e=">") + ng_spb(b"xyz", 3, e=">")
    s2 += ng_block(4, b"\x00" * 8, ">")  # NRB: skipped
    s3 = ng_shb("<") + ng_block(0xBAD, b"custom") + ng_idb(228, 0) + ng_epb(0, 7, b"le")
    r, pk, _ = read_all(write(tmp_path, "mix.pcapng", s1 + s2 + s3))
    assert r.truncation is None
    assert [(p[1], p[2], p[3], p[4], p[5]) for p in pk] == [
        (8, 10, 0, 1, b"01234567"),  # SPB caplen limited by snaplen 8
        (2, 2, 0, 1, b"ab"),
        (4, 4, 0, 1, b"opb!"),
        (2, 2, 1, 101, b"be"),
        (3, 3, 0, 113, b"xyz"),  # SPB: interface 0 of its section
        (2, 2, 0, 228, b"le"),
    ]
    assert [p[0] for p in pk] == [0, 0, 5_000_000_000, 42_000, 0, 7_000]


def test_pcapng_damaged_block_later_in_file(tmp_path: Path) -> None:
    head = ng_shb() + ng_idb(1) + ng_epb(0, 1, b"one") + ng_epb(0, 2, b"two")
    bad = bytearray(ng_epb(0, 3, b"three"))
    bad[-4:] = struct.pack("<I", 999)  # trailing length disagrees
    data = head + bytes(bad) + ng_epb(0, 4, b"four")
    for chunk in (64, 1 << 20):
        r, pk, _ = read_all(write(tmp_path, "bad.pcapng", data), chunk_bytes=chunk)
        assert [p[5] for p in pk] == [b"one", b"two"]
        assert r.truncation is not None
        assert r.truncation.offset == len(head)
        assert r.truncation.reason == f"block trailing length 999 does not match {len(bad)}"
    # a length that is not a multiple of 4
    odd = head + struct.pack("<II", 6, 33) + bytes(40)
    r, pk, _ = read_all(write(tmp_path, "odd.pcapng", odd))
    assert len(pk) == 2 and r.truncation is not None and r.truncation.offset == len(head)
    assert "not a multiple of 4" in r.truncation.reason
    # captured length larger than the block
    over = bytearray(ng_epb(0, 3, b"xxxx"))
    over[20:24] = struct.pack("<I", 5000)
    r, pk, _ = read_all(write(tmp_path, "over.pcapng", head + bytes(over)))
    assert len(pk) == 2 and r.truncation is not None
    assert r.truncation.reason == "captured length 5000 overruns its block"


def test_pcapng_packet_on_undefined_interface(tmp_path: Path) -> None:
    head = ng_shb() + ng_idb(1) + ng_epb(0, 1, b"ok")
    data = head + ng_epb(1, 2, b"no such interface") + ng_epb(0, 3, b"after")
    r, pk, _ = read_all(write(tmp_path, "if.pcapng", data))
    assert [p[5] for p in pk] == [b"ok"]
    assert r.truncation == Truncation(r.path, len(head), "packet on undefined interface 1")
    # an SPB in a section without any IDB
    r2, pk2, _ = read_all(write(tmp_path, "spb.pcapng", ng_shb() + ng_spb(b"x", 1)))
    assert pk2 == [] and r2.truncation is not None
    assert r2.truncation.reason == "packet on undefined interface 0"


@pytest.mark.corpus
def test_gzip_pcapng(tmp_path: Path) -> None:
    name = "pcapngtg_le_test202_mixed-endian-sections.pcapng"
    src = (PCAPS / name).read_bytes()
    _, plain, _ = read_all(PCAPS / name)
    for level in (1, 9):
        path = write(tmp_path, "x.anything", gzip.compress(src, compresslevel=level))
        r, pk, _ = read_all(path, chunk_bytes=100)
        assert r.compressed and r.format == "pcapng" and r.truncation is None
        assert pk == plain
    # several gzip members, zero padding after the last (gzip(1) accepts both)
    two = gzip.compress(src[:700]) + gzip.compress(src[700:]) + bytes(512)
    r, pk, _ = read_all(write(tmp_path, "two.gz", two))
    assert pk == plain and r.truncation is None


@pytest.mark.corpus
def test_gzip_cut_and_corrupt_become_truncations(tmp_path: Path) -> None:
    src = (PCAPS / "zeek_http_bro.org.pcap").read_bytes()
    _, full, _ = read_all(PCAPS / "zeek_http_bro.org.pcap")
    comp = gzip.compress(src, compresslevel=6)
    r, pk, _ = read_all(write(tmp_path, "cut.gz", comp[: len(comp) // 2]))
    assert 0 < len(pk) < len(full) and pk == full[: len(pk)]
    assert r.truncation is not None and r.truncation.reason == "gzip stream cut short"
    assert r.truncation.offset == 24 + sum(16 + p[1] for p in pk)
    mid = len(comp) // 2
    bad = comp[:mid] + bytes(b ^ 0xFF for b in comp[mid : mid + 64]) + comp[mid + 64 :]
    r, pk, _ = read_all(write(tmp_path, "bad.gz", bad))
    assert r.truncation is not None and r.truncation.reason.startswith("gzip stream damaged")
    # Deflate damage can decode to wrong bytes before it is detected (the CRC is checked at
    # the end of the member), so only records ending before the damaged input must match.
    intact = len(zlib.decompressobj(31).decompress(comp[:mid]))
    ends = np.cumsum([16 + p[1] for p in full]) + 24
    k = int(np.searchsorted(ends, intact, side="right"))
    assert 100 < k <= len(pk) < len(full) and pk[:k] == full[:k]
    junk = comp + b"this is not gzip"
    r, pk, _ = read_all(write(tmp_path, "junk.gz", junk))
    assert pk == full
    assert r.truncation is not None and r.truncation.reason.startswith("gzip stream damaged")
    assert r.truncation.offset == len(src)


# -- files that are not captures -----------------------------------------------------------


def test_not_a_capture(tmp_path: Path) -> None:
    path = write(tmp_path, "x.bin", b'{\n "frame": 1\n}\n')
    with pytest.raises(CaptureError) as exc:
        open_capture(path)
    assert str(exc.value) == f"{path}: not a pcap or pcapng file (starts with 0x7b0a2022)"


@pytest.mark.corpus
def test_name_does_not_decide_the_format(tmp_path: Path) -> None:
    src = (PCAPS / "ja4_http1-with-cookies.pcapng").read_bytes()
    r, pk, _ = read_all(write(tmp_path, "looks_like.pcap.gz", src))
    assert r.format == "pcapng" and not r.compressed and len(pk) == 12


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\xd4\xc3", "too short for a capture file (2 bytes)"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap file header cut short (6 of 24 bytes)"),
        (b"\n\r\r\n\x1c\x00\x00\x00", "pcapng section header cut short (8 of 12 bytes)"),
        (gzip.compress(b""), "empty after gzip decompression"),
        (b"\x1f\x8b" + b"garbage" * 5, "gzip stream damaged"),
        (gzip.compress(b"hello, world"), "not a pcap or pcapng file (starts with 0x68656c6c)"),
        (ng_shb(">")[:-4] + b"\x00\x00\x00\x00", "block trailing length 0 does not match 28"),
        (
            struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 2, 0, -1) + b"\x1c\x00\x00\x00",
            "pcapng version 2.0 unsupported",
        ),
        (b"\n\r\r\n\x1c\x00\x00\x00\x01\x02\x03\x04", "bad byte-order magic 0x01020304"),
    ],
)
def test_open_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, "f", content)
    with pytest.raises(CaptureError) as exc:
        open_capture(path)
    assert message in str(exc.value) and str(exc.value).startswith(path + ": ")
    assert "\n" not in str(exc.value)


def test_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        open_capture(str(tmp_path / "nope.pcap"))
    with pytest.raises(CaptureError, match="cannot open"):
        open_capture(str(tmp_path))


@pytest.mark.corpus
def test_empty_captures_have_no_packets() -> None:
    for name in ("zeek_empty.pcap", "tcpdump_empty.pcapng"):
        r, pk, batches = read_all(PCAPS / name)
        assert pk == [] and batches == [] and r.truncation is None


@pytest.mark.corpus
def test_close_mid_iteration_stops_cleanly() -> None:
    r = open_capture(str(PCAPS / "zeek_http_bro.org.pcap"), batch_packets=10)
    it = iter(r)
    first = next(it)
    assert len(first) == 10 and r.packets == 10
    r.close()
    assert list(it) == []
    assert r.packets == 10


@pytest.mark.corpus
def test_batches_do_not_alias_the_read_buffer() -> None:
    with open_capture(str(PCAPS / "zeek_http_bro.org.pcap"), chunk_bytes=4096) as r:
        batches = list(r)
    _, fresh, _ = read_all(PCAPS / "zeek_http_bro.org.pcap")
    kept = [b.packet(i) for b in batches for i in range(len(b))]
    assert kept == [p[5] for p in fresh]


# -- robustness property -------------------------------------------------------------------

_BASE_FILES = {
    "pcap": "zeek_icmp_5-pings.pcap",
    "pcapng": "pcapngtg_le_test202_mixed-endian-sections.pcapng",
    "modified": "pcapparser_modified-format.pcap",
}
_BASES = {} if absent() else {k: (PCAPS / v).read_bytes() for k, v in _BASE_FILES.items()}
_RECORD_HEADER = {"pcap": 16, "modified": 24}


@pytest.mark.corpus
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    base=st.sampled_from(sorted(_BASES)),
    cut=st.integers(min_value=0, max_value=4000),
    tail=st.binary(max_size=300),
    compress=st.booleans(),
    chunk=st.sampled_from([16, 64, 1000, 1 << 20]),
)
def test_random_cuts_and_appends_never_raise(
    tmp_path: Path, base: str, cut: int, tail: bytes, compress: bool, chunk: int
) -> None:
    data = _BASES[base][:cut] + tail
    if compress:
        data = gzip.compress(data)
    path = write(tmp_path, "fuzz", data)
    try:
        r = open_capture(path, chunk_bytes=chunk, batch_packets=4)
    except CaptureError as e:
        assert "\n" not in str(e)
        return
    with r:
        pk, batches = packets_of(r)
    check_batch_contract(batches)
    assert r.packets == len(pk)
    if tail:
        return
    # A plain cut delivers a prefix of the packets, then says where it stopped.
    _, full, _ = read_all(PCAPS / _BASE_FILES[base])
    assert pk == full[: len(pk)]
    if base in _RECORD_HEADER:
        consumed = 24 + sum(_RECORD_HEADER[base] + p[1] for p in pk)
        if r.truncation is None:
            assert consumed == min(cut, len(_BASES[base]))
        else:
            assert r.truncation.offset == consumed < cut


def test_memory_is_bounded_by_the_chunk(tmp_path: Path) -> None:
    # 20000 copies of one record: the reader's batches stay small with small chunks,
    # whatever the file size (no batch may span more than one chunk's worth of data).
    rec = struct.pack("<IIII", 1, 2, 60, 60) + bytes(60)
    path = write(tmp_path, "many.pcap", pcap_file([]) + rec * 20000)
    with open_capture(path, chunk_bytes=4096, batch_packets=1 << 20) as r:
        sizes = [len(b) for b in r]
    assert sum(sizes) == 20000 and max(sizes) <= 4096 // 76 + 1
    assert Counter(sizes).most_common(1)[0][0] >= 50
