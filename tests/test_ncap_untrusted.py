"""Audit-record files are untrusted input: whatever a `.ncap[.gz]` file holds, reading it
back (`net export`, `net dump`) ends cleanly, its labels stay in the closed sets and
budgets that labels from packets use, and memory stays bounded by the size of a record.

Crafted files are built here with the project's protobuf classes (`message_class`) and
`header_bytes`, or as raw bytes where the framing itself is the attack; the real
captures come from the public corpus (`helpers.PCAPS`), recorded with the real
`net capture`.
"""

from __future__ import annotations

import gzip
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import PCAPS, frames, net_cmd
from netcap.export import ExportOptions, expand_inputs, run_export
from netcap.metrics.families import FAMILIES
from netcap.metrics.state import LabelConfig, MetricsState, Snapshot
from netcap.records.proto import message_class
from netcap.records.schema import Kind, RecordType
from netcap.records.types import RECORDS
from netcap.sinks.ncap import header_bytes

TIMEOUT = 120
SECRET = "secret=hunter2"  # stands for credentials a record field may carry
LEAKED_IP = "10.9.8."  # and for addresses


def uvarint_bytes(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ncap_file(path: Path, record_type: str, records: list[bytes], gz: bool = True) -> Path:
    """An audit-record file: our Header, then these serialized records."""
    body = header_bytes(record_type, "crafted", False, 0)
    body += b"".join(uvarint_bytes(len(r)) + r for r in records)
    path.write_bytes(gzip.compress(body) if gz else body)
    return path


def export(*paths: Path, config: LabelConfig | None = None) -> tuple[Snapshot, list[str]]:
    """`net export` of these files in this process: its metrics and damage notes."""
    state = MetricsState(config)
    inputs = expand_inputs([str(p) for p in paths])  # a directory: its files
    result = run_export(ExportOptions(inputs=tuple(inputs)), state)
    return state.snapshot(), result.truncated or []


def net(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*net_cmd(), *args], capture_output=True, text=True,
                          timeout=TIMEOUT)


def record_families(snap: Snapshot) -> dict[str, dict[tuple[str, ...], float]]:
    """The series of the families counted from records (not the process's own)."""
    own = ("nc_build", "nc_decoding_errors", "nc_stage_seconds", "nc_input_",
           "nc_metric_label_overflow", "nc_uptime", "nc_truncated")
    out: dict[str, dict[tuple[str, ...], Any]] = {}
    for fam, series in [*snap.counters.items(), *snap.histograms.items()]:
        if not fam.startswith(own) and series:
            out[fam] = dict(series)
    return out


# -- 1. repeated fields of any mix of lengths ---------------------------------------------

TLS_CAPTURES = ["ja3_ssl-chrome.pcap", "ja3_ssl-curl.pcap", "ja4_tls12.pcap",
                "ja4_tls-sni.pcapng", "zeek_tls_tls13_wolfssl.pcap",
                "sv_tls13-draft28.pcap"]


@pytest.mark.corpus
def test_client_hellos_of_several_clients_in_one_directory(tmp_path: Path) -> None:
    """The ClientHellos of several real clients (supported_versions lists of 0, 2, 3, 4
    and 5 entries), captured by `net capture` and put in one file as a capture of all
    that traffic would write them: `net export DIR` counts them all, as the captures
    do one by one."""
    merged: list[bytes] = []
    expected = 0.0
    for name in TLS_CAPTURES:
        out = tmp_path / name
        r = net("capture", "-read", str(PCAPS / name), "-out", str(out), "-quiet",
                "-include", "TLSClientHello")
        assert r.returncode in (0, 1), r.stderr
        stream = gzip.decompress((out / "TLSClientHello.ncap.gz").read_bytes())
        merged += frames(stream)[1:]  # without its Header
        snap, _ = export(out / "TLSClientHello.ncap.gz")
        expected += sum(snap.counters["nc_tls_hellos"].values())
    lengths = {len(message_class("TLSClientHello").FromString(m).SupportedVersions)
               for m in merged}
    assert {0, 4, 5} <= lengths
    both = tmp_path / "all"
    both.mkdir()
    ncap_file(both / "TLSClientHello.ncap.gz", "TLSClientHello", merged)
    r = net("export", "-exit", "-address", "127.0.0.1:0", str(both))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    snap, notes = export(both)
    assert not notes
    assert sum(snap.counters["nc_tls_hellos"].values()) == expected == len(merged)
    assert snap.counters["nc_tls_hellos"][("client", "tls1.3")] > 0


