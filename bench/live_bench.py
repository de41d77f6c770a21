"""Live-capture benchmark on a veth pair into a network namespace made for the run.

tcpreplay sends a bounded number of frames (--limit, and --duration as a time limit) at a
fixed rate (--pps) from the namespace end; the capturing tool runs on the other (host) end.
Each rate gets fresh processes. Run as root; needs iproute2 and tcpreplay
(`apt-get install tcpreplay`; `make bench-live` installs it).

Two modes:

- synthetic (issue 5, the default): 142-byte UDP frames of 256 flows; `net export -iface`
  alone, its own metrics say what it decoded and what the kernel dropped (libpcap's
  counters), and its CPU share. No flows, reassembly or analyzers are exercised.
- real mix (issue 14, `--mix [FILE]`): the frames of a real capture (default the bench
  capture: /work/bench1m.pcap where it exists, else bench/out/bench.pcap, built by
  make_bench_pcap.py if missing), `rate x --seconds` packets per rate, replayed to
  `net export -iface` with everything on (the default record types) and then, at the same
  rate, to Suricata (`suricata -k none --af-packet=IF`, default configuration, logging to a
  fresh directory). For each: kernel drops (net's metrics; Suricata's own counters, printed
  at shutdown), CPU per packet (user + system time of the tool's process tree from "ready"
  until it has caught up, over the packets it read) and peak memory (the largest summed RSS of
  its process tree, sampled every 20 ms from start to exit, as bench/run_bench.py does).

The link is kept silent apart from the replayed frames: IPv6 off on both ends, no IPv4
address on either, ARP off on the host end (no ARP replies for any address the machine
owns), so the host's stack answers none of the replayed frames (they are addressed to MACs
and IPs nobody here owns, or to broadcast/multicast nobody listens to). The veth MTU is
raised to fit the mix's largest frame (a frame longer than MTU + header is dropped by the
kernel before any capture), and net's -snaplen to that frame, so both tools see whole frames.
The namespace is removed on exit, also on Ctrl-C, SIGTERM or an error.

    python bench/live_bench.py [--rates 20000,50000,100000] [--seconds 3] [--tcpdump]
    python bench/live_bench.py --mix [--rates 100000,150000,200000,300000] [--json]
    python bench/live_bench.py --mix tests/data/recorded/http.pcap --rates 1000 --seconds 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from run_bench import DEFAULT_PACKETS, DEFAULT_PCAP, PAGE, TreeRss, ensure_capture, warm_cache

TAG = os.getpid() % 100000  # names of this run's namespace and interfaces (15 chars at most)
NS, HOST_IF, PEER_IF = f"ncbench{TAG}", f"ncb{TAG}h", f"ncb{TAG}p"
FLOWS = 256  # distinct source ports in the synthetic file
PAYLOAD = 100  # UDP payload bytes: 142-byte frames
SHARED_MIX = Path("/work/bench1m.pcap")  # the project machine's copy of the 1M-packet bench
ETHERNET, ETH_HEADER, QINQ_TAGS = 1, 14, 8
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 120.0  # seconds a tool may take to start listening (Suricata on a busy machine)
SETTLE_TIMEOUT = 120.0  # seconds a tool may take to work off its backlog after a replay


def _run(*cmd: str, check: bool = True, timeout: float = 600
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)


@contextmanager
def veth(mtu: int = 1500) -> Iterator[None]:
    _run("ip", "netns", "del", NS, check=False)
    try:
        _run("ip", "netns", "add", NS)
        _run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF)
        _run("ip", "link", "set", PEER_IF, "netns", NS)
        _run("sysctl", "-w", f"net.ipv6.conf.{HOST_IF}.disable_ipv6=1")
        _run("ip", "netns", "exec", NS, "sysctl", "-w", f"net.ipv6.conf.{PEER_IF}.disable_ipv6=1")
        # No ARP on the host end: a replayed ARP request for one of this machine's own
        # addresses would otherwise be answered (Linux answers for any local address).
        _run("ip", "link", "set", HOST_IF, "arp", "off", "mtu", str(mtu), "up")
        _run("ip", "-n", NS, "link", "set", PEER_IF, "mtu", str(mtu), "up")
        yield
    finally:
        _run("ip", "netns", "del", NS, check=False)
        _run("ip", "link", "del", HOST_IF, check=False)


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: tools stopped, namespace removed


# ---------------------------------------------------------------------------------------
# The synthetic mode (issue 5)


def _checksum(data: bytes) -> int:
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
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
    raise SystemExit(f"{p.args!r} did not start")


def _metric(url: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass(frozen=True, slots=True)
class Replay:
    asked: int  # packets per second asked for
    achieved: float  # packets per second tcpreplay reports
    sent: int  # packets tcpreplay sent
    failed: int  # packets the send call refused (e.g. longer than the MTU)


def replay(pcap: Path, rate: int, count: int) -> Replay:
    """Send `count` frames of `pcap` (looped as often as needed) at `rate` per second.
    Bounded twice: by the count, and by a time limit of twice the time it should take."""
    limit = max(10, int(2 * count / rate) + 1)
    r = _run("ip", "netns", "exec", NS, "tcpreplay", "-i", PEER_IF, f"--pps={rate}",
             f"--limit={count}", f"--duration={limit}", "--loop=0", str(pcap),
             timeout=limit + 60)
    rated = re.search(r"Rated: .*?, ([\d.]+) pps", r.stdout)
    actual = re.search(r"Actual: (\d+) packets", r.stdout)
    failed = re.search(r"Failed packets:\s+(\d+)", r.stdout)
    if actual is None:
        raise SystemExit(f"tcpreplay said nothing about what it sent:\n{r.stdout}{r.stderr}")
    return Replay(rate, float(rated.group(1)) if rated else float("nan"),
                  int(actual.group(1)), int(failed.group(1)) if failed else 0)


def one_rate(net: list[str], pcap: Path, rate: int, seconds: float) -> dict[str, float]:
    count = int(rate * seconds)
    p = subprocess.Popen([*net, "export", "-iface", HOST_IF, "-address", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = _net_url(p)
        cpu0 = _cpu_seconds(p.pid)
        sent = replay(pcap, rate, count)
        got = _net_settle(url)
        # CPU seconds spent per second of traffic (the waits after it cost ~nothing).
        cpu = (_cpu_seconds(p.pid) - cpu0) / (sent.sent / sent.achieved)
        return {"rate": rate, "achieved": sent.achieved, "count": sent.sent, "decoded": got,
                "kernel_drops": _metric(url, "nc_capture_dropped_packets_total",
                                        where="kernel"),
                "if_drops": _metric(url, "nc_capture_dropped_packets_total",
                                    where="interface"),
                "cpu": cpu}
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(30)


def _net_url(p: subprocess.Popen[bytes], timeout: float = START_TIMEOUT) -> str:
    """Wait for `net export -iface` to say it captures; returns its /metrics URL."""
    assert p.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([p.stderr], [], [], 0.2)[0]:
            line = p.stderr.readline()
            if not line:
                break
            m = re.search(rb"capturing on .*metrics on (http://\S+)", line)
            if m:
                return m.group(1).decode()
    raise SystemExit(f"net export did not start (exit status {p.poll()})")


def _net_settle(url: str) -> float:
    """Wait until net's packet count stops moving (it has worked off its backlog)."""
    last, deadline = -1.0, time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(0.5)
        got = _metric(url, "nc_packets_total")
        if got == last:
            return got
        last = got
    raise SystemExit(f"net export still busy {SETTLE_TIMEOUT:.0f} s after the replay")


