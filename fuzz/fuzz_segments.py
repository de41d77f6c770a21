"""Fuzz target: TCP segment picking (reassembly/_segments.pyx, `streams.segments`).

The input is read as a TCP table (what the decoder gives a batch: ports, sequence numbers,
flags, addresses, payloads in one buffer) handed to the compiled picker with the stream
analyzers and `hide_bodies` the first byte asks for. Byte 0: bits 0-3 the kinds (TLS,
HTTP, SSH, DNS), bit 4 hide_bodies. Then per row a 5-byte header and its payload:

    b0: bits 0-2 connection, bit 3 server to client, bits 4-6 SYN/FIN/RST
    b1: low nibble the server port, high nibble the client port (indexes into PORTS)
    b2: sequence number step from the direction's last (0-0x7f: after its last payload
        plus b2; else back by b2 & 0x7f)
    b3: address pair (index into ADDRS, each side), b4: payload length, then its bytes

A finding is a crash, a sanitizer report, an exception, or output that is not a picking
of the input: rows not in input order, a row's addresses, ports, flags or time not its
own, a shipped payload that is not its row's bytes, a hidden row that ships bytes, more
hidden bytes than the input holds, or (DNS asked for) a DNS segment with data left out.
"""

from __future__ import annotations

import io
import operator
from typing import Any

import numpy as np

from netcap.reassembly._segments import Picker
from netcap.reassembly.streams import _HTTP_STARTS, _MAX_SEGMENTS, STREAM_PORTS

PORTS = (80, 443, 22, 53, 8080, 993, 2222, 5000, 40000, 40001, 0, 65535, 3128, 853, 1, 8443)
# 4 and 16 bytes as the decoder gives; 0 and 7: what no decoder gives (read as zeros);
# 10.0.0.1 and ::10.0.0.1, one address to the picking's directions
ADDRS = (b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", bytes(12) + b"\x0a\x00\x00\x01",
         bytes(15) + b"\x02", b"", b"\x01\x02\x03\x04\x05\x06\x07", b"\xc0\xa8\x00\x01",
         bytes(range(16)))
