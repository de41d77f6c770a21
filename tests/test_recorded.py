"""The project's own captures (tests/data/recorded, made by tests/data/record/record.sh from
real clients and servers in network namespaces) against what tshark sees in them.

These always run: they need neither the public corpus nor tshark. tshark's view was written
when the captures were recorded (tests/data/record/make_oracle.py): per-frame fields and
conversation tables in the corpus oracle's format, and `expected.json` with the application
records. Every frame field agrees, every Connection matches a tshark conversation, and the
records `net capture` writes (read back with `net dump -json`) carry exactly tshark's HTTP
requests and status codes, TLS hellos with JA3/JA3S/JA4 for TLS 1.2 and 1.3, DNS questions
and answers, SSH banners and HASSH, DHCPv4 message types and NTP versions and modes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conn_compare import compare as compare_connections
from helpers import net_cmd
from oracle_compare import compare_file

RECORDED = Path(__file__).parent / "data" / "recorded"
ORACLE = RECORDED / "oracle"
SAMPLE = Path(__file__).parent / "data" / "sample.pcap"  # the README's `make run` input
PARTS = ["dhcp.pcap", "dns.pcap", "http.pcap", "tls.pcap", "ssh.pcap", "ntp.pcap"]
EXPECTED: dict[str, Any] = json.loads((ORACLE / "expected.json").read_text())
TYPES = ("Connection", "HTTP", "TLSClientHello", "TLSServerHello", "DNS", "SSH", "DHCPv4", "NTP")


def records(out: Path, rtype: str) -> list[dict[str, Any]]:
    path = out / f"{rtype}.ncap.gz"
    if not path.exists():
        return []
    r = subprocess.run([*net_cmd(), "dump", "-read", str(path), "-json"], capture_output=True,
                       text=True, timeout=60, check=True)
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[Any]]]:
    """Every recorded capture through the real `net capture`, its records read back."""
    out: dict[str, dict[str, list[Any]]] = {}
    for name, path in [*((n, RECORDED / n) for n in PARTS), ("sample.pcap", SAMPLE)]:
        d = tmp_path_factory.mktemp(name.split(".")[0])
        r = subprocess.run([*net_cmd(), "capture", "-read", str(path), "-out",
                            str(d), "-quiet"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out[name] = {t: records(d, t) for t in TYPES}
    return out


def test_the_recordings_hold_every_protocol() -> None:
    """The oracle itself: a re-recording that lost a protocol fails here, not silently."""
    e = EXPECTED
    assert len(e["dhcp.pcap"]["dhcp"]) >= 8
    assert {m["type"] for m in e["dhcp.pcap"]["dhcp"]} >= {"discover", "offer", "request",
                                                            "ack", "release"}
    assert len(e["dns.pcap"]["dns_queries"]) == len(e["dns.pcap"]["dns_responses"]) == 6
    assert {r["rcode"] for r in e["dns.pcap"]["dns_responses"]} == {0, 3}  # NOERROR, NXDOMAIN
    assert len(e["http.pcap"]["http_requests"]) == 4
    assert sorted(e["http.pcap"]["http_responses"]) == [200, 200, 200, 404]
    client_versions = [h["supported_versions"] for h in e["tls.pcap"]["tls_client_hellos"]]
    assert client_versions == [[], [0x0304], [0x0304]]  # TLS 1.2 only, then 1.3 twice
    assert [h["version"] for h in e["tls.pcap"]["tls_server_hellos"]] == [0x0303, 0x0304, 0x0304]
    assert sum("banner" in s for s in e["ssh.pcap"]["ssh"]) == 2
    assert sum("hassh" in s for s in e["ssh.pcap"]["ssh"]) == 2
    assert [m["mode"] for m in e["ntp.pcap"]["ntp"]] == ["client", "server"] * 4
    assert sum(e[n]["frames"] for n in PARTS) == len(_pcap_records(SAMPLE))


def _pcap_records(path: Path) -> list[bytes]:
    """The packet records of a classic little-endian pcap (independent of netcap's reader)."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    out, pos = [], 24
    while pos < len(data):
        n = int.from_bytes(data[pos + 8 : pos + 12], "little")
        out.append(data[pos + 16 : pos + 16 + n])
        pos += 16 + n
    assert pos == len(data)
    return out


@pytest.mark.parametrize("name", PARTS)
def test_fields_equal_tsharks(name: str) -> None:
    """Every tshark field of every frame (link to application layer) as we decode it."""
    result = compare_file(name, pcaps=RECORDED, oracle=ORACLE)
    assert result.compared["frame.len"] == EXPECTED[name]["frames"]
    assert sum(result.compared.values()) > 100
    assert result.diffs == []


@pytest.mark.parametrize("name", PARTS)
def test_connections_equal_tsharks(name: str,
                                   captured: dict[str, dict[str, list[Any]]]) -> None:
    assert compare_connections(name, pcaps=RECORDED, oracle=ORACLE) == []
    assert len(captured[name]["Connection"]) == EXPECTED[name]["conversations"] > 0


def test_http(captured: dict[str, dict[str, list[Any]]]) -> None:
    got = captured["http.pcap"]["HTTP"]
    want = EXPECTED["http.pcap"]
    assert [{"method": r["Method"], "uri": r["URL"], "host": r.get("Host", ""),
             "user_agent": r.get("UserAgent", "")} for r in got] == want["http_requests"]
    assert [r["StatusCode"] for r in got] == want["http_responses"]
    assert {r.get("ServerName", "") for r in got} == {"SimpleHTTP/0.6 Python/3.11.2"}


def test_tls_hellos_and_fingerprints(captured: dict[str, dict[str, list[Any]]]) -> None:
    clients = captured["tls.pcap"]["TLSClientHello"]
    servers = captured["tls.pcap"]["TLSServerHello"]
    want = EXPECTED["tls.pcap"]
    assert [{"sni": h.get("SNI", ""), "alpn": h.get("ALPNs", []),
             "supported_versions": h.get("SupportedVersions", []), "ja3": h["Ja3"],
             "ja4": h["Ja4"]} for h in clients] == [
        {k: h[k] for k in ("sni", "alpn", "supported_versions", "ja3", "ja4")}
        for h in want["tls_client_hellos"]]
    assert [{"version": h.get("SupportedVersion") or h["Version"], "cipher": h["CipherSuite"],
             "ja3s": h["Ja3s"]} for h in servers] == [
        {k: h[k] for k in ("version", "cipher", "ja3s")} for h in want["tls_server_hellos"]]
    # TLS 1.2 and 1.3 both: JA4's version digits follow the offered versions
    assert [h["Ja4"][:3] for h in clients] == ["t12", "t13", "t13"]


def test_dns(captured: dict[str, dict[str, list[Any]]]) -> None:
    got = captured["dns.pcap"]["DNS"]
    want = EXPECTED["dns.pcap"]

    def key(m: dict[str, Any]) -> dict[str, Any]:
        return {"id": m["ID"], "names": [q["Name"] for q in m.get("Questions", [])],
                "types": [q["Type"] for q in m.get("Questions", [])]}

    assert [key(m) for m in got if not m.get("QR")] == want["dns_queries"]
    responses = [m for m in got if m.get("QR")]
    assert [key(m) | {"rcode": m.get("ResponseCode", 0),
                      "a": [a["IP"] for s in ("Answers", "Authorities", "Additionals")
                            for a in m.get(s, [])
                            if a.get("Type") == 1],
                      "aaaa": [a["IP"] for a in m.get("Answers", []) if a.get("Type") == 28]}
            for m in responses] == [
        {k: r[k] for k in ("id", "names", "types", "rcode", "a", "aaaa")}
        for r in want["dns_responses"]]


def test_ssh_banners_and_hassh(captured: dict[str, dict[str, list[Any]]]) -> None:
    got = captured["ssh.pcap"]["SSH"]
    want = EXPECTED["ssh.pcap"]["ssh"]
    banners = [w["banner"] for w in want if "banner" in w]
    hasshes = {w["port"]: w for w in want if "hassh" in w}
    assert [r["Ident"] for r in got] == banners
    for r in got:  # the client's side (HASSH) and the server's (HASSH-server)
        port = int(r["Flow"].split("->")[0].rsplit(":", 1)[1])
        assert (r["HASSH"], r["Algorithms"]) == (hasshes[port]["hassh"],
                                                 hasshes[port]["algorithms"])
    assert {r["Flow"].endswith(":22") for r in got} == {True, False}


_DHCP_TYPES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak",
               7: "release", 8: "inform"}