def _top_level() -> list[RecordType]:
    return [rt for rt in RECORDS.values() if rt.type_enum and rt.name != "Header"]


def _fill(msg: Any, rtype: RecordType, i: int, text: Callable[[int], str], mixed: bool,
          depth: int = 0) -> None:
    """Every field of `msg` set from row number i: distinct numbers far from any code a
    packet holds, `text(i)` in every string, and repeated fields of i % 6 entries
    (`mixed`) or of 2."""
    entries = i % 6 if mixed else 2
    for fl in rtype.fields:
        if fl.kind is Kind.MESSAGE:
            if depth > 1:
                continue
            sub = RECORDS[fl.message or ""]
            if fl.repeated:
                for k in range(entries):
                    _fill(getattr(msg, fl.name).add(), sub, i + k, text, mixed, depth + 1)
            else:
                _fill(getattr(msg, fl.name), sub, i, text, mixed, depth + 1)
            continue
        values: list[Any]
        big = 70_000 + i * 7919
        if fl.kind is Kind.STRING:
            values = [text(i + k) for k in range(6)]
        elif fl.kind is Kind.BYTES:
            values = [text(i + k).encode() for k in range(6)]
        elif fl.kind is Kind.BOOL:
            values = [bool(i % 2)] * 6
        elif fl.kind is Kind.DOUBLE:
            values = [float(big)] * 6
        elif fl.kind is Kind.ENUM:
            values = [1] * 6
        else:
            values = [big + k for k in range(6)]
        if fl.repeated:
            getattr(msg, fl.name).extend(values[:entries])
        else:
            setattr(msg, fl.name, values[0])


def _crafted_dir(tmp_path: Path, n: int, text: Callable[[int], str], mixed: bool = False
                 ) -> Path:
    """One file per record type, n records each with every field set."""
    out = tmp_path / f"crafted-{n}"
    out.mkdir()
    for rt in _top_level():
        cls = message_class(rt.name)
        records = []
        for i in range(n):
            m = cls()
            _fill(m, rt, i, text, mixed)
            records.append(m.SerializeToString())
        ncap_file(out / f"{rt.name}.ncap.gz", rt.name, records)
    return out


def test_every_record_type_with_every_field_set(tmp_path: Path) -> None:
    """Records of every type with every field set, repeated ones (numbers, strings and
    sub-records) in a mix of 0 to 5 entries: counted, no exception."""
    out = _crafted_dir(tmp_path, 30, lambda i: f"v{i}", mixed=True)
    snap, notes = export(out)
    assert not notes
    audited = snap.counters["nc_audit_records"]
    assert {k[0] for k in audited} == {rt.name for rt in _top_level()}
    assert set(audited.values()) == {30}


# -- 2. labels from files go through the closed sets and budgets ---------------------------

# A label value as the closed sets make them: a name (`tls1.3`, `GET`, `other`), a
# code of up to three digits (HTTP status, NTP version) or an SSH version (`1.99`).
_CLOSED_VALUE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,23}|\d{1,3}|\d\.\d{1,2}")


def test_labels_from_files_stay_in_closed_sets(tmp_path: Path) -> None:
    """Every field of every record type holding text (credentials, addresses) or numbers
    far from any real code: no label value carries them, and no family holds more
    series than its closed sets allow (1,000 distinct values per field)."""
    n = 1000
    out = _crafted_dir(tmp_path, n, lambda i: f"{SECRET}&{LEAKED_IP}{i % 250}/{i}")
    snap, notes = export(out)
    assert not notes
    for fam, series in record_families(snap).items():
        for labels in series:
            for value in labels:
                assert _CLOSED_VALUE.fullmatch(value) or value in RECORDS, (fam, labels)
        assert len(series) < n // 2, (fam, len(series))
    errors = snap.counters["nc_decoding_errors"]
    assert errors[("ncap", "bad_address")] > 0  # address fields holding other text


