"""The mutation-fuzzing harness (bench/mutfuzz.py) works: it runs real `net` cases, tells
each kind of failure from a clean run, buckets them and keeps a minimized reproducer.

Failures are planted through the harness's entry point (a `net` that fails on purpose
for certain inputs, then runs the real one), so these tests check the harness whatever
the state of the product. The product's own zero-findings check is a separate test, a
short smoke (NETCAP_FUZZ_CASES, default 150); `make fuzz-files` runs a whole campaign.
"""

from __future__ import annotations

import mmap
import os
import sys
import time
from pathlib import Path

import pytest

from helpers import load_bench

ROOT = Path(__file__).resolve().parent.parent

mutfuzz = load_bench("mutfuzz")

# Small captures of several formats (corpus), else the project's own.
SMALL = ("tcpdump_dns_udp.pcap", "tcpdump_ntp.pcap", "tcpdump_dhcp-rfc3004.pcap",
         "pcapngtg_le_test006_two-linktypes.pcapng", "ja3_ssl-curl.pcap")


def small_seeds() -> list[Path]:
    found = [mutfuzz.corpus_dir() / "pcaps" / n for n in SMALL]
    found = [p for p in found if p.is_file()]
    if found:
        return found
    own = sorted(p for p in (ROOT / "tests" / "data").rglob("*.pcap*")
                 if "corpus" not in p.parts)
    if not own:
        pytest.skip("no corpus (NETCAP_CORPUS) and no captures of the project's own")
    return own[:3]


class PlantedBug(Exception):
    pass


def _inputs() -> list[bytes]:
    return [p.read_bytes() for p in sorted(Path("in").rglob("*")) if p.is_file()]


def _raise() -> None:
    raise PlantedBug("planted")


def _spin() -> None:
    while True:
        time.sleep(0.001)


def _hog() -> None:
    hog = bytearray(3 << 30)  # past the 1 GiB address-space limit
    hog[0] = 1


def planted(argv: list[str]) -> int:
    """`net`, failing on purpose for inputs that carry a marker (or whose size is 3 mod 7,
    which mutations hit often); otherwise the real entry."""
    for data in _inputs():
        if b"PLANT:raise" in data or len(data) % 7 == 3:
            _raise()
        if b"PLANT:hang" in data:
            _spin()
        if b"PLANT:memory" in data:
            _hog()
        if b"PLANT:exit7" in data:
            return 7
        if b"PLANT:exit3" in data:
            print("net capture: internal error: worker 2 died", file=sys.stderr)
            return 3
        if b"PLANT:abort" in data:
            os.abort()
    return int(mutfuzz.net_main(argv))


def _case_dir(tmp_path: Path, name: str, data: bytes) -> Path:
    work = tmp_path / "work"
    mutfuzz._write(work, {f"in/{name}": data})
    return work


def _unplanted(data: bytes) -> bytes:
    """`data`, made a size that does not plant the size-triggered failure."""
    return data + b"\0" * (4 if len(data) % 7 == 3 else 0)


@pytest.mark.parametrize("plant,kind,key", [
    (b"PLANT:raise", "traceback", "test_mutfuzz.PlantedBug @ tests/test_mutfuzz.py:{raise} _raise"),
    (b"PLANT:hang", "hang", "tests/test_mutfuzz.py _spin"),
    (b"PLANT:memory", "memory", "MemoryError @ tests/test_mutfuzz.py:{hog} _hog"),
    (b"PLANT:exit7", "exit", "exit 7"),
    (b"PLANT:exit3", "traceback", "exit 3: net capture: internal error: worker N died"),
    (b"PLANT:abort", "crash", "SIGABRT"),
])
def test_planted_failures_are_classified(tmp_path: Path, plant: bytes, kind: str,
                                         key: str) -> None:
    lines = {"raise": _raise.__code__.co_firstlineno + 1,
             "hog": _hog.__code__.co_firstlineno + 1}
    runner = mutfuzz.Runner(planted, timeout=2.0)
    runner.grace = 1.0
    seed = small_seeds()[0]
    work = _case_dir(tmp_path, seed.name, _unplanted(seed.read_bytes() + plant))
    o = runner.run(["capture", "-read", f"in/{seed.name}", "-out", "out", "-workers", "1"],
                   work)
    v = mutfuzz.classify(o, runner.mem_limit)
    assert (v.kind, v.key) == (kind, key.format(**lines)), o.stderr[-2000:]
    if kind == "hang":
        assert o.timed_out and o.signal is not None


