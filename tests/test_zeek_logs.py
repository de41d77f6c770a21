"""Our audit records against zeek's btest baselines: conn, dns, ssl, ssh, dhcp and ntp logs.

zeek (zeek/zeek@a13de64f) logs are in the public corpus, expected/zeek/ (tests/corpus.py finds it;
provenance in its MANIFEST.md). For each baseline, the capture runs through the whole pipeline
(`run_capture`, as `net capture` writes its files) and the records are read back with
`NcapReader`. zeek's log entries are then rebuilt from our records with zeek's own rules (what
an entry aggregates and where each of its fields comes from) and compared field by field.
The baselines mask `ts` and `uid` (XXXXXXXXXX.XXXXXX), so entries are matched by what
identifies them, independent of zeek's originator/responder choice (the two endpoints as a
sorted pair), plus the n-th occurrence when that repeats:

* conn: proto + endpoints. Compared: the originator (zeek's id.orig_*, ours the Src side),
  service (ours: ApplicationProto, the protocol our analyzers recognised: DNS, NTP, DHCPv4,
  HTTP, TLS as zeek's ssl, SSH; not compared in the logs of `zeek -b` runs, which load no
  analyzer), duration and orig_bytes+resp_bytes
  (zeek leaves them unset when the duration is 0; ours: Duration, AppPayloadSize, both
  directions, as our Connection does not split payload bytes), orig_pkts+resp_pkts (ours:
  NumPackets), and per side zeek's IP bytes plus the link header of each of that side's
  packets (14 Ethernet, 22 with the two VLAN tags of zeek_q-in-q; radiotap headers vary:
  not compared) against our wire bytes of that side (BytesClientToServer/ServerToClient);
  orig_l2_addr/resp_l2_addr (mac-logging) against SrcMAC/DstMAC. conn_state, history,
  missed_bytes, local_*, tunnel_parents and the vlan columns have no counterpart.
* dns: endpoints + trans_id. Our messages are paired as zeek pairs them: per connection and
  ID, a response answers the oldest open query; unanswered queries and unasked responses are
  entries of their own. query (the question, or zeek's fallback: the first answer's name),
  qclass, qtype, opcode, RD, TC, Z (from the query when there is one), rcode, AA, RA (from
  the response), answers and TTLs (the answer section of the response, rendered as zeek does:
  addresses, target names, "TXT <len> <text>" per string).
* ssl / ssl-all: endpoints. version and cipher (the server's choice, by name), server_name
  (SNI), next_protocol (the server's ALPN choice), and, where the log has them (ssl-log-ext,
  keyexchange), client/server versions, client ciphers, client/server extension types,
  point formats, groups, ALPNs offered, compression methods, signature and hash algorithms
  (zeek splits each signature scheme into its low and high byte), the TLS 1.3
  supported_version and key_share group, the client's record version and both randoms
  (zeek's client_random lacks its first 4 bytes: its event passes them as `possible_ts`).
  established, curve, certificates and key-exchange values have no counterpart.
* ssh: endpoints. version (the banner's protocol major version), client and server banners,
  and the negotiated kex, cipher, mac and compression algorithms (the first of the client's
  list the server offers, RFC 4253 7.1, from the HASSH inputs of both sides).
* dhcp: client MAC + n-th transaction. Our messages are aggregated per xid as zeek's
  `DHCP::aggregate_msgs` does: msg_types, client_addr, server_addr, mac, host_name, domain,
  requested_addr, assigned_addr, lease_time, client/server_message, duration.
* ntp: endpoints + mode + n-th message. version, stratum, poll and precision (zeek: 2^x
  seconds), root_delay and root_disp (16.16 fixed point, as seconds), ref_id (a 4-byte text
  at stratum 0-1, else an address), and the four timestamps as Unix seconds.

Every difference, and every entry present on one side only (field `entry`, the other side
ABSENT), must be listed with its reason in tests/data/zeek_disagreements.tsv: a new
difference and a fixed one both fail. Run this file as a script to print the differences;
`--update` (or NETCAP_UPDATE_ZEEK=1 under pytest) rewrites the list, keeping the reasons
already written and marking new rows UNEXPLAINED, which fails until a reason is written in.
Reasons starting with "BUG:" are defects of ours, kept visible until fixed.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest

from corpus import EXPECTED, PCAPS
from netcap.pipeline import CaptureOptions, run_capture
from netcap.sources.ncap import NcapReader

HERE = Path(__file__).parent

pytestmark = pytest.mark.corpus  # every test here reads the public corpus (tests/corpus.py)

ZEEK = EXPECTED / "zeek"
LIST = HERE / "data" / "zeek_disagreements.tsv"
HEADER = ("log", "entry", "field", "ours", "zeek", "reason")
UPDATE_ENV = "NETCAP_UPDATE_ZEEK"
ABSENT = "ABSENT"
UNEXPLAINED = "UNEXPLAINED"

Row = dict[str, str]  # one zeek log entry: column -> text
Key = tuple[str, str, str, str, str]  # log, entry, field, ours, zeek
T = TypeVar("T")


@dataclass(frozen=True)
class Baseline:
    capture: str
    log: str  # path below expected/zeek
    kind: str  # conn, dns, ssl, ssh, dhcp, ntp
    section: str | int | None = None  # `#file` name or index, for logs of several traces
    service: bool = True  # conn: compare service (False for `zeek -b` runs)


_DHCP = "zeek_dhcp.pcap/scripts.base.protocols.dhcp.dhcp-all-msg-types/"
_MAC = "zeek_radiotap.pcap/scripts.policy.protocols.conn.mac-logging/"
_EXT = "scripts.policy.protocols.ssl.ssl-log-ext/ssl-all.log"
BASELINES = [
    Baseline("zeek_dhcp.pcap", _DHCP + "conn.log", "conn"),
    Baseline("zeek_pcapng-multi-interface.pcapng",
             "zeek_pcapng-multi-interface.pcapng/core.pcapng-pktsrc/conn.log", "conn"),
    Baseline("zeek_q-in-q.pcap", "zeek_q-in-q.pcap/core.q-in-q/conn.log", "conn"),
    Baseline("zeek_q-in-q.pcap",
             "zeek_q-in-q.pcap/scripts.policy.protocols.conn.vlan-logging/conn.log", "conn"),
    Baseline("zeek_radiotap.pcap", "zeek_radiotap.pcap/core.radiotap/conn.log", "conn"),
    # mac-logging.zeek runs `zeek -b` over wikipedia.trace (conn1) and radiotap.pcap (conn2)
    Baseline("zeek_wikipedia.pcap", _MAC + "conn1.log", "conn", service=False),
    Baseline("zeek_radiotap.pcap", _MAC + "conn2.log", "conn", service=False),
    Baseline("zeek_wikipedia.pcap", "zeek_wikipedia.pcap/opt.basic/conn.log", "conn"),
    Baseline("zeek_wikipedia.pcap", "zeek_wikipedia.pcap/opt.basic/dns.log", "dns"),
    Baseline("zeek_ipv6-fragmented-dns.pcap",
             "zeek_ipv6-fragmented-dns.pcap/core.ipv6-frag/dns.log", "dns"),
    Baseline("zeek_tls_tls1_1.pcap",
             "zeek_tls_tls1_1.pcap/scripts.base.protocols.ssl.tls1_1/ssl.log", "ssl"),
    Baseline("zeek_tls_tls1_1.pcap", "zeek_tls_tls1_1.pcap/" + _EXT, "ssl", "tls1_1.pcap"),
    # keyexchange.test reads six traces without `#file` lines: tls1_1.pcap is the 4th
    Baseline("zeek_tls_tls1_1.pcap",
             "zeek_tls_tls1_1.pcap/scripts.base.protocols.ssl.keyexchange/ssl-all.log", "ssl", 3),
    Baseline("zeek_tls_tls13_wolfssl.pcap", "zeek_tls_tls13_wolfssl.pcap/scripts.base.protocols"
             ".ssl.tls13_encrypted_handshake_events/ssl.log", "ssl"),
    Baseline("zeek_tls_tls13_wolfssl.pcap", "zeek_tls_tls13_wolfssl.pcap/" + _EXT, "ssl",
             "tls13_wolfssl.pcap"),
    Baseline("zeek_ssh_kex_curve25519.pcap",
             "zeek_ssh_kex_curve25519.pcap/scripts.base.protocols.ssh.curve25519_kex/ssh.log",
             "ssh"),
    Baseline("zeek_dhcp.pcap", _DHCP + "dhcp.log", "dhcp"),
    Baseline("zeek_ntp.pcap", "zeek_ntp.pcap/scripts.base.protocols.ntp.ntp/ntp.log", "ntp"),
]

# Fewest fields compared per log type (the test must not pass on empty comparisons).
MIN_COMPARED = {"conn": 550, "dns": 310, "ssl": 45, "ssh": 7, "dhcp": 30, "ntp": 350}

# Link header bytes per packet (wire bytes = IP bytes + this); None: varies, not compared.
LINK_HEADER: dict[str, int | None] = {"zeek_q-in-q.pcap": 22, "zeek_radiotap.pcap": None}


# -- zeek's side ---------------------------------------------------------------------------


def _unescape(s: str) -> str:
    return s.encode("latin-1").decode("unicode_escape") if "\\x" in s else s


def read_log(path: Path, section: str | int | None = None) -> list[Row]:
    """The entries of one section of a zeek TSV log (`#fields` starts a section)."""
    sections: list[tuple[str | None, list[Row]]] = []
    fields: list[str] = []
    name: str | None = None
    for line in path.read_text().splitlines():
        if line.startswith("#file "):
            name = line[6:]
        elif line.startswith("#fields\t"):
            fields = line.split("\t")[1:]
            sections.append((name, []))
        elif line and not line.startswith("#"):
            values = [_unescape(v) for v in line.split("\t")]
            sections[-1][1].append(dict(zip(fields, values, strict=True)))
    if section is None:
        assert len(sections) == 1, path
        return sections[0][1]
    if isinstance(section, int):
        return sections[section][1]
    (rows,) = [r for n, r in sections if n == section]
    return rows


# -- our side ------------------------------------------------------------------------------

_TYPES = ("Connection", "DNS", "TLSClientHello", "TLSServerHello", "SSH", "DHCPv4", "NTP")


@cache
def our_records(capture: str) -> dict[str, tuple[Any, ...]]:
    """Our records of a capture by type, as `net capture` writes them, read back."""
    out: dict[str, tuple[Any, ...]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run_capture(CaptureOptions(read=str(PCAPS / capture), out=tmp, workers=1))
        for name in _TYPES:
            path = os.path.join(tmp, f"{name}.ncap.gz")
            if os.path.exists(path):
                with NcapReader(path) as reader:
                    out[name] = tuple(reader)
            else:
                out[name] = ()
    return out


def _ep(ip: object, port: object) -> str:
    return f"[{ip}]:{port}" if ":" in str(ip) else f"{ip}:{port}"


def _pair(a: str, b: str) -> str:
    return " <-> ".join(sorted((a, b)))


def _z_pair(z: Row) -> str:
    return _pair(_ep(z["id.orig_h"], z["id.orig_p"]), _ep(z["id.resp_h"], z["id.resp_p"]))


def _tf(v: object) -> str:
    return "T" if v else "F"


def _secs(ns: int) -> str:
    return f"{ns / 1e9:.6f}"


def _vec(values: Iterable[object]) -> str:
    out = ",".join(str(v) for v in values)
    return out or "-"


Entry = tuple[str, dict[str, str]]  # entry id, field -> our value


def _numbered(entries: list[tuple[str, T]]) -> dict[str, T]:
    """Entry ids made unique by appending #n to the n-th (n > 1) repeat."""
    seen: Counter[str] = Counter()
    out: dict[str, T] = {}
    for eid, fields in entries:
        seen[eid] += 1
        out[eid if seen[eid] == 1 else f"{eid} #{seen[eid]}"] = fields
    return out


