"""The Python reader that `netcap.analyzers._datagrams` replaced, kept unchanged as the
oracle of a differential test (tests/test_compiled_analyzers.py). What it read:

DHCPv4 / BOOTP messages (RFC 2131, 2132): the fixed 236-byte part, the magic cookie
and the options up to the end option.

Option values become text (DHCPOption.Data is a string in the Go Netcap's format):
address options as dotted quads joined by commas, names and other text options as sent
(bytes outside printable ASCII as \\xHH), everything else as hex. The Fingerprint is the
parameter request list (option 55) as comma-separated codes, the usual DHCP client
fingerprint.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netcap.decode.errors import DecodeError

__all__ = ["parse_dhcp"]

_MAGIC = b"\x63\x82\x53\x63"
_PAD, _END, _MESSAGE_TYPE, _PARAMS = 0, 255, 53, 55
# Options whose value is a list of IPv4 addresses.
_ADDRESS_OPTIONS = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 21, 28, 32, 33, 41, 42, 44,
                              45, 48, 49, 50, 54, 65, 68, 69, 70, 71, 72, 73, 74, 75, 76,
                              118})
# Options whose value is text.
_TEXT_OPTIONS = frozenset({12, 14, 15, 17, 18, 40, 47, 56, 60, 62, 64, 66, 67, 81, 114})


def _text(raw: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x5C else f"\\x{b:02x}" for b in raw)


def _option_text(code: int, raw: bytes) -> str:
    if code in _ADDRESS_OPTIONS and raw and len(raw) % 4 == 0:
        return ",".join(str(ipaddress.IPv4Address(raw[i : i + 4]))
                        for i in range(0, len(raw), 4))
    if code in _TEXT_OPTIONS:
        return _text(raw.rstrip(b"\x00"))
    if code == _MESSAGE_TYPE and len(raw) == 1:
        return str(raw[0])
    return raw.hex()


def parse_dhcp(msg: bytes) -> dict[str, Any]:
    if len(msg) < 240:
        raise DecodeError("dhcp", "truncated")
    if msg[236:240] != _MAGIC:
        raise DecodeError("dhcp", "bad_magic")
    hlen = msg[2]
    rec: dict[str, Any] = {
        "Operation": msg[0], "HardwareType": msg[1], "HardwareLen": hlen,
        "HardwareOpts": msg[3], "Xid": int.from_bytes(msg[4:8], "big"),
        "Secs": int.from_bytes(msg[8:10], "big"), "Flags": int.from_bytes(msg[10:12], "big"),
        "ClientIP": msg[12:16], "YourClientIP": msg[16:20], "NextServerIP": msg[20:24],
        "RelayAgentIP": msg[24:28], "ClientHWAddr": msg[28 : 28 + min(hlen, 16)],
        "ServerName": msg[44:108].split(b"\x00", 1)[0],
        "File": msg[108:236].split(b"\x00", 1)[0],
    }
    options: list[dict[str, Any]] = []
    pos = 240
    while pos < len(msg):
        code = msg[pos]
        if code == _PAD:
            pos += 1
            continue
        if code == _END:
            break
        if pos + 1 >= len(msg) or pos + 2 + msg[pos + 1] > len(msg):
            raise DecodeError("dhcp", "bad_option_length")
        size = msg[pos + 1]
        raw = msg[pos + 2 : pos + 2 + size]
        options.append({"Type": code, "Length": size, "Data": _option_text(code, raw).encode()})
        if code == _PARAMS:
            rec["Fingerprint"] = ",".join(str(b) for b in raw).encode()
        pos += 2 + size
    rec["Options"] = options
    return rec
