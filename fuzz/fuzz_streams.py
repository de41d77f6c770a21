"""Fuzz target: TCP reassembly and the stream stage (reassembly/_streams.pyx).

The input is read as a short list of segments fed to a `StreamStage` with small limits
(so eviction, buffer overflows and shedding happen), in one to three updates, then a
flush. Byte 0 picks the limits and where the updates are cut; then per segment a 5-byte
header and its payload:

    b0: bits 0-1 connection, bit 2 server to client, bit 3 SYN, bit 4 FIN, bit 5 RST,
        bit 6 hidden (the payload length is shipped as a count, not as bytes)
    b1: the server port (an index into PORTS: every kind, and ports sniffed by bytes)
    b2-b3: sequence number offset from the direction's initial one (near 2**32: wraps)
    b4: payload length, then that many bytes (fewer at the end of the input)

A finding is a crash, a sanitizer report, an exception out of the stage, an
`internal_error` counted (the stage contains exceptions from a stream's bytes so a run
goes on; here each one is a bug to see), or, in detail mode (files written), records the
stage encoded as it made them (`StreamOutput.encoded`) that differ from their rows
encoded after (`encode_records`), or from those of a stage that keeps only their order
fields (`keep=False`, as `net capture` runs it).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from netcap.reassembly._streams import StreamStage
from netcap.reassembly.kinds import STREAM_RECORDS
from netcap.reassembly.streams import SegmentBatch
from netcap.records.encode import encode_records
from netcap.records.table import Ragged
from netcap.records.types import RECORDS

PORTS = (80, 443, 22, 53, 8080, 993, 5000, 40000)
CLIENTS = (b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", bytes(15) + b"\x01", b"\x0a\x00\x00\x03")
SERVER4, SERVER6 = b"\xc0\xa8\x00\x01", bytes(15) + b"\x02"
ISNS = (2**32 - 300, 1000, 0, 2**31)
LIMITS = ({"max_streams": 3, "max_buffer": 64, "max_total": 200},
          {"max_streams": 8, "max_buffer": 1024, "max_total": 4096})
MAX_SEGMENTS = 64
_CLIENT_PORTS = tuple(40000 + conn for conn in range(4))  # made once, not per segment


class _Segments:
    """The input's segments, column by column (what SegmentBatch holds; built here in one
    pass rather than through Segment tuples and SegmentBatch.from_rows: every object
    costs in the sanitizer build)."""

    __slots__ = ("src", "sport", "dst", "dport", "seq", "flags", "payload", "size", "hidden")

    def __init__(self, data: bytes) -> None:
        self.src: list[bytes] = []
        self.sport: list[int] = []
        self.dst: list[bytes] = []
        self.dport: list[int] = []
        self.seq: list[int] = []
        self.flags: list[int] = []
        self.payload: list[bytes] = []  # b"" for a hidden one
        self.size: list[int] = []
        self.hidden: list[int] = []
        stream = io.BytesIO(data)  # read as a stream: no int per position (each a malloc)
        stream.seek(1)
        read = stream.read
        while len(self.seq) < MAX_SEGMENTS:
            head = read(5)
            if len(head) < 5:
                break
            b0, b1, hi, lo, n = head
            off = (hi << 8) | lo
            payload = read(n)
            conn, back = b0 & 3, (b0 >> 2) & 1
            client = CLIENTS[conn]
            server = SERVER6 if len(client) == 16 else SERVER4
            port, cport = PORTS[b1 % len(PORTS)], _CLIENT_PORTS[conn]
            self.flags.append((b0 >> 3) & 7)
            self.seq.append((ISNS[(conn + back) % len(ISNS)] + off) % 2**32)
            if b0 & 64 and payload:  # hidden: the payload's length shipped as a count
                self.payload.append(b"")
                self.size.append(0)
                self.hidden.append(len(payload))
            else:
                self.payload.append(payload)
                self.size.append(len(payload))
                self.hidden.append(0)
            if back:
                self.src.append(server)
                self.sport.append(port)
                self.dst.append(client)
                self.dport.append(cport)
            else:
                self.src.append(client)
                self.sport.append(cport)
                self.dst.append(server)
                self.dport.append(port)

    def __len__(self) -> int:
        return len(self.seq)

    def batch(self, a: int, b: int, in_place: bool) -> SegmentBatch:
        """Segments a to b (each one's time and packet number: its index). `in_place`:
        the payloads in a buffer with a byte between them, `at` saying where (as
        `segments(in_place=True)` leaves them in a batch's packets); else back to back."""
        size = np.array(self.size[a:b], np.int64)
        at = None
        if in_place:
            payload = b"\xee" + b"\xee".join(self.payload[a:b]) + b"\xee"
            at = np.cumsum(size + 1) - size
        else:
            payload = b"".join(self.payload[a:b])
        return SegmentBatch(
            Ragged.from_list(self.src[a:b]), np.array(self.sport[a:b], np.int64),
            Ragged.from_list(self.dst[a:b]), np.array(self.dport[a:b], np.int64),
            np.array(self.seq[a:b], np.int64), np.array(self.flags[a:b], np.int64),
            np.frombuffer(payload, np.uint8) if in_place else payload, size,
            np.array(self.hidden[a:b], np.int64), np.arange(a, b, dtype=np.int64),
            np.arange(a, b, dtype=np.int64), at)


def _run(data: bytes, segs: _Segments, detail: bool, keep: bool = True) -> list[Any]:
    """The stage's outputs for the input's segments, cut into updates as byte 0 says."""
    n = len(segs)
    stage = StreamStage(detail=detail, encode=STREAM_RECORDS if detail else None, keep=keep,
                        **LIMITS[(data[0] >> 1) & 1])
    cuts = sorted({0, n, (data[0] >> 2) % (n + 1), (data[0] >> 5) % (n + 1)})
    outs = [stage.update(segs.batch(a, b, k % 2 == 1) if b > a else None)
            for k, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False))]
    outs.append(stage.flush())
    if stage._buffered != 0 or len(stage) != 0:
        raise RuntimeError("the stage holds bytes after its flush")
    return outs


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    segs = _Segments(data)
    detail = bool(data[0] & 1)
    outs = _run(data, segs, detail)
    for out in outs:
        for reason in out.errors:
            if reason.endswith("internal_error"):
                raise RuntimeError(f"stream stage: {reason}")
        for name, rows in out.records.items() if detail else ():
            if b"".join(out.encoded[name]) != encode_records(RECORDS[name],
                                                            [r for _, r in rows]):
                raise RuntimeError(f"{name} records encoded as made differ")
    if detail:  # as `net capture` runs it: records not kept whole, the same messages
        lean = _run(data, segs, detail, keep=False)
        if [o.encoded for o in lean] != [o.encoded for o in outs]:
            raise RuntimeError("records encoded without keeping them differ")


