"""The compiled record walks (netcap.sources._walk, behind PcapParser / PcapngParser.parse)
against the Python walks they replaced (tests/oracle_walk.py): the same ParseResult (columns
with their dtypes, pos, need, stop and its message) and the same section state after every
chunk, on

- every capture of the public corpus (pcap, pcapng, the gzip one decompressed) and of
  tests/data, read in chunks of many sizes (so records straddle chunks and the walk stops
  at incomplete last records of every kind), and as one chunk cut at many points;
- made files (hypothesis): records and blocks of random lengths, oversized lengths, both
  byte orders, micro/nano/modified pcap, pcapng sections, interfaces with timestamp
  resolutions and offsets, all three packet blocks, damaged framing, trailers and
  interface ids, odd block types;
- corpus captures with random bytes overwritten.

The compiled parser is passed through pickle between chunks (parallel capture hands it
from worker to worker that way).
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import PCAPS, absent
from netcap.sources._base import CaptureError, ParseResult
from netcap.sources.pcap import MAX_RECORD, PCAP_MAGICS, PcapParser, parse_header
from netcap.sources.pcapng import SHB_MAGIC, PcapngParser, first_section_length
from oracle_walk import OraclePcapngParser, OraclePcapParser

DATA = Path(__file__).resolve().parent / "data"
Parsers = tuple[PcapParser | PcapngParser, OraclePcapParser | OraclePcapngParser, int]


def captures() -> list[Path]:
    """Every capture of the corpus and of tests/data (empty without the corpus)."""
    local = sorted(DATA.glob("*.pcap")) + sorted((DATA / "recorded").glob("*.pcap"))
    if absent() is not None:
        return local
    return sorted(PCAPS.iterdir()) + local


def content(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def parsers(data: bytes) -> Parsers | None:
    """The compiled and the oracle parser for a capture, and where its records start; None
    when the file header is unusable (no walk happens then)."""
    try:
        if data[:4] in PCAP_MAGICS and len(data) >= 24:
            header = parse_header("x", data[:24])
            return PcapParser(header), OraclePcapParser(header), 24
        if data[:4] == SHB_MAGIC and len(data) >= 12:
            length = first_section_length("x", data[:12])
            if len(data) < length:
                return None
            ng = PcapngParser()
            pos = ng.begin("x", data[:length])
            oracle = OraclePcapngParser()
            oracle._section(data, 0)
            return ng, oracle, pos
    except CaptureError:
        return None
    return None


def assert_same(got: ParseResult, want: ParseResult, where: str) -> None:
    assert (got.pos, got.need, got.stop) == (want.pos, want.need, want.stop), where
    assert (got.cols is None) == (want.cols is None), where
    if got.cols is None or want.cols is None:
        return
    for name in ("start", "caplen", "wirelen", "ts", "linktype", "iface"):
        a, b = getattr(got.cols, name), getattr(want.cols, name)
        assert a.dtype == b.dtype, (where, name, a.dtype, b.dtype)
        assert np.array_equal(a, b), (where, name, a[:10], b[:10])


def state(p: PcapParser | PcapngParser | OraclePcapParser | OraclePcapngParser) -> object:
    if isinstance(p, PcapngParser | OraclePcapngParser):
        return (p._endian, p._ifaces, p._kind, p.sections)
    return None


def drive(data: bytes, chunk: int, pickled: bool = True) -> int:
    """Read `data` as CaptureReader does (chunk bytes at a time, the incomplete tail moved
    to the front, at least what it needs read next) with both parsers, comparing every
    step. Returns the number of packets."""
    made = parsers(data)
    if made is None:
        return 0
    compiled, oracle, pos = made
    base = 0
    end = max(chunk, pos)
    buf = data[:end]
    packets = 0
    steps = 0
    while True:
        arr = np.frombuffer(buf, np.uint8)
        got = compiled.parse(memoryview(buf), arr, pos)
        want = oracle.parse(buf, arr, pos)
        where = f"chunk {chunk}, step {steps}, base {base}"
        assert_same(got, want, where)
        assert state(compiled) == state(oracle), where
        packets += 0 if got.cols is None else len(got.cols)
        if got.stop is not None:
            return packets
        if got.pos == len(buf) and end >= len(data):
            return packets
        tail = len(buf) - got.pos
        base += got.pos
        more = data[end : end + max(chunk, got.need - tail)]
        if not more:
            return packets
        end += len(more)
        buf = buf[got.pos :] + more
        pos = 0
        steps += 1
        if pickled and steps % 2:
            compiled = pickle.loads(pickle.dumps(compiled))


def cuts(data: bytes, count: int) -> list[int]:
    """Cut points: the first bytes, evenly spread ones, and the last bytes."""
    n = len(data)
    spread = np.linspace(0, n, count, dtype=np.int64).tolist()
    return sorted({*range(min(n, 64)), *spread, *range(max(0, n - 64), n + 1)})


def walkable() -> list[Path]:
    """The captures whose file header is usable (the others never reach a walk: the
    header tests in tests/test_sources.py cover them)."""
    return [p for p in captures() if parsers(content(p)) is not None]


def test_nearly_every_capture_is_walked() -> None:
    assert len(captures()) - len(walkable()) <= 2  # two corpus files have bad headers


@pytest.mark.parametrize("path", walkable(), ids=lambda p: p.name)
def test_corpus_capture_in_chunks(path: Path) -> None:
    data = content(path)
    whole = drive(data, len(data) + 1, pickled=False)
    # Chunk sizes from a few records per chunk to less than a record header.
    for chunk in (1 << 16, 4096, 1000, 333, 100, 17, 5):
        if len(data) // chunk > 20_000:
            continue
        assert drive(data, chunk) == whole, chunk


@pytest.mark.parametrize("path", walkable(), ids=lambda p: p.name)
def test_corpus_capture_cut(path: Path) -> None:
    data = content(path)
    for cut in cuts(data, 150):
        drive(data[:cut], cut + 1, pickled=False)


# -- made files ------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


@st.composite
def pcap_files(draw: st.DrawFn) -> bytes:
    magic = draw(st.sampled_from(sorted(PCAP_MAGICS)))
    endian = PCAP_MAGICS[magic][0]
    modified = PCAP_MAGICS[magic][2]
    snaplen = draw(st.one_of(st.integers(0, 300_000), u32))
    linktype = draw(st.one_of(st.integers(0, 300), u32))
    out = [magic, struct.pack(endian + "HHiIII", 2, 4, 0, 0, snaplen, linktype)]
    for _ in range(draw(st.integers(0, 12))):
        data = draw(st.binary(max_size=80))
        incl = draw(st.one_of(st.just(len(data)), st.just(len(data)), u32,
                              st.sampled_from([MAX_RECORD, MAX_RECORD + 1, snaplen,
                                               snaplen + 1, 16 << 20, (16 << 20) + 1])))
        incl &= 0xFFFFFFFF
        out.append(struct.pack(endian + "IIII", draw(u32), draw(u32), incl, draw(u32)))
        if modified:
            out.append(draw(st.binary(min_size=8, max_size=8)))
        out.append(data)
    return b"".join(out)


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


@st.composite
def pcapng_files(draw: st.DrawFn) -> bytes:
    """A section header, interfaces, then blocks of every kind; now and then a damaged one
    (from the first blocks on, or only later: `sound` blocks first)."""
    e = draw(st.sampled_from("<>"))
    out: list[bytes] = []
    sound = draw(st.integers(0, 12))
    odds = draw(st.sampled_from([8, 30, 100]))

    def block(btype: int, body: bytes) -> bytes:
        body = _pad4(body)
        length = 12 + len(body)
        head_len, tail_len = length, length
        damage = "none"
        if len(out) >= sound:
            damage = draw(st.sampled_from(["none"] * odds + ["trailer", "odd", "short", "huge"]))
        if damage == "trailer":
            tail_len = draw(u32)
        elif damage == "odd":
            head_len += draw(st.integers(1, 3))
        elif damage == "short":
            head_len = draw(st.integers(0, 31))
        elif damage == "huge":
            head_len = draw(st.sampled_from([(16 << 20) + 4, 2**32 - 4, 2**32 - 1]))
        return struct.pack(e + "II", btype, head_len) + body + struct.pack(e + "I", tail_len)

    def opt(code: int, value: bytes) -> bytes:
        return struct.pack(e + "HH", code, len(value)) + _pad4(value)

    def shb() -> bytes:
        major = 1 if len(out) < sound else draw(st.sampled_from([1] * odds + [2]))
        return block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, major, 0, -1))

    out.append(shb())
    kinds = ["idb"] * draw(st.sampled_from([0, 1, 1, 1, 2, 3]))
    kinds += draw(st.lists(st.sampled_from(["epb"] * 6 + ["spb", "opb", "idb", "shb", "other"]),
                           max_size=16))
    nif = 0
    for kind in kinds:
        data = draw(st.binary(max_size=40))
        caplen = len(data) if draw(st.integers(0, odds)) else draw(st.integers(0, 64))
        wirelen = draw(st.one_of(st.just(len(data)), u32))
        iface = draw(st.integers(0, max(nif - 1, 0))) if draw(st.integers(0, odds)) else draw(u32)
        ts = draw(u64)
        if kind == "shb":
            e = draw(st.sampled_from("<>"))
            out.append(shb())
            nif = 0
        elif kind == "idb":
            opts = b""
            if draw(st.booleans()):
                res = st.sampled_from([0, 3, 6, 9, 10, 19, 28, 29, 0x80 | 20, 0x80 | 35,
                                       0x80 | 63, 0x80 | 64, 0x80 | 127])
                opts += opt(9, bytes([draw(st.one_of(res, st.integers(0, 255)))]))
            if draw(st.booleans()):
                opts += opt(14, struct.pack(e + "q", draw(st.integers(-(2**63), 2**63 - 1))))
            if opts:
                opts += opt(0, b"")
            snap = draw(st.one_of(st.just(0), st.integers(0, 64), u32))
            out.append(block(1, struct.pack(e + "HHI", draw(st.integers(0, 300)), 0, snap)
                             + opts))
            nif += 1
        elif kind == "epb":
            hdr = struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, caplen,
                              wirelen)
            out.append(block(6, hdr + data))
        elif kind == "opb":
            hdr = struct.pack(e + "HHIIII", iface & 0xFFFF, 0, ts >> 32, ts & 0xFFFFFFFF,
                              caplen, wirelen)
            out.append(block(2, hdr + data))
        elif kind == "spb":
            out.append(block(3, struct.pack(e + "I", wirelen) + data))
        else:
            btype = draw(st.sampled_from([4, 5, 0x80000001, 0xBAD, 10, 0]))
            out.append(block(btype, data))
    return b"".join(out)


made = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@made
@given(pcap_files(), st.integers(0, 2000), st.integers(1, 300))
def test_made_pcap(data: bytes, cut: int, chunk: int) -> None:
    drive(data, len(data) + 1)
    drive(data[: 24 + cut], chunk)


@made
@given(pcapng_files(), st.integers(0, 2000), st.integers(1, 300))
def test_made_pcapng(data: bytes, cut: int, chunk: int) -> None:
    drive(data, len(data) + 1)
    n = parsers(data)
    drive(data[: (n[2] if n else 0) + cut], chunk)


def small_captures() -> list[Path]:
    return [p for p in captures() if p.stat().st_size < 20_000
            and parsers(content(p)) is not None]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_captures(data: st.DataObject) -> None:
    files = small_captures()
    if not files:
        pytest.skip("no captures")
    raw = bytearray(content(data.draw(st.sampled_from(files))))
    start = parsers(bytes(raw))[2]  # type: ignore[index]
    for _ in range(data.draw(st.integers(1, 6))):
        if len(raw) <= start:
            break
        at = data.draw(st.integers(start, len(raw) - 1))
        raw[at : at + 4] = data.draw(st.binary(min_size=1, max_size=4))
    chunk = data.draw(st.sampled_from([len(raw) + 1, 4096, 500, 64, 13]))
    drive(bytes(raw), chunk)


def test_the_tests_see_what_they_claim() -> None:
    """The drive reaches every outcome: packets, an incomplete last record, an oversized
    record, a damaged pcapng block (else the comparisons above prove little)."""
    rec = struct.pack("<IIII", 1, 2, 4, 4) + b"abcd"
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + rec * 3
    p = PcapParser(parse_header("x", pcap[:24]))
    got = p.parse(pcap[:-2], np.frombuffer(pcap[:-2], np.uint8), 24)
    assert got.cols is not None and len(got.cols) == 2 and got.need == 20 and got.stop is None
    big = pcap + struct.pack("<IIII", 1, 2, MAX_RECORD + 1, 4)
    got = p.parse(big, np.frombuffer(big, np.uint8), 24)
    assert got.stop == (24 + 60, f"record length {MAX_RECORD + 1} exceeds maximum {MAX_RECORD}")
    assert drive(pcap, 7) == 3


@pytest.mark.parametrize("endian", "<>")
def test_oversized_complete_records(endian: str) -> None:
    """A length above the maximum whose record (or block) is all in the chunk: damage
    found after the walk went past it, in pcap and in a pcapng run (the made files are too
    small for that)."""
    rec = struct.pack(endian + "IIII", 1, 2, 4, 4) + b"abcd"
    for snaplen in (0, MAX_RECORD + 10, 1 << 30):
        head = struct.pack(endian + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)
        maxlen = min(max(snaplen, MAX_RECORD), 16 << 20)
        over = struct.pack(endian + "IIII", 1, 2, maxlen + 1, 9) + bytes(maxlen + 1)
        for data in (head + rec * 3 + over + rec, head + over + rec):
            for chunk in (len(data) + 1, len(data) - 3, 1 << 20, 300_000, 70_000):
                drive(data, chunk)

    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        n = 12 + len(body)
        return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)

    shb = block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack(endian + "HHI", 1, 0, 0))

    def epb(payload: bytes) -> bytes:
        return block(6, struct.pack(endian + "IIIII", 0, 0, 7, len(payload), len(payload))
                     + payload)

    huge = epb(bytes(16 << 20))
    for data in (shb + idb + epb(b"x") * 2 + huge + epb(b"y"), shb + idb + huge):
        for chunk in (len(data) + 1, len(data) - 3, 1 << 20):
            drive(data, chunk, pickled=False)
