"""What the stream stage gives per update (`StreamOutput`), and the canonical order of
its records (`record_order`): the same whatever the number of stage partitions.

Both are compiled (`_streams.pyx`): the stage adds a record per HTTP transaction, hello,
banner and DNS message, and orders each update's records, in its loop."""

from __future__ import annotations

from ._streams import StreamOutput, record_order

__all__ = ["Key", "StreamOutput", "record_order"]

Key = tuple[bytes, int, bytes, int]  # (src address, src port, dst address, dst port)