def seeds() -> list[bytes]:
    """The first segments of the recorded HTTP, TLS, SSH and DNS captures, in this
    target's format (tests/data/recorded)."""
    from seedfiles import RECORDED

    from netcap.decode.batch import decode_batch
    from netcap.reassembly.streams import segments
    from netcap.sources.capture import open_capture

    out = []
    for name in ("http.pcap", "tls.pcap", "ssh.pcap", "dns.pcap"):
        seed = bytearray([0])
        conns: dict[tuple[bytes, int, bytes, int], int] = {}
        isns: dict[tuple[bytes, int, bytes, int], int] = {}
        count = 0
        for batch in open_capture(str(RECORDED / name)):
            segs = segments(decode_batch(batch))
            if segs is None:
                continue
            for src, sport, dst, dport, seq, flags, payload, _, _ in segs.rows():
                key = (src, sport, dst, dport)
                back = key not in conns and (dst, dport, src, sport) in conns
                conn = conns.setdefault((dst, dport, src, sport) if back else key,
                                        len(conns) % 4)
                port = dport if not back else sport
                isn = isns.setdefault(key, (seq - ISNS[(conn + back) % len(ISNS)]) % 2**32)
                body = payload if isinstance(payload, bytes) else b""
                seed += bytes([conn | back << 2 | flags << 3,
                               PORTS.index(port) if port in PORTS else 7])
                seed += ((seq - isn) % 65536).to_bytes(2, "big")
                seed += bytes([min(len(body), 255)]) + body[:255]
                count += 1
                if count >= 24:
                    break
            if count >= 24:
                break
        out.append(bytes(seed))
    return out


if __name__ == "__main__":
    import sys

    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
