"""Fuzz target: the compiled NTP reader (netcap.analyzers._datagrams): parse_ntp on one
message, and ntp_columns (the per-batch read) on it, which must agree; anything else
than DecodeError coming out is a bug, and so is any sanitizer report."""

from __future__ import annotations

import os
import sys

import numpy as np

from netcap.analyzers._datagrams import ntp_columns, parse_ntp
from netcap.decode.errors import DecodeError

_AT = np.zeros(1, np.int64)


def TestOneInput(data: bytes) -> None:
    try:
        rec = parse_ntp(data)
    except DecodeError:
        return
    cols = ntp_columns(np.frombuffer(data, np.uint8), _AT, np.full(1, len(data), np.int64))
    if (int(cols["TransmitTimestamp"][0]) != rec["TransmitTimestamp"]
            or int(cols["Poll"][0]) != rec["Poll"]
            or cols["ExtensionBytes"].tolist() != [rec["ExtensionBytes"]]):
        raise AssertionError("ntp_columns and parse_ntp disagree")


def seeds() -> list[bytes]:
    sys.path.insert(0, os.path.dirname(__file__))
    from fuzz_dns import _udp_payloads

    return _udp_payloads(("zeek_ntp.pcap", "tcpdump_ntp.pcap"), {123})


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
