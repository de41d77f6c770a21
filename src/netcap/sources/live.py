"""Live capture: packets from a network interface, through libpcap (pcapy-ng).

The handle is read non-blocking and woken by `select` on its descriptor: a blocking
libpcap read never returns on a quiet link (libpcap >= 1.9), so shutdown, metrics and
the packet clock would wait for the next packet. Each wakeup drains what the kernel
holds, up to `max_packets`, into one `PacketBatch`. libpcap drops the outgoing copy of
a packet on `lo`, so each packet there is seen once.

Limits: timestamps have microsecond resolution (pcapy-ng exposes no nanosecond
handles); Linux only for the interface list (netlink and SIOCGIFFLAGS).
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
from dataclasses import dataclass
from typing import Any

from ._base import CaptureError
from .batch import PacketBatch

__all__ = ["Interface", "LiveCapture", "LiveError", "check_bpf", "list_interfaces"]

# libpcap DLT_* values that differ from the LINKTYPE_* values in files (pcap/dlt.h).
_DLT_TO_LINKTYPE = {12: 101, 14: 101}  # DLT_RAW (Linux, OpenBSD) -> LINKTYPE_RAW


class LiveError(CaptureError):
    """The interface cannot be captured on, or a -bpf expression does not compile;
    str(e) is one clear line."""


def _pcapy() -> Any:
    """The libpcap binding, imported when first needed (its import costs start-up)."""
    import pcapy  # a C extension without stubs (mypy: ignore_missing_imports)

    return pcapy


def _message(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


class LiveCapture:
    """An open interface. `read` returns the next batch of packets, or None when none
    arrived within the wait."""

    def __init__(self, iface: str, snaplen: int = 1514, promisc: bool = True,
                 bpf: str | None = None, buffer_bytes: int = 32 << 20) -> None:
        pcapy = _pcapy()
        self.iface = iface
        self.snaplen = snaplen
        self.packets = 0  # packets delivered so far (numbers the next batch)
        try:
            h = pcapy.create(iface)
            h.set_snaplen(snaplen)
            h.set_promisc(1 if promisc else 0)
            h.set_timeout(100)
            h.set_buffer_size(buffer_bytes)
            code = h.activate()
        except pcapy.PcapError as e:
            raise LiveError(_open_error(iface, _message(e))) from None
        if code < 0:  # pcapy-ng returns pcap_activate's error codes instead of raising
            raise LiveError(_open_error(iface, _ACTIVATE_ERRORS.get(code, f"error {code}")))
        if bpf:
            try:
                h.setfilter(bpf)
            except (pcapy.PcapError, pcapy.BPFError) as e:
                h.close()
                raise LiveError(f"bad -bpf expression {bpf!r}: {_message(e)}") from None
        h.setnonblock(1)
        self._h = h
        self._fd = h.getfd()
        dlt = int(h.datalink())
        self.linktype = _DLT_TO_LINKTYPE.get(dlt, dlt)

    def read(self, wait: float, max_packets: int = 65536) -> PacketBatch | None:
        """Wait up to `wait` seconds for packets, then take all that are ready."""
        ready, _, _ = select.select([self._fd], [], [], wait)
        if not ready:
            return None
        data: list[bytes] = []
        stamps: list[tuple[int, int]] = []
        wire: list[int] = []
        add_data, add_ts, add_wire = data.append, stamps.append, wire.append

        def take(header: object, packet: bytes) -> None:
            add_ts(header.getts())  # type: ignore[attr-defined]
            add_wire(header.getlen())  # type: ignore[attr-defined]
            add_data(packet)

        while len(data) < max_packets:
            try:
                got = self._h.dispatch(max_packets - len(data), take)
            except _pcapy().PcapError as e:  # the interface went away, say
                raise LiveError(f"{self.iface}: capture failed: {_message(e)}") from None
            if got <= 0:
                break
        if not data:
            return None
        ts = [s * 1_000_000_000 + us * 1000 for s, us in stamps]
        batch = PacketBatch.from_packets(data, ts, self.linktype, wire, first=self.packets)
        self.packets += len(data)
        return batch

    def stats(self) -> tuple[int, int, int]:
        """(received, dropped by the kernel, dropped by the interface): libpcap's
        counters since the capture opened."""
        received, dropped, ifdropped = self._h.stats()
        return int(received), int(dropped), int(ifdropped)

    def close(self) -> None:
        self._h.close()


# pcap_activate's error codes (pcap/pcap.h)
_ACTIVATE_ERRORS = {-1: "generic error", -5: "no such device", -6: "rfmon not supported",
                    -8: "permission denied", -9: "interface not up",
                    -11: "permission denied for promiscuous mode"}


def _open_error(iface: str, text: str) -> str:
    low = text.lower()
    if "permission" in low or "not permitted" in low:
        return (f"{iface}: no permission to capture (run as root, or give the Python"
                f" interpreter CAP_NET_RAW and CAP_NET_ADMIN): {text}")
    if "no such device" in low:
        return f"{iface}: no such interface (net capture -interfaces lists them)"
    return f"{iface}: cannot capture: {text}"


def check_bpf(expr: str, linktype: int = 1, snaplen: int = 262144) -> None:
    """Raise LiveError if libpcap cannot compile `expr` (a capture-file -bpf is checked
    before any work starts)."""
    pcapy = _pcapy()
    try:
        pcapy.compile(linktype, snaplen, expr, 1, 0xFFFFFFFF)
    except (pcapy.PcapError, pcapy.BPFError) as e:
        raise LiveError(f"bad -bpf expression {expr!r}: {_message(e)}") from None


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
