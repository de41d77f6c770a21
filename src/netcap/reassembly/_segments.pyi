"""Typed face of the compiled TCP segment picking (_segments.pyx; `streams.segments`)."""

from typing import Any

import numpy.typing as npt

I64 = npt.NDArray[Any]  # int64
U8 = npt.NDArray[Any]  # uint8 (bool columns viewed as uint8)

KIND_BITS: dict[str, int]

class Picker:
    def __init__(self, ports: dict[int, str], starts: tuple[bytes, ...],
                 max_segments: int) -> None: ...
    def pick(self, kinds: int, hide_bodies: bool, sport: I64, dport: I64, seq: I64, syn: U8,
             fin: U8, rst: U8, poff: I64, size: I64, src: U8, src_lens: I64, dst: U8,
             dst_lens: I64, pkt: I64, data: U8, ts: I64, first: int, copy: bool = True
             ) -> tuple[U8, I64, I64, U8, I64, I64, I64, I64, bytes | None, I64, I64, I64,
                        I64, I64] | None: ...
