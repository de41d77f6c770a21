"""Fuzz target: the compiled flow stage (netcap.flows._table: `summarize` and the
connection table) driven by a structured input: packets of made-up flows (addresses of
odd lengths, any ports and flags, packet times that go back, jump and wrap) summarized
in batches into a table with small limits, with clock advances and protocols
recognised, then flushed. The table parses no bytes (it reads decoded columns), so this
drives its state machine. Any exception, an open-flow count over the limit, ended
connections out of start order, or packets lost between input and the connections that
end, or any sanitizer report, is a bug.

Input: one byte of limits, then records of eight bytes: an operation (a packet, the end
of a batch, a clock advance, a protocol recognised) and its values."""

from __future__ import annotations

import sys

import numpy as np

from netcap.flows._table import Table, summarize
from netcap.flows.extract import FlowBatch

_ADDRS = [bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes(15) + b"\1", bytes(15) + b"\2",
          b"", b"\1\2\3\4\5\6\7"]  # the last two: what no decoder gives, read as zeros
_PORTS = [53, 80, 443, 0, 65535, 40000, 123, 22]
_STEPS = [0, 1, -1, 10**9, -10**9, 2**62, -2**62, 60 * 10**9]
_APPS = ["HTTP", "TLS", "SSH", "DNS"]
_LIMITS = [0, 1, 10**9, 2**62]


def _batch(rows: list[tuple[int, ...]]) -> FlowBatch | None:
    """`summarize`'s input from packet rows (one Ethernet frame each, with its MACs)."""
    n = len(rows)
    if not n:
        return None
    frames = np.frombuffer(bytes(range(12)) * n, np.uint8)
    data = np.concatenate([frames, np.zeros(16, np.uint8)])
    offset = np.arange(n, dtype=np.int64) * 12
    ts = np.array([r[7] for r in rows], np.int64)
    wire = np.array([r[6] for r in rows], np.int64)
    link = np.array([1 if r[8] & 1 else 101 for r in rows], np.int32)
    parts = []
    for proto in (6, 17):
        mine = [(k, r) for k, r in enumerate(rows) if r[0] == proto]
        if not mine:
            continue
        src = [_ADDRS[r[1]] for _, r in mine]
        dst = [_ADDRS[r[2]] for _, r in mine]
        parts.append((
            proto, np.array([k for k, _ in mine], np.int64),
            np.frombuffer(b"".join(src) + b"\0", np.uint8), np.array([len(a) for a in src]),
            np.frombuffer(b"".join(dst) + b"\0", np.uint8), np.array([len(a) for a in dst]),
            np.array([r[3] for _, r in mine], np.int64),
            np.array([r[4] for _, r in mine], np.int64),
            np.array([r[8] for _, r in mine], np.int64),
            [np.array([(r[5] >> j) & 1 for _, r in mine], np.uint8) for j in range(9)]
            if proto == 6 else None,
            np.array([r[6] for _, r in mine], np.int64) if proto == 6 else None))
    apps = [np.array([k for k, r in enumerate(rows) if r[8] & (2 << j)], np.int64)
            for j in range(3)]
    return FlowBatch(*summarize(parts, ts, wire, link, data, offset, apps))


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    limits = data[0]
    max_flows = 1 + (limits & 7)
    table = Table(max_flows, _LIMITS[(limits >> 3) & 3], _LIMITS[(limits >> 5) & 3],
                  _LIMITS[limits >> 7])
    now = [0, 2**63 - 2**40, -2**63 + 2**40, 1][limits & 3]
    rows: list[tuple[int, ...]] = []
    apps: list[tuple[tuple[bytes, int, bytes, int], str]] = []
    fed = ended = 0

    def take(out: tuple[tuple[np.ndarray, ...], int] | None) -> int:
        if out is None:
            return 0
        cols, _ = out
        first = cols[1]
        if (first[1:] < first[:-1]).any():
            raise RuntimeError("ended connections out of start order")
        return int(cols[4].sum())

    for pos in range(1, len(data) - 7, 8):
        op, a, b, c, d, e, f, g = data[pos : pos + 8]
        if op & 3 < 2:  # a packet
            now = min(max(now + _STEPS[f & 7] + g, -2**63), 2**63 - 1)
            rows.append((6 if op & 4 else 17, a % 6, b % 6, _PORTS[c & 7] if c & 8 else c << 8,
                         _PORTS[d & 7], e | (op & 0xF0) << 4, 60 + g, now, f >> 3))
        elif op & 3 == 2:  # the end of a batch
            fb = _batch(rows)
            fed += len(rows)
            rows = []
            if fb is not None:
                ended += take(table._update(fb, apps))
                apps = []
                if len(table) > max_flows:
                    raise RuntimeError("more open flows than the limit")
        elif op & 8:  # a clock advance
            ended += take(table._advance(min(max(now + _STEPS[a & 7] - b, -2**63), 2**63 - 1)))
        else:  # a protocol recognised on a TCP connection
            apps.append(((_ADDRS[a % 4], _PORTS[b & 7], _ADDRS[c % 4], _PORTS[d & 7]),
                         _APPS[e & 3]))
    fb = _batch(rows)
    fed += len(rows)
    if fb is not None:
        ended += take(table._update(fb, apps))
    table.recognise(apps)
    ended += take(table._flush())
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
