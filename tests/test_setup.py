"""The set-up that `make run` and `make test` do themselves (tools/setup), and the rule that a
missing tool skips on a developer machine but fails under CI (tests/conftest.py).

tools/setup is run for real on a PATH made of a few links, so the missing-package list and
the install plan (root, sudo, neither) are computed as on a fresh machine, without removing
anything from this one; `-n` prints the apt-get commands instead of running them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import require

ROOT = Path(__file__).parent.parent
SETUP = ROOT / "tools" / "setup"
# A C compiler for the compiled core, then clang and its runtimes for the fuzz smoke.
# (Suricata, from backports, too: test_bench_installs_suricata_from_backports checks how.)
TEST_PACKAGES = ["gcc", "clang", "libclang-rt-14-dev", "prometheus", "iproute2", "tcpdump",
                 "iputils-ping", "util-linux", "procps", "openssl", "curl", "tcpreplay"]
# bench: tshark, and what bench/record_bulk.sh records the bulk capture with
BENCH_PACKAGES = ["tshark", "iproute2", "tcpdump", "curl", "openssl", "openssh-server",
                  "openssh-client"]
INSTALL = "apt-get install -y -qq --no-install-recommends"


@pytest.fixture
def fake_bin() -> Iterator[Path]:
    """An empty PATH directory that user nobody can read too (tmp_path is root's only), with
    bash (tools/setup's interpreter) and id; a copy of tools/setup sits beside it."""
    top = Path(tempfile.mkdtemp(prefix="nc-setup-"))
    try:
        os.chmod(top, 0o755)
        bin_dir = top / "bin"
        bin_dir.mkdir(mode=0o755)
        for tool in ("bash", "id"):
            found = shutil.which(tool)
            assert found, tool
            (bin_dir / tool).symlink_to(found)
        shutil.copy(SETUP, top / "setup")
        os.chmod(top / "setup", 0o755)
        yield bin_dir
    finally:
        shutil.rmtree(top)


def script(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def setup(bin_dir: Path, *args: str, as_nobody: bool = False,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(bin_dir.parent / "setup"), *args]
    if as_nobody and os.geteuid() == 0:  # else this process is not root already
        cmd = [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534",
               "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=bin_dir,
                          env={"PATH": str(bin_dir), **(env or {})})


def test_python_is_the_first_that_is_3_11_or_newer(fake_bin: Path) -> None:
    script(fake_bin, "python3.13", "exit 1")  # a pyenv shim of a version not selected
    (fake_bin / "python3.12").symlink_to(sys.executable)
    (fake_bin / "python3").symlink_to(sys.executable)
    r = setup(fake_bin, "python")
    assert (r.returncode, r.stdout) == (0, "python3.12\n"), r.stderr
    (fake_bin / "python3.12").unlink()
    script(fake_bin, "python3.11", "exit 1")  # too old: the version check fails
    r = setup(fake_bin, "python")
    assert (r.returncode, r.stdout) == (0, "python3\n"), r.stderr


def test_no_python_says_what_to_do(fake_bin: Path) -> None:
    script(fake_bin, "python3", "exit 1")
    r = setup(fake_bin, "python")
    assert r.returncode == 1 and r.stdout == ""
    assert "no Python 3.11 or newer found (tried python3.13 python3.12 python3.11 python3)" \
        in r.stderr and "make PYTHON=" in r.stderr
    r = setup(fake_bin, "-n", "run")  # the install step stops there too
    assert r.returncode == 1 and "no Python 3.11" in r.stderr
    r = setup(fake_bin, "-n", "run", env={"PYTHON": "python3"})  # make PYTHON=python3
    assert r.returncode == 1
    assert "PYTHON=python3 does not run as Python 3.11 or newer" in r.stderr


def test_missing_packages_as_root(fake_bin: Path) -> None:
    """As root on a machine with none of the test tools: one update, then one install of
    exactly the missing packages, non-interactive."""
    require(os.geteuid() == 0, "needs root (tools/setup installs as root when it is)")
    (fake_bin / "python3.11").symlink_to(sys.executable)  # with ensurepip
    script(fake_bin, "apt-get", "exit 99")  # must not run: -n
    script(fake_bin, "suricata", "exit 0")  # the backports suite: another test
    r = setup(fake_bin, "-n", "test")
    assert r.returncode == 0, r.stderr
    assert f"missing Debian packages for test: {' '.join(TEST_PACKAGES)}" in r.stderr
    assert r.stdout.splitlines() == [
        "would run: env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        f"would run: env DEBIAN_FRONTEND=noninteractive {INSTALL} {' '.join(TEST_PACKAGES)}"]
    # What is there is not installed again; `run` needs only the venv and a C compiler,
    # which are there.
    for tool in ("cc", "prometheus", "promtool", "ip", "tcpdump"):
        script(fake_bin, tool, "exit 0")
    r = setup(fake_bin, "-n", "test")
    assert r.stdout.splitlines()[-1].endswith(
        f"{INSTALL} clang libclang-rt-14-dev iputils-ping util-linux procps openssl curl"
        " tcpreplay")
    r = setup(fake_bin, "-n", "run")
    assert (r.returncode, r.stdout) == (0, "setup: nothing missing for run\n")


def test_fuzz_needs_clang_and_the_runtimes_of_its_version(fake_bin: Path) -> None:
    """Without clang: Debian 12's (14) and its runtimes; with a clang whose runtime directory
    lacks the sanitizers' or libFuzzer's libraries: libclang-rt-N-dev of that clang."""
    require(os.geteuid() == 0, "needs root (the plan as root is checked)")
    (fake_bin / "python3.11").symlink_to(sys.executable)
    script(fake_bin, "apt-get", "exit 99")
    script(fake_bin, "cc", "exit 0")
    r = setup(fake_bin, "-n", "fuzz")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].endswith(f"{INSTALL} clang libclang-rt-14-dev")
    runtime = fake_bin.parent / "rt"
    runtime.mkdir()
    script(fake_bin, "clang", f'case $1 in -print-runtime-dir) echo {runtime} ;;'
                              ' -dumpversion) echo 15.0.7 ;; esac')
    r = setup(fake_bin, "-n", "fuzz")
    assert r.stdout.splitlines()[-1].endswith(f"{INSTALL} libclang-rt-15-dev"), r.stdout
    (runtime / "libclang_rt.asan-x86_64.so").touch()
    r = setup(fake_bin, "-n", "fuzz")
    assert r.stdout.splitlines()[-1].endswith(f"{INSTALL} libclang-rt-15-dev"), r.stdout
    (runtime / "libclang_rt.fuzzer_no_main-x86_64.a").touch()
    r = setup(fake_bin, "-n", "fuzz")
    assert (r.returncode, r.stdout) == (0, "setup: nothing missing for fuzz\n"), r.stderr


def test_the_venv_package_matches_the_python_found(fake_bin: Path) -> None:
    """Debian's python3.X has venv but not ensurepip until python3.X-venv is installed."""
    require(os.geteuid() == 0, "needs root (the plan as root is checked)")
    hide = fake_bin.parent / "no-ensurepip"
    hide.mkdir()
    (hide / "ensurepip.py").write_text("raise ImportError('as on Debian without -venv')\n")
    script(fake_bin, "python3.12", f'PYTHONPATH={hide} exec {sys.executable} "$@"')
    script(fake_bin, "apt-get", "exit 99")
    script(fake_bin, "cc", "exit 0")  # the C compiler `run` needs too is there
    r = setup(fake_bin, "-n", "run")
    venv = f"python3.{sys.version_info[1]}-venv"
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].endswith(f"{INSTALL} {venv}")
    r = setup(fake_bin, "-n", "run", env={"PYTHON": sys.executable})  # make PYTHON=...
    assert r.stdout == "setup: nothing missing for run\n", r.stderr


def test_not_root_uses_sudo_or_says_what_to_run(fake_bin: Path) -> None:
    script(fake_bin, "python3", "exit 0")  # a Python >= 3.11 with ensurepip, for nobody too
    script(fake_bin, "apt-get", "exit 99")
    script(fake_bin, "tcpdump", "exit 0")
    script(fake_bin, "suricata", "exit 0")  # the backports suite: another test
    r = setup(fake_bin, "-n", "test", as_nobody=True)
    missing = [p for p in TEST_PACKAGES if p != "tcpdump"]
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines()[1:] == [
        "setup: installing them needs root; run as root:",
        f"  apt-get update && DEBIAN_FRONTEND=noninteractive {INSTALL} {' '.join(missing)}",
        "then run make again"]
    script(fake_bin, "sudo", "exit 99")
    r = setup(fake_bin, "-n", "test", as_nobody=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "would run: sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        f"would run: sudo env DEBIAN_FRONTEND=noninteractive {INSTALL} {' '.join(missing)}"]


def test_no_apt_get_names_the_packages(fake_bin: Path) -> None:
    script(fake_bin, "python3", "exit 0")
    script(fake_bin, "cc", "exit 0")
    r = setup(fake_bin, "-n", "bench")
    assert r.returncode == 1
    assert "no apt-get here" in r.stderr and f"{' '.join(BENCH_PACKAGES)})" in r.stderr


def test_bench_installs_suricata_from_backports(fake_bin: Path) -> None:
    """`make bench` compares with Suricata 7, which Debian 12 has in its backports suite:
    installed from there, after the other missing packages (the suite is added beside the
    machine's Debian source when no source names it; this machine's may already)."""
    require(os.geteuid() == 0, "needs root (the plan as root is checked)")
    codename = next((line.split("=", 1)[1].strip().strip('"') for line in
                     Path("/etc/os-release").read_text().splitlines()
                     if line.startswith("VERSION_CODENAME=")), "")
    require(bool(codename), "needs VERSION_CODENAME in /etc/os-release")
    (fake_bin / "python3.11").symlink_to(sys.executable)
    script(fake_bin, "cc", "exit 0")
    script(fake_bin, "apt-get", "exit 99")
    r = setup(fake_bin, "-n", "bench")
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if not x.startswith("would write")]
    assert lines == [
        "would run: env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        f"would run: env DEBIAN_FRONTEND=noninteractive {INSTALL} {' '.join(BENCH_PACKAGES)}",
        f"would run: env DEBIAN_FRONTEND=noninteractive {INSTALL} -t {codename}-backports"
        " suricata"]
    script(fake_bin, "suricata", "exit 0")
    r = setup(fake_bin, "-n", "bench-bulk")
    assert "backports" not in r.stdout and r.stdout.splitlines()[-1].endswith(
        f"{INSTALL} {' '.join(BENCH_PACKAGES)}")


def test_make_and_ci_take_the_same_path() -> None:
    """`make test` sets up before anything else; .ci/run installs nothing itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # not nested
    r = subprocess.run(["make", "-n", "--no-print-directory", "test"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].endswith("tools/setup test") and lines[-1].endswith("-m pytest"), lines
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get" not in ci and "export CI=true" in ci
    assert ci.rstrip().endswith("exec make test")


PROBE = '''
import pytest

@pytest.mark.needs("no-such-tool-nc12")
def test_needs_a_tool():
    pass

@pytest.mark.needs(root=True)
def test_needs_root():
    pass

def test_skips_itself():
    pytest.skip("plain skip")

@pytest.mark.optional
def test_opt_in():
    pytest.skip("opt-in run")

def test_runs():
    pass
'''


@pytest.mark.parametrize("ci", [False, True], ids=["developer", "CI"])
def test_missing_needs_skip_or_fail(tmp_path: Path, ci: bool) -> None:
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    shutil.copy(ROOT / "tests" / "corpus.py", tmp_path / "corpus.py")  # conftest reads it
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
                        "test_probe.py"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120)
    out = r.stdout
    assert "PASSED test_probe.py::test_runs" in out
    assert "no-such-tool-nc12 (make test installs it" in out
    assert re.search(r"SKIPPED \[1\] test_probe.py:\d+: opt-in run", out)  # even in CI
    root_skips = os.geteuid() != 0
    if ci:
        assert r.returncode == 1
        assert "ERROR test_probe.py::test_needs_a_tool" in out
        assert "FAILED test_probe.py::test_skips_itself" in out
        assert "nothing may skip (plain skip)" in out
        assert ("ERROR test_probe.py::test_needs_root" in out) == root_skips
    else:
        assert r.returncode == 0, out
        assert "FAILED" not in out and "ERROR" not in out
        assert re.search(r"SKIPPED \[1\] test_probe.py:\d+: plain skip", out)
        assert ("needs root" in out) == root_skips
