"""The one-way flow for a capture file: source -> decode -> encode -> files, plus stats.

`run_capture` drives it for `net capture`; it owns no parsing or encoding itself.

Parallelism: decoding and encoding are CPU-bound numpy work that threads cannot share
(the GIL), so with `workers > 1` worker *processes* (forked) decode and encode the
batches, batch k on worker k mod workers. Workers send back per batch the encoded,
compressed bytes of every record type (small compared to the packets) and counters;
the parent appends them in batch order, so the files hold the same records as a
single-process run (only the gzip member boundaries differ). Memory stays bounded: the
parent queues at most _WINDOW batches per worker, and a worker blocks on its result
pipe until the parent takes its previous result.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections import Counter, deque
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
from .sources.batch import PacketBatch
from .sources.capture import CaptureError, CaptureReader, Truncation, open_capture, read_batch

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


def _keep_heap() -> None:
    """Ask glibc to keep freed memory instead of returning it to the kernel.

    Each batch allocates and frees the same few large numpy temporaries (megabytes);
    by default glibc serves those with fresh mmaps, so every batch pays page faults
    again. Measured on the 1M-packet bench: system time 0.63 s -> 0.47 s. Not glibc
    (or no ctypes): nothing happens."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 256 << 20)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        pass


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
    _keep_heap()
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
#
# Two ways to share the batches, both in batch order:
# - uncompressed files: the parent walks the file once (`CaptureReader.index`) and
#   hands each batch's file offsets to the workers, which read the bytes themselves;
# - gzip input (no random access): every worker decompresses and walks the whole
#   stream and takes its own share (`CaptureReader.shard`).

_BATCH, _END, _FAIL = "batch", "end", "fail"
_WINDOW = 2  # batches queued per worker, so none waits while the parent writes


def _process(batch: PacketBatch, opts: CaptureOptions) -> tuple[str, Encoded, RunStats]:
    decoded = decode_batch(batch)
    stats = RunStats()
    stats.add(decoded)
    return _BATCH, encode_batch(decoded, opts.encode), stats


def _worker(opts: CaptureOptions, index: int, count: int, tasks: Any, conn: Connection) -> None:
    """Decode and encode batches, send each result in order; report failures, never hang."""
    try:
        if tasks is not None:  # indexed: batches named by the parent
            scratch = bytearray(CHUNK_BYTES)
            with open(opts.read, "rb") as f:
                for idx in iter(tasks.get, None):
                    conn.send(_process(read_batch(f, idx, scratch), opts))
        else:  # sharded: batches index, index + count, ...
            with open_capture(opts.read, batch_packets=65536, chunk_bytes=CHUNK_BYTES) as src:
                for batch in src.shard(index, count):
                    conn.send(_process(batch, opts))
                conn.send((_END, src.truncation, src.batches))
    except CaptureError as e:
        conn.send((_FAIL, str(e), ""))
    except BaseException as e:
        conn.send((_FAIL, f"worker {index}: {type(e).__name__}: {e}", traceback.format_exc()))
    finally:
        conn.close()


def _receive(conn: Connection, worker: int) -> Any:
    try:
        msg = conn.recv()
    except EOFError:
        raise RuntimeError(f"worker {worker} exited without a result") from None
    if msg[0] == _FAIL:
        if msg[2]:
            raise RuntimeError(msg[1] + "\n" + msg[2])
        raise CaptureError(msg[1])
    return msg


def _indexed(src: CaptureReader, tasks: list[Any], conns: list[Connection]
             ) -> Iterator[tuple[Encoded, RunStats]]:
    count = len(conns)
    pending: deque[int] = deque()  # worker of each batch sent and not yet received
    for k, idx in enumerate(src.index()):
        if len(pending) >= _WINDOW * count:
            w = pending.popleft()
            yield _receive(conns[w], w)[1:]
        tasks[k % count].put(idx)
        pending.append(k % count)
    for q in tasks:
        q.put(None)
    while pending:
        w = pending.popleft()
        yield _receive(conns[w], w)[1:]


def _sharded(conns: list[Connection], out: RunStats) -> Iterator[tuple[Encoded, RunStats]]:
    count = len(conns)
    k = 0
    while True:
        msg = _receive(conns[k % count], k % count)
        if msg[0] != _END:
            yield msg[1:]
            k += 1
            continue
        # Worker k mod count has no batch k: the input ended there. Collect the others'
        # end messages (one of them may still owe nothing; all say the same).
        out.truncation = msg[1]
        for i in range(count):
            if i != k % count:
                while _receive(conns[i], i)[0] != _END:
                    pass
        return


def _run_parallel(opts: CaptureOptions, writer: NcapWriter, count: int) -> RunStats:
    # Open here first, so an unreadable input fails fast with its one-line error.
    src = open_capture(opts.read, batch_packets=65536, chunk_bytes=CHUNK_BYTES)
    warm_tables()  # built once, shared with the forked workers
    ctx = multiprocessing.get_context("fork")
    indexed = not src.compressed
    procs: list[Any] = []
    conns: list[Connection] = []
    tasks: list[Any] = []
    stats = RunStats()
    try:
        for i in range(count):
            q = ctx.Queue() if indexed else None
            if q is not None:
                q.cancel_join_thread()  # never block our exit on undelivered tasks
                tasks.append(q)
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker, args=(opts, i, count, q, child), daemon=True)
            p.start()
            child.close()
            procs.append(p)
            conns.append(parent)
        results = _indexed(src, tasks, conns) if indexed else _sharded(conns, stats)
        for encoded, batch_stats in results:
            writer.append(encoded)
            stats.merge(batch_stats)
        if indexed:
            stats.truncation = src.truncation
    finally:
        src.close()
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
        for c in conns:
            c.close()
    return stats
