"""CPU per stage of one `net` run: decode, flows, reassembly, each analyzer, encode, parent.

One run of the command under py-spy (sampling every process of the tree, `--subprocesses`,
without pausing them, `--nonblocking`; installed into the venv if missing), inside a small
wrapper that measures the CPU of the whole tree as run_bench.py does (child subreaper,
RUSAGE_CHILDREN: user + system of every process). Each sample of a `net` process is given to
a stage, and each stage's share of the samples is applied to the measured CPU (a sampler
also counts a thread that is runnable but waiting for a core as busy, so on a loaded machine
sample counts overstate seconds; shares hold):

- a sample of the parent process (the one `net` started as) belongs to the stage of its
  innermost netcap frame as below (the stages that span batches run there: flows, and,
  unless a stream process runs them, defragmentation and the compiled stream stage, whose
  samples land in `StreamSide._stream`); the rest of it (reading the input, handing out
  batches, merging metrics) is "parent"; the stream process of a parallel run (frames
  under `_stream_process`) is classified the same way, its rest "stream process (other)";
- in the worker processes, a sample belongs to the stage of its innermost frame
  in netcap's own code: decode (decode/, sources/, gather.py), flows (flows/), IP
  defragmentation (reassembly/ip.py), TCP reassembly (reassembly/tcp.py, streams.py: in a
  decode worker, where segments are cut out of each batch, "TCP segment picking"), one
  per analyzer (analyzers/http.py is "HTTP", ...; analyzers/datagrams.py "UDP analyzer
  dispatch"), metrics (metrics/), encode (sinks/, records/); what runs below that frame in
  the standard library or numpy counts for the stage that called it;
- in those processes, imports are "start-up", and pickling, pipes and waiting on them
  (multiprocessing, pickle, selectors, below the pipeline's own code) are
  "IPC"; other pipeline code is "pipeline (other)";
- a sample whose innermost frame is a wait (a blocking read from a pipe, select, a condition
  or lock) is left out: py-spy's idle detection does not tell these from running threads
  on this machine (the raw sample count was several times the measured CPU).

Code compiled into extension modules (the compiled core, issue 13) has no Python frames:
py-spy charges its time to the Python function that called it. So a second run under
`perf record` (every process, on-CPU samples) gives each shared object's own CPU: each of
netcap's compiled modules by name, the interpreter, numpy, the kernel (`--no-perf` skips
it). Read a compiled module's figure as the CPU of the stage it implements, contained in
its caller's stage of the first table.

    python bench/stages.py --pcap /work/bench1m.pcap                # net export -exit
    python bench/stages.py --pcap bench/out/bulk.pcap --command capture
    python bench/stages.py --pcap FILE --json out.json              # also as JSON

Not run by tests or CI: a profiled run of a large capture takes a while.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = ROOT / ".venv" / "bin"
ANALYZER_TYPES = "Connection,DNS,NTP,DHCPv4,TLSClientHello,TLSServerHello,HTTP,SSH"
NET_EXPORT = ["export", "-read", "{pcap}", "-exit", "-quiet", "-address", "127.0.0.1:0"]
COMMANDS = {
    "export": NET_EXPORT,
    "count": [*NET_EXPORT, "-exclude", ANALYZER_TYPES],
    "capture": ["capture", "-read", "{pcap}", "-out", "{out}", "-quiet"],
}
# innermost netcap module (path under netcap/, without .py) -> stage, first match wins
STAGES: list[tuple[str, str]] = [
    (r"decode/|sources/|gather$", "decode"),
    (r"flows/", "flows"),
    (r"reassembly/_?ip$", "IP defragmentation"),
    (r"reassembly/_?(tcp|streams)$", "TCP reassembly"),
    (r"analyzers/_?http$", "HTTP"),
    (r"analyzers/_?tls$", "TLS"),
    (r"analyzers/_?dns$", "DNS"),
    (r"analyzers/_?ssh$", "SSH"),
    (r"analyzers/_?dhcp$", "DHCPv4"),
    (r"analyzers/_?ntp$", "NTP"),
    (r"analyzers/_?datagrams$", "UDP analyzer dispatch"),
    (r"metrics/", "metrics"),
    (r"sinks/|records/", "encode"),
]
STREAM_STAGE = "stream stage (compiled: reassembly + stream analyzers)"
ORDER = ["parent", "decode", "flows", "IP defragmentation", "TCP segment picking",
         "TCP reassembly", STREAM_STAGE, "HTTP", "TLS",
         "DNS", "SSH", "DHCPv4", "NTP", "UDP analyzer dispatch", "metrics", "encode", "IPC",
         "start-up", "stream process (other)", "pipeline (other)", "other"]
IPC = re.compile(r"\((multiprocessing|pickle|selectors|copyreg|socket|queue|threading)\.py"
                 r"|\(multiprocessing/|<built-in method (loads|dumps)")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(:\d+)?\)$")
NETCAP = re.compile(r"(?:^|/)netcap/(?P<mod>[\w/]+?)(?:\.py|\.pyx)?$")
# Innermost frames that are a thread waiting (a blocking read, select, a lock or condition):
# py-spy does not tell these from running threads here, so they are left out of the shares.
IDLE = re.compile(r"^(Condition\.wait|Event\.wait|Thread\.join|Thread\._wait_for_tstate_lock"
                  r"|_PollLikeSelector\.select|SelectSelector\.select|Connection\._recv"
                  r"|_ConnectionBase\.recv_bytes|wait|_try_wait|Popen\._wait|sleep"
                  r"|Queue\.get|SimpleQueue\.get|_recv_msg|accept) \(")
PROCESS = re.compile(r'^process \d+:"')


def stage_of(frames: list[str]) -> str:
    """The stage of one sample of a worker or stream process (frames outermost first)."""
    if any("_find_and_load" in f or "<frozen importlib" in f for f in frames):
        return "start-up"
    for i in range(len(frames) - 1, -1, -1):
        m = FRAME.match(frames[i])
        n = NETCAP.search(m["file"]) if m else None
        if n is None:
            continue
        for pattern, stage in STAGES:
            if re.search(pattern, n["mod"]):
                return stage
        below = frames[i + 1:]  # the pipeline's own code, or IPC it called
        return "IPC" if any(IPC.search(f) for f in below) else "pipeline (other)"
    return "IPC" if any(IPC.search(f) for f in frames) else "other"


def classify(raw: Path) -> tuple[Counter[str], Counter[str], Counter[tuple[str, str]]]:
    """Samples per stage and per process kind from py-spy's raw (collapsed) output. The
    outermost process is the wrapper (not counted), the next `net`'s parent process."""
    stages: Counter[str] = Counter()
    procs: Counter[str] = Counter()
    leaves: Counter[tuple[str, str]] = Counter()  # (stage, innermost frame)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        depth = 0
        while depth < len(frames) and PROCESS.match(frames[depth]):
            depth += 1
        if depth < 2:  # the wrapper itself
            continue
        n = int(count)
        body = frames[depth:]
        if IDLE.match(frames[-1]):
            procs["(waiting, not counted)"] += n
            continue
        side = any(f.startswith("_stream_process (") for f in body)
        if depth == 2 or side:  # the parent, or the stream process (parallel runs): the
            # stages that span batches run there
            stage = stage_of(body)
            if stage == "pipeline (other)" and any(
                    f.startswith(("StreamSide._stream (", "_stream (")) for f in body):
                # the compiled stream stage (reassembly and the stream analyzers in one
                # call per batch): py-spy sees no Python frame inside it
                stage = STREAM_STAGE
            elif stage == "pipeline (other)":
                stage = "stream process (other)" if side else "parent"
            stages[stage] += n
            procs["stream process" if side else "parent"] += n
            leaves[stage, frames[-1]] += n
            continue
        stage = stage_of(body)
        kind = "decode workers"
        if stage == "TCP reassembly":
            stage = "TCP segment picking"  # the workers' side: segments cut out per batch
        leaves[stage, frames[-1]] += n
        stages[stage] += n
        if stage == "start-up":
            kind = "workers' start-up"
        procs[kind] += n
    return stages, procs, leaves


