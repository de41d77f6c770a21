"""DNS messages (RFC 1035; mDNS is the same format), read by the compiled `_dns`
(its docstring has the rules): `parse_dns` for the record of one message, `check_dns`
for counting alone. Both raise `DecodeError("dns", reason)` on a malformed message."""

from __future__ import annotations

from ._dns import check_dns, parse_dns

__all__ = ["check_dns", "parse_dns"]
