"""Output files: where they may go and who may read them.

Audit-record files hold what the traffic held: request headers, cookies, query strings,
addresses. They are created `0o640` (owner reads and writes, group reads, others
nothing); the umask can only take more away (`0o640 & ~umask`, as open(2) applies it).
A file left from an earlier run is replaced, not truncated, so it cannot keep a wider
mode. The backfill output gets the same mode (its label values come from the traffic).
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import BinaryIO, Literal, TextIO, cast, overload

__all__ = ["FILE_MODE", "check_dir", "check_file", "create_private"]

FILE_MODE = 0o640


@overload
def create_private(path: str, text: Literal[False] = False) -> BinaryIO: ...
@overload
def create_private(path: str, text: Literal[True]) -> TextIO: ...
def create_private(path: str, text: bool = False) -> BinaryIO | TextIO:
    """A new, empty file at `path`, mode FILE_MODE & ~umask, open for writing."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    if text:
        return cast(TextIO, os.fdopen(fd, "w"))
    return cast(BinaryIO, os.fdopen(fd, "wb"))


def check_dir(path: str) -> None:
    """Check that the output directory `path` can be used (raises OSError naming it):
    before any work, so a bad -out fails at once. A missing one is not made here (a run
    that then fails on its input leaves nothing behind): its nearest existing parent must
    take new entries. A real file is made and removed: permission bits alone do not say
    it (root, a read-only mount)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), path)
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    _probe(existing, path)


def check_file(path: str) -> None:
    """Check that the output file `path` can be created (its directory exists and takes
    files; `path` is not a directory), without creating it (raises OSError)."""
    if os.path.isdir(path):
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        e = errno.ENOTDIR if os.path.exists(parent) else errno.ENOENT
        raise OSError(e, os.strerror(e), parent)
    _probe(parent, parent)


def _probe(directory: str, name: str) -> None:
    import tempfile  # here: it brings `shutil`, `random` and more, for this probe only

    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:  # named as given, not by the probe's random name
        raise OSError(e.errno, f"cannot create files here ({e.strerror})", name) from None
