"""The metrics endpoint under load and attack, and secured: what it renders (exactly
client_python's text, only what changed), how many connections and threads it holds,
methods and addresses, and `-web-config` (TLS, mutual TLS, basic auth) checked with
curl and scraped by a real Prometheus over HTTPS. Certificates are made here with the
openssl command."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import numpy as np
import pytest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString

from helpers import free_port, get, net_cmd, prometheus, wait_http
from netcap.decode.batch import decode_batch
from netcap.exporter.server import Exporter, parse_address
from netcap.exporter.webconfig import load_web_config
from netcap.metrics.app import Transactions, transaction_keys
from netcap.metrics.collector import Exposition
from netcap.metrics.families import FAMILIES, Kind
from netcap.metrics.state import LabelConfig, MetricsState, Snapshot
from netcap.records.table import Ragged
from netcap.sources.capture import open_capture

CAPTURE = Path(__file__).parent / "data" / "sample.pcap"  # the project's own recording
CAPTURE_PACKETS = 194
CAPTURE_TCP = 153  # TCP segments among them
NEEDS_PROMETHEUS = pytest.mark.skipif(
    shutil.which("prometheus") is None and not os.environ.get("CI"),
    reason="Debian package prometheus not installed")
PASSWORD = "s3cret"


def fed(config: LabelConfig | None = None, batch_packets: int = 8192) -> MetricsState:
    state = MetricsState(config)
    for batch in open_capture(str(CAPTURE), batch_packets=batch_packets):
        state.add_batch(decode_batch(batch))
    return state


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    ex = Exporter(Exposition(fed()), "127.0.0.1", 0, workers=4, backlog=4,
                  idle_timeout=0.5, deadline=2.0)
    ex.start()
    yield ex
    ex.stop()


def request(port: int, method: str, path: str, host: str = "127.0.0.1"
            ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


# -- what is counted and rendered ----------------------------------------------------


def test_dns_transactions_pair_in_order() -> None:
    """Transactions.pair, message by message: a response takes the request waiting under
    its key; a repeated request restarts the clock; a response without a request, or
    earlier than it, is an orphan; past the limit the oldest request leaves, and so does
    one older than the timeout when a later request comes."""
    t = Transactions(limit=2, timeout_ns=100)
    lat, orphans = t.pair([False, False, True, True, True],
                          ["a", "a", "a", "a", "b"], [10, 20, 50, 60, 70])
    assert lat == [30 / 1e9] and orphans == [("a", 60), ("b", 70)] and not t.pending
    lat, orphans = t.pair([False, True], ["c", "c"], [100, 90])
    assert lat == [] and orphans == [("c", 90)]
    t.pair([False, False, False], ["x", "y", "z"], [200, 201, 202])  # limit 2: x leaves
    assert list(t.pending) == ["y", "z"]
    t.pair([False], ["w"], [302])  # y (201) is 101 old: expired; z (202) is 100 old: kept
    assert list(t.pending) == ["z", "w"]


def test_dns_transaction_keys() -> None:
    """A response's key is its request's (client and server sides swapped back); an
    IPv4 and an IPv6 address never make the same key, nor do addresses and ports that
    would run together; absent columns key as empty."""
    req = Ragged.from_list([bytes([10, 0, 0, 1]), bytes(16), bytes([1, 2, 3, 4])])
    srv = Ragged.from_list([bytes([10, 0, 0, 2]), bytes(12) + bytes([1, 2, 3, 4]),
                            bytes([1, 2, 3, 4])])
    ports, ids = np.array([1000, 53, 5]), np.array([7, 7, 7])
    cols = {"SrcIP": req, "DstIP": srv, "SrcPort": ports, "DstPort": np.full(3, 53),
            "ID": ids}
    back = {"SrcIP": srv, "DstIP": req, "SrcPort": np.full(3, 53), "DstPort": ports,
            "ID": ids}
    keys = transaction_keys(np.zeros(3, np.bool_), cols, 3, "ID")
    assert transaction_keys(np.ones(3, np.bool_), back, 3, "ID") == keys
    assert len(set(keys)) == 3
    v4 = Ragged.from_list([bytes([1, 2, 3, 4])])
    v6 = Ragged.from_list([bytes([1, 2, 3, 4]) + bytes(12)])
    one = {"SrcIP": v4, "DstIP": v4, "SrcPort": [1], "DstPort": [2], "ID": [3]}
    assert (transaction_keys(np.zeros(1, np.bool_), one, 1, "ID")
            != transaction_keys(np.zeros(1, np.bool_), {**one, "SrcIP": v6}, 1, "ID"))
    empty = transaction_keys(np.zeros(2, np.bool_), {}, 2, "ID")
    assert len(empty) == 2 and empty[0] == empty[1]


def test_tls_hello_versions() -> None:
    """nc_tls_hellos: a ClientHello counts as the highest of its supported_versions
    without GREASE (0x?A?A), else as its legacy version (no list, an empty one, or GREASE
    only); a ServerHello as its supported_version, else its version; numbers not named
    are "other"."""
    state = MetricsState()
    supported = np.empty(6, object)
    supported[:] = [[0x0A0A, 0x0304, 0x0303], [], None, [0x2A2A, 0x1A1A],
                    [0x0301, 0x0302], [0x0300, 0x7F1C]]
    state.add_records("TLSClientHello", {
        "SupportedVersions": supported,
        "HandshakeVersion": np.array([0x0303, 0x0302, 0x0301, 0x0303, 0x0303, 0x0303])}, 6)
    state.add_records("TLSServerHello", {"SupportedVersion": np.array([0x0304, 0, 0]),
                                         "Version": np.array([0x0303, 0x0303, 0x0200])}, 3)
    hellos = state.snapshot().counters["nc_tls_hellos"]
    assert hellos == {("client", "tls1.3"): 1, ("client", "tls1.1"): 2,
                      ("client", "tls1.0"): 1, ("client", "tls1.2"): 1,
                      ("client", "other"): 1, ("server", "tls1.3"): 1,
                      ("server", "tls1.2"): 1, ("server", "other"): 1}


def test_http_request_labels() -> None:
    """nc_http_requests: the method upper-cased (as sent otherwise; any not listed, or
    not text, is "other"), the status code (none: no response; outside 100-599: other)."""
    state = MetricsState()
    methods = [b"GET", b"get", b"PROPFIND", b"\xff", b"", b"POST"]
    state.add_records("HTTP", {"Method": Ragged.from_list(methods),
                               "StatusCode": np.array([200, 404, 207, 0, 700, 200])}, 6)
    assert state.snapshot().counters["nc_http_requests"] == {
        ("GET", "200"): 1, ("GET", "404"): 1, ("other", "207"): 1, ("other", "none"): 1,
        ("other", "other"): 1, ("POST", "200"): 1}


def test_label_overflow_counts_each_folded_increment_once() -> None:
    """Decoding workers count each batch in a state of their own and the main state
    merges it (pipeline.py): a value the worker already folded into `other` is not
    counted as folded again when merged (it was: 2,063,536 reported for 1,999,000)."""
    config = LabelConfig({"nc_tcp_segments": ("src_ip", "dst_port")}, budget=5)
    for merged in (True, False):
        if merged:
            main = MetricsState(config)
            for batch in open_capture(str(CAPTURE), batch_packets=16):
                part = MetricsState(config, partial=True)
                part.add_batch(decode_batch(batch))
                main.merge(part.delta())
        else:
            main = fed(config, batch_packets=16)
        counters = main.snapshot().counters
        tcp = counters["nc_tcp_segments"]
        folded = sum(v for k, v in tcp.items() if k[2:] == ("other", "other"))
        assert sum(tcp.values()) == CAPTURE_TCP and folded > 0
        assert counters["nc_metric_label_overflow"][("nc_tcp_segments",)] == folded


def _oracle(snap: Snapshot, config: LabelConfig) -> list[Metric]:
    """The same snapshot as client_python's own metric families (series in the same
    order), for its encoders to render."""
    from netcap import __version__

    out: list[Metric] = []
    for fam in FAMILIES.values():
        names = list(config.labels_of(fam.name))
        if fam.kind is Kind.INFO:
            import platform
            info = InfoMetricFamily(fam.name, fam.doc, labels=[])
            info.add_metric([], {"version": __version__, "python": platform.python_version()})
            out.append(info)
        elif fam.kind is Kind.HISTOGRAM:
            h = HistogramMetricFamily(fam.name, fam.doc, labels=names)
            for key, hist in snap.histograms.get(fam.name, {}).items():
                cum, buckets = 0.0, []
                for le, n in zip(hist.bounds, hist.buckets, strict=True):
                    cum += n
                    buckets.append((floatToGoString(le), cum))
                buckets.append(("+Inf", hist.count))
                h.add_metric(list(key), buckets, hist.sum)
            out.append(h)
        else:
            cls = CounterMetricFamily if fam.kind is Kind.COUNTER else GaugeMetricFamily
            m = cls(fam.name, fam.doc, labels=names)
            store = snap.counters if fam.kind is Kind.COUNTER else snap.gauges
            for key, v in store.get(fam.name, {}).items():
                m.add_metric(list(key), v)
            out.append(m)
    return out


class _Families:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


def _no_uptime(text: str) -> str:
    return "".join(ln for ln in text.splitlines(keepends=True)
                   if not ln.startswith("nc_uptime_seconds "))


def test_exposition_is_client_pythons_text_and_bounds_are_exact() -> None:
    """Both formats, byte for byte what client_python's encoders write for the same
    values, with label values that need escaping (from HTTP User-Agents) and histogram
    bounds in the exact shortest form (le="1.048576e+06", not the rounded
    "1.04858e+06")."""
    config = LabelConfig({"nc_http_requests": ("user_agent",),
                          "nc_udp_datagrams": ("dst_ip",)}, budget=10_000)
    state = fed(config)
    agents = ['curl/8 "quoted"', "back\\slash", "new\nline", "ünïcode ☃", "", "other"]
    n = len(agents)
    state.add_records("HTTP", {"Method": ["GET"] * n, "StatusCode": [200] * n,
                               "FirstByteAfter": [1_000_000] * n,
                               "ResContentLength": [1_048_576] * n, "UserAgent": agents}, n)
    ex = Exposition(state)
    expected = _Families(_oracle(state.snapshot(), config))
    text = generate_latest(expected).decode()  # type: ignore[arg-type]
    om = openmetrics.generate_latest(expected).decode().removesuffix("# EOF\n")
    assert _no_uptime(ex.netcap_text(False)) == _no_uptime(text)
    assert _no_uptime(ex.netcap_text(True)) == _no_uptime(om)
    assert 'user_agent="curl/8 \\"quoted\\""' in text and 'user_agent="new\\nline"' in text
    assert 'nc_http_response_body_bytes_bucket{le="1.048576e+06"} 6.0' in text
    assert "e+06\"" in text and '1.04858e+06"' not in text
    body, ctype = ex.render("")
    assert ctype.startswith("text/plain") and b"process_cpu_seconds_total" in body
    body, ctype = ex.render("application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text")
    assert body.endswith(b"\n# EOF\n") and body.count(b"# EOF") == 1


def test_backfill_spells_bounds_as_the_endpoint(tmp_path: Path) -> None:
    """The backfilled series are the endpoint's series: same `le` spelling."""
    out = tmp_path / "b.om"
    r = subprocess.run([*net_cmd(), "export", "-read", str(CAPTURE), "-exit", "-quiet",
                        "-address", f"127.0.0.1:{free_port()}", "-backfill", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert 'nc_connection_bytes_bucket{le="1.048576e+06"}' in text
    assert 'nc_tcp_payload_bytes_bucket{le="64.0"}' in text
    assert '1.04858e+06"' not in text


def test_a_render_formats_only_what_changed() -> None:
    state = fed()
    ex = Exposition(state)
    ex.netcap_text()
    first = ex.lines_formatted
    assert first > 50
    ex.netcap_text()
    ex.netcap_text(True)
    assert ex.lines_formatted == first + 2  # the uptime gauge, twice; nothing else
    state.add_stage_time("decode", 0.5)
    text = ex.netcap_text()
    assert ex.lines_formatted == first + 4  # that series and the uptime
    assert 'nc_stage_seconds_total{stage="decode"} 0.5' in text


def test_scrapes_do_not_multiply_renders(exporter: Exporter) -> None:
    """Within `cache_seconds` every scrape gets the same render; past it, a render of an
    unchanged state formats nothing but the uptime line."""
    exporter.cache_seconds = 3600
    bodies = {get(f"http://127.0.0.1:{exporter.port}/metrics")[2] for _ in range(30)}
    assert exporter.renders == 1 and len(bodies) == 1
    exporter.cache_seconds = 0
    lines = exporter.exposition.lines_formatted
    for _ in range(30):
        get(f"http://127.0.0.1:{exporter.port}/metrics")
    assert exporter.renders == 31
    assert exporter.exposition.lines_formatted == lines + 30


# -- HTTP: methods, connections, addresses --------------------------------------------


def test_methods(exporter: Exporter) -> None:
    for method, path in (("POST", "/metrics"), ("PUT", "/"), ("DELETE", "/-/healthy")):
        status, headers, _ = request(exporter.port, method, path)
        assert status == 405 and headers["Allow"] == "GET, HEAD", (method, path)
    status, headers, body = request(exporter.port, "HEAD", "/metrics")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    status, _, body = request(exporter.port, "GET", "/metrics")
    assert status == 200 and f"nc_packets_total {CAPTURE_PACKETS}.0".encode() in body
    assert request(exporter.port, "GET", "/nothing")[0] == 404


def test_idle_and_excess_connections_are_bounded() -> None:
    """100 connections that send nothing: no thread per connection (4 workers serve, 4
    wait, the rest are closed at once), each idle one is closed after the idle
    timeout, and the endpoint answers again afterwards."""
    exporter = Exporter(Exposition(fed()), "127.0.0.1", 0, workers=4, backlog=4,
                        idle_timeout=2.0, deadline=5.0)
    exporter.start()
    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", exporter.port)) for _ in range(100)]
    try:
        deadline = time.monotonic() + 10
        while exporter.refused < 92 and time.monotonic() < deadline:
            time.sleep(0.05)
        # 92 unless the machine was so slow that an idle timeout freed a worker
        # while the 100 connections were being made.
        assert 80 <= exporter.refused <= 92
        assert threading.active_count() == before
        for s in socks:  # every one is closed by the server (empty read or reset)
            s.settimeout(10)
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(100) == b""
        assert request(exporter.port, "GET", "/-/healthy")[0] == 200
    finally:
        for s in socks:
            s.close()
        exporter.stop()


def test_stop_does_not_wait_for_idle_clients() -> None:
    """Every worker busy with an idle client and the queue full: stop() still returns
    at once (well before the 30 s idle timeout) and closes them all."""
    ex = Exporter(Exposition(MetricsState()), "127.0.0.1", 0, workers=2, backlog=2,
                  idle_timeout=30, deadline=60)
    ex.start()
    socks = [socket.create_connection(("127.0.0.1", ex.port)) for _ in range(4)]
    try:
        time.sleep(0.3)  # accepted: two served, two waiting
        stopper = threading.Thread(target=ex.stop)
        stopper.start()
        stopper.join(timeout=10)
        assert not stopper.is_alive()
        for s in socks:
            s.settimeout(10)
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(100) == b""
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("when", ["never started", "just started", "serving"])
def test_stop_ends_the_serving_loop(when: str) -> None:
    """stop() wakes the serving loop through its pipe and returns once the loop has
    ended, whether it had started, was starting or had served a scrape; the port is
    closed after it."""
    ex = Exporter(Exposition(MetricsState()), "127.0.0.1", 0)
    if when != "never started":
        ex.start()
    if when == "serving":
        assert request(ex.port, "GET", "/-/healthy")[0] == 200
    stopper = threading.Thread(target=ex.stop)
    stopper.start()
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert not ex._thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ex.port), timeout=5).close()


