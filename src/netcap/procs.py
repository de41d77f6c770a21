"""The one error of the helper processes (decode workers, stream partitions)."""

from __future__ import annotations

__all__ = ["WorkerError"]


class WorkerError(RuntimeError):
    """A helper process failed (a bug, or killed); str() starts with one summary line."""