# -- conn ----------------------------------------------------------------------------------

_SERVICE = {"DNS": "dns", "DHCPv4": "dhcp", "NTP": "ntp", "HTTP": "http", "TLS": "ssl",
            "SSH": "ssh", "": "-"}


def _conn_ours(recs: dict[str, tuple[Any, ...]]) -> list[tuple[str, Any]]:
    return [(f"{c.TransportProto.lower()} "
             f"{_pair(_ep(c.SrcIP, c.SrcPort), _ep(c.DstIP, c.DstPort))}", c)
            for c in sorted(recs["Connection"], key=lambda c: c.TimestampFirst)]


def _conn_fields(b: Baseline, c: Any, z: Row) -> dict[str, tuple[str, str]]:
    src = _ep(c.SrcIP, c.SrcPort)
    orig = _ep(z["id.orig_h"], z["id.orig_p"])
    out = {"orig": (src, orig)}
    if b.service:
        out["service"] = (_SERVICE.get(c.ApplicationProto, c.ApplicationProto), z["service"])
    out["duration"] = (_secs(c.Duration) if c.Duration else "-", z["duration"])
    zb = "-" if z["orig_bytes"] == "-" else str(int(z["orig_bytes"]) + int(z["resp_bytes"]))
    out["orig_bytes+resp_bytes"] = (str(c.AppPayloadSize) if c.Duration else "-", zb)
    out["orig_pkts+resp_pkts"] = (str(c.NumPackets),
                                  str(int(z["orig_pkts"]) + int(z["resp_pkts"])))
    link = LINK_HEADER.get(b.capture, 14)
    same = src == orig
    if link is not None:
        for side, ours in (("orig", c.BytesClientToServer), ("resp", c.BytesServerToClient)):
            zside = side if same else ("resp" if side == "orig" else "orig")
            wire = int(z[f"{zside}_ip_bytes"]) + link * int(z[f"{zside}_pkts"])
            out[f"{zside}_ip_bytes+link"] = (str(ours), str(wire))
    if "orig_l2_addr" in z:
        macs = (c.SrcMAC or "-", c.DstMAC or "-")
        out["orig_l2_addr"] = (macs[0] if same else macs[1], z["orig_l2_addr"])
        out["resp_l2_addr"] = (macs[1] if same else macs[0], z["resp_l2_addr"])
    return out


