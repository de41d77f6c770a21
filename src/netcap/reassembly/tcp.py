"""One direction of a TCP stream, reassembled: a small contract in the gopacket manner.

Segments go in with their sequence number, in any order; bytes come out in order, as
`Chunk`s. Rules kept here:

- Sequence numbers are 32-bit and wrap: all comparisons go through `_after` (serial
  number arithmetic), offsets are kept relative to the initial sequence number.
- A stream picked up mid-way (no SYN seen) starts at its first segment.
- Retransmissions and overlaps: bytes already delivered are never delivered again; for
  bytes that arrive twice before delivery, the first copy wins (the policy of Linux and
  of Zeek's default), and overlapping bytes that differ are counted (`conflicts`).
- Out-of-order segments wait in a buffer bounded by `max_buffer` bytes. When it would
  overflow, the stream skips to the earliest buffered segment: the missing bytes are
  reported as a gap (`Chunk.skip`), never invented.
- `flush()` (end of input, or the connection closing) delivers what is buffered, with
  the gaps before each piece.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

__all__ = ["Chunk", "Hidden", "Stream"]

_MOD = 1 << 32


def _after(a: int, b: int) -> int:
    """a - b in sequence space, as a signed 32-bit distance."""
    d = (a - b) % _MOD
    return d - _MOD if d >= 1 << 31 else d


@dataclass(frozen=True, slots=True)
class Hidden:
    """Bytes that were on the wire but not shipped to the stage (HTTP body bytes no
    parser needs, see `streams.segments`): reassembled like data (ordered, trimmed by
    retransmissions), delivered as a count, never as bytes."""

    n: int

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, s: slice) -> Hidden:
        return Hidden(len(range(*s.indices(self.n))))


@dataclass(frozen=True, slots=True)
class Chunk:
    """In-order stream bytes. `skip`: bytes missing right before this chunk (a gap)."""

    data: bytes | Hidden
    skip: int
    ts: int  # packet time of the segment that completed it


class Stream:
    """Waiting pieces are keyed by their absolute offset in the stream (bytes delivered
    or skipped before them), with a heap of those offsets: each segment costs O(log n)
    in the pieces waiting, never a pass over them (many small segments behind a hole
    that does not fill must cost linear work, not quadratic)."""

    def __init__(self, max_buffer: int = 256 * 1024) -> None:
        self.max_buffer = max_buffer
        self.next_seq: int | None = None  # sequence number of the next byte to deliver
        self._base = 0  # absolute offset of next_seq (bytes delivered or skipped)
        self._pending: dict[int, tuple[bytes | Hidden, int]] = {}  # absolute offset ->
        self._starts: list[int] = []  # heap of the keys of _pending
        self._buffered = 0
        self.delivered = 0  # bytes delivered
        self.gaps = 0  # bytes skipped
        self.conflicts = 0  # overlapping bytes that differed
        self.overflows = 0  # times the buffer limit forced a skip
        self.finished = False
        self.last_ts = 0  # packet time of the latest segment

    def syn(self, seq: int) -> None:
        """A SYN with this sequence number: data starts at seq + 1."""
        if self.next_seq is None:
            self.next_seq = (seq + 1) % _MOD

    def segment(self, seq: int, data: bytes | Hidden, ts: int) -> list[Chunk]:
        """Add one segment's payload; the chunks that became deliverable."""
        self.last_ts = max(self.last_ts, ts)
        if not data:
            return []
        if self.next_seq is None:  # picked up mid-way
            self.next_seq = seq
        off = _after(seq, self.next_seq)
        if off == 0 and not self._pending:  # the common case: the next bytes, in order
            self.next_seq = (self.next_seq + len(data)) % _MOD
            self._base += len(data)
            self.delivered += len(data)
            return [Chunk(data, 0, ts)]
        if off < 0:  # starts before what was delivered: keep only the new bytes
            if off + len(data) <= 0:
                return []  # a retransmission of delivered bytes
            data = data[-off:]
            off = 0
        at = self._base + off
        have = self._pending.get(at)
        if have is not None:  # same start: the first copy wins
            old = have[0]
            common = min(len(old), len(data))
            if isinstance(old, bytes) and isinstance(data, bytes) \
                    and old[:common] != data[:common]:
                self.conflicts += 1
            if len(data) <= len(old):
                return self._deliver()
            self._buffered -= len(old)
        else:
            heapq.heappush(self._starts, at)
        self._pending[at] = (data, ts)
        self._buffered += len(data)
        out = self._deliver()
        while self._buffered > self.max_buffer and self._pending:
            self.overflows += 1
            out += self._skip_to_first()
        return out

    def _deliver(self) -> list[Chunk]:
        """Pieces that now start at or before the delivery point, earliest first."""
        out: list[Chunk] = []
        starts = self._starts
        while starts and starts[0] <= self._base:
            at = heapq.heappop(starts)
            data, ts = self._pending.pop(at)
            self._buffered -= len(data)
            behind = self._base - at
            if behind:
                if behind >= len(data):
                    continue  # covered by what was delivered since it arrived
                data = data[behind:]
            out.append(Chunk(data, 0, ts))
            self._advance(len(data))
        return out

    def _advance(self, n: int) -> None:
        if self.next_seq is None:  # pragma: no cover - set before any data is taken
            self.next_seq = 0
        self.next_seq = (self.next_seq + n) % _MOD
        self._base += n
        self.delivered += n

    def _skip_to_first(self) -> list[Chunk]:
        """Give up on the missing bytes before the earliest buffered piece."""
        off = self._starts[0] - self._base
        if off > 0:
            self.gaps += off
            self._advance(off)
            chunks = self._deliver()
            if chunks:
                first = chunks[0]
                chunks[0] = Chunk(first.data, off, first.ts)
            return chunks
        return self._deliver()

    @property
    def buffered(self) -> int:
        """Bytes waiting out of order."""
        return self._buffered

    def _drain(self) -> list[Chunk]:
        """Everything buffered, in order, with the gaps before each piece."""
        out: list[Chunk] = []
        while self._pending:
            out += self._skip_to_first()
        return out

    def shed(self) -> list[Chunk]:
        """Give up waiting (memory is short): `_drain`, and the stream goes on after it
        (counted as an overflow)."""
        self.overflows += 1
        return self._drain()

    def flush(self) -> list[Chunk]:
        """Everything still buffered, in order, with the gaps between (end of input)."""
        out = self._drain()
        self.finished = True
        return out
