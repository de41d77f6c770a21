from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .schema import RecordType, Render
from .table import Ragged, RecordTable

def encode_delimited_sized(
    table: RecordTable,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]: ...
def encode_rows(table: RecordTable) -> Ragged: ...
def encode_records(rtype: RecordType, rows: Iterable[dict[str, Any]]) -> bytes: ...
def render_column(col: Ragged, how: Render) -> Ragged: ...
def ragged_rows(col: Ragged) -> list[bytes]: ...
def varint_matrix(
    values: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]: ...
def from_rows(
    rtype: RecordType,
    rows: Sequence[dict[str, Any]],
    pkt: Iterable[int] | None,
    only: frozenset[str] | None = ...,
) -> RecordTable: ...
