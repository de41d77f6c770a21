#!/usr/bin/env python3
"""Run the fuzz targets (fuzz/fuzz_*.py) under AddressSanitizer and UndefinedBehaviorSanitizer.

    fuzz/run.py [--seconds S] [--runs N] [-j JOBS] [--out DIR] [TARGET...]
    fuzz/run.py --build          (only build or refresh the sanitizer venv)
    fuzz/run.py --replay FILE TARGET   (run one reproducer again, with the sanitizers)

TARGET is a name (`buf` is fuzz/fuzz_buf.py) or the path of a target file; none: every
fuzz/fuzz_*.py. `make fuzz` calls this (FUZZ_SECONDS, FUZZ_RUNS, FUZZ_TARGETS, FUZZ_JOBS).

1. The sanitizer build: netcap built with clang, ASan + UBSan and libFuzzer's coverage
   instrumentation, installed (not editable) into .venv-fuzz with atheris; rebuilt when
   anything under src/ or the build files changed since (a hash kept in the venv).
2. Each target in its own process: atheris's libFuzzer with ASan's runtime preloaded
   (asan_with_fuzzer.so: without it the module's coverage never reaches the fuzzer), the seed
   corpus written from the target's seeds(). An input that crashes, reads out of bounds,
   overflows a signed int, raises, takes over TIMEOUT seconds or RSS_MB of memory is a
   finding: its reproducer is kept under OUT/crashes/NAME/.
3. A table (inputs, seconds, inputs/s, findings) per target; the totals over every run so
   far in OUT/totals.json. Exit status 0: no finding; 1: a finding; 2: bad usage; 3: the
   build or a target could not run.

docs/fuzzing.md has the recipe by hand and how to replay a reproducer.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ_DIR = ROOT / "fuzz"
VENV = ROOT / ".venv-fuzz"
PY = VENV / "bin" / "python"
STAMP = VENV / ".built"  # the hash of what the installed build was made from
BUILD_DIR = ROOT / "build" / "fuzz"  # meson's, kept so a rebuild compiles only what changed
OUT = FUZZ_DIR / "out"

# -O1, line tables and frame pointers as OSS-Fuzz builds: stacks with file:line, fast
# enough, and a module compiles in about a sixth less time than with full -g. UBSan must stop
# the process on its first report, else undefined behaviour is a log line, not a finding.
CFLAGS = ("-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined"
          " -O1 -gline-tables-only -fno-omit-frame-pointer")
LDFLAGS = "-fsanitize=address,undefined"
TIMEOUT = 10  # seconds one input may take
RSS_MB = 2048  # memory the process may use (fuzz_buf's peaks at 500 MB, ASan's shadow included)
# What libFuzzer names a reproducer; a slow-unit- file is not a finding (TIMEOUT is).
FINDING = re.compile(r"^(crash|leak|timeout|oom)-")


def run_env() -> dict[str, str]:
    """The environment of a sanitized process: ASan (and with it libFuzzer) preloaded,
    Python's own allocator off so every object is a malloc with red zones ASan checks."""
    site = subprocess.run([str(PY), "-c", "import atheris; print(atheris.path())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return {**os.environ,
            "LD_PRELOAD": f"{site}/asan_with_fuzzer.so",
            "PYTHONMALLOC": "malloc",
            # Python's own allocations at exit are not the parsers' leaks.
            "ASAN_OPTIONS": "detect_leaks=0",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
            # as netcap.cli sets it: no OpenBLAS threads spinning beside the fuzzer
            "OPENBLAS_NUM_THREADS": "1"}


# -- the sanitizer build ------------------------------------------------------------------

def source_hash() -> str:
    """What the installed build depends on: every file under src/, the build files, flags."""
    h = hashlib.sha256(f"{CFLAGS}\n{LDFLAGS}\n".encode())
    files = [p for p in sorted((ROOT / "src").rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    files += [ROOT / n for n in ("meson.build", "meson.options", "pyproject.toml")]
    for p in files:
        if p.exists():
            h.update(f"{p.relative_to(ROOT)}\n".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


@contextmanager
def locked() -> Iterator[None]:
    """One build at a time (make fuzz and a test run may start together)."""
    BUILD_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR.parent / "fuzz.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(log: Path) -> float | None:
    """Build the sanitizer venv if it is missing or stale: the seconds it took, None if it
    was up to date. Raises CalledProcessError (the log says why)."""
    with locked():
        want = source_hash()
        if STAMP.exists() and STAMP.read_text().strip() == want:
            return None
        started = time.monotonic()
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as out:
            def run(*cmd: str, env: dict[str, str] | None = None) -> None:
                out.write(f"+ {' '.join(cmd)}\n")
                out.flush()
                subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                               env=env, check=True)

            if not PY.exists():
                run(sys.executable, "-m", "venv", str(VENV))
            # The build backend's own requirements (pyproject.toml), as --no-build-isolation
            # needs them installed, and the fuzzer.
            pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
            tools = pyproject["build-system"]["requires"]
            run(str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                *tools, "atheris")
            # meson reads CC and CFLAGS once, when it sets its build directory up: a build
            # directory made with other flags goes.
            flags = BUILD_DIR / "flags"
            if not flags.exists() or flags.read_text() != CFLAGS + LDFLAGS:
                shutil.rmtree(BUILD_DIR, ignore_errors=True)
                BUILD_DIR.mkdir(parents=True)
                flags.write_text(CFLAGS + LDFLAGS)
            env = {**os.environ, "CC": "clang", "CFLAGS": CFLAGS, "LDFLAGS": LDFLAGS}
            run(str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                "--no-build-isolation", f"-Cbuild-dir={BUILD_DIR}", ".", env=env)
        check_instrumented()
        STAMP.write_text(want + "\n")
        return time.monotonic() - started


def check_instrumented() -> None:
    """Every installed compiled module calls ASan's checks and feeds libFuzzer's coverage:
    an uninstrumented module would be fuzzed blind and pass silently."""
    site = subprocess.run([str(PY), "-c", "import netcap, os; print(os.path.dirname("
                           "netcap.__file__))"], capture_output=True, text=True,
                          check=True).stdout.strip()
    modules = sorted(Path(site).rglob("*.so"))
    if not modules:
        raise RuntimeError(f"no compiled module installed under {site}")
    for so in modules:
        blob = so.read_bytes()
        for symbol in (b"__asan_report_load", b"__sanitizer_cov_8bit_counters_init",
                       b"__ubsan_handle_"):
            if symbol not in blob:
                raise RuntimeError(f"{so} is not instrumented ({symbol.decode()} missing)")


# -- running the targets -------------------------------------------------------------------

@dataclass
class Result:
    target: Path
    name: str
    inputs: int = 0
    seconds: float = 0.0  # wall time of the process, start-up and seeds included
    rate: float = 0.0  # inputs per second of fuzzing, as libFuzzer counts them
    findings: list[Path] | None = None  # reproducers written by this run
    error: str = ""  # why the target did not run (or what it found)
    log: Path | None = None


def discover(names: list[str]) -> list[Path]:
    """The target files: the named ones (name or path), or every fuzz/fuzz_*.py."""
    if not names:
        return sorted(FUZZ_DIR.glob("fuzz_*.py"))
    out = []
    for n in names:
        p = Path(n) if n.endswith(".py") else FUZZ_DIR / f"fuzz_{n.removeprefix('fuzz_')}.py"
        if not p.is_file():
            raise SystemExit(f"run.py: no fuzz target {n} ({p})")
        out.append(p.resolve())
    return out


def target_name(path: Path) -> str:
    return path.stem.removeprefix("fuzz_")


# Writes the target's seeds() into the corpus directory, one file each, named by content as
# libFuzzer names what it adds there (so rewriting them is idempotent).
SEEDS = """
import hashlib, runpy, sys
from pathlib import Path
target, corpus = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(target.parent))
for seed in runpy.run_path(str(target))["seeds"]():
    (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
"""


def fuzz_one(target: Path, seconds: int, runs: int, out: Path,
             env: dict[str, str]) -> Result:
    name = target_name(target)
    corpus, crashes = out / "corpus" / name, out / "crashes" / name
    log = out / "logs" / f"{name}.log"
    for d in (corpus, crashes, log.parent):
        d.mkdir(parents=True, exist_ok=True)
    result = Result(target, name, log=log, findings=[])
    seeded = subprocess.run([str(PY), "-c", SEEDS, str(target), str(corpus)], env=env,
                            capture_output=True, text=True)
    if seeded.returncode != 0:
        log.write_text(seeded.stdout + seeded.stderr)
        result.error = "seeds() failed: " + last_line(seeded.stderr)
        return result
    cmd = [str(PY), str(target), f"-rss_limit_mb={RSS_MB}", f"-timeout={TIMEOUT}",
           f"-artifact_prefix={crashes}/", "-print_final_stats=1"]
    if seconds:
        cmd.append(f"-max_total_time={seconds}")
    if runs:
        cmd.append(f"-runs={runs}")
    cmd.append(str(corpus))
    started = time.monotonic()
    with open(log, "w") as f:
        f.write(f"+ {' '.join(cmd)}\n")
        f.flush()
        # The wall-clock bound: the time asked, plus start-up and one slow input's reporting.
        limit = seconds + 10 * TIMEOUT + 60 if seconds else None
        try:
            rc = subprocess.run(cmd, cwd=target.parent, env=env, stdout=f,
                                stderr=subprocess.STDOUT, timeout=limit).returncode
        except subprocess.TimeoutExpired:
            rc = None
    result.seconds = time.monotonic() - started
    text = log.read_text(errors="replace")
    result.inputs, result.rate = parse_stats(text)
    # From the log, not the directory: an input found again has the name it had before.
    written = re.findall(r"Test unit written to (\S+)", text)
    result.findings = [Path(p) for p in written if FINDING.match(Path(p).name)]
    if rc is None:
        result.error = f"still running {limit} s after it started: killed"
    elif result.findings:
        result.error = finding_reason(text)
    elif rc != 0:
        result.error = f"exit status {rc}: " + finding_reason(text)
    return result


def parse_stats(text: str) -> tuple[int, float]:
    """Inputs run and inputs per second from libFuzzer's output (-print_final_stats, which it
    prints on a crash too; else its last status line)."""
    units = re.findall(r"stat::number_of_executed_units: (\d+)", text)
    rate = re.findall(r"stat::average_exec_per_sec:\s+(\d+)", text)
    if units:
        return int(units[-1]), float(rate[-1]) if rate else 0.0
    status = re.findall(r"^#(\d+)\s.*?exec/s: (\d+)", text, re.M)
    if status:
        return int(status[-1][0]), float(status[-1][1])
    return 0, 0.0


def finding_reason(text: str) -> str:
    """The one line that says what went wrong: the sanitizer's summary, the Python
    exception, or libFuzzer's verdict."""
    for pattern in (r"^.*: runtime error: .*$",  # UBSan's, which its SUMMARY lacks
                    r"^\s*=== Uncaught Python exception: ===\n(.*)$",
                    r"^SUMMARY: .*$", r"^==\d+== ERROR: libFuzzer: .*$", r"^ERROR: .*$"):
        m = re.search(pattern, text, re.M)
        if m:
            return (m.group(1) if m.groups() else m.group(0)).strip()
    return last_line(text)


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no output)"


# -- totals --------------------------------------------------------------------------------

def add_totals(path: Path, results: list[Result], code: str) -> dict[str, dict[str, object]]:
    """Add this run to the totals of every run so far. `inputs` counts every run; `on_code`
    only those since the sources last changed (the build hash `code`), which is what the
    current parsers have survived."""
    totals: dict[str, dict[str, object]] = json.loads(path.read_text()) if path.exists() else {}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for r in results:
        t = totals.setdefault(r.name, {"inputs": 0, "seconds": 0.0, "runs": 0, "findings": 0,
                                       "code": code, "on_code": 0})
        if t["code"] != code:
            t["code"], t["on_code"] = code, 0
        t["inputs"] = int(str(t["inputs"])) + r.inputs
        t["on_code"] = int(str(t["on_code"])) + r.inputs
        t["seconds"] = round(float(str(t["seconds"])) + r.seconds, 1)
        t["runs"] = int(str(t["runs"])) + 1
        t["findings"] = int(str(t["findings"])) + len(r.findings or [])
        t["last"] = now
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(totals, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return totals


def table(results: list[Result], totals: dict[str, dict[str, object]]) -> str:
    rows = [("target", "inputs", "seconds", "inputs/s", "findings", "total inputs",
             "on this code")]
    for r in results:
        t = totals.get(r.name, {})
        rows.append((r.name, f"{r.inputs:,}", f"{r.seconds:.0f}", f"{r.rate:,.0f}",
                     str(len(r.findings or [])) + (" (error)" if r.error and not r.findings
                                                   else ""),
                     f"{int(str(t.get('inputs', 0))):,}", f"{int(str(t.get('on_code', 0))):,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("targets", nargs="*", help="names (buf) or paths; default: every target")
    ap.add_argument("--seconds", type=int, default=60,
                    help="fuzzing time per target (0: no limit, then --runs bounds it)")
    ap.add_argument("--runs", type=int, default=0, help="inputs per target (0: no limit)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="targets run at once")
    ap.add_argument("--out", type=Path, default=OUT,
                    help="corpus, reproducers, logs and totals (default fuzz/out)")
    ap.add_argument("--build", action="store_true", help="only build the sanitizer venv")
    ap.add_argument("--replay", type=Path, metavar="FILE",
                    help="run the one target named on this input once (a reproducer)")
    args = ap.parse_args(argv)
    if args.replay and len(args.targets) != 1:
        ap.error("--replay takes one target")
    if not args.build and args.seconds <= 0 and args.runs <= 0:
        ap.error("give --seconds or --runs (else a target runs forever)")
    if shutil.which("clang") is None:
        print("run.py: clang is missing (tools/setup fuzz installs it)", file=sys.stderr)
        return 3
    targets = [] if args.build else discover(args.targets)
    out = args.out.resolve()

    try:
        took = build(out / "logs" / "build.log")
    except (subprocess.CalledProcessError, RuntimeError) as e:
        print(f"run.py: the sanitizer build failed: {e}; see {out / 'logs' / 'build.log'}",
              file=sys.stderr)
        return 3
    print("sanitizer build: " + ("up to date" if took is None else f"built in {took:.0f} s"),
          flush=True)
    if args.build:
        return 0
    if not targets:
        print("run.py: no fuzz targets (fuzz/fuzz_*.py)", file=sys.stderr)
        return 2

    env = run_env()
    if args.replay:  # libFuzzer runs a file argument once, with the sanitizers' report
        return subprocess.run([str(PY), str(targets[0]), str(args.replay.resolve())],
                              cwd=targets[0].parent, env=env).returncode
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda t: fuzz_one(t, args.seconds, args.runs, out, env),
                                targets))
    totals = add_totals(out / "totals.json", results, source_hash())
    print(table(results, totals))
    for r in results:
        if r.error:
            print(f"\n{r.name}: {r.error}\n  log: {r.log}")
            for p in r.findings or []:
                print(f"  reproducer: {p}\n  replay: {sys.argv[0]} --replay {p} {r.target}")
    if any(r.findings for r in results):
        return 1
    return 3 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
