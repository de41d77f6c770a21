"""The packet decoder against the two it replaced (issue 14): the fast path
(`decode/_fast.pyx`) with the general decoder (`_general.pyx`) for the packets the fast
path left, as `decode_batch` ran them before, built from a git revision that still had
them, beside the current `decode/_decode.pyx`; both compiled here with the flags
meson.build gives them. Interleaved rounds over the same batches, in one process: the
per-packet pass alone, then whole batches with the columns counting reads and with every
column. Prints the median and the best ns per packet.

    python bench/decoder_compare.py --pcap /work/bench250k.pcap --rev a72abf0 --rounds 7
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["-3", "-I", str(ROOT / "src"), "-X", "boundscheck=True", "-X", "wraparound=False",
         "-X", "initializedcheck=True", "-X", "cdivision=True"]


def build(out: Path, name: str, source: str) -> None:
    """Compile one module's source (text) into `out` as a top-level module `name`."""
    (out / f"{name}.pyx").write_text(source)
    cython = Path(sys.executable).parent / "cython"
    subprocess.run([str(cython), *FLAGS, str(out / f"{name}.pyx"), "-o", str(out / f"{name}.c")],
                   check=True)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O3", f"-I{sysconfig.get_paths()['include']}",
                    f"-I{np.get_include()}", str(out / f"{name}.c"), "-o",
                    str(out / f"{name}{suffix}")], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--rev", default="a72abf0", help="a revision with decode/_fast.pyx")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    from netcap.decode import _decode
    from netcap.metrics.state import LabelConfig
    from netcap.pipeline import counting_columns
    from netcap.sinks.ncap import EncodeOptions
    from netcap.sources.capture import open_capture

    tmp = Path(tempfile.mkdtemp(prefix="decoder-compare-"))
    for name in ("_fast", "_general"):
        source = subprocess.run(["git", "-C", str(ROOT), "show",
                                 f"{args.rev}:src/netcap/decode/{name}.pyx"],
                                check=True, capture_output=True, text=True).stdout
        build(tmp, name, source)
    sys.path.insert(0, str(tmp))
    import _fast  # type: ignore[import-not-found]
    import _general  # type: ignore[import-not-found]

    batches = list(open_capture(args.pcap, copy=True))
    n = sum(len(b) for b in batches)
    counting = counting_columns(LabelConfig(), EncodeOptions())

    def old(columns: object) -> None:
        for b in batches:
            res = _fast.decode_fast(b, columns)
            for i in np.flatnonzero(~res.done).tolist():
                s = int(b.offset[i])
                _general.decode_packet(b.data[s : s + int(b.caplen[i])].tobytes(),
                                       int(b.linktype[i]))

    def new(columns: object) -> None:
        for b in batches:
            _decode.decode_packets(b, columns)  # type: ignore[arg-type]

    def walk(module: object) -> None:
        for b in batches:
            module._walk(b.data, b.offset, b.caplen, b.linktype, b.ts)  # type: ignore[attr-defined]

    cases: dict[str, Callable[[], None]] = {
        "pass, old": lambda: walk(_fast), "pass, new": lambda: walk(_decode),
        "counting, old": lambda: old(counting), "counting, new": lambda: new(counting),
        "all, old": lambda: old(None), "all, new": lambda: new(None),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for k, f in cases.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    print(f"{n:,} packets, {args.rounds} interleaved rounds (old: {args.rev}, the general "
          f"decoder's records not tabulated)")
    for k, v in times.items():
        v.sort()
        print(f"{k:15s} median {v[len(v) // 2] / n * 1e9:5.0f} ns/packet, best "
              f"{v[0] / n * 1e9:5.0f}")


if __name__ == "__main__":
    main()
