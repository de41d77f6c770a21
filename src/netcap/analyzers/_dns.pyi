from typing import Any

import numpy as np
import numpy.typing as npt

_I64 = npt.NDArray[np.int64]

def parse_dns(msg: bytes) -> dict[str, Any]: ...
def check_dns(msg: bytes) -> list[int]: ...
def parse_batch(
    data: npt.NDArray[np.uint8], poff: _I64, size: _I64
) -> tuple[list[dict[str, Any]], _I64, _I64, npt.NDArray[np.int16]]: ...
def check_batch(
    data: npt.NDArray[np.uint8], poff: _I64, size: _I64
) -> tuple[_I64, _I64, npt.NDArray[np.int16], _I64, _I64, _I64]: ...
