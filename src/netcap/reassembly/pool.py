"""The stream stage in several processes: connections partitioned by their endpoints.

The stream analyzers (HTTP, TLS, SSH, DNS over TCP) are the costliest sequential work:
in one process they would cap the pipeline at one core. A connection's state never
depends on another connection's, so each connection belongs to one partition
(`partitions`: a hash of its endpoints, the same for both directions) and each
partition has a `StreamStage` of its own in a forked process.

The decode workers split each batch's segments by partition and pickle each part
(`split`), so the parent forwards bytes it never unpickles. Per batch the parent sends
every partition its part and takes back every partition's result, one batch behind
(`StreamPool.update`), so results merge in input order. A partition counts the metrics
of its records itself and, when records are written, encodes them, with each record's
size and canonical sort key (`record_order`): the parent interleaves them
(`merge_encoded`) into the order one process would write, so the files do not depend on
the number of processes.

Processes, not the parent or a thread (measured with the stage compiled, issue 13,
`net export -exit` on the 1M-packet bench, 2 cores): the stage calls the analyzers
through their Python APIs and makes records as dicts, so it holds the GIL throughout and
a thread would run no faster than the parent. In the parent, all processes took about
the same CPU (9.9 s against 10.7 s) and 25% less memory (272 MB against 361 MB, PSS),
but the parent's own CPU, which does not spread over the cores, went from 1.4 s to 6.2 s:
more than half the total, so on two cores the run would wait on it. Worth measuring
again when the analyzers are compiled (the parent's share is mostly theirs).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import traceback
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import numpy.typing as npt

from ..flows.extract import MIX, addr_words
from ..metrics.state import STREAM_RECORD_COLUMNS, LabelConfig, MetricsState
from ..procs import WorkerError, child_signals
from ..records.encode import encode_delimited_sized
from ..sinks.ncap import EncodeOptions
from .streams import SegmentBatch, StreamOutput, StreamStage, record_order

I64 = npt.NDArray[np.int64]

__all__ = ["StreamPool", "merge_encoded", "partitions", "split"]


def partitions(segs: SegmentBatch, count: int) -> I64:
    """Each segment's partition: a hash of its two endpoints that does not depend on
    the direction (both directions of a connection meet in one stage), vectorized."""
    ends = []
    for addrs, ports in ((segs.src, segs.sport), (segs.dst, segs.dport)):
        hi, lo = addr_words(addrs)
        ends.append((hi * MIX[0]) ^ (lo * MIX[1]) ^ (ports.astype(np.uint64) * MIX[2]))
    mixed = (ends[0] + ends[1]) * MIX[3]  # + is symmetric; wraps mod 2**64
    out: I64 = ((mixed >> np.uint64(33)) % np.uint64(count)).astype(np.int64)
    return out


def split(segs: SegmentBatch | None, count: int) -> list[bytes] | None:
    """A batch's segments as one pickled part per partition (None: no segments)."""
    if segs is None or not len(segs):
        return None
    part = partitions(segs, count)
    return [pickle.dumps(segs.take(np.flatnonzero(part == k)), pickle.HIGHEST_PROTOCOL)
            for k in range(count)]


_FLUSH = b""

# What a partition sends back per batch: the metrics of its records (when counting),
# when writing, its records encoded per type with each record's size and sort key, and
# the connections whose protocol its analyzers recognised (`StreamOutput.apps`).
Encoded = dict[str, tuple[bytes, list[int], list[Any]]]
Apps = list[tuple[tuple[bytes, int, bytes, int], str]]
Result = tuple[dict[str, Any] | None, Encoded | None, Apps]


