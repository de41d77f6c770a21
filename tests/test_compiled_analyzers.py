"""The compiled DNS, SSH, DHCPv4 and NTP readers (analyzers/_dns, _ssh, _datagrams) against
the Python ones they replaced (tests/oracle_*.py): the same record, or the same
DecodeError reason, on the corpus' real messages and on hypothesis' mutations of them;
the per-batch calls of the datagram stage the same as parsing each payload alone; the
SSH reader the same state after every feed, whatever the chunking."""

from __future__ import annotations

import functools
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle_dhcp
import oracle_dns
import oracle_ntp
import oracle_ssh
from corpus import PCAPS
from helpers import skip_module_without_corpus
from netcap.analyzers._datagrams import dhcp_batch, ntp_columns
from netcap.analyzers._dns import check_batch, parse_batch
from netcap.analyzers.dhcp import parse_dhcp
from netcap.analyzers.dns import check_dns, parse_dns
from netcap.analyzers.ntp import parse_ntp
from netcap.analyzers.ssh import SshReader, hassh, parse_kexinit
from netcap.decode.errors import DecodeError, describe
from tcp_streams import conversations

pytestmark = pytest.mark.corpus  # every test here reads the public corpus
skip_module_without_corpus()  # read at import below

from test_analyzers import DHCP, DNS, NTP  # noqa: E402  (after the corpus check)
from test_ssh import KEXINITS, SSH_DIRECTIONS  # noqa: E402


@functools.cache
def dns_over_tcp() -> list[bytes]:
    """The DNS messages of the corpus' DNS-over-TCP capture (2-byte length framing)."""
    out = []
    for c in conversations(str(PCAPS / "tcpdump_dns_tcp.pcap")):
        for side in (True, False):
            data = c.data(side)
            while len(data) >= 2 and len(data) >= 2 + int.from_bytes(data[:2], "big"):
                size = int.from_bytes(data[:2], "big")
                out.append(data[2 : 2 + size])
                data = data[2 + size :]
    return out


def outcome(parse: Any, msg: bytes) -> object:
    """What a parser makes of msg: its result, or the reason it failed."""
    try:
        return parse(msg)
    except DecodeError as e:
        return describe(e.index)


PAIRS = [(parse_dns, oracle_dns.parse_dns), (check_dns, oracle_dns.check_dns),
         (parse_dhcp, oracle_dhcp.parse_dhcp), (parse_ntp, oracle_ntp.parse_ntp)]
CORPUS = {parse_dns: DNS, check_dns: DNS, parse_dhcp: DHCP, parse_ntp: NTP}


def test_real_messages() -> None:
    tcp = dns_over_tcp()
    assert len(tcp) >= 2
    for new, old in PAIRS:
        messages = CORPUS[new] + (tcp if new in (parse_dns, check_dns) else [])
        assert messages
        for msg in messages:
            got = outcome(new, msg)
            assert not isinstance(got, str)  # real messages parse
            assert got == outcome(old, msg)


