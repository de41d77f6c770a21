"""How a run ends: stopping on SIGINT/SIGTERM, output paths checked up front, file modes,
and the summary (issue 12, items 6, 7 and 8).

Every test starts the real `net` process. The stopping tests give it an input large
enough to be mid-way when the signal comes (the sample capture repeated, timestamps
shifted so time goes on), signal it as soon as it is working, and check that it ends
within a generous bound (a hang check, not a speed check), that no process it started
is left, that every output is complete (`net dump` reads it; no `*.part`), and that it
says it was interrupted (so the signal really came mid-way).
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import net_cmd

SAMPLE = Path(__file__).parent / "data" / "sample.pcap"
SIGNALS = [signal.SIGTERM, signal.SIGINT]
# The sample's packets: the recorded mix, each frame decoded as one Ethernet record.
SAMPLE_PACKETS = 194
HANG_SECONDS = 15.0  # a stopped run must have ended by then (it takes well under 1 s)


def copies_for(size: int) -> int:
    """Copies of the sample that make about `size` bytes."""
    return -(-size // SAMPLE.stat().st_size)


def repeat_capture(src: Path, out: Path, copies: int) -> int:
    """`copies` times the packets of the classic little-endian µs pcap `src`, each copy
    one second after the one before; returns the packets written."""
    data = src.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    recs: list[tuple[int, bytes]] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, pos)
        recs.append((sec * 1_000_000 + usec, data[pos : pos + 16 + incl]))
        pos += 16 + incl
    span = recs[-1][0] - recs[0][0] + 1_000_000
    with out.open("wb") as f:
        f.write(data[:24])
        for k in range(copies):
            for t, rec in recs:
                t += k * span
                f.write(struct.pack("<II", t // 1_000_000, t % 1_000_000) + rec[8:])
    return copies * len(recs)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 200 MB, 800,000 packets: several seconds of work with -workers 2."""
    path = tmp_path_factory.mktemp("big") / "big.pcap"
    repeat_capture(SAMPLE, path, copies_for(200 << 20))
    return path


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc: children, their children, ...)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in found]
        found.update(kids)
        todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at its end is killed (with what it
    started), so a failing test leaves nothing behind either."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            for kid in descendants(p.pid):
                with contextlib.suppress(OSError):  # it may have ended meanwhile
                    os.kill(kid, signal.SIGKILL)
            p.kill()
            p.wait()


