"""CPU of the stream stage alone, as the stream process runs it in `net export` (records
only counted): a capture's TCP segments picked per batch, then timed through a fresh
`StreamStage` (update per batch, flush, the record tables the metrics read), in rounds.

The stream process is the serial step of a parallel export (docs/performance.md): this
times that step without the pipeline around it, in one process, as CPU time (so a busy
machine slows it less than wall time). Segments are picked once, before the rounds.

    .venv/bin/python bench/stream_stage.py --pcap /work/bench1m.pcap --rounds 5
    .venv/bin/python bench/stream_stage.py --writes        # as `net capture` runs it
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

from netcap.decode.batch import decode_batch
from netcap.metrics.state import STREAM_RECORD_COLUMNS
from netcap.reassembly.streams import FINGERPRINTS, SegmentBatch, StreamStage, segments
from netcap.sources.capture import open_capture

ROOT = Path(__file__).resolve().parent.parent


def picked(pcap: str, packets: int, hide_bodies: bool) -> tuple[list[SegmentBatch], int]:
    """The capture's segments per 65,536-packet batch (payloads copied out)."""
    out: list[SegmentBatch] = []
    seen = 0
    with open_capture(pcap, batch_packets=65536) as src:
        for batch in src:
            segs = segments(decode_batch(batch), hide_bodies=hide_bodies)
            if segs is not None:
                out.append(segs)
            seen += len(batch)
            if seen >= packets:
                break
    return out, seen


def run(batches: list[SegmentBatch], writes: bool) -> tuple[float, int]:
    """One pass: CPU seconds and records made."""
    stage = StreamStage(detail=writes, fingerprints=FINGERPRINTS if writes else frozenset())
    only = None if writes else STREAM_RECORD_COLUMNS
    records = 0
    gc.collect()
    t = time.process_time()
    for segs in batches:
        records += sum(x.n for x in stage.update(segs).tables(only).values())
    records += sum(x.n for x in stage.flush().tables(only).values())
    return time.process_time() - t, records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcap", default="/work/bench1m.pcap")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--writes", action="store_true",
                    help="complete records and fingerprints, as when files are written")
    a = ap.parse_args()
    gc.freeze()
    gc.set_threshold(1_000_000, 20, 20)  # as `net` runs (cli.tune_gc)
    batches, seen = picked(a.pcap, a.packets, hide_bodies=not a.writes)
    n = sum(len(s) for s in batches)
    times = []
    for r in range(a.rounds):
        sec, records = run(batches, a.writes)
        times.append(sec)
        print(f"round {r + 1}: {sec:.3f} s CPU, {records:,} records")
    med = statistics.median(times)
    print(f"{seen:,} packets, {n:,} segments: median {med:.3f} s CPU,"
          f" {med / n * 1e9:.0f} ns per segment, {med / seen * 1e9:.0f} ns per packet")


if __name__ == "__main__":
    main()
