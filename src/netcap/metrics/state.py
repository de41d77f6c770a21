"""Metric values, updated once per batch from the decoded record tables.

Per-packet Python would cost microseconds a packet, so every update here is a numpy
reduction over a whole batch (label values looked up in tables, counts by bincount);
Python then touches each *label combination* once per batch. The state is plain dicts
of numbers behind a lock: `snapshot()` copies them for the HTTP side, so a scrape never
waits for decoding and decoding never waits for a scrape.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..analyzers.datagrams import UDP_COLUMNS
from ..decode.batch import Decoded
from ..decode.errors import REASONS
from ..decode.linktypes import ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_VLAN
from ..flows.extract import APP_PROTOCOLS, FLOW_COLUMNS, TCP_COLUMNS
from ..reassembly.ip import FRAGMENT_COLUMNS, ipv4_fragments
from ..reassembly.kinds import TCP_SEGMENT_COLUMNS
from ..records.render import render_column
from ..records.schema import Render
from ..records.table import Children, Ragged, RecordTable
from ._keys import bucket_counts, lookup, services, small_buckets, stuck, tcp_keys
from .app import (
    DHCP_TYPES,
    DNS_OPCODES,
    DNS_QTYPES,
    DNS_RCODES,
    NTP_MODES,
    Transactions,
    children,
    name_of,
    transaction_keys,
    values,
)
from .families import FAMILIES, PAYLOAD_BUCKETS, Kind

if TYPE_CHECKING:
    from ..flows.table import ConnectionTable, Ended
    from ..reassembly.streams import StreamOutput

__all__ = ["Histogram", "LabelConfig", "MetricsState", "Snapshot", "metric_columns"]

I64 = npt.NDArray[np.int64]
Labels = tuple[str, ...]

# -- closed label sets ----------------------------------------------------------------

_SERVICES: dict[str, tuple[int, ...]] = {
    "ftp": (20, 21), "ssh": (22,), "telnet": (23,), "smtp": (25, 465, 587), "dns": (53, 853),
    "dhcp": (67, 68, 546, 547), "http": (80, 8000, 8080), "pop3": (110, 995), "ntp": (123,),
    "netbios": (137, 138, 139), "imap": (143, 993), "snmp": (161, 162), "ldap": (389, 636),
    "https": (443, 8443), "smb": (445,), "syslog": (514,), "mqtt": (1883, 8883),
    "mysql": (3306,), "rdp": (3389,), "mdns": (5353,), "llmnr": (5355,),
    "postgres": (5432,), "redis": (6379,), "sip": (5060, 5061), "kerberos": (88,),
    "bgp": (179,), "openvpn": (1194,), "wireguard": (51820,), "prometheus": (9090, 9100),
}
SERVICE_NAMES: tuple[str, ...] = ("other", *_SERVICES)
_SERVICE_OF_PORT = np.zeros(65536, np.int64)
for _i, _ports in enumerate(_SERVICES.values(), start=1):
    _SERVICE_OF_PORT[list(_ports)] = _i

_IP_PROTOCOLS = {0: "hopopt", 1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp",
                 41: "ipv6", 43: "ipv6_route", 44: "ipv6_frag", 47: "gre", 50: "esp",
                 51: "ah", 58: "icmpv6", 59: "ipv6_nonxt", 60: "ipv6_opts", 89: "ospf",
                 103: "pim", 112: "vrrp", 132: "sctp"}
IP_PROTOCOL_NAMES: tuple[str, ...] = ("other", *_IP_PROTOCOLS.values())
_IP_PROTOCOL_INDEX = np.zeros(256, np.int64)
for _i, _p in enumerate(_IP_PROTOCOLS, start=1):
    _IP_PROTOCOL_INDEX[_p] = _i

_ICMP4 = {0: "echo_reply", 3: "destination_unreachable", 4: "source_quench", 5: "redirect",
          8: "echo_request", 9: "router_advertisement", 10: "router_solicitation",
          11: "time_exceeded", 12: "parameter_problem", 13: "timestamp",
          14: "timestamp_reply"}
_ICMP6 = {1: "destination_unreachable", 2: "packet_too_big", 3: "time_exceeded",
          4: "parameter_problem", 128: "echo_request", 129: "echo_reply",
          130: "mld_query", 131: "mld_report", 132: "mld_done", 133: "router_solicitation",
          134: "router_advertisement", 135: "neighbor_solicitation",
          136: "neighbor_advertisement", 137: "redirect", 143: "mld2_report"}

# TCP flag combinations by the low 6 flag bits (FIN SYN RST PSH ACK URG).
_FLAG_NAMES = ("other", "syn", "syn_ack", "ack", "psh_ack", "fin_ack", "rst", "rst_ack")
_FLAGS_INDEX = np.zeros(64, np.int64)
for _bits in range(64):
    fin, syn, rst, psh, ack = (bool(_bits & m) for m in (1, 2, 4, 8, 16))
    _FLAGS_INDEX[_bits] = (
        (7 if ack else 6) if rst else
        (2 if ack else 1) if syn else
        5 if fin and ack else
        4 if psh and ack else
        3 if ack and not (fin or psh) else 0
    )

_TCP_LABELS = [(f, s) for f in _FLAG_NAMES for s in SERVICE_NAMES]
_UDP_LABELS = [(s,) for s in SERVICE_NAMES]
_IP_LABELS = {v: [(v, p) for p in IP_PROTOCOL_NAMES] for v in ("4", "6")}

# Ethernet frames by EtherType: index 0-5 of _ETHERNET_LABELS, "other" for any type not
# named (and for a value from a file outside 0-65535).
_ETHERNET_LABELS = [("ipv4",), ("ipv6",), ("arp",), ("vlan",), ("llc",), ("other",)]
_ETHERNET_OTHER = 5
_ETHERNET_KEY = np.full(65536, _ETHERNET_OTHER, np.int64)
_ETHERNET_KEY[[ETH_IPV4, ETH_IPV6, ETH_ARP, 0]] = 0, 1, 2, 4
_ETHERNET_KEY[list(ETH_VLAN)] = 3


def _ethernet_keys(ethertype: I64) -> I64:
    return lookup(ethertype, _ETHERNET_KEY, _ETHERNET_OTHER)


def _icmp_keys(version: str, types: dict[int, str]) -> tuple[I64, list[Labels]]:
    """ICMP messages by type (the high byte of TypeCode): a table of each type's label
    index, and the labels ("other" first)."""
    lut = np.zeros(256, np.int64)
    names: list[Labels] = [(version, "other")]
    for i, (code, label) in enumerate(types.items(), start=1):
        lut[code] = i
        names.append((version, label))
    return lut, names


_ICMP_KEYS = {"ICMPv4": _icmp_keys("4", _ICMP4), "ICMPv6": _icmp_keys("6", _ICMP6)}


def _pkts(table: RecordTable) -> I64:
    """A decoded table's packet index per row."""
    if table.pkt is None:  # invariant (not input): decoded tables have them
        raise TypeError("a decoded table without packet indexes")
    return np.ascontiguousarray(table.pkt, np.int64)


