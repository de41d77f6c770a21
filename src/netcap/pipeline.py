"""The one-way flow for a capture file: source -> decode -> encode -> files, plus stats.

`run_capture` drives it for `net capture`; it owns no parsing or encoding itself.

Parallelism: decoding and encoding are CPU-bound numpy work that threads cannot share
(the GIL), so with `workers > 1` worker *processes* (forked) decode and encode the
input in turns (see below). Workers send back per batch the encoded,
compressed bytes of every record type (small compared to the packets), counters and the
stream segments (of an uncompressed file, without their payloads: where they are in
the file, which the stream process reads itself, `_FilePayloads`);
the parent appends them in input order, so the files hold the same records as a
single-process run (only the gzip member boundaries differ). Memory stays bounded: a
worker holds one chunk, and blocks on its result pipe when the parent holds `_AHEAD`
chunks of its results that are not due yet.
"""

from __future__ import annotations

import mmap
import os
import signal
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, cast

import numpy as np

from .analyzers.datagrams import ANALYZER_RECORDS
from .clock import PacketClock
from .decode.batch import Decoded, decode_batch
from .decode.errors import describe
from .decode.linktypes import LINKTYPE_NAMES
from .decode.packets import Columns
from .flows.extract import FlowBatch, summarize
from .flows.table import Apps, ConnectionTable, Ended
from .metrics.state import STREAM_RECORD_COLUMNS, LabelConfig, MetricsState, metric_columns
from .procs import Helper, Pipe, WorkerError, child_signals, pipe, wait
from .reassembly.ip import Datagram, Defragmenter, Fragment, decode_datagrams, fragments
from .reassembly.kinds import FINGERPRINTS, KIND_RECORDS, STREAM_RECORDS
from .records.derive import add_payload_columns
from .records.table import RecordTable
from .sinks.options import Encoded, EncodeOptions
from .sources.batch import PAD, PacketBatch
from .sources.capture import (
    CaptureError,
    Truncation,
    open_capture,
    walk_chunk,
    with_clock_errors,
)

if TYPE_CHECKING:  # loaded where used: a job without files or stream analyzers
    # (counting alone) never loads the encoder, the writer or the stream stage
    from .reassembly.streams import SegmentBatch, StreamOutput, StreamStage
    from .sinks.ncap import NcapWriter

__all__ = ["CaptureOptions", "RunStats", "Sink", "WorkerError", "counted", "run_capture",
           "runs_analyzers", "stream_segments"]

# Below this input size a single process is faster than starting workers.
PARALLEL_MIN_BYTES = 16 << 20
# Bytes read per chunk (a batch never spans chunks): bigger batches spread the per-batch
# overhead over more packets; memory per process grows with it. 1M bench, `net export
# -exit`, wall / peak RSS sum: 8 MiB 1.08 s / 221 MB, 12 MiB -4% / 255 MB, 16 MiB 1.00 s /
# 290 MB (docs/performance.md): 8 MiB keeps the peak below Suricata's.
CHUNK_BYTES = 8 << 20
_BATCH_PACKETS = 65536


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
    interrupted: bool = False  # the stop event ended reading before the input's end

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


class CaptureOptions(NamedTuple):
    read: str
    out: str | None  # where to write audit-record files; None: write none
    encode: EncodeOptions = EncodeOptions()
    workers: int = 0  # 0: one per CPU (for inputs of PARALLEL_MIN_BYTES or more)
    metrics: bool = False  # also count metrics (into the state given to run_capture)
    labels: LabelConfig | None = None  # opt-in labels for the metrics counted in workers
    max_flows: int = 100_000  # connection table size (past it, least recent flows end)
    bpf: str | None = None  # tcpdump-syntax filter: only matching packets are decoded


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
    if not hasattr(os, "fork"):
        return 1
    return max(1, n)


def run_capture(opts: CaptureOptions, state: MetricsState | None = None,
                stop: threading.Event | None = None) -> RunStats:
    """Decode a capture file into audit-record files (if opts.out) and metrics (into
    `state`, if opts.metrics). Raises CaptureError if the input is not a readable
    capture; a cut or damaged tail is reported in `truncation`.

    `stop` (set by SIGINT/SIGTERM) is checked after every batch: reading ends there
    (`interrupted`), worker processes are ended, and the stages and files are finished
    as at the end of the input, so every file is complete up to its last record."""
    t0 = time.perf_counter()
    _keep_heap()
    writer = None
    if opts.out is not None:
        from .sinks.ncap import NcapWriter  # before any fork: the workers encode

        writer = NcapWriter(opts.out, opts.read, opts.encode)
    sink = Sink(writer, state if opts.metrics else None, ConnectionTable(opts.max_flows),
                 opts.encode, decode_columns(opts))
    n = _workers(opts)
    stop = stop or threading.Event()
    try:
        stats = _run_single(opts, sink, stop) if n == 1 else _run_parallel(opts, sink, n, stop)
        sink.finish()
    except BaseException:
        sink.close()
        if writer is not None:
            writer.abort()
        raise
    stats.errors.update(sink.errors)
    stats.records = writer.close() if writer is not None else {}
    stats.workers = n
    stats.seconds = time.perf_counter() - t0
    return stats