ISNS = (2**32 - 100, 1000, 0, 2**31)
KIND_BITS = {"TLS": 1, "HTTP": 2, "SSH": 4, "DNS": 8}
MAX_ROWS = 128
PICKER = Picker(STREAM_PORTS, _HTTP_STARTS, _MAX_SEGMENTS)  # as streams.segments' own
# Each direction's ISN, by b0 & 15 (connection, and bit 3: server to client).
_FIRST_SEQ = [ISNS[((way & 7) + (way >> 3)) & 3] for way in range(16)]
_DNS = {p for p in PORTS if STREAM_PORTS.get(p) == "DNS"}


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    # bit 5: payloads read in place (`pick(copy=False)`, as a relay worker does)
    kinds, hide, copy = data[0] & 15, bool(data[0] & 16), not data[0] & 32
    # The input's rows, column by column, read as a stream: few objects per row (the
    # sanitizer build pays for every allocation, every int above 256 included).
    sports: list[int] = []
    dports: list[int] = []
    seqs: list[int] = []
    flags = bytearray()
    src: list[bytes] = []
    dst: list[bytes] = []
    payloads: list[bytes] = []
    last = _FIRST_SEQ.copy()  # where each direction's next payload starts
    stream = io.BytesIO(data)  # shares the input's bytes
    stream.seek(1)
    read = stream.read
    while len(seqs) < MAX_ROWS:
        head = read(5)
        if len(head) < 5:
            break
        b0, b1, b2, b3, n = head
        payload = read(n)
        way = b0 & 15  # connection, and bit 3: server to client
        seq = (last[way] + b2 if b2 < 0x80 else last[way] - (b2 & 0x7F)) % 2**32
        last[way] = (seq + len(payload)) % 2**32
        seqs.append(seq)
        flags.append((b0 >> 4) & 7)
        if b0 & 8:
            sports.append(PORTS[b1 & 15])
            dports.append(PORTS[b1 >> 4])
            src.append(ADDRS[(b3 >> 3) & 7])
            dst.append(ADDRS[b3 & 7])
        else:
            sports.append(PORTS[b1 >> 4])
            dports.append(PORTS[b1 & 15])
            src.append(ADDRS[b3 & 7])
            dst.append(ADDRS[(b3 >> 3) & 7])
        payloads.append(payload)
    if not seqs:
        return
    n = len(seqs)
    sizes = np.fromiter(map(len, payloads), np.int64, n)
    poff = np.cumsum(sizes) - sizes + 3  # after 3 bytes of something else
    buf = np.frombuffer(b"\xee" * 3 + b"".join(payloads) + b"\xee" * 3, np.uint8)
    fl = np.frombuffer(flags, np.uint8)
    rows = np.arange(n, dtype=np.int64)
    cols = (np.array(sports, np.int64), np.array(dports, np.int64), np.array(seqs, np.int64))
    out = PICKER.pick(
        kinds, hide, *cols, fl & 1, fl >> 1 & 1, fl >> 2 & 1, poff, sizes,
        np.frombuffer(b"".join(src), np.uint8), np.fromiter(map(len, src), np.int64, n),
        np.frombuffer(b"".join(dst), np.uint8), np.fromiter(map(len, dst), np.int64, n),
        rows, buf, rows * 7, 1000, copy)
    if out is None:
        picked: set[int] = set()
    else:
        picked = _check(out, (*cols, fl), src, dst, payloads, None if copy else buf)
    if kinds & KIND_BITS["DNS"]:
        for i in range(n):
            if payloads[i] and (sports[i] in _DNS or dports[i] in _DNS) and i not in picked:
                raise RuntimeError(f"DNS segment {i} left out")


def _check(out: tuple[Any, ...], cols: tuple[np.ndarray, ...], src: list[bytes],
           dst: list[bytes], payloads: list[bytes], data: np.ndarray | None) -> set[int]:
    """That `out` is a picking of the input rows (`cols`: their sport, dport, seq and
    flags); the rows picked. Numbers are compared as arrays, bytes row by row (an element
    taken out of an array is an object of its own). `data`: the payloads were read in
    place, in that buffer (no blob)."""
    o_src, o_src_lens, o_sport, o_dst, o_dst_lens, o_dport, o_seq, o_flags, blob, o_at, \
        o_size, o_hidden, o_ts, o_pkt = out
    if (blob is None) != (data is not None):
        raise RuntimeError("payloads copied or not, against what was asked")
    in_place = data is not None
    buf = data.tobytes() if data is not None else blob
    picked = (o_pkt - 1000).tolist()
    if picked and (picked[0] < 0 or picked[-1] >= len(src)
                   or not all(map(operator.lt, picked, picked[1:]))):
        raise RuntimeError("picked rows not in input order")
    k = len(picked)
    at = o_pkt - 1000  # the rows picked, as an index
    sport, dport, seq, flags = cols
    if (min(map(len, (o_src_lens, o_sport, o_dst_lens, o_dport, o_seq, o_flags, o_size,
                      o_hidden, o_ts))) < k
            or (o_sport[:k] != sport[at]).any() or (o_dport[:k] != dport[at]).any()
            or (o_flags[:k] != flags[at]).any() or (o_ts[:k] != 7 * at).any()):
        raise RuntimeError("a picked row's ports, flags or time are not its own")
    if ((o_seq[:k] != seq[at]) & (o_hidden[:k] == 0)).any():
        raise RuntimeError("a shipped row's sequence number is not its own")
    s_lens, d_lens, size, hidden, starts = (c.tolist() for c in (
        o_src_lens, o_dst_lens, o_size, o_hidden, o_at))
    s_data, d_data = o_src.tobytes(), o_dst.tobytes()
    pos = a_s = a_d = 0
    for j, i in enumerate(picked):
        ls, ld = s_lens[j], d_lens[j]
        if s_data[a_s : a_s + ls] != src[i] or d_data[a_d : a_d + ld] != dst[i]:
            raise RuntimeError(f"picked row {i}: addresses not its own")
        a_s, a_d = a_s + ls, a_d + ld
        n, h = size[j], hidden[j]
        if h:
            if n or h < len(payloads[i]):
                raise RuntimeError(f"hidden row {i} ships bytes or hides fewer than its own")
        else:
            a = starts[j]
            if (not in_place and a != pos) or buf[a : a + n] != payloads[i]:
                raise RuntimeError(f"row {i}: not its payload")
            pos += n
    if (not in_place and pos != len(buf)) or sum(hidden) > sum(map(len, payloads)):
        raise RuntimeError("payload bytes not accounted for")
    return set(picked)