# -- dns -----------------------------------------------------------------------------------


def _name(v: bytes | str) -> str:
    return v.decode("latin-1") if isinstance(v, bytes) else v


def _dns_answer(rr: Any) -> str:
    t = rr.Type
    if t in (1, 28):
        return str(rr.IP)
    if t == 5:
        return _name(rr.CNAME)
    if t == 2:
        return _name(rr.NS)
    if t == 12:
        return _name(rr.PTR)
    if t == 15:
        return _name(rr.MX.Name)
    if t == 33:
        return _name(rr.SRV.Name)
    if t == 6:
        return _name(rr.SOA.MName)
    if t == 16:
        return " ".join(f"TXT {len(s)} {_name(s)}" for s in rr.TXTs)
    return f"<unknown type={t}>"


def _dns_entry(q: Any | None, r: Any | None) -> dict[str, str]:
    first = q if q is not None else r
    assert first is not None
    f: dict[str, str] = {}
    if first.Questions:
        qq = first.Questions[0]
        f.update(query=qq.Name, qclass=str(qq.Class), qtype=str(qq.Type))
    else:
        f.update(query=r.Answers[0].Name if r is not None and r.Answers else "-",
                 qclass="-", qtype="-")
    f.update(opcode=str(first.OpCode), RD=_tf(first.RD), TC=_tf(first.TC), Z=str(first.Z))
    if r is None:
        f.update(rcode="-", AA="F", RA="F", answers="-", TTLs="-")
    else:
        f.update(rcode=str(r.ResponseCode), AA=_tf(r.AA), RA=_tf(r.RA),
                 answers=_vec(_dns_answer(a) for a in r.Answers),
                 TTLs=_vec(f"{a.TTL:.6f}" for a in r.Answers))
    return f


