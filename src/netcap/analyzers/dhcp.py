"""DHCPv4 / BOOTP messages (RFC 2131, 2132), read by the compiled `_datagrams` (its
docstring has the rules): `parse_dhcp` gives the record fields of one message or raises
`DecodeError("dhcp", reason)`; `MESSAGE_TYPES` names option 53's values."""

from __future__ import annotations

from ._datagrams import MESSAGE_TYPES, parse_dhcp

__all__ = ["MESSAGE_TYPES", "parse_dhcp"]
