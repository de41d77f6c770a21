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

A finding is a crash, a sanitizer report, an exception out of the stage, or an
`internal_error` counted (the stage contains exceptions from a stream's bytes so a run
goes on; here each one is a bug to see).
"""

from __future__ import annotations

from netcap.reassembly._streams import StreamStage
from netcap.reassembly.streams import SegmentBatch

PORTS = (80, 443, 22, 53, 8080, 993, 5000, 40000)
CLIENTS = (b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", bytes(15) + b"\x01", b"\x0a\x00\x00\x03")
SERVER4, SERVER6 = b"\xc0\xa8\x00\x01", bytes(15) + b"\x02"
ISNS = (2**32 - 300, 1000, 0, 2**31)
LIMITS = ({"max_streams": 3, "max_buffer": 64, "max_total": 200},
          {"max_streams": 8, "max_buffer": 1024, "max_total": 4096})
MAX_SEGMENTS = 64


def _segments(data: bytes) -> list[tuple[bytes, int, bytes, int, int, int, bytes | int,
                                         int, int]]:
    segs = []
    pos = 1
    while pos + 5 <= len(data) and len(segs) < MAX_SEGMENTS:
        b0, b1, off, n = data[pos], data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4],
                                                                  "big"), data[pos + 4]
        payload = data[pos + 5 : pos + 5 + n]
        pos += 5 + len(payload)
        conn, back = b0 & 3, bool(b0 & 4)
        client = CLIENTS[conn]
        server = SERVER6 if len(client) == 16 else SERVER4
        port, cport = PORTS[b1 % len(PORTS)], 40000 + conn
        flags = (b0 >> 3) & 7
        isn = ISNS[(conn + back) % len(ISNS)]
        seq = (isn + off) % 2**32
        shipped: bytes | int = len(payload) if b0 & 64 and payload else payload
        if back:
            segs.append((server, port, client, cport, seq, flags, shipped, len(segs),
                         len(segs)))
        else:
            segs.append((client, cport, server, port, seq, flags, shipped, len(segs),
                         len(segs)))
    return segs


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    segs = _segments(data)
    stage = StreamStage(detail=bool(data[0] & 1), **LIMITS[(data[0] >> 1) & 1])
    cuts = sorted({0, len(segs), (data[0] >> 2) % (len(segs) + 1),
                   (data[0] >> 5) % (len(segs) + 1)})
    outs = [stage.update(SegmentBatch.from_rows(segs[a:b]) if b > a else None)
            for a, b in zip(cuts, cuts[1:], strict=False)]
    outs.append(stage.flush())
    for out in outs:
        for reason in out.errors:
            if reason.endswith("internal_error"):
                raise RuntimeError(f"stream stage: {reason}")
    if stage._buffered != 0 or len(stage) != 0:
        raise RuntimeError("the stage holds bytes after its flush")


def seeds() -> list[bytes]:
    """The first segments of the recorded HTTP, TLS, SSH and DNS captures, in this
    target's format (tests/data/recorded)."""
    from pathlib import Path

    from netcap.decode.batch import decode_batch
    from netcap.reassembly.streams import segments
    from netcap.sources.capture import open_capture

    out = []
    recorded = Path(__file__).resolve().parent.parent / "tests" / "data" / "recorded"
    for name in ("http.pcap", "tls.pcap", "ssh.pcap", "dns.pcap"):
        seed = bytearray([0])
        conns: dict[tuple[bytes, int, bytes, int], int] = {}
        isns: dict[tuple[bytes, int, bytes, int], int] = {}
        count = 0
        for batch in open_capture(str(recorded / name)):
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
