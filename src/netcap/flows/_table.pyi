"""Typed face of the compiled flow stage (_table.pyx)."""

from typing import Any

import numpy as np
import numpy.typing as npt

def summarize(parts: list[tuple[Any, ...]], ts: npt.NDArray[np.int64],
              wirelen: npt.NDArray[np.int64], linktype: npt.NDArray[np.int32],
              data: npt.NDArray[np.uint8], offset: npt.NDArray[np.int64],
              apps: list[npt.NDArray[np.int64] | None], tcp_timeout_ns: int,
              udp_timeout_ns: int, linger_ns: int) -> tuple[npt.NDArray[Any], ...]: ...

class Table:
    max_flows: int
    tcp_timeout_ns: int
    udp_timeout_ns: int
    linger_ns: int
    clock: int
    rtts: list[float]
    def __init__(self, max_flows: int, tcp_timeout_ns: int, udp_timeout_ns: int,
                 linger_ns: int) -> None: ...
    def __len__(self) -> int: ...
    def recognise(self, apps: bytes | bytearray) -> None: ...
    def _update(self, fb: Any, apps: bytes | bytearray
                ) -> tuple[tuple[npt.NDArray[Any], ...], int] | None: ...
    def _advance(self, now: int) -> tuple[tuple[npt.NDArray[Any], ...], int] | None: ...
    def _flush(self) -> tuple[tuple[npt.NDArray[Any], ...], int] | None: ...

def texts(key: npt.NDArray[np.uint8], a_first: npt.NDArray[np.uint8],
          macs: npt.NDArray[np.uint8], link: npt.NDArray[np.int64],
          first_ts: npt.NDArray[np.int64]
          ) -> list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]]: ...