def test_a_trickling_client_is_cut_at_the_deadline(exporter: Exporter) -> None:
    """A byte every 0.2 s never trips the idle timeout (0.5 s), but the connection is
    shut down once it is `deadline` (2 s) old."""
    s = socket.create_connection(("127.0.0.1", exporter.port))
    closed = False
    try:
        for b in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100:  # at most 25 s
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            s.setblocking(False)
            try:
                if s.recv(100) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            finally:
                s.setblocking(True)
    finally:
        s.close()
    assert closed


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:7777") == ("127.0.0.1", 7777)
    assert parse_address(":7777") == ("", 7777)
    assert parse_address("[::1]:7777") == ("::1", 7777)
    assert parse_address("[::]:0") == ("::", 0)
    assert parse_address("localhost:80") == ("localhost", 80)
    for bad in ("7777", "::1:7777", "[x]:1", "h:99999", "h:"):
        with pytest.raises(ValueError):
            parse_address(bad)


class Net:
    """A `net export` process; stopped by the caller."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*net_cmd(), "export", "-read", str(CAPTURE), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@pytest.mark.parametrize("address", ["[::1]", "[::]", ""])
def test_ipv6_and_all_interfaces(address: str) -> None:
    """`[::1]:PORT` serves on IPv6 loopback; `[::]:PORT` and `:PORT` (every interface,
    as the Go tool reads it) on IPv6 and IPv4 both, with a warning, since anyone who
    can reach the machine can read the metrics."""
    port = free_port()
    net = Net("-address", f"{address}:{port}")
    try:
        wait_http(f"http://[::1]:{port}/-/healthy")
        deadline = time.monotonic() + 30
        while True:  # stopped once the input is done, so the run is not "interrupted"
            status, _, body = get(f"http://[::1]:{port}/metrics")
            if b"\nnc_input_done 1.0" in body or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200 and b"nc_packets_total" in body
        if address != "[::1]":
            assert get(f"http://127.0.0.1:{port}/-/healthy")[0] == 200
    finally:
        err = net.stop()
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert "Traceback" not in err
    if address == "[::1]":
        assert not warnings and f"http://[::1]:{port}/metrics" in err
    else:
        assert len(warnings) == 1 and "without TLS or authentication" in warnings[0]


def test_loopback_has_no_warning() -> None:
    r = subprocess.run([*net_cmd(), "export", "-read", str(CAPTURE), "-exit",
                        "-address", f"127.0.0.1:{free_port()}"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "warning" not in r.stderr


# -- -web-config: TLS, mutual TLS, basic auth -----------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1/::1/localhost and a client
    certificate, signed by it; and a password hash."""
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=netcap test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=netcap test {name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=d)
    (d / "hash").write_text(bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode())
    return d


