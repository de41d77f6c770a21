"""Helpers shared by the tests that run the real `net` command or read files by hand.

The readers here are independent of netcap's own (NcapReader), on purpose: a test that
reads what netcap wrote with netcap's reader could not catch a bug both share.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from corpus import PCAPS

__all__ = ["PCAPS", "free_port", "frames", "get", "load_bench", "net_cmd", "prometheus",
           "skip_module_without_corpus", "uvarint", "wait_http"]


def load_bench(name: str) -> ModuleType:
    """The script bench/<name>.py as a module (bench/ is not a package), loaded once."""
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def net_cmd() -> list[str]:
    """The installed `net` script of this interpreter (falls back to `python -m`)."""
    script = Path(sys.executable).parent / "net"
    if script.exists():
        return [str(script)]
    found = shutil.which("net")
    return [found] if found else [sys.executable, "-m", "netcap.cli"]


def uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """A protobuf base-128 varint at pos: (value, position after it)."""
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def frames(stream: bytes) -> list[bytes]:
    """Split a varint-length-delimited stream (the body of an audit-record file)."""
    out: list[bytes] = []
    pos = 0
    while pos < len(stream):
        n, pos = uvarint(stream, pos)
        assert pos + n <= len(stream), "last record cut short"
        out.append(stream[pos : pos + n])
        pos += n
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, dict(r.headers), r.read()


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout}s")


@contextlib.contextmanager
def prometheus(workdir: Path, scrape_port: int | None = None,
               storage: Path | None = None, scrape_settings: str = "") -> Iterator[str]:
    """A real Prometheus (Debian's package) on a free loopback port, scraping job
    `netcap` at scrape_port every second if given (with `scrape_settings`, YAML lines
    of the job indented by 4, e.g. scheme and basic_auth); yields its base URL, stops
    it after."""
    config = workdir / "prometheus.yml"
    text = "global:\n  scrape_interval: 1s\n"
    if scrape_port is not None:
        text += ("scrape_configs:\n  - job_name: netcap\n" + scrape_settings +
                 f"    static_configs:\n      - targets: ['127.0.0.1:{scrape_port}']\n")
    config.write_text(text)
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={config}",
         f"--storage.tsdb.path={storage or workdir / 'data'}",
         "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/-/ready", 60)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def skip_module_without_corpus() -> None:
    """For a test module that reads the public corpus while it is imported: skip it where
    the corpus is absent, with the reason; under CI (CI=true) fail instead."""
    import pytest

    from corpus import absent, under_ci

    reason = absent()
    if reason is None:
        return
    if under_ci():
        raise RuntimeError(f"CI=true: {reason}")
    pytest.skip(reason, allow_module_level=True)
