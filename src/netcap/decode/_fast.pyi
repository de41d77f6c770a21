from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ..records.table import Ragged, RecordTable
from ..sources.batch import PacketBatch

_I64 = npt.NDArray[np.int64]

class FastResult:
    @property
    def done(self) -> npt.NDArray[np.bool_]: ...
    @property
    def tables(self) -> dict[str, RecordTable]: ...
    def __init__(self, done: npt.NDArray[np.bool_], tables: dict[str, RecordTable]) -> None: ...

def decode_fast(
    batch: PacketBatch, columns: Mapping[str, frozenset[str]] | None = None
) -> FastResult: ...
def option_lists(
    data: npt.NDArray[np.uint8], start: _I64, stop: _I64, keep: bool = True
) -> tuple[npt.NDArray[np.bool_], _I64, _I64]: ...
def gather(data: npt.NDArray[np.uint8], starts: _I64, lens: _I64) -> Ragged: ...