def test_clean_seeds_are_ok_for_every_command(tmp_path: Path) -> None:
    """Real runs of the three commands on an unmutated capture and its audit records."""
    runner = mutfuzz.Runner(mutfuzz.net_main)
    seed = small_seeds()[0]
    work = _case_dir(tmp_path, seed.name, seed.read_bytes())
    o = runner.run(["capture", "-read", f"in/{seed.name}", "-out", "out", "-workers", "1"],
                   work)
    assert mutfuzz.classify(o, runner.mem_limit).ok and o.status == 0, o.stderr
    made = sorted(p.name for p in (work / "out").glob("*.ncap.gz"))
    assert made, "the capture wrote no audit records"
    assert 0 < o.vmpeak < runner.mem_limit + mutfuzz._vm("VmSize")
    assert 0 < o.maxrss < runner.mem_limit
    os.rename(work / "out", work / "in2")
    runs = [["export", "-exit", "-address", "127.0.0.1:0", "-workers", "1", "-read",
             f"in/{seed.name}"],
            ["export", "-exit", "-address", "127.0.0.1:0", "in2"],
            ["dump", "-read", f"in2/{made[0]}", "-json"]]
    for args in runs:
        o = runner.run(args, work)
        assert mutfuzz.classify(o, runner.mem_limit).ok and o.status == 0, (args, o.stderr)
    assert (work / ".stdout").stat().st_size > 0  # dump's JSON went to the stdout file


def test_a_big_fork_server_leaves_a_case_its_own_limit(tmp_path: Path) -> None:
    """The address-space limit is what a case adds to the fork server's. A test runner's
    grows with every thread that ran in it (glibc reserves 64 MiB per malloc arena): with
    the limit counted from zero, a child of a big server failed to start the exporter's
    threads ("can't start new thread", an exit 3 the campaign took for a finding).
    1.5 GiB of address space reserved here (no memory behind it) stands for such a
    server."""
    reserved = mmap.mmap(-1, 1536 << 20, prot=0,  # PROT_NONE, MAP_NORESERVE: nothing used
                         flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000)
    try:
        runner = mutfuzz.Runner(mutfuzz.net_main)
        seed = small_seeds()[0]
        work = _case_dir(tmp_path, seed.name, seed.read_bytes())
        o = runner.run(["export", "-exit", "-address", "127.0.0.1:0", "-workers", "1",
                        "-read", f"in/{seed.name}"], work)
        assert mutfuzz.classify(o, runner.mem_limit).ok and o.status == 0, o.stderr
        assert o.vmpeak > 1536 << 20
    finally:
        reserved.close()


def test_units_of_a_capture_without_records() -> None:
    """A pcap header and no whole record has no units to minimize by (it raised)."""
    header = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000065000000")
    assert mutfuzz.units("pcap", header) == []
    assert mutfuzz.units("pcap", header + b"\x00" * 5) == []


def test_subprocess_mode_runs_a_program(tmp_path: Path) -> None:
    """--subprocess execs a program (here Python itself, to plant failures; the installed
    `net` for a clean run)."""
    work = tmp_path / "w"
    work.mkdir()
    py = mutfuzz.Runner(None, net=sys.executable, timeout=5.0)
    o = py.run(["-c", "raise KeyError('x')"], work)
    assert mutfuzz.classify(o, py.mem_limit).key == "KeyError @ ?"
    o = py.run(["-c", "import os; os._exit(4)"], work)
    assert mutfuzz.classify(o, py.mem_limit).key == "exit 4"
    net = Path(sys.executable).parent / "net"
    if not net.exists():
        pytest.skip("no installed `net` next to this Python")
    seed = small_seeds()[0]
    work = _case_dir(tmp_path, seed.name, seed.read_bytes())
    runner = mutfuzz.Runner(None, net=str(net), timeout=30.0)
    o = runner.run(["dump", "-read", f"in/{seed.name}"], work)  # a capture is no ncap
    assert mutfuzz.classify(o, runner.mem_limit).ok and o.status == 2, o.stderr


