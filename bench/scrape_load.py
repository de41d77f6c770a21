"""Does scraping slow decoding? `net export -exit` on the bench capture, with and without a
client fetching /metrics 10 times a second, interleaved; compares the processing time each
run reports, and the scrapes' latency and body size. Run on demand (not in CI):
python bench/scrape_load.py [-r N] [--labels FAMILY=LABEL,...] [--budget N] [PCAP].
With opt-in address labels and a large budget the body reaches megabytes, e.g.
--labels nc_tcp_segments=src_ip,dst_ip,src_port,dst_port --budget 60000."""

from __future__ import annotations

import argparse
import re
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(net: str, pcap: str, scrape: bool, workers: int, extra: list[str]
        ) -> tuple[float, float, list[float], int]:
    """Processing seconds reported by net export, the CPU seconds it used (robust to
    other load on the machine, unlike the first), the latency of each scrape answered
    meanwhile, and the largest body."""
    port = free_port()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen([net, "export", "-read", pcap, "-exit", "-workers", str(workers),
                             "-address", f"127.0.0.1:{port}", *extra], stderr=subprocess.PIPE,
                            text=True)
    done = threading.Event()
    latencies: list[float] = []
    largest = 0

    def scraper() -> None:
        nonlocal largest
        while not done.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                    largest = max(largest, len(r.read()))
                    latencies.append(time.perf_counter() - t0)
            except OSError:
                pass
            time.sleep(0.1)

    t = threading.Thread(target=scraper)
    if scrape:
        t.start()
    _, err = proc.communicate(timeout=600)
    done.set()
    if scrape:
        t.join()
    m = re.search(r"in ([0-9.]+)s", err)
    if proc.returncode != 0 or m is None:
        sys.exit(f"net export failed: {err.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return float(m.group(1)), cpu, latencies, largest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("pcap", nargs="?", default=str(BENCH / "out" / "bench.pcap"))
    ap.add_argument("-r", "--repeat", type=int, default=5)
    ap.add_argument("--net", default=str(BENCH.parent / ".venv" / "bin" / "net"))
    ap.add_argument("--workers", type=int, default=0,
                    help="net export -workers (0: one per CPU; 1 leaves a core to the"
                         " scraping client on a 2-core machine)")
    ap.add_argument("--labels", action="append", default=[],
                    help="net export -labels (repeatable)")
    ap.add_argument("--budget", type=int, help="net export -series-budget")
    a = ap.parse_args()
    net = a.net if Path(a.net).exists() else "net"
    extra = [x for spec in a.labels for x in ("-labels", spec)]
    if a.budget is not None:
        extra += ["-series-budget", str(a.budget)]
    quiet, loaded, scrapes, latencies, largest = [], [], [], [], 0
    cpu_quiet, cpu_loaded = [], []
    for _ in range(a.repeat):
        secs, cpu, _, _ = run(net, a.pcap, False, a.workers, extra)
        quiet.append(secs)
        cpu_quiet.append(cpu)
        secs, cpu, lat, big = run(net, a.pcap, True, a.workers, extra)
        loaded.append(secs)
        cpu_loaded.append(cpu)
        scrapes.append(len(lat))
        latencies += lat
        largest = max(largest, big)
    q, ld = statistics.median(quiet), statistics.median(loaded)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0
    print(f"processing, median of {a.repeat}: no scrapes {q:.2f} s, scraped 10/s {ld:.2f} s"
          f" ({min(scrapes)}-{max(scrapes)} scrapes answered per run);"
          f" slowdown {100 * (ld / q - 1):+.1f}%; CPU of net export"
          f" {statistics.median(cpu_quiet):.2f} s -> {statistics.median(cpu_loaded):.2f} s"
          f" ({100 * (statistics.median(cpu_loaded) / statistics.median(cpu_quiet) - 1):+.1f}%);"
          " scrape latency median"
          f" {1000 * statistics.median(latencies or [0]):.0f} ms, p99 {1000 * p99:.0f} ms;"
          f" largest body {largest / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