def web_config(pki: Path, tmp: Path, *, users: bool = True, mtls: bool = False,
               extra: str = "") -> Path:
    """A web-config file beside copies of the certificates (relative paths, as
    exporter-toolkit resolves them: from the file's directory)."""
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(pki / name, tmp / name)
    text = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    if mtls:
        text += "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
    text += "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
    if users:
        text += f"basic_auth_users:\n  prometheus: '{(pki / 'hash').read_text()}'\n"
    path = tmp / "web.yml"
    path.write_text(text + extra)
    return path


def curl(url: str, pki: Path, *args: str) -> tuple[int, str, str]:
    """(curl's exit status, the HTTP status or 000, headers and body)."""
    r = subprocess.run(["curl", "-sS", "-m", "20", "--cacert", str(pki / "ca.crt"), "-D", "-",
                        "-w", "\n%{http_code}", *args, url], capture_output=True, text=True,
                       timeout=60)
    out, _, code = r.stdout.rpartition("\n")
    return r.returncode, code, out


@pytest.fixture
def secured(pki: Path, tmp_path: Path) -> Iterator[tuple[int, Net]]:
    port = free_port()
    net = Net("-address", f"127.0.0.1:{port}", "-web-config",
              str(web_config(pki, tmp_path)))
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    deadline = time.monotonic() + 20
    while True:  # up once it answers (401: the TLS side works)
        try:
            http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5).request(
                "GET", "/-/healthy")
            break
        except OSError:
            if time.monotonic() > deadline or net.proc.poll() is not None:
                raise AssertionError(net.stop()) from None
            time.sleep(0.1)
    yield port, net
    net.stop()


