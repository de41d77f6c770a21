from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

def bucket_counts(
    values: npt.NDArray[np.int64] | npt.NDArray[np.float64],
    bounds: npt.NDArray[np.float64],
    small: npt.NDArray[np.uint8],
) -> npt.NDArray[np.int64]: ...
def small_buckets(bounds: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.uint8]: ...
def services(
    sport: npt.NDArray[np.int64], dport: npt.NDArray[np.int64], of_port: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]: ...
def tcp_keys(
    flags: Sequence[npt.NDArray[np.uint8] | None],
    service: npt.NDArray[np.int64],
    flag_index: npt.NDArray[np.int64],
    services: int,
) -> npt.NDArray[np.int64]: ...
def lookup(
    values: npt.NDArray[np.int64], table: npt.NDArray[np.int64], default: int
) -> npt.NDArray[np.int64]: ...
def stuck(
    n: int,
    below: Sequence[npt.NDArray[np.int64]],
    above: Sequence[npt.NDArray[np.int64]],
    error: npt.NDArray[np.int16],
) -> int: ...
