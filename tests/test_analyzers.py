"""Application analyzers (DNS, NTP, DHCPv4): fields from real captures, every error
reason, and fuzzing (real payloads mutated, and random bytes) that may only raise
DecodeError."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import PCAPS, absent
from netcap.analyzers.dhcp import parse_dhcp
from netcap.analyzers.dns import check_dns, parse_dns
from netcap.analyzers.ntp import parse_ntp
from netcap.decode.batch import decode_batch
from netcap.decode.errors import DecodeError, describe
from netcap.metrics.state import MetricsState
from netcap.sources.capture import open_capture


def _payloads(name: str, port: int) -> list[bytes]:
    """UDP payloads to or from `port` in a corpus capture."""
    out = []
    for batch in open_capture(str(PCAPS / name)):
        d = decode_batch(batch, analyze=False)
        t = d.tables["UDP"]
        assert t.pkt is not None
        for i, (sp, dp) in enumerate(zip(t.cols["SrcPort"], t.cols["DstPort"], strict=True)):
            if port in (int(sp), int(dp)):
                off, size = int(t.cols["_poff"][i]), int(t.cols["PayloadSize"][i])
                out.append(batch.data[off : off + size].tobytes())
    return out


# Read at import for the hypothesis strategies below; empty without the corpus (the tests
# that use them are skipped then).
DNS, NTP, DHCP = ([], [], []) if absent() else (
    _payloads("dpkt_dns_icmp.pcap", 53) + _payloads("zeek_dns_mdns.pcap", 5353)
    + _payloads("sv_dns-udp-eve-log-srv.pcap", 53) + _payloads("tcpdump_dns_udp.pcap", 53),
    _payloads("zeek_ntp.pcap", 123), _payloads("zeek_dhcp.pcap", 67))


@pytest.mark.corpus
def test_corpus_payloads_parse() -> None:
    assert len(DNS) > 30 and len(NTP) > 30 and len(DHCP) >= 9
    for p in DNS:
        parse_dns(p)
    for p in NTP:
        parse_ntp(p)
    for p in DHCP:
        parse_dhcp(p)


def _header(qd: int = 1, an: int = 0) -> bytes:
    return struct.pack(">6H", 0x1234, 0x8180, qd, an, 0, 0)


def test_dns_record_types() -> None:
    name = b"\x03www\x07example\x03com\x00"
    q = name + struct.pack(">HH", 1, 1)

    def rr(rtype: int, rdata: bytes) -> bytes:
        return b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 300, len(rdata)) + rdata

    msg = _header(1, 6) + q + rr(16, b"\x05hello\x00\x03abc") + rr(
        6, b"\x02ns\xc0\x0c\x04mail\xc0\x0c" + struct.pack(">5I", 7, 8, 9, 10, 11)) + rr(
        15, struct.pack(">H", 10) + b"\x02mx\xc0\x0c") + rr(
        33, struct.pack(">HHH", 1, 2, 5060) + b"\x03sip\xc0\x0c") + rr(
        5, b"\xc0\x0c") + rr(99, b"\x01\x02")
    rec = parse_dns(msg)
    assert rec["ID"] == 0x1234 and rec["QR"] and rec["RD"] and rec["RA"]
    assert rec["Questions"] == [{"Name": b"www.example.com", "Type": 1, "Class": 1}]
    txt, soa, mx, srv, cname, other = rec["Answers"]
    assert txt["TXTs"] == [b"hello", b"", b"abc"]
    assert soa["SOA"] == {"MName": b"ns.www.example.com", "RName": b"mail.www.example.com",
                          "Serial": 7, "Refresh": 8, "Retry": 9, "Expire": 10, "Minimum": 11}
    assert mx["MX"] == {"Preference": 10, "Name": b"mx.www.example.com"}
    assert srv["SRV"] == {"Priority": 1, "Weight": 2, "Port": 5060,
                          "Name": b"sip.www.example.com"}
    assert cname["CNAME"] == b"www.example.com"
    assert other["Data"] == b"\x01\x02" and other["Type"] == 99  # unknown types kept raw
    # Odd bytes in a label are escaped, the root is the empty name.
    odd = parse_dns(_header(2) + b"\x03a.b\x02\x00\xff\x00" + b"\x00\x01\x00\x01"
                    + b"\x00\x00\x01\x00\x01")
    assert [q["Name"] for q in odd["Questions"]] == [b"a\\.b.\\000\\255", b""]


@pytest.mark.parametrize(("msg", "reason"), [
    (b"\x00" * 11, "dns/truncated"),
    (_header() + b"\xc0\x0c\x00\x01\x00\x01", "dns/bad_pointer"),  # points at itself
    (_header() + b"\x01a\xc0\x0c\x00\x01\x00\x01", "dns/bad_pointer"),  # a loop
    (_header() + b"\x41a\x00\x00\x01\x00\x01", "dns/bad_label"),
    (_header() + b"\x3f" + b"a" * 63 + (b"\x3f" + b"a" * 63) * 3 + b"\x00\x00\x01\x00\x01",
     "dns/name_too_long"),
    (_header(1, 1) + b"\x00\x00\x01\x00\x01" + b"\x00" + struct.pack(">HHIH", 1, 1, 0, 3)
     + b"\x01\x02\x03", "dns/bad_rdata"),  # an A record of 3 bytes
    (_header(1, 1) + b"\x00\x00\x01\x00\x01" + b"\x00\x00\x01", "dns/truncated"),
    (b"\x23" + b"\x00" * 46, "ntp/truncated"),
    (b"\x01" * 239, "dhcp/truncated"),
    (b"\x01" * 240, "dhcp/bad_magic"),
    (b"\x01" * 236 + b"\x63\x82\x53\x63" + b"\x35\x05\x01", "dhcp/bad_option_length"),
])
def test_error_reasons(msg: bytes, reason: str) -> None:
    parser = {"dns": parse_dns, "ntp": parse_ntp, "dhcp": parse_dhcp}[reason.split("/")[0]]
    with pytest.raises(DecodeError) as e:
        parser(msg)
    assert describe(e.value.index) == reason


_PARSERS = [(parse_dns, DNS), (parse_ntp, NTP), (parse_dhcp, DHCP)]


@pytest.mark.corpus
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_payloads_raise_only_decode_errors(data: st.DataObject) -> None:
    parser, corpus = data.draw(st.sampled_from(_PARSERS))
    base = bytearray(data.draw(st.sampled_from(corpus)))
    for _ in range(data.draw(st.integers(1, 8))):
        if not base:
            break
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    for msg in (bytes(base), bytes(base[:cut])):
        with contextlib.suppress(DecodeError):
            parser(msg)


def _outcome(msg: bytes, full: bool) -> object:
    try:
        if not full:
            return check_dns(msg)
        return [q["Type"] for q in parse_dns(msg)["Questions"]]
    except DecodeError as e:
        return describe(e.index)


@pytest.mark.corpus
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_dns_counting_mode_agrees_with_full_decoding(data: st.DataObject) -> None:
    """check_dns, used when only counting, fails exactly when the full parse fails (same
    reason) and gives the same question types."""
    base = bytearray(data.draw(st.sampled_from(DNS)))
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    msg = bytes(base[: data.draw(st.integers(0, len(base)))])
    assert _outcome(msg, True) == _outcome(msg, False)


def _with_rr(rtype: int, rdata: bytes, tail: bytes = b"") -> bytes:
    return (_header(1, 1) + b"\x00\x00\x01\x00\x01" + b"\x00"
            + struct.pack(">HHIH", rtype, 1, 0, len(rdata)) + rdata + tail)


@pytest.mark.parametrize("msg", [
    _with_rr(15, b"\x00\x01", b"\x00"),  # MX data too short for its name
    _with_rr(15, b"\x00\x01"),  # ... at the end of the message
    _with_rr(33, b"\x00" * 6, b"\x00"),  # SRV likewise
    _with_rr(2, b"\x00\x00"),  # NS whose name ends inside its data
    _with_rr(6, b"\x00\x00" + b"\x00" * 19),  # SOA one byte short
    _with_rr(16, b"\x05ab"),  # TXT string past the data
    _with_rr(28, b"\x00" * 15),  # AAAA of 15 bytes
])
def test_dns_counting_mode_on_rdata_edges(msg: bytes) -> None:
    assert _outcome(msg, True) == _outcome(msg, False)


@pytest.mark.corpus
@settings(max_examples=300, deadline=None)
@given(msg=st.binary(max_size=600))
def test_random_bytes_raise_only_decode_errors(msg: bytes) -> None:
    for parser, _ in _PARSERS:
        with contextlib.suppress(DecodeError):
            parser(msg)


@pytest.mark.corpus
def test_every_prefix_of_real_messages() -> None:
    """Fed one byte at a time, as a cut capture would: a record or a DecodeError."""
    for parser, corpus in _PARSERS:
        for msg in corpus[:5]:
            for k in range(len(msg) + 1):
                with contextlib.suppress(DecodeError):
                    parser(msg[:k])


@pytest.mark.corpus
def test_dns_response_time_in_packet_time() -> None:
    """tcpdump_dns_udp.pcap: a query at 1591780794.740079 and its response at .870361."""
    state = MetricsState()
    for batch in open_capture(str(PCAPS / "tcpdump_dns_udp.pcap")):
        state.add_batch(decode_batch(batch))
    h = state.snapshot().histograms["nc_dns_response_seconds"][()]
    assert h.count == 1 and h.sum == pytest.approx(0.130282, abs=1e-9)
    counters = state.snapshot().counters
    assert counters["nc_dns_messages"] == {("query", "query", "noerror"): 1,
                                           ("response", "query", "noerror"): 1}
    assert counters["nc_dns_questions"] == {("a",): 2}


@pytest.mark.corpus
def test_failed_message_is_a_counted_error_and_keeps_lower_layers() -> None:
    """A DNS message cut by the snaplen: no DNS record, dns/truncated counted, and the
    UDP and IP records of that packet are still there."""
    for batch in open_capture(str(PCAPS / "dpkt_truncated_dns.pcap")):
        d = decode_batch(batch)
        assert "DNS" not in d.tables
        assert {describe(int(e)) for e in d.error if e} == {"dns/truncated"}
        assert d.tables["UDP"].n == len(batch)


@pytest.mark.corpus
def test_ntp_batch_read_equals_per_message_parse() -> None:
    """NTP records of a batch (read vectorized) equal parse_ntp of each payload."""
    for name in ("zeek_ntp.pcap", "tcpdump_ntp.pcap"):
        for batch in open_capture(str(PCAPS / name)):
            got = [rec for _, rec in decode_batch(batch).records("NTP")]
            want = []
            for msg in _payloads(name, 123):
                rec = parse_ntp(msg)
                want.append({k: v for k, v in rec.items() if v})  # to_dicts omits defaults
            assert got and [{k: v for k, v in g.items() if k in parse_ntp(b"\0" * 48)}
                            for g in got] == want


@pytest.mark.corpus
def test_dhcp_message_labels_from_columns_equal_those_from_dicts() -> None:
    """nc_dhcp_messages by message type: read from the decoded Options columns (the first
    type-53 option of each record) as from the options listed as dicts (records read
    from a file), on every corpus capture with DHCP, in batches of 3 (records with and
    without the option, and batches without any)."""
    from collections import Counter

    import numpy as np

    from corpus import corpus_files
    from netcap.metrics.app import children
    from netcap.metrics.state import _dhcp_labels
    from netcap.records.table import Children, Ragged, RecordTable
    from netcap.records.types import RECORDS
    from netcap.sources.capture import CaptureError

    compared = 0
    for name in corpus_files():
        if "dhcp" not in name or "dhcpv6" in name:
            continue
        with contextlib.suppress(CaptureError), open_capture(str(PCAPS / name),
                                                             batch_packets=3) as src:
            for batch in src:
                t = decode_batch(batch).tables.get("DHCPv4")
                if t is None:
                    continue
                opts = t.cols.get("Options")
                listed = children(opts, t.n)
                assert _dhcp_labels(opts, t.n) == _dhcp_labels(listed, t.n)
                compared += t.n
    assert compared >= 9
    # Made up: the first of two type-53 options counts; records without one are "none".
    kids = Children(np.array([0, 0, 0, 2]), RecordTable(
        RECORDS["DHCPOption"], 4, {"Type": np.array([1, 53, 53, 12]),
                                   "Data": Ragged.from_list([b"x", b"3", b"1", b"h"])}))
    assert (_dhcp_labels(kids, 3) == _dhcp_labels(children(kids, 3), 3)
            == Counter({"request": 1, "none": 2}))
