"""Connections: records against tshark's conversation tables, handshake RTTs against the
oracle's frame times, table limits, and the metrics of connections."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conn_compare import compare_all, load_list
from corpus import ORACLE, PCAPS, corpus_files
from netcap.decode.batch import decode_batch
from netcap.flows.extract import summarize
from netcap.flows.table import ConnectionTable
from netcap.metrics.state import MetricsState
from netcap.sources.capture import CaptureError, open_capture

pytestmark = pytest.mark.corpus  # every test here reads the public corpus (tests/corpus.py)


def test_connections_match_tshark_conversations() -> None:
    """Every TCP/UDP conversation tshark lists (and every connection of ours) agrees in
    frames, bytes each way, start and duration, but for the differences listed with
    their reasons in tests/data/connection_disagreements.tsv (run conn_compare.py)."""
    listed = load_list()
    actual = set(compare_all())
    assert not (actual - set(listed)), sorted(actual - set(listed))
    assert not (set(listed) - actual), f"fixed, remove from the list: {set(listed) - actual}"
    assert all(reason != "UNEXPLAINED" for reason in listed.values())


def _run(name: str, table: ConnectionTable, batch_packets: int = 64, **timeouts: int
         ) -> tuple[list[dict[str, object]], int]:
    records: list[dict[str, object]] = []
    evicted = 0
    for batch in open_capture(str(PCAPS / name), batch_packets=batch_packets):
        fb = summarize(decode_batch(batch), **timeouts)
        ended = table.update(fb) if fb is not None else None
        if ended is not None:
            records += ended.records.to_dicts()
            evicted += ended.evicted
    ended = table.flush()
    if ended is not None:
        records += ended.records.to_dicts()
    return records, evicted


def test_handshake_rtt_from_packets() -> None:
    """bro.org: SYN at frame 1, the client's ACK of the SYN+ACK at frame 3 (oracle)."""
    with open(ORACLE / "zeek_http_bro.org.pcap.jsonl") as f:
        frames = [json.loads(line) for line in f][:3]
    flags = [int(fr["tcp.flags"][0], 16) for fr in frames]
    assert flags == [0x02, 0x12, 0x10]
    t = [float(fr["frame.time_epoch"][0]) for fr in frames]
    table = ConnectionTable()
    records, _ = _run("zeek_http_bro.org.pcap", table, batch_packets=2)  # across batches
    assert table.rtts[0] == round(t[2] - t[0], 6)  # the first of its 13 connections
    assert len(table.rtts) == 13 and all(0.05 < x < 0.2 for x in table.rtts)
    conn = next(r for r in records if r["SrcPort"] == frames[0]["tcp.srcport"][0])
    assert conn["NumSYNFlags"] == 2 and conn["DstPort"] == "80"
    assert conn["TimestampFirst"] == int(frames[0]["frame.time_epoch"][0].replace(".", ""))


def test_batches_do_not_change_connections() -> None:
    """The same records whatever the batch size (flows span batches)."""
    a, _ = _run("zeek_wikipedia.pcap", ConnectionTable(), batch_packets=1)
    b, _ = _run("zeek_wikipedia.pcap", ConnectionTable(), batch_packets=1000)
    key = [(r["SrcIP"], r["SrcPort"], r["DstIP"], r["DstPort"]) for r in a]
    assert len(a) == 34 and sorted(map(str, a)) == sorted(map(str, b)) and len(set(key)) == 34


def test_batches_do_not_change_connections_that_time_out() -> None:
    """Short timeouts and linger, so flows end and resume within batches and across them:
    every corpus capture gives the same records in batches of 1 packet and of 1000 (the
    rule applies per packet, not at batch ends), and more of them than with the defaults."""
    timeouts = {"linger_ns": 10**8, "udp_timeout_ns": 10**9, "tcp_timeout_ns": 3 * 10**9}
    split = plain = 0
    for name in corpus_files():
        try:
            a, _ = _run(name, ConnectionTable(**timeouts), batch_packets=1, **timeouts)
            b, _ = _run(name, ConnectionTable(**timeouts), batch_packets=1000, **timeouts)
            c, _ = _run(name, ConnectionTable(), batch_packets=1000)
        except CaptureError:  # cut short or unusable: covered elsewhere
            continue
        assert sorted(map(str, a)) == sorted(map(str, b)), name
        assert sum(int(str(r["NumPackets"])) for r in a) == sum(
            int(str(r["NumPackets"])) for r in c), name
        split, plain = split + len(a), plain + len(c)
    assert split > plain + 50, (split, plain)


def test_full_table_evicts_least_recent_and_counts() -> None:
    full, evicted = _run("zeek_wikipedia.pcap", ConnectionTable(max_flows=3), batch_packets=8)
    plain, none = _run("zeek_wikipedia.pcap", ConnectionTable(), batch_packets=8)
    assert none == 0 and evicted > 0
    # Evicted flows end early and come back as new connections; no packet is lost.
    assert len(full) > len(plain)
    assert sum(int(str(r["NumPackets"])) for r in full) == sum(
        int(str(r["NumPackets"])) for r in plain)


