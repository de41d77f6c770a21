"""Decoder properties: never raises, unknown link types counted, reason codes stable,
batches that alias the read buffer decode as copies do. (The decoder against the Python
oracle: test_decode_compiled.py.)"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import PCAPS
from netcap.decode.batch import decode_batch
from netcap.decode.errors import REASONS, code, describe
from netcap.decode.packets import decode_packets
from netcap.pipeline import CaptureOptions, run_capture
from netcap.sources.batch import PacketBatch
from netcap.sources.capture import open_capture

SAMPLES = ["zeek_http_bro.org.pcap", "zeek_wikipedia.pcap", "zeek_q-in-q.pcap",
           "zeek_icmp6-nd-options.pcap", "zeek_linux_dlt_sll2.pcap", "ja4_tls-alpn-h2-null.pcap",
           "zeek_ipv6-fragmented-dns.pcap", "tcpdump_802.1ad_QinQ.pcap", "zeek_radiotap.pcap",
           "zeek_linuxsll-arp.pcap", "tcpdump_LINKTYPE_RAW_ipv6.pcap",
           "zeek_ipv4_fragmented-1.pcap"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([0, 1, 101, 105, 108, 113, 127, 228, 229, 276]))
def test_decoder_never_raises(data: bytes, linktype: int) -> None:
    tables, error = decode_packets(PacketBatch.from_packets([data], [0], linktype))
    assert 0 <= int(error[0]) < len(REASONS)
    assert all(t.n >= 1 and t.pkt is not None and t.pkt.tolist() == [0] * t.n
               for t in tables.values())


def test_unknown_link_type_counted_not_fatal(tmp_path: Path) -> None:
    pcap = tmp_path / "lt147.pcap"
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147)
    recs = b"".join(struct.pack("<IIII", 1, i, 4, 4) + b"abcd" for i in range(3))
    pcap.write_bytes(head + recs)
    stats = run_capture(CaptureOptions(read=str(pcap), out=str(tmp_path / "out")))
    assert stats.packets == 3
    assert stats.linktypes == {"linktype_147": 3}
    assert stats.errors == {"link/unsupported_link_type": 3}
    assert stats.records == {}


@pytest.mark.corpus
def test_radiotap_frames_counted_and_decoded() -> None:
    with open_capture(str(PCAPS / "zeek_radiotap.pcap")) as src:
        d = decode_batch(next(iter(src)))
    assert not d.error.any()
    assert [r["DstPort"] for _, r in d.records("UDP")] == [53, 61738, 5353]  # as tshark


def test_reason_codes_are_stable() -> None:
    # Codes are metric label values and summary keys: existing ones never move.
    assert describe(code("ipv4", "truncated")) == "ipv4/truncated"
    assert REASONS[:5] == (("", ""), ("link", "unsupported_link_type"), ("ethernet", "truncated"),
                           ("dot1q", "truncated"), ("dot1q", "too_many_tags"))
    assert len(set(REASONS)) == len(REASONS)


@pytest.mark.corpus
def test_aliasing_batches_decode_the_same() -> None:
    """open_capture(copy=False) batches point into the read buffer, with record headers
    between the packets; decoding them must give exactly what copied batches give."""
    for name in SAMPLES + ["zeek_http_iso-download.pcap.gz", "ja4_tls-handshake.pcapng",
                           "pcapngtg_le_test202_mixed-endian-sections.pcapng"]:
        copied = [decode_batch(b) for b in open_capture(str(PCAPS / name), batch_packets=5,
                                                          chunk_bytes=700)]
        aliased = []
        for b in open_capture(str(PCAPS / name), batch_packets=5, chunk_bytes=700, copy=False):
            d = decode_batch(b)  # used up before the reader is asked for the next batch
            aliased.append((d.error.tolist(),
                            {k: t.to_dicts() for k, t in d.tables.items()}))
        assert aliased == [(d.error.tolist(), {k: t.to_dicts() for k, t in d.tables.items()})
                           for d in copied], name


_OPTION_BYTES = st.one_of(
    st.binary(max_size=40),
    # lists built from real option shapes, so well-formed ones are common too
    st.lists(st.sampled_from([b"\x00", b"\x01", b"\x02\x04\x05\xb4", b"\x03\x03\x07",
                              b"\x04\x02", b"\x08\x0a" + bytes(8), b"\x05\x0a" + bytes(8),
                              b"\x01\x01\x08\x0a" + bytes(8), b"\x02", b"\x08\x0b",
                              b"\xfe\x01", b"\x13\x12" + bytes(16)]), max_size=6)
    .map(lambda xs: b"".join(xs)[:40]))


@given(st.lists(_OPTION_BYTES, min_size=1, max_size=12))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_option_check_alone_finds_the_same_malformed_lists(areas: list[bytes]) -> None:
    """Counting alone checks option lists without keeping the options (and takes the
    usual NOP NOP Timestamps area as it is): it must call the same lists malformed."""
    from netcap.decode._decode import option_lists

    data = np.frombuffer(b"".join(areas) + bytes(64), np.uint8)
    start = np.cumsum([0] + [len(a) for a in areas[:-1]]).astype(np.int64)
    stop = start + np.asarray([len(a) for a in areas], np.int64)
    full = option_lists(data, start, stop, keep=True)[0]
    checked = option_lists(data, start, stop, keep=False)[0]
    assert checked.tolist() == full.tolist()
