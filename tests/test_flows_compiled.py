"""The compiled flow stage (flows/_table.pyx) against the numpy one it replaced
(tests/oracle_flows.py): the same FlowBatch for every batch, and the same connections,
evictions, handshake RTTs and open-flow counts from the table, on every corpus capture
(batch sizes and table limits that make flows span batches, time out and get evicted)
and on made-up packets (hypothesis: addresses and ports from small pools so flows
repeat, any TCP flags, timestamps that go back and jump, v4 and v6)."""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle_flows as old
from corpus import PCAPS, corpus_files
from netcap.decode.batch import decode_batch
from netcap.decode.linktypes import LT
from netcap.flows.extract import FlowBatch, summarize
from netcap.flows.table import ConnectionTable, Ended
from netcap.records.table import Ragged
from netcap.sources.batch import PacketBatch
from netcap.sources.capture import CaptureError, open_capture
from oracle_flows import pack_apps

FIELDS = list(FlowBatch.__dataclass_fields__)


def same_batch(a: FlowBatch | None, b: FlowBatch | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name


def same_ended(a: Ended | None, b: old.Ended | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    assert len(a) == len(b) and a.evicted == b.evicted
    new, was = a.records, b.records
    assert new.to_dicts() == was.to_dicts() and set(new.cols) == set(was.cols)
    for name, col in was.cols.items():  # the columns themselves, as the encoders read them
        if isinstance(col, Ragged):
            assert col.equals(new.cols[name]), name
        else:
            assert np.array_equal(col, new.cols[name]) and col.dtype == new.cols[name].dtype
    assert a.label_counts() == Counter(zip(*b.labels(), strict=True))
    assert np.array_equal(a.duration_ns, b.duration_ns)
    assert np.array_equal(a.total_bytes, b.total_bytes)


class Both:
    """The compiled table and the old one, fed the same batches, compared at every step."""

    def __init__(self, **limits: int) -> None:
        self.new = ConnectionTable(**limits)
        self.old = old.ConnectionTable(**limits)
        self.ended = 0
        # flows cut where this table's rule may end them
        self.timeouts = {k: v for k, v in limits.items() if k != "max_flows"}

    def check(self, a: Ended | None, b: old.Ended | None) -> None:
        same_ended(a, b)
        self.ended += len(a) if a is not None else 0
        assert len(self.new) == len(self.old) and self.new.clock == self.old.clock
        assert self.new.rtts == self.old.rtts

    def batch(self, d: Any, apps: bytes = b"") -> None:
        fb, ob = summarize(d, **self.timeouts), old.summarize(d, **self.timeouts)
        same_batch(fb, ob)
        if fb is not None and ob is not None:
            self.check(self.new.update(fb, apps), self.old.update(ob, apps))

    def advance(self, now: int) -> None:
        self.check(self.new.advance(now), self.old.advance(now))

    def flush(self, apps: bytes = b"") -> None:
        self.new.recognise(apps)
        self.old.recognise(apps)
        self.check(self.new.flush(), self.old.flush())


@pytest.mark.corpus
@pytest.mark.parametrize("batch,limits", [
    (64, {}),
    (7, {"max_flows": 5, "linger_ns": 10**8, "udp_timeout_ns": 10**9, "tcp_timeout_ns": 3 * 10**9}),
])
def test_compiled_flows_equal_the_old_on_the_corpus(batch: int, limits: dict[str, int]) -> None:
    total = 0
    for name in corpus_files():
        both = Both(**limits)
        try:
            for b in open_capture(str(PCAPS / name), batch_packets=batch):
                both.batch(decode_batch(b))
        except CaptureError:  # unusable or cut short: what was read counts
            pass
        both.flush()
        total += both.ended
    assert total > 300  # the corpus has 359 connections (more with the small limits)


# -- made-up packets ----------------------------------------------------------------------

ADDRS4 = [bytes([10, 0, 0, i]) for i in (1, 2, 3)]
ADDRS6 = [bytes(15) + bytes([i]) for i in (1, 2)]
PORTS = [53, 80, 443, 40000]


def _packet(v6: bool, tcp: bool, src: int, dst: int, sport: int, dport: int, flags: int,
            payload: int) -> bytes:
    body = (struct.pack("!HHIIBBHHH", sport, dport, 1, 2, 0x50, flags, 1000 + flags, 0, 0)
            if tcp else struct.pack("!HHHH", sport, dport, 8 + payload, 0)) + b"x" * payload
    proto = 6 if tcp else 17
    if v6:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(body), proto, 64, ADDRS6[src % 2],
                         ADDRS6[dst % 2])
        eth_type = 0x86DD
    else:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, proto, 0,
                         ADDRS4[src % 3], ADDRS4[dst % 3])
        eth_type = 0x0800
    return bytes([2, 0, 0, 0, 0, src]) + bytes([2, 0, 0, 0, 1, dst]) + struct.pack(
        "!H", eth_type) + ip + body


