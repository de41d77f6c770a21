"""SSH identification banners and key-exchange offers (SSH_MSG_KEXINIT), with their
HASSH / HASSH-server fingerprints, read by the compiled `_ssh` (its docstring has the
rules): `SshReader` on one direction of a reassembled TCP stream (fed bytes in order,
at most one record out; `feed` and `finish` never raise), `parse_kexinit` and `hassh`
on one KEXINIT payload (`DecodeError("ssh", "bad_kexinit")` if malformed)."""

from __future__ import annotations

from ._ssh import (
    MAX_LINES,
    MAX_PACKET,
    MAX_PACKETS,
    MAX_PREBANNER,
    MIN_PACKET,
    MSG_KEXINIT,
    SshReader,
    hassh,
    parse_kexinit,
)

__all__ = ["MAX_LINES", "MAX_PACKET", "MAX_PACKETS", "MAX_PREBANNER", "MIN_PACKET",
           "MSG_KEXINIT", "SshReader", "hassh", "parse_kexinit"]
