"""Time `net` against Suricata and tshark on the same capture, side by side.

Reads the capture once to warm the page cache (dropped from it first: see warm_cache),
then runs every command R times, interleaved (round 1: each command once, round 2: each
again, ...), so a slow minute of a shared machine falls on all of them alike. The
commands (`--commands`, default all but tcpdump):

    export    net export -read FILE -exit              everything on (the default)
    count     net export -read FILE -exit -exclude ... counting only: every analyzer's record
                                                       types excluded (issue 3's scope)
    capture   net capture -read FILE -out DIR          every record type written
    tshark    tshark -n -q -z io,phs -r FILE
    suricata  suricata -k none -r FILE -l DIR          default configuration, no rules
    tcpdump   tcpdump -nn -r FILE > /dev/null          the floor of reading the file at all

Every run gets a fresh empty directory for DIR (net's records, Suricata's eve.json and logs).
For every run it records, for the command's whole process tree:

- wall time, from start to the exit of the command's own process;
- CPU: user + system time of the process and all its descendants. This script makes itself
  the "child subreaper" (prctl PR_SET_CHILD_SUBREAPER), so descendants whose parent exits
  first are re-parented to it, waits for every one of them, and takes the difference of its
  own RUSAGE_CHILDREN across the run: the kernel adds a process's times (and those of all
  it waited for) to its waiting parent, so this is the CPU of the whole tree, worker
  processes and threads included;
- peak memory: the largest sum of resident set sizes over the tree, sampled from /proc
  every 20 ms. Not ru_maxrss: that is the largest single process, which undercounts a
  command made of several processes. Not a cgroup's peak: this machine has cgroup v1, whose
  memory.max_usage_in_bytes also charges the page cache (the pages of the input read and of
  the files written), and v2's memory.peak is not there. The summed RSS counts pages shared
  between processes (libraries, pages a forked worker still shares with its parent, a
  mapped input) once per process, so for multi-process commands it is an upper bound.
  Beside it, the largest sum of proportional set sizes (PSS, /proc/PID/smaps_rollup: a
  shared page divided among the processes sharing it), which counts each page once: the
  memory the tree takes from the machine. For one process (Suricata, tshark) the two
  differ only by shared libraries. A peak shorter than 20 ms can be missed.

    python bench/run_bench.py                          # bench/out/bench.pcap, 3 rounds
    python bench/run_bench.py -r 5 --pcap /work/bench1m.pcap
    python bench/run_bench.py -r 5 --capture bulk      # bench/out/bulk.pcap (record_bulk.sh)
    python bench/run_bench.py --sizes 250000,1000000   # peak memory against the file size
    python bench/run_bench.py --commands export,suricata
    python bench/run_bench.py --installed              # net from a wheel, not the dev venv

`--installed` times `net` as a user installs it: the package built as a wheel and
installed into a venv of its own (bench/out/installed, rebuilt when the sources change).
The dev venv's editable install checks at every import whether a compiled module needs
rebuilding (meson-python runs ninja), which a user's install never does: ~50 ms of every
run here.

Exits non-zero if a command fails. Never run from tests or CI: it takes minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import os
import resource
import shlex
import shutil
import signal
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
BULK_PCAP = OUT_DIR / "bulk.pcap"  # record_bulk.sh's default output
DEFAULT_PACKETS = 1_000_000
PAGE = os.sysconf("SC_PAGE_SIZE")
PR_SET_CHILD_SUBREAPER = 36
LOADS: list[float] = []  # the 1-minute load average after each run: was the machine busy?

# Every record type an analyzer or the connection table makes: excluding them all leaves
# issue 3's scope (decoding and counting). Keep in step with analyzers/datagrams.py
# (ANALYZER_RECORDS), reassembly/streams.py (KIND_RECORDS) and the flows' Connection.
ANALYZER_TYPES = "Connection,DNS,NTP,DHCPv4,TLSClientHello,TLSServerHello,HTTP,SSH"
NET_EXPORT = ["export", "-read", "{pcap}", "-exit", "-quiet", "-address", "127.0.0.1:0"]
# name -> (argv, whether it runs `net`); "{net}", "{pcap}" and "{out}" are substituted per run
COMMANDS: dict[str, tuple[list[str], bool]] = {
    "export": (["{net}", *NET_EXPORT], True),
    "count": (["{net}", *NET_EXPORT, "-exclude", ANALYZER_TYPES], True),
    "capture": (["{net}", "capture", "-read", "{pcap}", "-out", "{out}", "-quiet"], True),
    "tshark": (["tshark", "-n", "-q", "-z", "io,phs", "-r", "{pcap}"], False),
    "suricata": (["suricata", "-k", "none", "-r", "{pcap}", "-l", "{out}"], False),
    "tcpdump": (["tcpdump", "-nn", "-r", "{pcap}"], False),
}
DEFAULT_COMMANDS = "export,count,capture,tshark,suricata"
LABELS = {"export": "net export -exit", "count": "net export -exit (counting only)",
          "capture": "net capture", "tshark": "tshark -q -z io,phs",
          "suricata": "suricata -k none", "tcpdump": "tcpdump -nn -r"}


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    cpu: float  # user + system seconds of the whole process tree
    peak_bytes: int  # largest summed RSS of the tree
    peak_pss: int = 0  # largest summed PSS of the tree


@dataclass(slots=True)
class Tool:
    name: str
    argv: list[str]
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def peak_mb(self) -> float:  # the largest of the runs: memory is what must fit
        return max(s.peak_bytes for s in self.samples) / 1e6

    @property
    def pss_mb(self) -> float:
        return max(s.peak_pss for s in self.samples) / 1e6


class CommandFailed(Exception):
    pass


def count_packets(path: Path) -> int:
    """Number of records in a classic little-endian pcap (micro- or nanosecond)."""
    size = path.stat().st_size
    caplen = struct.Struct("<I")
    n, pos = 0, 24
    with open(path, "rb", buffering=0) as f:
        if f.read(4) not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            raise SystemExit(f"{path}: not a little-endian pcap")
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


def ensure_bulk(path: Path) -> None:
    """Record the bulk-heavy capture with record_bulk.sh (root: network namespaces)."""
    if path.exists():
        return
    cmd = [str(BENCH / "record_bulk.sh"), str(path)]
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
    """Put the file in the page cache as reading it from disk does: dropped first
    (clean pages: the file is not changed), then read in order. Reading a file that is
    cached already leaves its pages as they were made, and that state varied: pages
    made by the writes of make_bench_pcap.py are 4 KiB folios, pages read ahead from
    disk are large folios (2 MiB on this machine's ext4), which a mapping takes with
    one page-table entry each. On the same file, `net` counting took 0.332 s from 4
    KiB folios and 0.316 s from large ones (10 runs each, alternated; CPU 0.514 and
    0.456 s), so a set's figures depended on the file's history. Every command reads
    the file from the same cache."""
    buf = bytearray(1 << 20)
    with open(path, "rb", buffering=0) as f:
        with contextlib.suppress(OSError, AttributeError):  # not on every system: as is
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while f.readinto(buf):
            pass


def become_subreaper() -> None:
    """Orphaned descendants of the commands are re-parented to this process (and reaped
    here, their CPU counted), not to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class TreeRss:
    """Summed RSS of this process's descendants, from /proc (itself not counted).

    A scan reads the stat file of every process not known to be foreign: one that was
    seen and was not a descendant can never become one (a descendant's ancestors are
    descendants too), so after the first scan only new processes are read, not the whole
    machine's (which cost ~3 ms of CPU per scan here). A pid that vanishes from /proc is
    forgotten, so a reused pid is looked at again."""

    def __init__(self) -> None:
        self.me = os.getpid()
        self.foreign: set[int] = set()
        self.tree: set[int] = set()  # the descendants found by the last scan

    def __call__(self) -> int:
        pids = {int(e) for e in os.listdir("/proc") if e.isdigit()}
        self.foreign &= pids
        parent: dict[int, int] = {}
        rss: dict[int, int] = {}
        for pid in pids - self.foreign:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:  # gone since listed
                continue
            parent[pid] = int(fields[1])
            rss[pid] = int(fields[21]) * PAGE
        children: dict[int, list[int]] = {}
        for pid, pp in parent.items():
            children.setdefault(pp, []).append(pid)
        total, tree, todo = 0, set(), list(children.get(self.me, ()))
        while todo:
            pid = todo.pop()
            tree.add(pid)
            total += rss[pid]
            todo += children.get(pid, ())
        self.foreign |= parent.keys() - tree - {self.me}
        self.tree = tree
        return total

    def pss(self) -> int:
        """Summed PSS of the descendants found by the last scan."""
        total = 0
        for pid in self.tree:
            try:
                with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                    for line in f:
                        if line.startswith(b"Pss:"):
                            total += int(line.split()[1]) * 1024
                            break
            except OSError:  # gone since the scan
                continue
        return total


def _sample_tree(peak: list[int], stop: threading.Event) -> None:
    """RSS every 20 ms; PSS every 10th time (200 ms): reading smaps_rollup walks the page
    tables of every process under its memory lock, which slowed `net export -exit` of the
    1M bench by ~15% when done every 20 ms (4 processes; Suricata's one barely)."""
    tree_rss = TreeRss()
    k = 0
    while not stop.wait(0.02):
        peak[0] = max(peak[0], tree_rss())
        if k % 10 == 0:
            peak[1] = max(peak[1], tree_rss.pss())
        k += 1


def _reap_all(timeout: float = 60) -> None:
    """Wait for every remaining descendant (re-parented here); kill what outlives timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # none left
            return
        if pid == 0:
            if time.monotonic() > deadline:
                for child in _children():
                    os.kill(child, signal.SIGKILL)
            time.sleep(0.01)


def _children() -> list[int]:
    me, found = str(os.getpid()).encode(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[1] == me:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def run_once(argv: list[str]) -> Sample:
    """Run argv with stdout to /dev/null; return its tree's wall time, CPU and peak RSS."""
    with tempfile.TemporaryFile() as err:
        cpu0 = _children_cpu()
        peak, stop = [0, 0], threading.Event()
        sampler = threading.Thread(target=_sample_tree, args=(peak, stop))
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        sampler.start()
        _pid, status, _usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        _reap_all()
        stop.set()
        sampler.join()
        cpu = _children_cpu() - cpu0
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-4000:]
            raise CommandFailed(f"{shlex.join(argv)} exited {proc.returncode}\n{tail}")
    return Sample(seconds, cpu, peak[0], peak[1])