class Outlet(Protocol):
    """Where the stream side's results go: the records and metrics it makes, the
    protocols it recognised and the flows of reassembled datagrams (for the connection
    table), its decode errors. `Sink` takes them at once; in a stream process,
    `_Recorder` keeps them for the parent, in the same order."""

    def write(self, encoded: Encoded) -> None: ...
    def recognised(self, apps: Apps) -> None: ...
    def datagram_flows(self, fb: FlowBatch) -> None: ...
    def decode_errors(self, errors: Counter[str]) -> None: ...
    def reassembled(self, d: Decoded, errors: Counter[str]) -> None: ...
    def streamed(self, tables: dict[str, RecordTable], out: StreamOutput) -> None: ...



# A stream output, the tables the metrics read of it and its records encoded (None: not
# wanted)
_Made: TypeAlias = "tuple[StreamOutput, dict[str, RecordTable] | None, Encoded | None]"


@dataclass
class StreamSide:
    """The stages that span batches over reassembled data, run in input order: IP
    defragmentation and the stream analyzers (with the records decoded from reassembled
    datagrams). What they make goes to `out`."""

    out: Outlet
    writes: bool  # records are written (files): complete, encoded by the stage as made
    counts: bool  # metrics are counted
    encode: EncodeOptions
    columns: Columns
    fingerprints: frozenset[str]
    # One step behind, so a batch's stream records follow the records its decoding made
    # (as they did when the stage ran in processes of its own: files keep their order);
    # off for replay and backfill, where a step is a slice of packet time.
    lag: bool = True
    # None when no stream analyzer's records are wanted (then no segments come)
    streams: StreamStage | None = field(init=False, default=None)
    _held: _Made | None = None  # what the last stream output made, delivered one step behind
    defrag: Defragmenter = field(default_factory=Defragmenter)

    def __post_init__(self) -> None:
        if _stream_kinds(self.encode):  # made before the workers fork (it loads the
            # analyzers: a job without them never does)
            from .reassembly.streams import StreamStage

            written = frozenset(n for n in STREAM_RECORDS
                                if self.encode.wanted(n)) if self.writes else None
            # Records kept whole only for the metrics' tables (`_made`).
            self.streams = StreamStage(detail=self.writes, fingerprints=self.fingerprints,
                                       encode=written, keep=self.counts)

    def take_segments(self, segs: SegmentBatch | None) -> None:
        if segs is not None:
            self._stream(segs)

    def take_fragments(self, frags: list[Fragment] | None) -> None:
        if frags is not None:
            self._datagrams(self.defrag.add(frags))

    def advance(self, now: int) -> None:
        self.defrag.advance(now)
        self._datagrams([])

    def finish(self) -> None:
        self.defrag.flush()
        self._datagrams([])
        if self._held is not None:
            self._deliver(self._held)
            self._held = None
        if self.streams is not None:
            flushed = self.streams.flush()
            self.out.recognised(flushed.apps)
            self._deliver(self._made(flushed))

    def _stream(self, segs: SegmentBatch) -> None:
        """Segments into the stream stage (compiled: one call per batch)."""
        if self.streams is None:  # invariant (not input): segments come only for it
            raise TypeError("segments without a stream stage")
        out = self.streams.update(segs)
        self.out.recognised(out.apps)
        made = self._made(out)
        if not self.lag:
            self._deliver(made)
            return
        if self._held is not None:
            self._deliver(self._held)
        self._held = made

    def _datagrams(self, done: list[Datagram]) -> None:
        """Reassembled datagrams: decoded from the transport layer up (their link and
        IP layers were decoded and counted with their fragments)."""
        errors = Counter(self.defrag.errors)
        self.defrag.errors.clear()
        if errors:
            self.out.decode_errors(errors)
        if not done and not errors:
            return
        upper = decode_datagrams(done, self.columns, runs_analyzers(self.encode))
        batch = upper.batch
        if self.writes:
            from .sinks.ncap import encode_batch

            self.out.write(encode_batch(upper, self.encode))
        if self.counts:
            if self.encode.entropy:
                for table in upper.tables.values():
                    add_payload_columns(table, batch.data, False, True)
            self.out.reassembled(counted(upper, self.encode), errors)
        if not done:
            return
        segs = stream_segments(upper, self.encode, not self.writes)
        if segs is not None:
            self._stream(segs)
        flows = summarize(upper) if self.encode.wanted("Connection") else None
        if flows is not None:
            self.out.datagram_flows(flows)

    def _made(self, out: StreamOutput) -> _Made:
        """What a stream output gives the outlet: the tables the metrics read (made at
        once, while its records are in the cache), and the file bytes of the records
        the stage encoded as it made them."""
        tables = None
        if self.counts:  # as tables, only the columns the metrics read
            tables = {k: v for k, v in out.tables(STREAM_RECORD_COLUMNS).items()
                      if self.encode.wanted(k)}
        encoded = None
        if self.writes:
            from .sinks.ncap import file_bytes

            encoded = {k: file_bytes(b"".join(parts), len(parts), self.encode)
                       for k, parts in out.encoded.items() if parts}
        return out, tables, encoded

    def _deliver(self, made: _Made) -> None:
        out, tables, encoded = made
        if tables is not None:
            self.out.streamed(tables, out)
        if encoded is not None:
            self.out.write(encoded)


