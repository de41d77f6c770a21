"""Time `net capture` against `tshark -z io,phs` on the same benchmark capture.

Builds the capture with make_bench_pcap.py if it is missing, reads it once to warm the page
cache, then runs both commands R times, interleaved (net, tshark, net, tshark, ...). For every
run it records the wall time and the peak resident set size of the child (ru_maxrss from
wait4: the largest RSS of the child or of any descendant it waited for).

Linux counts the spawning process's own peak RSS into a child's ru_maxrss (the pre-exec address
space), so this script stays small: it does not import numpy and builds captures in a
subprocess. Its own peak is printed; child peaks at or below it are this floor, not a reading.

    python bench/run_bench.py                      # 1,000,000 packets, 3 runs each
    python bench/run_bench.py -r 5
    python bench/run_bench.py --sizes 250000,1000000   # peak memory vs file size

Exits non-zero if a command fails. Never run from tests or CI: it takes minutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT_DIR = BENCH / "out"
DEFAULT_PCAP = OUT_DIR / "bench.pcap"  # make_bench_pcap.py's default output
DEFAULT_PACKETS = 1_000_000


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    peak_bytes: int


@dataclass(slots=True)
class Tool:
    name: str
    argv: list[str]  # "{pcap}" and "{out}" are substituted per run
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def peak_mb(self) -> float:
        return max(s.peak_bytes for s in self.samples) / 1e6


class CommandFailed(Exception):
    pass


def count_packets(path: Path) -> int:
    """Number of records in a classic little-endian pcap (the builder's format)."""
    size = path.stat().st_size
    caplen = struct.Struct("<I")
    n, pos = 0, 24
    with open(path, "rb", buffering=0) as f:
        if f.read(4) != b"\xd4\xc3\xb2\xa1":
            raise SystemExit(f"{path}: not a little-endian microsecond pcap")
        buf, buf_start = b"", 0
        while pos + 16 <= size:
            if pos + 16 > buf_start + len(buf):
                f.seek(pos)
                buf, buf_start = f.read(1 << 20), pos
            pos += 16 + caplen.unpack_from(buf, pos - buf_start + 8)[0]
            n += 1
    if pos != size:
        raise SystemExit(f"{path}: ends inside a record")
    return n


def ensure_capture(path: Path, packets: int) -> None:
    """Build the capture with make_bench_pcap.py (in a subprocess: it needs numpy and memory)."""
    if path.exists():
        return
    cmd = [sys.executable, str(BENCH / "make_bench_pcap.py"), "-n", str(packets), "-o", str(path)]
    if subprocess.run(cmd).returncode != 0:
        raise CommandFailed(f"{shlex.join(cmd)} failed")


def sized_capture(packets: int) -> Path:
    """bench/out/bench.pcap if it has exactly `packets` packets, else bench-N.pcap (built)."""
    if DEFAULT_PCAP.exists() and count_packets(DEFAULT_PCAP) == packets:
        return DEFAULT_PCAP
    path = OUT_DIR / f"bench-{packets}.pcap"
    ensure_capture(path, packets)
    return path


def warm_cache(path: Path) -> None:
    buf = bytearray(1 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def own_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def _tree_rss(root: int) -> int:
    """Summed RSS in bytes of a process and all its descendants (from /proc)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * resource.getpagesize()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [p for p, pp in parent.items() if pp == pid]
    return total


def _sample_tree(pid: int, peak: list[int], stop: threading.Event) -> None:
    while not stop.wait(0.02):
        peak[0] = max(peak[0], _tree_rss(pid))


def run_once(argv: list[str]) -> Sample:
    """Run argv, wait for it with wait4, return wall time and peak RSS; raise on failure.

    Peak RSS is the larger of ru_maxrss (the largest single process) and the summed RSS of
    the whole process tree sampled every 20 ms, so a command that runs worker processes
    is charged for all of them."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        peak, stop = [0], threading.Event()
        sampler = threading.Thread(target=_sample_tree, args=(proc.pid, peak, stop))
        sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        stop.set()
        sampler.join()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-4000:]
            raise CommandFailed(f"{shlex.join(argv)} exited {proc.returncode}\n{tail}")
    return Sample(seconds, max(usage.ru_maxrss * 1024, peak[0]))  # ru_maxrss is in KiB


def bench_file(pcap: Path, tools: list[Tool], repeat: int, out_dir: Path) -> None:
    warm_cache(pcap)
    for r in range(repeat):
        for tool in tools:
            shutil.rmtree(out_dir, ignore_errors=True)
            argv = [a.format(pcap=pcap, out=out_dir) for a in tool.argv]
            sample = run_once(argv)
            tool.samples.append(sample)
            print(
                f"  run {r + 1}/{repeat} {tool.name:<6} {sample.seconds:8.2f} s "
                f"{sample.peak_bytes / 1e6:8.1f} MB",
                file=sys.stderr,
            )
    shutil.rmtree(out_dir, ignore_errors=True)


def print_table(pcap: Path, packets: int, tools: list[Tool], repeat: int) -> None:
    print(
        f"\n{pcap.relative_to(ROOT) if pcap.is_relative_to(ROOT) else pcap}: "
        f"{packets:,} packets, {pcap.stat().st_size / 1e6:.1f} MB; "
        f"{repeat} runs each, interleaved"
    )
    print(f"{'command':<8} {'median s':>9} {'packets/s':>11} {'peak MB':>9}  runs (s)")
    for t in tools:
        runs = " ".join(f"{s.seconds:.2f}" for s in t.samples)
        print(f"{t.name:<8} {t.median:9.2f} {packets / t.median:11,.0f} {t.peak_mb:9.1f}  {runs}")
    net, tshark = tools
    print(f"tshark_median / net_median = {tshark.median / net.median:.2f}")
    print(f"(peak MB floor: this script's own peak RSS, {own_peak_mb():.1f} MB)")


def print_sizes_table(rows: list[tuple[int, float, list[Tool]]]) -> None:
    print(
        f"\n{'packets':>10} {'file MB':>8}  "
        f"{'net s':>7} {'net pkt/s':>10} {'net MB':>8}  "
        f"{'tshark s':>8} {'tshark pkt/s':>12} {'tshark MB':>9}  {'ratio':>5}"
    )
    for packets, mb, (net, tshark) in rows:
        print(
            f"{packets:>10,} {mb:8.1f}  "
            f"{net.median:7.2f} {packets / net.median:10,.0f} {net.peak_mb:8.1f}  "
            f"{tshark.median:8.2f} {packets / tshark.median:12,.0f} {tshark.peak_mb:9.1f}  "
            f"{tshark.median / net.median:5.2f}"
        )
    (p0, _, (n0, t0)), (p1, _, (n1, t1)) = rows[0], rows[-1]
    print(
        f"peak memory from {p0:,} to {p1:,} packets ({p1 / p0:.1f}x the file): "
        f"net x{n1.peak_mb / n0.peak_mb:.2f}, tshark x{t1.peak_mb / t0.peak_mb:.2f}"
    )


def default_net() -> str | None:
    venv = ROOT / ".venv" / "bin" / "net"
    return str(venv) if venv.exists() else shutil.which("net")


def make_tools(net: str, net_args: str, tshark: str, mode: str = "capture") -> list[Tool]:
    if mode == "export":  # metrics only, exit when done; port 0: any free port
        net_argv = [net, "export", "-read", "{pcap}", "-exit", "-quiet",
                    "-address", "127.0.0.1:0", *shlex.split(net_args)]
    else:
        net_argv = [net, "capture", "-read", "{pcap}", "-out", "{out}", *shlex.split(net_args)]
    return [
        Tool(f"net {mode}", net_argv),
        Tool("tshark", [tshark, "-n", "-r", "{pcap}", "-q", "-z", "io,phs"]),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("-r", "--repeat", type=int, default=3, help="runs per command (default 3)")
    ap.add_argument(
        "-n",
        "--packets",
        type=int,
        default=DEFAULT_PACKETS,
        help="packets when building the capture (default 1,000,000)",
    )
    ap.add_argument(
        "--pcap",
        type=Path,
        default=DEFAULT_PCAP,
        help="capture to time (built if missing; default bench/out/bench.pcap)",
    )
    ap.add_argument(
        "--sizes",
        help="comma-separated packet counts, e.g. 250000,1000000: "
        "time one capture per size (bench/out/bench-N.pcap, built if missing)",
    )
    ap.add_argument("--net", default=default_net(), help="net executable (default .venv/bin/net)")
    ap.add_argument("--net-args", default="", help="extra arguments for net")
    ap.add_argument("--mode", choices=("capture", "export"), default="capture",
                    help="time `net capture` (default) or `net export -exit`")
    ap.add_argument("--tshark", default=shutil.which("tshark"), help="tshark executable")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if not args.net:
        ap.error("no `net` found: run `make run` (creates .venv) or pass --net")
    if not args.tshark:
        ap.error("no `tshark` found: apt-get install tshark, or pass --tshark")

    out_dir = OUT_DIR / "net-capture-out"
    try:
        if args.sizes:
            sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
            if len(sizes) < 2 or sizes[0] < 1:
                ap.error("--sizes needs at least two positive packet counts")
            rows: list[tuple[int, float, list[Tool]]] = []
            for n in sizes:
                pcap = sized_capture(n)
                tools = make_tools(args.net, args.net_args, args.tshark, args.mode)
                print(f"{pcap.name}:", file=sys.stderr)
                bench_file(pcap, tools, args.repeat, out_dir)
                print_table(pcap, n, tools, args.repeat)
                rows.append((n, pcap.stat().st_size / 1e6, tools))
            print_sizes_table(rows)
        else:
            pcap = args.pcap.resolve()
            ensure_capture(pcap, args.packets)
            packets = count_packets(pcap)
            tools = make_tools(args.net, args.net_args, args.tshark, args.mode)
            bench_file(pcap, tools, args.repeat, out_dir)
            print_table(pcap, packets, tools, args.repeat)
    except CommandFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