def bench_file(pcap: Path, tools: list[Tool], repeat: int) -> None:
    LOADS.clear()
    warm_cache(pcap)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for r in range(repeat):
        for tool in tools:
            with tempfile.TemporaryDirectory(prefix="run-", dir=OUT_DIR) as out:
                argv = [a.format(pcap=pcap, out=out) for a in tool.argv]
                sample = run_once(argv)
            tool.samples.append(sample)
            LOADS.append(os.getloadavg()[0])
            print(
                f"  round {r + 1}/{repeat} {tool.name:<9} {sample.seconds:7.2f} s wall "
                f"{sample.cpu:7.2f} s CPU {sample.peak_bytes / 1e6:8.1f} MB "
                f"(PSS {sample.peak_pss / 1e6:.1f} MB, load {LOADS[-1]:.1f})",
                file=sys.stderr,
            )


def print_table(pcap: Path, packets: int, tools: list[Tool], repeat: int) -> None:
    where = pcap.relative_to(ROOT) if pcap.is_relative_to(ROOT) else pcap
    print(f"\n{where}: {packets:,} packets, {pcap.stat().st_size / 1e6:.1f} MB; "
          f"{repeat} interleaved rounds; medians (peak: largest of the runs)")
    print(f"load average (1 min) after the runs: {min(LOADS):.1f}-{max(LOADS):.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'command':<34} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'PSS MB':>7} "
          f"{'packets/s':>11}  wall of each run (s)")
    for t in tools:
        runs = " ".join(f"{s.seconds:.2f}" for s in t.samples)
        print(f"{LABELS[t.name]:<34} {t.wall:7.2f} {t.cpu:7.2f} {t.peak_mb:8.1f} "
              f"{t.pss_mb:7.1f} {packets / t.wall:11,.0f}  {runs}")
    by = {t.name: t for t in tools}
    for ref, other in (("export", "suricata"), ("export", "tshark"), ("capture", "suricata"),
                       ("count", "tshark")):
        if ref in by and other in by:
            a, b = by[ref], by[other]
            print(f"{other} / {LABELS[ref]}: wall {b.wall / a.wall:.2f}, "
                  f"CPU {b.cpu / a.cpu:.2f}, peak memory {b.peak_mb / a.peak_mb:.2f} "
                  f"(PSS {b.pss_mb / a.pss_mb:.2f})")


