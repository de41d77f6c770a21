"""`net export`: the real command serving real captures, scraped by a real Prometheus
(Debian's `prometheus`, started here on a loopback port) and checked with `promtool`."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpus import PCAPS, corpus_files
from helpers import free_port, get, net_cmd, prometheus, wait_http
from netcap.metrics.families import FAMILIES

pytestmark = pytest.mark.corpus  # every test here reads the public corpus (tests/corpus.py)

CAPTURE = PCAPS / "zeek_wikipedia.pcap"  # 136 packets: Ethernet, ARP, LLC, IPv4/6, TCP, UDP
CAPTURE_PACKETS = 136
# Skipped on a developer machine without Debian's prometheus; failed under CI, where `make
# test` installs it, so a missing install step fails there instead of hiding (conftest.py).
NEEDS_PROMETHEUS = pytest.mark.needs("prometheus", "promtool")


def samples(text: str) -> dict[str, float]:
    """'name{labels}' -> value, from the text exposition format."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


class Served:
    """A `net export` process serving on a free loopback port until stopped."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*net_cmd(), "export", "-address", f"127.0.0.1:{self.port}", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_http(self.url + "/-/healthy")

    def metrics(self) -> dict[str, float]:
        deadline = time.monotonic() + 20
        while True:  # the input is processed after the server starts: wait for the end
            m = samples(get(self.url + "/metrics")[2].decode())
            if m.get("nc_input_done") == 1 or time.monotonic() > deadline:
                return m
            time.sleep(0.1)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served("-read", str(CAPTURE))
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait()


def test_serves_metrics_and_stops_cleanly(served: Served) -> None:
    m = served.metrics()
    assert m["nc_packets_total"] == CAPTURE_PACKETS
    assert m['nc_audit_records_total{type="Ethernet"}'] == CAPTURE_PACKETS
    assert m['nc_ethernet_frames_total{ethertype="arp"}'] == 6
    assert sum(v for k, v in m.items() if k.startswith("nc_tcp_segments_total")) == 78
    assert m["nc_tcp_payload_bytes_count"] == 78
    assert "process_resident_memory_bytes" in m
    assert any(k.startswith("python_gc_objects_collected_total") for k in m)
    status, _, body = get(served.url + "/")
    assert status == 200 and b"/metrics" in body
    rc, err = served.stop()
    assert rc == 0 and "Traceback" not in err
    assert "136 packets" in err and len(err.strip().splitlines()) == 1


def test_openmetrics_and_gzip(served: Served) -> None:
    served.metrics()
    _, headers, body = get(served.url + "/metrics",
                           {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    _, headers, body = get(served.url + "/metrics", {"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip"
    assert b"nc_packets_total" in gzip.decompress(body)


def test_labels_are_bounded_and_declared(served: Served) -> None:
    m = served.metrics()
    names = {k.split("{")[0] for k in m if k.startswith("nc_")}
    declared = set()
    for f in FAMILIES.values():
        declared |= {f.exposed, f.name + "_info", f.name + "_bucket", f.name + "_count",
                     f.name + "_sum", f.name + "_created"}
    assert names <= declared
    for key in m:  # no address or port ever becomes a label value
        assert "10.0." not in key and "192.168." not in key and ":" not in key.split("{")[0]


@NEEDS_PROMETHEUS
def test_promtool_accepts_the_exposition(served: Served) -> None:
    served.metrics()
    body = get(served.url + "/metrics")[2]
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r


@pytest.mark.parametrize(("capture", "expect"), [
    (CAPTURE, "nc_dns_questions_total"),  # and mDNS
    (PCAPS / "dpkt_dns_icmp.pcap", "nc_dns_response_seconds_count"),
    (PCAPS / "zeek_dhcp.pcap", 'nc_dhcp_messages_total{message_type="inform"}'),
    (PCAPS / "zeek_ntp.pcap", 'nc_ntp_messages_total{mode="server",version="4"}'),
    (PCAPS / "zeek_http_pipelined-requests.pcap",
     'nc_http_requests_total{method="GET",status="200"}'),
    (PCAPS / "sv_ssh-hassh.pcap", 'nc_ssh_endpoints_total{kexinit="yes",side="server"'),
    (PCAPS / "ja3_ssl-chrome.pcap", 'nc_tls_hellos_total{hello="server",version="tls1.2"}'),
])
def test_capture_and_its_records_give_the_same_record_metrics(tmp_path: Path, capture: Path,
                                                              expect: str) -> None:
    r = subprocess.run([*net_cmd(), "capture", "-read", str(capture), "-out", str(tmp_path),
                        "-quiet"], capture_output=True, timeout=60)
    assert r.returncode == 0
    a, b = Served("-read", str(capture)), Served(str(tmp_path))  # `net export DIR`
    try:
        ma, mb = a.metrics(), b.metrics()
    finally:
        a.stop()
        b.stop()
    record_families = ("nc_audit_records", "nc_ethernet_frames", "nc_arp_packets",
                       "nc_ip_packets", "nc_tcp_segments", "nc_udp_datagrams",
                       "nc_icmp_messages", "nc_tcp_payload_bytes", "nc_udp_payload_bytes",
                       "nc_ip_packet_bytes", "nc_vlan_tags", "nc_dns_", "nc_ntp_",
                       "nc_connections_total", "nc_connection_",
                       "nc_dhcp_", "nc_http_requests", "nc_http_response_body", "nc_ssh_",
                       "nc_tls_hellos")
    pick = {k: v for k, v in ma.items() if k.startswith(record_families)}
    assert pick and pick == {k: v for k, v in mb.items() if k.startswith(record_families)}
    assert any(k.startswith(expect) and v > 0 for k, v in pick.items()), expect
    assert mb["nc_input_files_done_total"] == len(list(tmp_path.glob("*.ncap.gz")))


def test_exit_flag_and_bad_inputs(tmp_path: Path) -> None:
    port = free_port()
    r = subprocess.run([*net_cmd(), "export", "-read", str(CAPTURE), "-exit",
                        "-address", f"127.0.0.1:{port}"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "136 packets" in r.stderr
    bad = tmp_path / "x.pcap"
    bad.write_text("hello\n")
    r = subprocess.run([*net_cmd(), "export", "-read", str(bad), "-exit",
                        "-address", f"127.0.0.1:{port}"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    with socket.socket() as busy:  # a port in use: one clear line
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        r = subprocess.run([*net_cmd(), "export", "-read", str(CAPTURE), "-exit",
                            "-address", f"127.0.0.1:{taken}"], capture_output=True,
                           text=True, timeout=60)
    assert r.returncode == 2 and "cannot serve" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([*net_cmd(), "export"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


@NEEDS_PROMETHEUS
def test_real_prometheus_scrapes_the_exporter(served: Served, tmp_path: Path) -> None:
    served.metrics()
    with prometheus(tmp_path, served.port) as base:
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            q = urllib.parse.urlencode({"query": 'nc_packets_total{job="netcap"}'})
            data = json.loads(get(f"{base}/api/v1/query?{q}")[2])
            result = data["data"]["result"]
            if result:
                value = float(result[0]["value"][1])
                break
            time.sleep(0.5)
        assert value == CAPTURE_PACKETS
        query = 'sum(nc_protocols_total{job="netcap"}) by (protocol)'
        q = urllib.parse.urlencode({"query": query})
        result = json.loads(get(f"{base}/api/v1/query?{q}")[2])["data"]["result"]
        assert {r["metric"]["protocol"] for r in result} >= {"ethernet", "ipv4", "tcp", "udp"}


@NEEDS_PROMETHEUS
def test_backfill_blocks_answer_range_queries(tmp_path: Path) -> None:
    """-backfill writes OpenMetrics at packet time; promtool turns it into blocks; a real
    Prometheus on those blocks answers a range query over the capture's own time span
    with the counts the capture holds."""
    capture = PCAPS / "zeek_http_bro.org.pcap"  # 751 packets over 18 s of 2014-01-14
    om = tmp_path / "bro.om"
    port = free_port()
    r = subprocess.run([*net_cmd(), "export", "-read", str(capture), "-exit", "-backfill",
                        str(om), "-step", "2s", "-address", f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = om.read_text()
    assert text.endswith("# EOF\n")
    data = tmp_path / "data"
    r = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om),
                        str(data)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    with prometheus(tmp_path, storage=data) as base:
        start, end = 1389719040, 1389719062  # the capture's span, rounded out to steps
        q = urllib.parse.urlencode({"query": "nc_packets_total", "start": start, "end": end,
                                    "step": "2"})
        result = json.loads(get(f"{base}/api/v1/query_range?{q}")[2])["data"]["result"]
        values = [float(v) for _, v in result[0]["values"]]
        assert values == sorted(values) and values[-1] == 751  # cumulative, ends at all
        assert values[0] < 751  # the series starts inside the capture, not at its end
        q = urllib.parse.urlencode({"query": 'nc_audit_records_total{type="TCP"}',
                                    "time": end})
        result = json.loads(get(f"{base}/api/v1/query?{q}")[2])["data"]["result"]
        assert float(result[0]["value"][1]) == 751


def test_backfill_with_out_writes_the_records_capture_writes(tmp_path: Path) -> None:
    """-out combines with -backfill: the files hold what `net capture` writes, and the
    summary counts the audit records."""
    from netcap.sources.ncap import NcapReader

    capture = PCAPS / "zeek_http_bro.org.pcap"
    r = subprocess.run([*net_cmd(), "capture", "-read", str(capture), "-out",
                        str(tmp_path / "cap"), "-quiet"], capture_output=True, timeout=60)
    assert r.returncode == 0
    r = subprocess.run([*net_cmd(), "export", "-read", str(capture), "-exit", "-backfill",
                        str(tmp_path / "x.om"), "-out", str(tmp_path / "exp"), "-address",
                        f"127.0.0.1:{free_port()}"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr

    def records(d: Path) -> dict[str, list[bytes]]:
        out = {}
        for f in sorted(d.glob("*.ncap.gz")):
            with NcapReader(str(f)) as rd:
                out[f.name] = [m.SerializeToString() for m in rd]
        return out

    cap, exp = records(tmp_path / "cap"), records(tmp_path / "exp")
    assert cap and cap == exp
    total = sum(len(v) for v in cap.values())
    assert f"751 packets, {total} audit records" in r.stderr


def test_replay_paces_by_packet_time() -> None:
    """bro.org.pcap spans 18.2 s of packet time: at -speed 6 it takes about 3 s, and a
    scrape in the middle sees part of it."""
    start = time.monotonic()
    s = Served("-read", str(PCAPS / "zeek_http_bro.org.pcap"), "-replay", "-speed", "6")
    try:
        time.sleep(1.0)
        early = samples(get(s.url + "/metrics")[2].decode())["nc_packets_total"]
        final = s.metrics()
        took = time.monotonic() - start
    finally:
        rc, err = s.stop()
    assert 0 < early < 751 and final["nc_packets_total"] == 751
    assert 2.5 < took < 20, took
    assert rc == 0 and "Traceback" not in err


def test_opt_in_labels_budget_and_expiry() -> None:
    """Opt-in address labels appear only when asked for; past the series budget new label
    values fold into `other` and are counted; idle series expire."""
    from netcap.decode.batch import decode_batch
    from netcap.metrics.state import LabelConfig, MetricsState
    from netcap.sources.capture import open_capture

    def count(config: LabelConfig) -> MetricsState:
        state = MetricsState(config)
        for batch in open_capture(str(CAPTURE)):
            state.add_batch(decode_batch(batch))
        return state

    plain = count(LabelConfig()).snapshot().counters["nc_tcp_segments"]
    assert all(len(k) == 2 for k in plain)  # flags, service: no addresses by default
    extra = {"nc_tcp_segments": ("src_ip", "dst_port")}
    wide = count(LabelConfig(extra, budget=10_000)).snapshot().counters
    tcp = wide["nc_tcp_segments"]
    assert len(tcp) > len(plain) and sum(tcp.values()) == sum(plain.values()) == 78
    assert ("ack", "http", "141.142.220.118", "80") in tcp
    assert "nc_metric_label_overflow" not in wide
    tight = count(LabelConfig(extra, budget=5)).snapshot().counters
    tcp = tight["nc_tcp_segments"]
    # At most the budget, plus one `other` series per combination of the bounded labels
    # (which folding keeps); nothing lost, only folded.
    assert len(tcp) <= 5 + len(plain) and sum(tcp.values()) == 78
    assert any(k[2:] == ("other", "other") for k in tcp)
    assert tight["nc_metric_label_overflow"][("nc_tcp_segments",)] > 0
    state = count(LabelConfig(extra, expiry_seconds=0.05))
    time.sleep(0.1)
    assert "nc_tcp_segments" not in state.snapshot().counters or not any(
        len(k) == 4 for k in state.snapshot().counters["nc_tcp_segments"])


@pytest.mark.parametrize(("everything", "stages"), [(False, True), (True, True),
                                                    (False, False)])
def test_metrics_only_decoding_counts_the_same(everything: bool, stages: bool) -> None:
    """Decoding for metrics alone builds only the columns the metrics read: on every
    corpus capture, with no opt-in labels and with all of them (and entropy), and with
    the later stages' columns left out (their record types excluded), the counts equal
    those from complete records (so the column lists cannot drift)."""
    from netcap.decode.batch import decode_batch
    from netcap.metrics.state import LabelConfig, MetricsState
    from netcap.pipeline import counting_columns
    from netcap.records.derive import add_payload_columns
    from netcap.sinks.ncap import EncodeOptions
    from netcap.sources.capture import CaptureError, open_capture

    extra = {f.name: f.optional for f in FAMILIES.values() if f.optional}
    config = LabelConfig(extra if everything else {}, budget=100_000)
    # Excluding these skips flows, the datagram analyzers and the stream stage.
    exclude = frozenset() if stages else frozenset(
        {"Connection", "DNS", "NTP", "DHCPv4", "TLSClientHello", "TLSServerHello",
         "HTTP", "SSH"})
    columns = counting_columns(config, EncodeOptions(entropy=everything, exclude=exclude))
    if not stages:
        assert "SrcIP" not in columns["TCP"] and "SrcIP" not in columns["UDP"]
    full, lean = MetricsState(config), MetricsState(config)
    packets = 0
    for path in (PCAPS / name for name in corpus_files()):
        try:
            for batch in open_capture(str(path), batch_packets=512):
                for state, cols in ((full, None), (lean, columns)):
                    d = decode_batch(batch, columns=cols, analyze=stages)
                    if everything:
                        for table in d.tables.values():
                            add_payload_columns(table, batch.data, False, True)
                    state.add_batch(d)
                packets += len(batch)
        except CaptureError:
            continue
    a, b = full.snapshot(), lean.snapshot()
    assert packets > 3000  # the whole copied corpus
    clock = ("nc_uptime_seconds", "nc_processing_rate_packets_per_second")  # wall time
    assert a.counters == b.counters
    assert {k: v for k, v in a.gauges.items() if k not in clock} == {
        k: v for k, v in b.gauges.items() if k not in clock}
    assert {k: {lk: (h.buckets, h.count, h.sum) for lk, h in v.items()}
            for k, v in a.histograms.items()} == {
        k: {lk: (h.buckets, h.count, h.sum) for lk, h in v.items()}
        for k, v in b.histograms.items()}
    if everything:
        assert any(len(k) == 6 for k in b.counters["nc_tcp_segments"])  # labels were on
        assert b.histograms["nc_payload_entropy_bits_per_byte"]


def test_whole_corpus_default_series_count(tmp_path: Path) -> None:
    """Default labels are bounded: every corpus capture at once stays well under 2,000."""

    from netcap.export import ExportOptions, run_export
    from netcap.metrics.collector import Exposition
    from netcap.metrics.state import MetricsState

    good = [str(PCAPS / n) for n in corpus_files() if "invalid" not in n
            and "too-long" not in n]
    state = MetricsState()
    run_export(ExportOptions(inputs=tuple(good), workers=1), state)
    text = Exposition(state).render("")[0].decode()
    series = [ln for ln in text.splitlines() if ln.startswith("nc_")]
    assert 100 < len(series) < 2000, len(series)


def test_labels_flag_serves_addresses() -> None:
    s = Served("-read", str(CAPTURE), "-labels", "nc_udp_datagrams=dst_ip")
    try:
        m = s.metrics()
    finally:
        s.stop()
    assert m['nc_udp_datagrams_total{dst_ip="141.142.2.2",service="dns"}'] == 14
    r = subprocess.run([*net_cmd(), "export", "-read", str(CAPTURE), "-exit", "-labels",
                        "nc_udp_datagrams=password"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_entropy_histogram_only_with_flag() -> None:
    capture = PCAPS / "zeek_http_bro.org.pcap"
    plain = Served("-read", str(capture))
    with_entropy = Served("-read", str(capture), "-entropy")
    try:
        a, b = plain.metrics(), with_entropy.metrics()
    finally:
        plain.stop()
        with_entropy.stop()
    assert not any(k.startswith("nc_payload_entropy") for k in a)
    nonempty = b['nc_tcp_payload_bytes_count'] - b['nc_tcp_payload_bytes_bucket{le="0.0"}']
    assert b['nc_payload_entropy_bits_per_byte_count{protocol="tcp"}'] == nonempty == 467
    assert 0 < b['nc_payload_entropy_bits_per_byte_sum{protocol="tcp"}'] / nonempty < 8


def test_records_backfill_and_replay_match_the_capture(tmp_path: Path) -> None:
    """A directory of audit records, replayed and backfilled (its files interleaved in
    timestamp order), gives the same record metrics at the same packet times as the
    capture they came from."""
    capture = PCAPS / "zeek_http_bro.org.pcap"
    records = tmp_path / "records"
    r = subprocess.run([*net_cmd(), "capture", "-read", str(capture), "-out", str(records),
                        "-quiet"], capture_output=True, timeout=60)
    assert r.returncode == 0

    def backfill(source: str, *more: str) -> list[str]:
        om = tmp_path / f"{len(list(tmp_path.iterdir()))}.om"
        r = subprocess.run([*net_cmd(), "export", source, "-exit", "-backfill", str(om),
                            "-step", "2s", "-address", "127.0.0.1:0", *more],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        families = ("nc_audit_records_total", "nc_tcp_segments_total",
                    "nc_ip_packets_total", "nc_ethernet_frames_total")
        return [ln for ln in om.read_text().splitlines() if ln.startswith(families)]

    from_capture = backfill(str(capture))
    start = time.monotonic()
    from_records = backfill(str(records), "-replay", "-speed", "20")
    assert time.monotonic() - start > 0.8  # 18.2 s of packet time at 20x

    def split(lines: list[str]) -> tuple[list[str], list[str]]:
        # Connections count when they end: in the capture when the table lets them go
        # (linger, timeouts, end of input), from records at their last packet; HTTP
        # transactions when their response ends, from records at the request. So only
        # their final totals are compared.
        late = ('type="Connection"', 'type="HTTP"')
        staged = [[ln for ln in lines if kind in ln] for kind in late]
        rest = [ln for ln in lines if not any(kind in ln for kind in late)]
        return rest, [s[-1].split()[1] for s in staged]

    assert from_capture and split(from_records) == split(from_capture)
    last_tcp = [ln for ln in from_records if ln.startswith('nc_audit_records_total{type="TCP"}')]
    assert last_tcp[-1].split()[1] == "751"


def test_application_metrics_and_text_labels() -> None:
    """HTTP, SSH and TLS metrics from the real exporter: values from the corpus captures
    (zeek's pipelined HTTP: 5 GETs answered 200; suricata's HASSH pair), text labels
    (host, user agent, content type, SNI, JA3/JA4, HASSH) only when asked for and under
    the series budget."""
    http = Served("-read", str(PCAPS / "zeek_http_pipelined-requests.pcap"))
    http_labels = Served("-read", str(PCAPS / "zeek_http_pipelined-requests.pcap"),
                         "-labels", "nc_http_requests=host,content_type",
                         "-series-budget", "2")
    ssh = Served("-read", str(PCAPS / "sv_ssh-hassh.pcap"), "-labels",
                 "nc_ssh_endpoints=hassh")
    tls = Served("-read", str(PCAPS / "ja3_ssl-chrome.pcap"), "-labels",
                 "nc_tls_hellos=sni,ja3,ja4")
    try:
        m, ml, ms, mt = http.metrics(), http_labels.metrics(), ssh.metrics(), tls.metrics()
    finally:
        for s in (http, http_labels, ssh, tls):
            s.stop()
    assert m['nc_http_requests_total{method="GET",status="200"}'] == 5
    assert m["nc_http_response_seconds_count"] == 5 and m["nc_http_response_seconds_sum"] > 0
    assert m["nc_http_response_body_bytes_count"] == 5
    assert not any("host=" in k for k in m)
    # 5 requests: CSS, JavaScript, then 3 PNGs; a budget of 2 series folds the PNGs
    labelled = {k: v for k, v in ml.items() if k.startswith("nc_http_requests_total")}
    assert sum(labelled.values()) == 5 and len(labelled) == 3
    assert labelled[('nc_http_requests_total{content_type="text/css",host="www.mozilla.org",'
                     'method="GET",status="200"}')] == 1
    assert labelled[('nc_http_requests_total{content_type="other",host="other",'
                     'method="GET",status="200"}')] == 3
    assert ml['nc_metric_label_overflow_total{metric="nc_http_requests"}'] > 0
    assert ms[('nc_ssh_endpoints_total{hassh="2dd6531c7e89d3c925db9214711be76a",'
               'kexinit="yes",side="client",version="2.0"}')] == 1
    assert ms[('nc_ssh_endpoints_total{hassh="6832f1ce43d4397c2c0a3e2f8c94334e",'
               'kexinit="yes",side="server",version="2.0"}')] == 1
    client = [k for k in mt if k.startswith('nc_tls_hellos_total{hello="client"')]
    assert client and 'sni="apis.google.com"' in client[0] and 'ja4="t' in client[0]
    assert any(k.startswith('nc_tls_hellos_total{hello="server",ja3="') for k in mt)


def test_backfill_counts_stream_records_in_their_own_step(tmp_path: Path) -> None:
    """Backfill samples stream-analyzer records at the step of packet time they complete
    in (not a step later): each TLS hello of FoxIO's capture is in the first sample
    after its packet time."""
    capture = PCAPS / "ja4_tls-handshake.pcapng"
    out = tmp_path / "records"
    om = tmp_path / "tls.om"
    r = subprocess.run([*net_cmd(), "export", "-read", str(capture), "-exit", "-backfill",
                        str(om), "-step", "1s", "-out", str(out), "-address", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    from netcap.sources.ncap import NcapReader

    hellos = sorted(m.Timestamp for m in NcapReader(str(out / "TLSClientHello.ncap.gz")))
    samples = [(int(ln.split()[2].split(".")[0]), float(ln.split()[1]))
               for ln in om.read_text().splitlines()
               if ln.startswith('nc_audit_records_total{type="TLSClientHello"}')]
    assert len(hellos) > 50 and samples
    for t, count in samples:  # a sample at second t counts what happened before t
        assert count == sum(h < t * 10**9 for h in hellos), (t, count)
