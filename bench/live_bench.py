"""Live-capture benchmark (issue 5): the packet rate `net export -iface` sustains with
zero kernel drops, on a veth pair into a network namespace made for the run.

tcpreplay sends a bounded number of UDP frames (--limit) at a fixed rate (--pps) from
the namespace end; `net export -iface` captures the other end and its own metrics say
what it decoded and what the kernel dropped (libpcap's counters). The frames are
addressed to a MAC no host owns, so the stack drops them after the capture (no ICMP
replies add packets), as a monitoring port's traffic would be. Each rate is a fresh
exporter. Run as root; needs iproute2 and tcpreplay (`apt-get install tcpreplay`).

    python bench/live_bench.py [--rates 20000,50000,100000] [--seconds 3] [--tcpdump]
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NS, HOST_IF, PEER_IF = "ncbench", "ncbench0", "ncbench1"
FLOWS = 256  # distinct source ports in the replayed file
PAYLOAD = 100  # UDP payload bytes: 142-byte frames


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=600)


@contextmanager
def veth() -> Iterator[None]:
    _run("ip", "netns", "del", NS, check=False)
    try:
        _run("ip", "netns", "add", NS)
        _run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF)
        _run("ip", "link", "set", PEER_IF, "netns", NS)
        _run("sysctl", "-w", f"net.ipv6.conf.{HOST_IF}.disable_ipv6=1")
        _run("ip", "netns", "exec", NS, "sysctl", "-w", f"net.ipv6.conf.{PEER_IF}.disable_ipv6=1")
        _run("ip", "link", "set", HOST_IF, "up")
        _run("ip", "-n", NS, "link", "set", PEER_IF, "up")
        yield
    finally:
        _run("ip", "netns", "del", NS, check=False)
        _run("ip", "link", "del", HOST_IF, check=False)


def _checksum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def frames_pcap(path: Path) -> None:
    """FLOWS UDP frames 10.199.1.2:port -> 10.199.1.1:9, to a MAC nobody owns."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(FLOWS):
        udp = struct.pack("!HHHH", 20000 + i, 9, 8 + PAYLOAD, 0) + bytes(PAYLOAD)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                         bytes([10, 199, 1, 2]), bytes([10, 199, 1, 1]))
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = bytes.fromhex("02000000009902000000000108 00".replace(" ", "")) + ip + udp
        out.append(struct.pack("<IIII", 0, i, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


def _wait_line(p: subprocess.Popen[bytes], text: bytes, timeout: float = 30) -> None:
    assert p.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([p.stderr], [], [], 0.2)[0]:
            line = p.stderr.readline()
            if text in line:
                return
            if not line:
                break
    raise SystemExit(f"{p.args[0]} did not start")


def _metric(port: int, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _replay(pcap: Path, rate: int, count: int) -> float:
    """Send `count` frames at `rate` per second; returns the rate tcpreplay achieved."""
    r = _run("ip", "netns", "exec", NS, "tcpreplay", "-i", PEER_IF, f"--pps={rate}",
             f"--limit={count}", "--loop=0", str(pcap))
    m = re.search(r"Rated: .*?, ([\d.]+) pps", r.stdout)
    return float(m.group(1)) if m else float("nan")


def one_rate(net: list[str], pcap: Path, rate: int, seconds: float) -> dict[str, float]:
    count = int(rate * seconds)
    port = 17000 + rate % 1000
    p = subprocess.Popen([*net, "export", "-iface", HOST_IF, "-address", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_line(p, b"capturing on")
        cpu0 = _cpu_seconds(p.pid)
        sent = _replay(pcap, rate, count)
        last = -1.0
        while True:  # until it has caught up
            time.sleep(0.5)
            got = _metric(port, "nc_packets_total")
            if got == last:
                break
            last = got
        # CPU seconds spent per second of traffic (the waits after it cost ~nothing).
        cpu = (_cpu_seconds(p.pid) - cpu0) / (count / sent)
        return {"rate": rate, "achieved": sent, "count": count, "decoded": got,
                "kernel_drops": _metric(port, "nc_capture_dropped_packets_total",
                                        where="kernel"),
                "if_drops": _metric(port, "nc_capture_dropped_packets_total",
                                    where="interface"),
                "cpu": cpu}
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(30)


def tcpdump_rate(pcap: Path, rate: int, seconds: float) -> str:
    count = int(rate * seconds)
    p = subprocess.Popen(["tcpdump", "-i", HOST_IF, "-nn", "-w", "/dev/null"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_line(p, b"listening on")
        _replay(pcap, rate, count)
        time.sleep(1)
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    return " ".join(line.strip() for line in err.decode().splitlines()[-3:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="20000,50000,100000,150000,200000,300000",
                    help="packets per second to try, comma-separated")
    ap.add_argument("--seconds", type=float, default=3.0, help="traffic per rate")
    ap.add_argument("--tcpdump", action="store_true",
                    help="also run tcpdump -w /dev/null at each rate, for reference")
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("tcpreplay"):
        print("needs root and tcpreplay (apt-get install tcpreplay)", file=sys.stderr)
        return 2
    net = [str(Path(sys.executable).parent / "net")]
    rates = [int(x) for x in a.rates.split(",")]
    with tempfile.TemporaryDirectory() as tmp, veth():
        pcap = Path(tmp) / "frames.pcap"
        frames_pcap(pcap)
        print(f"veth {HOST_IF}: {PAYLOAD + 42}-byte UDP frames, {FLOWS} flows,"
              f" {a.seconds:g} s per rate")
        print("rate/s   achieved/s  sent      decoded   kernel drops  if drops  net CPU"
              " (of one core)")
        best = 0
        for rate in rates:
            r = one_rate(net, pcap, rate, a.seconds)
            clean = r["kernel_drops"] == 0 and r["decoded"] == r["count"]
            if clean:
                best = max(best, int(r["achieved"]))
            print(f"{rate:<8} {r['achieved']:<11,.0f} {r['count']:<9,.0f} {r['decoded']:<9,.0f}"
                  f" {r['kernel_drops']:<13,.0f} {r['if_drops']:<9,.0f} {r['cpu']:.0%}"
                  + ("" if clean else "   <- loss"))
            if a.tcpdump:
                print(f"         tcpdump: {tcpdump_rate(pcap, rate, a.seconds)}")
        print(f"highest rate with zero kernel drops and every packet decoded: {best:,} packets/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
