import numpy as np
import numpy.typing as npt

class PcapError(Exception):
    code: int
    def __init__(self, message: str, code: int = -1) -> None: ...

class Handle:
    linktype: int
    nanoseconds: bool
    def __init__(
        self,
        iface: str,
        snaplen: int,
        promisc: bool,
        timeout_ms: int,
        buffer_bytes: int,
        max_packets: int = 65536,
    ) -> None: ...
    def close(self) -> None: ...
    def setfilter(self, expr: str) -> None: ...
    def fileno(self) -> int: ...
    @property
    def held(self) -> tuple[int, int]: ...
    def fill(self, max_bytes: int) -> int: ...
    def take(
        self,
    ) -> (
        tuple[
            npt.NDArray[np.uint8],
            npt.NDArray[np.int64],
            npt.NDArray[np.int64],
            npt.NDArray[np.int64],
            npt.NDArray[np.int64],
        ]
        | None
    ): ...
    def stats(self) -> tuple[int, int, int]: ...

class Filter:
    def __init__(self, expr: str, linktype: int, snaplen: int = 262144) -> None: ...
    def match(
        self,
        data: npt.NDArray[np.uint8],
        offset: npt.NDArray[np.int64],
        caplen: npt.NDArray[np.int64],
        wirelen: npt.NDArray[np.int64],
        keep: npt.NDArray[np.uint8],
        linktype: npt.NDArray[np.int32] | None = None,
        only: int = 0,
    ) -> None: ...
