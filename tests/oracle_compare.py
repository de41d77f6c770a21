"""Decoded fields against the tshark oracle, packet by packet.

For every corpus capture the packets are decoded (`decode_batch`) and each frame's fields
are compared with tshark 4.0.17's per-frame JSON (the public corpus's oracle/). A field is
compared when either side has it: a layer tshark shows that we do not decode (or the
reverse) counts as a disagreement too, with the missing side shown as ABSENT.

Representations are mapped here, never in the decoder (the decoder follows the Go
Netcap / gopacket semantics):

* tshark prints hex fields ("0x0800", "0x1a2b"); ip.flags is the 3-bit flags value as a
  byte ("0x02" = DF), which equals our IPv4 Flags; ip.flags.mf is Flags & 1.
* tcp.flags is 12 bits; we keep the nine flags FIN..NS (reserved bits have no field).
* tcp.len is our TCP PayloadSize, udp.length the UDP Length field, frame.len/cap_len the
  batch's wirelen/caplen, icmp(v6).type/code the two bytes of TypeCode.
* tshark's vlan.* fields are the 802.1Q tags only (TPID 0x8100 / 0x9100); an 802.1ad
  service tag (0x88a8) is dissected as ieee8021ad.*, which the oracle does not hold. Our
  Dot1Q records cover both, so only those reached through 0x8100/0x9100 are compared.
* An 802.3 length frame has no eth.type in tshark; our EthernetType is 0 there.
* ip.*/ipv6.*/icmp.* gain further entries for headers quoted inside ICMP errors or
  tunnelled: only the first (outermost) entry is compared. vlan.* and ipv6.fraghdr.*
  are compared entry by entry (one entry per tag / fragment header).

* TLS fields are compared on TCP frames only: tshark also dissects the TLS inside QUIC
  (UDP, after decrypting QUIC Initial packets), which netcap has no analyzer for. A hello
  counts at the frame that completed it, as tshark shows reassembled hellos; only hello
  types (1, 2) of tls.handshake.type are compared.
* Application layer: tshark shows dns.flags.rcode for responses only, and the root name
  as "<Root>" (ours is the empty name); dns.a / dns.aaaa list the A / AAAA records of
  every section in order; DHCP option values are compared as our text form.

pcapng custom blocks appear in the oracle as frames without frame.interface_id; they are
not packets and are skipped (as in tests/test_sources.py). Files tshark could not open
(oracle empty, .stderr present) have nothing to compare; cut or damaged files are
compared over the frames that were read.

Run as a script to print agreement per file and per field; with `--update` (or
NETCAP_UPDATE_ORACLE=1) it rewrites the disagreement list, keeping the reasons already
given and marking new entries UNEXPLAINED.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netcap.decode.batch import Decoded, decode_batch
from netcap.reassembly.ip import Defragmenter, decode_datagrams, fragments
from netcap.reassembly.streams import StreamStage, segments
from netcap.sources.capture import CaptureError, open_capture

__all__ = [
    "ABSENT",
    "DISAGREEMENTS",
    "UNEXPLAINED",
    "Diff",
    "FileResult",
    "Result",
    "compare_all",
    "compare_file",
    "corpus_files",
    "decoded_batches",
    "load_reasons",
    "write_reasons",
]

from corpus import ORACLE, PCAPS, corpus_files

HERE = Path(__file__).parent

DISAGREEMENTS = HERE / "data" / "oracle_disagreements.tsv"
UPDATE_ENV = "NETCAP_UPDATE_ORACLE"

ABSENT = "ABSENT"
UNEXPLAINED = "UNEXPLAINED"
TSV_HEADER = ("file", "frame", "field", "ours", "tshark", "reason")

# 802.1Q TPIDs whose tags tshark shows as vlan.* (0x88a8 is ieee8021ad.*).
_VLAN_8021Q = frozenset({0x8100, 0x9100})


@dataclass(frozen=True, slots=True, order=True)
class Diff:
    """One disagreeing field: values as text, ABSENT when that side lacks the field."""

    file: str
    frame: int
    field: str
    ours: str
    tshark: str


@dataclass(slots=True)
class FileResult:
    name: str
    compared: Counter[str] = field(default_factory=Counter)  # tshark field -> count
    agreed: Counter[str] = field(default_factory=Counter)
    diffs: list[Diff] = field(default_factory=list)


@dataclass(slots=True)
class Result:
    files: list[FileResult]

    @property
    def compared(self) -> int:
        return sum(sum(f.compared.values()) for f in self.files)

    @property
    def agreed(self) -> int:
        return sum(sum(f.agreed.values()) for f in self.files)

    @property
    def diffs(self) -> list[Diff]:
        return sorted(d for f in self.files for d in f.diffs)

    @property
    def agreement(self) -> float:
        return self.agreed / self.compared if self.compared else 1.0

    def by_field(self) -> tuple[Counter[str], Counter[str]]:
        compared: Counter[str] = Counter()
        agreed: Counter[str] = Counter()
        for f in self.files:
            compared.update(f.compared)
            agreed.update(f.agreed)
        return compared, agreed


# -- our side: per packet, the records of each type in layer order -------------------------

Layers = dict[str, list[dict[str, Any]]]  # record name -> that packet's records, in order
Packet = tuple[int, int, Layers]  # wirelen, caplen, layers

_RECORD_NAMES = ("Ethernet", "Dot1Q", "ARP", "IPv4", "IPv6", "IPv6Fragment", "ICMPv4",
                 "ICMPv6", "UDP", "TCP", "DNS", "NTP", "DHCPv4", "TLSClientHello",
                 "TLSServerHello")  # fmt: skip


def _packets(decoded: list[Decoded]) -> list[Packet]:
    out: list[Packet] = []
    defrag = Defragmenter()
    stage = StreamStage()  # stream analyzers (DNS over TCP): records at the packet that
    streamed: list[tuple[int, str, dict[str, Any]]] = []  # completed the message
    for dec in decoded:
        b = dec.batch
        layers: list[Layers] = [defaultdict(list) for _ in range(len(b))]
        for name in _RECORD_NAMES:
            for pkt, rec in dec.records(name):
                layers[pkt - b.first][name].append(rec)
        out.extend((int(b.wirelen[i]), int(b.caplen[i]), layers[i]) for i in range(len(b)))
        for name, table in stage.update(segments(dec)).tables().items():
            assert table.pkt is not None
            streamed += [(int(p), name, r)
                         for p, r in zip(table.pkt, table.to_dicts(), strict=True)]
        # Reassembled IP datagrams: their transport and application records belong to
        # the fragment that completed them (where tshark shows them too).
        done = defrag.add(fragments(dec))
        if done:
            upper = decode_datagrams(done)
            for name in _RECORD_NAMES:
                streamed += [(done[p - upper.batch.first].pkt, name, r)
                             for p, r in upper.records(name)]
            for name, table in stage.update(segments(upper)).tables().items():
                assert table.pkt is not None
                streamed += [(int(p), name, r)
                             for p, r in zip(table.pkt, table.to_dicts(), strict=True)]
    for pkt, name, rec in streamed:
        out[pkt][2][name].append(rec)
    return out


# -- the field map -------------------------------------------------------------------------

Ours = Callable[[int, int, Layers], list[str]]  # -> our values as text, outer first
Theirs = Callable[[str], str]  # tshark text -> comparable text


def _dec(s: str) -> str:
    return str(int(s, 10))


def _hex(s: str) -> str:
    return str(int(s, 16))


def _bool(s: str) -> str:
    return "1" if int(s) else "0"


def _tcp_flags(s: str) -> str:
    return str(int(s, 16) & 0x1FF)  # FIN..CWR, NS; the 3 reserved bits have no field


def _first(rec: str, f: str, conv: Callable[[Any], str] = str) -> Ours:
    def get(_w: int, _c: int, layers: Layers) -> list[str]:
        rs = layers.get(rec)
        return [conv(rs[0].get(f, 0))] if rs else []

    return get


def _text(rec: str, f: str) -> Ours:
    def get(_w: int, _c: int, layers: Layers) -> list[str]:
        rs = layers.get(rec)
        return [str(rs[0].get(f, ""))] if rs else []

    return get


def _all(rec: str, f: str, conv: Callable[[Any], str] = str) -> Ours:
    def get(_w: int, _c: int, layers: Layers) -> list[str]:
        return [conv(r.get(f, 0)) for r in layers.get(rec, ())]

    return get


def _eth_type(_w: int, _c: int, layers: Layers) -> list[str]:
    rs = layers.get("Ethernet")
    if not rs or not rs[0].get("EthernetType"):
        return []  # 802.3 length frame: no EtherType (tshark shows eth.len instead)
    return [str(rs[0]["EthernetType"])]


def _vlan(f: str) -> Ours:
    def get(_w: int, _c: int, layers: Layers) -> list[str]:
        eth = layers.get("Ethernet")
        tpid = eth[0].get("EthernetType", 0) if eth else 0
        out = []
        for tag in layers.get("Dot1Q", ()):
            if tpid in _VLAN_8021Q:
                out.append(str(tag.get(f, 0)))
            tpid = tag.get("Type", 0)
        return out

    return get


def _mf(_w: int, _c: int, layers: Layers) -> list[str]:
    rs = layers.get("IPv4")
    return [str(rs[0].get("Flags", 0) & 1)] if rs else []


def _tcp_flag_bits(_w: int, _c: int, layers: Layers) -> list[str]:
    rs = layers.get("TCP")
    if not rs:
        return []
    names = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS")
    return [str(sum(1 << i for i, n in enumerate(names) if rs[0].get(n)))]


def _type_code(rec: str, shift: int) -> Ours:
    def get(_w: int, _c: int, layers: Layers) -> list[str]:
        rs = layers.get(rec)
        return [str((rs[0].get("TypeCode", 0) >> shift) & 0xFF)] if rs else []

    return get


def _dns(f: str, section: str | None = None, types: tuple[int, ...] = ()) -> Ours:
    """DNS fields: of the header (section None), or of every entry of a section (every
    resource record section when section is "*"), optionally only of some RR types."""
    def get(_w: int, _c: int, layers: Layers) -> list[str]:
        rs = layers.get("DNS")
        if not rs:
            return []
        msg = rs[0]
        if f == "ResponseCode" and not msg.get("QR"):
            return []  # tshark shows the rcode of responses only
        if section is None:
            return [str(int(msg.get(f, 0)))]
        if f == "Name":  # the root name: "" here, "<Root>" in tshark
            return [str(e.get(f, "")) or "<Root>" for e in msg.get(section, ())]
        names = ("Answers", "Authorities", "Additionals") if section == "*" else (section,)
        return [str(e.get(f, "")) for s in names for e in msg.get(s, ())
                if not types or e.get("Type") in types]

    return get


def _dhcp_option(code: int) -> Ours:
    def get(_w: int, _c: int, layers: Layers) -> list[str]:
        rs = layers.get("DHCPv4")
        return [str(o.get("Data", "")) for o in rs[0].get("Options", ())
                if o.get("Type") == code] if rs else []

    return get


def _tls(f: str) -> Ours:
    """A field of the TLS hello completed at this packet (client, then server)."""
    def get(_w: int, _c: int, layers: Layers) -> list[str]:
        out: list[str] = []
        for rec in ("TLSClientHello", "TLSServerHello"):
            for h in layers.get(rec, ()):
                if f == "type":
                    out.append("1" if rec == "TLSClientHello" else "2")
                elif f == "version":
                    out.append(str(h.get("HandshakeVersion", h.get("Version", 0))))
                elif f == "ciphers":
                    out += [str(c) for c in h.get("CipherSuites", [h.get("CipherSuite", 0)])]
                elif f == "ALPNs" and "AlpnProtocol" in h:  # the server's choice
                    out.append(str(h["AlpnProtocol"]))
                elif f in h:
                    value = h[f]
                    out += [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return out

    return get


def _hello_types(s: str) -> str:
    return s if s in ("1", "2") else ""  # other handshake messages: no record of ours


def _int_bool(v: Any) -> str:
    return "1" if v else "0"


# tshark field -> (our values, tshark value mapping, compare every entry (else first only))
FIELDS: dict[str, tuple[Ours, Theirs, bool]] = {
    "frame.len": (lambda w, _c, _l: [str(w)], _dec, False),
    "frame.cap_len": (lambda _w, c, _l: [str(c)], _dec, False),
    "eth.src": (_text("Ethernet", "SrcMAC"), str, False),
    "eth.dst": (_text("Ethernet", "DstMAC"), str, False),
    "eth.type": (_eth_type, _hex, False),
    "vlan.id": (_vlan("VLANIdentifier"), _dec, True),
    "vlan.etype": (_vlan("Type"), _hex, True),
    "ip.src": (_text("IPv4", "SrcIP"), str, False),
    "ip.dst": (_text("IPv4", "DstIP"), str, False),
    "ip.proto": (_first("IPv4", "Protocol"), _dec, False),
    "ip.ttl": (_first("IPv4", "TTL"), _dec, False),
    "ip.flags": (_first("IPv4", "Flags"), _hex, False),
    "ip.id": (_first("IPv4", "Id"), _hex, False),
    "ip.frag_offset": (_first("IPv4", "FragOffset"), _dec, False),
    "ip.flags.mf": (_mf, _bool, False),
    "ipv6.src": (_text("IPv6", "SrcIP"), str, False),
    "ipv6.dst": (_text("IPv6", "DstIP"), str, False),
    "ipv6.nxt": (_first("IPv6", "NextHeader"), _dec, False),
    "ipv6.hlim": (_first("IPv6", "HopLimit"), _dec, False),
    "ipv6.fraghdr.offset": (_all("IPv6Fragment", "FragmentOffset"), _dec, True),
    "ipv6.fraghdr.more": (_all("IPv6Fragment", "MoreFragments", _int_bool), _bool, True),
    "ipv6.fraghdr.ident": (_all("IPv6Fragment", "Identification"), _hex, True),
    "tcp.srcport": (_first("TCP", "SrcPort"), _dec, False),
    "tcp.dstport": (_first("TCP", "DstPort"), _dec, False),
    "tcp.flags": (_tcp_flag_bits, _tcp_flags, False),
    "tcp.seq_raw": (_first("TCP", "SeqNum"), _dec, False),
    "tcp.ack_raw": (_first("TCP", "AckNum"), _dec, False),
    "tcp.len": (_first("TCP", "PayloadSize"), _dec, False),
    "udp.srcport": (_first("UDP", "SrcPort"), _dec, False),
    "udp.dstport": (_first("UDP", "DstPort"), _dec, False),
    "udp.length": (_first("UDP", "Length"), _dec, False),
    "icmp.type": (_type_code("ICMPv4", 8), _dec, False),
    "icmp.code": (_type_code("ICMPv4", 0), _dec, False),
    "icmpv6.type": (_type_code("ICMPv6", 8), _dec, False),
    "icmpv6.code": (_type_code("ICMPv6", 0), _dec, False),
    "arp.opcode": (_first("ARP", "Operation"), _dec, False),
    "arp.src.hw_mac": (_text("ARP", "SrcHwAddress"), str, False),
    "arp.src.proto_ipv4": (_text("ARP", "SrcProtocolAddress"), str, False),
    "arp.dst.proto_ipv4": (_text("ARP", "DstProtocolAddress"), str, False),
    # application layer (analyzers)
    "dns.id": (_dns("ID"), _hex, False),
    "dns.flags.response": (_dns("QR"), _bool, False),
    "dns.flags.rcode": (_dns("ResponseCode"), _dec, False),
    "dns.count.answers": (_dns("ANCount"), _dec, False),
    "dns.qry.name": (_dns("Name", "Questions"), str, True),
    "dns.qry.type": (_dns("Type", "Questions"), _dec, True),
    "dns.a": (_dns("IP", "*", (1,)), str, True),
    "dns.aaaa": (_dns("IP", "*", (28,)), str, True),
    "ntp.flags.vn": (_first("NTP", "Version"), _dec, False),
    "ntp.flags.mode": (_first("NTP", "Mode"), _dec, False),
    "ntp.stratum": (_first("NTP", "Stratum"), _dec, False),
    "tls.handshake.type": (_tls("type"), _hello_types, True),
    "tls.handshake.version": (_tls("version"), _hex, False),
    "tls.handshake.ciphersuite": (_tls("ciphers"), _hex, True),
    "tls.handshake.extensions_server_name": (_tls("SNI"), str, False),
    "tls.handshake.extensions_alpn_str": (_tls("ALPNs"), str, True),
    "tls.handshake.ja3": (_tls("Ja3"), str, False),
    "tls.handshake.ja3s": (_tls("Ja3s"), str, False),
    "dhcp.id": (_first("DHCPv4", "Xid"), _hex, False),
    "dhcp.hw.mac_addr": (_text("DHCPv4", "ClientHWAddr"), str, False),
    "dhcp.option.dhcp": (_dhcp_option(53), _dec, False),
    "dhcp.option.hostname": (_dhcp_option(12), str, False),
    "dhcp.option.requested_ip_address": (_dhcp_option(50), str, False),
}


# -- the comparison ------------------------------------------------------------------------


def load_oracle(name: str, oracle: Path = ORACLE) -> list[dict[str, Any]]:
    with open(oracle / f"{name}.jsonl") as f:
        return [json.loads(line) for line in f]


def decoded_batches(name: str, pcaps: Path = PCAPS,
                    ) -> tuple[str, list[Decoded]] | None:
    """(capture format, decoded batches), or None when the file cannot be opened."""
    try:
        reader = open_capture(str(pcaps / name))
    except CaptureError:
        return None
    with reader:
        return reader.format, [decode_batch(b) for b in reader]


def _frames(name: str, fmt: str, where: Path) -> list[dict[str, Any]]:
    oracle = load_oracle(name, where)
    if fmt == "pcapng":  # custom blocks: tshark frames without an interface, not packets
        oracle = [o for o in oracle if "frame.interface_id" in o]
    return oracle


def compare_file(name: str, opened: tuple[str, list[Decoded]] | None = None,
                 pcaps: Path = PCAPS, oracle: Path = ORACLE) -> FileResult:
    """One capture of `pcaps` against its tshark output in `oracle` (the public corpus by
    default; tests/test_recorded.py passes the project's own recorded captures)."""
    res = FileResult(name)
    if opened is None:
        opened = decoded_batches(name, pcaps=pcaps)
    if opened is None:  # tshark could not open it either (checked by the caller's test)
        if load_oracle(name, oracle):
            raise AssertionError(f"{name}: cannot open, but tshark read frames")
        return res
    fmt, decoded = opened
    packets = _packets(decoded)
    frames = _frames(name, fmt, oracle)
    if len(packets) != len(frames):
        raise AssertionError(f"{name}: {len(packets)} packets, tshark {len(frames)} frames")
    for (wirelen, caplen, layers), frame in zip(packets, frames, strict=True):
        number = int(frame["frame.number"])
        quic = "udp.srcport" in frame  # TLS inside QUIC: not a TLS-over-TCP analyzer's
        for key, (ours_of, theirs_of, every) in FIELDS.items():
            if quic and key.startswith("tls."):
                continue
            ours = ours_of(wirelen, caplen, layers)
            theirs = [t for t in (theirs_of(v) for v in frame.get(key, ())) if t != ""]
            if not every:
                ours, theirs = ours[:1], theirs[:1]
            for i in range(max(len(ours), len(theirs))):
                a = ours[i] if i < len(ours) else ABSENT
                t = theirs[i] if i < len(theirs) else ABSENT
                res.compared[key] += 1
                if a == t:
                    res.agreed[key] += 1
                else:
                    label = key if i == 0 else f"{key}[{i}]"
                    res.diffs.append(Diff(name, number, label, a, t))
    return res


def compare_all(
    opened: dict[str, tuple[str, list[Decoded]] | None] | None = None,
) -> Result:
    files = []
    for name in corpus_files():
        pre = opened.get(name) if opened is not None else None
        files.append(compare_file(name, pre))
    return Result(files)


# -- the disagreement list -----------------------------------------------------------------


def _key(d: Diff) -> tuple[str, int, str, str, str]:
    return (d.file, d.frame, d.field, d.ours, d.tshark)


def load_reasons(path: Path = DISAGREEMENTS) -> dict[Diff, str]:
    """The listed disagreements with their reasons."""
    if not path.exists():
        return {}
    out: dict[Diff, str] = {}
    with open(path, newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        header = next(rows, None)
        if header is not None and tuple(header) != TSV_HEADER:
            raise ValueError(f"{path}: unexpected header {header}")
        for row in rows:
            if not row:
                continue
            file, frame, fld, ours, tshark, reason = row
            d = Diff(file, int(frame), fld, ours, tshark)
            if d in out:
                raise ValueError(f"{path}: {d} listed twice")
            out[d] = reason
    return out


def write_reasons(diffs: list[Diff], old: dict[Diff, str], path: Path = DISAGREEMENTS) -> None:
    """Rewrite the list: the current disagreements, keeping the reasons already given."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(TSV_HEADER)
        for d in sorted(diffs, key=_key):
            w.writerow([d.file, d.frame, d.field, d.ours, d.tshark, old.get(d, UNEXPLAINED)])


def update_requested() -> bool:
    return os.environ.get(UPDATE_ENV, "") not in ("", "0")


# -- script --------------------------------------------------------------------------------


def _report(result: Result) -> Iterator[str]:
    yield f"{'file':<56} {'compared':>8} {'agreed':>8} {'%':>8}"
    for f in result.files:
        c, a = sum(f.compared.values()), sum(f.agreed.values())
        if c:
            yield f"{f.name:<56} {c:>8} {a:>8} {100 * a / c:>8.3f}"
    yield ""
    yield f"{'field':<24} {'compared':>8} {'agreed':>8} {'%':>8}"
    compared, agreed = result.by_field()
    for key in FIELDS:
        c, a = compared[key], agreed[key]
        if c:
            yield f"{key:<24} {c:>8} {a:>8} {100 * a / c:>8.3f}"
    yield ""
    reasons = load_reasons()
    by_reason = Counter(reasons.get(d, UNEXPLAINED) for d in result.diffs)
    yield "disagreements by reason:"
    for reason, count in by_reason.most_common():
        yield f"{count:>6}  {reason}"
    yield ""
    yield (
        f"total: {result.compared} fields compared, {result.agreed} agree "
        f"({100 * result.agreement:.4f}%), {len(result.diffs)} disagreements"
    )


def main(argv: list[str]) -> int:
    result = compare_all()
    for line in _report(result):
        print(line)
    if "--update" in argv or update_requested():
        write_reasons(result.diffs, load_reasons())
        print(f"wrote {DISAGREEMENTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