def _set(flag: Any) -> npt.NDArray[np.uint8] | None:
    """A flag column as contiguous bytes, 0 where the flag is not set (a bool column
    as it is)."""
    if flag is None:
        return None
    a = np.asarray(flag)
    return np.ascontiguousarray(a if a.dtype == np.bool_ else a != 0).view(np.uint8)


_RECORD_PROTOCOL = {"Ethernet": "ethernet", "Dot1Q": "dot1q", "LLC": "llc", "ARP": "arp",
                    "IPv4": "ipv4", "IPv6": "ipv6", "IPv6Fragment": "ipv6_fragment",
                    "ICMPv4": "icmpv4", "ICMPv6": "icmpv6", "UDP": "udp", "TCP": "tcp",
                    "SCTP": "sctp"}


@cache
def _bounds(bounds: tuple[float, ...]) -> npt.NDArray[np.float64]:
    """A histogram's bounds as the array `bucket_counts` takes (made once per family)."""
    return np.asarray(bounds, np.float64)


@cache
def _small(bounds: tuple[float, ...]) -> npt.NDArray[np.uint8]:
    """The bucket of every integer below 65,536 (sizes: one load each instead of a
    compare per bound, 57 -> 15 us for 15,000 packet lengths), made once per bounds."""
    return small_buckets(_bounds(bounds), 1 << 16)


_NO_SMALL = np.zeros(0, np.uint8)  # float values: compared with the bounds


@dataclass
class Histogram:
    bounds: tuple[float, ...] = PAYLOAD_BUCKETS
    buckets: list[float] = field(default_factory=list)  # per bound (not cumulative)
    count: float = 0.0
    sum: float = 0.0

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [0.0] * len(self.bounds)

    def add(self, values: npt.NDArray[Any]) -> None:
        if values.size == 0:
            return
        if values.dtype != np.int64 and values.dtype != np.float64:
            values = np.asarray(values, np.float64)
        small = _small(self.bounds) if values.dtype == np.int64 else _NO_SMALL
        counts = bucket_counts(np.ascontiguousarray(values.reshape(-1)), _bounds(self.bounds),
                               small)
        for i, c in enumerate(counts[: len(self.bounds)].tolist()):
            self.buckets[i] += c
        self.count += int(values.size)
        self.sum += float(values.sum())


@dataclass
class Snapshot:
    """A consistent copy of every value, for rendering."""

    counters: dict[str, dict[Labels, float]]
    gauges: dict[str, dict[Labels, float]]
    histograms: dict[str, dict[Labels, Histogram]]


@dataclass(frozen=True, slots=True)
class LabelConfig:
    """Opt-in high-cardinality labels, and the limits that keep them bounded."""

    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)  # family -> labels
    budget: int = 1000  # series per family; past it new label values fold into "other"
    expiry_seconds: float | None = None  # drop series with extra labels idle this long

    def labels_of(self, family: str) -> tuple[str, ...]:
        return FAMILIES[family].labels + self.extra.get(family, ())


# Where each optional label's value comes from in the audit records.
_EXTRA_COLUMNS = {"src_ip": "SrcIP", "dst_ip": "DstIP", "src_port": "SrcPort",
                  "dst_port": "DstPort", "src_mac": "SrcMAC", "dst_mac": "DstMAC",
                  "host": "Host", "user_agent": "UserAgent", "content_type": "ResContentType",
                  "sni": "SNI", "ja3": "Ja3", "ja4": "Ja4", "hassh": "HASSH"}
# Opt-in labels whose values are text from the traffic: shown as sent (invalid UTF-8
# replaced), cut to _MAX_LABEL_TEXT characters so one value cannot bloat a scrape.
_TEXT_LABELS = frozenset({"host", "user_agent", "content_type", "sni", "ja3", "ja4", "hassh"})
_MAX_LABEL_TEXT = 128


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else ("" if v is None else
                                                                     str(v))


