"""Decode-error reason codes: stable, snake_case, one table.

Malformed traffic is data: a decoder that meets a bad header records one reason for the
packet (the first one met), keeps the layers it decoded, and moves on. Codes are stable
because they become metric label values and appear in summaries; add new ones at the
end, never renumber. Truncation by the capture's snaplen inside a *payload* is not an
error; a header cut short is (`*_truncated`).
"""

from __future__ import annotations

__all__ = ["NONE", "REASONS", "DecodeError", "code", "describe"]

# (protocol, reason). Index 0 means "no error".
REASONS: tuple[tuple[str, str], ...] = (
    ("", ""),
    ("link", "unsupported_link_type"),
    ("ethernet", "truncated"),
    ("dot1q", "truncated"),
    ("dot1q", "too_many_tags"),
    ("llc", "truncated"),
    ("arp", "truncated"),
    ("null", "truncated"),
    ("sll", "truncated"),
    ("sll2", "truncated"),
    ("radiotap", "truncated"),
    ("radiotap", "bad_length"),
    ("dot11", "truncated"),
    ("ip", "bad_version"),
    ("ipv4", "truncated"),
    ("ipv4", "bad_ihl"),
    ("ipv4", "bad_total_length"),
    ("ipv4", "bad_option_length"),
    ("ipv6", "truncated"),
    ("ipv6", "ext_truncated"),
    ("ipv6", "ext_chain_too_long"),
    ("tcp", "truncated"),
    ("tcp", "bad_data_offset"),
    ("tcp", "bad_option_length"),
    ("udp", "truncated"),
    ("udp", "bad_length"),
    ("icmpv4", "truncated"),
    ("icmpv6", "truncated"),
    ("dot11", "bad_frame"),
    ("dns", "truncated"),
    ("dns", "bad_label"),
    ("dns", "bad_pointer"),
    ("dns", "name_too_long"),
    ("dns", "bad_rdata"),
    ("ntp", "truncated"),
    ("dhcp", "truncated"),
    ("dhcp", "bad_magic"),
    ("dhcp", "bad_option_length"),
    ("tls", "truncated"),
    ("tls", "bad_length"),
    ("tls", "not_tls"),
    ("tls", "gap"),
    ("tls", "too_long"),
    ("ipv4", "fragment_overlap"),
    ("ipv4", "fragment_inconsistent"),
    ("ipv4", "fragment_too_big"),
    ("ipv4", "fragment_timeout"),
    ("ipv4", "fragment_evicted"),
    ("ipv6", "fragment_overlap"),
    ("ipv6", "fragment_inconsistent"),
    ("ipv6", "fragment_too_big"),
    ("ipv6", "fragment_timeout"),
    ("ipv6", "fragment_evicted"),
    ("ssh", "bad_banner"),
    ("ssh", "bad_packet"),
    ("ssh", "bad_kexinit"),
    ("ssh", "too_long"),
    ("http", "bad_request"),
    ("http", "bad_response"),
    ("http", "gap"),
    ("http", "too_long"),
    ("http", "http09"),
    ("http", "no_request"),
    ("http", "truncated"),
    ("ssh", "gap"),
    ("ncap", "bad_address"),  # records read from files: records/messages.py
    ("ncap", "record_too_large"),  # and sources/ncap.py
    # A capture timestamp the packet clock did not follow (clock.py): the packet's
    # records carry the last accepted time instead.
    ("frame", "timestamp_jump_forward"),
    ("frame", "timestamp_jump_back"),
    # A bug met by one stream's bytes (reassembly/_streams.pyx): counted, that stream dropped.
    ("tcp", "internal_error"),
    ("dns", "internal_error"),
    ("tls", "internal_error"),
    ("ssh", "internal_error"),
    ("http", "internal_error"),
    ("ncap", "bad_number"),  # records read from files: NaN or infinite (records/messages.py)
    ("ncap", "empty_record"),  # a record of length 0 (sources/ncap.py)
    # A TCP header whose options the capture's snaplen cut: its fixed fields are kept.
    ("tcp", "options_truncated"),
    ("sctp", "truncated"),
)

NONE = 0
_INDEX = {r: i for i, r in enumerate(REASONS)}
if len(_INDEX) != len(REASONS):  # pragma: no cover - import-time guard
    raise ValueError("duplicate decode-error reason")


def code(protocol: str, reason: str) -> int:
    """The stable index of a (protocol, reason) pair; unknown pairs raise KeyError."""
    return _INDEX[(protocol, reason)]


def describe(index: int) -> str:
    protocol, reason = REASONS[index]
    return f"{protocol}/{reason}"


class DecodeError(Exception):
    """Raised inside a layer decoder; carries the reason index for the packet."""

    def __init__(self, protocol: str, reason: str) -> None:
        super().__init__(f"{protocol}: {reason}")
        self.index = code(protocol, reason)