def mutate(data: st.DataObject, base: bytes) -> bytes:
    """Up to 8 bytes replaced, sometimes cut, sometimes random bytes appended."""
    msg = bytearray(base)
    for _ in range(data.draw(st.integers(0, 8))):
        if msg:
            msg[data.draw(st.integers(0, len(msg) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        msg = msg[: data.draw(st.integers(0, len(msg)))]
    if data.draw(st.integers(0, 3)) == 0:
        msg += data.draw(st.binary(max_size=64))
    return bytes(msg)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_messages(data: st.DataObject) -> None:
    new, old = data.draw(st.sampled_from(PAIRS))
    msg = mutate(data, data.draw(st.sampled_from(CORPUS[new])))
    assert outcome(new, msg) == outcome(old, msg)


@settings(max_examples=400, deadline=None)
@given(head=st.binary(min_size=12, max_size=12), body=st.binary(max_size=300))
def test_random_dns_bodies(head: bytes, body: bytes) -> None:
    """Random names, pointers and records behind a header (small counts, so that the
    sections are read rather than failing at once)."""
    msg = head[:4] + bytes([0, head[5] % 4, 0, head[7] % 4, 0, head[9] % 3, 0, head[11] % 3])
    msg += body
    assert outcome(parse_dns, msg) == outcome(oracle_dns.parse_dns, msg)
    assert outcome(check_dns, msg) == outcome(oracle_dns.check_dns, msg)


@st.composite
def compressed(draw: st.DrawFn) -> bytes:
    """Questions and CNAME (or unknown) records whose names are labels, then a pointer
    (mostly to where an earlier name or label starts, so chains of pointers; sometimes
    anywhere before: into a label, at itself) or the root: what exercises name
    decompression and its memo, which corpus messages barely do."""
    body = bytearray(12)
    starts: list[int] = []  # where names and labels start

    def name() -> None:
        first = len(body)
        for _ in range(draw(st.integers(0, 3))):  # labels, their bytes anything
            starts.append(len(body))
            size = draw(st.sampled_from([1, 2, 3, 63]))
            body.extend(bytes([size]) + draw(st.binary(min_size=size, max_size=size)))
        starts.append(len(body))
        before = [p for p in starts if p < first]
        if draw(st.integers(0, 5)) == 0 or not before:
            body.append(0)
            return
        target = (draw(st.sampled_from(before)) if draw(st.integers(0, 7))
                  else draw(st.integers(0, len(body) - 1)))
        body.extend(bytes([0xC0 | target >> 8, target & 0xFF]))

    qd, an = draw(st.integers(0, 4)), draw(st.integers(0, 12))
    for _ in range(qd):
        name()
        body += b"\x00\x01\x00\x01"
    for _ in range(an):
        name()
        cname = draw(st.booleans())
        body += struct.pack(">HHI", 5 if cname else 99, 1, 0)
        at = len(body)
        body += b"\x00\x00"
        if cname:
            name()
        body[at : at + 2] = struct.pack(">H", len(body) - at - 2)
    body[:12] = struct.pack(">6H", 7, 0x8180, qd, an, 0, 0)
    return bytes(body)


@settings(max_examples=1500, deadline=None)
@given(msg=compressed())
def test_compressed_names(msg: bytes) -> None:
    assert outcome(parse_dns, msg) == outcome(oracle_dns.parse_dns, msg)
    assert outcome(check_dns, msg) == outcome(oracle_dns.check_dns, msg)


def test_pointer_chains() -> None:
    """Names that follow a long chain of pointers (each to the one before), many times:
    the same records as the Python reader (the memo also remembers pointers)."""
    chain_at = 12 + 5 + 11  # after a root question and the header of a record holding it
    chain = b"".join(struct.pack(">H", 0xC000 | (12 if i == 0 else chain_at + 2 * (i - 1)))
                     for i in range(300))
    last = chain_at + 2 * 299
    names = [struct.pack(">H", 0xC000 | last), b"\x01x" + struct.pack(">H", 0xC000 | last),
             struct.pack(">H", 0xC000 | (last - 40))]
    answers = b"".join(n + struct.pack(">HHIH", 5, 1, 0, 2) + struct.pack(">H", 0xC000 | last)
                       for n in names * 20)
    msg = (struct.pack(">6H", 1, 0x8180, 1, 1 + 60, 0, 0) + b"\x00" + struct.pack(">HH", 1, 1)
           + b"\x00" + struct.pack(">HHIH", 99, 1, 0, len(chain)) + chain + answers)
    rec = parse_dns(msg)
    assert rec == oracle_dns.parse_dns(msg)
    assert [a["Name"] for a in rec["Answers"][1:4]] == [b"", b"x", b""]
    assert check_dns(msg) == oracle_dns.check_dns(msg) == [1]


def batch_of(messages: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The messages at scattered offsets of one buffer, as a decoded batch has them."""
    gap = b"\xee" * 3  # bytes between payloads are never read
    data = gap + gap.join(messages) + gap
    sizes = [len(m) for m in messages]
    offsets = np.cumsum([len(gap)] + [s + len(gap) for s in sizes[:-1]]).astype(np.int64)
    return (np.frombuffer(data, np.uint8), offsets[: len(messages)],
            np.asarray(sizes, np.int64))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_batches_equal_each_message(data: st.DataObject) -> None:
    """parse_batch, check_batch and dhcp_batch give what parsing each payload alone
    gives: the records of those that parse, the reasons of those that fail."""
    kind = data.draw(st.sampled_from(["dns", "dhcp"]))
    corpus, old = (DNS, oracle_dns.parse_dns) if kind == "dns" else (DHCP,
                                                                     oracle_dhcp.parse_dhcp)
    messages = [mutate(data, data.draw(st.sampled_from(corpus)))
                for _ in range(data.draw(st.integers(1, 12)))]
    want = [outcome(old, m) for m in messages]
    recs, ok, bad, reasons = (parse_batch if kind == "dns" else dhcp_batch)(
        *batch_of(messages))
    assert ok.tolist() == [i for i, w in enumerate(want) if not isinstance(w, str)]
    assert recs == [w for w in want if not isinstance(w, str)]
    assert bad.tolist() == [i for i, w in enumerate(want) if isinstance(w, str)]
    assert [describe(int(r)) for r in reasons] == [w for w in want if isinstance(w, str)]
    if kind != "dns":
        return
    ok, bad, reasons, qtypes, parents, head = check_batch(*batch_of(messages))
    passed = [(i, w) for i, w in enumerate(want) if not isinstance(w, str)]
    assert ok.tolist() == [i for i, _ in passed]
    assert [describe(int(r)) for r in reasons] == [w for w in want if isinstance(w, str)]
    assert qtypes.tolist() == [q["Type"] for _, w in passed for q in w["Questions"]]
    assert parents.tolist() == [k for k, (_, w) in enumerate(passed) for _ in w["Questions"]]
    assert head.tolist() == [[w["ID"] for _, w in passed],
                             [(messages[i][2] << 8) | messages[i][3] for i, _ in passed],
                             [w["QDCount"] for _, w in passed],
                             [w["ANCount"] for _, w in passed]]


def test_ntp_columns_equal_each_message() -> None:
    longer = [m + bytes(range(k)) for k, m in enumerate(NTP)]  # extension bytes too
    cols = ntp_columns(*batch_of(longer))
    rows = [oracle_ntp.parse_ntp(m) for m in longer]
    for name, column in cols.items():
        values = column.tolist() if name == "ExtensionBytes" else np.asarray(column).tolist()
        assert values == [r[name] for r in rows], name
    assert {k: np.asarray(v).dtype for k, v in cols.items() if k != "ExtensionBytes"} == {
        k: np.dtype(np.uint64 if k.endswith("Timestamp") else np.int64) for k in rows[0]
        if k != "ExtensionBytes"}


def ssh_state(reader: Any) -> tuple[object, ...]:
    return (reader.done, reader.violation, reader.ident, bytes(reader._buf))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_ssh_reader(data: st.DataObject) -> None:
    """The same records and the same state after every feed, on a real direction
    mutated and fed in random chunks."""
    _, is_client, stream = data.draw(st.sampled_from(SSH_DIRECTIONS))
    stream = mutate(data, stream[:4000]) if data.draw(st.booleans()) else stream[:4000]
    side = data.draw(st.booleans()) if data.draw(st.integers(0, 4)) == 0 else is_client
    new, old = SshReader(side), oracle_ssh.SshReader(side)
    step = data.draw(st.integers(1, 1500))
    for i in range(0, len(stream), step):
        chunk = stream[i : i + step]
        assert new.feed(chunk) == old.feed(chunk)
        assert ssh_state(new) == ssh_state(old)
    assert new.finish() == old.finish()
    assert ssh_state(new) == ssh_state(old)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_kexinits(data: st.DataObject) -> None:
    kexinit, side = data.draw(st.sampled_from(KEXINITS))
    payload = mutate(data, kexinit)
    assert outcome(parse_kexinit, payload) == outcome(oracle_ssh.parse_kexinit, payload)
    assert outcome(lambda p: hassh(p, side), payload) == outcome(
        lambda p: oracle_ssh.hassh(p, side), payload)
