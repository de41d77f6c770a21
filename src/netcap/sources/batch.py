"""The unit of work between a packet source and the decoder.

A source owns no decoding: it hands over packet bytes and per-packet metadata as
numpy columns. Buffer ownership: a batch owns its arrays; nothing in it aliases a
buffer the source will reuse, so a batch stays valid after the source moves on. (One
exception, for speed: the parallel relay's `ChunkWalk.batch` aliases the worker's read
buffer, and the worker finishes each batch before it reads again.)

`data` need not hold the packets back to back: `offset` says where each one starts, and
bytes between packets (e.g. record headers) are never read as packet data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PAD", "PacketBatch"]

# Zero bytes appended after the last packet in `data`, so vectorized header reads
# a few bytes past a short packet never index out of bounds. Readers of header
# fields must still check lengths against `caplen`: the pad is not packet data.
PAD = 128


@dataclass(frozen=True, slots=True)
class PacketBatch:
    """Packets delivered together, in capture order.

    data      uint8, every packet's captured bytes back to back, then PAD zero bytes
    offset    int64, start of packet i in `data`
    caplen    int64, captured length of packet i
    wirelen   int64, original length on the wire of packet i
    ts        int64, Unix nanoseconds of packet i
    linktype  int32, LINKTYPE_* of the interface packet i was captured on
    iface     int32, interface index (pcapng IDB number; 0 for pcap)
    first     0-based number of packet 0 of this batch within the whole input
    clock_error  int16 per packet, the decode-error code of a timestamp the packet
              clock rejected (its `ts` is then the clock's, see clock.py); None: none
    """

    data: npt.NDArray[np.uint8]
    offset: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.int64]
    wirelen: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    linktype: npt.NDArray[np.int32]
    iface: npt.NDArray[np.int32]
    first: int = 0
    clock_error: npt.NDArray[np.int16] | None = None

    def __len__(self) -> int:
        return int(self.offset.shape[0])

    def packet(self, i: int) -> bytes:
        """The captured bytes of packet i (a copy)."""
        start = int(self.offset[i])
        return self.data[start : start + int(self.caplen[i])].tobytes()

    @staticmethod
    def from_packets(
        packets: list[bytes],
        ts: list[int],
        linktype: list[int] | int,
        wirelen: list[int] | None = None,
        iface: list[int] | None = None,
        first: int = 0,
    ) -> PacketBatch:
        """Build a batch from Python bytes objects (tests and the live source)."""
        n = len(packets)
        caplen = np.fromiter((len(p) for p in packets), dtype=np.int64, count=n)
        offset = np.zeros(n, dtype=np.int64)
        if n:
            np.cumsum(caplen[:-1], out=offset[1:])
        data = np.frombuffer(b"".join(packets) + bytes(PAD), dtype=np.uint8).copy()
        lt = (
            np.full(n, linktype, dtype=np.int32)
            if isinstance(linktype, int)
            else np.asarray(linktype, dtype=np.int32)
        )
        return PacketBatch(
            data=data,
            offset=offset,
            caplen=caplen,
            wirelen=caplen.copy() if wirelen is None else np.asarray(wirelen, dtype=np.int64),
            ts=np.asarray(ts, dtype=np.int64),
            linktype=lt,
            iface=np.zeros(n, dtype=np.int32) if iface is None else np.asarray(iface, np.int32),
            first=first,
        )
