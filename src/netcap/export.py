"""`net export`: inputs -> metrics state (and optionally audit-record files).

Inputs are capture files (pcap/pcapng, gzip or not) and audit-record files (`.ncap`,
`.ncap.gz`), given one by one or as a directory of audit-record files. Captures are
decoded batch by batch; audit records are read back and counted through the same
record metrics, so a capture and the records it produced give the same record metrics.
Serving is the exporter's job (`exporter/server.py`); this module only feeds the state.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .clock import JUMP_NS, PacketClock
from .decode.batch import decode_batch
from .decode.errors import describe
from .flows.extract import summarize
from .flows.table import ConnectionTable
from .metrics.state import MetricsState
from .pipeline import (
    CHUNK_BYTES,
    CaptureOptions,
    Sink,
    counted,
    counting_columns,
    run_capture,
    runs_analyzers,
    stream_segments,
)
from .reassembly.ip import fragments
from .records.derive import add_payload_columns
from .records.messages import record_table
from .sinks.options import EncodeOptions
from .sources.capture import CaptureError, Truncation, open_capture
from .sources.ncap import EMPTY, TOO_LARGE, NcapError, NcapReader, is_ncap

if TYPE_CHECKING:
    from .sinks.backfill import Backfill  # made by the caller, only for -backfill
    from .sinks.ncap import NcapWriter  # loaded only to write files (-out)

__all__ = ["ExportOptions", "ExportResult", "expand_inputs", "run_export"]

_RECORD_CHUNK = 8192  # audit records counted per update
# ... or fewer: records in memory at once, as read from the file (decoded, they take a
# small multiple of this), so memory stays bounded whatever records a file holds.
_CHUNK_BYTES = 4 << 20


class ExportOptions(NamedTuple):
    inputs: tuple[str, ...]
    out: str | None = None  # also write audit-record files here
    encode: EncodeOptions = EncodeOptions()
    workers: int = 0  # as for `net capture`
    backfill: Backfill | None = None  # sample metrics at packet time (captures only)
    replay_speed: float | None = None  # pace captures by packet time (1.0: real time)
    max_flows: int = 100_000  # connection table size
    bpf: str | None = None  # tcpdump-syntax filter for captures (not audit records)


@dataclass
class ExportResult:
    packets: int = 0
    records: int = 0  # audit records counted: decoded from captures or read from files
    files: int = 0
    truncated: list[str] = field(default_factory=list)  # notes on damaged inputs
    seconds: float = 0.0
    interrupted: bool = False  # the stop event ended the work before the inputs' end


def expand_inputs(paths: list[str]) -> list[str]:
    """Files as given; a directory stands for its audit-record files (sorted)."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if is_ncap(n))
            if not names:
                raise CaptureError(f"{p}: no .ncap or .ncap.gz files in this directory")
            out += [os.path.join(p, n) for n in names]
        else:
            out.append(p)
    return out


def run_export(opts: ExportOptions, state: MetricsState,
               stop: threading.Event | None = None) -> ExportResult:
    """Feed every input into `state`. Raises CaptureError/NcapError for an unusable input
    (a capture is tried first; a file named .ncap/.ncap.gz is read as audit records).

    `stop` (SIGINT/SIGTERM) is checked after every batch, slice or chunk of records and
    ends a replay's wait: the work ends there (`interrupted`), and what was counted is
    written out as at the end (audit-record files, the backfill file)."""
    result = ExportResult()
    t0 = time.perf_counter()
    stop = stop or threading.Event()
    captures = [p for p in opts.inputs if not is_ncap(p)]
    pacer = _Pacer(opts.replay_speed, stop) if opts.replay_speed else None
    stepped = opts.backfill is not None or pacer is not None
    if stepped:  # audit records in time order, all files together
        record_files = [p for p in opts.inputs if is_ncap(p)]
        if record_files:
            _, notes = _stepped_records(record_files, state, opts, pacer, stop)
            result.truncated += notes
            if not stop.is_set():
                for _ in record_files:
                    state.add_input_done(False)
            result.files += len(record_files)
    for path in opts.inputs:
        if stop.is_set():
            break
        if stepped and is_ncap(path):
            continue
        if is_ncap(path):
            _, truncated = _export_records(path, state, opts.encode, stop)
        else:
            # With several captures, each one's audit records go to a directory of its own.
            out = opts.out
            if out is not None and len(captures) > 1:
                out = os.path.join(out, os.path.basename(path))
            if opts.backfill is not None or pacer is not None:
                packets, t = _stepped_capture(path, out, state, opts, pacer, stop)
            else:
                stats = run_capture(CaptureOptions(read=path, out=out, encode=opts.encode,
                                                   workers=opts.workers, metrics=True,
                                                   labels=state.config,
                                                   max_flows=opts.max_flows,
                                                   bpf=opts.bpf), state, stop)
                packets, t = stats.packets, stats.truncation
            result.packets += packets
            truncated = None if t is None else f"{t.path}: {t.reason} at byte {t.offset}"
        if truncated:
            result.truncated.append(truncated)
        if stop.is_set():  # not done: stopped in this input
            result.files += 1
            break
        state.add_input_done(truncated is not None)
        result.files += 1
    if opts.backfill is not None:
        opts.backfill.finish(state)
    result.records = int(sum(state.snapshot().counters.get("nc_audit_records", {}).values()))
    result.interrupted = stop.is_set()
    if not result.interrupted:
        state.set_input_done()  # last, so a scrape that sees it sees everything
    result.seconds = time.perf_counter() - t0
    return result


