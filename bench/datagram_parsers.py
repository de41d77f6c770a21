"""Per-message CPU of the compiled DNS, DHCPv4, NTP and SSH readers against the Python ones
they replaced (kept as tests/oracle_*.py), interleaved in one process on the corpus'
real messages: each message alone, and in batches of 500 as the datagram stage calls them
(before: the Python loop over payloads that analyzers/datagrams.py had; after: one call
into the compiled parser per batch). Best of 7 rounds of process CPU time.

    python bench/datagram_parsers.py           # needs the public corpus (NETCAP_CORPUS)

Never run from tests or CI: timings are for reading, not for asserting.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import oracle_dhcp  # noqa: E402  (tests/ on the path first)
import oracle_dns  # noqa: E402
import oracle_ntp  # noqa: E402
import oracle_ssh  # noqa: E402
from corpus import PCAPS  # noqa: E402
from netcap.analyzers import _datagrams, _dns, _ssh  # noqa: E402
from netcap.decode.batch import decode_batch  # noqa: E402
from netcap.decode.errors import DecodeError  # noqa: E402
from netcap.sources.capture import open_capture  # noqa: E402
from tcp_streams import conversations  # noqa: E402

BATCH = 500


def payloads(names: tuple[str, ...], ports: set[int]) -> list[bytes]:
    """UDP payloads to or from `ports` in corpus captures."""
    out = []
    for name in names:
        for batch in open_capture(str(PCAPS / name)):
            t = decode_batch(batch, analyze=False).tables.get("UDP")
            if t is None:
                continue
            for sp, dp, off, size in zip(t.cols["SrcPort"], t.cols["DstPort"],
                                         t.cols["_poff"], t.cols["PayloadSize"], strict=True):
                if int(sp) in ports or int(dp) in ports:
                    out.append(batch.data[int(off) : int(off) + int(size)].tobytes())
    return out


def best(fn: Callable[[], Any], rounds: int = 7) -> float:
    out = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        fn()
        out = min(out, time.process_time() - t)
    return out


def each(parse: Callable[[bytes], Any], msgs: list[bytes]) -> Callable[[], None]:
    """Every message alone, 100 times (before and after: the same Python call)."""
    def run() -> None:
        for _ in range(100):
            for m in msgs:
                with contextlib.suppress(DecodeError):
                    parse(m)
    return run


def python_loop(parse: Callable[[bytes], Any], msgs: list[bytes]) -> Callable[[], None]:
    """The datagram stage's loop as it was: records, indexes and reasons in lists."""
    def run() -> None:
        recs, ok, bad, reasons = [], [], [], []
        for k, m in enumerate(msgs):
            try:
                recs.append(parse(m))
                ok.append(k)
            except DecodeError as e:
                bad.append(k)
                reasons.append(e.index)
    return run


def one_call(fn: Callable[..., Any], msgs: list[bytes]) -> Callable[[], None]:
    """The messages back to back in one buffer, as a batch holds them: one call."""
    data = np.frombuffer(b"".join(msgs), np.uint8)
    size = np.asarray([len(m) for m in msgs], np.int64)
    poff = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    return lambda: fn(data, poff, size)


def ssh_feeds(cls: Callable[[bool], Any], dirs: list[tuple[bool, bytes]]) -> Callable[[], None]:
    """Each direction's first 4 KiB fed in 1448-byte segments, then finish, 50 times."""
    def run() -> None:
        for _ in range(50):
            for side, data in dirs:
                r = cls(side)
                for i in range(0, len(data), 1448):
                    r.feed(data[i : i + 1448])
                r.finish()
    return run


def main() -> int:
    dns = payloads(("dpkt_dns_icmp.pcap", "zeek_dns_mdns.pcap", "sv_dns-udp-eve-log-srv.pcap",
                    "tcpdump_dns_udp.pcap", "zeek_dns-inverse-query-fddi.pcap",
                    "tcpdump_dns-badcookie-null.pcap", "zeek_ipv6-fragmented-dns.pcap"),
                   {53, 5353, 5355})
    ntp = payloads(("zeek_ntp.pcap", "tcpdump_ntp.pcap"), {123})
    dhcp = payloads(("zeek_dhcp.pcap", "tcpdump_dhcp-rfc3004.pcap"), {67, 68})
    ssh = [(side, c.data(side)[:4096])
           for name in ("sv_ssh-hassh.pcap", "ja4_ssh.pcapng", "zeek_ssh_kex_curve25519.pcap")
           for c in conversations(str(PCAPS / name)) for side in (True, False)]
    print(f"corpus: {len(dns)} DNS, {len(dhcp)} DHCPv4, {len(ntp)} NTP messages, "
          f"{len(ssh)} SSH directions; µs per message, Python -> compiled")
    for label, old, new, msgs in (
            ("DNS parse_dns", oracle_dns.parse_dns, _dns.parse_dns, dns),
            ("DNS check_dns", oracle_dns.check_dns, _dns.check_dns, dns),
            ("DHCPv4 parse_dhcp", oracle_dhcp.parse_dhcp, _datagrams.parse_dhcp, dhcp),
            ("NTP parse_ntp", oracle_ntp.parse_ntp, _datagrams.parse_ntp, ntp)):
        n = 100 * len(msgs)
        o, w = best(each(old, msgs)) / n * 1e6, best(each(new, msgs)) / n * 1e6
        print(f"  {label:20s} alone        {o:6.2f} -> {w:5.2f}  ({o / w:4.1f}x)")
    n = 50 * len(ssh)
    o = best(ssh_feeds(oracle_ssh.SshReader, ssh)) / n * 1e6
    w = best(ssh_feeds(_ssh.SshReader, ssh)) / n * 1e6
    print(f"  {'SSH (per direction)':20s} alone        {o:6.2f} -> {w:5.2f}  ({o / w:4.1f}x)")
    for label, old, new, msgs in (
            ("DNS records", oracle_dns.parse_dns, _dns.parse_batch, dns),
            ("DNS counting", oracle_dns.check_dns, _dns.check_batch, dns),
            ("DHCPv4 records", oracle_dhcp.parse_dhcp, _datagrams.dhcp_batch, dhcp)):
        msgs = (msgs * (BATCH // len(msgs) + 1))[:BATCH]
        o = best(python_loop(old, msgs)) / BATCH * 1e6
        w = best(one_call(new, msgs)) / BATCH * 1e6
        print(f"  {label:20s} batch of {BATCH} {o:6.2f} -> {w:5.2f}  ({o / w:4.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