@dataclass
class Sink:
    """Where decoded batches go, in input order: files and/or metrics, and the stages
    that span batches and workers (so run sequentially): the connection table here, and
    the stream side (`StreamSide`) here too, unless it runs in a process of its own
    (`side` None; its results then come as recorded steps, `take_remote`)."""

    writer: NcapWriter | None
    state: MetricsState | None
    flows: ConnectionTable
    encode: EncodeOptions
    columns: Columns  # what decoding builds (None: everything, for files)
    lag: bool = True  # see StreamSide.lag
    # None: the stream side runs in a process of its own (`_run_parallel` sets it so).
    side: StreamSide | None = field(init=False, default=None)
    errors: Counter[str] = field(default_factory=Counter)  # defragmentation's, for stats
    # Protocols the stream analyzers recognised, for the next connection-table update
    # (the batch's own: its new connections are in the table only after it).
    _apps: bytearray = field(default_factory=bytearray)
    # Flows of the datagrams reassembled from a batch's fragments, merged with the
    # batch's own flows in one update: as if their packets had been in the batch. Merged
    # after it, they came after its timeouts, which end flows by the batch's latest
    # packet time: a DNS response in fragments 83 ms after its query then made a
    # connection of its own whenever the batch ran on past the query's idle timeout, so
    # the records depended on where batches (and workers' chunks) happened to end.
    _reassembled: list[FlowBatch] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.side = self.stream_side(self)

    def stream_side(self, out: Outlet) -> StreamSide:
        """The stream side for this sink's options, its results going to `out`."""
        # Records only counted (no files): the analyzers skip what no metric reads.
        labels = self.state.config.extra.get("nc_tls_hellos", ()) if self.state else ()
        writes = self.writer is not None
        return StreamSide(out, writes, self.state is not None, self.encode, self.columns,
                          FINGERPRINTS if writes else FINGERPRINTS & frozenset(labels),
                          self.lag)

    def close(self) -> None:
        """Nothing to release: the stages run in this process (kept for the callers'
        error path)."""

    def take(self, encoded: Encoded, delta: dict[str, Any] | None,
             flows: FlowBatch | None, segs: SegmentBatch | None,
             frags: list[Fragment] | None) -> None:
        if self.side is None:  # invariant (not input)
            raise TypeError("the stream side runs elsewhere")
        self._packets(encoded, delta)
        self.side.take_segments(segs)
        self.side.take_fragments(frags)
        self._flows(flows)

    def take_remote(self, encoded: Encoded, delta: dict[str, Any] | None,
                    flows: FlowBatch | None, steps: tuple[Steps, Steps]) -> None:
        """`take` with the stream side in a process of its own: `steps` are what it
        made of the batch's segments and of its fragments, replayed in the same order
        as `take` would have made them here."""
        self._packets(encoded, delta)
        self.replay(steps[0])
        self.replay(steps[1])
        self._flows(flows)

    def replay(self, steps: Steps) -> None:
        for kind, value in steps:
            if kind == "write":
                self.write(value)
            elif kind == "metrics":
                if self.state is not None:
                    self.state.merge(value)
            elif kind == "apps":
                self.recognised(value)
            elif kind == "flows":
                self.datagram_flows(value)
            else:
                self.decode_errors(value)

    def advance(self, now: int) -> None:
        """The packet clock moved to `now` (wall time, in a live capture): flows and
        fragments that timed out by then end, though no packet came to say so."""
        if self.side is not None:
            self.side.advance(now)
        if self.encode.wanted("Connection"):
            self._ended(self.flows.advance(now))

    def finish(self) -> None:
        """The end of the input (a remote stream side's last steps replayed already)."""
        if self.side is not None:
            self.side.finish()
        self._flows(None)
        self.flows.recognise(self._apps)
        self._apps.clear()
        self._ended(self.flows.flush())

    def _packets(self, encoded: Encoded, delta: dict[str, Any] | None) -> None:
        if self.writer is not None:
            self.writer.append(encoded)
        if self.state is not None and delta is not None:
            self.state.merge(delta)

    def _flows(self, fb: FlowBatch | None) -> None:
        """A batch's flows, with those of the datagrams reassembled from its fragments,
        into the connection table."""
        parts = ([fb] if fb is not None else []) + self._reassembled
        self._reassembled = []
        if parts:
            self._ended(self.flows.update(FlowBatch.concat(parts), self._apps))
            self._apps.clear()

    def _ended(self, ended: Ended | None) -> None:
        if self.state is not None:
            self.state.add_connections(ended, self.flows)
        if ended is not None and self.writer is not None and self.encode.wanted("Connection"):
            from .sinks.ncap import encode_table

            self.writer.append({"Connection": encode_table(ended.records, self.encode)})

    # -- Outlet: the stream side's results, here at once --------------------------------

    def write(self, encoded: Encoded) -> None:
        if self.writer is not None:
            self.writer.append(encoded)

    def recognised(self, apps: Apps) -> None:
        if apps and self.encode.wanted("Connection"):  # else no table updates take them
            self._apps += apps

    def datagram_flows(self, fb: FlowBatch) -> None:
        self._reassembled.append(fb)

    def decode_errors(self, errors: Counter[str]) -> None:
        self.errors.update(errors)

    def reassembled(self, d: Decoded, errors: Counter[str]) -> None:
        if self.state is not None:
            self.state.add_reassembled(d, errors)

    def streamed(self, tables: dict[str, RecordTable], out: StreamOutput) -> None:
        if self.state is not None:
            self.state.add_stream_output(tables, out)


Steps = list[tuple[str, Any]]


