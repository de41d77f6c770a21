"""Optional payload columns, derived from the decoder's payload offsets.

The decoder records where each layer's payload starts (`_poff`, an offset into the
batch buffer) and its captured size (`PayloadSize`). Payload bytes (`-payload`) and
Shannon entropy (`-entropy`) cost memory and time, so they are only derived when asked,
as in the Go Netcap.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .table import Ragged, RecordTable

__all__ = ["add_payload_columns", "entropy"]


def entropy(payloads: Ragged) -> npt.NDArray[np.float64]:
    """Shannon entropy in bits per byte of each row (0 for an empty row)."""
    n = len(payloads)
    out = np.zeros(n, np.float64)
    if payloads.data.size == 0:
        return out
    # Chunk rows so the (rows x 256) count matrix stays small.
    starts = payloads.starts
    step = 4096
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        lens = payloads.lens[lo:hi]
        b0 = int(starts[lo])
        b1 = b0 + int(lens.sum())
        if b1 == b0:
            continue
        rows = np.repeat(np.arange(hi - lo), lens)
        counts = np.bincount(rows * 256 + payloads.data[b0:b1], minlength=(hi - lo) * 256)
        counts = counts.reshape(hi - lo, 256).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = counts / lens[:, None]
            terms = np.where(counts > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
        out[lo:hi] = terms.sum(axis=1)
    return out


def add_payload_columns(
    table: RecordTable, data: npt.NDArray[np.uint8], payload: bool, entropy_: bool
) -> None:
    """Fill Payload / PayloadEntropy where the record type declares them."""
    poff = table.cols.get("_poff")
    size = table.cols.get("PayloadSize")
    if not isinstance(poff, np.ndarray) or not isinstance(size, np.ndarray):
        return
    fields = table.rtype.by_name
    want_payload = payload and "Payload" in fields
    want_entropy = entropy_ and "PayloadEntropy" in fields
    if not (want_payload or want_entropy):
        return
    rows = Ragged.gather(data, poff, np.maximum(size.astype(np.int64), 0))
    if want_payload:
        table.cols["Payload"] = rows
    if want_entropy:
        table.cols["PayloadEntropy"] = entropy(rows)
