"""`net capture` files read back: equal to the in-process decode, record by record.

Each corpus capture is run through the real `net capture` (subprocess). Every written file
is then read three ways: with NcapReader, and independently with Python's gzip module plus
a varint framing parser and plain protobuf parsing written here (the Header also with a
hand-written wire-format parser). Records must equal `decode_batch` over `open_capture`
(`Decoded.records`), in packet order. Also checked: the Header (Type enum values from
NCAP-FORMAT.md, InputSource, Version, Created, ContainsPayloads), -compress=false,
-payload (against payloads cut out of the packets here), -entropy (against a Shannon
entropy computed here), -include/-exclude, -workers, and `net dump` JSON/CSV/table output.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import math
import os
import re
import shlex
import struct
import subprocess
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from corpus import PCAPS
from helpers import frames, net_cmd, uvarint
from netcap import __version__
from netcap.decode.batch import decode_batch
from netcap.records.proto import message_class
from netcap.records.schema import Kind, Render
from netcap.records.types import RECORDS
from netcap.sinks.ncap import header_bytes
from netcap.sources.capture import open_capture
from netcap.sources.ncap import NcapReader

pytestmark = pytest.mark.corpus  # every test here reads the public corpus (tests/corpus.py)

# Header.Type values, copied from NCAP-FORMAT.md (the Go Netcap's `types.Type`), not from
# the declarations, so a wrong enum value in types.py fails here.
FORMAT_TYPE_ENUM = {
    "Ethernet": 7, "ARP": 8, "Dot1Q": 9, "IPv4": 29, "IPv4Option": 30, "IPv6": 31,
    "ICMPv4": 32, "ICMPv6": 33, "UDP": 37, "TCP": 38, "TCPOption": 39, "LLC": 51,
    "IPv6Fragment": 68, "DNS": 41, "DHCPv4": 47, "NTP": 52, "Connection": 3,
    "TLSClientHello": 64, "TLSServerHello": 94, "HTTP": 63, "SSH": 98,
}  # fmt: skip

# What each capture covers (link type, protocols).
CAPTURES = [
    "zeek_wikipedia.pcap",  # Ethernet, LLC, ARP, IPv4, IPv6, TCP, UDP
    "ja4_tls12.pcap",  # TLS hellos from reassembled streams
    "zeek_http_bro.org.pcap",  # 751 TCP packets, options, payloads
    "dpkt_dns_icmp.pcap",  # ICMPv4, UDP
    "zeek_icmp_dot1q.pcap",  # VLAN, ARP, ICMPv4
    "zeek_q-in-q.pcap",  # two VLAN tags per frame
    "tcpdump_802.1ad_QinQ.pcap",  # 802.1ad outer tag, ARP
    "zeek_dns_mdns.pcap",  # IPv6, ICMPv6
    "zeek_ipv6-fragmented-dns.pcap",  # IPv6 fragments
    "libpcap_ipv6_ext_headers.pcap",  # 33 fragment headers in one packet
    "ja4_http-empty-useragent-null.pcap",  # NULL (BSD loopback), IPv6
    "zeek_linuxsll-arp.pcap",  # Linux SLL
    "zeek_linux_dlt_sll2.pcap",  # Linux SLL2, ICMPv4/v6
    "zeek_radiotap.pcap",  # 802.11 radiotap -> LLC
    "sv_dns-udp-eve-log-srv.pcap",  # LINKTYPE_RAW
    "tcpdump_LINKTYPE_IPV4.pcap",
    "pcapngtg_le_test202_mixed-endian-sections.pcapng",  # pcapng, two link types
    "zeek_http_iso-download.pcap.gz",  # gzip-compressed input
]


# -- helpers ------------------------------------------------------------------------------




def net(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*net_cmd(), *args], capture_output=True, timeout=timeout)


def net_many(argvs: list[list[str]], timeout: float = 60
             ) -> list[subprocess.CompletedProcess[bytes]]:
    """Several `net` runs at once (interpreter start-up dominates these small runs)."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda a: net(*a, timeout=timeout), argvs))