def print_sizes_table(rows: list[tuple[int, list[Tool]]]) -> None:
    (p0, first), (p1, last) = rows[0], rows[-1]
    print(f"\npeak memory (MB, all processes) against the input size, {p1 / p0:.1f}x the packets:")
    print(f"{'command':<34} " + " ".join(f"{p:>11,}" for p, _ in rows) + f" {'growth':>7}")
    for i, t0 in enumerate(first):
        peaks = [tools[i].peak_mb for _, tools in rows]
        cells = " ".join(f"{m:11.1f}" for m in peaks)
        print(f"{LABELS[t0.name]:<34} {cells} {last[i].peak_mb / t0.peak_mb:6.2f}x")


def default_net() -> str | None:
    venv = ROOT / ".venv" / "bin" / "net"
    return str(venv) if venv.exists() else shutil.which("net")


INSTALLED = OUT_DIR / "installed"


def installed_net() -> str:
    """`net` of the package built as a wheel from this checkout and installed into a venv
    of its own (its dependencies from the package index, as a user gets them); built again
    when anything under src/ or the build files changed."""
    h = hashlib.sha256()
    files = sorted(p for p in (ROOT / "src").rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts)
    for p in [*files, ROOT / "meson.build", ROOT / "pyproject.toml"]:
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    stamp, net = INSTALLED / ".built", INSTALLED / "venv" / "bin" / "net"
    if net.exists() and stamp.exists() and stamp.read_text() == h.hexdigest():
        return str(net)
    print("building and installing a wheel of this checkout (bench/out/installed) ...",
          file=sys.stderr)
    shutil.rmtree(INSTALLED, ignore_errors=True)
    INSTALLED.mkdir(parents=True)
    # The dev venv has the build backend, Cython and ninja (make run installed them); its bin
    # first on the PATH, else meson looks for ninja elsewhere (a pyenv shim that has none).
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(INSTALLED / "dist"), str(ROOT)],
                   check=True, env=env)
    subprocess.run([sys.executable, "-m", "venv", str(INSTALLED / "venv")], check=True)
    wheel = next((INSTALLED / "dist").glob("netcap-*.whl"))
    subprocess.run([str(INSTALLED / "venv" / "bin" / "pip"), "install", "-q", str(wheel)],
                   check=True)
    stamp.write_text(h.hexdigest())
    return str(net)


