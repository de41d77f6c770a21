"""The packet clock: which capture timestamps the run's time follows.

Timeouts (connections, IP fragments), backfill steps and replay pacing all run on
packet time. One packet stamped in 2106 (or 0, 1970) in the middle of a capture would
move that time decades at once: every connection times out, the backfill ends in one
sample decades later, a replay waits for decades. So a file's timestamps pass through
`PacketClock` before anything reads them, in input order:

- a stamp within JUMP_NS (10 minutes) of the last accepted stamp is accepted;
- a stamp further away is accepted only if each of the next CONFIRM (3) packets is
  closer to it than to the last accepted stamp: the capture really moved (a pause, a
  clock step, a second section recorded at another time); a sparse capture whose
  packets are hours apart passes too, since its next packets go on from the new time;
- otherwise it is rejected: counted as a decode error (`frame/timestamp_jump_forward`
  or `frame/timestamp_jump_back`) and replaced by the last accepted stamp, so the
  packet's records and everything after them see that time instead.

The first stamp is judged against the median of the first 2*CONFIRM+1 when most of
them lie together and it does not (`_start`). A whole capture
stamped 0 is consistent and accepted as it is: only jumps against the neighbours count.
Runs of up to CONFIRM-1 bad stamps are caught. Limits: the packets that confirm a jump
are looked for in the same read chunk (16 MiB); a jump in a chunk's last packets is
judged on fewer followers (none for the very last: rejected), and interleaved sources
more than JUMP_NS apart (a merge of two badly skewed clocks) are rejected in part.
Live capture is not checked: its stamps are the kernel's wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .decode.errors import code

__all__ = ["CONFIRM", "JUMP_NS", "PacketClock"]

JUMP_NS = 600 * 10**9
CONFIRM = 3
_FORWARD = code("frame", "timestamp_jump_forward")
_BACK = code("frame", "timestamp_jump_back")


@dataclass(slots=True)
class PacketClock:
    """Carries the last accepted stamp from one chunk of a file to the next (it is
    passed between the parallel workers with the read position)."""

    ref: int | None = None  # the last accepted stamp (ns)
    rejected: int = 0  # stamps rejected so far

    def check(self, ts: npt.NDArray[np.int64]) -> npt.NDArray[np.int16] | None:
        """Judge the next stamps of the input, in place: rejected ones are replaced by
        the last accepted stamp. Returns each packet's decode-error code (0: accepted),
        or None when all were accepted (the common case: a min and a max when the stamps
        span less than JUMP_NS, else a few numpy passes)."""
        n = int(ts.shape[0])
        if n == 0:
            return None
        if self.ref is None:
            self.ref = _start(ts[: 2 * CONFIRM + 1].tolist())
        lo, hi = int(ts.min()), int(ts.max())
        if max(hi, self.ref) - min(lo, self.ref) <= JUMP_NS:  # all within one window
            self.ref = int(ts[-1])
            return None
        # float64: differences of arbitrary int64 stamps must not wrap around. It rounds
        # (by < 2 µs), so the fast path takes a millisecond less; anything closer to the
        # bound is judged exactly below.
        t = ts.astype(np.float64)
        near = JUMP_NS - 10**6
        if abs(t[0] - self.ref) <= near and (
                n == 1 or bool(np.all(np.abs(np.diff(t)) <= near))):
            self.ref = int(ts[-1])
            return None
        return self._slow(ts)

    def _slow(self, ts: npt.NDArray[np.int64]) -> npt.NDArray[np.int16] | None:
        """Packet by packet (Python ints: no overflow), in a batch that has a jump."""
        stamps = ts.tolist()
        errors = np.zeros(len(stamps), np.int16)
        ref = self.ref
        if ref is None:  # invariant (not input): check() sets it before calling
            raise TypeError("packet clock has no reference")
        for i, t in enumerate(stamps):
            if abs(t - ref) > JUMP_NS:
                after = stamps[i + 1 : i + 1 + CONFIRM]
                if not after or any(abs(f - t) >= abs(f - ref) for f in after):
                    errors[i] = _FORWARD if t > ref else _BACK
                    ts[i] = ref
                    continue
            ref = t
        self.ref = ref
        bad = int(np.count_nonzero(errors))
        self.rejected += bad
        return errors if bad else None


def _start(head: list[int]) -> int:
    """What the first stamp is judged against: itself, unless most of the first few
    stamps lie together (within JUMP_NS of their median) and it lies apart from them (a
    bad first stamp). Packets hours apart (a sparse capture) form no group: the first
    one is then taken as it is."""
    mid = sorted(head)[len(head) // 2]
    together = sum(abs(t - mid) <= JUMP_NS for t in head)
    if abs(head[0] - mid) > JUMP_NS and together > len(head) // 2:
        return mid
    return head[0]
