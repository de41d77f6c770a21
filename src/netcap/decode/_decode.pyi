"""The typed Python face of _decode.pyx (the packet decoder)."""

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ..records.table import Ragged, RecordTable
from ..sources.batch import PacketBatch

_I64 = npt.NDArray[np.int64]

TABLES: tuple[str, ...]
V4_OPTIONS: tuple[int, int]
TCP_OPTIONS: tuple[int, int]
TCP_ADDRESS: tuple[int, int]

def decode_packets(
    batch: PacketBatch, columns: Mapping[str, frozenset[str]] | None = None
) -> tuple[dict[str, RecordTable], npt.NDArray[np.int16]]: ...
def option_lists(
    data: npt.NDArray[np.uint8], start: _I64, stop: _I64, keep: bool = True
) -> tuple[npt.NDArray[np.bool_], _I64, _I64]: ...
def gather(data: npt.NDArray[np.uint8], starts: _I64, lens: _I64) -> Ragged: ...
def _walk(
    data: npt.NDArray[np.uint8], offset: _I64, caplen: _I64, linktype: npt.NDArray[np.int32],
    ts: _I64,
) -> tuple[npt.NDArray[np.int16], _I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64,
           _I64, _I64]: ...