def decode_file(path: Path) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """In-process decode: record type -> [(packet index, rendered fields)] in order
    (connections, which belong to no one packet, and records of reassembled IP datagrams,
    written after their batch, with index -1)."""
    from netcap.flows.extract import summarize
    from netcap.flows.table import ConnectionTable
    from netcap.reassembly.ip import Defragmenter, decode_datagrams, fragments
    from netcap.reassembly.streams import StreamStage, segments

    defrag = Defragmenter()
    out: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    flows = ConnectionTable()
    streams = StreamStage()
    with open_capture(path, clock=True) as src:  # stamps as the pipeline's (clock.py)
        for batch in src:
            d = decode_batch(batch)
            for name in d.tables:
                out[name] += d.records(name)
            streamed = streams.update(segments(d))
            for name, table in streamed.tables().items():
                assert table.pkt is not None
                out[name] += list(zip(table.pkt.tolist(), table.to_dicts(), strict=True))
            fb = summarize(d)  # with the protocols the stream analyzers recognised
            ended = flows.update(fb, streamed.apps) if fb is not None else None
            if ended is not None:
                out["Connection"] += [(-1, r) for r in ended.records.to_dicts()]
            done = defrag.add(fragments(d))  # reassembled IP datagrams: after the batch
            if done:
                upper = decode_datagrams(done)
                for name in upper.tables:
                    out[name] += [(-1, r) for _, r in upper.records(name)]
                streamed = streams.update(segments(upper))
                for name, table in streamed.tables().items():
                    out[name] += [(-1, r) for r in table.to_dicts()]
                fb = summarize(upper)
                ended = flows.update(fb, streamed.apps) if fb is not None else None
                if ended is not None:
                    out["Connection"] += [(-1, r) for r in ended.records.to_dicts()]
    streamed = streams.flush()
    for name, table in streamed.tables().items():
        out[name] += [(-1, r) for r in table.to_dicts()]
    flows.recognise(streamed.apps)
    ended = flows.flush()
    if ended is not None:
        out["Connection"] += [(-1, r) for r in ended.records.to_dicts()]
    return dict(out)


def packets(path: Path) -> list[tuple[int, bytes]]:
    """(linktype, bytes) of every packet."""
    out: list[tuple[int, bytes]] = []
    with open_capture(path) as src:
        for b in src:
            out += [(int(b.linktype[i]), b.packet(i)) for i in range(len(b))]
    return out


