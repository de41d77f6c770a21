"""bench/live_bench.py --mix (issue 14): a real capture replayed over a veth pair to
`net export -iface` (and Suricata), run for real at one low rate for ~1 s.

The mix is tests/data/recorded/http.pcap: HTTP over TCP with a 3066-byte frame (recorded
with segmentation offload), so the veth MTU the bench sets must fit it or the kernel drops
that frame and the counts stop adding up. At 2,000 packets/s nothing may be dropped, and
every packet sent must reach net, no more (the host end must not answer the replayed
frames). The bench makes and removes its own namespace; these tests check that it is gone
afterwards, also when the bench is stopped by SIGTERM mid-run. No speed is asserted.

tcpreplay and Suricata come with `make test` (tools/setup test) as with `make bench`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "live_bench.py"
MIX = ROOT / "tests" / "data" / "recorded" / "http.pcap"
RATE = 2000

pytestmark = pytest.mark.needs("ip", "sysctl", "tcpreplay", root=True)


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("ncbench")}


def _bench(*args: str) -> dict[str, Any]:
    before = _namespaces()
    r = subprocess.run([sys.executable, str(BENCH), "--mix", str(MIX), "--rates", str(RATE),
                        "--seconds", "1", "--json", *args],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert _namespaces() == before  # its namespace removed
    result: dict[str, Any] = json.loads(r.stdout)
    assert result["mode"] == "mix" and result["max_frame"] == 3066
    assert result["mtu"] >= 3066 - 14  # the longest frame passes the veth
    assert len(result["rows"]) == 1
    row: dict[str, Any] = result["rows"][0]
    assert row["rate"] == RATE
    return row


def _sane(run: dict[str, Any]) -> None:
    assert run["sent"] == RATE  # rate x 1 s, the mix looped
    assert run["failed"] == 0
    assert run["kernel_drops"] == 0
    assert run["cpu_seconds"] > 0
    assert 10e6 < run["peak_bytes"] < 2e9


def test_net_real_mix() -> None:
    row = _bench("--no-suricata")
    net = row["net"]
    _sane(net)
    assert net["seen"] == RATE and net["unaccounted"] == 0  # each sent frame, nothing else
    assert row["suricata"] is None


@pytest.mark.needs("suricata")
def test_net_and_suricata_real_mix() -> None:
    row = _bench()
    _sane(row["net"])
    assert row["net"]["seen"] == RATE
    suricata = row["suricata"]
    _sane(suricata)
    # Suricata's af-packet default (defrag: yes) has the kernel reassemble IP fragments
    # before it counts them; this mix has none, so it sees every frame.
    assert suricata["seen"] == RATE


def test_sigterm_removes_the_namespace() -> None:
    before = _namespaces()
    p = subprocess.Popen([sys.executable, str(BENCH), "--mix", str(MIX), "--rates", str(RATE),
                          "--seconds", "60", "--no-suricata"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ns = f"ncbench{p.pid % 100000}"
        deadline = time.monotonic() + 60
        while not _replaying(ns):  # mid-run: net listening, tcpreplay sending
            assert p.poll() is None and time.monotonic() < deadline, "never started replaying"
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
    assert p.returncode == 1, err.decode()[-2000:]
    assert b"interrupted" in err
    assert _namespaces() == before
    host_if = f"ncb{p.pid % 100000}h".encode()
    assert not [pid for pid, cmd in _cmdlines() if host_if in cmd]  # net export stopped too


def _cmdlines() -> list[tuple[int, bytes]]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                out.append((int(entry), Path(f"/proc/{entry}/cmdline").read_bytes()))
            except OSError:
                continue
    return out


def _replaying(ns: str) -> bool:
    """A tcpreplay runs in the namespace `ns` (its /proc/PID/ns/net is that namespace's)."""
    try:
        target = os.stat(f"/run/netns/{ns}")
    except FileNotFoundError:
        return False
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                st = os.stat(f"/proc/{entry}/ns/net")
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm == "tcpreplay" and (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                return True
    return False
