"""Fuzz target: the compiled flow stage (netcap.flows._table: `summarize` and the
connection table) driven by a structured input: packets of made-up flows (addresses of
odd lengths, any ports and flags, packet times that go back, jump and wrap) summarized
in batches into a table with small limits (the summaries cut with the table's limits, so
its per-packet rule decides the cuts), with clock advances and protocols recognised,
then flushed. The table parses no bytes (it reads decoded columns), so this
drives its state machine. Any exception, an open-flow count over the limit, ended
connections out of start order, or packets lost between input and the connections that
end, or any sanitizer report, is a bug.

Input: one byte of limits, then records of eight bytes: an operation (a packet, the end
of a batch, a clock advance, a protocol recognised) and its values."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np

from netcap.flows._table import Table, summarize
from netcap.flows.extract import FlowBatch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from oracle_flows import Key, pack_apps  # noqa: E402  (tests/: the packing test_flows uses)

_ADDRS = [bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes(15) + b"\1", bytes(15) + b"\2",
          b"", b"\1\2\3\4\5\6\7"]  # the last two: what no decoder gives, read as zeros
_PORTS = [53, 80, 443, 0, 65535, 40000, 123, 22]
_STEPS = [0, 1, -1, 10**9, -10**9, 2**62, -2**62, 60 * 10**9]
_APPS = ["HTTP", "TLS", "SSH", "DNS"]
_LIMITS = [0, 1, 10**9, 2**62]


_LO, _HI = -2**63, 2**63 - 1
_BITS = np.arange(9, dtype=np.int64)[:, None]
_TAIL = np.zeros(16, np.uint8)
_FRAME = bytes(range(12))  # each packet an Ethernet frame of its two MACs


class _Part:
    """One transport's packets of a batch, column by column."""

    __slots__ = ("pkt", "src", "dst", "sport", "dport", "payload", "flags", "window")

    def __init__(self) -> None:
        self.pkt: list[int] = []
        self.src: list[bytes] = []
        self.dst: list[bytes] = []
        self.sport: list[int] = []
        self.dport: list[int] = []
        self.payload: list[int] = []
        self.flags: list[int] = []
        self.window: list[int] = []

    def columns(self, proto: int) -> tuple[object, ...]:
        """`summarize`'s part: (proto, pkt, src data, src lens, dst data, dst lens, sport,
        dport, payload, the 9 TCP flag columns or None, window or None)."""
        tcp = proto == 6
        return (proto, np.array(self.pkt, np.int64),
                np.frombuffer(b"".join(self.src) + b"\0", np.uint8),
                np.array(list(map(len, self.src))),
                np.frombuffer(b"".join(self.dst) + b"\0", np.uint8),
                np.array(list(map(len, self.dst))),
                np.array(self.sport, np.int64), np.array(self.dport, np.int64),
                np.array(self.payload, np.int64),
                list(((np.array(self.flags, np.int64) >> _BITS) & 1).astype(np.uint8))
                if tcp else None,
                np.array(self.window, np.int64) if tcp else None)


class _Batch:
    """The packets of one batch as they come, column by column."""

    __slots__ = ("ts", "wire", "link", "apps", "tcp", "udp")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.wire: list[int] = []
        self.link: list[int] = []
        self.apps: tuple[list[int], list[int], list[int]] = ([], [], [])
        self.tcp = _Part()
        self.udp = _Part()

    def add(self, op: int, a: int, b: int, c: int, d: int, e: int, f: int, g: int,
            now: int) -> None:
        """A packet record (see TestOneInput)."""
        k = len(self.ts)
        self.ts.append(now)
        self.wire.append(60 + g)
        bits = f >> 3
        self.link.append(1 if bits & 1 else 101)
        for j in range(3):
            if bits & (2 << j):
                self.apps[j].append(k)
        part = self.tcp if op & 4 else self.udp
        part.pkt.append(k)
        part.src.append(_ADDRS[a % 6])
        part.dst.append(_ADDRS[b % 6])
        part.sport.append(_PORTS[c & 7] if c & 8 else c << 8)
        part.dport.append(_PORTS[d & 7])
        part.payload.append(bits)
        part.flags.append(e | (op & 0xF0) << 4)
        part.window.append(60 + g)

    def summarized(self, table: Table) -> FlowBatch | None:
        """`summarize`'s FlowBatch of these packets (flows cut where the table's rule may
        end them), None if there are none."""
        n = len(self.ts)
        if not n:
            return None
        parts = [p.columns(proto) for proto, p in ((6, self.tcp), (17, self.udp)) if p.pkt]
        return FlowBatch(*summarize(
            parts, np.array(self.ts, np.int64), np.array(self.wire, np.int64),
            np.array(self.link, np.int32),
            np.concatenate([np.frombuffer(_FRAME * n, np.uint8), _TAIL]),
            np.arange(n, dtype=np.int64) * 12, [np.array(x, np.int64) for x in self.apps],
            table.tcp_timeout_ns, table.udp_timeout_ns, table.linger_ns))


