"""The compiled per-row steps of the packet metrics (metrics/_keys.pyx) against the numpy
formulas they replaced, on any values (audit records read from a file hold any int64 or
float64), and the metrics of a real capture through them."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from corpus import PCAPS
from netcap.decode.batch import Decoded, decode_batch
from netcap.decode.linktypes import ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_VLAN
from netcap.metrics._keys import bucket_counts, lookup, services, small_buckets, stuck, tcp_keys
from netcap.metrics.families import ENTROPY_BUCKETS, LATENCY_BUCKETS, PAYLOAD_BUCKETS
from netcap.metrics.state import (
    _ETHERNET_KEY,
    _FLAG_NAMES,
    _FLAGS_INDEX,
    _IP_PROTOCOL_INDEX,
    _SERVICE_OF_PORT,
    IP_PROTOCOL_NAMES,
    SERVICE_NAMES,
    Histogram,
    MetricsState,
    _set,
)
from netcap.sources.capture import open_capture

I64 = npt.NDArray[np.int64]
NO_TABLE = np.zeros(0, np.uint8)
ints = hnp.arrays(np.int64, st.integers(0, 300),
                  elements=st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-2, 70000)))
floats = hnp.arrays(np.float64, st.integers(0, 300), elements=st.floats(width=64))


@settings(max_examples=300, deadline=None)
@given(ints, floats, st.sampled_from([PAYLOAD_BUCKETS, ENTROPY_BUCKETS, LATENCY_BUCKETS]))
def test_bucket_counts_is_searchsorted_left(i: I64, f: npt.NDArray[np.float64],
                                            bounds: tuple[float, ...]) -> None:
    edges = np.asarray(bounds, np.float64)
    # Integers are looked up in the table where it covers them (any size of table).
    tables = [NO_TABLE, small_buckets(edges, 1), small_buckets(edges, 70000)]
    for values in (i, f):
        want = np.bincount(np.searchsorted(edges, values, side="left"),
                           minlength=len(edges) + 1)
        for table in tables:
            assert bucket_counts(values, edges, table).tolist() == want.tolist()


def test_bucket_counts_edges() -> None:
    edges = np.asarray(PAYLOAD_BUCKETS, np.float64)
    values = np.asarray([np.nan, np.inf, -np.inf, -0.0, 0.0, 64.0, 64.5, 65535.0, 65536.0])
    # NaN past every bound (numpy sorts it last), a value on a bound in that bound's bucket
    assert bucket_counts(values, edges, NO_TABLE).tolist() == [3, 1, 1, 0, 0, 0, 0, 0, 0, 1, 3]
    table = small_buckets(edges, 1 << 16)
    ints = np.asarray([-1, 0, 1, 64, 65, 1500, 1501, 65535, 65536, 2**63 - 1], np.int64)
    assert bucket_counts(ints, edges, table).tolist() == [2, 2, 1, 0, 0, 0, 1, 1, 0, 1, 2]


def test_histogram_add_takes_any_numbers() -> None:
    h = Histogram(PAYLOAD_BUCKETS)
    h.add(np.asarray([0, 64, 100], np.int32))  # not int64 or float64: as float64
    h.add(np.asarray([[1.0, 2.0]])[:, ::-1].T)  # 2-D, not contiguous
    assert (h.buckets[:3], h.count, h.sum) == ([1.0, 3.0, 1.0], 5.0, 167.0)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_services_and_tcp_keys_are_the_numpy_formulas(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 200))
    col = hnp.arrays(np.int64, n, elements=st.one_of(st.integers(-(2**63), 2**63 - 1),
                                                     st.sampled_from([22, 53, 80, 443, 0])))
    sport, dport = data.draw(col), data.draw(col)
    flags = [data.draw(st.one_of(st.none(), hnp.arrays(st.sampled_from([np.bool_, np.int64]),
                                                       n))) for _ in range(6)]
    s_src, s_dst = _SERVICE_OF_PORT[sport & 0xFFFF], _SERVICE_OF_PORT[dport & 0xFFFF]
    service = np.where(s_dst > 0, s_dst, s_src)
    assert services(sport, dport, _SERVICE_OF_PORT).tolist() == service.tolist()
    bits = np.zeros(n, np.uint8)
    for i, flag in enumerate(flags):
        if flag is not None:
            bits |= (np.asarray(flag) != 0).view(np.uint8) << i
    want = _FLAGS_INDEX[bits] * len(SERVICE_NAMES) + service
    got = tcp_keys([_set(f) for f in flags], service, _FLAGS_INDEX, len(SERVICE_NAMES))
    assert got.tolist() == want.tolist()


@settings(max_examples=200, deadline=None)
@given(ints)
def test_ethernet_keys_are_the_comparisons(et: I64) -> None:
    key = np.full(et.shape, 5, np.int64)  # the formula the table replaced
    key[et == ETH_IPV4], key[et == ETH_IPV6], key[et == ETH_ARP] = 0, 1, 2
    for v in ETH_VLAN:
        key[et == v] = 3
    key[et == 0] = 4
    assert lookup(et, _ETHERNET_KEY, 5).tolist() == key.tolist()


def test_stuck_counts_packets_below_and_not_above() -> None:
    error = np.asarray([0, 0, 0, 3, 0, 0], np.int16)
    below = [np.asarray([0, 1, 2, 3], np.int64), np.asarray([4], np.int64)]
    above = [np.asarray([1], np.int64), np.asarray([2, 2], np.int64)]
    assert stuck(6, below, above, error) == 2  # 0 and 4 (3 has an error)
    try:
        stuck(6, [np.asarray([6], np.int64)], [], error)
    except IndexError:
        pass
    else:
        raise AssertionError("a packet index past the batch was not refused")


def _numpy_counts(decoded: list[Decoded]) -> dict[str, Counter[tuple[str, ...]]]:
    """The packet-tier series the numpy steps made (state.py before the compiled ones):
    TCP segments by flags and service, Ethernet frames, IP packets, ICMP messages, the
    packets stuck for want of a decoder, and the payload-size buckets."""
    out: dict[str, Counter[tuple[str, ...]]] = defaultdict(Counter)
    names = [(f, s) for f in _FLAG_NAMES for s in SERVICE_NAMES]
    edges = np.asarray(PAYLOAD_BUCKETS, np.float64)
    for d in decoded:
        t = d.tables
        if "TCP" in t:
            c, n = t["TCP"].cols, t["TCP"].n
            sport, dport = np.asarray(c["SrcPort"]) & 0xFFFF, np.asarray(c["DstPort"]) & 0xFFFF
            s_src, s_dst = _SERVICE_OF_PORT[sport], _SERVICE_OF_PORT[dport]
            service = np.where(s_dst > 0, s_dst, s_src)
            bits = np.zeros(n, np.uint8)
            for i, f in enumerate(("FIN", "SYN", "RST", "PSH", "ACK", "URG")):
                bits |= (np.asarray(c[f]) != 0).view(np.uint8) << i
            for k in (_FLAGS_INDEX[bits] * len(SERVICE_NAMES) + service).tolist():
                out["nc_tcp_segments"][names[k]] += 1
            idx = np.searchsorted(edges, np.asarray(c["PayloadSize"]), side="left")
            for b in idx.tolist():
                out["tcp_payload_buckets"][(str(b),)] += 1
        if "Ethernet" in t:
            for et in np.asarray(t["Ethernet"].cols["EthernetType"]).tolist():
                label = ("ipv4" if et == ETH_IPV4 else "ipv6" if et == ETH_IPV6 else
                         "arp" if et == ETH_ARP else "vlan" if et in ETH_VLAN else
                         "llc" if et == 0 else "other")
                out["nc_ethernet_frames"][(label,)] += 1
        has_ip, upper = set(), set()
        for name, field, v in (("IPv4", "Protocol", "4"), ("IPv6", "NextHeader", "6")):
            if name in t:
                for p in np.asarray(t[name].cols[field]).tolist():
                    proto = IP_PROTOCOL_NAMES[_IP_PROTOCOL_INDEX[p & 0xFF]]
                    out["nc_ip_packets"][(v, proto)] += 1
                has_ip |= set(np.asarray(t[name].pkt).tolist())
        for name in ("TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP", "IPv6Fragment"):
            if name in t:
                upper |= set(np.asarray(t[name].pkt).tolist())
        if "IPv4" in t:
            c = t["IPv4"].cols
            frag = (np.asarray(c["FragOffset"]) > 0) | ((np.asarray(c["Flags"]) & 1) != 0)
            upper |= set(np.asarray(t["IPv4"].pkt)[frag].tolist())
        stuck_here = sum(1 for p in has_ip - upper if d.error[p] == 0)
        out["nc_unknown_protocols"][("ip_protocol",)] += stuck_here
    return out


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["zeek_http-vlan-0.pcap", "dpkt_http.pcap",
                                  "zeek_http_get-gzip.pcap"])
def test_metrics_of_a_capture_are_those_of_the_numpy_steps(name: str) -> None:
    with open_capture(str(PCAPS / name), batch_packets=1 << 16) as src:
        decoded = [decode_batch(b) for b in src]
    state = MetricsState()
    for d in decoded:
        state.add_batch(d)
    snap = state.snapshot()
    want = _numpy_counts(decoded)
    assert want["nc_tcp_segments"]  # the capture has TCP: the test compares something
    for fam in ("nc_tcp_segments", "nc_ethernet_frames", "nc_ip_packets"):
        assert snap.counters.get(fam, {}) == dict(want[fam]), fam
    unknown = snap.counters.get("nc_unknown_protocols", {}).get(("ip_protocol",), 0)
    assert unknown == want["nc_unknown_protocols"][("ip_protocol",)]
    h = snap.histograms["nc_tcp_payload_bytes"][()]
    assert h.buckets == [float(want["tcp_payload_buckets"][(str(b),)])
                         for b in range(len(PAYLOAD_BUCKETS))]
