"""NTP messages (RFC 5905): the 48-byte header; anything after it (extension fields, a
MAC) is kept as ExtensionBytes. Timestamps stay raw 64-bit NTP fixed-point values, as
the Go Netcap writes them.

The header has a fixed layout, so a batch's messages are read at once (`ntp_columns`);
`parse_ntp` is the same for one message (a test keeps the two equal)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from netcap.decode.errors import DecodeError
from ..gather import gather_u8
from ..records.table import Ragged

__all__ = ["ntp_columns", "parse_ntp"]

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


def ntp_columns(data: npt.NDArray[np.uint8], poff: npt.NDArray[np.int64],
                size: npt.NDArray[np.int64]) -> dict[str, Any]:
    """The NTP record columns of messages at data[poff:poff+size], all of at least 48
    bytes (shorter ones are `ntp/truncated`)."""
    h = gather_u8(data, poff, 48)
    b = h[:, :2].astype(np.int64)
    words = h[:, 4:16].copy().view(">u4").astype(np.int64)  # delay, dispersion, ref ID
    stamps = h[:, 16:48].copy().view(">u8").astype(np.uint64)
    return {
        "LeapIndicator": b[:, 0] >> 6, "Version": (b[:, 0] >> 3) & 7, "Mode": b[:, 0] & 7,
        "Stratum": b[:, 1], "Poll": h[:, 2].view(np.int8).astype(np.int64),
        "Precision": h[:, 3].view(np.int8).astype(np.int64),
        "RootDelay": words[:, 0], "RootDispersion": words[:, 1], "ReferenceID": words[:, 2],
        "ReferenceTimestamp": stamps[:, 0], "OriginTimestamp": stamps[:, 1],
        "ReceiveTimestamp": stamps[:, 2], "TransmitTimestamp": stamps[:, 3],
        "ExtensionBytes": Ragged.gather(data, poff + 48, size - 48),
    }
