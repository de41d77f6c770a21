"""TLS hellos and fingerprints: JA3/JA4 against the values published with the corpus
captures (salesforce/ja3, FoxIO JA4 snapshots, suricata-verify), parsing one byte at a
time, and fuzzing (only DecodeError may come out)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import EXPECTED as PUBLISHED_DIR
from corpus import PCAPS
from helpers import skip_module_without_corpus
from netcap.analyzers.tls import HelloReader, parse_client_hello, parse_server_hello
from netcap.decode.batch import decode_batch
from netcap.decode.errors import DecodeError
from netcap.reassembly.streams import StreamStage, segments
from netcap.sources.capture import open_capture

pytestmark = pytest.mark.corpus  # every test here reads the public corpus (tests/corpus.py)
skip_module_without_corpus()  # read at import below


def _expected() -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    with open(PUBLISHED_DIR / "FINGERPRINTS.jsonl") as f:
        for line in f:
            e = json.loads(line)
            if e["key"] in ("ja4", "tls.ja4") and e["expected"].startswith("t"):
                out.setdefault(e["file"] + " ja4", Counter())[e["expected"]] += 1
            if e["key"] in ("ja3", "tls.ja3.hash"):
                out.setdefault(e["file"] + " ja3", Counter())[e["expected"]] += 1
    return out


EXPECTED = _expected()


def hellos(name: str) -> dict[str, list[dict[str, Any]]]:
    stage = StreamStage()
    out: dict[str, list[dict[str, Any]]] = {}
    for batch in open_capture(str(PCAPS / name)):
        for kind, table in stage.update(segments(decode_batch(batch))).tables().items():
            out.setdefault(kind, []).extend(table.to_dicts())
    for kind, table in stage.flush().tables().items():
        out.setdefault(kind, []).extend(table.to_dicts())
    return out


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_published_fingerprints(key: str) -> None:
    name, kind = key.split()
    got = hellos(name).get("TLSClientHello", [])
    ours = Counter(str(h["Ja4" if kind == "ja4" else "Ja3"]) for h in got)
    want = set(EXPECTED[key])  # a value may be published twice (two suites, one file)
    assert want and want <= set(ours), (want - set(ours), ours)


def test_counts_of_the_ja4_captures() -> None:
    """Every TCP stream of FoxIO's captures gives a ClientHello (59 streams each, one
    published value per stream); the first hello of each stream has that value (a
    HelloRetryRequest brings a second one, recorded too)."""
    for name in ("ja4_tls-handshake.pcapng", "ja4_tls-sni.pcapng"):
        first: dict[tuple[str, int], str] = {}
        for h in hellos(name)["TLSClientHello"]:
            first.setdefault((str(h["SrcIP"]), int(h["SrcPort"])), str(h["Ja4"]))
        assert len(first) == 59
        assert Counter(first.values()) == EXPECTED[name + " ja4"]


def _records(data: bytes, step: int) -> list[tuple[int, dict[str, Any]]]:
    reader = HelloReader()
    out: list[tuple[int, dict[str, Any]]] = []
    for i in range(0, len(data), step):
        out += reader.feed(data[i : i + step])
    return out


def _stream(name: str, port: int) -> list[bytes]:
    """The payload bytes of each direction to `port`, in packet order (the corpus
    streams used here have no retransmissions)."""
    out: dict[tuple[int, int], bytearray] = {}
    for batch in open_capture(str(PCAPS / name)):
        segs = segments(decode_batch(batch))
        for seg in segs.rows() if segs is not None else ():
            if port in (seg[1], seg[3]):
                out.setdefault((seg[1], seg[3]), bytearray()).extend(seg[6])
    return [bytes(v) for v in out.values()]


STREAMS = _stream("ja3_ssl-chrome.pcap", 443) + _stream("ja4_tls12.pcap", 443)


def test_split_anywhere_gives_the_same_hellos() -> None:
    """Fed one byte at a time, or in odd pieces, a direction gives the same hellos as
    fed whole (records and handshake messages split across segments)."""
    for data in STREAMS:
        whole = _records(data, len(data))
        assert whole
        for step in (1, 7, 1000):
            assert _records(data, step) == whole


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_hellos_raise_only_decode_errors(data: st.DataObject) -> None:
    base = bytearray(data.draw(st.sampled_from(STREAMS))[:2000])
    for _ in range(data.draw(st.integers(1, 10))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        _records(bytes(base), data.draw(st.integers(1, 600)))
    body = bytes(base[9:])
    for parse in (parse_client_hello, parse_server_hello):
        with contextlib.suppress(DecodeError):
            parse(body)
