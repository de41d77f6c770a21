"""Raw address bytes to Netcap's text forms, and back.

IPs render as Go's `net.IP.String()`: 4 bytes dotted quad, 16 bytes RFC 5952 except that
IPv4-mapped addresses (::ffff:a.b.c.d) print as plain a.b.c.d, as Go's do; any other
length as '?' followed by hex. An empty address stays empty (Go would print "<nil>", but
Netcap never calls String() on an absent address). MACs (any length) render as Go's
`net.HardwareAddr.String()`: lower-case hex pairs joined by ':'.

The text is made in C (`_encode.pyx`, which writes it straight into encoded records);
`render_column` gives it as a column, for everything else that shows addresses.
"""

from __future__ import annotations

import re
import socket

from ._encode import render_column
from .schema import Render

__all__ = ["parse_address", "render_column"]


# The longest text of an address: IPv6 with an IPv4 tail, and 16 hex pairs with colons.
_MAX_ADDRESS_TEXT = {Render.IP: 45, Render.MAC: 47}
_MAC_TEXT = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})*")


def parse_address(text: str, how: Render) -> bytes | None:
    """The raw bytes of an address rendered as `how` (the inverse of rendering, for
    records read from files): b"" for an empty text, None for text that is not one.
    IPv4 gives 4 bytes and IPv6 16, so an address read back labels as the decoded one."""
    if not text:
        return b""
    if len(text) > _MAX_ADDRESS_TEXT[how]:
        return None
    if how is Render.IP:
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                return socket.inet_pton(family, text)
            except (OSError, ValueError):  # ValueError: an embedded NUL
                continue
        return None
    if not _MAC_TEXT.fullmatch(text):
        return None
    return bytes.fromhex(text.replace(":", ""))