class _Pacer:
    """Replay: hold back each slice of packets until its packet time, scaled by speed,
    has passed on the wall clock since the first packet.

    A quiet stretch longer than the packet clock's jump limit (10 minutes of packet time:
    a pause the clock accepted, a capture resumed a year later) is skipped, not waited
    out: a replay shows traffic, and no dashboard needs to watch a week of silence."""

    def __init__(self, speed: float, stop: threading.Event) -> None:
        self.speed = speed
        self.stop = stop  # a stop request ends the wait at once
        self.t0: tuple[int, float] | None = None  # (a packet time, the wall clock due then)
        self.last = 0  # the latest packet time paced

    def wait(self, ts: int) -> None:
        now = time.monotonic()
        if self.t0 is None or ts - self.last > JUMP_NS:
            self.t0 = (ts, now)  # the first slice, or the end of a long pause
            self.last = ts
            return
        self.last = max(self.last, ts)
        due = self.t0[1] + (ts - self.t0[0]) / 1e9 / self.speed
        if due > now:
            self.stop.wait(due - now)


_REPLAY_SLICE_NS = 50_000_000  # packets are released 50 ms of packet time at a time


def _stepped_capture(path: str, out: str | None, state: MetricsState, opts: ExportOptions,
                     pacer: _Pacer | None, stop: threading.Event
                     ) -> tuple[int, Truncation | None]:
    """Count a capture in one process, slice by slice of packet time: for backfill
    (sample at every step) and replay (pace by timestamps); with `out`, its audit
    records are written too, as `capture` writes them.

    Time is the running maximum of packet timestamps, so a packet stamped earlier than
    one before it still counts in the current slice (samples must never go back)."""
    backfill = opts.backfill
    step = backfill.step_ns if backfill is not None else _REPLAY_SLICE_NS
    if pacer is not None:
        step = min(step, _REPLAY_SLICE_NS)
    writer = None
    if out is not None:
        from .sinks.ncap import NcapWriter

        writer = NcapWriter(out, path, opts.encode)
    # Records to write must be complete; for counting alone, the metric columns do.
    columns = None if writer is not None else counting_columns(state.config, opts.encode)
    try:
        truncation = _stepped_batches(path, state, opts, pacer, step, writer, columns, stop)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return truncation