def test_closed_connections_end_after_linger_not_at_end_of_input() -> None:
    """A closed TCP connection (FIN both ways) is emitted once packet time passes its
    linger, before the input ends; a short idle timeout ends UDP flows early too."""
    for name, transport in (("zeek_http_bro.org.pcap", "TCP"), ("zeek_wikipedia.pcap", "UDP")):
        table = ConnectionTable(linger_ns=10**9, udp_timeout_ns=10**9)
        early: list[dict[str, object]] = []
        for batch in open_capture(str(PCAPS / name), batch_packets=16):
            fb = summarize(decode_batch(batch))
            ended = table.update(fb) if fb is not None else None
            if ended is not None:
                early += ended.records.to_dicts()
        assert any(r["TransportProto"] == transport for r in early), name
        if transport == "TCP":  # closed: FIN from both sides, then the linger passed
            assert all(int(str(r.get("NumFINFlags", 0))) >= 2 or r.get("NumRSTFlags")
                       for r in early)
        last = table.flush()
        assert len(early) + (len(last) if last is not None else 0) == (
            13 if transport == "TCP" else 34)


def test_connection_metrics() -> None:
    state = MetricsState()
    table = ConnectionTable()
    for batch in open_capture(str(PCAPS / "zeek_wikipedia.pcap")):
        fb = summarize(decode_batch(batch))
        state.add_connections(table.update(fb) if fb is not None else None, table)
    state.add_connections(table.flush(), table)
    snap = state.snapshot()
    conns = snap.counters["nc_connections"]
    assert sum(conns.values()) == 34
    assert conns[("tcp", "other")] == 10 and conns[("udp", "dns")] > 0
    assert snap.histograms["nc_connection_duration_seconds"][()].count == 34
    assert snap.histograms["nc_tcp_handshake_rtt_seconds"][()].count == 8
    assert snap.gauges["nc_connections_active"][()] == 0


# tshark's name (in frame.protocols) of the protocols our analyzers recognise on TCP.
_TSHARK_APPS = {"http": "HTTP", "tls": "TLS", "ssh": "SSH", "dns": "DNS"}
# Where ApplicationProto differs from tshark's dissection, and why.
_APP_DIFFERENCES = {
    ("zeek_http_http_09.pcap", "127.0.0.1:42960 127.0.0.1:80"): (
        "HTTP", "", "HTTP/0.9: tshark does not dissect it; our analyzer records the request"),
    ("zeek_http_http_09.pcap", "127.0.0.1:42964 127.0.0.1:80"): (
        "HTTP", "", "HTTP/0.9: tshark does not dissect it; our analyzer records the request"),
    ("zeek_tls_ssl-v2.pcap", "192.168.4.149:59062 91.227.4.92:443"): (
        "", "TLS", "an SSLv2 ClientHello: tshark dissects it; our TLS reader reads TLS "
        "records (SSL 3.0 on) only"),
}


def _tshark_apps(name: str) -> dict[frozenset[tuple[str, int]], set[str]]:
    """Per TCP conversation (its two endpoints), the analyzers' protocols tshark
    dissected in any of its frames."""
    out: dict[frozenset[tuple[str, int]], set[str]] = {}
    path = ORACLE / f"{name}.jsonl"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        f = json.loads(line)
        if "tcp.srcport" not in f:
            continue
        src = (f.get("ip.src") or f.get("ipv6.src") or [""])[0]
        dst = (f.get("ip.dst") or f.get("ipv6.dst") or [""])[0]
        ends = frozenset({(src, int(f["tcp.srcport"][0])), (dst, int(f["tcp.dstport"][0]))})
        layers = f.get("frame.protocols", [""])[0].split(":")
        out.setdefault(ends, set()).update(_TSHARK_APPS[x] for x in layers if x in _TSHARK_APPS)
    return out


def test_application_proto_matches_tshark() -> None:
    """Connection.ApplicationProto of every TCP connection of the corpus, as `net
    capture` writes it, against the protocol tshark dissects in its frames (HTTP, TLS,
    SSH, DNS): the same but for the listed differences. It was empty for every HTTP,
    TLS and SSH connection (the "Connections by application" panel showed only `other`);
    171 TCP connections of the corpus are HTTP, TLS or SSH (18 are none of them)."""
    from conn_compare import our_connections

    seen: Counter[str] = Counter()
    diffs = {}
    for path in (PCAPS / name for name in corpus_files()):  # the listed captures
        ours = our_connections(path.name)
        theirs = _tshark_apps(path.name)
        for c in ours or []:
            if c["TransportProto"] != "TCP":
                continue
            a, b = f"{c['SrcIP']}:{c['SrcPort']}", f"{c['DstIP']}:{c['DstPort']}"
            ends = frozenset({(str(c["SrcIP"]), int(str(c["SrcPort"]))),
                              (str(c["DstIP"]), int(str(c["DstPort"])))})
            tshark = "|".join(sorted(theirs.get(ends, set())))
            seen[str(c["ApplicationProto"])] += 1
            if c["ApplicationProto"] != tshark:
                diffs[(path.name, " ".join(sorted([a, b])))] = (c["ApplicationProto"], tshark)
    assert diffs == {k: v[:2] for k, v in _APP_DIFFERENCES.items()}
    assert seen["HTTP"] + seen["TLS"] + seen["SSH"] == 171, seen


def test_connection_metrics_by_application() -> None:
    """nc_connections_total{application} from a whole run (stream analyzers included),
    one process or several: HTTP connections are `http`, not `other`."""
    from netcap.pipeline import CaptureOptions, run_capture

    for workers in (1, 2):
        state = MetricsState()
        run_capture(CaptureOptions(read=str(PCAPS / "zeek_wikipedia.pcap"), out=None,
                                   workers=workers, metrics=True), state)
        conns = state.snapshot().counters["nc_connections"]
        assert conns[("tcp", "http")] == 9 and conns[("tcp", "other")] == 1, conns
        assert set(conns) <= {(t, a) for t in ("tcp", "udp") for a in (
            "dns", "ntp", "dhcpv4", "http", "tls", "ssh", "other")}
