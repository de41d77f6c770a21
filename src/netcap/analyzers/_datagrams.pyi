from typing import Any

import numpy as np
import numpy.typing as npt

_I64 = npt.NDArray[np.int64]

MESSAGE_TYPES: dict[int, str]

def parse_dhcp(msg: bytes) -> dict[str, Any]: ...
def parse_ntp(msg: bytes) -> dict[str, Any]: ...
def dhcp_batch(
    data: npt.NDArray[np.uint8], poff: _I64, size: _I64
) -> tuple[list[dict[str, Any]], _I64, _I64, npt.NDArray[np.int16]]: ...
def ntp_columns(data: npt.NDArray[np.uint8], poff: _I64, size: _I64) -> dict[str, Any]: ...
