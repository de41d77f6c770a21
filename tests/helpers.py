"""Helpers shared by the tests that run the real `net` command or read files by hand.

The readers here are independent of netcap's own (NcapReader), on purpose: a test that
reads what netcap wrote with netcap's reader could not catch a bug both share.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["PCAPS", "frames", "net_cmd", "uvarint"]

PCAPS = Path(__file__).parent / "data" / "corpus" / "pcaps"


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
