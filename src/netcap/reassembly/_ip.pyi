"""Typed face of the compiled IP defragmentation (_ip.pyx)."""

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy.typing as npt

T = TypeVar("T")
D = TypeVar("D")
I64 = npt.NDArray[Any]  # int64 (any array numpy turns into one)
U8 = npt.NDArray[Any]  # uint8

def build(fragment: type[T], version: I64, addrs: U8, src_at: I64, src_len: I64,
          dst_at: I64, dst_len: I64, ident: I64, proto: I64, offset: I64, more: U8,
          data: U8, start: I64, stop: I64, ts: I64, pkt: I64, wire: I64) -> list[T]: ...

class Defragmenter:
    timeout_ns: int
    max_datagrams: int
    max_bytes: int
    errors: Counter[str]
    def __init__(self, timeout_ns: int = ..., max_datagrams: int = ...,
                 max_bytes: int = ...) -> None: ...
    def __len__(self) -> int: ...
    def _add(self, frags: Iterable[tuple[Any, ...]], datagram: Callable[..., D]) -> list[D]: ...
    def _advance(self, now: int) -> None: ...
    def _flush(self) -> None: ...
