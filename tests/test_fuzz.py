"""The sanitizer fuzzing harness (fuzz/run.py, `make fuzz`), run for real.

- Every fuzz target (fuzz/fuzz_*.py) survives a few seconds under ASan + UBSan with the
  compiled core built instrumented (.venv-fuzz): the CI smoke of issue 13, item 3.
- Every compiled module in meson.build is driven by a target, or fuzz/not_fuzzed.txt says
  why it reads no untrusted bytes.
- The harness finds what it is for: a throwaway module with an out-of-bounds read and a
  signed overflow (built here, in a temporary directory) and a target that raises are
  findings, with reproducers that fail again when replayed.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
TARGETS = sorted(FUZZ.glob("fuzz_*.py"))
SMOKE_SECONDS = 5

pytestmark = pytest.mark.needs("clang")


def load_run() -> ModuleType:
    """fuzz/run.py as a module (its build flags and paths)."""
    spec = importlib.util.spec_from_file_location("fuzz_run", FUZZ / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_run"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def fuzz_run(*args: str | Path | int, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FUZZ / "run.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The sanitizer venv, built (or found up to date) once for this module's tests."""
    out = tmp_path_factory.mktemp("fuzz-build")
    r = fuzz_run("--build", "--out", out, timeout=1200)
    log = out / "logs" / "build.log"
    assert r.returncode == 0, r.stdout + r.stderr + (log.read_text()[-3000:]
                                                     if log.exists() else "")
    return load_run()


@pytest.mark.parametrize("target", TARGETS, ids=lambda p: p.stem)
def test_target_survives_a_smoke_run(built: ModuleType, target: Path, tmp_path: Path) -> None:
    r = fuzz_run("--seconds", SMOKE_SECONDS, "--out", tmp_path, target,
                 timeout=SMOKE_SECONDS + 300)
    assert r.returncode == 0, r.stdout + r.stderr
    totals = json.loads((tmp_path / "totals.json").read_text())
    name = target.stem.removeprefix("fuzz_")
    # A target that never reached the fuzzing loop (or fuzzed nothing) is no smoke test.
    assert totals[name]["inputs"] > 1000 and totals[name]["findings"] == 0, totals


def test_there_are_targets() -> None:
    assert FUZZ / "fuzz_buf.py" in TARGETS


def compiled_modules() -> list[str]:
    """The dotted names of meson.build's `modules` list (one line per compiled module)."""
    text = (ROOT / "meson.build").read_text()
    block = re.search(r"^modules = \[\n(.*?)^\]", text, re.M | re.S)
    assert block, "meson.build has no `modules = [` list"
    out = []
    for line in block.group(1).splitlines():
        if ".pyx" not in line:
            continue
        # [name, .pyx, package directory, and maybe more (C sources, dependencies)]
        row = re.search(r"\[\s*'(\w+)'\s*,\s*'[^']+\.pyx'\s*,\s*'([\w/]+)'", line)
        assert row, f"meson.build: a module line this test cannot read: {line}"
        out.append(f"{row[2].replace('/', '.')}.{row[1]}")
    assert out, block.group(1)
    return out


def imported(path: Path) -> set[str]:
    """Every module a file imports (for `from a.b import c`: a.b and a.b.c)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def not_fuzzed() -> dict[str, str]:
    """fuzz/not_fuzzed.txt: `dotted.module  why it reads no untrusted bytes`."""
    out = {}
    for line in (FUZZ / "not_fuzzed.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, why = line.strip().partition(" ")
            out[name] = why.strip()
    return out


def test_every_compiled_module_has_a_target() -> None:
    modules = compiled_modules()
    fuzzed = set().union(*(imported(t) for t in TARGETS))
    exempt = not_fuzzed()
    missing = [m for m in modules if m not in fuzzed and m not in exempt]
    assert not missing, f"compiled modules no fuzz/fuzz_*.py imports: {missing}"
    assert all(exempt.values()), f"not_fuzzed.txt: a module without a reason: {exempt}"
    stale = [m for m in exempt if m not in modules or m in fuzzed]
    assert not stale, f"not_fuzzed.txt names modules that are fuzzed or not built: {stale}"


PLANTED = '''
from cpython.bytes cimport PyBytes_AS_STRING


def oob(bytes data):
    """Reads 8 bytes past the end when the input starts with "OB"."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = len(data)
    if n >= 2 and p[0] == 0x4f and p[1] == 0x42:
        return p[n + 8]
    return 0


