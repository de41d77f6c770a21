"""The benchmark capture builder (bench/make_bench_pcap.py) writes a sane, deterministic pcap.

The output is parsed here with `struct`, independently of the builder's own reader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import load_bench

N = 5_000

builder = load_bench("make_bench_pcap")
pytestmark = pytest.mark.corpus  # the bench file is built from the public corpus


@dataclass(frozen=True)
class Rec:
    ts_us: int
    data: bytes


def _parse(raw: bytes) -> list[Rec]:
    magic, major, minor, _zone, _sig, _snap, linktype = struct.unpack_from("<IHHiIII", raw, 0)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    out: list[Rec] = []
    pos = 24
    while pos < len(raw):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", raw, pos)
        assert usec < 1_000_000
        assert caplen == wirelen
        pos += 16
        out.append(Rec(sec * 1_000_000 + usec, raw[pos : pos + caplen]))
        pos += caplen
    assert pos == len(raw), "file ends inside a record"
    return out


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _ethertype(p: bytes) -> int:
    return int(struct.unpack_from("!H", p, 12)[0])


def _addresses(p: bytes) -> bytes:
    if _ethertype(p) == 0x0800:
        return p[26:34]
    assert _ethertype(p) == 0x86DD
    return p[22:54]


def _ipv4_l4_ok(p: bytes) -> bool | None:
    """Whether the TCP/UDP checksum of an unfragmented IPv4 packet verifies (None: n/a)."""
    if _ethertype(p) != 0x0800:
        return None
    ihl = (p[14] & 0x0F) * 4
    total = struct.unpack_from("!H", p, 16)[0]
    proto = p[23]
    if proto not in (6, 17) or struct.unpack_from("!H", p, 20)[0] & 0x3FFF:
        return None
    seg = p[14 + ihl : 14 + total]
    if proto == 17 and struct.unpack_from("!H", seg, 6)[0] == 0:
        return None
    pseudo = p[26:34] + struct.pack("!BBH", 0, proto, len(seg))
    return _ones_sum(pseudo + seg) == 0xFFFF


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[Rec], int]:
    out = tmp_path_factory.mktemp("bench") / "bench.pcap"
    stats = builder.build(out, N)
    raw = out.read_bytes()
    assert stats.packets == N and stats.bytes == len(raw)
    return raw, _parse(raw), int(stats.source_packets)


def test_packet_count(built: tuple[bytes, list[Rec], int]) -> None:
    _raw, recs, per_cycle = built
    assert len(recs) == N
    assert 1_000 < per_cycle < N, "5,000 packets should span more than one cycle"


def test_only_ethernet_ip(built: tuple[bytes, list[Rec], int]) -> None:
    _raw, recs, _ = built
    assert {_ethertype(r.data) for r in recs} == {0x0800, 0x86DD}


def test_timestamps_non_decreasing(built: tuple[bytes, list[Rec], int]) -> None:
    _raw, recs, _ = built
    ts = [r.ts_us for r in recs]
    assert all(a <= b for a, b in zip(ts, ts[1:], strict=False))
    assert ts[-1] > ts[0]


def test_ipv4_header_checksums_valid(built: tuple[bytes, list[Rec], int]) -> None:
    _raw, recs, _ = built
    n4 = 0
    for r in recs:
        if _ethertype(r.data) == 0x0800:
            ihl = (r.data[14] & 0x0F) * 4
            assert _ones_sum(r.data[14 : 14 + ihl]) == 0xFFFF
            n4 += 1
    assert n4 > N // 2


def test_cycles_differ_only_in_addresses(built: tuple[bytes, list[Rec], int]) -> None:
    _raw, recs, per_cycle = built
    for a, b in zip(recs, recs[per_cycle:], strict=False):
        assert len(a.data) == len(b.data)
        assert a.data[:14] == b.data[:14]
        assert _addresses(a.data) != _addresses(b.data)
        assert b.ts_us > a.ts_us


def test_l4_checksum_validity_preserved(built: tuple[bytes, list[Rec], int]) -> None:
    _raw, recs, per_cycle = built
    checked = 0
    for a, b in zip(recs, recs[per_cycle:], strict=False):
        ok = _ipv4_l4_ok(a.data)
        if ok is not None:
            assert _ipv4_l4_ok(b.data) == ok
            checked += 1
    assert checked > 100


def test_deterministic(built: tuple[bytes, list[Rec], int], tmp_path: Path) -> None:
    raw, _recs, _ = built
    again = tmp_path / "again.pcap"
    builder.build(again, N)
    assert again.read_bytes() == raw


def test_short_file_is_a_prefix(built: tuple[bytes, list[Rec], int], tmp_path: Path) -> None:
    raw, recs, _ = built
    short = tmp_path / "short.pcap"
    builder.build(short, 10)
    data = short.read_bytes()
    assert len(_parse(data)) == 10
    assert raw.startswith(data)


def test_readers_agree() -> None:
    """netcap's own capture reader, once it exists, sees the same source packets."""
    if not builder._netcap_reader_available():
        pytest.skip("netcap.sources.capture.open_capture not available yet")
    ours = builder.load_template(reader="builtin")
    theirs = builder.load_template(reader="netcap")
    assert ours.files == theirs.files
    assert ours.records.tobytes() == theirs.records.tobytes()
    assert ours.ts_rel_us.tolist() == theirs.ts_rel_us.tolist()
