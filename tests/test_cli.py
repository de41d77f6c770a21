"""The `net` command line as a user types it (real process, subprocess).

Flags keep the Go Netcap's spelling and are accepted four ways (`-read x`, `--read x`,
`-read=x`, `--read=x`); boolean flags take an optional `=value` in Go's spellings; `-h`
works per command; `net` alone prints usage; `net -version` prints the version.
Bad usage (exit 2, one line) is covered in test_bad_input.py.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corpus import PCAPS
from helpers import frames, net_cmd
from netcap import __version__
from netcap.records.types import RECORDS

SRC = PCAPS / "zeek_icmp_dot1q.pcap"  # Ethernet, Dot1Q, ARP, IPv4, ICMPv4: 15 packets
SRC_TYPES = {"Ethernet", "Dot1Q", "ARP", "IPv4", "ICMPv4"}




def net(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*net_cmd(), *args], capture_output=True, text=True, timeout=60)


def net_many(argvs: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Several `net` runs at once (interpreter start-up dominates these small runs)."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda a: net(*a), argvs))


def records(path: Path) -> list[bytes]:
    """The delimited records after the Header (which holds a creation time)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return frames(data)[1:]


def outputs(out: Path) -> dict[str, list[bytes]]:
    return {p.name: records(p) for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    out = tmp_path_factory.mktemp("ref")
    r = net("capture", "-read", str(SRC), "-out", str(out))
    assert r.returncode == 0, r.stderr
    files = outputs(out)
    assert set(files) == {t + ".ncap.gz" for t in SRC_TYPES}
    return files


@pytest.mark.corpus
def test_value_flag_spellings(reference: dict[str, list[bytes]], tmp_path: Path) -> None:
    styles = ["-{} {}", "--{} {}", "-{}={}", "--{}={}", "-{} {}|--{}={}"]
    argvs = []
    for i, style in enumerate(styles):
        read_style, _, out_style = style.partition("|")
        out = tmp_path / str(i)
        argvs.append(["capture", *read_style.format("read", SRC).split(" "),
                      *(out_style or read_style).format("out", out).split(" ")])
    for i, (style, r) in enumerate(zip(styles, net_many(argvs), strict=True)):
        assert r.returncode == 0, (style, r.stderr)
        assert outputs(tmp_path / str(i)) == reference, style


@pytest.mark.corpus
def test_value_with_equals_and_dash(reference: dict[str, list[bytes]], tmp_path: Path) -> None:
    """With '=', a value may start with '-' or hold '=' itself."""
    odd = tmp_path / "-odd=name.pcap"
    odd.write_bytes(SRC.read_bytes())
    out = tmp_path / "out=dir"
    r = net("capture", f"-read={odd}", f"--out={out}")
    assert r.returncode == 0, r.stderr
    assert outputs(out) == reference


BOOL_SPELLINGS = [
    ("-compress=false", ".ncap"), ("--compress=false", ".ncap"), ("-compress=0", ".ncap"),
    ("-compress=F", ".ncap"), ("-compress=FALSE", ".ncap"), ("--compress=no", ".ncap"),
    ("-compress", ".ncap.gz"), ("-compress=true", ".ncap.gz"), ("--compress=1", ".ncap.gz"),
    ("-compress=t", ".ncap.gz"), ("--compress", ".ncap.gz"),
]


@pytest.mark.corpus
def test_bool_flag_spellings(reference: dict[str, list[bytes]], tmp_path: Path) -> None:
    argvs = [["capture", "-read", str(SRC), "-out", str(tmp_path / str(i)), flag]
             for i, (flag, _) in enumerate(BOOL_SPELLINGS)]
    want = {k.split(".")[0]: v for k, v in reference.items()}
    for i, ((flag, ext), r) in enumerate(zip(BOOL_SPELLINGS, net_many(argvs), strict=True)):
        assert r.returncode == 0, (flag, r.stderr)
        got = outputs(tmp_path / str(i))
        assert set(got) == {t + ext for t in SRC_TYPES}, flag
        assert {k.split(".")[0]: v for k, v in got.items()} == want, flag


@pytest.mark.corpus
def test_last_bool_flag_wins(tmp_path: Path) -> None:
    r = net("capture", "-read", str(SRC), "-out", str(tmp_path), "-compress=false",
            "-compress=true")
    assert r.returncode == 0, r.stderr
    assert all(p.name.endswith(".ncap.gz") for p in tmp_path.iterdir())


@pytest.mark.corpus
def test_list_flag_spellings(tmp_path: Path) -> None:
    variants = [("-include", "ARP,ICMPv4"), ("--include=ARP, ICMPv4",),
                ("-include=ARP,ICMPv4", "-exclude="), ("-exclude", "Ethernet,Dot1Q,IPv4")]
    argvs = [["capture", "-read", str(SRC), "-out", str(tmp_path / str(i)), "-quiet", *args]
             for i, args in enumerate(variants)]
    for i, (args, r) in enumerate(zip(variants, net_many(argvs), strict=True)):
        assert r.returncode == 0 and r.stderr == "", (args, r.stderr)
        names = {p.name for p in (tmp_path / str(i)).iterdir()}
        assert names == {"ARP.ncap.gz", "ICMPv4.ncap.gz"}, args


@pytest.mark.corpus
def test_quiet_and_summary(tmp_path: Path) -> None:
    r = net("capture", "-read", str(SRC), "-out", str(tmp_path))
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.startswith("15 packets (") and "ethernet 15" in r.stderr
    for t in SRC_TYPES:
        assert any(line.split() == [t, str(n)] for line in r.stderr.splitlines()
                   for n in range(1, 16)), t
    r = net("capture", "-read", str(SRC), "-out", str(tmp_path), "--quiet=true")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""


DUMP_FLAGS = [
    ((), "table"), (("-json",), "json"), (("-json=true",), "json"), (("--json=1",), "json"),
    (("-json=false",), "table"), (("-csv",), "csv"), (("--csv=true", "-json=false"), "csv"),
    (("-csv=0",), "table"),
]


@pytest.mark.corpus
def test_dump_format_flags(tmp_path: Path) -> None:
    r = net("capture", "-read", str(SRC), "-out", str(tmp_path), "-quiet", "-include=ARP")
    assert r.returncode == 0
    path = str(tmp_path / "ARP.ncap.gz")
    cases = [(read, flags, kind) for flags, kind in DUMP_FLAGS
             for read in (["-read", path], [f"--read={path}"])]
    results = net_many([["dump", *read, *flags] for read, flags, _ in cases])
    for (_, flags, kind), r in zip(cases, results, strict=True):
        assert r.returncode == 0 and r.stderr == "", (flags, r.stderr)
        first = r.stdout.splitlines()[0]
        if kind == "json":
            assert json.loads(first)["Operation"] in (1, 2), flags
        elif kind == "csv":
            assert first == ",".join(f.name for f in RECORDS["ARP"].fields), flags
        else:
            assert first.split()[0] == "Timestamp" and "," not in first, flags


@pytest.mark.parametrize("cmd", ["capture", "dump"])
@pytest.mark.parametrize("h", ["-h", "--help"])
def test_command_help(cmd: str, h: str) -> None:
    r = net(cmd, h)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith(f"usage: net {cmd}")
    assert "-read" in r.stdout
    if cmd == "capture":
        for flag in ("-out", "-compress", "-payload", "-entropy", "-include", "-exclude"):
            assert flag in r.stdout


def help_sections(text: str) -> dict[str, list[str]]:
    """Section title (up to any parenthesis) -> the flags listed under it, from -h output."""
    out: dict[str, list[str]] = {}
    title = ""
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1].split(" (")[0]
            out[title] = []
        elif title and line.startswith("  -"):
            out[title].append(line.split()[0])
    return out


