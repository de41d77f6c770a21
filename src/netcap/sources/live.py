"""Live capture: packets from a network interface, through libpcap (`_pcap`, its C API).

The handle is read non-blocking and woken by `select` on its descriptor: a blocking
libpcap read never returns on a quiet link (libpcap >= 1.9), so shutdown, metrics and
the packet clock would wait for the next packet. Each wakeup drains what the kernel
holds, up to `max_packets` and about `max_bytes`, into one `PacketBatch`, filled in C.
libpcap drops the outgoing copy of a packet on `lo`, so each packet there is seen once.

Timestamps are nanoseconds where the kernel gives them (Linux does), else microseconds.
Limits: Linux only for the interface list (netlink and SIOCGIFFLAGS).
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import time
from dataclasses import dataclass

import numpy as np

from ._base import CaptureError
from ._pcap import Filter, Handle, PcapError
from .batch import PacketBatch

__all__ = ["Interface", "LiveCapture", "LiveError", "check_bpf", "dlt_of", "list_interfaces"]

# libpcap DLT_* values that differ from the LINKTYPE_* values in files (pcap/dlt.h), and
# back: libpcap compiles filters for a DLT (LINKTYPE_RAW, 101, is DLT_RAW, 12, on Linux).
_DLT_TO_LINKTYPE = {12: 101, 14: 101}  # DLT_RAW (Linux, OpenBSD) -> LINKTYPE_RAW
_LINKTYPE_TO_DLT = {100: 11, 101: 12, 102: 15, 103: 16}  # ATM_RFC1483, RAW, SLIP/PPP_BSDOS


def dlt_of(linktype: int) -> int:
    """libpcap's DLT_* for a file's LINKTYPE_*."""
    return _LINKTYPE_TO_DLT.get(linktype, linktype)


class LiveError(CaptureError):
    """The interface cannot be captured on, or a -bpf expression does not compile;
    str(e) is one clear line."""


class LiveCapture:
    """An open interface. `read` returns the next batch of packets, or None when none
    arrived within the wait."""

    def __init__(self, iface: str, snaplen: int = 1514, promisc: bool = True,
                 bpf: str | None = None, buffer_bytes: int = 32 << 20,
                 max_packets: int = 65536) -> None:
        self.iface = iface
        self.snaplen = snaplen
        self.packets = 0  # packets delivered so far (numbers the next batch)
        self.max_packets = max_packets
        try:
            h = Handle(iface, snaplen, promisc, 100, buffer_bytes, max_packets)
        except PcapError as e:
            raise LiveError(_open_error(iface, e.code, str(e))) from None
        if bpf:
            try:
                h.setfilter(bpf)
            except PcapError as e:
                h.close()
                raise LiveError(f"bad -bpf expression {bpf!r}: {e}") from None
        self._h = h
        self._fd = h.fileno()
        self.linktype = _DLT_TO_LINKTYPE.get(h.linktype, h.linktype)

    def read(self, wait: float, linger: float = 0.01,
             max_bytes: int = 64 << 20) -> PacketBatch | None:
        """Wait up to `wait` seconds for packets; once some came, go on taking what
        arrives for up to `linger` seconds more, until the handle's max_packets or about
        `max_bytes` are held. Each batch costs the pipeline a fixed ~0.7 ms besides its
        packets: taking only what is ready at each wakeup (a ring block, ~100-400 packets
        here) kept batches that small at 200,000 packets/s, and that cost alone then took
        most of a core (bench/live_bench.py --mix). A packet waits at most `linger` more."""
        h = self._h
        if not select.select([self._fd], [], [], wait)[0]:
            return None
        end = time.monotonic() + linger
        try:
            n = h.fill(max_bytes)
            while n < self.max_packets and h.held[1] < max_bytes:
                left = end - time.monotonic()
                if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                    break
                n = h.fill(max_bytes)
        except PcapError as e:  # the interface went away, say
            raise LiveError(f"{self.iface}: capture failed: {e}") from None
        got = h.take()
        if got is None:
            return None
        data, offset, caplen, wirelen, ts = got
        n = len(offset)
        batch = PacketBatch(data=data, offset=offset, caplen=caplen, wirelen=wirelen, ts=ts,
                            linktype=np.full(n, self.linktype, np.int32),
                            iface=np.zeros(n, np.int32), first=self.packets)
        self.packets += n
        return batch

    def stats(self) -> tuple[int, int, int]:
        """(received, dropped by the kernel, dropped by the interface): libpcap's
        counters since the capture opened."""
        try:
            return self._h.stats()
        except PcapError as e:
            raise LiveError(f"{self.iface}: capture failed: {e}") from None

    def close(self) -> None:
        self._h.close()


# pcap_activate's statuses that name the cause (pcap/pcap.h): libpcap's own text for them
# varies with the version and the platform.
_NO_SUCH_DEVICE = -5
_PERM_DENIED = (-8, -11)  # PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED


def _open_error(iface: str, code: int, text: str) -> str:
    low = text.lower()
    if code in _PERM_DENIED or "permission" in low or "not permitted" in low:
        return (f"{iface}: no permission to capture (run as root, or give the Python"
                f" interpreter CAP_NET_RAW and CAP_NET_ADMIN): {text}")
    if code == _NO_SUCH_DEVICE or "no such device" in low:
        return f"{iface}: no such interface (net capture -interfaces lists them)"
    return f"{iface}: cannot capture: {text}"


def check_bpf(expr: str, linktype: int = 1, snaplen: int = 262144) -> Filter:
    """The filter of `expr` for `linktype` (LINKTYPE_*, as in files); LiveError if
    libpcap cannot compile it (a capture-file -bpf is checked before any work starts)."""
    try:
        return Filter(expr, dlt_of(linktype), snaplen)
    except PcapError as e:
        raise LiveError(f"bad -bpf expression {expr!r}: {e}") from None


# -- the interface list ----------------------------------------------------------------

_IFF = ((0x1, "UP"), (0x2, "BROADCAST"), (0x8, "LOOPBACK"), (0x10, "POINTOPOINT"),
        (0x40, "RUNNING"), (0x80, "NOARP"), (0x100, "PROMISC"), (0x200, "ALLMULTI"),
        (0x1000, "MULTICAST"))
_SIOCGIFFLAGS = 0x8913


@dataclass(frozen=True, slots=True)
class Interface:
    index: int
    name: str
    flags: tuple[str, ...]
    mac: str
    mtu: int
    addresses: tuple[str, ...]  # "address/prefix"


def list_interfaces() -> list[Interface]:
    """Every network interface of this namespace, by index."""
    addrs = _addresses()
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for index, name in sorted(socket.if_nameindex()):
            try:
                req = fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS,
                                  struct.pack("16sH", name.encode(), 0))
                bits = struct.unpack_from("H", req, 16)[0]
            except OSError:  # gone since the list was read
                continue
            out.append(Interface(index, name, tuple(n for b, n in _IFF if bits & b),
                                 _sys(name, "address"), int(_sys(name, "mtu") or 0),
                                 tuple(addrs.get(index, ()))))
    return out


def _sys(name: str, attr: str) -> str:
    try:
        with open(os.path.join("/sys/class/net", name, attr)) as f:
            return f.read().strip()
    except OSError:
        return ""


# rtnetlink: RTM_GETADDR dump (linux/rtnetlink.h, linux/if_addr.h)
_RTM_GETADDR, _RTM_NEWADDR, _NLMSG_DONE, _NLMSG_ERROR = 22, 20, 3, 2
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_IFA_ADDRESS, _IFA_LOCAL = 1, 2


def _addresses() -> dict[int, list[str]]:
    """Interface index -> its IPv4 and IPv6 addresses with prefix lengths."""
    out: dict[int, list[str]] = {}
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    except OSError:
        return out
    with s:
        body = struct.pack("BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0)
        s.send(struct.pack("=IHHII", 16 + len(body), _RTM_GETADDR,
                           _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0) + body)
        while True:
            msg = s.recv(65536)
            if not msg:
                return out
            pos = 0
            while pos + 16 <= len(msg):
                length, kind = struct.unpack_from("=IH", msg, pos)
                if length < 16 or kind in (_NLMSG_DONE, _NLMSG_ERROR):
                    return out
                if kind == _RTM_NEWADDR:
                    _address(msg[pos + 16 : pos + length], out)
                pos += (length + 3) & ~3


def _address(m: bytes, out: dict[int, list[str]]) -> None:
    family, prefix, _, _, index = struct.unpack_from("=BBBBI", m, 0)
    attrs: dict[int, bytes] = {}
    pos = 8
    while pos + 4 <= len(m):
        alen, atype = struct.unpack_from("=HH", m, pos)
        if alen < 4:
            break
        attrs[atype] = m[pos + 4 : pos + alen]
        pos += (alen + 3) & ~3
    raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)  # LOCAL: this end of a p2p
    if raw is None or family not in (socket.AF_INET, socket.AF_INET6):
        return
    out.setdefault(index, []).append(f"{socket.inet_ntop(family, raw)}/{prefix}")