def _dns_ours(recs: dict[str, tuple[Any, ...]]) -> list[Entry]:
    pending: dict[tuple[str, int], list[list[Any]]] = defaultdict(list)
    entries: list[tuple[int, str, list[Any]]] = []  # time, id, [query, response]
    for m in sorted(recs["DNS"], key=lambda m: m.Timestamp):
        conn = _pair(_ep(m.SrcIP, m.SrcPort), _ep(m.DstIP, m.DstPort))
        eid = f"{conn} id {m.ID}"
        if not m.QR:
            pair: list[Any] = [m, None]
            pending[conn, m.ID].append(pair)
            entries.append((m.Timestamp, eid, pair))
        elif pending[conn, m.ID]:
            pending[conn, m.ID].pop(0)[1] = m
        else:
            entries.append((m.Timestamp, eid, [None, m]))
    return [(eid, _dns_entry(q, r)) for _, eid, (q, r) in entries]


# -- ssl -----------------------------------------------------------------------------------

_VERSION = {0x0300: "SSLv3", 0x0301: "TLSv10", 0x0302: "TLSv11", 0x0303: "TLSv12",
            0x0304: "TLSv13"}
# IANA names of the cipher suites the compared servers chose.
_CIPHER = {0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0x1302: "TLS_AES_256_GCM_SHA384"}