def seeds() -> list[bytes]:
    """HTTP (a request and a binary body in segments), TLS hellos on 443 and on another
    port, an SSH banner and a DNS message, in this target's format; and the first rows
    of the recorded HTTP and TLS captures' TCP tables (tests/data/recorded)."""
    from seedfiles import RECORDED

    from netcap.decode.batch import decode_batch
    from netcap.sources.capture import open_capture

    def row(conn: int, back: int, flags: int, server: int, client: int, step: int,
            payload: bytes, addrs: int = 0o10) -> bytes:
        return bytes([conn | back << 3 | flags << 4, client << 4 | server, step, addrs,
                      len(payload)]) + payload

    hello = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
    made = (bytes([0x1F]) + row(0, 0, 1, 0, 8, 0, b"")
            + row(0, 0, 0, 0, 8, 1, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            + row(0, 1, 0, 0, 8, 0, b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n")
            + b"".join(row(0, 1, 0, 0, 8, 0, b"\x00\x01\xff" * 10) for _ in range(2))
            + row(1, 0, 0, 1, 8, 0, hello) + row(2, 0, 0, 7, 9, 0, hello[:2])
            + row(2, 0, 0, 7, 9, 0, hello[2:]) + row(2, 1, 0, 7, 9, 0, b"\x17\x03\x03\x00\x01a")
            + row(3, 0, 0, 2, 8, 0, b"SSH-2.0-x\r\n") + row(4, 0, 0, 3, 8, 0, b"\x00\x02ab")
            + row(5, 0, 0, 7, 8, 0, b"G") + row(5, 0, 0, 7, 8, 0, b"ET /x HTTP/1.0\r\n\r\n")
            + row(5, 0, 2, 7, 8, 0, b"", addrs=0o20))
    out = [made, bytes([0x0F]) + made[1:]]
    for name in ("http.pcap", "tls.pcap"):
        seed = bytearray([0x1F])
        conns: dict[tuple[int, int], int] = {}
        for batch in open_capture(str(RECORDED / name)):
            d = decode_batch(batch)
            t = d.tables.get("TCP")
            if t is None:
                continue
            c = t.cols
            for i in range(min(t.n, 40)):
                sp, dp = int(c["SrcPort"][i]), int(c["DstPort"][i])
                back = int(sp in STREAM_PORTS)
                conn = conns.setdefault((dp, sp) if back else (sp, dp), len(conns) % 8)
                server = PORTS.index(sp if back else dp) if (sp if back else dp) in PORTS else 7
                off, size = int(c["_poff"][i]), min(int(c["PayloadSize"][i]), 255)
                flags = int(c["SYN"][i]) | int(c["FIN"][i]) << 1 | int(c["RST"][i]) << 2
                seed += row(conn, back, flags, server, 8, 0,
                            d.batch.data[off : off + size].tobytes())
            break
        out.append(bytes(seed))
    return out


if __name__ == "__main__":
    import sys

    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