def make_tools(names: list[str], net: str, net_args: str) -> list[Tool]:
    tools = []
    for name in names:
        argv, is_net = COMMANDS[name]
        argv = [a.replace("{net}", net) for a in argv]
        tools.append(Tool(name, argv + shlex.split(net_args) if is_net else argv))
    return tools


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("-r", "--repeat", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("-n", "--packets", type=int, default=DEFAULT_PACKETS,
                    help="packets when building the capture (default 1,000,000)")
    ap.add_argument("--pcap", type=Path,
                    help="capture to time (default bench/out/bench.pcap, built if missing)")
    ap.add_argument("--capture", choices=("bench", "bulk"), default="bench",
                    help="bench: the handshake-rich capture built from the corpus (default); "
                         "bulk: bench/out/bulk.pcap, recorded by record_bulk.sh if missing")
    ap.add_argument("--sizes", help="comma-separated packet counts, e.g. 250000,1000000: "
                    "time one capture per size (bench/out/bench-N.pcap, built if missing)")
    ap.add_argument("--commands", default=DEFAULT_COMMANDS,
                    help=f"comma-separated, of {','.join(COMMANDS)} (default {DEFAULT_COMMANDS})")
    ap.add_argument("--net", default=default_net(), help="net executable (default .venv/bin/net)")
    ap.add_argument("--installed", action="store_true",
                    help="net from a wheel of this checkout in a venv of its own, as a user "
                         "installs it (built into bench/out/installed when missing or stale)")
    ap.add_argument("--net-args", default="", help="extra arguments for every net command")
    args = ap.parse_args(argv)
    if args.installed:
        args.net = installed_net()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    names = [c.strip() for c in args.commands.split(",") if c.strip()]
    if not names or any(n not in COMMANDS for n in names):
        ap.error(f"--commands: choose from {', '.join(COMMANDS)}")
    if any(COMMANDS[n][1] for n in names) and not args.net:
        ap.error("no `net` found: run `make run` (creates .venv) or pass --net")
    for n in names:
        if not COMMANDS[n][1] and not shutil.which(COMMANDS[n][0][0]):
            ap.error(f"no `{COMMANDS[n][0][0]}` found: `make bench` installs it (tools/setup)")

    become_subreaper()
    try:
        if args.sizes:
            sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
            if len(sizes) < 2 or sizes[0] < 1:
                ap.error("--sizes needs at least two positive packet counts")
            rows: list[tuple[int, list[Tool]]] = []
            for n in sizes:
                pcap = sized_capture(n)
                tools = make_tools(names, args.net, args.net_args)
                print(f"{pcap.name}:", file=sys.stderr)
                bench_file(pcap, tools, args.repeat)
                print_table(pcap, n, tools, args.repeat)
                rows.append((n, tools))
            print_sizes_table(rows)
        else:
            if args.pcap is not None:
                pcap = args.pcap.resolve()
                ensure_capture(pcap, args.packets)
            elif args.capture == "bulk":
                pcap = BULK_PCAP
                ensure_bulk(pcap)
            else:
                pcap = DEFAULT_PCAP
                ensure_capture(pcap, args.packets)
            packets = count_packets(pcap)
            tools = make_tools(names, args.net, args.net_args)
            bench_file(pcap, tools, args.repeat)
            print_table(pcap, packets, tools, args.repeat)
    except CommandFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