def measure(out: Path, argv: list[str]) -> int:
    """The wrapper: run argv, reap its whole tree, write wall time and CPU to `out`."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come back here
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    code = proc.wait()
    wall = time.perf_counter() - t0
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.write_text(json.dumps({"wall": wall, "user": u.ru_utime, "sys": u.ru_stime,
                               "status": code}))
    return code


def py_spy() -> str:
    found = shutil.which("py-spy", path=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    if found:
        return found
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(VENV_BIN / "py-spy")


def profile(argv: list[str], rate: int, work: Path) -> tuple[dict[str, float], Path]:
    raw, meas = work / "pyspy.txt", work / "measure.json"
    cmd = [py_spy(), "record", "--subprocesses", "--nonblocking", "-r", str(rate),
           "--format", "raw", "-o", str(raw), "--", sys.executable, __file__,
           "--measure", str(meas), "--", *argv]
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or not meas.exists():
        raise SystemExit(f"py-spy run failed ({r.returncode}):\n{r.stderr[-3000:]}")
    m = json.loads(meas.read_text())
    if m["status"] != 0:
        raise SystemExit(f"net exited {m['status']} under py-spy")
    return m, raw


def perf_dsos(argv: list[str], work: Path) -> tuple[dict[str, float], int]:
    """Shares of on-CPU samples per shared object over the whole tree (perf record)."""
    data = work / "perf.data"
    r = subprocess.run(["perf", "record", "-q", "-F", "499", "-o", str(data), "--", *argv],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"perf record failed ({r.returncode}):\n{r.stderr[-3000:]}")
    rep = subprocess.run(["perf", "report", "-i", str(data), "--sort", "dso", "--stdio",
                          "--percent-limit", "0.5"], capture_output=True, text=True)
    shares: dict[str, float] = {}
    samples = 0
    for line in rep.stdout.splitlines():
        if m := re.match(r"# Samples: (\d+)([KM]?)", line):  # perf writes 4K for ~4,000
            samples = int(m[1]) * {"": 1, "K": 1000, "M": 1_000_000}[m[2]]
        elif m := re.match(r"\s+([\d.]+)%\s+(\S.*?)\s*$", line):
            shares[m[2]] = float(m[1]) / 100
    return shares, samples


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--measure"]:  # the wrapper py-spy runs
        return measure(Path(args_in[1]), args_in[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--pcap", type=Path, required=True, help="capture to run on")
    ap.add_argument("--command", choices=COMMANDS, default="export",
                    help="export: net export -exit, everything on (default); count: with "
                         "every analyzer's records excluded; capture: net capture")
    ap.add_argument("--net", default=str(VENV_BIN / "net"), help="net executable")
    ap.add_argument("--net-args", default="", help="extra arguments for net")
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second (100)")
    ap.add_argument("--top", type=int, default=0, help="print the N most sampled frames")
    ap.add_argument("--no-perf", action="store_true", help="skip the perf run")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(args_in)

    with tempfile.TemporaryDirectory(prefix="nc-stages-") as tmp:
        work = Path(tmp)
        out = work / "records"
        net_argv = [args.net, *(a.format(pcap=args.pcap.resolve(), out=out)
                                for a in COMMANDS[args.command]), *args.net_args.split()]
        m, raw = profile(net_argv, args.rate, work)
        stages, procs, leaves = classify(raw)
        shutil.rmtree(out, ignore_errors=True)
        dsos: dict[str, float] = {}
        perf_samples = 0
        if not args.no_perf and shutil.which("perf"):
            dsos, perf_samples = perf_dsos(net_argv, work)

    cpu = m["user"] + m["sys"]
    total = sum(stages.values())
    print(f"{' '.join(map(str, net_argv))}\n"
          f"profiled run: {m['wall']:.2f} s wall, {cpu:.2f} s CPU in all processes "
          f"({m['user']:.2f} user + {m['sys']:.2f} system); {total} py-spy samples at "
          f"{args.rate}/s")
    print(f"\n{'stage':<24} {'CPU s':>7} {'share':>7}")
    for stage in [s for s in ORDER if stages[s]] + [s for s in stages if s not in ORDER]:
        print(f"{stage:<24} {cpu * stages[stage] / total:7.2f} {stages[stage] / total:7.1%}")
    print(f"\n{'process kind':<24} {'CPU s':>7} {'share':>7}")
    for kind, n in procs.most_common():
        if kind.startswith("("):
            print(f"{kind:<24} {'':>7} {n / total:7.1%} of the counted samples")
            continue
        print(f"{kind:<24} {cpu * n / total:7.2f} {n / total:7.1%}")
    if args.top:
        print(f"\nthe {args.top} innermost frames sampled most")
        for (stage, frame), n in leaves.most_common(args.top):
            print(f"{n / total:6.1%} {stage:<22} {frame[:100]}")
    if dsos:
        print(f"\nperf: on-CPU samples per shared object ({perf_samples:,} at 499/s; "
              "over 0.5%), all processes")
        for dso, share in sorted(dsos.items(), key=lambda kv: -kv[1]):
            print(f"{dso:<52} {share:7.1%}")
    if args.json:
        args.json.write_text(json.dumps({
            "argv": net_argv, "measured": m, "samples": dict(stages),
            "cpu_seconds": {s: cpu * n / total for s, n in stages.items()},
            "processes": {k: cpu * n / total for k, n in procs.items() if k[0] != "("},
            "perf_dso_shares": dsos}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