def _ssl_ours(recs: dict[str, tuple[Any, ...]]) -> list[Entry]:
    servers = {(_ep(s.DstIP, s.DstPort), _ep(s.SrcIP, s.SrcPort)): s
               for s in recs["TLSServerHello"]}
    out: list[Entry] = []
    for c in sorted(recs["TLSClientHello"], key=lambda c: c.Timestamp):
        cli, srv = _ep(c.SrcIP, c.SrcPort), _ep(c.DstIP, c.DstPort)
        s = servers.get((cli, srv))
        f = {"server_name": c.SNI or "-", "client_version": str(c.HandshakeVersion),
             "client_ciphers": _vec(c.CipherSuites), "ssl_client_exts": _vec(c.Extensions),
             "point_formats": _vec(c.SupportedPoints), "client_curves": _vec(c.SupportedGroups),
             "orig_alpn": _vec(c.ALPNs), "client_comp_methods": _vec(c.CompressMethods),
             "sigalgs": _vec(a & 0xFF for a in c.SignatureAlgs),
             "hashalgs": _vec(a >> 8 for a in c.SignatureAlgs),
             "client_record_version": _VERSION.get(c.Version, f"unknown-{c.Version}"),
             "client_random": bytes(c.Random[4:]).hex()}
        if s is not None:
            v = s.SupportedVersion or s.Version
            f.update(version=_VERSION.get(v, f"unknown-{v}"),
                     cipher=_CIPHER.get(s.CipherSuite, f"unknown-{s.CipherSuite}"),
                     next_protocol=s.AlpnProtocol or "-", server_version=str(s.Version),
                     ssl_server_exts=_vec(s.Extensions),
                     server_supported_version=str(s.SupportedVersion or "-"),
                     server_key_share_group=str(s.SelectedGroup or "-"),
                     server_random=bytes(s.Random).hex())
        out.append((_pair(cli, srv), f))
    return out


# -- ssh -----------------------------------------------------------------------------------


def _negotiated(client: list[str], server: list[str]) -> str:
    return next((a for a in client if a in server), "-")


def _ssh_ours(recs: dict[str, tuple[Any, ...]]) -> list[Entry]:
    by_conn: dict[str, dict[bool, Any]] = defaultdict(dict)
    for s in recs["SSH"]:
        src, dst = (_ep(ip.strip("[]"), port)
                    for ip, port in (end.rsplit(":", 1) for end in s.Flow.split("->")))
        by_conn[_pair(src, dst)][bool(s.IsClient)] = s
    out: list[Entry] = []
    for conn, sides in by_conn.items():
        c, s = sides.get(True), sides.get(False)
        f = {"client": c.Ident if c else "-", "server": s.Ident if s else "-"}
        ident = str((sides[True] if True in sides else sides[False]).Ident)
        f["version"] = ident.split("-")[1].split(".")[0] if ident.count("-") >= 2 else "-"
        if c is not None and s is not None and c.Algorithms and s.Algorithms:
            ca = [x.split(",") for x in c.Algorithms.split(";")]
            sa = [x.split(",") for x in s.Algorithms.split(";")]
            for i, name in enumerate(("kex_alg", "cipher_alg", "mac_alg", "compression_alg")):
                f[name] = _negotiated(ca[i], sa[i])
        out.append((conn, f))
    return out


# -- dhcp ----------------------------------------------------------------------------------

_DHCP_TYPES = ["-", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE",
               "INFORM"]


