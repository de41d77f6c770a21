"""`net export` loads only what the job uses: start-up is most of a small file's run.

Each run is a fresh interpreter that runs the command line's main() in-process and
then lists `sys.modules`: what the `net` process (the parent) imported for the job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bcrypt

DATA = Path(__file__).parent / "data" / "recorded"

_PROBE = """
import json, sys
from netcap.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

# Loaded only when needed: the web config (yaml), TLS (ssl) and basic auth (bcrypt)
# with -web-config; the HTTP server (wsgiref, http.server, and email with it) with the
# first connection; client_python (and the urllib.request it imports) with the first
# render; gzip for a gzip-encoded answer; email.utils for a cookie's Expires.
NOT_AT_START = ("yaml", "bcrypt", "ssl", "email.utils", "wsgiref.simple_server",
                "http.server", "prometheus_client", "urllib.request", "gzip",
                "netcap.exporter.webconfig", "netcap.exporter.wsgi")


def loaded(*args: str) -> set[str]:
    """The modules of a `net export ... -exit` run (in-process, a new interpreter)."""
    r = subprocess.run([sys.executable, "-c", _PROBE, "export", *args, "-exit", "-quiet",
                        "-address", "127.0.0.1:0"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["code"] == 0, r.stderr
    return set(out["modules"])


def test_a_plain_export_loads_no_server_tls_or_config_modules() -> None:
    """HTTP traffic through every stage (the HTTP analyzer included), no scrape."""
    modules = loaded("-read", str(DATA / "http.pcap"))
    assert "netcap.analyzers._http" in modules  # the run did decode HTTP
    assert "numpy" in modules
    assert sorted(m for m in NOT_AT_START if m in modules) == []


# Loaded only for the job that needs them: the stream stage with its analyzers (a
# stream analyzer's records wanted), the record encoder and file writer (-out).
STREAM_STAGE = ("netcap.reassembly.streams", "netcap.reassembly._streams",
                "netcap.analyzers._http", "netcap.analyzers._tls", "netcap.analyzers._ssh")
WRITER = ("netcap.sinks.ncap",)
# Every record type an analyzer or the connection table makes (bench/run_bench.py's count)
ANALYZER_TYPES = "Connection,DNS,NTP,DHCPv4,TLSClientHello,TLSServerHello,HTTP,SSH"


def test_counting_alone_loads_no_stream_stage_or_writer() -> None:
    """HTTP and TLS traffic with every analyzer's records excluded: the packets are
    decoded and counted; nothing reassembles streams or encodes records."""
    for capture in ("http.pcap", "tls.pcap"):
        modules = loaded("-read", str(DATA / capture), "-exclude", ANALYZER_TYPES)
        assert "netcap.metrics.state" in modules
        assert sorted(m for m in STREAM_STAGE + WRITER if m in modules) == []


def test_the_stream_stage_and_writer_load_when_wanted(tmp_path: Path) -> None:
    """The other side: a stream analyzer's records wanted load the stream stage, and
    -out the writer (so the check above sees what it looks for)."""
    modules = loaded("-read", str(DATA / "tls.pcap"), "-include", "TLSClientHello",
                     "-out", str(tmp_path))
    assert set(STREAM_STAGE + WRITER) <= modules
    assert (tmp_path / "TLSClientHello.ncap.gz").exists()


def test_a_capture_without_tcp_loads_no_numpy_ma() -> None:
    """numpy.ma (numpy 2's np.unique without return_* checks np.ma.is_masked, which
    imports it) stays unloaded where the metrics and records do the work. (A capture
    with TCP still loads it: the stream stage's np.union1d, reassembly/streams.py.)"""
    modules = loaded("-read", str(DATA / "ntp.pcap"))
    assert "netcap.metrics.state" in modules
    assert "numpy.ma" not in modules


def test_a_web_config_loads_what_it_needs(tmp_path: Path) -> None:
    """The other side of the first test: with -web-config, the config's modules load
    (so the check above sees what it looks for)."""
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    modules = loaded("-read", str(DATA / "ntp.pcap"), "-web-config", str(config))
    assert {"yaml", "bcrypt", "ssl", "netcap.exporter.webconfig"} <= modules
