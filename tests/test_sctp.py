"""SCTP common headers against tshark (the corpus's protocol oracle, `*.proto.jsonl`):
every frame tshark dissects as SCTP has one SCTP record with its ports, verification tag
and checksum, and the records go through `net capture` into SCTP.ncap.gz and back out of
`net dump` unchanged. (SCTP was added to the compiled decoder as the worked example of a
new transport: see docs/performance.md, "One packet decoder".)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corpus import ORACLE, PCAPS, absent
from netcap.decode.batch import decode_batch
from netcap.sources.capture import open_capture

CAPTURES = ["zeek_communityid_sctp.pcap", "sv_sctp-keywords.pcap"]
pytestmark = pytest.mark.skipif(absent(), reason="public corpus not present")


def _tshark(name: str) -> dict[int, dict[str, list[str]]]:
    """Frame number -> the SCTP fields tshark gave it."""
    out = {}
    with open(ORACLE / f"{name}.proto.jsonl") as f:
        for line in f:
            frame = json.loads(line)
            if "sctp.srcport" in frame:
                out[frame["frame.number"]] = frame
    return out


def _records(name: str) -> dict[int, dict[str, object]]:
    """Frame number (1-based, as tshark's) -> our SCTP record."""
    out = {}
    with open_capture(str(PCAPS / name)) as src:
        for b in src:
            for pkt, rec in decode_batch(b).records("SCTP"):
                assert pkt + 1 not in out  # one record per packet
                out[pkt + 1] = rec
    return out


@pytest.mark.corpus
@pytest.mark.parametrize("name", CAPTURES)
def test_sctp_headers_equal_tsharks(name: str) -> None:
    want, got = _tshark(name), _records(name)
    assert want and sorted(got) == sorted(want)
    for number, frame in want.items():
        rec = got[number]
        assert rec.get("SrcPort", 0) == int(frame["sctp.srcport"][0]), number
        assert rec.get("DstPort", 0) == int(frame["sctp.dstport"][0]), number
        assert rec.get("VerificationTag", 0) == int(frame["sctp.verification_tag"][0], 16)
        assert rec.get("Checksum", 0) == int(frame["sctp.checksum"][0], 16), number


@pytest.mark.corpus
def test_sctp_records_through_a_file(tmp_path: Path) -> None:
    name = CAPTURES[0]
    net = [sys.executable, "-m", "netcap.cli"]
    subprocess.run([*net, "capture", "-read", str(PCAPS / name), "-out", str(tmp_path),
                    "-quiet"], check=True, timeout=120)
    dump = subprocess.run([*net, "dump", "-read", str(tmp_path / "SCTP.ncap.gz"), "-json"],
                          check=True, timeout=120, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in dump.splitlines() if line.startswith("{")]
    want = _records(name)
    assert len(rows) == len(want) == 74
    for row, rec in zip(rows, want.values(), strict=True):
        assert int(row.get("SrcPort", 0)) == rec.get("SrcPort", 0)
        assert int(row.get("VerificationTag", 0)) == rec.get("VerificationTag", 0)
        assert int(row.get("Checksum", 0)) == rec.get("Checksum", 0)
        assert row["SrcIP"] == rec["SrcIP"]