def _offered(supported: Any, legacy: I64, n: int) -> I64:
    """Each ClientHello's highest version: of its supported_versions without GREASE
    values (RFC 8701: 0x?A?A), else its legacy version field. The lists flattened once,
    their maxima by np.maximum.reduceat (a Python max per hello cost ~0.7 us)."""
    rows = [()] * n if supported is None else [r if r is not None else () for r in supported]
    flat = np.fromiter(chain.from_iterable(rows), np.int64)
    lens = np.fromiter(map(len, rows), np.int64, n)
    best = np.full(n, -1, np.int64)  # -1: none but GREASE
    listed = lens > 0
    if flat.size:
        plain = np.where((flat & 0x0F0F) == 0x0A0A, -1, flat)
        best[listed] = np.maximum.reduceat(plain, (np.cumsum(lens) - lens)[listed])
    return np.where(best >= 0, best, legacy)


def _ints(cols: dict[str, Any], field: str, n: int) -> I64:
    """A record column as contiguous int64, as the compiled steps (`_keys`) take it:
    zeros when absent; not a copy when it is so already (a decoded column is; the
    results are only read)."""
    c = cols.get(field)
    return np.zeros(n, np.int64) if c is None else np.ascontiguousarray(c, np.int64)


def _label_text(v: Any) -> str:
    return _text(v)[:_MAX_LABEL_TEXT]


_HTTP_METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT",
                 "TRACE", "other")
_HTTP_METHOD_INDEX = {m: i for i, m in enumerate(_HTTP_METHODS)}
# Status: 0 "other" (outside 100-599), 1..500 the codes 100..599, 501 "none".
_HTTP_STATUS = ("other", *(str(c) for c in range(100, 600)), "none")
_HTTP_LABELS = [(m, st) for m in _HTTP_METHODS for st in _HTTP_STATUS]
# SSH: key = side * 6 + version * 2 + kexinit read
_SSH_VERSIONS = ("2.0", "1.99", "other")
_SSH_VERSION_INDEX = {"2.0": 0, "1.99": 1}
_SSH_LABELS = [(side, v, k) for side in ("client", "server") for v in _SSH_VERSIONS
               for k in ("no", "yes")]

_TLS_VERSION = {0x0304: "tls1.3", 0x0303: "tls1.2", 0x0302: "tls1.1", 0x0301: "tls1.0",
                0x0300: "ssl3"}
_TLS_VERSIONS = ("tls1.3", "tls1.2", "tls1.1", "tls1.0", "ssl3", "other")
_TLS_VERSION_INDEX = {v: i for i, v in enumerate(_TLS_VERSIONS)}


def _tls_version_index(versions: I64) -> I64:
    """Each version number's index in _TLS_VERSIONS ("other" for one not named)."""
    out = np.full(versions.shape, len(_TLS_VERSIONS) - 1, np.int64)
    for code, label in _TLS_VERSION.items():
        out[versions == code] = _TLS_VERSION_INDEX[label]
    return out


# Connections: what the connection table writes (flows/), lower case; a record read from
# a file may hold any text there, which labels as "other".
_TRANSPORTS = frozenset({"tcp", "udp"})
_APPLICATIONS = frozenset(a.lower() for a in APP_PROTOCOLS)
_NTP_VERSIONS = tuple(str(v) for v in range(8))  # the 3-bit version field
_DHCP_TYPE_DIGITS = 3  # option 53 is one byte: its text is at most "255"


def _closed(text: str, allowed: frozenset[str]) -> str:
    return text if text in allowed else "other"


def _dhcp_type(data: Any) -> str:
    """The label of a DHCP message-type option's text (a decimal byte, as the analyzer
    writes it); anything else (from a file) is "other"."""
    text = _text(data)
    if text.isascii() and text.isdigit() and len(text) <= _DHCP_TYPE_DIGITS:
        return name_of(DHCP_TYPES, int(text))
    return "other"


def _dhcp_labels(options: Any, n: int) -> Counter[str]:
    """The messages of n DHCP records by the label of their first message-type option
    (53): "none" without one. A decoded Options column is read as columns (the first
    type-53 row of each parent), not as a dict per option; records from a file are
    listed already."""
    if not isinstance(options, Children):
        out: Counter[str] = Counter()
        for opts in children(options, n):
            kind = next((o.get("Data", "") for o in opts if o.get("Type") == 53), None)
            out["none" if kind is None else _dhcp_type(kind)] += 1
        return out
    t = options.table
    types = t.cols.get("Type")
    rows = (np.flatnonzero(np.asarray(types) == 53) if types is not None
            else np.zeros(0, np.int64))
    parents, first = np.unique(np.asarray(options.parent)[rows], return_index=True)
    data, picked = t.cols.get("Data"), rows[first]
    kinds: list[Any]
    if isinstance(data, Ragged):
        kinds = data.take(picked).tolist()
    elif data is None:
        kinds = [""] * len(picked)
    else:
        listed = values(data, t.n)  # once, not per record
        kinds = [listed[i] for i in picked.tolist()]
    out = Counter(_dhcp_type(kind) for kind in kinds)
    if n > len(parents):
        out["none"] += n - len(parents)
    return out


