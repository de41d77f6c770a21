"""The one-way flow for a capture file: source -> decode -> encode -> files, plus stats.

`run_capture` drives it for `net capture`; it owns no parsing or encoding itself.

Parallelism: decoding and encoding are CPU-bound numpy work that threads cannot share
(the GIL), so with `workers > 1` each worker *process* opens the same file, walks it,
and decodes and encodes only its share of the batches (batch k goes to worker
k mod workers; see `CaptureReader.shard`). Workers send back per batch the encoded,
compressed bytes of every record type (small compared to the packets) and counters;
the parent appends them in batch order, so files are identical to a single-process
run except for gzip member boundaries. Every worker reads the whole input, which costs
little next to decoding. Memory stays bounded: a worker blocks on its pipe until the
parent has taken its previous batch.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from .decode.batch import Decoded, decode_batch
from .decode.errors import describe
from .decode.linktypes import LINKTYPE_NAMES
from .records.render import warm_tables
from .sinks.ncap import Encoded, EncodeOptions, NcapWriter, encode_batch
from .sources.capture import CaptureError, Truncation, open_capture

__all__ = ["CaptureOptions", "RunStats", "run_capture"]

# Below this input size a single process is faster than starting workers.
PARALLEL_MIN_BYTES = 16 << 20
# Bytes read per chunk (a batch never spans chunks): bigger batches spread numpy's
# per-call overhead over more packets; memory per process grows with it.
CHUNK_BYTES = 8 << 20  # measured: 8 MiB beat 4 MiB by ~8% on the 1M-packet bench


@dataclass
class RunStats:
    packets: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)  # "protocol/reason" -> packets
    linktypes: Counter[str] = field(default_factory=Counter)
    records: dict[str, int] = field(default_factory=dict)
    truncation: Truncation | None = None
    workers: int = 1

    def add(self, d: Decoded) -> None:
        b = d.batch
        self.packets += len(b)
        self.bytes += int(b.wirelen.sum())
        codes, counts = np.unique(d.error[d.error > 0], return_counts=True)
        for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
            self.errors[describe(c)] += k
        lts, counts = np.unique(b.linktype, return_counts=True)
        for lt, k in zip(lts.tolist(), counts.tolist(), strict=True):
            self.linktypes[LINKTYPE_NAMES.get(lt, f"linktype_{lt}")] += k

    def merge(self, other: RunStats) -> None:
        self.packets += other.packets
        self.bytes += other.bytes
        self.errors.update(other.errors)
        self.linktypes.update(other.linktypes)


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    read: str
    out: str
    encode: EncodeOptions = EncodeOptions()
    workers: int = 0  # 0: one per CPU (for inputs of PARALLEL_MIN_BYTES or more)


def _workers(opts: CaptureOptions) -> int:
    n = opts.workers or min(os.cpu_count() or 1, 8)
    if n > 1 and opts.workers == 0:
        try:
            if os.path.getsize(opts.read) < PARALLEL_MIN_BYTES:
                return 1
        except OSError:
            return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, n)


def run_capture(opts: CaptureOptions) -> RunStats:
    """Decode a capture file into audit-record files. Raises CaptureError if the input
    is not a readable capture; a cut or damaged tail is reported in `truncation`."""
    t0 = time.perf_counter()
    writer = NcapWriter(opts.out, opts.read, opts.encode)
    n = _workers(opts)
    try:
        stats = _run_single(opts, writer) if n == 1 else _run_parallel(opts, writer, n)
    except BaseException:
        writer.abort()
        raise
    stats.records = writer.close()
    stats.workers = n
    stats.seconds = time.perf_counter() - t0
    return stats


def _run_single(opts: CaptureOptions, writer: NcapWriter) -> RunStats:
    stats = RunStats()
    with open_capture(opts.read, batch_packets=65536, chunk_bytes=CHUNK_BYTES) as src:
        for batch in src:
            decoded = decode_batch(batch)
            writer.write(decoded)
            stats.add(decoded)
        stats.truncation = src.truncation
    return stats


# -- parallel ---------------------------------------------------------------------------

_BATCH, _END, _FAIL = "batch", "end", "fail"


def _worker(opts: CaptureOptions, index: int, count: int, conn: Connection) -> None:
    """Decode and encode batches index, index+count, ...; send each result in order."""
    try:
        with open_capture(opts.read, batch_packets=65536, chunk_bytes=CHUNK_BYTES) as src:
            for batch in src.shard(index, count):
                decoded = decode_batch(batch)
                stats = RunStats()
                stats.add(decoded)
                conn.send((_BATCH, encode_batch(decoded, opts.encode), stats))
            conn.send((_END, src.truncation, src.batches))
    except CaptureError as e:
        conn.send((_FAIL, str(e), ""))
    except BaseException as e:  # report, never hang the parent
        conn.send((_FAIL, f"worker {index}: {type(e).__name__}: {e}", traceback.format_exc()))
    finally:
        conn.close()


def _results(conns: list[Connection]) -> Iterator[tuple[Encoded, RunStats] | Truncation | None]:
    """Worker results in batch order; finally the input's truncation (or None)."""
    count = len(conns)
    done: list[tuple[Truncation | None, int] | None] = [None] * count
    k = 0
    while True:
        conn = conns[k % count]
        if done[k % count] is None:
            try:
                msg = conn.recv()
            except EOFError:
                raise RuntimeError(f"worker {k % count} exited without a result") from None
            if msg[0] == _FAIL:
                if msg[2]:
                    raise RuntimeError(msg[1] + "\n" + msg[2])
                raise CaptureError(msg[1])
            if msg[0] == _BATCH:
                yield msg[1], msg[2]
                k += 1
                continue
            done[k % count] = (msg[1], msg[2])
        # This worker has no batch number k: the input ended at k batches. The other
        # workers end too; take their last messages.
        for i, conn in enumerate(conns):
            while done[i] is None:
                msg = conn.recv()
                if msg[0] == _FAIL:
                    raise CaptureError(msg[1])
                if msg[0] == _END:
                    done[i] = (msg[1], msg[2])
        yield done[0][0] if done[0] else None
        return


def _run_parallel(opts: CaptureOptions, writer: NcapWriter, count: int) -> RunStats:
    # Open once here so an unreadable input fails fast with its one-line error.
    open_capture(opts.read).close()
    warm_tables()
    ctx = multiprocessing.get_context("fork")
    procs: list[Any] = []
    conns: list[Connection] = []
    stats = RunStats()
    try:
        for i in range(count):
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker, args=(opts, i, count, child), daemon=True)
            p.start()
            child.close()
            procs.append(p)
            conns.append(parent)
        for item in _results(conns):
            if isinstance(item, tuple):
                encoded, batch_stats = item
                writer.append(encoded)
                stats.merge(batch_stats)
            else:
                stats.truncation = item
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
        for c in conns:
            c.close()
    return stats
