"""The Python NTP reader that `netcap.analyzers._datagrams` replaced, kept as the oracle
of a differential test (tests/test_compiled_analyzers.py): RFC 5905's 48-byte header,
anything after it as ExtensionBytes, timestamps as raw 64-bit fixed-point values."""

from __future__ import annotations

import struct
from typing import Any

from netcap.decode.errors import DecodeError

__all__ = ["parse_ntp"]

_HEADER = struct.Struct(">BBbbIII4Q")


def parse_ntp(msg: bytes) -> dict[str, Any]:
    if len(msg) < 48:
        raise DecodeError("ntp", "truncated")
    (first, stratum, poll, precision, root_delay, root_disp, ref_id, ref_ts, orig_ts,
     recv_ts, xmit_ts) = _HEADER.unpack_from(msg)
    return {
        "LeapIndicator": first >> 6, "Version": (first >> 3) & 0x7, "Mode": first & 0x7,
        "Stratum": stratum, "Poll": poll, "Precision": precision, "RootDelay": root_delay,
        "RootDispersion": root_disp, "ReferenceID": ref_id, "ReferenceTimestamp": ref_ts,
        "OriginTimestamp": orig_ts, "ReceiveTimestamp": recv_ts,
        "TransmitTimestamp": xmit_ts, "ExtensionBytes": msg[48:],
    }
