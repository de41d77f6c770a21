"""Time the capture-file walk alone: a whole pcap/pcapng file, chunk by chunk from a memory
map, as the decode workers walk it (sources/capture.py `walk_chunk`), with no decoding.

    .venv/bin/python bench/walk_bench.py /work/bench1m.pcap [--rounds 5] [--python]

--python times the Python walk the compiled one replaced (tests/oracle_walk.py), for the
before/after figure. Prints the best and median seconds of the rounds and the packets.
Compare with `cat FILE > /dev/null` (the page cache read) on a warm cache.
"""

from __future__ import annotations

import argparse
import mmap
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from netcap.sources.pcap import PCAP_MAGICS, PcapParser, parse_header
from netcap.sources.pcapng import PcapngParser

CHUNK = 4 << 20  # open_capture's default chunk_bytes


def walk(path: str, python: bool) -> int:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        head = bytes(m[:1 << 16])
        parser: object
        if head[:4] in PCAP_MAGICS:
            parser = PcapParser(parse_header(path, head))
            pos = 24
            if python:
                from oracle_walk import OraclePcapParser
                parser = OraclePcapParser(parse_header(path, head))
        else:
            ng = PcapngParser()
            pos = ng.begin(path, head)
            parser = ng
            if python:
                from oracle_walk import OraclePcapngParser
                parser = OraclePcapngParser()
                pos = parser._section(head, 0)
        packets = 0
        size = len(m)
        while pos < size:
            want = min(CHUNK, size - pos)
            view = memoryview(m)[pos : pos + want]
            arr = np.frombuffer(m, np.uint8, count=want, offset=pos)
            res = parser.parse(view, arr, 0)  # type: ignore[attr-defined]
            del view, arr
            packets += 0 if res.cols is None else len(res.cols)
            if res.stop is not None or res.pos == 0:
                break
            pos += res.pos
        return packets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--python", action="store_true", help="the Python walk (before)")
    args = ap.parse_args()
    if args.python:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    times = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        packets = walk(args.path, args.python)
        times.append(time.perf_counter() - t)
    print(f"{'python' if args.python else 'compiled'}: best {min(times):.3f} s, median "
          f"{statistics.median(times):.3f} s, {packets} packets")


if __name__ == "__main__":
    main()