class _Recorder:
    """The Outlet of a stream side in a process of its own: what it makes, kept as steps
    for the parent's `Sink.replay`, in order. Metrics are counted here into a partial
    state, sent as its delta before the next other step (the order matters to DNS
    latency pairing, as with the workers' deltas)."""

    def __init__(self, labels: LabelConfig | None, counts: bool, connections: bool) -> None:
        self.labels = labels
        self.counts = counts
        self.connections = connections
        self.state = MetricsState(labels, partial=True) if counts else None
        self.dirty = False
        self.steps: Steps = []

    def cut(self) -> Steps:
        """The steps so far (the metrics counted included); then none."""
        self._metrics()
        steps, self.steps = self.steps, []
        return steps

    def _metrics(self) -> None:
        if self.dirty and self.state is not None:
            self.steps.append(("metrics", self.state.delta()))
            self.state = MetricsState(self.labels, partial=True)
            self.dirty = False

    def _step(self, kind: str, value: Any) -> None:
        self._metrics()
        self.steps.append((kind, value))

    def write(self, encoded: Encoded) -> None:
        self._step("write", encoded)

    def recognised(self, apps: Apps) -> None:
        if apps and self.connections:
            self._step("apps", apps)

    def datagram_flows(self, fb: FlowBatch) -> None:
        self._step("flows", fb)

    def decode_errors(self, errors: Counter[str]) -> None:
        self._step("errors", errors)

    def reassembled(self, d: Decoded, errors: Counter[str]) -> None:
        if self.state is not None:
            self.state.add_reassembled(d, errors)
            self.dirty = True

    def streamed(self, tables: dict[str, RecordTable], out: StreamOutput) -> None:
        if self.state is not None:
            self.state.add_stream_output(tables, out)
            self.dirty = True


def decode_columns(opts: CaptureOptions) -> Columns:
    """Without files to write, only the columns the metrics read are built."""
    if opts.out is not None:
        return None
    return counting_columns(opts.labels or LabelConfig(), opts.encode)


def counting_columns(labels: LabelConfig, encode: EncodeOptions) -> dict[str, frozenset[str]]:
    """The columns to decode for counting alone: the metrics' and those of the stages
    that run for the wanted record types (-include/-exclude)."""
    return metric_columns(labels, encode.entropy, flows=encode.wanted("Connection"),
                          datagrams=runs_analyzers(encode),
                          streams=bool(_stream_kinds(encode)))


def runs_analyzers(encode: EncodeOptions) -> bool:
    """Whether any record type of the datagram analyzers is wanted (-include/-exclude)."""
    return any(encode.wanted(name) for name in ANALYZER_RECORDS)


def stream_segments(decoded: Decoded, encode: EncodeOptions, counting_only: bool,
                    in_place: bool = False) -> SegmentBatch | None:
    """The segments the wanted stream analyzers (-include/-exclude) need from a batch
    (with `counting_only`, no records written: HTTP body bytes are not shipped; with
    `in_place`, their payloads are read from the batch's buffer: see `segments`)."""
    kinds = _stream_kinds(encode)
    if not kinds:
        return None
    from .reassembly.streams import segments

    return segments(decoded, kinds, counting_only, in_place)


def _stream_kinds(encode: EncodeOptions) -> frozenset[str]:
    """The stream analyzers whose records are wanted (-include/-exclude)."""
    return frozenset(k for k, names in KIND_RECORDS.items()
                     if any(encode.wanted(n) for n in names))


def counted(decoded: Decoded, encode: EncodeOptions) -> Decoded:
    """The decoded batch as the metrics count it: without excluded record types."""
    if encode.include is None and not encode.exclude:
        return decoded
    return Decoded(decoded.batch, {k: v for k, v in decoded.tables.items() if encode.wanted(k)},
                   decoded.error)


def process_batch(batch: PacketBatch, opts: CaptureOptions, in_place: bool = False
                  ) -> tuple[str, Encoded, RunStats, dict[str, Any] | None, FlowBatch | None,
                             SegmentBatch | None, list[Fragment] | None]:
    """Decode one batch; encode it (if writing) and count its metrics (if counting).
    `in_place`: the stream segments' payloads are left in the batch's buffer (the
    caller uses them before the buffer is reused, or sends where they are)."""
    t0 = time.perf_counter()
    if opts.bpf:
        from .sources.bpf import bpf_filter  # libpcap: loaded only for -bpf

        batch = bpf_filter(batch, opts.bpf)
    decoded = decode_batch(batch, columns=decode_columns(opts), analyze=runs_analyzers(opts.encode))
    t1 = time.perf_counter()
    stats = RunStats()
    stats.add(decoded)
    encoded: Encoded = {}
    if opts.out is not None:
        from .sinks.ncap import encode_batch

        encoded = encode_batch(decoded, opts.encode)
    t2 = time.perf_counter()
    delta = None
    if opts.metrics:
        if opts.encode.entropy:  # for the entropy histograms (files got theirs above)
            for table in decoded.tables.values():
                add_payload_columns(table, decoded.batch.data, False, True)
        m = MetricsState(opts.labels, partial=True)
        m.add_batch(counted(decoded, opts.encode))
        m.add_stage_time("decode", t1 - t0)
        if opts.out is not None:
            m.add_stage_time("write", t2 - t1)
        m.add_stage_time("metrics", time.perf_counter() - t2)
        delta = m.delta()
    flows = summarize(decoded) if opts.encode.wanted("Connection") else None
    segs = stream_segments(decoded, opts.encode, opts.out is None, in_place)
    return _BATCH, encoded, stats, delta, flows, segs, fragments(decoded)


