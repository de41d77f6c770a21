"""bench/run_bench.py charges a command for its whole process tree: the CPU and memory of
workers that outlive their parent too, and the sum of the processes' memory, not the largest.

The command measured is a real one: a Python parent that starts two workers, each touching
60 MB and burning 0.3 s of its own CPU, and exits without waiting for them (orphans, as a
program that ends with os._exit leaves). CPU seconds used are the same on a loaded machine;
no wall time is checked. The measuring runs in a subprocess: it makes its process a child
subreaper, which pytest's own process should not become.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"

WORKER = textwrap.dedent("""
    import time
    block = bytearray(60_000_000)
    for i in range(0, len(block), 4096):  # touch every page: resident
        block[i] = 1
    t = time.process_time()
    while time.process_time() - t < 0.3:
        pass
    time.sleep(0.3)  # held long enough for the 20 ms sampler to see both at once
""")
PARENT = textwrap.dedent(f"""
    import subprocess, sys, os
    for _ in range(2):
        subprocess.Popen([sys.executable, "-c", {WORKER!r}])
    os._exit(0)  # without waiting: the workers are re-parented
""")
MEASURE = textwrap.dedent(f"""
    import json, sys
    sys.path.insert(0, {str(BENCH)!r})
    import run_bench
    run_bench.become_subreaper()
    s = run_bench.run_once([sys.executable, "-c", {PARENT!r}])
    print(json.dumps({{"cpu": s.cpu, "peak": s.peak_bytes}}))
""")


def test_whole_tree_is_measured() -> None:
    r = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["cpu"] >= 0.6  # both orphaned workers' 0.3 s, reaped by the subreaper
    assert s["peak"] >= 120_000_000  # the sum of both workers' 60 MB, not the largest


FORKS = textwrap.dedent("""
    import os, time
    block = bytearray(60_000_000)
    for i in range(0, len(block), 4096):  # touch every page: resident
        block[i] = 1
    kids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # a fork: shares the block, untouched since the fork
            time.sleep(0.6)
            os._exit(0)
        kids.append(pid)
    time.sleep(0.6)
    for pid in kids:
        os.waitpid(pid, 0)
""")


def test_pss_counts_pages_shared_by_forks_once() -> None:
    """A process and two forks of it sharing a 60 MB block: the summed RSS counts the block
    three times, the summed PSS once (the memory the tree takes from the machine)."""
    code = MEASURE.replace(repr(PARENT), repr(FORKS)).replace(
        '"peak": s.peak_bytes', '"peak": s.peak_bytes, "pss": s.peak_pss')
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["peak"] >= 180_000_000
    assert 60_000_000 <= s["pss"] < 100_000_000