# The record columns the record metrics read (`_record_metrics`, `_layers`), per record
# type: decoding for metrics alone builds only these. A test checks that counts from
# such records equal those from complete records, so this cannot drift unnoticed.
_RECORD_COLUMNS: dict[str, frozenset[str]] = {
    "Ethernet": frozenset({"EthernetType"}),
    "ARP": frozenset({"Operation"}),
    "IPv4": frozenset({"Protocol", "Length", "Flags", "FragOffset"}),
    "IPv6": frozenset({"NextHeader", "Length"}),
    "TCP": frozenset({"SrcPort", "DstPort", "FIN", "SYN", "RST", "PSH", "ACK", "URG",
                      "PayloadSize"}),
    "UDP": frozenset({"SrcPort", "DstPort", "PayloadSize"}),
    "ICMPv4": frozenset({"TypeCode"}),
    "ICMPv6": frozenset({"TypeCode"}),
}
# The same for the stream analyzers' records (DNS: all of them), when records are only
# counted (pipeline.Sink._streamed); opt-in label columns are kept too.
STREAM_RECORD_COLUMNS: dict[str, frozenset[str]] = {
    "HTTP": frozenset({"Method", "StatusCode", "FirstByteAfter", "ResContentLength", "Host",
                       "UserAgent", "ResContentType"}),
    "TLSClientHello": frozenset({"SupportedVersions", "HandshakeVersion", "Ja4", "Ja3",
                                 "SNI"}),
    "TLSServerHello": frozenset({"SupportedVersion", "Version", "Ja3s"}),
    "SSH": frozenset({"Ident", "HASSH", "IsClient"}),
}
# The record types whose columns feed each family's opt-in labels.
_FAMILY_RECORDS = {"nc_ethernet_frames": ("Ethernet",), "nc_ip_packets": ("IPv4", "IPv6"),
                   "nc_tcp_segments": ("TCP",), "nc_udp_datagrams": ("UDP",)}


def metric_columns(config: LabelConfig, entropy: bool, *, flows: bool = True,
                   datagrams: bool = True, streams: bool = True) -> dict[str, frozenset[str]]:
    """Per record type, the columns counting needs with these opt-in labels (and the
    payload columns, for entropy), plus those the later stages read from the decoded
    batch when they run: the connection table (`flows`), the datagram analyzers and the
    stream segments (addresses cost most: they are built only when one of these runs)."""
    cols = dict(_RECORD_COLUMNS)
    if flows:
        cols["TCP"] |= TCP_COLUMNS
        cols["UDP"] |= FLOW_COLUMNS
    if datagrams:
        cols["UDP"] |= UDP_COLUMNS
    if streams:
        cols["TCP"] |= TCP_SEGMENT_COLUMNS
    for name, need in FRAGMENT_COLUMNS.items():  # the fragments go to reassembly
        cols[name] = cols.get(name, frozenset()) | need
    for fam, labels in config.extra.items():
        for name in _FAMILY_RECORDS.get(fam, ()):
            cols[name] = cols.get(name, frozenset()) | {_EXTRA_COLUMNS[x] for x in labels}
    if entropy:
        for name in ("TCP", "UDP"):
            cols[name] = cols[name] | {"_poff", "PayloadSize"}
    return cols