def wait_for(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def stop_and_check(proc: subprocess.Popen[str], sig: signal.Signals, started: object,
                   helpers: int) -> tuple[int, str]:
    """Wait until `started()` (the run is working) and its `helpers` child processes
    are up, signal it, and check it ends in time leaving no process behind."""
    wait_for(lambda: proc.poll() is not None or (
        started() and len(descendants(proc.pid)) >= helpers),  # type: ignore[operator]
        60, "the run to start working")
    assert proc.poll() is None, "the run ended before it was signalled: input too small"
    kids = descendants(proc.pid)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        for k in kids:
            with contextlib.suppress(OSError):
                os.kill(k, signal.SIGKILL)
        raise AssertionError(f"{sig.name}: still running after {HANG_SECONDS}s") from None
    left = [k for k in kids if alive(k)]
    for k in left:  # not to outlive the test when it fails
        with contextlib.suppress(OSError):
            os.kill(k, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"
    assert "Traceback" not in err, err
    return proc.returncode, err


def check_outputs(out: Path) -> dict[str, int]:
    """Every audit-record file in `out` reads to its end with `net dump` (exit 0); no
    `*.part` is left. Returns records per file."""
    assert not list(out.rglob("*.part")), list(out.rglob("*.part"))
    files = sorted(out.rglob("*.ncap.gz"))
    assert files, "no audit-record files"
    counts = {}
    for f in files:
        r = subprocess.run([*net_cmd(), "dump", "-read", str(f), "-csv"], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, (f, r.stderr)
        counts[f.name] = len(r.stdout.splitlines()) - 1
    return counts


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_capture_read_stops_on_signal(big: Path, tmp_path: Path, sig: signal.Signals,
                                      running: list[subprocess.Popen[str]]) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([*net_cmd(), "capture", "-read", str(big), "-out", str(out),
                             "-workers", "2"], stderr=subprocess.PIPE, text=True)
    running.append(proc)
    # Working: the files are open and the 2 decode workers run (the stream stage is in
    # the parent).
    code, err = stop_and_check(proc, sig, lambda: any(out.glob("*.part")), 2)
    assert code == 1, err
    assert f"interrupted by {sig.name}" in err, err
    counts = check_outputs(out)
    assert 0 < counts["Ethernet.ncap.gz"] < 300_400, counts
    # The connections open at the stop were ended and written, as at the end of input.
    assert counts.get("Connection.ncap.gz", 0) > 0, counts


def test_capture_gzip_input_stops_on_signal(tmp_path: Path,
                                            running: list[subprocess.Popen[str]]) -> None:
    """Gzip input: the workers each read the whole stream and take their share of the
    batches (another path through the parent than an uncompressed file's)."""
    import gzip

    plain = tmp_path / "big.pcap"
    copies = copies_for(75 << 20)
    repeat_capture(SAMPLE, plain, copies)
    packed = tmp_path / "big.pcap.gz"
    with plain.open("rb") as f, gzip.open(packed, "wb", compresslevel=1) as g:
        while block := f.read(1 << 20):
            g.write(block)
    plain.unlink()
    out = tmp_path / "out"
    proc = subprocess.Popen([*net_cmd(), "capture", "-read", str(packed), "-out", str(out),
                             "-workers", "2"], stderr=subprocess.PIPE, text=True)
    running.append(proc)
    code, err = stop_and_check(proc, signal.SIGTERM, lambda: any(out.glob("*.part")), 2)
    assert code == 1 and "interrupted by SIGTERM" in err, err
    assert 0 < check_outputs(out)["Ethernet.ncap.gz"] < copies * SAMPLE_PACKETS


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_export_out_stops_on_signal(big: Path, tmp_path: Path, sig: signal.Signals,
                                    running: list[subprocess.Popen[str]]) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([*net_cmd(), "export", "-read", str(big), "-out", str(out),
                             "-workers", "2", "-address", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    running.append(proc)
    code, err = stop_and_check(proc, sig, lambda: any(out.glob("*.part")), 2)
    assert code == 1, err
    assert f"interrupted by {sig.name}" in err and "metrics on" not in err, err
    assert 0 < check_outputs(out)["Ethernet.ncap.gz"] < 300_400


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_export_replay_stops_on_signal(tmp_path: Path, sig: signal.Signals,
                                       running: list[subprocess.Popen[str]]) -> None:
    """A slow replay waits between packets: the signal must end the wait."""
    out = tmp_path / "out"
    proc = subprocess.Popen([*net_cmd(), "export", "-read", str(SAMPLE), "-replay",
                             "-speed", "0.1", "-out", str(out), "-workers", "2",
                             "-address", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    running.append(proc)
    t0 = time.monotonic()
    code, err = stop_and_check(proc, sig, lambda: time.monotonic() - t0 > 1.5, 0)
    assert code == 1, err
    assert f"interrupted by {sig.name}" in err, err
    check_outputs(out)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_export_backfill_stops_on_signal(big: Path, tmp_path: Path, sig: signal.Signals,
                                         running: list[subprocess.Popen[str]]) -> None:
    """Backfill runs in one process; what was sampled before the signal is written,
    complete (`# EOF`), and promtool turns it into blocks."""
    out, om = tmp_path / "out", tmp_path / "big.om"
    proc = subprocess.Popen([*net_cmd(), "export", "-read", str(big), "-backfill", str(om),
                             "-step", "1s", "-out", str(out), "-workers", "2",
                             "-address", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    running.append(proc)
    code, err = stop_and_check(proc, sig, lambda: any(out.glob("*.part")), 0)
    assert code == 1, err
    assert f"interrupted by {sig.name}" in err, err
    check_outputs(out)
    assert not list(tmp_path.glob("*.part"))
    assert om.read_text().endswith("# EOF\n")
    r = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om),
                        str(tmp_path / "data")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_export_records_stop_on_signal(big: Path, tmp_path: Path,
                                       running: list[subprocess.Popen[str]]) -> None:
    """Audit records replayed (-replay over a directory) stop as captures do."""
    records = tmp_path / "records"
    r = subprocess.run([*net_cmd(), "capture", "-read", str(SAMPLE), "-out", str(records)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen([*net_cmd(), "export", str(records), "-replay", "-speed", "0.1",
                             "-address", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    running.append(proc)
    t0 = time.monotonic()
    code, err = stop_and_check(proc, signal.SIGTERM, lambda: time.monotonic() - t0 > 1.5, 0)
    assert code == 1 and "interrupted by SIGTERM" in err, err


# -- output paths, checked before any work (item 7) --------------------------------------

@pytest.mark.parametrize(("flag", "where", "why"), [
    ("-out", "{file}", "File exists"),
    ("-out", "{file}/sub", "Not a directory"),
    ("-out", "/proc/1", "cannot create files here"),  # root can write anywhere but here
    ("-backfill", "{tmp}/nodir/x.om", "No such file or directory"),
    ("-backfill", "{file}/x.om", "Not a directory"),
    ("-backfill", "{tmp}", "Is a directory"),
    ("-backfill", "/proc/1/x.om", "cannot create files here"),
])
def test_export_output_paths_fail_first(tmp_path: Path, flag: str, where: str,
                                        why: str) -> None:
    """One line, exit 2, before anything is processed (no summary, no records)."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    path = where.format(file=afile, tmp=tmp_path)
    extra = ["-out", str(tmp_path / "records")] if flag == "-backfill" else []
    r = subprocess.run([*net_cmd(), "export", "-read", str(SAMPLE), "-exit", flag, path,
                        *extra, "-address", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and why in r.stderr, r.stderr
    assert r.stderr.startswith("net export: ") and "input(s)" not in r.stderr
    assert not list(tmp_path.rglob("*.ncap.gz"))


def test_capture_output_path_fails_first(tmp_path: Path) -> None:
    r = subprocess.run([*net_cmd(), "capture", "-read", str(SAMPLE), "-out", "/proc/1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr == "net capture: /proc/1: cannot create files here (No such file or" \
                       " directory)\n"


def test_missing_out_directory_is_made(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    r = subprocess.run([*net_cmd(), "export", "-read", str(SAMPLE), "-exit", "-out", str(out),
                        "-address", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    check_outputs(out)


# -- summaries, modes and the rate once done (item 8) -------------------------------------

def test_exit_summary_does_not_claim_serving() -> None:
    r = subprocess.run([*net_cmd(), "export", "-read", str(SAMPLE), "-exit",
                        "-address", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"{SAMPLE_PACKETS} packets" in r.stderr and "metrics on" not in r.stderr, r.stderr


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o640), (0o002, 0o640), (0o077, 0o600)])
def test_output_files_are_not_world_readable(tmp_path: Path, umask: int, mode: int) -> None:
    """Audit records (and the backfill file) hold headers, cookies and query strings:
    created 0o640 & ~umask; a file left world-readable by an earlier run is replaced."""
    out, om = tmp_path / "out", tmp_path / "x.om"
    out.mkdir()
    stale = out / "Ethernet.ncap.gz"
    stale.write_bytes(b"old")
    stale.chmod(0o644)
    om.write_text("old")
    om.chmod(0o644)

    def set_umask() -> None:
        os.umask(umask)

    for argv in (["capture", "-read", str(SAMPLE), "-out", str(out)],
                 ["export", "-read", str(SAMPLE), "-exit", "-backfill", str(om),
                  "-address", "127.0.0.1:0"]):
        r = subprocess.run([*net_cmd(), *argv], capture_output=True, text=True, timeout=60,
                           preexec_fn=set_umask)
        assert r.returncode == 0, r.stderr
    files = [*out.iterdir(), om]
    assert len(files) > 3
    for f in files:
        assert f.stat().st_mode & 0o777 == mode, (f, oct(f.stat().st_mode))
    assert check_outputs(out)["Ethernet.ncap.gz"] == SAMPLE_PACKETS


def test_processing_rate_is_zero_once_done(running: list[subprocess.Popen[str]]) -> None:
    """A replay sets the rate while it runs (3.5 s here); once the input is done it
    is 0."""
    import urllib.request

    from helpers import free_port, wait_http

    port = free_port()
    proc = subprocess.Popen([*net_cmd(), "export", "-read", str(SAMPLE), "-replay", "-speed",
                             "5", "-address", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True)
    running.append(proc)
    url = f"http://127.0.0.1:{port}/metrics"
    wait_http(url)

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                if line and not line.startswith("#")}

    seen_rate = 0.0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = scrape()
        if m.get("nc_input_done") == 1.0:
            break
        seen_rate = max(seen_rate, m.get("nc_processing_rate_packets_per_second", 0.0))
        time.sleep(0.2)
    else:
        raise AssertionError("the replay did not finish")
    assert seen_rate > 0  # the test sees a rate while it runs (so it can fail)
    assert m["nc_processing_rate_packets_per_second"] == 0.0
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=HANG_SECONDS)
    assert proc.returncode == 0, err  # stopping the serving is the normal end


def test_live_summary_gives_the_capture_time(tmp_path: Path,
                                             running: list[subprocess.Popen[str]]) -> None:
    """`net capture -iface` summarizes the time it captured, not 0.00s (loopback only)."""
    if os.geteuid() != 0:
        pytest.skip("live capture needs root")
    proc = subprocess.Popen([*net_cmd(), "capture", "-iface", "lo", "-bpf", "udp port 9",
                             "-out", str(tmp_path)], stderr=subprocess.PIPE, text=True)
    running.append(proc)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # printed when capturing starts
    assert "capturing on lo" in first, first
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG_SECONDS)
    assert proc.returncode == 0, err
    summary = next(line for line in err.splitlines() if " packets (" in line)
    seconds = float(summary.split(" in ")[1].split("s ")[0])
    assert seconds >= 1.0, summary
