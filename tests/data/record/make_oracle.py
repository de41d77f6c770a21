"""What tshark sees in the project's recorded captures: the oracle tests/test_recorded.py checks.

    python3 tests/data/record/make_oracle.py [DIR]      (default tests/data/recorded)

For every DIR/*.pcap it writes, in DIR/oracle/:
* `<capture>.jsonl`: one JSON object per frame with the same tshark fields as the public
  corpus's oracle (so tests/oracle_compare.py compares them field by field), and
  `<capture>.conv.txt`: tshark's TCP/UDP conversation tables (for tests/conn_compare.py);
* `expected.json`: per capture, the application records tshark shows, in order: HTTP requests
  and response codes, TLS ClientHellos (version, SNI, ALPN, JA3 and a JA4 computed here from
  tshark's fields, following FoxIO's JA4 specification: tshark 4.0 has no JA4 field) and
  ServerHellos (version, JA3S), DNS questions and answers, SSH banners and HASSH, DHCPv4
  message types, NTP versions and modes.
Run by record.sh after recording; CI has no tshark and uses the committed files.
Needs tshark (written with 4.0.17) and nothing else: no netcap import, on purpose.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

# The public corpus's oracle field set (shared/corpus/make_oracle.sh, tshark 4.0.17).
FIELDS = [f for line in (
    "frame.number frame.time_epoch frame.len frame.cap_len frame.protocols",
    "frame.interface_id eth.src eth.dst eth.type vlan.id vlan.etype sll.pkttype ip.src",
    "ip.dst ip.proto ip.ttl ip.flags ip.id ip.frag_offset ip.flags.mf ipv6.src ipv6.dst",
    "ipv6.nxt ipv6.hlim ipv6.fraghdr.offset ipv6.fraghdr.more ipv6.fraghdr.ident",
    "tcp.srcport tcp.dstport tcp.flags tcp.seq_raw tcp.ack_raw tcp.len tcp.stream",
    "udp.srcport udp.dstport udp.length udp.stream icmp.type icmp.code icmpv6.type",
    "icmpv6.code arp.opcode arp.src.hw_mac arp.src.proto_ipv4 arp.dst.proto_ipv4 dns.id",
    "dns.flags.response dns.flags.rcode dns.qry.name dns.qry.type dns.a dns.aaaa",
    "dns.count.answers http.request.method http.request.uri http.request.version",
    "http.host http.user_agent http.response.code http.response.version http.content_type",
    "http.content_encoding http.transfer_encoding http.content_length tls.record.version",
    "tls.handshake.type tls.handshake.version tls.handshake.extensions.supported_version",
    "tls.handshake.extensions_server_name tls.handshake.ciphersuite",
    "tls.handshake.extensions_alpn_str tls.handshake.ja3_full tls.handshake.ja3",
    "tls.handshake.ja3s_full tls.handshake.ja3s ssh.protocol ssh.kex.hassh",
    "ssh.kex.hasshserver ssh.kex.hassh_algorithms ssh.kex.hasshserver_algorithms",
    "dhcp.option.dhcp dhcp.id dhcp.hw.mac_addr dhcp.option.requested_ip_address",
    "dhcp.option.hostname ntp.flags.mode ntp.flags.vn ntp.stratum _ws.malformed",
) for f in line.split()]
# Further fields for expected.json.
EXTRA = ["dns.mx.mail_exchange", "dns.txt", "dhcp.option.request_list_item", "dhcp.ip.your"]

_DHCP_TYPES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak",
               7: "release", 8: "inform"}
_NTP_MODES = {1: "symmetric_active", 2: "symmetric_passive", 3: "client", 4: "server",
              5: "broadcast"}
_TLS_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}


def tshark_frames(pcap: Path, fields: list[str]) -> list[dict[str, Any]]:
    args = ["tshark", "-r", str(pcap), "-n", "-T", "json"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    frames = []
    for p in json.loads(out) if out else []:
        rec: dict[str, Any] = {}
        for k, v in p["_source"]["layers"].items():
            rec[k] = int(v[0]) if k == "frame.number" else True if k == "_ws.malformed" else v
        frames.append(rec)
    return frames


def _grease(v: int) -> bool:
    return v & 0x0F0F == 0x0A0A and v >> 8 == v & 0xFF


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "0" * 12


Pairs = list[tuple[str, Any]]  # a tshark -T json object, repeated keys kept in order


def _values(node: Any, key: str) -> list[str]:
    """Every value of `key` under node, depth first, in order."""
    out: list[str] = []
    if isinstance(node, list):
        for item in node:
            if isinstance(item, tuple):
                k, v = item
                if k == key and isinstance(v, str):
                    out.append(v)
                else:
                    out += _values(v, key)
            else:
                out += _values(item, key)
    return out


def client_hellos_ja4(pcap: Path) -> dict[int, list[str]]:
    """Frame number -> the JA4 (FoxIO's specification, TLS over TCP) of each ClientHello
    tshark shows in it, from tshark's dissection tree, where every value belongs to its
    extension (the flat field list mixes delegated_credentials' signature algorithms
    with signature_algorithms')."""
    out = subprocess.run(["tshark", "-r", str(pcap), "-n", "-Y", "tls.handshake.type == 1 && tcp",
                          "-T", "json", "-J", "frame tls"], capture_output=True, text=True,
                         check=True).stdout.strip()
    found: dict[int, list[str]] = {}
    for packet in json.loads(out, object_pairs_hook=list) if out else []:
        layers = dict(dict(packet)["_source"])["layers"]
        number = int(_values(layers, "frame.number")[0])
        stack = [layers]
        while stack:
            node = stack.pop(0)
            if not isinstance(node, list):
                continue
            pairs = [i for i in node if isinstance(i, tuple)]
            if ("tls.handshake.type", "1") in pairs:
                found.setdefault(number, []).append(_ja4(pairs))
                continue
            stack += [v for _, v in pairs] + [i for i in node if not isinstance(i, tuple)]
    return found


def _ja4(hello: Pairs) -> str:
    ciphers = [int(c, 16) for c in _values(hello, "tls.handshake.ciphersuite")]
    ciphers = [c for c in ciphers if not _grease(c)]
    exts: list[tuple[int, Pairs]] = [(int(_values(v, "tls.handshake.extension.type")[0]), v)
                                     for k, v in hello if k.startswith("Extension: ")]
    exts = [(e, v) for e, v in exts if not _grease(e)]
    by_type = dict(exts)
    versions = [int(x, 16) for x in _values(by_type.get(43, []),
                                              "tls.handshake.extensions.supported_version")]
    versions = [x for x in versions if not _grease(x)]
    version = max(versions) if versions else int(_values(hello, "tls.handshake.version")[0], 16)
    alpn = _values(by_type.get(16, []), "tls.handshake.extensions_alpn_str")
    first = alpn[0] if alpn else ""
    alpn_chars = first[0] + first[-1] if first else "00"
    if not (alpn_chars.isascii() and alpn_chars.isalnum()):
        alpn_chars = first.encode().hex()[0] + first.encode().hex()[-1]
    a = (f"t{_TLS_VERSIONS.get(version, '00')}{'d' if 0 in by_type else 'i'}"
         f"{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn_chars}")
    b = _sha12(",".join(sorted(f"{c:04x}" for c in ciphers)))
    c_exts = ",".join(sorted(f"{e:04x}" for e, _ in exts if e not in (0x0000, 0x0010)))
    sigs = [s.removeprefix("0x") for s in _values(by_type.get(13, []),
                                                    "tls.handshake.sig_hash_alg")]
    # With no signature algorithms the '_' stays, as in suricata's JA4 and the published
    # values of the public corpus (FoxIO's text says it is dropped).
    c = _sha12(c_exts + "_" + ",".join(sigs)) if c_exts else "0" * 12
    return f"{a}_{b}_{c}"


def expected(frames: list[dict[str, Any]], ja4: dict[int, list[str]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {k: [] for k in (
        "http_requests", "http_responses", "tls_client_hellos", "tls_server_hellos",
        "dns_queries", "dns_responses", "ssh", "dhcp", "ntp")}
    for f in frames:
        g = f.get
        if "http.request.method" in f:
            out["http_requests"].append({
                "method": g("http.request.method")[0], "uri": g("http.request.uri")[0],
                "host": g("http.host", [""])[0], "user_agent": g("http.user_agent", [""])[0]})
        if "http.response.code" in f:
            out["http_responses"].append(int(g("http.response.code")[0]))
        for t in g("tls.handshake.type", []):  # one hello per frame in these captures
            if t == "1":
                versions = g("tls.handshake.extensions.supported_version", [])
                out["tls_client_hellos"].append({
                    "sni": g("tls.handshake.extensions_server_name", [""])[0],
                    "alpn": g("tls.handshake.extensions_alpn_str", []),
                    "supported_versions": [int(v, 16) for v in versions],
                    "ja3": g("tls.handshake.ja3")[0], "ja3_full": g("tls.handshake.ja3_full")[0],
                    "ja4": ja4[int(g("frame.number"))][0]})
            elif t == "2":
                chosen = g("tls.handshake.extensions.supported_version",
                           g("tls.handshake.version"))
                out["tls_server_hellos"].append({
                    "version": int(chosen[0], 16),
                    "cipher": int(g("tls.handshake.ciphersuite")[0], 16),
                    "ja3s": g("tls.handshake.ja3s")[0],
                    "ja3s_full": g("tls.handshake.ja3s_full")[0]})
        if "dns.id" in f:
            entry = {"id": int(g("dns.id")[0], 16), "names": g("dns.qry.name", []),
                     "types": [int(t) for t in g("dns.qry.type", [])]}
            if g("dns.flags.response") == ["1"]:
                entry |= {"rcode": int(g("dns.flags.rcode")[0]), "a": g("dns.a", []),
                          "aaaa": g("dns.aaaa", []), "mx": g("dns.mx.mail_exchange", []),
                          "txt": g("dns.txt", [])}
                out["dns_responses"].append(entry)
            else:
                out["dns_queries"].append(entry)
        if "ssh.protocol" in f:
            out["ssh"].append({"port": int(g("tcp.srcport")[0]), "banner": g("ssh.protocol")[0]})
        if "ssh.kex.hassh" in f or "ssh.kex.hasshserver" in f:
            out["ssh"].append({
                "port": int(g("tcp.srcport")[0]),
                "hassh": g("ssh.kex.hassh", g("ssh.kex.hasshserver"))[0],
                "algorithms": g("ssh.kex.hassh_algorithms",
                                g("ssh.kex.hasshserver_algorithms"))[0]})
        if "dhcp.option.dhcp" in f:
            out["dhcp"].append({
                "type": _DHCP_TYPES[int(g("dhcp.option.dhcp")[0])],
                "your_ip": g("dhcp.ip.your", [""])[0],
                "fingerprint": [int(x) for x in g("dhcp.option.request_list_item", [])]})
        if "ntp.flags.vn" in f:
            out["ntp"].append({"version": int(g("ntp.flags.vn")[0]),
                               "mode": _NTP_MODES.get(int(g("ntp.flags.mode")[0]), "other")})
    return {k: v for k, v in out.items() if v}


def main(argv: list[str]) -> int:
    where = Path(argv[1] if len(argv) > 1 else Path(__file__).parent.parent / "recorded")
    oracle = where / "oracle"
    oracle.mkdir(exist_ok=True)
    version = subprocess.run(["tshark", "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    summary: dict[str, Any] = {"tshark": version}
    for pcap in sorted(where.glob("*.pcap")):
        frames = tshark_frames(pcap, FIELDS + EXTRA)
        with open(oracle / f"{pcap.name}.jsonl", "w") as o:
            for fr in frames:
                o.write(json.dumps({k: v for k, v in fr.items() if k in FIELDS}) + "\n")
        conv = subprocess.run(["tshark", "-r", str(pcap), "-n", "-q", "-z", "conv,tcp",
                               "-z", "conv,udp"], capture_output=True, text=True, check=True)
        (oracle / f"{pcap.name}.conv.txt").write_text(conv.stdout)
        summary[pcap.name] = {"frames": len(frames),
                              "conversations": sum(1 for line in conv.stdout.splitlines()
                                                   if "<->" in line)} | expected(
            frames, client_hellos_ja4(pcap))
        print(f"{pcap.name:12} {len(frames):4} frames", file=sys.stderr)
    (oracle / "expected.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
