"""Does scraping slow decoding? `net export -exit` on the bench capture, with and without a
client fetching /metrics 10 times a second, interleaved; compares the processing time each
run reports. Run on demand (not in CI): python bench/scrape_load.py [-r N] [PCAP]."""

from __future__ import annotations

import argparse
import re
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


def run(net: str, pcap: str, scrape: bool, workers: int) -> tuple[float, int]:
    """Processing seconds reported by net export, and scrapes answered meanwhile."""
    port = free_port()
    proc = subprocess.Popen([net, "export", "-read", pcap, "-exit", "-workers", str(workers),
                             "-address", f"127.0.0.1:{port}"], stderr=subprocess.PIPE,
                            text=True)
    done = threading.Event()
    answered = 0

    def scraper() -> None:
        nonlocal answered
        while not done.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    r.read()
                    answered += 1
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
    return float(m.group(1)), answered


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("pcap", nargs="?", default=str(BENCH / "out" / "bench.pcap"))
    ap.add_argument("-r", "--repeat", type=int, default=5)
    ap.add_argument("--net", default=str(BENCH.parent / ".venv" / "bin" / "net"))
    ap.add_argument("--workers", type=int, default=0,
                    help="net export -workers (0: one per CPU; 1 leaves a core to the"
                         " scraping client on a 2-core machine)")
    a = ap.parse_args()
    net = a.net if Path(a.net).exists() else "net"
    quiet, loaded, scrapes = [], [], []
    for _ in range(a.repeat):
        quiet.append(run(net, a.pcap, False, a.workers)[0])
        secs, n = run(net, a.pcap, True, a.workers)
        loaded.append(secs)
        scrapes.append(n)
    q, ld = statistics.median(quiet), statistics.median(loaded)
    print(f"processing, median of {a.repeat}: no scrapes {q:.2f} s, scraped 10/s {ld:.2f} s"
          f" ({min(scrapes)}-{max(scrapes)} scrapes answered per run);"
          f" slowdown {100 * (ld / q - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