def wire_fields(msg: bytes) -> dict[int, Any]:
    """A minimal protobuf wire-format parser (varint and length-delimited fields)."""
    out: dict[int, Any] = {}
    pos = 0
    while pos < len(msg):
        key, pos = uvarint(msg, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            out[number], pos = uvarint(msg, pos)
        elif wire == 2:
            n, pos = uvarint(msg, pos)
            out[number] = msg[pos : pos + n]
            pos += n
        else:
            raise AssertionError(f"unexpected wire type {wire} in a Header")
    return out


def msg_dict(msg: Any) -> dict[str, Any]:
    """Set fields of a parsed message as a dict shaped like RecordTable.to_dicts()."""
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        if fd.message_type is not None and fd.is_repeated:
            out[fd.name] = [msg_dict(m) for m in value]
        elif fd.message_type is not None:
            out[fd.name] = msg_dict(value)
        elif fd.is_repeated:
            out[fd.name] = list(value)
        else:
            out[fd.name] = value
    return out


def stream_of(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def shannon(data: bytes) -> float:
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values()) if n else 0.0


class Captured:
    """One `net capture` run: its output directory and the in-process expectation."""

    def __init__(self, src: Path, out: Path, t0: int, t1: int) -> None:
        self.src, self.out, self.t0, self.t1 = src, out, t0, t1
        self._expected: dict[str, list[tuple[int, dict[str, Any]]]] | None = None

    @property
    def expected(self) -> dict[str, list[tuple[int, dict[str, Any]]]]:
        if self._expected is None:
            self._expected = decode_file(self.src)
        return self._expected

    def files(self) -> dict[str, Path]:
        return {p.name.split(".")[0]: p for p in sorted(self.out.iterdir())}


# Every capture run the tests below use, started together by the `run` fixture.
RUNS: list[tuple[str, tuple[str, ...]]] = [(name, ()) for name in CAPTURES] + [
    ("zeek_wikipedia.pcap", ("-compress=false",)),
    ("zeek_linux_dlt_sll2.pcap", ("-compress=false",)),
    ("zeek_var-services-std-ports.pcap", ()),
    ("zeek_var-services-std-ports.pcap", ("-workers", "2")),
    ("zeek_wikipedia.pcap", ("-payload", "-entropy")),
    ("dpkt_http.pcap", ("-payload", "-entropy")),
    ("zeek_q-in-q.pcap", ("-payload", "-entropy")),
    ("ja4_http-empty-useragent-null.pcap", ("-payload", "-entropy")),
    ("dpkt_http.pcap", ()),
    ("zeek_wikipedia.pcap", ("-include", "TCP,ARP")),
    ("zeek_wikipedia.pcap", ("-exclude=Ethernet,IPv4,LLC",)),
    ("zeek_wikipedia.pcap", ("--include=TCP,UDP,IPv6", "--exclude", "UDP")),
    ("zeek_icmp_5-pings.pcap", ()),
    ("zeek_http_bro.org.pcap", ("-payload",)),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    outs = {key: tmp_path_factory.mktemp(re.sub(r"\W", "_", key[0] + "".join(key[1])))
            for key in RUNS}
    t0 = time.time_ns()
    results = net_many([["capture", "-read", str(PCAPS / name), "-out", str(outs[name, flags]),
                         "-quiet", *flags] for name, flags in RUNS])
    t1 = time.time_ns()
    for key, r in zip(RUNS, results, strict=True):
        assert r.returncode == 0 and r.stderr == b"", (key, r.stderr.decode())
    runs = {key: Captured(PCAPS / key[0], outs[key], t0, t1) for key in RUNS}

    def get(name: str, *flags: str) -> Captured:
        return runs[name, flags]

    return get


# -- file contents ------------------------------------------------------------------------


@pytest.mark.parametrize("name", CAPTURES)
def test_roundtrip(name: str, run: Any) -> None:
    c: Captured = run(name)
    files = c.files()
    assert set(files) == set(c.expected), "one file per record type that occurred"
    assert all(p.name.endswith(".ncap.gz") for p in files.values())
    for rtype, path in files.items():
        want = c.expected[rtype]
        pkts = [p for p, _ in want if p >= 0]
        assert pkts == sorted(pkts), "in-process records are in packet order"
        with NcapReader(str(path)) as reader:
            assert reader.record_type == rtype
            got = [msg_dict(m) for m in reader]
        assert len(got) == len(want), rtype
        for i, (g, (pkt, w)) in enumerate(zip(got, want, strict=True)):
            assert g == w, f"{rtype} record {i} (packet {pkt})"


@pytest.mark.parametrize("name", CAPTURES)
def test_independent_reader_and_header(name: str, run: Any) -> None:
    """gzip module + framing + protobuf classes, and the Header by hand."""
    c: Captured = run(name)
    for rtype, path in c.files().items():
        raw = frames(stream_of(path))
        assert raw, "a Header at least"
        head = wire_fields(raw[0])
        assert set(head) <= {1, 2, 3, 4, 5}
        assert c.t0 - 10**9 <= head[1] <= c.t1 + 10**9, "Created: wall clock, ns"
        assert head[2] == str(c.src).encode(), "InputSource: the -read argument"
        assert head[3] == FORMAT_TYPE_ENUM[rtype], "Type: the Go Netcap's enum value"
        assert head[4] == __version__.encode()
        assert 5 not in head, "ContainsPayloads false without -payload"
        cls = message_class(rtype)
        got = [msg_dict(cls.FromString(r)) for r in raw[1:]]
        assert got == [w for _, w in c.expected[rtype]]


def test_gzip_module_streaming(run: Any) -> None:
    """A whole file through gzip.open (streaming, multi-member) equals gzip.decompress."""
    c: Captured = run("zeek_http_bro.org.pcap")
    for path in c.files().values():
        with gzip.open(path, "rb") as f:
            streamed = f.read()
        assert streamed == gzip.decompress(path.read_bytes())


def test_uncompressed(run: Any) -> None:
    """-compress=false: `.ncap` files whose records are byte-identical to the gzip'd ones."""
    for name in ("zeek_wikipedia.pcap", "zeek_linux_dlt_sll2.pcap"):
        gz: Captured = run(name)
        plain: Captured = run(name, "-compress=false")
        pf = plain.files()
        assert set(pf) == set(gz.files())
        for rtype, path in pf.items():
            assert path.name == rtype + ".ncap"
            assert path.read_bytes()[:2] != b"\x1f\x8b"
            a, b = frames(path.read_bytes()), frames(stream_of(gz.files()[rtype]))
            assert a[1:] == b[1:], rtype
            ha, hb = wire_fields(a[0]), wire_fields(b[0])
            del ha[1], hb[1]  # Created differs
            assert ha == hb
            with NcapReader(str(path)) as reader:
                assert [msg_dict(m) for m in reader] == [w for _, w in gz.expected[rtype]]


def test_workers(run: Any) -> None:
    """-workers 2 writes the same records as one process."""
    one: Captured = run("zeek_var-services-std-ports.pcap")
    two: Captured = run("zeek_var-services-std-ports.pcap", "-workers", "2")
    for rtype, path in two.files().items():
        assert frames(stream_of(path))[1:] == frames(stream_of(one.files()[rtype]))[1:]


# -- payloads and entropy -----------------------------------------------------------------


def _l3(linktype: int, pkt: bytes) -> tuple[int, int, int] | None:
    """(offset of the IP header, its version, end of the IP packet) for the layouts used
    below: Ethernet with any number of 802.1Q/802.1ad tags, NULL, RAW."""
    if linktype == 1:
        off, etype = 14, struct.unpack_from("!H", pkt, 12)[0]
        while etype in (0x8100, 0x88A8):
            etype = struct.unpack_from("!H", pkt, off + 2)[0]
            off += 4
        if etype not in (0x0800, 0x86DD):
            return None
    elif linktype == 0:
        off = 4
    elif linktype == 101:
        off = 0
    else:
        return None
    version = pkt[off] >> 4
    if version == 4:
        return off, 4, off + struct.unpack_from("!H", pkt, off + 2)[0]
    if version == 6:
        return off, 6, off + 40 + struct.unpack_from("!H", pkt, off + 4)[0]
    return None


def l4_payload(linktype: int, pkt: bytes) -> tuple[str, bytes, bytes] | None:
    """(TCP or UDP, IP payload, transport payload) cut out of a packet here, or None
    for anything but plain unfragmented IPv4 / IPv6-without-extension-headers."""
    l3 = _l3(linktype, pkt)
    if l3 is None:
        return None
    off, version, end = l3
    end = min(end, len(pkt))
    if version == 4:
        ihl = (pkt[off] & 0x0F) * 4
        if struct.unpack_from("!H", pkt, off + 6)[0] & 0x3FFF:
            return None  # a fragment
        proto, start = pkt[off + 9], off + ihl
    else:
        proto, start = pkt[off + 6], off + 40
    if proto == 6:
        return "TCP", pkt[start:end], pkt[start + (pkt[start + 12] >> 4) * 4 : end]
    if proto == 17:
        return "UDP", pkt[start:end], pkt[start + 8 : end]
    return None


@pytest.mark.parametrize("name", ["zeek_wikipedia.pcap", "dpkt_http.pcap",
                                  "zeek_q-in-q.pcap", "ja4_http-empty-useragent-null.pcap"])
def test_payload_and_entropy(name: str, run: Any) -> None:
    c: Captured = run(name, "-payload", "-entropy")
    pk = packets(c.src)
    files = c.files()
    checked = Counter[str]()
    for rtype in ("TCP", "UDP", "IPv4", "IPv6", "Ethernet"):
        if rtype not in files:
            continue
        raw = frames(stream_of(files[rtype]))
        head = wire_fields(raw[0])
        assert head.get(5) == 1, "ContainsPayloads"
        cls = message_class(rtype)
        for (p, _), r in zip(c.expected[rtype], raw[1:], strict=True):
            msg = cls.FromString(r)
            linktype, pkt = pk[p]
            if rtype == "Ethernet":
                want = pkt[14:]
            else:
                cut = l4_payload(linktype, pkt)
                if cut is None:
                    continue
                proto, ip_payload, l4 = cut
                if rtype in ("TCP", "UDP"):
                    if proto != rtype:
                        continue
                    want = l4
                    assert msg.Payload == want, f"{rtype} packet {p}"
                else:
                    want = ip_payload
            assert msg.PayloadSize == len(want), f"{rtype} packet {p}"
            assert msg.PayloadEntropy == pytest.approx(shannon(want), rel=1e-12, abs=1e-12)
            checked[rtype] += 1
    assert sum(checked.values()) > 10, checked


def test_no_payload_without_flag(run: Any) -> None:
    c: Captured = run("dpkt_http.pcap")
    for rtype in ("TCP", "UDP"):
        for r in frames(stream_of(c.files()[rtype]))[1:]:
            msg = message_class(rtype).FromString(r)
            assert msg.Payload == b"" and msg.PayloadEntropy == 0.0


# -- include / exclude --------------------------------------------------------------------


def test_include(run: Any) -> None:
    c: Captured = run("zeek_wikipedia.pcap", "-include", "TCP,ARP")
    assert set(c.files()) == {"TCP", "ARP"}
    full: Captured = run("zeek_wikipedia.pcap")
    for rtype, path in c.files().items():
        assert frames(stream_of(path))[1:] == frames(stream_of(full.files()[rtype]))[1:]


def test_exclude(run: Any) -> None:
    c: Captured = run("zeek_wikipedia.pcap", "-exclude=Ethernet,IPv4,LLC")
    assert set(c.files()) == set(c.expected) - {"Ethernet", "IPv4", "LLC"}


def test_include_and_exclude(run: Any) -> None:
    c: Captured = run("zeek_wikipedia.pcap", "--include=TCP,UDP,IPv6", "--exclude", "UDP")
    assert set(c.files()) == {"TCP", "IPv6"}


# -- net dump -----------------------------------------------------------------------------

IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
MAC6 = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _jsonable(rtype: str, d: dict[str, Any]) -> dict[str, Any]:
    """A to_dicts() row as `net dump -json` prints it: bytes as base64."""
    rt = RECORDS[rtype]
    out: dict[str, Any] = {}
    for k, v in d.items():
        fl = rt.by_name[k]
        if fl.kind is Kind.MESSAGE and fl.repeated:
            v = [_jsonable(fl.message or "", x) for x in v]
        elif fl.kind is Kind.MESSAGE:
            v = _jsonable(fl.message or "", v)
        elif fl.repeated and fl.kind is Kind.BYTES:
            v = [base64.b64encode(x).decode() for x in v]
        elif isinstance(v, bytes):
            v = base64.b64encode(v).decode()
        out[k] = v
    return out


@pytest.mark.parametrize("name", ["zeek_wikipedia.pcap", "zeek_linux_dlt_sll2.pcap",
                                  "zeek_icmp_dot1q.pcap"])
def test_dump_json(name: str, run: Any) -> None:
    c: Captured = run(name)
    files = c.files()
    results = net_many([["dump", "-read", str(p), "-json"] for p in files.values()])
    for rtype, r in zip(files, results, strict=True):
        assert r.returncode == 0 and r.stderr == b"", r.stderr.decode()
        lines = r.stdout.decode().split("\n")
        assert lines[-1] == "", "newline-terminated"
        objs = [json.loads(line) for line in lines[:-1]]
        assert all(isinstance(o, dict) for o in objs)
        want = [_jsonable(rtype, w) for _, w in c.expected[rtype]]
        assert objs == want, rtype
        rt = RECORDS[rtype]
        order = [f.name for f in rt.fields]
        for o in objs:
            assert list(o) == [k for k in order if k in o], "keys in field-number order"
            ts = o.get("Timestamp", o.get("TimestampFirst"))
            assert isinstance(ts, int) and ts > 10**18
            for k, v in o.items():
                fl = rt.by_name[k]
                if fl.render is Render.IP:
                    assert IPV4.match(v) or ":" in v, (k, v)
                elif fl.render is Render.MAC:
                    assert MAC6.match(v), (k, v)


def test_dump_json_flag_spellings(run: Any) -> None:
    c: Captured = run("zeek_icmp_5-pings.pcap")
    flags = ["-json", "-json=true", "--json", "--json=1"]
    path = str(c.files()["ICMPv4"])
    for flag, r in zip(flags, net_many([["dump", "-read", path, f] for f in flags]),
                       strict=True):
        assert r.returncode == 0, flag
        assert len([json.loads(x) for x in r.stdout.decode().splitlines()]) == 10, flag


def test_dump_csv(run: Any) -> None:
    c: Captured = run("zeek_wikipedia.pcap")
    files = c.files()
    results = net_many([["dump", "-read", str(p), "-csv"] for p in files.values()])
    for rtype, r in zip(files, results, strict=True):
        assert r.returncode == 0 and r.stderr == b"", r.stderr.decode()
        text = r.stdout.decode()
        names = [f.name for f in RECORDS[rtype].fields]
        assert text.split("\n", 1)[0] == ",".join(names)
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == names
        want = c.expected[rtype]
        assert len(rows) - 1 == len(want)
        for row, (_, w) in zip(rows[1:], want, strict=True):
            assert len(row) == len(names)
            cells = dict(zip(names, row, strict=True))
            first = "TimestampFirst" if rtype == "Connection" else "Timestamp"
            assert int(cells[first]) == w[first]
            for k, v in w.items():
                if isinstance(v, str):
                    assert cells[k] == v
                elif isinstance(v, bool):
                    assert cells[k] == "true"
                elif isinstance(v, int):
                    assert int(cells[k]) == v
                elif isinstance(v, bytes):
                    assert cells[k] == v.hex()


def test_dump_table(run: Any) -> None:
    c: Captured = run("zeek_http_bro.org.pcap")
    path = c.files()["TCP"]
    r = net("dump", "-read", str(path))
    assert r.returncode == 0 and r.stderr == b"", r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("Timestamp ")
    records = [x for x in lines if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} ", x)]
    assert len(records) == len(c.expected["TCP"])
    ts = c.expected["TCP"][0][1]["Timestamp"]
    stamp = datetime.fromtimestamp(ts // 10**9, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert records[0].startswith(f"{stamp}.{ts % 10**9:09d}  ")
    r = net("dump", "-read", str(path), "-header")
    assert r.returncode == 0
    assert r.stderr.decode().startswith("# TCP records; source ")


def test_dump_into_closed_pipe(run: Any) -> None:
    """`net dump ... | head -1`: no traceback, no BrokenPipe noise, exit status 0."""
    c: Captured = run("zeek_http_bro.org.pcap", "-payload")
    path = c.files()["TCP"]
    assert len(stream_of(path)) > 1 << 18, "output must exceed the pipe buffer"

    def piped(fmt: str) -> subprocess.CompletedProcess[bytes]:
        cmd = " ".join([*map(shlex.quote, net_cmd()), "dump", "-read", shlex.quote(str(path)),
                        fmt])
        return subprocess.run(["bash", "-c", cmd + ' | head -1; echo "status=${PIPESTATUS[0]}"'],
                              capture_output=True, timeout=60)

    fmts = ["-json", "-csv", "-json=false"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(piped, fmts))
    for fmt, r in zip(fmts, results, strict=True):
        out = r.stdout.decode().splitlines()
        assert len(out) == 2 and out[1] == "status=0", (fmt, out)
        assert r.stderr == b"", (fmt, r.stderr.decode())


def test_dump_reads_a_pipe(run: Any) -> None:
    """`-read /dev/stdin`: the reader must not need to seek."""
    c: Captured = run("zeek_icmp_5-pings.pcap")
    data = c.files()["ICMPv4"].read_bytes()
    r = subprocess.run([*net_cmd(), "dump", "-read", "/dev/stdin", "-json"], input=data,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert len(r.stdout.splitlines()) == 10


def test_non_utf8_input_name(tmp_path: Path) -> None:
    """A capture whose file name is not UTF-8 still gives readable files (InputSource
    with U+FFFD for the undecodable byte)."""
    src = os.fsencode(tmp_path) + b"/\xff.pcap"
    try:
        with open(src, "wb") as f:
            f.write((PCAPS / "zeek_icmp_5-pings.pcap").read_bytes())
    except OSError:
        pytest.skip("this file system only takes UTF-8 names")
    out = tmp_path / "out"
    r = subprocess.run([*(os.fsencode(x) for x in net_cmd()), b"capture", b"-read", src,
                        b"-out", os.fsencode(out), b"-quiet"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    with NcapReader(str(out / "ICMPv4.ncap.gz")) as reader:
        assert reader.header.InputSource.endswith("/\ufffd.pcap")
        assert len(list(reader)) == 10


def test_dump_json_non_finite(tmp_path: Path) -> None:
    """NaN and infinities (possible in a foreign or damaged file) stay valid JSON: the
    protobuf JSON mapping's strings, not Python's bare NaN / Infinity."""
    stream = bytearray(header_bytes("UDP", "crafted", False, 1))
    values = [math.nan, math.inf, -math.inf, 1.5]
    for v in values:
        m = message_class("UDP")()
        m.SrcPort, m.PayloadEntropy = 53, v
        body = m.SerializeToString()
        stream += bytes([len(body)]) + body
    path = tmp_path / "UDP.ncap"
    path.write_bytes(bytes(stream))
    r = net("dump", "-read", str(path), "-json")
    assert r.returncode == 0, r.stderr.decode()

    def strict(c: str) -> Any:
        raise AssertionError(f"not JSON: {c}")

    got = [json.loads(x, parse_constant=strict) for x in r.stdout.decode().splitlines()]
    assert [o["PayloadEntropy"] for o in got] == ["NaN", "Infinity", "-Infinity", 1.5]
    assert all(o["SrcPort"] == 53 for o in got)
