"""The Grafana dashboards and Prometheus configs shipped in dashboards/ and prometheus/:
checked as files (JSON model, metric names against FAMILIES), with `promtool`, and by
running every panel's PromQL on a real Prometheus scraping a real `net export`."""

from __future__ import annotations

import json
import math
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from helpers import get, prometheus
from netcap.metrics.families import FAMILIES, Kind
from test_export import CAPTURE, NEEDS_PROMETHEUS, Served

ROOT = Path(__file__).parent.parent
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
EXPECTED = {"netcap-overview.json", "netcap-ethernet-ip.json", "netcap-tcp.json",
            "netcap-udp-icmp.json", "netcap-connections-dns.json"}
PANEL_TYPES = {"timeseries", "stat", "piechart", "bargauge", "table"}
DATASOURCE_UIDS = {"${DS_PROMETHEUS}", "prometheus"}
# Grafana's variables, as a Grafana would substitute them for a query.
VARIABLES = {"__rate_interval": "30s", "__range": "5m", "__interval": "15s",
             "__range_s": "300", "job": "netcap", "instance": ".+"}
# Families with no series for CAPTURE (no ICMP, VLAN, fragments or decoding problems, and
# too short for the processing-rate gauge): their queries may return nothing.
MAY_BE_EMPTY = {"nc_decoding_errors", "nc_unknown_protocols", "nc_icmp_messages",
                "nc_ip_fragments", "nc_vlan_tags", "nc_processing_rate_packets_per_second",
                "nc_ntp_messages", "nc_dhcp_messages", "nc_tls_hellos",
                "nc_tls_handshake_seconds", "nc_ssh_endpoints",
                # live capture only (test_live.py checks these panels with data)
                "nc_capture_received_packets", "nc_capture_dropped_packets",
                "nc_capture_lag_seconds"}
# Families of protocols present in CAPTURE: some panel must show data for each.
PRESENT = {"nc_ethernet_frames", "nc_arp_packets", "nc_ip_packets", "nc_ip_packet_bytes",
           "nc_tcp_segments", "nc_tcp_payload_bytes", "nc_udp_datagrams",
           "nc_udp_payload_bytes", "nc_protocols", "nc_audit_records", "nc_connections",
           "nc_connection_bytes", "nc_dns_messages", "nc_dns_questions", "nc_http_requests",
           "nc_http_response_seconds", "nc_http_response_body_bytes"}
PROMQL_WORDS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
                "quantile", "count_values", "group", "by", "without", "on", "ignoring",
                "group_left", "group_right", "bool", "offset", "and", "or", "unless", "inf",
                "nan"}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows hold their panels
    return out


def exprs() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) for every target of every panel."""
    return [(f.name, p["title"], t["expr"]) for f in DASHBOARDS
            for p in panels(json.loads(f.read_text())) for t in p.get("targets", [])]


def bucket_targets() -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard file, panel title, target) for every target that shows histogram buckets
    themselves (a `_bucket` series not turned into a quantile)."""
    return [(f.name, p["title"], t) for f in DASHBOARDS
            for p in panels(json.loads(f.read_text())) for t in p.get("targets", [])
            if "_bucket" in t["expr"] and "histogram_quantile" not in t["expr"]]


