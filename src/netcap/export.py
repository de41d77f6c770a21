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
from .pipeline import CHUNK_BYTES
from .records.schema import Kind as FieldKind
from .records.types import RECORDS
from .sinks.ncap import EncodeOptions, NcapWriter
from .sources.capture import CaptureError, open_capture
from .sources.ncap import NcapError, NcapReader, is_ncap

__all__ = ["ExportOptions", "ExportResult", "expand_inputs", "run_export"]

_RECORD_CHUNK = 8192  # audit records counted per update


@dataclass(frozen=True, slots=True)
class ExportOptions:
    inputs: tuple[str, ...]
    out: str | None = None  # also write audit-record files here
    encode: EncodeOptions = EncodeOptions()


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
    writer = NcapWriter(opts.out, ",".join(opts.inputs), opts.encode) if opts.out else None
    try:
        for path in opts.inputs:
            if is_ncap(path):
                records, truncated = _export_records(path, state)
                result.records += records
            else:
                records, truncated = _export_capture(path, state, writer)
                result.packets += records
            if truncated:
                assert result.truncated is not None
                result.truncated.append(truncated)
            state.add_input_done(truncated is not None)
            result.files += 1
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    result.seconds = time.perf_counter() - t0
    return result


def _export_capture(path: str, state: MetricsState, writer: NcapWriter | None
                    ) -> tuple[int, str | None]:
    packets = 0
    with open_capture(path, batch_packets=65536, chunk_bytes=CHUNK_BYTES, copy=False) as src:
        it = iter(src)
        while True:
            t = time.perf_counter()
            batch = next(it, None)
            state.add_stage_time("read", time.perf_counter() - t)
            if batch is None:
                break
            t = time.perf_counter()
            decoded = decode_batch(batch)
            t2 = time.perf_counter()
            state.add_stage_time("decode", t2 - t)
            state.add_batch(decoded)
            t3 = time.perf_counter()
            state.add_stage_time("metrics", t3 - t2)
            if writer is not None:
                writer.write(decoded)
                state.add_stage_time("write", time.perf_counter() - t3)
            packets += len(batch)
        trunc = src.truncation
    note = None if trunc is None else f"{trunc.path}: {trunc.reason} at byte {trunc.offset}"
    return packets, note


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