def _dhcp_ours(recs: dict[str, tuple[Any, ...]]) -> list[Entry]:
    """Messages aggregated per xid, each field taken as zeek's DHCP::aggregate_msgs does."""
    groups: dict[int, list[Any]] = {}
    for m in sorted(recs["DHCPv4"], key=lambda m: m.Timestamp):
        groups.setdefault(m.Xid, []).append(m)
    out: list[Entry] = []
    for msgs in groups.values():
        f: dict[str, str] = {"duration": _secs(msgs[-1].Timestamp - msgs[0].Timestamp)}
        types: list[str] = []
        chaddr = ""
        for m in msgs:
            opts = {o.Type: o.Data for o in m.Options}
            t = int(opts.get(53, "0"))
            types.append(_DHCP_TYPES[t] if t < len(_DHCP_TYPES) else str(t))
            client = m.Operation == 1
            if 56 in opts:
                f["client_message" if client else "server_message"] = opts[56]
            if client:
                if m.SrcIP not in ("0.0.0.0", "255.255.255.255"):
                    f["client_addr"] = m.SrcIP
                if 12 in opts:
                    f["host_name"] = opts[12]
                if opts.get(61, "").startswith("01") and len(opts[61]) == 14:
                    f["mac"] = ":".join(opts[61][i : i + 2] for i in range(2, 14, 2))
                else:
                    chaddr = m.ClientHWAddr
                if 50 in opts:
                    f["requested_addr"] = opts[50]
            else:
                if m.YourClientIP != "0.0.0.0":
                    f["server_addr"] = m.SrcIP  # the server, whichever side zeek made orig
                    f["assigned_addr"] = m.YourClientIP
                if m.ClientHWAddr and "mac" not in f:
                    f["mac"] = m.ClientHWAddr
                if "client_addr" not in f and "assigned_addr" in f:
                    f["client_addr"] = f["assigned_addr"]
                if 15 in opts:
                    f["domain"] = opts[15]
                if 51 in opts:
                    f["lease_time"] = f"{int(opts[51], 16):.6f}"
        if "mac" not in f and chaddr:
            f["mac"] = chaddr
        f["msg_types"] = ",".join(types)
        out.append((f.get("mac", "-"), f))
    return out


_DHCP_FIELDS = ("client_addr", "server_addr", "mac", "host_name", "domain", "requested_addr",
                "assigned_addr", "lease_time", "client_message", "server_message", "msg_types",
                "duration")


# -- ntp -----------------------------------------------------------------------------------

_NTP_EPOCH = 2208988800  # 1900-01-01 to 1970-01-01, seconds


def _ntp_time(raw: int) -> str:
    if not raw:
        return "0.000000"
    return f"{(raw >> 32) - _NTP_EPOCH + (raw & 0xFFFFFFFF) / 2**32:.6f}"


def _ref_id(m: Any) -> str:
    raw = int(m.ReferenceID).to_bytes(4, "big")
    if m.Stratum < 2:
        return raw.decode("latin-1")
    return ".".join(str(x) for x in raw)


def _ntp_ours(recs: dict[str, tuple[Any, ...]]) -> list[Entry]:
    out: list[Entry] = []
    for m in sorted(recs["NTP"], key=lambda m: m.Timestamp):
        eid = f"{_pair(_ep(m.SrcIP, m.SrcPort), _ep(m.DstIP, m.DstPort))} mode {m.Mode}"
        out.append((eid, {
            "version": str(m.Version), "mode": str(m.Mode), "stratum": str(m.Stratum),
            "poll": f"{2.0 ** m.Poll:.6f}", "precision": f"{2.0 ** m.Precision:.6f}",
            "root_delay": f"{m.RootDelay / 65536:.6f}",
            "root_disp": f"{m.RootDispersion / 65536:.6f}", "ref_id": _ref_id(m),
            "ref_time": _ntp_time(m.ReferenceTimestamp),
            "org_time": _ntp_time(m.OriginTimestamp),
            "rec_time": _ntp_time(m.ReceiveTimestamp),
            "xmt_time": _ntp_time(m.TransmitTimestamp)}))
    return out


# -- the comparison ------------------------------------------------------------------------


def _zeek_id(kind: str, z: Row) -> str:
    if kind == "conn":
        return f"{z['proto']} {_z_pair(z)}"
    if kind == "dns":
        return f"{_z_pair(z)} id {z['trans_id']}"
    if kind == "dhcp":
        return z["mac"]
    if kind == "ntp":
        return f"{_z_pair(z)} mode {z['mode']}"
    return _z_pair(z)


OursFn = Callable[[dict[str, tuple[Any, ...]]], list[Entry]]
_OURS: dict[str, OursFn] = {"dns": _dns_ours, "ssl": _ssl_ours, "ssh": _ssh_ours,
                            "dhcp": _dhcp_ours, "ntp": _ntp_ours}