def _run_single(opts: CaptureOptions, sink: Sink, stop: threading.Event) -> RunStats:
    stats = RunStats()
    # copy=False: each batch is used up before the next is read, so it may alias the
    # reader's buffer.
    with open_capture(opts.read, batch_packets=_BATCH_PACKETS, chunk_bytes=CHUNK_BYTES,
                      copy=False, clock=True) as src:
        for batch in src:
            _, encoded, batch_stats, delta, flows, segs, frags = process_batch(batch, opts,
                                                                               True)
            sink.take(encoded, delta, flows, segs, frags)
            stats.merge(batch_stats)
            if stop.is_set():
                stats.interrupted = True
                return stats
        stats.truncation = src.truncation
    return stats


# -- parallel ---------------------------------------------------------------------------
#
# Two ways to share the work, both delivering results in input order:
# - uncompressed files: chunks of about CHUNK_BYTES, taken in turn by whichever worker
#   is free (the turn: one shared pipe that only the holder of a one-byte lock reads).
#   The worker holding the turn for chunk c reads it, walks its records (the only
#   sequential step, cheap), puts the next chunk's file offset and the parser state
#   (pcapng sections and interfaces) back for the next taker, and only then decodes
#   and encodes. So the file is read and walked once in all, the walk of one chunk
#   overlaps the decoding of the others, and a worker slowed by another process on
#   its CPU (the parent's merging runs beside one of them) takes fewer chunks instead
#   of holding the other up (a fixed ring did: "Where the cores go idle" in
#   docs/performance.md). Results carry their chunk's number, by which the parent and
#   the stream process put them back in input order;
# - gzip input (no random access): every worker decompresses and walks the whole
#   stream and takes its own share of the batches (`CaptureReader.shard`).

_BATCH, _CHUNK, _END, _FAIL, _DONE = "batch", "chunk", "end", "fail", "done"


def _changed(path: str) -> CaptureError:
    """The input was cut short while a parallel run read it (see `_FilePayloads`, and
    `_run_parallel` for a helper that died of it)."""
    return CaptureError(f"{path}: the input file changed while it was read")


class _FilePayloads:
    """The stream process's reader of the segments' payloads from the input file.

    The payloads are most of what a relay worker would send (on the 1M-packet bench 206
    of 258 MB: HTTP text bodies, TLS handshakes), and their receiver runs the stream
    stage, the serial step. They are in the file already, which the workers have just
    read (so it is in the page cache): a worker sends where each payload is
    (`in_file`), and this process reads each batch's span of the file where it is, in
    its own read-only mapping of the file (as the workers walk it): mapping the pages
    costs about half of copying them out (`walk_chunk`), and the analyzers then read
    the page cache's bytes once instead of twice. Each span is checked against the
    file's size first: a file cut short while it is read is an error. The pages of a
    batch are let go once the next one is read (the page cache keeps them), so the
    mapping adds about a batch's span to this process's memory. A file that cannot be
    mapped is read with `pread` into a buffer reused batch after batch."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self.buf = bytearray()
        try:
            self.mapped: mmap.mmap | None = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # empty, or not mappable (a pipe, special file)
            self.mapped = None
        self.held = (0, 0)  # the pages of the last span read through the mapping

    def land(self, segs: SegmentBatch | None) -> SegmentBatch | None:
        if segs is None or segs.payload is not None or segs.at is None:
            return segs
        shipped = segs.size > 0
        if not shipped.any():
            segs.payload, segs.at = b"", np.zeros_like(segs.at)
            return segs
        lo = int(segs.at[shipped].min())
        n = int((segs.at + segs.size)[shipped].max()) - lo
        if self.mapped is not None and lo + n <= len(self.mapped):
            if lo + n > os.fstat(self.fd).st_size:
                raise _changed(self.path)
            self._release()
            self.held = (lo - lo % mmap.PAGESIZE, lo + n)
            view = memoryview(self.mapped)[lo : lo + n]
        else:
            if len(self.buf) < n:
                self.buf = bytearray(n)
            view = memoryview(self.buf)[:n]
            if os.preadv(self.fd, [view], lo) != n:
                raise _changed(self.path)
        segs.payload, segs.at = view, np.where(shipped, segs.at - lo, 0)
        return segs

    def _release(self) -> None:
        """Let the last span's pages go from this process (not from the page cache)."""
        lo, hi = self.held
        if self.mapped is not None and hi > lo:
            self.mapped.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        self.held = (0, 0)

    def close(self) -> None:
        self._release()
        os.close(self.fd)


def in_file(segs: SegmentBatch | None, start: int) -> SegmentBatch | None:
    """A relay worker's segments, read in place from a chunk that starts at file offset
    `start`, as where their payloads are in the file (`_FilePayloads` reads them)."""
    if segs is not None:
        if segs.at is None:  # invariant (not input): read in place
            raise TypeError("segments not read in place")
        segs.payload, segs.at = None, segs.at + start
    return segs


Shipped: TypeAlias = "tuple[SegmentBatch | None, list[Fragment] | None]"