class MetricsState:
    """Every metric value, updated per batch and read at scrape time.

    `partial`: the state counts one batch for a worker and is sent to the main state as
    a `delta`; then responses whose request it did not see are kept for the main state,
    which may hold that request from an earlier batch."""

    def __init__(self, config: LabelConfig | None = None, partial: bool = False) -> None:
        self.config = config or LabelConfig()
        self.partial = partial
        self._dns = Transactions()
        self._dns_orphans: list[tuple[Any, int]] = []  # responses without a request
        self._seen: dict[str, dict[Labels, float]] = defaultdict(dict)  # extra-label series
        self._lock = threading.Lock()
        self.started = time.time()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._gauges: dict[str, dict[Labels, float]] = defaultdict(dict)
        if not partial:
            self._gauges["nc_input_done"][()] = 0.0
        self._hist: dict[str, dict[Labels, Histogram]] = {
            f.name: defaultdict(lambda f=f: Histogram(f.bounds))  # type: ignore[misc]
            for f in FAMILIES.values() if f.kind is Kind.HISTOGRAM}
        self._rate_window: list[tuple[float, int]] = []

    # -- updates (the decoding thread) ---------------------------------------------------

    def _count(self, fam: str, labels: Labels, value: float) -> None:
        if value:
            self._counters[fam][labels] += value

    def _add(self, fam: str, labels: Labels, value: float) -> None:
        """Add to one series, keeping the family under its series budget: a new series
        past the budget is folded into one whose opt-in labels are all "other" (its
        bounded labels are kept, so a family holds at most budget + one `other` series
        per combination of bounded labels)."""
        series = self._counters[fam]
        if labels not in series and len(series) >= self.config.budget:
            extra = len(self.config.extra.get(fam, ()))
            folded = labels[: len(labels) - extra] + ("other",) * extra if extra else labels
            # Counted only when the value moves: a worker's already-folded `other`
            # series merged here (see `merge`) was counted by the worker.
            if folded != labels:
                self._counters["nc_metric_label_overflow"][(fam,)] += value
            labels = folded
        series[labels] += value
        if fam in self.config.extra:
            self._seen[fam][labels] = time.monotonic()

    def _count_by(self, fam: str, keys: I64, names: Sequence[Labels],
                  cols: dict[str, Any] | None = None) -> None:
        """Add the rows of `keys` (indexes into `names`) to their label combinations,
        plus the family's opt-in labels taken from the record columns `cols`."""
        if keys.size == 0:
            return
        extra = self.config.extra.get(fam, ())
        if extra and cols is not None:
            self._count_extra(fam, keys, names, extra, cols)
            return
        counts = np.bincount(keys, minlength=len(names))
        nonzero = np.flatnonzero(counts)
        if extra:  # opt-in labels without their columns: each series under the budget
            for i in nonzero.tolist():
                self._add(fam, names[i], int(counts[i]))
            return
        # No opt-in labels: the series are the family's fixed label sets, which `_add`
        # would never fold, so they are added to directly (a call per series was a
        # third of a batch's metrics).
        series = self._counters[fam]
        for i, c in zip(nonzero.tolist(), counts[nonzero].tolist(), strict=True):
            series[names[i]] += c

    def _count_extra(self, fam: str, keys: I64, names: Sequence[Labels],
                     extra: tuple[str, ...], cols: dict[str, Any]) -> None:
        # Group rows by (base label index, one id per extra label), vectorized; text is
        # made only for the distinct values.
        n = keys.shape[0]
        ids = [keys]
        texts: list[list[str]] = []
        for label in extra:
            col = cols.get(_EXTRA_COLUMNS[label])
            if label in _TEXT_LABELS:
                index: dict[Any, int] = {}
                ids.append(np.fromiter((index.setdefault(v, len(index))
                                        for v in values(col, n)), np.int64, n))
                texts.append([_label_text(v) for v in index])
            elif isinstance(col, Ragged):
                how = Render.MAC if label.endswith("mac") else Render.IP
                padded = np.zeros((n, 17), np.uint8)  # 16 address bytes + length
                starts = col.starts
                for k in range(16):
                    take = col.lens > k
                    padded[take, k] = col.data[starts[take] + k]
                padded[:, 16] = col.lens
                uniq, inv = np.unique(padded, axis=0, return_inverse=True)
                raw = Ragged.from_matrix(uniq[:, :16], uniq[:, 16].astype(np.int64))
                texts.append([t.decode() for t in render_column(raw, how).tolist()])
                ids.append(inv.reshape(-1))
            else:  # ports: numbers; one from a file outside 0-65535 is "other"
                arr = np.zeros(n, np.int64) if col is None else np.asarray(col, np.int64)
                arr = np.where((arr >= 0) & (arr <= 0xFFFF), arr, -1)
                uniq_v, inv = np.unique(arr, return_inverse=True)
                texts.append([str(v) if v >= 0 else "other" for v in uniq_v.tolist()])
                ids.append(inv.reshape(-1))
        combos, inv, counts = np.unique(np.stack(ids, axis=1), axis=0, return_inverse=True,
                                        return_counts=True)
        for row, c in zip(combos.tolist(), counts.tolist(), strict=True):
            labels = names[row[0]] + tuple(t[i] for t, i in zip(texts, row[1:], strict=True))
            self._add(fam, labels, c)

    def _expire(self) -> None:
        limit = self.config.expiry_seconds
        if limit is None:
            return
        now = time.monotonic()
        for fam, seen in self._seen.items():
            old = [labels for labels, t in seen.items() if now - t > limit]
            for labels in old:
                del seen[labels]
                self._counters[fam].pop(labels, None)

    def add_stage_time(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._count("nc_stage_seconds", (stage,), seconds)

    def add_input_done(self, truncated: bool) -> None:
        with self._lock:
            self._count("nc_input_files_done", (), 1)
            if truncated:
                self._count("nc_truncated_inputs", (), 1)

    def set_capture_health(self, iface: str, received: int, dropped: int, ifdropped: int,
                           lag_seconds: float) -> None:
        """A live capture's counters (libpcap's totals since it opened) and lag."""
        with self._lock:
            self._counters["nc_capture_received_packets"][(iface,)] = float(received)
            drops = self._counters["nc_capture_dropped_packets"]
            drops[(iface, "kernel")] = float(dropped)
            drops[(iface, "interface")] = float(ifdropped)
            self._gauges["nc_capture_lag_seconds"][(iface,)] = lag_seconds

    def set_input_done(self) -> None:
        with self._lock:
            self._gauges["nc_input_done"][()] = 1.0
            # Nothing is processed any more: the rate of the last seconds is 0, not
            # whatever it was when the input ended.
            self._gauges["nc_processing_rate_packets_per_second"][()] = 0.0
            self._rate_window.clear()

    def add_batch(self, d: Decoded) -> None:
        """Every per-packet metric of one decoded batch."""
        b = d.batch
        n = len(b)
        with self._lock:
            self._count("nc_packets", (), n)
            self._count("nc_bytes", (), int(b.wirelen.sum()))
            if n:
                self._gauges["nc_last_packet_timestamp_seconds"][()] = float(b.ts[-1]) / 1e9
                self._rate(n)
            self._tables(d)
            self._layers(d)

    def add_reassembled(self, d: Decoded, errors: Counter[str]) -> None:
        """Records decoded from reassembled IP datagrams (their packets were counted as
        fragments), and what defragmentation met."""
        with self._lock:
            self._tables(d)
            for name, table in d.tables.items():
                self._record_metrics(name, table.cols, table.n)
            self._reasons(errors)

    def _tables(self, d: Decoded) -> None:
        """Decode errors, and records and protocols per table."""
        self._errors(d.error)
        for name, t in d.tables.items():
            self._count("nc_audit_records", (name,), t.n)
            proto = _RECORD_PROTOCOL.get(name)
            if proto is not None and t.pkt is not None:
                # Packets, not records: a packet may hold several of these. Rows
                # are in packet order, so count where the packet changes (np.unique
                # sorted them again: 40 ms per million packets).
                rows = t.n if name not in ("Dot1Q", "IPv6Fragment") else (
                    int(np.count_nonzero(np.diff(t.pkt))) + 1 if t.n else 0)
                self._count("nc_protocols", (proto,), rows)

    def add_connections(self, ended: Ended | None, table: ConnectionTable) -> None:
        """Connections that ended (and the table's state: open flows, handshake RTTs)."""
        with self._lock:
            self._gauges["nc_connections_active"][()] = float(len(table))
            if table.rtts:
                self._hist["nc_tcp_handshake_rtt_seconds"][()].add(np.asarray(table.rtts))
                table.rtts.clear()
            if ended is not None:
                self._count("nc_connections_evicted", (), ended.evicted)
                self._count("nc_audit_records", ("Connection",), len(ended))
                self._connection_metrics(ended.label_counts(), ended.duration_ns,
                                         ended.total_bytes)

    def add_stream_output(self, tables: dict[str, RecordTable], out: StreamOutput) -> None:
        """Records of the stream analyzers, and what reassembly met."""
        for name, t in tables.items():
            self.add_records(name, t.cols, t.n)
        with self._lock:
            self._reasons(out.errors)
            if out.tls_handshakes:
                self._hist["nc_tls_handshake_seconds"][()].add(np.asarray(out.tls_handshakes))
            self._count("nc_tcp_reassembly_gap_bytes", (), out.gap_bytes)
            self._count("nc_tcp_reassembly_overflows", (), out.overflows)

    def add_records(self, name: str, cols: dict[str, Any], n: int,
                    from_file: bool = False) -> None:
        """Metrics from audit records without packets behind them: made by the stream
        analyzers, or read from a file (`from_file`, see `_entropy`)."""
        with self._lock:
            self._count("nc_audit_records", (name,), n)
            proto = _RECORD_PROTOCOL.get(name)
            if proto is not None:
                self._count("nc_protocols", (proto,), n)
            self._record_metrics(name, cols, n, from_file)

    def add_errors(self, errors: Counter[str]) -> None:
        """Decode errors by reason ("protocol/reason", decode/errors.py)."""
        with self._lock:
            self._reasons(errors)

    def _reasons(self, errors: Counter[str]) -> None:
        """Count decode errors given as "protocol/reason" -> count (the lock held)."""
        for reason, k in errors.items():
            self._count("nc_decoding_errors", tuple(reason.split("/")), k)

    def _rate(self, n: int) -> None:
        now = time.monotonic()
        w = self._rate_window
        w.append((now, n))
        while len(w) > 1 and now - w[0][0] > 5.0:
            w.pop(0)
        span = now - w[0][0]
        if span > 0:
            self._gauges["nc_processing_rate_packets_per_second"][()] = (
                sum(k for _, k in w[1:]) / span)

    def _errors(self, error: npt.NDArray[np.int16]) -> None:
        bad = error[error > 0]
        if bad.size:
            counts = np.bincount(bad.astype(np.int64), minlength=len(REASONS))
            for i in np.flatnonzero(counts).tolist():
                self._counters["nc_decoding_errors"][REASONS[i]] += int(counts[i])

    def _layers(self, d: Decoded) -> None:
        t = d.tables
        for name, table in t.items():
            self._record_metrics(name, table.cols, table.n)
        # Where decoding stopped without an error: no decoder for the next layer.
        eth = t.get("Ethernet")
        if eth is not None:
            keys = _ethernet_keys(_ints(eth.cols, "EthernetType", eth.n))
            self._count("nc_unknown_protocols", ("ethertype",),
                        int(np.count_nonzero(keys == _ETHERNET_OTHER)))
        ip_pkts = [_pkts(x) for x in (t.get("IPv4"), t.get("IPv6")) if x is not None]
        if ip_pkts:
            upper = [_pkts(x) for x in map(t.get, ("TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP",
                                                  "IPv6Fragment")) if x is not None]
            v4 = t.get("IPv4")
            if v4 is not None:  # fragments: see reassembly/ip.py
                frag = ipv4_fragments(_ints(v4.cols, "Flags", v4.n),
                                      _ints(v4.cols, "FragOffset", v4.n))
                upper.append(_pkts(v4)[frag])
            self._count("nc_unknown_protocols", ("ip_protocol",),
                        stuck(len(d.batch), ip_pkts, upper,
                              np.ascontiguousarray(d.error, np.int16)))
        unsupported = REASONS.index(("link", "unsupported_link_type"))
        self._count("nc_unknown_protocols", ("link_type",), int((d.error == unsupported).sum()))

    def _record_metrics(self, name: str, cols: dict[str, Any], n: int,
                        from_file: bool = False) -> None:
        def col(field: str) -> I64:
            return _ints(cols, field, n)

        if n == 0:
            return
        if name == "Ethernet":
            self._count_by("nc_ethernet_frames", _ethernet_keys(col("EthernetType")),
                           _ETHERNET_LABELS, cols)
        elif name == "Dot1Q":
            self._count("nc_vlan_tags", (), n)
        elif name == "ARP":
            op = col("Operation")
            key = np.where(op == 1, 0, np.where(op == 2, 1, 2))
            self._count_by("nc_arp_packets", key, [("request",), ("reply",), ("other",)])
        elif name in ("IPv4", "IPv6"):
            version = "4" if name == "IPv4" else "6"
            proto = col("Protocol" if name == "IPv4" else "NextHeader") & 0xFF
            self._count_by("nc_ip_packets", _IP_PROTOCOL_INDEX.take(proto),
                           _IP_LABELS[version], cols)
            length = col("Length") + 40 if name == "IPv6" else col("Length")
            self._hist["nc_ip_packet_bytes"][(version,)].add(length)
            if name == "IPv4":
                frag = ipv4_fragments(col("Flags"), col("FragOffset"))
                self._count("nc_ip_fragments", ("4",), int(frag.sum()))
        elif name == "IPv6Fragment":
            self._count("nc_ip_fragments", ("6",), n)
        elif name in ("TCP", "UDP"):
            service = services(col("SrcPort"), col("DstPort"), _SERVICE_OF_PORT)
            if name == "TCP":
                flags = [_set(cols.get(f)) for f in ("FIN", "SYN", "RST", "PSH", "ACK", "URG")]
                key = tcp_keys(flags, service, _FLAGS_INDEX, len(SERVICE_NAMES))
                self._count_by("nc_tcp_segments", key, _TCP_LABELS, cols)
                self._hist["nc_tcp_payload_bytes"][()].add(col("PayloadSize"))
                self._entropy("tcp", cols, from_file)
            else:
                self._count_by("nc_udp_datagrams", service, _UDP_LABELS, cols)
                self._hist["nc_udp_payload_bytes"][()].add(col("PayloadSize"))
                self._entropy("udp", cols, from_file)
        elif name == "Connection":  # read from a file (from packets: add_connections)
            def text(field: str, allowed: frozenset[str]) -> list[str]:
                return [_closed(_text(v).lower(), allowed)
                        for v in values(cols.get(field), n)]

            pairs = zip(text("TransportProto", _TRANSPORTS),
                        text("ApplicationProto", _APPLICATIONS), strict=True)
            self._connection_metrics(Counter(pairs), col("Duration"), col("TotalSize"))
        elif name == "DNS":
            self._dns_metrics(cols, n)
        elif name == "TLSClientHello":  # the highest version offered (as JA4's)
            tls = _tls_version_index(_offered(cols.get("SupportedVersions"),
                                              col("HandshakeVersion"), n))
            self._count_by("nc_tls_hellos", tls, [("client", v) for v in _TLS_VERSIONS],
                           cols)
        elif name == "TLSServerHello":  # the version chosen
            chosen = col("SupportedVersion")
            tls = _tls_version_index(np.where(chosen != 0, chosen, col("Version")))
            # A server's fingerprint is its JA3S; it sends no server name or JA4.
            self._count_by("nc_tls_hellos", tls, [("server", v) for v in _TLS_VERSIONS],
                           {"Ja3": cols.get("Ja3s")})
        elif name == "HTTP":
            methods = values(cols.get("Method"), n)
            index = {m: _HTTP_METHOD_INDEX.get(_text(m).upper(), len(_HTTP_METHODS) - 1)
                     for m in set(methods)}  # a few methods: each one's label found once
            method = np.fromiter(map(index.__getitem__, methods), np.int64, n)
            codes = col("StatusCode")
            status = np.where((codes >= 100) & (codes <= 599), codes - 99, 0)
            status[codes == 0] = 501  # "none": no response seen
            self._count_by("nc_http_requests", method * 502 + status, _HTTP_LABELS, cols)
            first = col("FirstByteAfter")
            answered = (codes > 0) & (first > 0)
            self._hist["nc_http_response_seconds"][()].add(first[answered] / 1e9)
            self._hist["nc_http_response_body_bytes"][()].add(col("ResContentLength")[codes > 0])
        elif name == "SSH":
            idents = [_text(v) for v in values(cols.get("Ident"), n)]
            hasshes = [_text(v) for v in values(cols.get("HASSH"), n)]
            clients = values(cols.get("IsClient"), n)
            side = np.asarray([0 if c else 1 for c in clients], np.int64)
            proto = np.asarray([_SSH_VERSION_INDEX.get(i[4:].split("-", 1)[0], 2)
                                for i in idents], np.int64)
            kexinit = np.asarray([1 if h else 0 for h in hasshes], np.int64)
            self._count_by("nc_ssh_endpoints", side * 6 + proto * 2 + kexinit, _SSH_LABELS,
                           cols)
        elif name == "NTP":
            keys = Counter(zip(col("Version").tolist(), col("Mode").tolist(), strict=True))
            for (version, mode), k in keys.items():
                label = _NTP_VERSIONS[version] if 0 <= version < 8 else "other"
                self._count("nc_ntp_messages", (label, name_of(NTP_MODES, mode)), k)
        elif name == "DHCPv4":
            for label, k in _dhcp_labels(cols.get("Options"), n).items():
                self._count("nc_dhcp_messages", (label,), k)
        elif name in ("ICMPv4", "ICMPv6"):
            lut, names = _ICMP_KEYS[name]
            self._count_by("nc_icmp_messages", lut.take((col("TypeCode") >> 8) & 0xFF), names)

    def _connection_metrics(self, pairs: Counter[tuple[str, str]], duration_ns: I64,
                            total_bytes: I64) -> None:
        """Connections per (transport, application protocol) label pair, and their
        durations and sizes."""
        for labels, k in pairs.items():
            self._count("nc_connections", labels, k)
        self._hist["nc_connection_duration_seconds"][()].add(duration_ns / 1e9)
        self._hist["nc_connection_bytes"][()].add(total_bytes)

    def _dns_metrics(self, cols: dict[str, Any], n: int) -> None:
        qr = _ints(cols, "QR", n) != 0
        # The codes as 16-bit numbers: anything outside (a file's) is 0xFFFF, "other".
        op, rc = (np.where((c >= 0) & (c < 0xFFFF), c, 0xFFFF)
                  for c in (_ints(cols, "OpCode", n), _ints(cols, "ResponseCode", n)))
        kinds, counts = np.unique((qr.astype(np.int64) << 32) | (op << 16) | rc,
                                  return_counts=True)
        for kind, k in zip(kinds.tolist(), counts.tolist(), strict=True):
            self._count("nc_dns_messages", ("response" if kind >> 32 else "query",
                                            name_of(DNS_OPCODES, (kind >> 16) & 0xFFFF),
                                            name_of(DNS_RCODES, kind & 0xFFFF)), k)
        questions = cols.get("Questions")
        qtypes = (values(questions.table.cols.get("Type"), questions.table.n)
                  if isinstance(questions, Children)
                  else [q.get("Type", 0) for qs in children(questions, n) for q in qs])
        for qtype, k in Counter(qtypes).items():
            self._count("nc_dns_questions", (name_of(DNS_QTYPES, int(qtype or 0)),), k)
        # Response times: the key is (client, client port, server, server port, ID).
        latencies, orphans = self._dns.pair(qr.tolist(), transaction_keys(qr, cols, n, "ID"),
                                            values(cols.get("Timestamp"), n))
        if self.partial:  # the main state may hold their requests (see `merge`)
            self._dns_orphans += orphans
        if latencies:
            self._hist["nc_dns_response_seconds"][()].add(np.asarray(latencies))

    def _entropy(self, protocol: str, cols: dict[str, Any], from_file: bool) -> None:
        e = cols.get("PayloadEntropy")  # decoded: present only with -entropy
        if e is None:
            return
        size = cols.get("PayloadSize")
        values = np.asarray(e, np.float64)
        keep = np.ones(values.shape, np.bool_) if size is None else np.asarray(size) > 0
        if from_file:
            # A file cannot tell an entropy not computed (no -entropy) from 0.0: proto3
            # writes neither. An absent value is not observed (at the cost of payloads of
            # one repeated byte, whose entropy is 0).
            keep &= (values != 0) | np.signbit(values)
        values = values[keep]  # an empty payload has no entropy to speak of
        if values.size:  # no series (of zeros) until there is a value
            self._hist["nc_payload_entropy_bits_per_byte"][(protocol,)].add(values)

    # -- moving between processes (parallel decoding) -------------------------------------

    def delta(self) -> dict[str, Any]:
        """Everything counted so far as plain, picklable data (see `merge`)."""
        with self._lock:
            return {
                "counters": {k: dict(v) for k, v in self._counters.items()},
                "gauges": {k: dict(v) for k, v in self._gauges.items()
                           if k != "nc_processing_rate_packets_per_second"},
                "hist": {k: {lk: (list(h.buckets), h.count, h.sum) for lk, h in v.items()}
                         for k, v in self._hist.items()},
                # Transactions still open at the end of this part, for the main state.
                "dns_orphans": list(self._dns_orphans),
                "dns_pending": list(self._dns.pending.items()),
            }

    def merge(self, delta: dict[str, Any]) -> None:
        """Add a worker's `delta` (counters and histograms add up; gauges are replaced,
        deltas arriving in input order)."""
        with self._lock:
            for fam, values in delta["counters"].items():
                for labels, v in values.items():
                    self._add(fam, labels, v)
            for fam, values in delta["gauges"].items():
                self._gauges[fam].update(values)
            for fam, values in delta["hist"].items():
                for labels, (buckets, count, total) in values.items():
                    h = self._hist[fam][labels]
                    h.buckets = [a + b for a, b in zip(h.buckets, buckets, strict=True)]
                    h.count += count
                    h.sum += total
            # A part's responses without a request first, then its requests waiting.
            orphans, waiting = delta.get("dns_orphans", []), delta.get("dns_pending", [])
            both = orphans + waiting
            latencies, _ = self._dns.pair([True] * len(orphans) + [False] * len(waiting),
                                          [key for key, _ in both], [ts for _, ts in both])
            if latencies:
                self._hist["nc_dns_response_seconds"][()].add(np.asarray(latencies))
            packets = int(delta["counters"].get("nc_packets", {}).get((), 0))
            if packets:
                self._rate(packets)

    # -- reading (the HTTP side) ----------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            self._expire()
            counters = {k: dict(v) for k, v in self._counters.items()}
            gauges = {k: dict(v) for k, v in self._gauges.items()}
            hist = {k: {lk: Histogram(h.bounds, list(h.buckets), h.count, h.sum)
                        for lk, h in v.items()}
                    for k, v in self._hist.items() if v}
        gauges["nc_uptime_seconds"] = {(): time.time() - self.started}
        for fam in FAMILIES.values():  # declared families always appear, if only as 0
            if fam.kind is Kind.COUNTER and not fam.labels:
                counters.setdefault(fam.name, {(): 0.0})
        return Snapshot(counters, gauges, hist)
