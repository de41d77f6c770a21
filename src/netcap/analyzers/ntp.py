"""NTP messages (RFC 5905), read by the compiled `_datagrams` (its docstring has the
rules): `parse_ntp` for one message (`DecodeError("ntp", "truncated")` below the 48-byte
header), `ntp_columns` for a batch's messages at once (a test keeps the two equal)."""

from __future__ import annotations

from ._datagrams import ntp_columns, parse_ntp

__all__ = ["ntp_columns", "parse_ntp"]
