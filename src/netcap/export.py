"""`net export`: inputs -> metrics state (and optionally audit-record files).

Inputs are capture files (pcap/pcapng, gzip or not) and audit-record files (`.ncap`,
`.ncap.gz`), given one by one or as a directory of audit-record files. Captures are
decoded batch by batch; audit records are read back and counted through the same
record metrics, so a capture and the records it produced give the same record metrics.
Serving is the exporter's job (`exporter/server.py`); this module only feeds the state.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .decode.batch import decode_batch
from .metrics.state import MetricsState
from .pipeline import CHUNK_BYTES, CaptureOptions, run_capture
from .records.schema import Kind as FieldKind
from .records.types import RECORDS
from .sinks.backfill import Backfill
from .sinks.ncap import EncodeOptions
from .sources.capture import CaptureError, Truncation, open_capture
from .sources.ncap import NcapError, NcapReader, is_ncap

__all__ = ["ExportOptions", "ExportResult", "expand_inputs", "run_export"]

_RECORD_CHUNK = 8192  # audit records counted per update


@dataclass(frozen=True, slots=True)
class ExportOptions:
    inputs: tuple[str, ...]
    out: str | None = None  # also write audit-record files here
    encode: EncodeOptions = EncodeOptions()
    workers: int = 0  # as for `net capture`
    backfill: Backfill | None = None  # sample metrics at packet time (captures only)


@dataclass
class ExportResult:
    packets: int = 0
    records: int = 0
    files: int = 0
    truncated: list[str] | None = None
    seconds: float = 0.0


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


def run_export(opts: ExportOptions, state: MetricsState) -> ExportResult:
    """Feed every input into `state`. Raises CaptureError/NcapError for an unusable input
    (a capture is tried first; a file named .ncap/.ncap.gz is read as audit records)."""
    result = ExportResult(truncated=[])
    t0 = time.perf_counter()
    captures = [p for p in opts.inputs if not is_ncap(p)]
    for path in opts.inputs:
        if is_ncap(path):
            records, truncated = _export_records(path, state)
            result.records += records
        else:
            # With several captures, each one's audit records go to a directory of its own.
            out = opts.out
            if out is not None and len(captures) > 1:
                out = os.path.join(out, os.path.basename(path))
            if opts.backfill is not None:
                packets, t = _backfill_capture(path, state, opts.backfill)
            else:
                stats = run_capture(CaptureOptions(read=path, out=out, encode=opts.encode,
                                                   workers=opts.workers, metrics=True), state)
                packets, t = stats.packets, stats.truncation
            result.packets += packets
            truncated = None if t is None else f"{t.path}: {t.reason} at byte {t.offset}"
        if truncated:
            assert result.truncated is not None
            result.truncated.append(truncated)
        state.add_input_done(truncated is not None)
        result.files += 1
    if opts.backfill is not None:
        opts.backfill.finish(state)
    result.seconds = time.perf_counter() - t0
    return result


def _backfill_capture(path: str, state: MetricsState, backfill: Backfill
                      ) -> tuple[int, Truncation | None]:
    """Count a capture in one process, sampling the state at every step of packet time.

    Time is the running maximum of packet timestamps, so a packet stamped earlier than
    one before it still counts in the current step (samples must never go back)."""
    packets = 0
    with open_capture(path, batch_packets=65536, chunk_bytes=CHUNK_BYTES, copy=False) as src:
        for batch in src:
            decoded = decode_batch(batch)
            packets += len(batch)
            steps = np.maximum.accumulate(np.maximum(batch.ts, backfill.clock)) // backfill.step_ns
            cuts = np.flatnonzero(np.diff(steps)) + 1
            bounds = [0, *cuts.tolist(), len(batch)]
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                backfill.enter(int(steps[lo]), state)
                state.add_batch(decoded.packets(lo, hi))
            if len(batch):
                backfill.clock = max(backfill.clock, int(batch.ts.max()))
        return packets, src.truncation


def _export_records(path: str, state: MetricsState) -> tuple[int, str | None]:
    """Count the records of one file; damage after some records is reported, not raised
    (those records are counted), like a cut capture."""
    count = 0
    note = None
    with NcapReader(path) as reader:
        rtype = RECORDS[reader.record_type]
        scalar = [f.name for f in rtype.fields
                  if not f.repeated and f.kind not in (FieldKind.MESSAGE, FieldKind.STRING,
                                                       FieldKind.BYTES)]
        chunks = _chunks(reader)
        while True:
            try:
                chunk = next(chunks, None)
            except NcapError as e:
                note = str(e)
                break
            if chunk is None:
                break
            cols: dict[str, Any] = {
                name: np.fromiter((getattr(m, name) for m in chunk), np.int64, len(chunk))
                for name in scalar if name != "PayloadEntropy"
            }
            state.add_records(reader.record_type, cols, len(chunk))
            count += len(chunk)
    return count, note


def _chunks(reader: NcapReader) -> Iterator[list[Any]]:
    """Records in lists of _RECORD_CHUNK; on damage, the records before it come first."""
    chunk: list[Any] = []
    try:
        for msg in reader:
            chunk.append(msg)
            if len(chunk) >= _RECORD_CHUNK:
                yield chunk
                chunk = []
    except NcapError:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


# Re-exported for the CLI's error handling.
ExportError = (CaptureError, NcapError)
