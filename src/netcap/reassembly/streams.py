"""Stream analyzers over reassembled TCP: segments of selected ports, merged in input
order (the sequential stage, like the connection table), reassembled per direction and
handed to the analyzer for the port.

Workers pick the segments (`segments`, compiled: `_segments.pyx`; TCP packets to or from
a stream port, with their payload); the parent (`StreamStage`, compiled: `_streams.pyx`)
owns the streams. The analyzers:

- DNS over TCP (RFC 1035 4.2.2: each message after a 2-byte length; several per
  stream, in either direction). A gap drops the message it cuts; framing restarts with
  the next delivered chunk, which is right when that chunk starts a message (DNS
  messages usually travel in segments of their own) and otherwise ends in a counted
  decode error.
- TLS hellos (`analyzers/tls.py`), per direction, on TLS ports and on any port whose
  stream starts with a handshake record.
- SSH banners and KEXINITs (`analyzers/ssh.py`), per direction.
- HTTP/1.x (`analyzers/http.py`), per connection: both directions feed one
  `HttpConnection`, which pairs requests with responses; it needs every byte (bodies
  are framed, not kept), and FIN/RST, so its segments are all shipped.

DNS and HTTP get every segment. TLS and SSH want a stream's first bytes only (a hello,
a banner and KEXINIT): per direction and batch the workers ship SYNs and the first
`_MAX_SEGMENTS` data segments, and a direction whose analyzer is done ignores the rest.
An analyzer that meets a protocol violation is detached from its stream and the
violation counted (`nc_decoding_errors{protocol,reason}`). On other ports a direction's
analyzer is chosen by its stream's first bytes (an HTTP method or status line, a TLS
handshake record header; else none), read however segments cut them: so the workers
also ship segments of 1-3 bytes that could start one. An analyzer recognising its
protocol names the connection's ApplicationProto (`StreamOutput.apps`). A bug that an
analyzer (or this stage) meets on a stream's bytes is counted
(`<protocol>/internal_error`) and that connection dropped; the others go on. Streams
are bounded in number (`max_streams`: the least recently used go; an HTTP connection
that goes is closed, so what it completed is kept) and each direction in buffered
bytes (see `_streams.Stream`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..decode.batch import Decoded
from ..records.table import Ragged
from ._segments import KIND_BITS, Picker
from ._streams import StreamStage, gather_payloads
from .kinds import (
    ALL_KINDS,
    FINGERPRINTS,
    KIND_RECORDS,
    STREAM_PORTS,
    STREAM_RECORDS,
    TCP_SEGMENT_COLUMNS,
)
from .output import StreamOutput, record_order

# The constants of kinds.py are named here too, where most of their users look.
__all__ = ["ALL_KINDS", "FINGERPRINTS", "KIND_RECORDS", "STREAM_PORTS", "STREAM_RECORDS",
           "TCP_SEGMENT_COLUMNS", "Segment", "SegmentBatch", "StreamOutput", "StreamStage",
           "record_order", "segments"]

I64 = npt.NDArray[np.int64]
Buffer = bytes | bytearray | memoryview | npt.NDArray[np.uint8]


# (src address, src port, dst address, dst port, seq, flags, payload, time, packet number);
# flags: SYN 1, FIN 2, RST 4.
# payload: the bytes, or (HTTP bodies, see `segments`) the count of bytes not shipped
Segment = tuple[bytes, int, bytes, int, int, int, bytes | int, int, int]
SYN, FIN, RST = 1, 2, 4
_MAX_SEGMENTS = 4  # per direction and batch: a hello in more segments than this ends in a gap


def segments(d: Decoded, kinds: frozenset[str] = ALL_KINDS, hide_bodies: bool = False,
             in_place: bool = False) -> SegmentBatch | None:
    """The TCP segments of a decoded batch that the stream analyzers `kinds` want.

    `in_place`: the payloads are not copied out; the batch's data is the segments'
    `payload` (for a caller that uses them before the batch's buffer is reused).

    `hide_bodies` (records only counted, not written): HTTP segments that cannot hold a
    byte of a message head or of chunked framing are shipped as their length only
    (`Hidden`), and runs of them in one direction as one. Heads and chunk-size lines
    are ASCII lines ending in CRLF, so a segment holds such a byte only if it contains
    CRLF, or lies wholly inside one line (then it holds no control byte but tab, CR
    and LF: llhttp refuses them in a head, but for a status line's reason phrase), or a
    head starts in it and runs past its end (then its last byte is text), or it starts
    with the LF of a CRLF split over segments. A segment with none of these is body
    bytes: on bulk binary bodies most segments are. (A status line with control bytes
    or bytes 0x80-0xFF in its reason phrase, cut there by the end of a segment that
    holds no CRLF, can be hidden; the transaction is then lost as an `http/gap`.)"""
    t = d.tables.get("TCP")
    if t is None or t.pkt is None or not t.n or not kinds:
        return None
    src, dst = t.cols["SrcIP"], t.cols["DstIP"]
    if not (isinstance(src, Ragged) and isinstance(dst, Ragged)):  # invariant (not input)
        raise TypeError("unexpected column types")
    c = t.cols
    out = _PICKER.pick(
        sum(KIND_BITS[k] for k in kinds if k in KIND_BITS), hide_bodies, _i64(c["SrcPort"]),
        _i64(c["DstPort"]), _i64(c["SeqNum"]), _u8(c["SYN"]), _u8(c["FIN"]), _u8(c["RST"]),
        _i64(c["_poff"]), _i64(c["PayloadSize"]), _u8(src.data), _i64(src.lens),
        _u8(dst.data), _i64(dst.lens), _i64(t.pkt), _u8(d.batch.data), _i64(d.batch.ts),
        d.batch.first, not in_place)
    if out is None:
        return None
    s_data, s_lens, sport, d_data, d_lens, dport, seq, flags, blob, at, size, hidden, ts, pkt \
        = out
    return SegmentBatch(Ragged(s_data, s_lens), sport, Ragged(d_data, d_lens), dport, seq,
                        flags, d.batch.data if blob is None else blob, size, hidden, ts, pkt,
                        at)


def _i64(col: object) -> I64:
    return np.ascontiguousarray(col, np.int64)


def _u8(col: object) -> npt.NDArray[np.uint8]:
    """A bool or byte column as contiguous bytes (a bool is one byte, 0 or 1)."""
    a = np.ascontiguousarray(col)
    return (a if a.dtype == np.uint8 else a.astype(np.bool_, copy=False)).view(np.uint8)


@dataclass
class SegmentBatch:
    """A batch's stream segments, columnar: cheap to pickle between processes (arrays
    and one bytes object instead of a tuple per segment). `rows` gives them as the
    `Segment` tuples the stage reads. Segment i's payload is
    `payload[at[i] : at[i] + size[i]]`; `at` None: the payloads are back to back."""

    src: Ragged
    sport: I64
    dst: Ragged
    dport: I64
    seq: I64
    flags: I64
    # The shipped payloads: bytes, or a batch's data read in place (`segments`); None
    # while they are in the input file at `at` (a relay worker's, to the stream process)
    payload: Buffer | None
    size: I64  # bytes of each in `payload` (0 for hidden ones)
    hidden: I64  # > 0: that many body bytes not shipped (see `segments`)
    ts: I64
    pkt: I64
    at: I64 | None = None  # where each payload starts in `payload` (None: back to back)

    def __len__(self) -> int:
        return int(self.sport.shape[0])

    @staticmethod
    def from_rows(segs: list[Segment]) -> SegmentBatch:
        """From `Segment` tuples (tests)."""
        def col(i: int) -> I64:
            return np.asarray([s[i] for s in segs], np.int64).reshape(-1)

        data = [s[6] for s in segs]
        return SegmentBatch(
            Ragged.from_list([s[0] for s in segs]), col(1), Ragged.from_list([s[2] for s in segs]),
            col(3), col(4), col(5), b"".join(x for x in data if isinstance(x, bytes)),
            np.asarray([len(x) if isinstance(x, bytes) else 0 for x in data], np.int64),
            np.asarray([x if isinstance(x, int) else 0 for x in data], np.int64), col(7), col(8))

    def starts(self) -> I64:
        """Where each payload starts in `payload`."""
        if self.at is not None:
            return self.at
        out: I64 = np.cumsum(self.size) - self.size
        return out

    def rows(self) -> Iterator[Segment]:
        blob = np.frombuffer(self._payload(), np.uint8)
        for s, sp, d, dp, q, f, n, h, t, p, a in zip(
                self.src.tolist(), self.sport.tolist(), self.dst.tolist(),
                self.dport.tolist(), self.seq.tolist(), self.flags.tolist(),
                self.size.tolist(), self.hidden.tolist(), self.ts.tolist(),
                self.pkt.tolist(), self.starts().tolist(), strict=True):
            yield s, sp, d, dp, q, f, h if h else blob[a : a + n].tobytes(), t, p

    def take(self, rows: I64) -> SegmentBatch:
        """Those rows only, their payloads copied out back to back."""
        blob = gather_payloads(np.frombuffer(self._payload(), np.uint8), self.starts()[rows],
                               self.size[rows])
        return SegmentBatch(self.src.take(rows), self.sport[rows], self.dst.take(rows),
                            self.dport[rows], self.seq[rows], self.flags[rows], blob,
                            self.size[rows], self.hidden[rows], self.ts[rows],
                            self.pkt[rows])

    def _payload(self) -> Buffer:
        if self.payload is None:  # invariant (not input): read from the file first
            raise TypeError("the payloads are still in the input file")
        return self.payload


# First bytes of an HTTP message (a request method and its space, or a status line):
# HTTP on other ports is found by them, as TLS by its handshake record.
_HTTP_STARTS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN",
                b"TRAC", b"HTTP")
_PICKER = Picker(STREAM_PORTS, _HTTP_STARTS, _MAX_SEGMENTS)