def test_dhcp(captured: dict[str, dict[str, list[Any]]]) -> None:
    got = captured["dhcp.pcap"]["DHCPv4"]
    want = EXPECTED["dhcp.pcap"]["dhcp"]
    types = [_DHCP_TYPES[int(next(o["Data"] for o in m["Options"] if o["Type"] == 53))]
             for m in got]
    assert types == [w["type"] for w in want]
    assert [m.get("YourClientIP", "0.0.0.0") for m in got] == [w["your_ip"] for w in want]
    assert [m.get("Fingerprint", "") for m in got] == [
        ",".join(map(str, w["fingerprint"])) for w in want]


def test_ntp(captured: dict[str, dict[str, list[Any]]]) -> None:
    got = captured["ntp.pcap"]["NTP"]
    modes = {3: "client", 4: "server"}
    assert [{"version": m["Version"], "mode": modes[m["Mode"]]} for m in got] == \
        EXPECTED["ntp.pcap"]["ntp"]


def test_sample_is_every_recording(captured: dict[str, dict[str, list[Any]]]) -> None:
    """tests/data/sample.pcap (the README's `make run` input) is the recordings one after
    the other: it yields exactly their records."""
    for t in TYPES:
        if t == "Connection":  # written at the end of input: sorted differently
            key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
            assert sorted(captured["sample.pcap"][t], key=key) == sorted(
                (r for n in PARTS for r in captured[n][t]), key=key)
        else:
            assert captured["sample.pcap"][t] == [r for n in PARTS for r in captured[n][t]], t


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed (CI has none)")
def test_oracle_is_tsharks_current_view(tmp_path: Path) -> None:
    """Where tshark is installed: the committed oracle is what make_oracle.py writes now."""
    for name in PARTS:
        shutil.copy(RECORDED / name, tmp_path / name)
    script = Path(__file__).parent / "data" / "record" / "make_oracle.py"
    subprocess.run(["python3", str(script), str(tmp_path)], check=True, capture_output=True,
                   timeout=300)
    for f in sorted((tmp_path / "oracle").iterdir()):
        if f.name == "expected.json":
            fresh, kept = json.loads(f.read_text()), dict(EXPECTED)
            fresh.pop("tshark"), kept.pop("tshark")
            assert fresh == kept
        else:
            assert f.read_text() == (ORACLE / f.name).read_text(), f.name