packets = st.tuples(st.booleans(), st.booleans(), st.integers(0, 5), st.integers(0, 5),
                    st.sampled_from(PORTS), st.sampled_from(PORTS), st.integers(0, 255),
                    st.integers(0, 40),
                    st.integers(-3 * 10**9, 3 * 10**9) | st.sampled_from([2**62, -2**62]))
# the last: a time step, back and forth, and far jumps (times that wrap in differences)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(packets, min_size=1, max_size=40), min_size=1, max_size=6),
       st.integers(1, 6), st.integers(0, 3 * 10**9), st.data())
def test_compiled_flows_equal_the_old_on_made_up_batches(
        batches: list[list[Any]], max_flows: int, linger: int, data: st.DataObject) -> None:
    both = Both(max_flows=max_flows, linger_ns=linger, udp_timeout_ns=2 * 10**9,
                tcp_timeout_ns=4 * 10**9)
    now, first = data.draw(st.sampled_from([10**12, 2**63 - 10**10, -2**63 + 10**10])), 0
    for rows in batches:
        frames, ts = [], []
        for v6, tcp, src, dst, sport, dport, flags, payload, step in rows:
            now = min(max(-2**63, now + step), 2**63 - 1)
            frames.append(_packet(v6, tcp, src, dst, sport, dport, flags, payload))
            ts.append(now)
        both.batch(decode_batch(PacketBatch.from_packets(frames, ts, LT.ETHERNET, first=first)),
                   apps=pack_apps(data.draw(st.lists(st.tuples(st.tuples(
                       st.sampled_from(ADDRS4 + ADDRS6), st.sampled_from(PORTS),
                       st.sampled_from(ADDRS4 + ADDRS6), st.sampled_from(PORTS)),
                       st.sampled_from(["HTTP", "TLS", "SSH", "DNS"])), max_size=3))))
        first += len(frames)
        if data.draw(st.booleans()):
            both.advance(min(max(-2**63, now + data.draw(st.integers(-10**9, 5 * 10**9))),
                             2**63 - 1))
    both.flush()


def _records(table: ConnectionTable, batches: list[Any], **timeouts: int) -> list[str]:
    """The Connection records of the batches through the table, sorted (when a
    connection comes out depends on the batches; what it holds must not)."""
    out: list[str] = []
    for b in batches:
        fb = summarize(decode_batch(b), **timeouts)
        ended = table.update(fb) if fb is not None else None
        out += map(str, ended.records.to_dicts()) if ended is not None else []
    ended = table.flush()
    out += map(str, ended.records.to_dicts()) if ended is not None else []
    return sorted(out)


@settings(max_examples=100, deadline=None)
@given(st.lists(packets, min_size=1, max_size=60), st.lists(st.integers(1, 60), min_size=1),
       st.integers(0, 3 * 10**9))
def test_connections_do_not_depend_on_batches(rows: list[Any], cuts: list[int],
                                             linger: int) -> None:
    """Packets whose times do not go back make the same connections whether they come in
    one batch or in batches cut anywhere: the timeouts and the linger apply per packet
    (a flow's packet after a gap the rule ends it at starts a new connection)."""
    timeouts = {"linger_ns": linger, "udp_timeout_ns": 2 * 10**9, "tcp_timeout_ns": 4 * 10**9}
    frames, ts, now = [], [], 10**12
    for v6, tcp, src, dst, sport, dport, flags, payload, step in rows:
        now += abs(step) % (5 * 10**9)
        frames.append(_packet(v6, tcp, src, dst, sport, dport, flags, payload))
        ts.append(now)
    whole = [PacketBatch.from_packets(frames, ts, LT.ETHERNET)]
    cut, at = [], 0
    for size in cuts * len(frames):
        if at >= len(frames):
            break
        cut.append(PacketBatch.from_packets(frames[at : at + size], ts[at : at + size],
                                            LT.ETHERNET, first=at))
        at += size
    assert _records(ConnectionTable(**timeouts), whole, **timeouts) == _records(
        ConnectionTable(**timeouts), cut, **timeouts)
