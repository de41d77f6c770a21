"""Live capture runs: packets from an interface through the same stages as a file.

One process (a live link's rate is far below what one decoding process takes): each
wakeup's packets are one `PacketBatch`, decoded, counted and written as a file's
batches are. Between batches the packet clock follows the wall clock, so flows and
IP fragments time out on a quiet link too. Audit-record files are flushed every
`flush_seconds` (a killed process leaves them readable up to the last flush) and
closed cleanly when `stop` is set (SIGINT/SIGTERM).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .flows.table import ConnectionTable
from .metrics.state import LabelConfig, MetricsState
from .pipeline import CaptureOptions, RunStats, Sink, decode_columns, process_batch
from .sinks.files import check_dir
from .sinks.ncap import NcapWriter
from .sinks.options import EncodeOptions
from .sources.live import LiveCapture

__all__ = ["LiveOptions", "open_live", "run_live"]

# How long one wait for packets lasts at most: the bound on how late a stop request,
# a flush or the packet clock's advance on a quiet link is handled.
_WAKEUP_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class LiveOptions:
    iface: str
    out: str | None = None  # write audit-record files here
    encode: EncodeOptions = EncodeOptions()
    snaplen: int = 1514
    promisc: bool = True
    bpf: str | None = None
    flush_seconds: float = 5.0
    max_flows: int = 100_000
    labels: LabelConfig | None = None


def open_live(opts: LiveOptions) -> LiveCapture:
    """Open the interface (raises LiveError: unknown interface, no permission, bad
    -bpf; OSError: an -out directory that cannot be made or written), before anything
    else starts: a capture that runs for days should not fail at its first record."""
    if opts.out is not None:
        check_dir(opts.out)
    return LiveCapture(opts.iface, opts.snaplen, opts.promisc, opts.bpf)


def run_live(src: LiveCapture, opts: LiveOptions, state: MetricsState | None,
             stop: threading.Event) -> RunStats:
    """Capture until `stop` is set; close `src`. Returns what was processed."""
    # Batches are encoded uncompressed; the writer compresses what it holds per flush.
    raw = opts.encode._replace(compress=False)
    copts = CaptureOptions(read=opts.iface, out=opts.out, encode=raw, workers=1,
                           metrics=state is not None, labels=opts.labels,
                           max_flows=opts.max_flows)
    writer = (NcapWriter(opts.out, opts.iface, opts.encode, live=True)
              if opts.out is not None else None)
    sink = Sink(writer, state, ConnectionTable(opts.max_flows), raw, decode_columns(copts),
                lag=False)  # no later batch may come to release a held one
    stats = RunStats()
    t0 = time.perf_counter()
    next_flush = time.monotonic() + opts.flush_seconds
    try:
        while not stop.is_set():
            batch = src.read(_WAKEUP_SECONDS)
            if batch is not None:
                _, encoded, got, delta, flows, segs, frags = process_batch(batch, copts, True)
                sink.take(encoded, delta, flows, segs, frags)
                stats.merge(got)
            now = time.time_ns()
            sink.advance(now)
            if state is not None:
                # Behind by how long the batch's last packet waited; nothing waits when
                # none came.
                lag = (now - int(batch.ts.max())) / 1e9 if batch is not None else 0.0
                state.set_capture_health(opts.iface, *src.stats(), lag_seconds=max(lag, 0.0))
            if writer is not None and time.monotonic() >= next_flush:
                writer.flush()
                next_flush = time.monotonic() + opts.flush_seconds
        sink.finish()
        stats.errors.update(sink.errors)
    finally:
        sink.close()
        if writer is not None:
            stats.records = writer.close()
        src.close()
        stats.seconds = time.perf_counter() - t0
    return stats