def test_tls_and_basic_auth_with_curl(pki: Path, secured: tuple[int, Net]) -> None:
    port, net = secured
    url = f"https://127.0.0.1:{port}/metrics"
    rc, code, out = curl(url, pki)
    assert rc == 0 and code == "401", out
    assert "www-authenticate: basic" in out.lower() and "x-frame-options: deny" in out.lower()
    assert curl(url, pki, "-u", "prometheus:wrong")[1] == "401"
    assert curl(url, pki, "-u", f"nobody:{PASSWORD}")[1] == "401"
    rc, code, out = curl(url, pki, "-u", f"prometheus:{PASSWORD}")
    assert code == "200" and "nc_packets_total" in out
    assert "x-frame-options: deny" in out.lower()
    # Plain HTTP to the TLS port: no metrics, a 400 saying why.
    rc, code, out = curl(f"http://127.0.0.1:{port}/metrics", pki, "-u",
                         f"prometheus:{PASSWORD}")
    assert code == "400" and "nc_packets" not in out and "HTTPS" in out
    assert "warning" not in net.stop()


@NEEDS_PROMETHEUS
def test_real_prometheus_scrapes_over_https_with_basic_auth(
        pki: Path, secured: tuple[int, Net], tmp_path: Path) -> None:
    port, _ = secured
    settings = (f"    scheme: https\n    tls_config:\n      ca_file: {pki / 'ca.crt'}\n"
                f"    basic_auth:\n      username: prometheus\n      password: {PASSWORD}\n")
    with prometheus(tmp_path, port, scrape_settings=settings) as base:
        deadline = time.monotonic() + 60
        up = packets = None
        while time.monotonic() < deadline and (up != 1 or packets != CAPTURE_PACKETS):
            time.sleep(0.5)
            for query in ('up{job="netcap"}', 'nc_packets_total{job="netcap"}'):
                q = urllib.parse.urlencode({"query": query})
                result = json.loads(get(f"{base}/api/v1/query?{q}")[2])["data"]["result"]
                value = float(result[0]["value"][1]) if result else None
                if query.startswith("up"):
                    up = value
                else:
                    packets = value
        assert up == 1 and packets == CAPTURE_PACKETS


