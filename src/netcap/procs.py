"""The helper processes (decode workers, stream partitions): their one error, and how
they take signals.

The `net` process owns stopping: SIGINT and SIGTERM set its stop event, and it ends its
helpers itself (it kills them; they hold no output: every file is written by the
parent). So a helper ignores SIGINT (Ctrl-C reaches the whole process group), takes
SIGTERM's default action (die), and dies with the parent if that is killed outright
(Linux `PR_SET_PDEATHSIG`): no helper outlives the run, blocked on a pipe."""

from __future__ import annotations

import os
import signal

__all__ = ["WorkerError", "child_signals"]

_PR_SET_PDEATHSIG = 1


class WorkerError(RuntimeError):
    """A helper process failed (a bug, or killed); str() starts with one summary line."""


def child_signals(parent: int) -> None:
    """Call first in a forked helper; `parent` is the pid of the process that forked it
    (os.getpid() there, before the fork)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux/glibc: the parent's kill still ends it
        pass
    if os.getppid() != parent:  # the parent died before the line above: follow it
        os._exit(1)