def _stepped_batches(path: str, state: MetricsState, opts: ExportOptions,
                     pacer: _Pacer | None, step: int, writer: NcapWriter | None,
                     columns: dict[str, frozenset[str]] | None, stop: threading.Event,
                     ) -> tuple[int, Truncation | None]:
    backfill = opts.backfill
    packets = 0
    clock = 0
    sink = Sink(writer, state, ConnectionTable(opts.max_flows), opts.encode, columns,
                lag=False)  # stream records count in the slice of time they complete in
    with open_capture(path, batch_packets=65536, chunk_bytes=CHUNK_BYTES, copy=False,
                      clock=True) as src:
        for batch in src:
            if opts.bpf:
                from .sources.bpf import bpf_filter  # libpcap: loaded only for -bpf

                batch = bpf_filter(batch, opts.bpf)
            decoded = decode_batch(batch, columns=columns,
                                   analyze=runs_analyzers(opts.encode))
            if writer is not None:  # before the metrics' entropy columns are added
                from .sinks.ncap import encode_batch

                writer.append(encode_batch(decoded, opts.encode))
            packets += len(batch)
            times = np.maximum.accumulate(np.maximum(batch.ts, clock))
            slices = times // step
            cuts = np.flatnonzero(np.diff(slices)) + 1
            bounds = [0, *cuts.tolist(), len(batch)]
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                t = int(times[lo])
                if pacer is not None:
                    pacer.wait(t)
                if stop.is_set():  # this slice's packets were written, not counted
                    break
                if backfill is not None:
                    backfill.enter(t // backfill.step_ns, state)
                part = decoded.packets(lo, hi)
                if opts.encode.entropy:
                    for table in part.tables.values():
                        add_payload_columns(table, part.batch.data, False, True)
                state.add_batch(counted(part, opts.encode))
                flows = summarize(part) if opts.encode.wanted("Connection") else None
                sink.take({}, None, flows, stream_segments(part, opts.encode, writer is None),
                          fragments(part))
            if len(batch):
                clock = int(times[-1])
            if stop.is_set():
                sink.finish()
                return packets, None
        sink.finish()
        return packets, src.truncation


def _export_records(path: str, state: MetricsState, encode: EncodeOptions,
                    stop: threading.Event) -> tuple[int, str | None]:
    """Count the records of one file; damage after some records is reported, not raised
    (those records are counted), like a cut capture."""
    count = 0
    note = None
    with NcapReader(path) as reader:
        chunks = _chunks(reader, state)
        while True:
            try:
                chunk, _ = next(chunks, (None, 0))
            except NcapError as e:
                note = str(e)
                break
            if chunk is None or stop.is_set():
                break
            if not encode.wanted(reader.record_type):  # -include/-exclude
                continue
            _add_records(state, reader.record_type, chunk)
            count += len(chunk)
        chunks.close()  # counts the records skipped as too large (a stop ends early)
    return count, note


def _add_records(state: MetricsState, record_type: str, msgs: list[Any]) -> None:
    table, errors = record_table(record_type, msgs)
    state.add_records(record_type, table.cols, table.n, from_file=True)
    state.add_errors(errors)


def _add_skipped(state: MetricsState, reader: NcapReader) -> None:
    """Records passed over (too large, or empty) count as decode errors."""
    state.add_errors(Counter({TOO_LARGE: reader.skipped, EMPTY: reader.empty}))


def _stepped_records(paths: list[str], state: MetricsState, opts: ExportOptions,
                     pacer: _Pacer | None, stop: threading.Event) -> tuple[int, list[str]]:
    """Audit-record files for replay or backfill: every file's records merged in
    timestamp order (a directory's files interleave), counted slice by slice of record
    time. Returns records counted and notes on damaged files."""
    backfill = opts.backfill
    step = backfill.step_ns if backfill is not None else _REPLAY_SLICE_NS
    if pacer is not None:
        step = min(step, _REPLAY_SLICE_NS)
    notes: list[str] = []

    rejected: Counter[str] = Counter()  # record stamps the packet clock did not follow

    def stream(i: int, path: str) -> Iterator[tuple[int, int, str, Any, int]]:
        # Each file's stamps pass its own packet clock (clock.py), in file order, so one
        # record stamped in 2106 neither ends the backfill nor holds up the replay.
        clock = PacketClock()
        try:
            with NcapReader(path) as reader:
                for msgs, nbytes in _chunks(reader, state):
                    # Bytes on disk per record, for the bound on records held (a mean
                    # over the chunk: the bound holds for the lot).
                    size = nbytes // len(msgs) + 1
                    # A connection counts when it ended (the capture counts it when
                    # the table lets it go: after its last packet, see flows/table.py).
                    ts = np.fromiter((getattr(m, "Timestamp", 0) or getattr(m, "TimestampLast", 0)
                                      for m in msgs), np.int64, len(msgs))
                    errors = clock.check(ts)
                    if errors is not None:
                        rejected.update(describe(c) for c in errors[errors > 0].tolist())
                    for t, msg in zip(ts.tolist(), msgs, strict=True):
                        yield t, i, reader.record_type, msg, size
        except NcapError as e:
            notes.append(str(e))

    count = 0
    clock = 0
    pending: dict[str, list[Any]] = {}
    pending_bytes = 0
    current: int | None = None

    def flush() -> None:
        nonlocal pending_bytes
        for name, msgs in pending.items():
            _add_records(state, name, msgs)
        pending.clear()
        pending_bytes = 0

    for ts, _, name, msg, size in heapq.merge(*(stream(i, p) for i, p in enumerate(paths))):
        if stop.is_set():
            break
        clock = max(clock, ts)  # record time never goes back (samples must not)
        slice_ = clock // step
        # Within a slice, records are counted in bounded lots (memory, not results).
        if (current is not None and slice_ != current) or pending_bytes > _CHUNK_BYTES:
            flush()
        if current is None or slice_ != current:
            current = slice_
            if pacer is not None:
                pacer.wait(clock)
                if stop.is_set():
                    break
            if backfill is not None:
                backfill.enter(clock // backfill.step_ns, state)
        if opts.encode.wanted(name):
            pending.setdefault(name, []).append(msg)
            pending_bytes += size
        count += 1
    flush()
    state.add_errors(rejected)
    return count, notes


def _chunks(reader: NcapReader, state: MetricsState
            ) -> Generator[tuple[list[Any], int], None, None]:
    """Records in lists of _RECORD_CHUNK or _CHUNK_BYTES of records, whichever comes
    first, each with its size in the file; on damage, the records before it come first.
    Records passed over (too large, empty) are counted as decode errors when the file
    ends, damaged or not."""
    chunk: list[Any] = []
    offset = reader.offset
    try:
        for msg in reader:
            chunk.append(msg)
            if len(chunk) >= _RECORD_CHUNK or reader.offset - offset >= _CHUNK_BYTES:
                yield chunk, reader.offset - offset
                chunk = []
                offset = reader.offset
    except NcapError:
        if chunk:
            yield chunk, reader.offset - offset
        raise
    finally:
        _add_skipped(state, reader)
    if chunk:
        yield chunk, reader.offset - offset


# Re-exported for the CLI's error handling.
ExportError = (CaptureError, NcapError)