def _relay(opts: CaptureOptions, turns: tuple[Pipe, Pipe], lock: tuple[Pipe, Pipe],
           out: Pipe, side: Pipe | None) -> None:
    """Take chunks when free: take the lock, receive the turn (chunk number, offset,
    parser, packets before, packet clock), map and walk the chunk and judge the
    timestamps, let the lock go and put the next turn back. Each batch's results go to
    the parent, its segments and fragments to the stream process (`side`) if there is
    one, all with the chunk's number; `_DONE` when the input has ended."""
    # Made when first needed (walk_chunk grows it): a mapped file is walked in place
    # but for its last chunks, and zeroing 8 MiB up front cost 2,048 page faults.
    scratch = bytearray()
    with open(opts.read, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            mapped: mmap.mmap | None = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # not mappable (a pipe, special file): read it
            mapped = None
        while True:
            lock[0].take()  # only the lock's holder reads the turns: one reader a message
            token = turns[0].recv()
            if token is None:  # the input has ended: leave the end for the others
                lock[1].give()
                turns[1].send(None)
                break
            chunk, start, parser, first, clock = token
            want = _chunk_bytes(size, start)
            if mapped is not None:
                _map_chunk(mapped, size, start, want)
            walk, scratch = walk_chunk(f, opts.read, start, parser, want, scratch, mapped)
            count = len(walk.cols) if walk.cols is not None else 0
            errors = clock.check(walk.cols.ts) if walk.cols is not None else None
            # The lock goes before the turn is written: a large turn (pcapng interfaces)
            # may fill the pipe, and its next reader must hold the lock to drain it.
            lock[1].give()
            turns[1].send(None if walk.end
                          else (chunk + 1, walk.next, parser, first + count, clock))
            if walk.cols is not None:
                for lo in range(0, count, _BATCH_PACKETS):
                    hi = min(count, lo + _BATCH_PACKETS)
                    batch = with_clock_errors(walk.batch(lo, hi, first + lo), errors, lo, hi)
                    _, encoded, stats, delta, flows, segs, frags = process_batch(batch, opts,
                                                                                 True)
                    shipped = in_file(segs, start), frags
                    if side is not None:
                        side.send((_BATCH, chunk, shipped))
                    out.send((_BATCH, chunk, encoded, stats, delta, flows,
                              None if side is not None else shipped))
            for c in (out, side) if side is not None else (out,):
                c.send((_CHUNK, chunk, walk.stop, walk.end))
            if mapped is not None and walk.next > start:  # done with these pages: keep
                # the RSS at one chunk (the page cache keeps them)
                lo = start - start % mmap.PAGESIZE
                mapped.madvise(mmap.MADV_DONTNEED, lo, walk.next - lo)
    for c in (out, side) if side is not None else (out,):
        with suppress(BrokenPipeError):  # the reader stopped at the last chunk: fine
            c.send((_DONE,))


def _chunk_bytes(size: int, start: int) -> int:
    """How much of the file the chunk at `start` reads: smaller chunks towards the end,
    so the workers finish together."""
    return min(CHUNK_BYTES, max(CHUNK_BYTES // 8, (size - start) // 4))


_MADV_POPULATE_READ = 22  # Linux 5.14; not named in Python's mmap module before 3.13
_can_populate = [True]  # cleared when the kernel does not know it


def _map_chunk(mapped: mmap.mmap, size: int, start: int, want: int) -> None:
    """Map the pages of the chunk about to be walked in one call (MADV_POPULATE_READ)
    instead of a page fault per page as the walk reaches them: walking a chunk of
    unmapped pages took 0.9-1.6 ms, mapping them this way ~0.4 ms (docs/performance.md,
    "Waiting on memory and on each other"; pages the page cache holds as large folios
    take ~0.03 ms either way). The walk is the step the other workers wait for. (Mapped
    here, not ahead of the turn: the turn goes to whichever worker is free, and pages
    mapped for a chunk another worker took were mapped twice. Not for the stream
    process's payload spans, `_FilePayloads`: most of their pages are never read, and
    mapping them all took more time than the faults: +2%.)"""
    if not _can_populate[0]:
        return
    lo = start - start % mmap.PAGESIZE
    n = min(size, start + want + PAD) - lo
    if n <= 0:
        return
    try:
        mapped.madvise(_MADV_POPULATE_READ, lo, n)
    except OSError:  # an older kernel (EINVAL); or the file shrank (EFAULT: reading
        _can_populate[0] = False  # it then raises SIGBUS as before). Not again.


def _shard(opts: CaptureOptions, index: int, count: int, out: Pipe) -> None:
    """Batches index, index + count, ... of a stream every worker reads in full."""
    with open_capture(opts.read, batch_packets=_BATCH_PACKETS, chunk_bytes=CHUNK_BYTES,
                      clock=True) as src:
        for batch in src.shard(index, count):
            out.send(process_batch(batch, opts))
        out.send((_END, src.truncation, src.batches))


class _Flag:
    """A stop event the parent sets across processes: anything sent on the pipe."""

    def __init__(self, conn: Pipe) -> None:
        self.conn = conn

    def is_set(self) -> bool:
        return self.conn.poll()


def _stream_process(opts: CaptureOptions, sink: Sink, feeds: list[Pipe],
                    control: Pipe, out: Pipe) -> None:
    """The stream side in a process of its own: the workers' segments and fragments in
    input order in, per batch the steps it made of them out to the parent (which replays
    them where `Sink.take` would have run them), then those of the end of the input.
    Stopped (`control`), it ends where it is; the parent takes only the end's steps."""
    recorder = _Recorder(opts.labels, sink.state is not None,
                         opts.encode.wanted("Connection"))
    side = sink.stream_side(recorder)
    stop = _Flag(control)
    payloads = _FilePayloads(opts.read)
    try:
        for *_, segs, frags, _ in _relayed(feeds, RunStats(), stop):
            side.take_segments(payloads.land(segs))
            made = recorder.cut()
            side.take_fragments(frags)
            out.send((_BATCH, made, recorder.cut()))
            if stop.is_set():
                break
    except WorkerError:
        if not stop.is_set():  # else the workers were ended with the run: fine
            raise
    finally:
        payloads.close()
    side.finish()
    out.send((_END, recorder.cut()))


def _worker(target: Callable[..., None], args: tuple[Any, ...], out: Pipe,
            index: int, close: list[Pipe], parent: int) -> None:
    """Run a worker body; report failures to the parent, never hang it."""
    child_signals(parent)
    for c in close:  # ends inherited by fork that belong to others
        c.close()
    try:
        target(*args)
    except CaptureError as e:
        out.send((_FAIL, str(e), ""))
    except BaseException as e:
        out.send((_FAIL, f"worker {index}: {type(e).__name__}: {e}", traceback.format_exc()))
    finally:
        out.close()


class _Ended(WorkerError):
    """A worker's pipe closed (it exited) with no message waiting."""


def _receive(conn: Pipe, worker: int) -> Any:
    try:
        msg = conn.recv()
    except EOFError:
        raise _Ended(f"worker {worker} exited without a result") from None
    if msg[0] == _FAIL:
        if msg[2]:
            raise WorkerError(msg[1] + "\n" + msg[2])
        raise CaptureError(msg[1])
    return msg


# A batch's results in input order: (encoded, stats, metrics delta, flows, segments,
# fragments, the stream process's steps for it or None).
Result: TypeAlias = ("tuple[Encoded, RunStats, dict[str, Any] | None, FlowBatch | None, "
                     "SegmentBatch | None, list[Fragment] | None, tuple[Steps, Steps] | None]")


# How often a parent waiting for its workers' results looks at the stop event.
_STOP_POLL = 0.05
# How many whole chunks `_relayed` holds from one worker before it lets that worker's
# pipe fill (a worker far ahead of the chunk due, see there).
_AHEAD = 4


class _Side:
    """The parent's end of the stream process: its messages, received as they come."""

    def __init__(self, conn: Pipe, index: int) -> None:
        self.conn = conn
        self.index = index
        self.held: deque[Any] = deque()
        self.open = True  # its end of the input not received yet

    def receive(self) -> None:
        msg = _receive(self.conn, self.index)
        self.open = msg[0] != _END
        self.held.append(msg)

    def end(self) -> Steps:
        """The steps of the end of the input (those of batches not taken are dropped:
        the run stopped before them)."""
        while True:
            if not self.held:
                self.receive()
            msg = self.held.popleft()
            if msg[0] == _END:
                return cast(Steps, msg[1])


def _relayed(outs: list[Pipe], stats: RunStats, stop: threading.Event | _Flag,
             side: _Side | None = None) -> Iterator[Any]:
    """Results in input order (`Result`; in the stream process, the same tuple with the
    segments and fragments set). Chunk c's messages come from whichever worker took it
    (they carry its number); each worker's come in the order it took its chunks, so
    chunk c is at the head of one worker's queue once its first message is in. Every
    worker's pipe is drained as soon as it has data and kept until its chunk is due,
    but for a worker `_AHEAD` chunks ahead of the one due: its pipe then fills and it
    waits (it sends outside the turn's lock, so the others go on), which bounds what is
    held here however far one worker falls behind. With a stream process (`side`), its
    pipe is drained the same way, and each batch waits for its steps. A worker whose
    pipe ends before it said the input had ended (`_DONE`) died, maybe holding the
    turn: an error, not a wait."""
    count = len(outs)
    held: list[deque[Any]] = [deque() for _ in range(count)]
    open_ = list(outs)  # pipes of workers still running
    done = [False] * count
    chunks = [0] * count  # whole chunks held per worker
    c = 0
    while True:
        w = next((i for i in range(count) if held[i] and held[i][0][1] == c), -1)
        due = w >= 0 and (side is None or held[w][0][0] != _BATCH or side.held)
        if not due:
            if w < 0 and not open_:
                raise WorkerError(f"no worker sent chunk {c}")
            if stop.is_set():  # the batch in hand is not waited for
                stats.interrupted = True
                return
            drained = [o for i, o in enumerate(outs) if o in open_ and chunks[i] < _AHEAD]
            ready = wait([*drained, side.conn] if side is not None and side.open else drained,
                         _STOP_POLL)
            for conn in ready:  # whatever is ready, not only the one due
                if side is not None and conn is side.conn:
                    side.receive()
                    continue
                i = next(k for k, o in enumerate(outs) if o is conn)
                try:
                    msg = _receive(outs[i], i)
                except _Ended:  # fine after its `_DONE` (a failure it reported is
                    # raised: its message says what went wrong)
                    if not done[i]:
                        raise
                    open_.remove(outs[i])
                    continue
                if msg[0] == _DONE:
                    done[i] = True
                    continue
                if msg[0] == _BATCH:
                    shipped = msg[-1]
                    msg = (*msg[:-1], *(shipped if shipped is not None else (None, None)))
                else:
                    chunks[i] += 1
                held[i].append(msg)
            continue
        msg = held[w].popleft()
        if msg[0] == _BATCH:
            steps = None
            if side is not None:
                made = side.held.popleft()
                if made[0] != _BATCH:  # invariant (not input)
                    raise WorkerError("the stream process ended before the input")
                steps = (made[1], made[2])
            yield (*msg[2:], steps)
            continue
        chunks[w] -= 1
        stats.truncation = msg[2]
        if msg[3]:  # that chunk was the last
            return
        c += 1


def _sharded(outs: list[Pipe], stats: RunStats, stop: threading.Event
             ) -> Iterator[Result]:
    count = len(outs)
    k = 0
    while True:
        while not outs[k % count].poll(_STOP_POLL):
            if stop.is_set():  # the batch in hand is not waited for
                stats.interrupted = True
                return
        msg = _receive(outs[k % count], k % count)
        if msg[0] != _END:
            yield (*msg[1:], None)
            k += 1
            continue
        # Worker k mod count has no batch k: the input ended there. Collect the others'
        # end messages (one of them may still owe nothing; all say the same).
        stats.truncation = msg[1]
        for i in range(count):
            if i != k % count:
                while _receive(outs[i], i)[0] != _END:
                    pass
        return


def _end(procs: list[Helper]) -> None:
    """End the helpers and take their exit status. Ended or stopped: a worker still
    running (stopped mid-input) holds nothing the files need; SIGKILL, since a blocked
    worker may never read a request."""
    for p in procs:
        p.kill()
    for p in procs:
        p.join()


def _run_parallel(opts: CaptureOptions, sink: Sink, count: int,
                  stop: threading.Event) -> RunStats:
    # Open here first, so an unreadable input fails fast with its one-line error (reading
    # only its start: the workers read the rest).
    with open_capture(opts.read, batch_packets=_BATCH_PACKETS, chunk_bytes=1 << 16) as src:
        relay = not src.compressed
        seed = src.handover() if relay else None
    # The stream side in a process of its own when the stream analyzers run: it is the
    # longest serial step (docs/performance.md); the connection table stays here.
    split = relay and bool(_stream_kinds(opts.encode))
    results = [pipe() for _ in range(count)]  # (parent end, worker end)
    # The turn and its lock, shared by the workers (see `_relay`).
    turns, lock = (pipe(), pipe()) if relay else (None, None)
    feeds = [pipe() for _ in range(count)] if split else []  # to the side
    side_out = pipe() if split else None
    control = pipe() if split else None  # parent -> stream process: stop
    shared = [*turns, *lock] if turns is not None and lock is not None else []
    everything = [c for pair in results + feeds for c in pair] + shared
    if side_out is not None and control is not None:
        everything += [*side_out, *control]
    procs: list[Helper] = []
    stats = RunStats()
    side: _Side | None = None
    try:
        for i in range(count):
            out = results[i][1]
            own: list[Pipe] = [out]
            if turns is not None and lock is not None:
                feed = feeds[i][1] if split else None
                own += shared + ([feed] if feed is not None else [])
                target: Callable[..., None] = _relay
                args: tuple[Any, ...] = (opts, turns, lock, out, feed)
            else:
                target, args = _shard, (opts, i, count, out)
            close = [c for c in everything if all(c is not o for o in own)]
            p = Helper(_worker, (target, args, out, i, close, os.getpid()))
            p.start()
            procs.append(p)
        if side_out is not None and control is not None:
            own = [f[0] for f in feeds] + [side_out[1], control[0]]
            close = [c for c in everything if all(c is not o for o in own)]
            args = (opts, sink, [f[0] for f in feeds], control[0], side_out[1])
            p = Helper(_worker, (_stream_process, args, side_out[1], count, close, os.getpid()))
            p.start()
            procs.append(p)
            side = _Side(side_out[0], count)
            sink.side = None  # its results come from there
            side_out[1].close()
            control[0].close()
            for pair in feeds:
                pair[0].close()
                pair[1].close()
        if turns is not None and lock is not None:
            if seed is None:  # invariant (not input)
                raise TypeError("seed is not set")
            turns[1].send((0, seed[0], seed[1], 0, PacketClock()))  # chunk 0
            lock[1].give()
        for pair in results:
            pair[1].close()
        for end in shared:
            end.close()
        outs = [pair[0] for pair in results]
        results_in_order = (_relayed(outs, stats, stop, side) if relay
                            else _sharded(outs, stats, stop))
        for encoded, batch_stats, delta, flows, segs, frags, steps in results_in_order:
            if steps is None:
                sink.take(encoded, delta, flows, segs, frags)
            else:
                sink.take_remote(encoded, delta, flows, steps)
            stats.merge(batch_stats)
            if stop.is_set():
                stats.interrupted = True
                break
        if side is not None and control is not None:
            if stats.interrupted:
                control[1].send(None)  # end where it is; its end's steps still come
            sink.replay(side.end())
    except WorkerError:
        # A helper that died of SIGBUS read a page of its mapping of the input (the
        # workers walk it there, the stream process reads payloads there) past the end
        # of a file cut short after it was mapped; the others failed after it. (A cut
        # found before reading is an error or a truncated tail, as in one process.)
        _end(procs)  # a dying helper's exit status is its signal's, killed or not
        if any(p.exitcode == -signal.SIGBUS for p in procs):
            raise _changed(opts.read) from None
        raise
    finally:
        _end(procs)
        for pair in results:
            pair[0].close()
        for conn in (side_out[0] if side_out else None, control[1] if control else None):
            if conn is not None:
                conn.close()
    return stats