def deaccumulate(result: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """What Grafana makes of a target with format heatmap: the series sorted by `le`, each
    minus the one below it, so each bucket counts only its own observations."""
    rows = sorted((float(r["metric"]["le"]), float(r["value"][1])) for r in result)
    return [(le, v - (rows[i - 1][1] if i else 0.0)) for i, (le, v) in enumerate(rows)]


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (a small lexer, enough for these dashboards)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # range and subquery durations
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?", e):
        if not m.group(2) and m.group(1).lower() not in PROMQL_WORDS:
            names.add(m.group(1))
    return names


def family_of(name: str) -> str | None:
    """The FAMILIES key a scraped series name belongs to (None for non-netcap names)."""
    for f in FAMILIES.values():
        exposed = {f.exposed}
        if f.kind is Kind.HISTOGRAM:
            exposed |= {f.name + s for s in ("_bucket", "_sum", "_count")}
        if f.kind is Kind.INFO:
            exposed = {f.name + "_info"}
        if name in exposed:
            return f.name
    return None


def substitute(expr: str) -> str:
    def var(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in VARIABLES, f"unknown dashboard variable ${name} in {expr}"
        return VARIABLES[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", var, expr)


def test_the_dashboards_exist() -> None:
    assert {f.name for f in DASHBOARDS} == EXPECTED


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_json_model(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["schemaVersion"] == 41
    assert board["uid"] == path.stem and board["title"] and board["id"] is None
    ds_vars = [v for v in board["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert len(ds_vars) == 1 and ds_vars[0]["type"] == "datasource"
    assert ds_vars[0]["query"] == "prometheus"
    assert ds_vars[0]["current"]["value"] == "prometheus"  # the provisioned uid
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    for p in panels(board):
        assert p["type"] in PANEL_TYPES, (p["title"], p["type"])
        assert p["datasource"]["type"] == "prometheus"
        assert p["datasource"]["uid"] in DATASOURCE_UIDS
        assert {"h", "w", "x", "y"} <= p["gridPos"].keys() and p["gridPos"]["x"] + \
            p["gridPos"]["w"] <= 24
        targets = p.get("targets", [])
        assert targets and all(t.get("expr", "").strip() for t in targets), p["title"]
        assert len({t["refId"] for t in targets}) == len(targets)
        for t in targets:
            assert t["datasource"]["uid"] in DATASOURCE_UIDS
            if "rate(" in t["expr"] or "increase(" in t["expr"]:
                assert "[$__rate_interval]" in t["expr"] or "[$__range]" in t["expr"], t


def test_provisioning_matches_the_dashboards() -> None:
    text = (ROOT / "dashboards" / "provisioning" / "datasources.yml").read_text()
    assert re.search(r"^\s*uid: prometheus$", text, re.M)
    assert "url: http://prometheus:9090" in text and "type: prometheus" in text
    text = (ROOT / "dashboards" / "provisioning" / "dashboards.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in text
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./dashboards:/var/lib/grafana/dashboards" in compose
    assert "./prometheus/prometheus-compose.yml:/etc/prometheus/prometheus.yml" in compose
    assert "host.docker.internal:host-gateway" in compose


def test_metric_names_parse() -> None:
    expr = ('histogram_quantile(0.9, sum by (le, version) (rate(nc_ip_packet_bytes_bucket'
            '{job="$job", x=~"a|b"}[$__rate_interval]))) / on (x) group_left '
            'sum(up{job="x"}) or vector(0)')
    assert metric_names(expr) == {"nc_ip_packet_bytes_bucket", "up"}


@pytest.mark.parametrize("dashboard,title,target", bucket_targets(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_bucket_panels_count_each_bucket_on_its_own(dashboard: str, title: str,
                                                    target: dict[str, Any]) -> None:
    """Prometheus' `le` buckets are cumulative (le="1024" also counts everything under 512):
    a panel of buckets shows each bucket's own count only with format heatmap, which makes
    Grafana subtract the bucket below. The real counts are checked on Prometheus below."""
    assert target.get("format") == "heatmap", f"{dashboard} / {title}: cumulative buckets"
    assert target["legendFormat"] == "{{le}}" and "by (le)" in target["expr"], title


@pytest.mark.parametrize("dashboard,title,expr", exprs(), ids=lambda v: str(v)[:40])
def test_every_metric_is_declared(dashboard: str, title: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, expr
    for name in names:
        ok = (name == "up" or name.startswith(("process_", "python_"))
              or family_of(name) is not None)
        assert ok, f"{dashboard} / {title}: {name} is not an exported metric"


def test_go_netcap_mapping_names_our_metrics() -> None:
    """docs/go-netcap-metrics.md: every name in its "ours" column is exported, and the Go
    names its dashboard queries are all there."""
    text = (ROOT / "docs" / "go-netcap-metrics.md").read_text()
    rows = [line.split(" | ") for line in text.splitlines()
            if line.startswith("| `") and line.count(" | ") == 2]
    ours = {n for r in rows for n in re.findall(r"`(nc_\w+)", r[1])}
    ours |= set(re.findall(r"`(nc_\w+)`", text.split("Ours alone")[1].split("\n\n")[0]))
    assert len(ours) > 30
    for name in ours:
        assert family_of(name) is not None, f"{name} is not an exported metric"
    go = {n for r in rows for n in re.findall(r"`(nc_\w+)", r[0])}
    assert {"nc_numpackets", "nc_uptime", "nc_protocols_total", "nc_decoding_errors_total",
            "nc_tcp", "nc_credentials"} <= go


@NEEDS_PROMETHEUS
@pytest.mark.parametrize("config", sorted((ROOT / "prometheus").glob("*.yml")),
                         ids=lambda p: p.name)
def test_promtool_checks_config(config: Path) -> None:
    r = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    text = config.read_text()
    assert "job_name: netcap" in text and "scrape_interval: 15s" in text


def query(base: str, expr: str) -> dict[str, Any]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        return json.loads(get(url)[2])  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:  # a bad query: 400 with the error in the body
        return json.loads(e.read())  # type: ignore[no-any-return]


def bucket_failures(base: str, where: str, expr: str) -> list[str]:
    """A bucket panel's query on Prometheus, as Grafana shows it with format heatmap: one
    bar per declared bucket and +Inf, none negative, adding up to the family's _count."""
    (name,) = metric_names(expr)
    family = FAMILIES[name.removesuffix("_bucket")]
    result = query(base, substitute(expr))["data"]["result"]
    bars = deaccumulate(result)
    count = query(base, substitute(expr.replace("_bucket{", "_count{").replace(
        "sum by (le)", "sum")))["data"]["result"]
    total = float(count[0]["value"][1]) if count else 0.0
    out = []
    # Close, not equal: the exact `le` text is test_export's concern (issue 12, item 8).
    bounds = [*family.bounds, float("inf")]
    if len(bars) != len(bounds) or not all(
            math.isclose(le, b, rel_tol=1e-5) for (le, _), b in zip(bars, bounds, strict=False)):
        out.append(f"{where}: buckets {[le for le, _ in bars]}")
    if any(v < 0 for _, v in bars) or sum(v for _, v in bars) != total:
        out.append(f"{where}: per-bucket counts {bars} do not add up to {total}")
    if family.name in PRESENT and not total > 0:
        out.append(f"{where}: no observations")
    return out


@pytest.mark.corpus  # CAPTURE is a corpus capture
@NEEDS_PROMETHEUS
def test_every_panel_query_runs_on_real_prometheus() -> None:
    served = Served("-read", str(CAPTURE))
    served.metrics()  # the capture is processed
    try:
        with tempfile.TemporaryDirectory() as tmp, prometheus(Path(tmp), served.port) as base:
            deadline, scrapes = time.monotonic() + 40, 0.0
            while scrapes < 4:  # rate() needs two samples in its window: a few scrapes
                assert time.monotonic() < deadline, "Prometheus did not scrape 4 times"
                time.sleep(0.5)
                r = query(base, 'count_over_time(nc_packets_total{job="netcap"}[1m])')
                scrapes = max([float(v["value"][1]) for v in r["data"]["result"]], default=0)
            assert query(base, "rate(nc_packets_total)")["status"] == "error"  # seen as one
            failures, shown = [], set()
            for dashboard, title, expr in exprs():
                r = query(base, substitute(expr))
                where = f"{dashboard} / {title}: {expr}"
                if r["status"] != "success":
                    failures.append(f"{where}: {r.get('error')}")
                    continue
                families = {family_of(n) for n in metric_names(expr)} - {None}
                values = [float(v["value"][1]) for v in r["data"]["result"]]
                if values:
                    shown |= families
                elif not families & MAY_BE_EMPTY:
                    failures.append(f"{where}: no data")
                totals = families and families <= PRESENT and "rate(" not in expr
                if totals and not sum(v for v in values if v == v) > 0:  # NaN != NaN
                    failures.append(f"{where}: no counts in {values}")
            for dashboard, title, target in bucket_targets():
                failures += bucket_failures(base, f"{dashboard} / {title}", target["expr"])
            assert not failures, "\n".join(failures)
            assert shown >= PRESENT, PRESENT - shown
    finally:
        served.stop()