def test_opt_in_labels_from_files_stay_under_the_budget(tmp_path: Path) -> None:
    """With every opt-in label on, values from files fold into `other` past the series
    budget, text is cut as from packets, and address fields that hold something other
    than an address (credentials here) never become a label."""
    out = _crafted_dir(tmp_path, 300, lambda i: f"{SECRET}{'x' * 300}{i}")
    budget = 20
    config = LabelConfig({f.name: f.optional for f in FAMILIES.values() if f.optional},
                         budget)
    snap, _ = export(out, config=config)
    for fam in config.extra:
        series = snap.counters.get(fam, {})
        n_extra = len(config.extra[fam])
        # Past the budget, new values fold into series whose opt-in labels are "other".
        kept = [k for k in series if k[-n_extra:] != ("other",) * n_extra]
        assert 0 < len(kept) <= budget, (fam, len(kept))
        for labels in series:
            extra = dict(zip(config.labels_of(fam), labels, strict=True))
            assert all(len(v) <= 128 for v in labels), fam
            for name in ("src_ip", "dst_ip", "src_mac", "dst_mac", "src_port", "dst_port"):
                assert SECRET not in extra.get(name, ""), (fam, extra)
            for name in ("src_port", "dst_port"):
                v = extra.get(name)
                assert v is None or v == "other" or 0 <= int(v) <= 65535, (fam, extra)


def test_numeric_text_in_files(tmp_path: Path) -> None:
    """DHCP's message type is text in the record: digits that are not ASCII, numbers of
    thousands of digits, signs and spaces label as `other`; a real one by its name."""
    dhcp = message_class("DHCPv4")
    texts = ["\u2075", "5" * 5000, "-5", " 5", "\u0665", "5\n", "", "5"]
    records = []
    for t in texts:
        m = dhcp()
        m.Options.add(Type=53, Length=1, Data=t)
        records.append(m.SerializeToString())
    ntp = message_class("NTP")
    ntp_records = [ntp(Version=v, Mode=3).SerializeToString() for v in (4, 8, 2**31 - 1)]
    snap, notes = export(ncap_file(tmp_path / "DHCPv4.ncap.gz", "DHCPv4", records),
                         ncap_file(tmp_path / "NTP.ncap.gz", "NTP", ntp_records))
    assert not notes
    assert snap.counters["nc_dhcp_messages"] == {("other",): len(texts) - 1, ("ack",): 1}
    assert snap.counters["nc_ntp_messages"] == {("4", "client"): 1, ("other", "client"): 2}


def test_connection_labels_from_files(tmp_path: Path) -> None:
    """Connection's TransportProto and ApplicationProto are text in the record: what the
    connection table writes labels as from packets, anything else as `other`."""
    conn = message_class("Connection")
    pairs = [("TCP", "DNS"), ("UDP", ""), ("udp", "NTP"), (SECRET, "DHCPv4"),
             ("TCP", f"{LEAKED_IP}1"), ("SCTP", "ssh")]
    records = [conn(TransportProto=t, ApplicationProto=a, SrcIP="192.0.2.1",
                    DstIP=f"{SECRET}").SerializeToString() for t, a in pairs]
    snap, _ = export(ncap_file(tmp_path / "Connection.ncap.gz", "Connection", records))
    assert snap.counters["nc_connections"] == {
        ("tcp", "dns"): 1, ("udp", "other"): 1, ("udp", "ntp"): 1, ("other", "dhcpv4"): 1,
        ("tcp", "other"): 1, ("other", "ssh"): 1}
    assert snap.counters["nc_decoding_errors"] == {("ncap", "bad_address"): len(pairs)}


# -- memory: bounded by the size of a record -------------------------------------------------

# The peak resident memory of this process's own address space (VmHWM starts anew at
# exec; getrusage's ru_maxrss would include the parent's size at fork).
_PEAK = """
import re, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from netcap import cli
rc = cli.main(sys.argv[1:])
hwm = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())
print(rc, int(hwm.group(1)) // 1024, file=sys.stderr)
"""