def tcpdump_rate(pcap: Path, rate: int, seconds: float) -> str:
    count = int(rate * seconds)
    p = subprocess.Popen(["tcpdump", "-i", HOST_IF, "-nn", "-w", "/dev/null"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_line(p, b"listening on")
        replay(pcap, rate, count)
        time.sleep(1)
    finally:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    return " ".join(line.strip() for line in err.decode().splitlines()[-3:])


def synthetic(net: list[str], rates: list[int], seconds: float, with_tcpdump: bool,
              as_json: bool) -> None:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, veth():
        pcap = Path(tmp) / "frames.pcap"
        frames_pcap(pcap)
        if not as_json:
            print(f"veth {HOST_IF}: {PAYLOAD + 42}-byte UDP frames, {FLOWS} flows,"
                  f" {seconds:g} s per rate")
            print("rate/s   achieved/s  sent      decoded   kernel drops  if drops  net CPU"
                  " (of one core)")
        best = 0
        for rate in rates:
            r = one_rate(net, pcap, rate, seconds)
            rows.append(dict(r))
            clean = r["kernel_drops"] == 0 and r["decoded"] == r["count"]
            if clean:
                best = max(best, int(r["achieved"]))
            if not as_json:
                print(f"{rate:<8} {r['achieved']:<11,.0f} {r['count']:<9,.0f}"
                      f" {r['decoded']:<9,.0f} {r['kernel_drops']:<13,.0f}"
                      f" {r['if_drops']:<9,.0f} {r['cpu']:.0%}"
                      + ("" if clean else "   <- loss"))
            if with_tcpdump:
                rows[-1]["tcpdump"] = tcpdump_rate(pcap, rate, seconds)
                if not as_json:
                    print(f"         tcpdump: {rows[-1]['tcpdump']}")
    if as_json:
        print(json.dumps({"mode": "synthetic", "seconds": seconds, "rows": rows}, indent=1))
    else:
        print(f"highest rate with zero kernel drops and every packet decoded: {best:,}"
              " packets/s")


# ---------------------------------------------------------------------------------------
# The real-mix mode (issue 14)


@dataclass(frozen=True, slots=True)
class Mix:
    path: Path
    packets: int
    max_frame: int  # longest captured frame, bytes


def scan_mix(path: Path) -> Mix:
    """Packets and longest frame of a classic pcap of Ethernet frames (what tcpreplay sends
    as is); anything else is refused."""
    size = path.stat().st_size
    with open(path, "rb", buffering=0) as f:
        head = f.read(24)
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            endian = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap (convert it: editcap -F pcap)")
        if struct.unpack_from(endian + "I", head, 20)[0] & 0xFFFF != ETHERNET:
            raise SystemExit(f"{path}: not Ethernet frames: tcpreplay would send them as such")
        caplen = struct.Struct(endian + "I")
        n, longest, pos = 0, 0, 24
        buf, buf_start = b"", 0
        while pos + 16 <= size:
            if pos + 16 > buf_start + len(buf):
                f.seek(pos)
                buf, buf_start = f.read(1 << 20), pos
            length = caplen.unpack_from(buf, pos - buf_start + 8)[0]
            longest = max(longest, length)
            pos += 16 + length
            n += 1
    if n == 0:
        raise SystemExit(f"{path}: no packets")
    return Mix(path, n, longest)


def default_mix() -> Path:
    """The bench capture: the shared 1M-packet copy where it exists, else run_bench.py's
    bench/out/bench.pcap (built by make_bench_pcap.py if missing, as run_bench.py does)."""
    if SHARED_MIX.exists():
        return SHARED_MIX
    ensure_capture(DEFAULT_PCAP, DEFAULT_PACKETS)
    return DEFAULT_PCAP


def tree_pids(root: int) -> list[int]:
    """root and its descendants, from /proc."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    parent[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except OSError:
                continue
    children: dict[int, list[int]] = {}
    for pid, pp in parent.items():
        children.setdefault(pp, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, ())
    return out


def tree_cpu(root: int) -> float:
    """User + system seconds of root's process tree, all threads, and of children it reaped."""
    total = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / CLK_TCK


def settle(root: int, window: float = 0.5, idle: float = 0.03) -> float:
    """Wait until root's process tree has worked off its backlog: two windows in a row in
    which it used at most `idle` CPU seconds (both tools idle at ~0.01 s per second here).
    Returns its CPU seconds then. Bounded by SETTLE_TIMEOUT."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last, quiet = tree_cpu(root), 0
    while quiet < 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"still busy {SETTLE_TIMEOUT:.0f} s after the replay")
        time.sleep(window)
        now = tree_cpu(root)
        quiet = quiet + 1 if now - last <= idle else 0
        last = now
    return last


class PeakRss:
    """The largest summed RSS of a process and its descendants, sampled every 20 ms in a
    thread (run_bench.py's TreeRss for the descendants, the process's own statm beside)."""

    def __init__(self, root: int) -> None:
        self.root, self.peak = root, 0
        self._descendants = TreeRss()
        self._descendants.me = root
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                with open(f"/proc/{self.root}/statm", "rb") as f:
                    own = int(f.read().split()[1]) * PAGE
            except (OSError, IndexError):  # exited (a zombie's statm is empty)
                continue
            self.peak = max(self.peak, own + self._descendants())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@dataclass(frozen=True, slots=True)
class ToolRun:
    sent: int  # packets tcpreplay sent during this tool's run
    achieved: float  # packets per second tcpreplay reported
    failed: int  # packets tcpreplay could not send
    seen: int  # packets the tool read and decoded
    kernel_drops: int  # dropped by the kernel before the tool read them (its own counters)
    cpu_seconds: float  # its process tree's CPU from listening until caught up
    peak_bytes: int  # largest summed RSS of its process tree, start to exit

    @property
    def drop_share(self) -> float:
        return self.kernel_drops / self.sent if self.sent else float("nan")

    @property
    def cpu_per_packet_us(self) -> float:
        """CPU per packet it read: what a packet costs it (per packet sent would flatter a
        tool that drops)."""
        return self.cpu_seconds / self.seen * 1e6 if self.seen else float("nan")


def _stop(p: subprocess.Popen[bytes]) -> None:
    """SIGINT (both tools stop cleanly on it), SIGKILL if it has not exited within 60 s."""
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)


def run_net(net: list[str], mix: Mix, rate: int, count: int, snaplen: int) -> ToolRun:
    p = subprocess.Popen([*net, "export", "-iface", HOST_IF, "-snaplen", str(snaplen),
                          "-address", "127.0.0.1:0"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    peak = PeakRss(p.pid)
    try:
        url = _net_url(p)
        cpu0 = tree_cpu(p.pid)
        sent = replay(mix.path, rate, count)
        cpu = settle(p.pid) - cpu0
        # Scraped once it is done: a scrape costs it CPU, so none while it is measured.
        decoded = _metric(url, "nc_packets_total")
        drops = _metric(url, "nc_capture_dropped_packets_total", where="kernel")
    finally:
        _stop(p)
        peak_bytes = peak.stop()
    return ToolRun(sent.sent, sent.achieved, sent.failed, int(decoded), int(drops), cpu,
                   peak_bytes)


def run_suricata(mix: Mix, rate: int, count: int, tmp: Path) -> ToolRun:
    out = Path(tempfile.mkdtemp(prefix="suricata-", dir=tmp))
    console = out / "console.txt"
    argv = ["suricata", "-k", "none", f"--af-packet={HOST_IF}", "-l", str(out)]
    with open(console, "wb") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT)
    peak = PeakRss(p.pid)
    try:
        # "Engine started" is printed once every capture thread has opened its socket.
        deadline = time.monotonic() + START_TIMEOUT
        while b"Engine started" not in console.read_bytes():
            if p.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("suricata did not start:\n" + console.read_text()[-2000:])
            time.sleep(0.1)
        cpu0 = tree_cpu(p.pid)
        sent = replay(mix.path, rate, count)
        cpu = settle(p.pid) - cpu0
    finally:
        _stop(p)
        peak_bytes = peak.stop()
    # The capture sockets' final counters, which it prints as it stops. Its packets
    # include the dropped ones (the kernel's PACKET_STATISTICS count them so), and count
    # IPv4 fragments reassembled: its af-packet default `defrag: yes` has the kernel
    # reassemble them before they reach it.
    text = (out / "suricata.log").read_text(errors="replace")
    m = re.search(rf"{re.escape(HOST_IF)}: packets: (\d+), drops: (\d+)", text)
    if m is None:
        raise SystemExit("suricata printed no capture counters at exit:\n" + text[-2000:])
    packets, drops = int(m.group(1)), int(m.group(2))
    return ToolRun(sent.sent, sent.achieved, sent.failed, packets - drops, drops, cpu,
                   peak_bytes)


def _cells(r: ToolRun | None) -> str:
    if r is None:
        return f"{'-':>29} {'-':>10} {'-':>7}"
    drops = f"{r.drop_share:.2%} ({r.kernel_drops:,} of {r.sent:,})"
    return f"{drops:>29} {r.cpu_per_packet_us:10.2f} {r.peak_bytes / 1e6:7.0f}"


def real_mix(net: list[str], mix: Mix, rates: list[int], seconds: float, suricata: bool,
             as_json: bool) -> int:
    # Longest frame + VLAN tags must pass the veth: its MTU counts from after the Ethernet
    # header (the kernel allows one 4-byte tag beyond it; QinQ needs 8).
    mtu = max(1500, mix.max_frame - ETH_HEADER + QINQ_TAGS)
    snaplen = max(1514, mix.max_frame)
    warm_cache(mix.path)
    rows: list[dict[str, object]] = []
    loads: list[float] = []  # the 1-minute load average after each rate: was the machine busy?
    if not as_json:
        print(f"{mix.path}: {mix.packets:,} packets, longest frame {mix.max_frame} bytes;"
              f" veth MTU {mtu}, net -snaplen {snaplen}; {seconds:g} s per rate;"
              f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'':33} {'net export -iface':^47} {'suricata -k none --af-packet':^47}".rstrip())
        print(f"{'rate/s':>9} {'achieved/s':>11} {'sent':>11}"
              + f" {'kernel drops (of sent)':>29} {'CPU µs/pkt':>10} {'peak MB':>7}" * 2)
    loss = False
    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp, veth(mtu):
        for rate in rates:
            count = max(1, int(rate * seconds))
            n = run_net(net, mix, rate, count, snaplen)
            s = run_suricata(mix, rate, count, Path(tmp)) if suricata else None
            # Every packet sent is either seen or counted dropped, else something is wrong
            # with the link (a frame refused, the host stack adding traffic).
            unaccounted = n.sent - n.seen - n.kernel_drops
            loss |= unaccounted != 0 or n.failed != 0
            loads.append(os.getloadavg()[0])
            rows.append({"rate": rate, "load": loads[-1], "net": asdict(n)
                         | {"unaccounted": unaccounted},
                         "suricata": None if s is None else asdict(s)})
            if not as_json:
                note = f"   <- {unaccounted:,} unaccounted" if unaccounted else ""
                note += f"   <- tcpreplay failed {n.failed:,}" if n.failed else ""
                print(f"{rate:>9,} {n.achieved:>11,.0f} {n.sent:>11,} {_cells(n)} "
                      f"{_cells(s)}{note}", flush=True)
    if not as_json:
        print(f"achieved/s and sent: net's replay (Suricata's, its own: in --json);"
              f" load average (1 min) after each rate {min(loads):.1f}-{max(loads):.1f}")
    if as_json:
        print(json.dumps({"mode": "mix", "mix": str(mix.path), "packets": mix.packets,
                          "max_frame": mix.max_frame, "mtu": mtu, "snaplen": snaplen,
                          "seconds": seconds, "cpus": os.cpu_count(), "rows": rows},
                         indent=1))
    return 1 if loss else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--mix", nargs="?", const="", metavar="FILE",
                    help="replay a real capture's frames (default the bench capture), net"
                         " export with everything on and Suricata at each rate")
    ap.add_argument("--rates", help="packets per second to try, comma-separated (default"
                    " 20000,...,300000; with --mix 100000,150000,200000,300000)")
    ap.add_argument("--seconds", type=float, default=3.0, help="traffic per rate (default 3)")
    ap.add_argument("--no-suricata", action="store_true", help="with --mix: net export only")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--tcpdump", action="store_true",
                    help="synthetic mode: also run tcpdump -w /dev/null at each rate")
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("tcpreplay"):
        print("needs root and tcpreplay (apt-get install tcpreplay)", file=sys.stderr)
        return 2
    suricata = a.mix is not None and not a.no_suricata
    if suricata and not shutil.which("suricata"):
        print("no suricata on the PATH (make bench installs it; or --no-suricata)",
              file=sys.stderr)
        return 2
    default_rates = "100000,150000,200000,300000" if a.mix is not None else \
        "20000,50000,100000,150000,200000,300000"
    rates = [int(x) for x in (a.rates or default_rates).split(",")]
    if not rates or min(rates) < 1 or a.seconds <= 0:
        ap.error("rates and --seconds must be positive")
    net = [str(Path(sys.executable).parent / "net")]
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if a.mix is None:
            synthetic(net, rates, a.seconds, a.tcpdump, a.json)
            return 0
        mix = scan_mix(Path(a.mix) if a.mix else default_mix())
        return real_mix(net, mix, rates, a.seconds, suricata, a.json)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