def overflow(bytes data):
    """A signed int overflows when the input starts with "SI" and a byte over 15 follows."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef int x = 0x7ffffff0
    if len(data) >= 3 and p[0] == 0x53 and p[1] == 0x49:
        x = x + p[2]
    return x
'''

TARGET = '''
import sys

{imports}


def TestOneInput(data: bytes) -> None:
    {body}


def seeds() -> list[bytes]:
    return [b"hello"]


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
'''


@pytest.fixture(scope="module")
def planted(built: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the planted module, built as the sanitizer build builds netcap's,
    and three targets: fuzz_oob.py, fuzz_overflow.py and fuzz_raise.py."""
    d = tmp_path_factory.mktemp("planted")
    (d / "planted.pyx").write_text(PLANTED)
    py = str(built.PY)
    include, suffix = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['include']);"
         "print(sysconfig.get_config_var('EXT_SUFFIX'))"],
        capture_output=True, text=True, check=True).stdout.split()
    subprocess.run([py, "-m", "cython", "-3", "planted.pyx", "-o", "planted.c"], cwd=d,
                   check=True, timeout=120)
    subprocess.run(["clang", *built.CFLAGS.split(), "-fPIC", "-shared", f"-I{include}",
                    "planted.c", "-o", f"planted{suffix}", *built.LDFLAGS.split()],
                   cwd=d, check=True, timeout=300)
    for name in ("oob", "overflow"):
        (d / f"fuzz_{name}.py").write_text(TARGET.format(
            imports=f"from planted import {name}", body=f"{name}(data)"))
    (d / "fuzz_raise.py").write_text(TARGET.format(
        imports="", body='if data[:2] == b"EX":\n        raise ValueError("planted")'))
    return d


def test_planted_bugs_are_findings(planted: Path, tmp_path: Path) -> None:
    targets = [planted / f"fuzz_{n}.py" for n in ("oob", "overflow", "raise")]
    r = fuzz_run("--seconds", 120, "--runs", 2_000_000, "-j", 2, "--out", tmp_path, *targets,
                 timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    # What each found, and where: the sanitizers' own reports, not just a crash.
    assert re.search(r"^oob: SUMMARY: AddressSanitizer: heap-buffer-overflow .*planted\.c.*"
                     r"in __pyx_pf_7planted_oob$", r.stdout, re.M), r.stdout
    assert re.search(r"^overflow: planted\.c:\d+:\d+: runtime error: signed integer overflow: "
                     r"2147483632 \+ \d+ cannot be represented in type 'int'$",
                     r.stdout, re.M), r.stdout
    assert "raise: ValueError: planted" in r.stdout
    totals = json.loads((tmp_path / "totals.json").read_text())
    assert [totals[n]["findings"] for n in ("oob", "overflow", "raise")] == [1, 1, 1]
    for name, prefix in (("oob", b"OB"), ("overflow", b"SI"), ("raise", b"EX")):
        (reproducer,) = (tmp_path / "crashes" / name).glob("crash-*")
        found = reproducer.read_bytes()
        assert found.startswith(prefix), (name, found)
        assert name != "overflow" or found[2] > 15, found
        replay = fuzz_run("--replay", reproducer, planted / f"fuzz_{name}.py", timeout=120)
        assert replay.returncode != 0, replay.stdout + replay.stderr