def compare(b: Baseline) -> tuple[list[Key], int]:
    """The differences for one baseline, and how many fields were compared."""
    recs = our_records(b.capture)
    zrows = read_log(ZEEK / b.log, b.section)
    theirs = _numbered([(_zeek_id(b.kind, z), z) for z in zrows])
    diffs: list[Key] = []
    compared = 0
    pairs: dict[str, dict[str, tuple[str, str]]] = {}  # entry -> field -> (ours, zeek)
    if b.kind == "conn":
        conns = _numbered(_conn_ours(recs))
        pairs = {eid: _conn_fields(b, conns[eid], z) for eid, z in theirs.items()
                 if eid in conns}
        ours_ids: Iterable[str] = conns
    else:
        ours = _numbered(_OURS[b.kind](recs))
        for eid, z in theirs.items():
            if eid in ours:
                names = _DHCP_FIELDS if b.kind == "dhcp" else [k for k in ours[eid] if k in z]
                pairs[eid] = {k: (ours[eid].get(k, "-"), z[k]) for k in names}
        ours_ids = ours
    for eid in theirs:
        if eid not in pairs:
            diffs.append((b.log, eid, "entry", ABSENT, "present"))
    for eid in ours_ids:
        if eid not in theirs:
            diffs.append((b.log, eid, "entry", "present", ABSENT))
    for eid, fields in pairs.items():
        for name, (a, t) in fields.items():
            compared += 1
            if a != t:
                diffs.append((b.log, eid, name, a, t))
    return diffs, compared


@dataclass
class Result:
    diffs: list[Key]
    compared: Counter[str]  # log kind -> fields compared


def compare_all() -> Result:
    diffs: list[Key] = []
    compared: Counter[str] = Counter()
    for b in BASELINES:
        d, n = compare(b)
        diffs += d
        compared[b.kind] += n
    return Result(sorted(set(diffs)), compared)


def load_list() -> dict[Key, str]:
    if not LIST.exists():
        return {}
    with open(LIST, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert tuple(rows[0]) == HEADER, rows[0]
    out: dict[Key, str] = {}
    for r in rows[1:]:
        if r:
            key: Key = (r[0], r[1], r[2], r[3], r[4])
            assert key not in out, f"listed twice: {key}"
            out[key] = r[5]
    return out


def write_list(diffs: list[Key]) -> None:
    known = load_list()
    with open(LIST, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE,
                       escapechar="\\")
        w.writerow(HEADER)
        for d in sorted(set(diffs)):
            w.writerow([*d, known.get(d, UNEXPLAINED)])


def update_requested() -> bool:
    return os.environ.get(UPDATE_ENV, "") not in ("", "0")


# -- tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result() -> Result:
    res = compare_all()
    if update_requested():
        write_list(res.diffs)
    return res


def test_baselines_are_in_the_corpus() -> None:
    for b in BASELINES:
        assert (ZEEK / b.log).is_file(), b.log
        assert (PCAPS / b.capture).is_file(), b.capture
        assert read_log(ZEEK / b.log, b.section), b.log


def test_enough_fields_are_compared(result: Result) -> None:
    for kind, least in MIN_COMPARED.items():
        assert result.compared[kind] >= least, (kind, result.compared[kind])


def test_differences_are_exactly_the_listed_ones(result: Result) -> None:
    listed = load_list()
    actual = set(result.diffs)
    new = sorted(actual - set(listed))
    fixed = sorted(set(listed) - actual)
    hint = (f"(inspect with `python tests/{Path(__file__).name}`, then `--update` or "
            f"{UPDATE_ENV}=1 rewrites {LIST.name}, keeping the reasons given)")
    assert not new, f"{len(new)} differences not listed {hint}: {new[:10]}"
    assert not fixed, f"{len(fixed)} listed differences no longer occur {hint}: {fixed[:10]}"


def test_every_listed_difference_has_a_reason(result: Result) -> None:
    bad = [k for k, reason in load_list().items()
           if not reason.strip() or reason == UNEXPLAINED]
    assert not bad, f"{len(bad)} differences without a reason: {bad[:10]}"


def main(argv: list[str]) -> int:
    res = compare_all()
    known = load_list()
    for d in res.diffs:
        print("\t".join(d), "\t", known.get(d, UNEXPLAINED))
    print(dict(res.compared), f"{len(res.diffs)} differences")
    by_reason = Counter(known.get(d, UNEXPLAINED) for d in res.diffs)
    for reason, n in by_reason.most_common():
        print(f"{n:>5}  {reason}")
    if "--update" in argv:
        write_list(res.diffs)
        print(f"wrote {LIST}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
