import numpy as np
import numpy.typing as npt

from ._base import Buf, Columns

def walk_pcap(
    data: Buf, pos: int, big: bool, hlen: int, maxlen: int, frac_ns: int, linktype: int
) -> tuple[Columns | None, int, int, int]: ...
def walk_pcapng(
    data: Buf,
    pos: int,
    kind: int,
    big: bool,
    damaged: bool,
    ifaces: npt.NDArray[np.int64],
    max_block: int,
) -> tuple[Columns | None, int, int, tuple[int, str] | None]: ...
def ts_to_ns(raw: npt.NDArray[np.uint64], tsresol: int, tsoffset: int) -> npt.NDArray[np.int64]: ...