def test_mutual_tls(pki: Path, tmp_path: Path) -> None:
    port = free_port()
    net = Net("-address", f"127.0.0.1:{port}", "-web-config",
              str(web_config(pki, tmp_path, users=False, mtls=True)))
    url = f"https://127.0.0.1:{port}/metrics"
    cert = ("--cert", str(pki / "client.crt"), "--key", str(pki / "client.key"))
    try:
        deadline = time.monotonic() + 20
        while curl(url, pki, *cert)[1] != "200" and time.monotonic() < deadline:
            time.sleep(0.2)
        rc, code, out = curl(url, pki, *cert)
        assert code == "200" and "nc_packets_total" in out
        rc, code, out = curl(url, pki)  # no client certificate: the handshake fails
        assert rc != 0 and code != "200" and "nc_packets" not in out
    finally:
        err = net.stop()
    assert "Traceback" not in err and "warning" not in err


def test_passwords_are_hashed_once_per_credential(pki: Path, tmp_path: Path) -> None:
    """bcrypt is slow on purpose: each distinct (user, password) is checked once."""
    ex = Exporter(Exposition(fed()), "127.0.0.1", 0, load_web_config(
        str(web_config(pki, tmp_path))))
    ex.start()
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))

    def status(user: str, password: str) -> int:
        conn = http.client.HTTPSConnection("127.0.0.1", ex.port, context=ctx, timeout=10)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        try:
            conn.request("GET", "/-/healthy", headers={"Authorization": f"Basic {token}"})
            return conn.getresponse().status
        finally:
            conn.close()

    try:
        assert ex.auth is not None
        assert [status("prometheus", PASSWORD) for _ in range(10)] == [200] * 10
        assert [status("prometheus", "wrong") for _ in range(10)] == [401] * 10
        assert [status("nobody", "x") for _ in range(5)] == [401] * 5
        assert ex.auth.bcrypt_checks == 3
    finally:
        ex.stop()


