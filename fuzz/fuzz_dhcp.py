"""Fuzz target: the compiled DHCPv4 reader (netcap.analyzers._datagrams.parse_dhcp) on
one message: a record or DecodeError; anything else coming out is a bug, and so is any
sanitizer report."""

from __future__ import annotations

import contextlib
import os
import sys

from netcap.analyzers._datagrams import parse_dhcp
from netcap.decode.errors import DecodeError

_COOKIE = b"\x63\x82\x53\x63"


def TestOneInput(data: bytes) -> None:
    # Most random inputs fail at the 240-byte minimum or the magic cookie: the input is
    # also tried as the options of a fixed part that passes, so the options get fuzzed.
    for msg in (data, bytes(236) + _COOKIE + data):
        with contextlib.suppress(DecodeError):
            parse_dhcp(msg)


def seeds() -> list[bytes]:
    sys.path.insert(0, os.path.dirname(__file__))
    from fuzz_dns import _udp_payloads

    found = _udp_payloads(("zeek_dhcp.pcap", "tcpdump_dhcp-rfc3004.pcap"), {67, 68})
    return found + [m[240:] for m in found]


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
