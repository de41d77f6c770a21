"""The typed Python face of _general.pyx (the general per-packet decoder)."""

from typing import Any

def decode_packet(data: bytes, linktype: int) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Decode one packet's captured bytes. Never raises for any input bytes."""