def get_tls(port: int, ctx: ssl.SSLContext) -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/-/healthy")
        return conn.getresponse().status
    finally:
        conn.close()


BAD_CONFIGS: dict[str, str] = {
    "yaml": "tls_server_config: [\n",
    "unknown key": "tls_server_confg: {}\n",
    "plain password": "basic_auth_users:\n  prometheus: secret\n",
    "no key_file": "tls_server_config:\n  cert_file: server.crt\n",
    "missing cert": "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n",
    "mismatched key": "tls_server_config:\n  cert_file: ca.crt\n  key_file: server.key\n",
    "header": "http_server_config:\n  headers:\n    X-Custom: yes\n",
    "header value": "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
    "unverified client certs": "tls_server_config:\n  cert_file: server.crt\n"
                               "  key_file: server.key\n  client_auth_type: RequestClientCert\n",
    "mtls without CA": "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                       "  client_auth_type: RequireAndVerifyClientCert\n",
    "tls version": "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                   "  min_version: TLS99\n",
    "not a mapping": "- a\n- b\n",
}


@pytest.mark.parametrize("case", [*BAD_CONFIGS, "no such file"])
def test_bad_web_config_is_one_line_before_any_work(case: str, pki: Path,
                                                    tmp_path: Path) -> None:
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy(pki / name, tmp_path / name)
    path = tmp_path / "web.yml"
    if case in BAD_CONFIGS:
        path.write_text(BAD_CONFIGS[case])
    r = subprocess.run([*net_cmd(), "export", "-read", str(CAPTURE), "-exit",
                        "-address", f"127.0.0.1:{free_port()}", "-web-config", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "-web-config" in lines[0] and "web.yml" in lines[0], lines
    assert "packets" not in r.stderr


def test_web_config_reads_the_exporter_toolkit_example(pki: Path, tmp_path: Path) -> None:
    """Settings it accepts beyond the tests above: a TLS 1.3 floor, VerifyClientCertIfGiven,
    http2 (ignored: HTTP/1.1 only), no TLS at all (basic auth over HTTP)."""
    cfg = load_web_config(str(web_config(
        pki, tmp_path, users=True, extra="")))
    assert cfg.tls is not None and cfg.users and cfg.headers == (("X-Frame-Options", "deny"),)
    (tmp_path / "b.yml").write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_ca_file: ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n"
        "  min_version: TLS13\nhttp_server_config:\n  http2: false\n")
    cfg = load_web_config(str(tmp_path / "b.yml"))
    assert cfg.tls is not None and cfg.tls.minimum_version is ssl.TLSVersion.TLSv1_3
    assert cfg.tls.verify_mode is ssl.CERT_OPTIONAL and not cfg.client_certs
    ex = Exporter(Exposition(MetricsState()), "127.0.0.1", 0, cfg)
    ex.start()
    try:  # the floor holds; a client certificate is optional
        old = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            get_tls(ex.port, old)
        assert get_tls(ex.port, ssl.create_default_context(cafile=str(pki / "ca.crt"))) == 200
    finally:
        ex.stop()
    (tmp_path / "c.yml").write_text(f"basic_auth_users:\n  u: '{(pki / 'hash').read_text()}'\n")
    cfg = load_web_config(str(tmp_path / "c.yml"))
    assert cfg.tls is None and cfg.users
