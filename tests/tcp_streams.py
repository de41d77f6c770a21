"""Test helper: the TCP conversations of a capture, reassembled per direction with the
project's own decoder and `reassembly.tcp.Stream`, for feeding stream analyzers in unit
tests without the pipeline.

`conversations(path)` returns one `Conversation` per TCP connection (bidirectional
5-tuple), in order of first packet. Its `events` are the in-order chunks of both
directions interleaved in packet order: (from_client, data, skip, ts), where `skip` is
the number of bytes missing right before `data` (a gap). The client is the side that
sent a SYN without ACK; without one, the side that sent the first packet.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

import numpy as np

from netcap.decode.batch import decode_batch
from netcap.reassembly.tcp import Stream
from netcap.records.table import Ragged
from netcap.sources.capture import open_capture

Key = tuple[bytes, int, bytes, int]


@dataclass
class Conversation:
    client: Key  # (client address, client port, server address, server port); raw addresses
    events: list[tuple[bool, bytes, int, int]] = field(default_factory=list)
    closed: bool = False  # a FIN or RST was seen

    @property
    def name(self) -> str:
        a, p, b, q = self.client
        return f"{ipaddress.ip_address(a)}:{p}->{ipaddress.ip_address(b)}:{q}"

    def data(self, from_client: bool) -> bytes:
        return b"".join(d for c, d, _, _ in self.events if c == from_client)


def conversations(path: str) -> list[Conversation]:
    convs: dict[Key, Conversation] = {}
    streams: dict[Key, Stream] = {}
    for batch in open_capture(path):
        d = decode_batch(batch)
        t = d.tables.get("TCP")
        if t is None or t.pkt is None or not t.n:
            continue
        src, dst = t.cols["SrcIP"], t.cols["DstIP"]
        assert isinstance(src, Ragged) and isinstance(dst, Ragged)
        cols = {k: np.asarray(t.cols[k]).tolist()
                for k in ("SrcPort", "DstPort", "SeqNum", "SYN", "ACK", "FIN", "RST", "_poff",
                          "PayloadSize")}
        ts = d.batch.ts[t.pkt].tolist()
        data = d.batch.data
        for i, (s, dd) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
            key = (s, cols["SrcPort"][i], dd, cols["DstPort"][i])
            rev = (dd, cols["DstPort"][i], s, cols["SrcPort"][i])
            conv = convs.get(key) or convs.get(rev)
            if conv is None:
                syn_ack = cols["SYN"][i] and cols["ACK"][i]
                conv = convs[key] = Conversation(rev if syn_ack else key)
            from_client = key == conv.client
            st = streams.setdefault(key, Stream())
            if cols["SYN"][i]:
                st.syn(cols["SeqNum"][i])
            if cols["FIN"][i] or cols["RST"][i]:
                conv.closed = True
            off, size = cols["_poff"][i], cols["PayloadSize"][i]
            payload = data[off : off + size].tobytes()
            for c in st.segment(cols["SeqNum"][i], payload, ts[i]):
                conv.events.append((from_client, c.data, c.skip, c.ts))
    for key, st in streams.items():
        conv = convs.get(key) or convs[(key[2], key[3], key[0], key[1])]
        for c in st.flush():
            conv.events.append((key == conv.client, c.data, c.skip, c.ts))
    return list(convs.values())


# -- crafted captures ---------------------------------------------------------------------

SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_frame(src: bytes, sport: int, dst: bytes, dport: int, seq: int, flags: int,
              payload: bytes = b"", ack: int = 0) -> bytes:
    """An Ethernet / IPv4 / TCP frame (IPv4 header checksum set; TCP's left 0)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq % 2**32, ack % 2**32, 5 << 4, flags,
                      65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + tcp


def pcap_bytes(frames: list[bytes], start_s: int = 1_700_000_000, step_us: int = 1000) -> bytes:
    """A microsecond pcap (Ethernet) of the frames, step_us apart."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        t = i * step_us
        out.append(struct.pack("<IIII", start_s + t // 10**6, t % 10**6, len(f), len(f)) + f)
    return b"".join(out)


def conversation_frames(client: tuple[bytes, int], server: tuple[bytes, int],
                        parts: list[tuple[bool, bytes]], handshake: bool = True,
                        close: bool = True) -> list[bytes]:
    """Frames of one TCP connection: a handshake, then each (from_client, payload) as
    one segment (in order), then FINs both ways."""
    (ca, cp), (sa, sp) = client, server
    cseq, sseq = 1000, 5000
    frames = []
    if handshake:
        frames += [tcp_frame(ca, cp, sa, sp, cseq, SYN),
                   tcp_frame(sa, sp, ca, cp, sseq, SYN | ACK, ack=cseq + 1),
                   tcp_frame(ca, cp, sa, sp, cseq + 1, ACK, ack=sseq + 1)]
    cseq, sseq = cseq + 1, sseq + 1
    for from_client, data in parts:
        if from_client:
            frames.append(tcp_frame(ca, cp, sa, sp, cseq, ACK | PSH, data, sseq))
            cseq += len(data)
        else:
            frames.append(tcp_frame(sa, sp, ca, cp, sseq, ACK | PSH, data, cseq))
            sseq += len(data)
    if close:
        frames += [tcp_frame(ca, cp, sa, sp, cseq, FIN | ACK, ack=sseq),
                   tcp_frame(sa, sp, ca, cp, sseq, FIN | ACK, ack=cseq + 1),
                   tcp_frame(ca, cp, sa, sp, cseq + 1, ACK, ack=sseq + 1)]
    return frames
