"""One direction of a TCP stream, reassembled: a small contract in the gopacket manner.

Segments go in with their sequence number, in any order; bytes come out in order, as
`Chunk`s (`skip`: a gap before them, never invented). The rules (32-bit wrap, first
copy wins, conflicts counted, a bounded buffer) and the code: `_streams.pyx`, where the
stream stage uses it; this module is its name for the tests and tools that feed one
direction by hand.
"""

from ._streams import Chunk, Hidden, Stream

__all__ = ["Chunk", "Hidden", "Stream"]