def peak_mib(*args: str) -> tuple[int, int, str]:
    """`net ARGS` in a process of its own under a 3 GiB address-space limit: its exit
    status and peak resident memory (MiB). Its output is not kept."""
    r = subprocess.run([sys.executable, "-c", _PEAK, *args], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    rc, mib = (int(x) for x in r.stderr.splitlines()[-1].split())
    return rc, mib, r.stderr


def test_long_strings_cost_their_size(tmp_path: Path) -> None:
    """Thousands of small ClientHellos and a few with a 3 MB server name (a 20 KB file):
    the export's peak memory grows by a small multiple of the long records' size, as it
    does for the same number of short records."""
    hello = message_class("TLSClientHello")
    short = [hello(SNI=f"h{i}.example", HandshakeVersion=0x0303).SerializeToString()
             for i in range(3000)]
    long = [hello(SNI=("a" * (3 << 20)), HandshakeVersion=0x0303).SerializeToString()] * 4
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    big.mkdir()
    ncap_file(small / "TLSClientHello.ncap.gz", "TLSClientHello", short)
    ncap_file(big / "TLSClientHello.ncap.gz", "TLSClientHello",
              short[:1500] + long + short[1500:])
    assert (big / "TLSClientHello.ncap.gz").stat().st_size < 100_000
    sni = ["-labels", "nc_tls_hellos=sni"]
    rc0, base, _ = peak_mib("export", "-exit", "-address", "127.0.0.1:0", *sni, str(small))
    rc1, peak, err = peak_mib("export", "-exit", "-address", "127.0.0.1:0", *sni, str(big))
    assert rc0 == rc1 == 0, err
    assert peak - base < 16 * 12, (base, peak)  # 12 MiB of long records, 16x at most


def test_gzip_bomb_and_huge_length_prefixes(tmp_path: Path) -> None:
    """A record whose length prefix says 512 MiB, made of zeros that gzip squeezes into
    half a megabyte: read a buffer at a time, passed over and counted; memory stays
    that of an ordinary file. Length prefixes past the 64-bit range are damage."""
    body = header_bytes("TCP", "crafted", False, 0)
    tcp = message_class("TCP")(SrcPort=1, DstPort=80, SYN=True).SerializeToString()
    one = uvarint_bytes(len(tcp)) + tcp
    bomb_body = body + one + uvarint_bytes(512 << 20)
    path = tmp_path / "bomb" / "TCP.ncap.gz"
    path.parent.mkdir()
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(bomb_body)
        zeros = bytes(1 << 20)
        for _ in range(512):
            f.write(zeros)
        f.write(one)
    assert path.stat().st_size < 1 << 20
    plain = ncap_file(tmp_path / "TCP.ncap.gz", "TCP", [tcp, tcp])
    rc0, base, _ = peak_mib("export", "-exit", "-address", "127.0.0.1:0", str(plain))
    rc, peak, err = peak_mib("export", "-exit", "-address", "127.0.0.1:0", str(path.parent))
    assert rc0 == rc == 0, err
    assert peak - base < 64, (base, peak)  # inflated a buffer at a time, not 512 MiB
    snap, notes = export(path)
    assert not notes
    assert snap.counters["nc_audit_records"][("TCP",)] == 2
    assert snap.counters["nc_decoding_errors"][("ncap", "record_too_large")] == 1
    r = net("dump", "-read", str(path), "-json")
    assert r.returncode == 1 and len(r.stdout.splitlines()) == 2
    assert len(r.stderr.splitlines()) == 1 and "skipped" in r.stderr
    # A length prefix of 11 varint bytes, and one cut by the end of the file.
    for tail in (b"\xff" * 10 + b"\x01", b"\x80\x80"):
        bad = ncap_file(tmp_path / "cut.ncap", "TCP", [tcp], gz=False)
        bad.write_bytes(bad.read_bytes() + tail)
        snap, notes = export(bad)
        assert len(notes) == 1 and snap.counters["nc_audit_records"][("TCP",)] == 1


def test_dump_of_long_records_holds_a_page_of_bounded_size(tmp_path: Path) -> None:
    """`net dump` (table, JSON, CSV) of records with 3 MiB payloads: memory grows by a
    small multiple of one record, not with the number of records on a page."""
    tcp = message_class("TCP")
    long = ncap_file(tmp_path / "long.ncap.gz", "TCP",
                     [tcp(SrcPort=i + 1, Payload=bytes([i]) * (3 << 20)).SerializeToString()
                      for i in range(20)])
    short = ncap_file(tmp_path / "short.ncap.gz", "TCP",
                      [tcp(SrcPort=i + 1).SerializeToString() for i in range(20)])
    for fmt in ("-json=false", "-json", "-csv"):
        rc0, base, _ = peak_mib("dump", "-read", str(short), fmt)
        rc1, peak, err = peak_mib("dump", "-read", str(long), fmt)
        assert rc0 == rc1 == 0, err
        # CSV holds a row as UCS-4 text while writing it: 8 bytes per payload byte.
        assert peak - base < 24 * 3, (fmt, base, peak)


# -- 8. entropy: only where it was computed ------------------------------------------------


@pytest.mark.corpus
def test_records_without_entropy_observe_none(tmp_path: Path) -> None:
    """Records captured without -entropy carry no entropy: exporting them leaves the
    entropy histogram empty. Captured with -entropy, it holds the non-empty payloads
    (all of them but those of one repeated byte, whose entropy of 0 a file cannot tell
    from none)."""
    capture = PCAPS / "zeek_http_bro.org.pcap"
    plain, with_entropy = tmp_path / "plain", tmp_path / "entropy"
    for out, flags in ((plain, ()), (with_entropy, ("-entropy",))):
        r = net("capture", "-read", str(capture), "-out", str(out), "-quiet",
                "-include", "TCP", *flags)
        assert r.returncode == 0, r.stderr
    snap, _ = export(plain)
    assert not snap.histograms.get("nc_payload_entropy_bits_per_byte")
    snap, _ = export(with_entropy)
    h = snap.histograms["nc_payload_entropy_bits_per_byte"][("tcp",)]
    assert 0 < h.count <= 467 and 0 < h.sum / h.count < 8
    assert h.buckets[0] < h.count  # not all zeros in the lowest bucket


@pytest.mark.parametrize("gz", [True, False])
def test_address_text_labels_as_decoded(tmp_path: Path, gz: bool) -> None:
    """An address read back from a file labels exactly as the decoded one (4 bytes for
    IPv4, IPv4-mapped IPv6 printed as IPv4), so a capture and its records agree."""
    ip4 = message_class("IPv4")
    records = [ip4(SrcIP=s, DstIP="2001:db8::1", Protocol=6).SerializeToString()
               for s in ("192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1", "")]
    config = LabelConfig({"nc_ip_packets": ("src_ip", "dst_ip")})
    snap, _ = export(ncap_file(tmp_path / ("IPv4.ncap" + ".gz" * gz), "IPv4", records, gz),
                     config=config)
    assert snap.counters["nc_ip_packets"] == {("4", "tcp", "192.0.2.1", "2001:db8::1"): 3,
                                              ("4", "tcp", "", "2001:db8::1"): 1}


# -- mutated real records ------------------------------------------------------------------

FUZZ_CAPTURES = ["zeek_wikipedia.pcap", "sv_ssh-hassh.pcap", "ja3_ssl-chrome.pcap",
                 "tcpdump_dhcp-rfc3004.pcap", "tcpdump_dns_udp.pcap",
                 "zeek_http_pipelined-requests.pcap"]


@pytest.fixture(scope="module")
def record_streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The record streams (decompressed) `net capture` writes for a few real captures."""
    out = tmp_path_factory.mktemp("records")
    streams: dict[str, bytes] = {}
    for name in FUZZ_CAPTURES:
        d = out / name
        r = net("capture", "-read", str(PCAPS / name), "-out", str(d), "-quiet")
        assert r.returncode == 0, r.stderr
        for f in sorted(d.glob("*.ncap.gz")):
            streams[f"{name}/{f.name}"] = gzip.decompress(f.read_bytes())
    return streams


@pytest.mark.corpus
def test_mutated_records(record_streams: dict[str, bytes], tmp_path: Path) -> None:
    """Real records with bytes changed inside them (the framing kept, so the changes
    reach protobuf and the metrics rather than only gzip's checksum): every file exports
    to the end or to one damage note, with labels in the closed sets."""
    rnd = random.Random(12)
    names = sorted(record_streams)
    config = LabelConfig({"nc_tcp_segments": ("src_port",), "nc_ip_packets": ("src_ip",)},
                         budget=50)
    for k in range(1000):
        name = names[k % len(names)]
        records = frames(record_streams[name])
        body = bytearray(uvarint_bytes(len(records[0])) + records[0])  # the Header stays
        for rec in records[1:]:
            changed = bytearray(rec)
            for _ in range(rnd.randrange(3)):
                if changed:
                    changed[rnd.randrange(len(changed))] = rnd.randrange(256)
            body += uvarint_bytes(len(changed)) + changed
        path = tmp_path / f"{k}-{name.rsplit('/', 1)[1]}"
        path.write_bytes(gzip.compress(bytes(body)))
        snap, notes = export(path, config=config)
        assert len(notes) <= 1, notes
        for fam, series in record_families(snap).items():
            for labels in series:
                for i, value in enumerate(labels):
                    extra = i >= len(FAMILIES[fam].labels)
                    assert extra or _CLOSED_VALUE.fullmatch(value) or value in RECORDS, (
                        name, fam, labels)


def test_nan_and_infinite_numbers_in_files(tmp_path: Path) -> None:
    """A double that packets never give (NaN, ±inf) is counted and left out: it made a
    histogram's sum NaN and the backfill end in a traceback (found by bench/mutfuzz.py)."""
    udp = message_class("UDP")
    values = [float("nan"), float("inf"), -float("inf"), 7.5]
    records = [udp(Timestamp=10**18 + i, SrcPort=53, DstPort=5353, PayloadSize=10,
                   PayloadEntropy=v).SerializeToString() for i, v in enumerate(values)]
    path = ncap_file(tmp_path / "UDP.ncap.gz", "UDP", records)
    snap, notes = export(path)
    assert not notes
    assert snap.counters["nc_decoding_errors"] == {("ncap", "bad_number"): 3}
    hist = snap.histograms["nc_payload_entropy_bits_per_byte"][("udp",)]
    assert hist.sum == 7.5
    om = tmp_path / "x.om"
    r = net("export", "-read", str(path), "-exit", "-backfill", str(om), "-address",
            "127.0.0.1:0")
    assert r.returncode == 0, r.stderr
    assert 'nc_payload_entropy_bits_per_byte_sum{protocol="udp"} 7.5 ' in om.read_text()


def test_empty_records_are_passed_over_in_bulk(tmp_path: Path) -> None:
    """Zero-length records (no Timestamp: no real record) are the cheapest gzip bomb:
    20 MiB of zeros, a 20 KB file, were 20 million records parsed one by one (over two
    minutes). They are passed over by a byte search and counted, a few between real
    records as well as a long run."""
    tcp = message_class("TCP")
    real = [tcp(Timestamp=10**18 + i, SrcPort=80, DstPort=1234).SerializeToString()
            for i in range(3)]
    path = tmp_path / "TCP.ncap.gz"
    with gzip.open(path, "wb") as f:
        f.write(header_bytes("TCP", "x", False, 1))
        f.write(uvarint_bytes(len(real[0])) + real[0] + b"\0" * 5)
        f.write(uvarint_bytes(len(real[1])) + real[1])
        for _ in range(20):
            f.write(bytes(1 << 20))
        f.write(uvarint_bytes(len(real[2])) + real[2])
    assert path.stat().st_size < 64 << 10
    snap, notes = export(path)
    assert not notes
    assert snap.counters["nc_decoding_errors"] == {("ncap", "empty_record"): 5 + (20 << 20)}
    assert sum(snap.counters["nc_tcp_segments"].values()) == 3
    r = net("dump", "-read", str(path), "-csv")
    assert r.returncode == 1 and r.stdout.count("\n") == 4  # the header line and 3 records
    assert r.stderr == f"net dump: {path}: record(s) skipped: {5 + (20 << 20)} empty\n"