def test_mutations_are_deterministic_and_format_aware() -> None:
    caps = mutfuzz.load_captures(small_seeds())
    gen = mutfuzz.Generator(caps, 7, mutfuzz.COMMANDS)
    a = [gen.case(i) for i in range(60)]
    b = [mutfuzz.Generator(caps, 7, mutfuzz.COMMANDS).case(i) for i in range(60)]
    assert [(c.args, c.files()) for c in a] == [(c.args, c.files()) for c in b]
    assert any(c.files() != gen.case(i).files() for i, c in
               enumerate(mutfuzz.Generator(caps, 8, mutfuzz.COMMANDS).case(i)
                         for i in range(10)))
    ops = {op.split("-")[0] for c in a for op in c.ops}
    assert {"pcap", "pcapng"} <= ops
    assert sum(c.files()[c.target] != c.seed.data for c in a) > 50


def test_protobuf_edits_round_trip() -> None:
    msg = mutfuzz.encode_message([mutfuzz.Field(1, 0, 1_700_000_000 * 10**9),
                                  mutfuzz.Field(2, 2, b"10.0.0.1"),
                                  mutfuzz.Field(3, 2, b"\x08\x05\x08\x06")])
    fields = mutfuzz.parse_message(msg)
    assert fields is not None and mutfuzz.encode_message(fields) == msg
    stream = mutfuzz.join_frames([msg, msg[:5]])
    assert mutfuzz.split_frames(stream) == ([msg, msg[:5]], b"")
    assert mutfuzz.read_uvarint(b"\x80" * 11, 0) is None  # more than 10 bytes: not one


def test_campaign_finds_buckets_and_minimizes(tmp_path: Path) -> None:
    """~90 cases over the three commands with a planted bug: every planted case lands in
    one bucket, whose reproducer is saved, minimized, and still fails the same way."""
    cfg = mutfuzz.Config(cases=90, out=tmp_path / "out", capture_seeds=small_seeds(),
                         ncap_from=2, minimize_seconds=3, timeout=20, quiet=True,
                         workdir=tmp_path / "scratch")
    camp = mutfuzz.Campaign(cfg, entry=planted)
    seeds = camp.build_seeds()
    assert any(s.kind == "ncap" and s.gz for s in seeds)
    assert any(s.kind == "ncap" and not s.gz for s in seeds)
    assert camp.gen is not None
    cases = [camp.gen.case(i) for i in range(90)]
    hit = [c.command for c in cases if any(len(d) % 7 == 3 for d in c.files().values())]
    assert hit
    summary = camp.run()
    assert summary.cases == {"capture": 30, "export": 30, "dump": 30}
    assert sum(summary.verdicts.values()) == 90
    planted_buckets = [b for b in summary.buckets.values() if "PlantedBug" in b.verdict.key]
    assert sorted(b.command for b in planted_buckets) == sorted(set(hit))  # one per command
    assert sum(b.count for b in planted_buckets) == len(hit)
    for b in planted_buckets:
        where = Path(b.path) if Path(b.path).is_absolute() else ROOT / b.path
        info = (where / "info.json").read_text()
        assert '"test_mutfuzz.PlantedBug @' in info
        files = [p for p in (where / "in").rglob("*") if p.is_file()]
        assert any(len(p.read_bytes()) % 7 == 3 for p in files)
        original = [p for p in (where / "original" / "in").rglob("*") if p.is_file()]
        assert sum(p.stat().st_size for p in files) <= sum(p.stat().st_size for p in original)
        assert (where / "cmd.txt").read_text().startswith("# ")
    assert "cases/s" in (tmp_path / "out" / "summary.txt").read_text()


def test_fuzzing_finds_nothing(tmp_path: Path) -> None:
    """The product under a short campaign (a smoke: 150 cases, about 20 s; the issue's
    20,000 run with `make fuzz-files`): no traceback, bad exit, hang or memory finding.
    NETCAP_FUZZ_CASES sets a longer run."""
    cases = int(os.environ.get("NETCAP_FUZZ_CASES", "150"))
    cfg = mutfuzz.Config(cases=cases, out=tmp_path / "out", minimize_seconds=10, quiet=True,
                         ncap_from=20)
    camp = mutfuzz.Campaign(cfg)
    try:
        summary = camp.run()
    finally:
        camp.close()
    assert summary.findings == 0, summary.table()