EXPORT_GROUPS = {
    "options": ["-h"],
    "input": ["-read", "-dir", "-include", "-exclude", "-workers", "-max-flows", "-bpf"],
    "live capture": ["-iface", "-interfaces", "-promisc=false", "-snaplen", "-flush-interval"],
    "output": ["-out", "-quiet"],
    "metrics": ["-address", "-web-config", "-exit", "-labels", "-series-budget",
                "-label-expiry", "-entropy"],
    "replay and backfill": ["-replay", "-speed", "-backfill", "-step"],
}


def test_help_groups_flags() -> None:
    """Every flag is listed once, in Go's spelling, under its group (nothing is left in the
    catch-all "options" but -h); a boolean that is on by default shows how to turn it off."""
    r = net("export", "-h")
    assert r.returncode == 0, r.stderr
    assert help_sections(r.stdout) == EXPORT_GROUPS
    assert ", --" not in r.stdout and "\n  --" not in r.stdout  # one spelling (--x works too)
    # export serves on after the input until Ctrl-C, unless -exit.
    assert "until Ctrl-C" in " ".join(r.stdout.split()) and "with -exit it stops" in \
        " ".join(r.stdout.split())
    r = net("capture", "-h")
    sections = help_sections(r.stdout)
    assert sections["output"] == ["-out", "-compress=false", "-payload", "-entropy", "-quiet"]
    assert sections["live capture"] == EXPORT_GROUPS["live capture"]
    assert sections["options"] == ["-h"] and set(sections) == {
        "options", "input", "live capture", "output"}
    r = net("dump", "-h")
    assert help_sections(r.stdout) == {"options": ["-h"], "input": ["-read"],
                                       "output": ["-json", "-csv", "-header"]}


def test_help_wins_over_missing_required() -> None:
    r = net("capture", "-compress=false", "-h")
    assert r.returncode == 0 and r.stdout.startswith("usage: net capture")


def test_no_arguments_prints_usage() -> None:
    r = net()
    assert r.returncode == 2
    assert r.stdout.startswith("usage: net <command>")
    assert "capture" in r.stdout and "dump" in r.stdout


@pytest.mark.parametrize("h", ["-h", "--help", "help"])
def test_top_level_help(h: str) -> None:
    r = net(h)
    assert r.returncode == 0 and r.stdout.startswith("usage: net <command>")


@pytest.mark.parametrize("v", ["-version", "--version", "version"])
def test_version(v: str) -> None:
    r = net(v)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == f"netcap {__version__}\n"


def test_python_dash_m() -> None:
    r = subprocess.run([sys.executable, "-m", "netcap.cli", "-version"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == f"netcap {__version__}\n"


@pytest.mark.parametrize("address", ["a..b:7777", "nonexistent.invalid:7777"])
def test_an_address_that_cannot_be_served_is_one_line(address: str) -> None:
    """A host name that does not resolve, or that IDNA refuses (an empty label), is a
    usage error in one line (exit 2), not an internal error."""
    r = net("export", "-read", str(SRC), "-exit", "-address", address)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"net export: cannot serve on {address}: ")
    assert len(r.stderr.strip().splitlines()) == 1
