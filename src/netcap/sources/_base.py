"""What the pcap and pcapng parsers share: error types, per-chunk columns, batch assembly.

A format parser walks the records of one chunk (a `bytes` buffer) and returns their
metadata as numpy columns plus the position of each packet's bytes in that buffer
(`Columns`). `assemble` turns a slice of those columns into a `PacketBatch`, copying
the packet bytes out of the chunk so the batch never aliases the reader's buffer.
Limits: a chunk's columns are only valid together with the buffer they index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .batch import PAD, PacketBatch

__all__ = [
    "Buf",
    "CaptureError",
    "Columns",
    "ParseResult",
    "Truncation",
    "alias",
    "assemble",
]

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]
# A chunk: the reader passes a memoryview of its reused bytearray; tests may pass bytes.
Buf = bytes | bytearray | memoryview

# Above this mean packet size one memcpy per packet (bytes.join of memoryview slices)
# beats the byte mask; below it the per-packet Python cost dominates. Measured: the
# two cross at 200-400 bytes per packet.
_JOIN_MIN_MEAN = 256

_PAD_BYTES = bytes(PAD)


class CaptureError(Exception):
    """Input is not a readable capture; str(e) is one clear line naming the file."""


class Truncation(NamedTuple):
    """Where and why reading stopped before the end of the input.

    offset is a byte offset in the (decompressed) stream: the start of the first
    record or block that was not delivered, or the end of the data that was read.
    """

    path: str
    offset: int
    reason: str


@dataclass(slots=True)
class Columns:
    """Metadata of the complete packets found in one chunk, in capture order.

    start indexes the chunk buffer: packet i's bytes are buf[start[i]:start[i]+caplen[i]].
    """

    start: I64
    caplen: I64
    wirelen: I64
    ts: I64
    linktype: I32
    iface: I32

    def __len__(self) -> int:
        return int(self.start.shape[0])

    def head(self, k: int) -> Columns:
        """The first k packets (used when a damaged record cuts a chunk short)."""
        return Columns(
            self.start[:k],
            self.caplen[:k],
            self.wirelen[:k],
            self.ts[:k],
            self.linktype[:k],
            self.iface[:k],
        )

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        if len(parts) == 1:
            return parts[0]
        return Columns(
            np.concatenate([p.start for p in parts]),
            np.concatenate([p.caplen for p in parts]),
            np.concatenate([p.wirelen for p in parts]),
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.linktype for p in parts]),
            np.concatenate([p.iface for p in parts]),
        )


class ParseResult(NamedTuple):
    """Outcome of walking one chunk.

    cols  complete packets found (None if none)
    pos   buffer position of the first byte not consumed (the next record's start)
    need  bytes needed from pos to complete the next record (0: unknown/none)
    stop  (buffer offset, reason) when a damaged record ends reading, else None
    """

    cols: Columns | None
    pos: int
    need: int
    stop: tuple[int, str] | None


def _gather_data(buf: Buf, arr: U8, start: I64, caplen: I64, total: int) -> U8:
    """Copy every packet's bytes back to back, followed by PAD zero bytes."""
    n = int(start.shape[0])
    end = start + caplen
    if total >= _JOIN_MIN_MEAN * n:
        mv = memoryview(buf)
        parts: list[memoryview | bytes] = [
            mv[s:e] for s, e in zip(start.tolist(), end.tolist(), strict=True)
        ]
        parts.append(_PAD_BYTES)
        joined: U8 = np.frombuffer(bytearray().join(parts), dtype=np.uint8)
        return joined
    # Byte mask over the span from the first packet to the end of the last: runs of
    # False (headers, padding, other blocks) alternate with runs of True (packet
    # bytes), so np.repeat of an alternating pattern builds it in one pass.
    lo = int(start[0])
    hi = int(end[-1])
    counts = np.empty(2 * n, dtype=np.int64)
    counts[0] = 0
    counts[2::2] = start[1:] - end[:-1]
    counts[1::2] = caplen
    pattern = np.zeros(2 * n, dtype=np.bool_)
    pattern[1::2] = True
    mask = np.repeat(pattern, counts)
    out = np.empty(total + PAD, dtype=np.uint8)
    out[:total] = arr[lo:hi][mask]
    out[total:] = 0
    return out


def alias(buf: U8, cols: Columns, lo: int, hi: int, first: int) -> PacketBatch:
    """PacketBatch of packets lo..hi that *aliases* the chunk buffer instead of copying the
    packets out: `offset` points into it and skips the record headers between packets.
    Valid only until the buffer is reused; `buf` must hold PAD bytes after the chunk."""
    return PacketBatch(
        data=buf, offset=cols.start[lo:hi], caplen=cols.caplen[lo:hi],
        wirelen=cols.wirelen[lo:hi], ts=cols.ts[lo:hi], linktype=cols.linktype[lo:hi],
        iface=cols.iface[lo:hi], first=first,
    )


def assemble(buf: Buf, arr: U8, cols: Columns, lo: int, hi: int, first: int) -> PacketBatch:
    """PacketBatch of packets lo..hi of a chunk's columns; first = global index of lo."""
    caplen = cols.caplen[lo:hi]
    n = hi - lo
    total = int(caplen.sum())
    if n:
        data = _gather_data(buf, arr, cols.start[lo:hi], caplen, total)
    else:
        data = np.zeros(PAD, dtype=np.uint8)
    offset = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(caplen[:-1], out=offset[1:])
    return PacketBatch(
        data=data,
        offset=offset,
        caplen=caplen.copy(),
        wirelen=cols.wirelen[lo:hi].copy(),
        ts=cols.ts[lo:hi].copy(),
        linktype=cols.linktype[lo:hi].copy(),
        iface=cols.iface[lo:hi].copy(),
        first=first,
    )