def _take(out: tuple[tuple[np.ndarray, ...], int] | None) -> int:
    """The packets in the connections that ended (their start times must not go back)."""
    if out is None:
        return 0
    cols, _ = out
    first = cols[1]
    if (first[1:] < first[:-1]).any():
        raise RuntimeError("ended connections out of start order")
    return int(cols[4].sum())


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    limits = data[0]
    max_flows = 1 + (limits & 7)
    table = Table(max_flows, _LIMITS[(limits >> 3) & 3], _LIMITS[(limits >> 5) & 3],
                  _LIMITS[limits >> 7])
    now = [0, 2**63 - 2**40, -2**63 + 2**40, 1][limits & 3]
    batch = _Batch()
    apps: list[tuple[Key, str]] = []
    fed = ended = 0
    # the records unpacked from a view (no position ints: each one above 256 is a malloc)
    records = memoryview(data)[1 : 1 + (len(data) - 1) // 8 * 8]
    for op, a, b, c, d, e, f, g in struct.iter_unpack("8B", records):
        if op & 3 < 2:  # a packet
            now += _STEPS[f & 7] + g
            now = _HI if now > _HI else _LO if now < _LO else now
            batch.add(op, a, b, c, d, e, f, g, now)
        elif op & 3 == 2:  # the end of a batch
            fb = batch.summarized(table)
            if fb is not None:
                fed += len(batch.ts)
                batch = _Batch()
                ended += _take(table._update(fb, pack_apps(apps)))
                apps = []
                if len(table) > max_flows:
                    raise RuntimeError("more open flows than the limit")
        elif op & 8:  # a clock advance
            ended += _take(table._advance(min(max(now + _STEPS[a & 7] - b, _LO), _HI)))
        else:  # a protocol recognised on a TCP connection
            apps.append(((_ADDRS[a % 4], _PORTS[b & 7], _ADDRS[c % 4], _PORTS[d & 7]),
                         _APPS[e & 3]))
    fb = batch.summarized(table)
    fed += len(batch.ts)
    if fb is not None:
        ended += _take(table._update(fb, pack_apps(apps)))
    table.recognise(pack_apps(apps))
    ended += _take(table._flush())
    if ended != fed or len(table):
        raise RuntimeError(f"{fed} packets in, {ended} in the connections that ended")


def seeds() -> list[bytes]:
    """A handshake, data and close each way between two flows, batched, with advances."""
    syn, synack, ack, fin = 0x02, 0x12, 0x10, 0x11
    out = bytearray([0x00])
    for flags, fwd in ((syn, True), (synack, False), (ack, True), (fin, True), (fin, False)):
        a, b = (0, 1) if fwd else (1, 0)
        out += bytes([0x04, a, b, 0x08 | 5, 1, flags, 1, 10])  # TCP 40000 -> 80, +1 s...
        out += bytes([0x00, a + 2, b + 2, 0x08, 0, 0, 0, 10])  # ...and a UDP flow (v6)
        out += bytes([0x02, 0, 0, 0, 0, 0, 0, 0])  # end of batch
    out += bytes([0x0B, 3, 0, 0, 0, 0, 0, 0])  # advance a minute
    out += bytes([0x03, 0, 5, 1, 1, 0, 0, 0])  # recognise HTTP
    return [bytes(out), bytes([0xFF]) + bytes(out[1:])]


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
