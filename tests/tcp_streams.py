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
