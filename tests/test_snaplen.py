"""Header-only captures (`tcpdump -s 64`, a common way to collect flow statistics): a
TCP header whose options the snaplen cut keeps its fixed fields, the cut is counted as
`tcp/options_truncated`, and every packet still counts in its connection (issue 14).

The captures are real ones (the corpus and tests/data/recorded) cut here as tcpdump's
snaplen would: each record's captured length becomes min(length, snaplen). The expected
fields are the uncut decode's, which tests/test_oracle.py checks against tshark.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from corpus import PCAPS
from netcap.decode.batch import decode_batch
from netcap.decode.errors import code
from netcap.pipeline import CaptureOptions, run_capture
from netcap.sinks.ncap import EncodeOptions
from netcap.sources.capture import open_capture
from netcap.sources.ncap import NcapReader

RECORDED = Path(__file__).parent / "data" / "recorded"
FIXED = ("SrcPort", "DstPort", "SeqNum", "AckNum", "DataOffset", "FIN", "SYN", "RST", "PSH",
         "ACK", "URG", "ECE", "CWR", "NS", "Window", "Checksum", "Urgent", "SrcIP", "DstIP")
OPTIONS_TRUNCATED = code("tcp", "options_truncated")


def cut(src: Path, dst: Path, snaplen: int) -> None:
    """A classic pcap file with every record cut to `snaplen` captured bytes."""
    data = src.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    head = bytearray(data[:24])
    struct.pack_into(endian + "I", head, 16, snaplen)
    out = [bytes(head)]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from(endian + "IIII", data, pos)
        keep = min(incl, snaplen)
        out.append(struct.pack(endian + "IIII", sec, frac, keep, orig))
        out.append(data[pos + 16 : pos + 16 + keep])
        pos += 16 + incl
    dst.write_bytes(b"".join(out))


def tcp_records(path: Path) -> tuple[dict[int, dict[str, Any]], dict[int, int],
                                      dict[int, int]]:
    """TCP records by packet number, each packet's decode error, and where each TCP
    header ends in its packet."""
    recs: dict[int, dict[str, Any]] = {}
    errors: dict[int, int] = {}
    ends: dict[int, int] = {}
    base = 0
    with open_capture(str(path)) as src:
        for batch in src:
            d = decode_batch(batch)
            for pkt, rec in d.records("TCP"):
                recs[base + pkt] = rec
            t = d.tables.get("TCP")
            if t is not None and t.pkt is not None:
                starts = batch.offset.tolist()  # _poff is an offset in the batch's buffer
                for pkt, poff in zip(t.pkt.tolist(), t.cols["_poff"].tolist(), strict=True):
                    ends[base + pkt] = poff - starts[pkt]
            for i, e in enumerate(d.error.tolist()):
                errors[base + i] = e
            base += len(batch)
    return recs, errors, ends


def captures() -> list[Path]:
    paths = [p for p in sorted(RECORDED.glob("*.pcap")) if p.read_bytes()[:4] in
             (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")]
    for name in ("zeek_http_bro.org.pcap", "zeek_wikipedia.pcap", "zeek_linux_dlt_sll2.pcap"):
        if (PCAPS / name).exists():
            paths.append(PCAPS / name)
    return paths


@pytest.mark.parametrize("snaplen", [54, 60, 64, 66, 70, 80])
def test_cut_options_keep_the_fixed_fields(tmp_path: Path, snaplen: int) -> None:
    """Every TCP packet of the uncut capture has a TCP record in the cut one, with the
    same fixed fields; the packets whose header the cut reached are counted as
    `tcp/options_truncated` (and only those), with no options and no payload."""
    cut_packets = 0
    for path in captures():
        small = tmp_path / f"{path.stem}-{snaplen}.pcap"
        cut(path, small, snaplen)
        whole, _, ends = tcp_records(path)
        got, errors, _ = tcp_records(small)
        assert set(got) == set(whole), path.name
        for pkt, want in whole.items():
            rec = got[pkt]
            fixed = {k: rec.get(k) for k in FIXED}
            assert fixed == {k: want.get(k) for k in FIXED}, (path.name, pkt)
            if ends[pkt] > snaplen:  # the header ends past the cut
                cut_packets += 1
                assert errors[pkt] == OPTIONS_TRUNCATED, (path.name, pkt)
                assert not rec.get("Options") and not rec.get("PayloadSize")
            else:
                assert errors[pkt] != OPTIONS_TRUNCATED, (path.name, pkt)
                assert rec.get("Options") == want.get("Options")
    if snaplen < 66:  # Ethernet + IPv4 + TCP with timestamps is 66 bytes
        assert cut_packets > 100


def test_the_ip_length_ending_inside_the_header_is_still_malformed() -> None:
    """Only the snaplen's cut keeps the fixed fields: an IPv4 total length that ends
    inside the TCP header is a malformed packet (`tcp/truncated`), as before."""
    from netcap.decode.packets import decode_packets
    from netcap.sources.batch import PacketBatch

    tcp = struct.pack("!HHIIBBHHH", 40000, 443, 1, 2, 8 << 4, 0x10, 500, 0, 0) + bytes(12)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 24, 0, 0x4000, 64, 6, 0,
                     b"\x0a\0\0\1", b"\x0a\0\0\2")
    tables, error = decode_packets(PacketBatch.from_packets(
        [bytes(12) + b"\x08\x00" + ip + tcp], [0], 1))
    assert error.tolist() == [code("tcp", "truncated")]
    assert sorted(tables) == ["Ethernet", "IPv4"]


def test_a_header_only_capture_counts_every_packet_in_its_connection(tmp_path: Path) -> None:
    """`net capture` of a capture cut at 64 bytes gives the same connections, with the
    same packet counts, as of the whole capture."""
    def connections(pcap: Path, out: Path) -> list[tuple[Any, ...]]:
        out.mkdir()
        run_capture(CaptureOptions(read=str(pcap), out=str(out), workers=1,
                                   encode=EncodeOptions(include=frozenset({"Connection"}))))
        with NcapReader(str(out / "Connection.ncap.gz")) as reader:
            return sorted((m.SrcIP, m.SrcPort, m.DstIP, m.DstPort, m.NumPackets,
                           m.NumSYNFlags, m.NumFINFlags, m.NumACKFlags) for m in reader)

    for path in captures()[:3]:
        small = tmp_path / f"{path.stem}-64.pcap"
        cut(path, small, 64)
        whole = connections(path, tmp_path / f"{path.stem}-whole")
        assert whole, path.name
        assert connections(small, tmp_path / f"{path.stem}-cut") == whole, path.name
