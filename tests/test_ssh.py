"""SSH banners, KEXINITs and HASSH: against the values published with the corpus
captures (suricata-verify, FoxIO JA4 snapshots) and tshark's ssh.protocol /
ssh.kex.hassh* fields for every SSH capture (the zeek captures have no published HASSH:
tshark is their only reference), no false records from the corpus' other TCP streams,
the reader's rules on real streams made to break at each of them, feeding in any chunk
size, and fuzzing (only DecodeError may come out)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from ipaddress import ip_address
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import EXPECTED, ORACLE, PCAPS, corpus_files
from helpers import skip_module_without_corpus
from netcap.analyzers.ssh import (
    MAX_LINES,
    MAX_PACKET,
    MAX_PREBANNER,
    SshReader,
    hassh,
    parse_kexinit,
)
from netcap.decode.errors import DecodeError, describe
from netcap.sources._base import CaptureError
from tcp_streams import conversations

pytestmark = pytest.mark.corpus  # every test here reads the public corpus (tests/corpus.py)
skip_module_without_corpus()  # read at import below

Flow = tuple[str, int, str, int]  # sender address, port, receiver address, port
Direction = tuple[Flow, bool, bytes]  # flow, sent by the client, in-order bytes


@functools.cache
def directions(name: str) -> tuple[Direction, ...]:
    """Both directions of every TCP conversation of a capture (client = the conversation's
    client)."""
    out: list[Direction] = []
    for c in conversations(str(PCAPS / name)):
        a, p, b, q = c.client
        ca, sa = str(ip_address(a)), str(ip_address(b))
        out.append(((ca, p, sa, q), True, c.data(True)))
        out.append(((sa, q, ca, p), False, c.data(False)))
    return tuple(out)


def read(data: bytes, is_client: bool, step: int = 0) -> tuple[list[dict[str, Any]],
                                                                 str | None]:
    """Records (feed, then finish) and the violation, fed `step` bytes at a time (all at
    once for 0)."""
    reader = SshReader(is_client)
    step = step or max(len(data), 1)
    out: list[dict[str, Any]] = []
    for i in range(0, len(data), step):
        out += reader.feed(data[i : i + step])
    out += reader.finish()
    assert reader.done
    return out, reader.violation


@functools.cache
def oracle(name: str) -> dict[Flow, dict[str, Any]]:
    """tshark's SSH fields per direction: Ident (ssh.protocol), and from the KEXINIT
    frame Algorithms / HASSH (ssh.kex.hassh* for a client, ssh.kex.hasshserver* for a
    server) with IsClient."""
    out: dict[Flow, dict[str, Any]] = {}
    with open(ORACLE / f"{name}.jsonl") as f:
        for line in f:
            o = json.loads(line)
            if not any(k.startswith("ssh.") for k in o):
                continue
            src = (o.get("ip.src") or o["ipv6.src"])[0]
            dst = (o.get("ip.dst") or o["ipv6.dst"])[0]
            flow = (src, int(o["tcp.srcport"][0]), dst, int(o["tcp.dstport"][0]))
            e = out.setdefault(flow, {})
            if "ssh.protocol" in o:
                e.setdefault("Ident", o["ssh.protocol"][0])
            for field, is_client in (("ssh.kex.hassh", True), ("ssh.kex.hasshserver", False)):
                if field in o and "HASSH" not in e:
                    e.update(HASSH=o[field][0], Algorithms=o[field + "_algorithms"][0],
                             IsClient=is_client)
    return out


def _opens(name: str) -> bool:
    try:
        directions(name)
    except CaptureError:  # the corpus' deliberately damaged capture files
        return False
    return True


ALL = [n for n in corpus_files() if (ORACLE / f"{n}.jsonl").exists()]
SSH_CAPTURES = [n for n in ALL if oracle(n)]
OTHER = [n for n in ALL if not oracle(n) and _opens(n)]


def test_the_corpus_ssh_captures() -> None:
    """The captures tshark saw SSH in: the parametrized tests below are not empty."""
    assert SSH_CAPTURES == ["ja4_ssh.pcapng", "ja4_ssh2-malformed.pcap",
                            "sv_ssh-hassh-reassembled.pcap", "sv_ssh-hassh.pcap",
                            "zeek_http_get-to-ssh-server-nano.pcap",
                            "zeek_ssh_kex_curve25519.pcap", "zeek_var-services-std-ports.pcap"]
    assert len(OTHER) > 60
    for name in SSH_CAPTURES:  # no gaps: Conversation.data is the whole stream
        for c in conversations(str(PCAPS / name)):
            assert not any(skip for _, _, skip, _ in c.events)


# FINGERPRINTS.jsonl key -> (side: sent by the client, record field)
PUBLISHED_KEYS = {"hassh": (True, "HASSH"), "ssh.client.hassh.hash": (True, "HASSH"),
                  "hassh_server": (False, "HASSH"), "ssh.server.hassh.hash": (False, "HASSH"),
                  "ssh_protocol_client": (True, "Ident"),
                  "ssh_protocol_server": (False, "Ident")}


def _published() -> list[tuple[str, str, str]]:
    out = []
    with open(EXPECTED / "FINGERPRINTS.jsonl") as f:
        for line in f:
            e = json.loads(line)
            if e["key"] in PUBLISHED_KEYS:
                out.append((e["file"], e["key"], e["expected"]))
    return out


PUBLISHED = _published()


def test_published_values_cover_the_ssh_captures() -> None:
    assert {f for f, _, _ in PUBLISHED} == {"sv_ssh-hassh.pcap", "sv_ssh-hassh-reassembled.pcap",
                                            "ja4_ssh.pcapng", "ja4_ssh2-malformed.pcap"}
    assert len(PUBLISHED) == 12


@pytest.mark.parametrize(("name", "key", "expected"), PUBLISHED)
def test_published_values(name: str, key: str, expected: str) -> None:
    """suricata-verify's ssh.client/server.hassh.hash and FoxIO's hassh, hassh_server and
    ssh_protocol_client/server, from the side the key names."""
    side, field = PUBLISHED_KEYS[key]
    got = [rec.get(field) for _, is_client, data in directions(name) if is_client == side
           for rec in read(data, is_client)[0]]
    assert expected in got, got


@pytest.mark.parametrize("name", SSH_CAPTURES)
def test_as_tshark(name: str) -> None:
    """Per direction: the banner equals ssh.protocol, and Algorithms / HASSH equal
    ssh.kex.hassh_algorithms / ssh.kex.hassh (client) or the hasshserver fields
    (server); a record comes from exactly the directions tshark saw SSH in."""
    got: dict[Flow, dict[str, Any]] = {}
    for flow, is_client, data in directions(name):
        records, _ = read(data, is_client)
        assert len(records) <= 1
        for rec in records:
            assert rec["IsClient"] is is_client
            if "HASSH" in rec:
                assert hashlib.md5(rec["Algorithms"].encode()).hexdigest() == rec["HASSH"]
                assert "Notes" not in rec
            got[flow] = {k: rec[k] for k in ("Ident", "Algorithms", "HASSH") if k in rec}
            if "HASSH" in rec:
                got[flow]["IsClient"] = is_client
    assert got == oracle(name)


@pytest.mark.parametrize("name", OTHER)
def test_no_records_from_other_streams(name: str) -> None:
    """TLS, HTTP, DNS over TCP, PPTP...: not SSH, no record; a reader that read anything
    and gave up says why (a client's stream is refused at its first byte)."""
    for _, is_client, data in directions(name):
        records, violation = read(data, is_client)
        assert records == []
        if is_client and data:
            assert violation == "bad_banner"
        assert violation in (None, "bad_banner")


def test_malformed_capture() -> None:
    """ja4_ssh2-malformed: the malformed part (tshark's _ws.malformed, frame 14) is the
    server's KEXDH_REPLY host key, after both KEXINITs: both records are whole and
    nothing after them is read."""
    (flow, _, client), (_, _, server) = directions("ja4_ssh2-malformed.pcap")
    assert flow == ("10.0.0.1", 61672, "10.0.0.2", 22)
    assert read(client, True) == ([{
        "Ident": "SSH-2.0-OpenSSH_5.3", "IsClient": True,
        "HASSH": "21b457a327ce7a2d4fce5ef2c42400bd",
        "Algorithms": oracle("ja4_ssh2-malformed.pcap")[flow]["Algorithms"]}], None)
    reader = SshReader(False)
    first = reader.feed(server)
    assert [r["HASSH"] for r in first] == ["f430cd6761697a6a658ee1d45ed22e49"]
    assert reader.done and reader.violation is None
    assert reader.feed(server) == [] and reader.finish() == []


# The server side of the malformed capture, to break on purpose: the banner
# "SSH-1.99-OpenSSH_3.9p1\n" (LF only), then the KEXINIT packet.
SERVER = directions("ja4_ssh2-malformed.pcap")[1][2]
BANNER = SERVER.index(b"\n") + 1
KEX = BANNER + 5  # the KEXINIT payload (message number first) in SERVER
IDENT = "SSH-1.99-OpenSSH_3.9p1"


def _noted(notes: str, ident: str = IDENT) -> list[dict[str, Any]]:
    return [{"Ident": ident, "Notes": notes, "IsClient": False}]


def _with(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def test_stream_ends_before_the_kexinit() -> None:
    for cut in (BANNER, BANNER + 3, KEX + 100, BANNER + 640 - 1):  # 640: the packet
        assert read(SERVER[:cut], False) == (_noted("no_kexinit"), None)
    # Before the end of the banner line there is no banner, and so no record.
    assert read(SERVER[: BANNER - 1], False) == ([], None)


def test_bad_packets() -> None:
    size = int.from_bytes(SERVER[BANNER : BANNER + 4], "big")
    assert size == 636
    for new in ((MAX_PACKET + 1).to_bytes(4, "big"), (4).to_bytes(4, "big"),
                b"\xff\xff\xff\xff", (5).to_bytes(4, "big") + bytes([4])):  # no payload
        assert read(_with(SERVER, BANNER, new), False) == (_noted("bad_packet"), "bad_packet")
    # The largest packet allowed is waited for, not refused.
    assert read(_with(SERVER, BANNER, MAX_PACKET.to_bytes(4, "big")), False) == (
        _noted("no_kexinit"), None)


def test_bad_kexinits() -> None:
    for at, new in ((KEX + 17, b"\x00\x01\x00\x00"),  # kex_algorithms past the payload
                    (KEX + 21, b" "),  # a space in a name
                    (KEX + 21, b"\x80"),  # not ASCII
                    (KEX + 21, b"\x00")):
        assert read(_with(SERVER, at, new), False) == (_noted("bad_kexinit"), "bad_kexinit")
    # A KEXINIT cut before its reserved field: its packet says it ends there.
    size = int.from_bytes(SERVER[BANNER : BANNER + 4], "big")
    padding = SERVER[BANNER + 4]
    cut = _with(SERVER, BANNER + 4, bytes([padding + 3]))
    assert read(cut, False) == (_noted("bad_kexinit"), "bad_kexinit")
    assert size - padding - 1 > 100


def test_other_packets_before_the_kexinit() -> None:
    """SSH_MSG_IGNORE packets first are passed over, up to the bound."""
    ignore = (12).to_bytes(4, "big") + bytes([6, 2]) + b"\x00" * 4 + b"\x00" * 6
    whole, _ = read(SERVER, False)
    assert "HASSH" in whole[0]
    before = SERVER[:BANNER] + ignore * 7 + SERVER[BANNER:]
    assert read(before, False) == (whole, None)
    too_many = SERVER[:BANNER] + ignore * 8 + SERVER[BANNER:]
    assert read(too_many, False) == (_noted("too_long"), "too_long")


def test_banners() -> None:
    whole, _ = read(SERVER, False)
    as_ssh2 = SERVER.replace(b"SSH-1.99-", b"SSH-2.0-", 1)
    assert read(as_ssh2, False)[0] == [dict(whole[0], Ident="SSH-2.0-OpenSSH_3.9p1")]
    crlf = SERVER[: BANNER - 1] + b"\r" + SERVER[BANNER - 1 :]
    assert read(crlf, False)[0] == whole
    ssh1 = SERVER.replace(b"SSH-1.99-", b"SSH-1.5-", 1)
    assert read(ssh1, False) == (_noted("ssh1", "SSH-1.5-OpenSSH_3.9p1"), None)
    ssh3 = SERVER.replace(b"SSH-1.99-", b"SSH-3.0-", 1)
    assert read(ssh3, False) == (_noted("bad_banner", "SSH-3.0-OpenSSH_3.9p1"), "bad_banner")
    nul = _with(SERVER, 10, b"\x00")
    assert read(nul, False) == ([], "bad_banner")


def test_lines_before_the_banner() -> None:
    """A server may send lines before its banner; a client may not; bounded."""
    whole, _ = read(SERVER, False)
    line = b"220 Welcome\r\n"
    assert read(line * (MAX_LINES - 1) + SERVER, False) == (whole, None)
    assert read(line * MAX_LINES + SERVER, False) == ([], "bad_banner")
    assert read(line + SERVER, True) == ([], "bad_banner")
    long = b"x" * (MAX_PREBANNER - BANNER) + b"\n"
    assert read(long + SERVER, False) == ([], "bad_banner")
    assert read(long[1:] + SERVER, False) == (whole, None)
    client = directions("ja4_ssh2-malformed.pcap")[0][2]
    assert read(line + client, True) == ([], "bad_banner")


def test_http_to_an_ssh_server() -> None:
    """zeek's get-to-ssh-server: the client sends HTTP (refused at once), the server its
    banner and nothing else."""
    (_, _, client), (_, _, server) = directions("zeek_http_get-to-ssh-server-nano.pcap")
    reader = SshReader(True)
    assert reader.feed(client[:1]) == [] and reader.violation == "bad_banner"
    assert reader.done and reader.feed(client[1:]) == []
    assert read(server, False) == (_noted("no_kexinit", "SSH-2.0-OpenSSH_8.7"), None)


def test_bounded_on_a_large_other_stream() -> None:
    """A server direction that is not SSH (an HTTP download) is given up within the
    banner budget, whatever follows."""
    biggest = max((d for name in OTHER for d in directions(name) if not d[1]),
                  key=lambda d: len(d[2]))
    data = biggest[2]
    assert len(data) > 100_000
    reader, fed = SshReader(False), 0
    while not reader.done:
        assert reader.feed(data[fed : fed + 1000]) == []
        fed += 1000
    assert reader.violation == "bad_banner" and fed <= MAX_PREBANNER + 1000


SSH_DIRECTIONS = [d for name in SSH_CAPTURES for d in directions(name) if d[0] in oracle(name)]


def test_split_anywhere_gives_the_same_records() -> None:
    """Fed one byte at a time, or in odd pieces, a direction gives what it gives fed whole
    (the reassembled capture's KEXINIT is split over segments too)."""
    assert len(SSH_DIRECTIONS) == 15
    others = [d for name in SSH_CAPTURES + ["zeek_http_bro.org.pcap", "ja4_tls12.pcap"]
              for d in directions(name) if d not in SSH_DIRECTIONS]
    for _, is_client, data in SSH_DIRECTIONS + others:
        whole = read(data, is_client)
        for step in (1, 2, 7, 1000):
            assert read(data, is_client, step) == whole
    broken = [SERVER[: KEX + 100], _with(SERVER, BANNER, b"\xff"), _with(SERVER, KEX + 21, b" "),
              b"220 Welcome\r\n" * MAX_LINES + SERVER]
    for data in broken:
        whole = read(data, False)
        assert whole[1] or whole[0][0]["Notes"]
        assert read(data, False, 1) == whole


def _kexinit(data: bytes) -> bytes:
    """The first packet's payload after the banner line of a real direction."""
    start = data.index(b"\n") + 1
    size, padding = int.from_bytes(data[start : start + 4], "big"), data[start + 4]
    return data[start + 5 : start + 4 + size - padding]


def test_hassh_of_kexinit_payloads() -> None:
    """hassh() on the KEXINITs of the corpus gives tshark's values, and every cut of a
    KEXINIT, or another message, raises DecodeError("ssh", "bad_kexinit")."""
    n = 0
    for name in SSH_CAPTURES:
        for flow, is_client, data in directions(name):
            want = oracle(name).get(flow, {})
            if "HASSH" not in want:
                continue
            payload = _kexinit(data)
            assert hassh(payload, is_client) == (want["Algorithms"], want["HASSH"])
            assert len(parse_kexinit(payload)) == 10
            n += 1
            for cut in range(0, len(payload), 7 if len(payload) > 700 else 1):
                with pytest.raises(DecodeError) as e:
                    hassh(payload[:cut], is_client)
                assert describe(e.value.index) == "ssh/bad_kexinit"
            with pytest.raises(DecodeError):
                hassh(b"\x15" + payload[1:], is_client)
    assert n == 14


KEXINITS = [(_kexinit(data), is_client) for name in SSH_CAPTURES
            for flow, is_client, data in directions(name) if "HASSH" in oracle(name).get(flow, {})]


def test_each_side_hashes_its_own_lists() -> None:
    """Real KEXINITs offer the same lists both ways; mix the client's (c2s) with the
    server's (s2c) lists of the malformed capture so that they differ: the client's HASSH
    takes the c2s ones, the server's HASSH-server the s2c ones."""
    (cflow, _, client), (sflow, _, server) = directions("ja4_ssh2-malformed.pcap")
    cpay, spay = _kexinit(client), _kexinit(server)
    c, s = parse_kexinit(cpay), parse_kexinit(spay)
    assert c[3] != s[3] and c[5] != s[5] and c[7] != s[7]
    mixed = c[:3] + [s[3], c[4], s[5], c[6], s[7]] + c[8:]
    payload = cpay[:17] + b"".join(len(x).to_bytes(4, "big") + x.encode() for x in mixed) + (
        cpay[-5:])
    want = oracle("ja4_ssh2-malformed.pcap")
    assert hassh(payload, True)[0] == want[cflow]["Algorithms"]
    server_lists = want[sflow]["Algorithms"].split(";")[1:]
    assert hassh(payload, False)[0] == ";".join([c[0], *server_lists])


def _check(reader: SshReader, records: list[dict[str, Any]]) -> None:
    """What any input must leave: one record at most, each well formed, memory bounded."""
    assert len(records) <= 1
    for rec in records:
        assert reader.done and rec["IsClient"] is reader.is_client
        assert isinstance(rec["Ident"], str) and rec["Ident"].startswith("SSH-")
        if "HASSH" in rec:
            assert set(rec) == {"Ident", "Algorithms", "HASSH", "IsClient"}
            assert hashlib.md5(rec["Algorithms"].encode()).hexdigest() == rec["HASSH"]
        else:
            assert set(rec) == {"Ident", "Notes", "IsClient"} and rec["Notes"]
    assert len(reader._buf) <= max(MAX_PREBANNER, 4 + MAX_PACKET)
    if reader.violation is not None:
        assert reader.done


def _fuzz(data: bytes, is_client: bool, step: int) -> None:
    start = time.perf_counter()
    reader = SshReader(is_client)
    records: list[dict[str, Any]] = []
    with contextlib.suppress(DecodeError):
        for i in range(0, len(data), step):
            records += reader.feed(data[i : i + step])
            _check(reader, records)
        records += reader.finish()
        _check(reader, records)
        assert reader.done
    assert time.perf_counter() - start < 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_streams_raise_only_decode_errors(data: st.DataObject) -> None:
    _, is_client, stream = data.draw(st.sampled_from(SSH_DIRECTIONS))
    base = bytearray(stream[:3000])
    for _ in range(data.draw(st.integers(1, 10))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        base = base[: data.draw(st.integers(0, len(base)))]
    _fuzz(bytes(base), data.draw(st.booleans()), data.draw(st.integers(1, 600)))
    kexinit, side = data.draw(st.sampled_from(KEXINITS))
    payload = bytearray(kexinit)
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        text, digest = hassh(bytes(payload), side)
        assert hashlib.md5(text.encode()).hexdigest() == digest


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from([b"", b"SSH-2.0-x\r\n", b"220 hi\r\nSSH-1.99-y\n"]),
       body=st.binary(max_size=4000), is_client=st.booleans(), step=st.integers(1, 700))
def test_random_bytes_raise_only_decode_errors(prefix: bytes, body: bytes, is_client: bool,
                                               step: int) -> None:
    _fuzz(prefix + body, is_client, step)
    with contextlib.suppress(DecodeError):
        hassh(b"\x14" + body, is_client)