def _serve(conn: Connection, stage: StreamStage, counting: LabelConfig | None,
           encode: EncodeOptions, write: bool, parent: int) -> None:
    """A partition's process: parts in, results out, until the flush."""
    child_signals(parent)  # the parent stops it (procs.py)

    def result(out: StreamOutput) -> Result:
        # Only wanted record types (-include/-exclude) are counted or written.
        tables = {k: t for k, t in out.tables(None if write else STREAM_RECORD_COLUMNS).items()
                  if encode.wanted(k)}
        delta = None
        if counting is not None:
            m = MetricsState(counting, partial=True)
            m.add_stream_output(tables, out)
            delta = m.delta()
        if not write:
            return delta, None, out.apps
        encoded: Encoded = {}
        for name, table in tables.items():
            body, sizes = encode_delimited_sized(table)
            encoded[name] = (body.tobytes(), sizes.tolist(),
                             [record_order(r) for r in out.records[name]])
        return delta, encoded, out.apps

    try:
        while True:
            blob = conn.recv_bytes()
            if blob == _FLUSH:
                conn.send(("ok", result(stage.flush())))
                return
            conn.send(("ok", result(stage.update(pickle.loads(blob)))))
    except (EOFError, OSError):  # the parent went away
        return
    except BaseException as e:  # a bug: reported to the parent, never a hang
        conn.send(("fail", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def merge_encoded(parts: list[Encoded]) -> dict[str, tuple[bytes, int]]:
    """The partitions' encoded records of one batch, per type, interleaved into the
    canonical order (`StreamOutput.canonical`: the order one process would write)."""
    out: dict[str, tuple[bytes, int]] = {}
    for name in sorted({n for p in parts for n in p}):
        pieces = []
        for k, p in enumerate(parts):
            if name not in p:
                continue
            body, sizes, keys = p[name]
            pos = 0
            for i, (size, key) in enumerate(zip(sizes, keys, strict=True)):
                pieces.append((key, k, i, body[pos : pos + size]))
                pos += size
        pieces.sort(key=lambda x: (x[0], x[1], x[2]))
        out[name] = (b"".join(x[3] for x in pieces), len(pieces))
    return out


class StreamPool:
    def __init__(self, count: int, detail: bool, fingerprints: frozenset[str],
                 counting: LabelConfig | None, encode: EncodeOptions, write: bool) -> None:
        ctx = multiprocessing.get_context("fork")
        self.count = count
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._outstanding = False  # a batch was sent whose results are not taken yet
        for _ in range(count):
            ours, theirs = ctx.Pipe(duplex=True)
            stage = StreamStage(detail=detail, fingerprints=fingerprints)
            p = ctx.Process(target=_serve, daemon=True,
                            args=(theirs, stage, counting, encode, write, os.getpid()))
            p.start()
            theirs.close()
            self._conns.append(ours)
            self._procs.append(p)

    @property
    def outstanding(self) -> bool:
        """A batch was sent whose results are not taken yet."""
        return self._outstanding

    def update(self, parts: list[bytes] | None) -> list[list[Result]]:
        """Send a batch's parts; the results of the batch sent before (one step behind,
        so the partitions work while the parent takes the next batch from the workers;
        taken before sending, so neither side can block on a full pipe)."""
        if parts is None:
            return []
        groups = [self._collect()] if self._outstanding else []
        self._send(parts)
        self._outstanding = True
        return groups

    def flush(self) -> list[list[Result]]:
        """End of input: the last batch's results, then what the partitions held."""
        groups = [self._collect()] if self._outstanding else []
        self._outstanding = False
        self._send([_FLUSH] * self.count)
        groups.append(self._collect())
        self.close()
        return groups

    def _send(self, blobs: list[bytes]) -> None:
        for conn, blob in zip(self._conns, blobs, strict=True):
            try:
                conn.send_bytes(blob)
            except OSError:
                raise WorkerError("a stream process is gone") from None

    def _collect(self) -> list[Result]:
        outs: list[Result] = []
        for conn in self._conns:
            try:
                status, value = conn.recv()
            except EOFError:
                raise WorkerError("a stream process exited without a result") from None
            if status != "ok":
                raise WorkerError(f"stream process: {value}")
            outs.append(value)
        return outs

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()

