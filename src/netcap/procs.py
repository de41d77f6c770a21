"""The helper processes (decode workers, the stream process): how they are forked, the
pipes between them and the `net` process, their one error, and how they take signals.

The `net` process owns stopping: SIGINT and SIGTERM set its stop event, and it ends its
helpers itself (it kills them; they hold no output: every file is written by the
parent). So a helper ignores SIGINT (Ctrl-C reaches the whole process group), takes
SIGTERM's default action (die), and dies with the parent if that is killed outright
(Linux `PR_SET_PDEATHSIG`): no helper outlives the run, blocked on a pipe.

`Helper`, `pipe` and `wait` are the few parts of `multiprocessing` the pipeline used
(forked processes, one-way pipes of pickled objects, waiting on several): importing
`multiprocessing` and its `connection` module took ~8 ms of every run's start-up
(they bring `tempfile`, `shutil`, `bz2`, `lzma`, `random`, `subprocess`), for nothing
else."""

from __future__ import annotations

import fcntl
import os
import pickle
import select
import signal
import struct
import sys
import traceback
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

__all__ = ["Helper", "Pipe", "WorkerError", "child_signals", "pipe", "wait"]

_LENGTH = struct.Struct("!Q")  # before each message: its pickle's length
_WRITE = 1 << 20  # at most this much per write(2) call
# A pipe's buffer. Linux's default, 64 KiB, is about one batch's results when counting
# (mostly IP fragments for the parent to reassemble): each send then waited for the
# parent to be scheduled and read, on 2 cores shared by 3 processes. 1 MiB (the default
# /proc/sys/fs/pipe-max-size) lets a worker run a batch or so ahead instead, within the
# same bound (the pipe still blocks when full); the kernel takes the pages only as data
# is written. 1M bench, counting only: 0.32 -> 0.30 s (docs/performance.md).
_PIPE_BYTES = 1 << 20

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


class Pipe:
    """One end of a one-way pipe: objects pickled, each after its length."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __del__(self) -> None:  # an end dropped on an error path is closed, not leaked
        self.close()

    def send(self, obj: Any) -> None:
        """Pickle and write `obj`; BrokenPipeError if the reading end is closed."""
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        head = _LENGTH.pack(len(data))
        if len(data) <= 4096:  # one write for the small ones (most of them)
            self._write(memoryview(head + data))
        else:
            self._write(memoryview(head))
            self._write(memoryview(data))

    def recv(self) -> Any:
        """The next object; EOFError if the writing end closed before (or during) it."""
        head = bytearray(_LENGTH.size)
        self._read(memoryview(head))
        (n,) = _LENGTH.unpack(head)
        data = bytearray(n)
        self._read(memoryview(data))
        return pickle.loads(data)

    def take(self) -> None:
        """Read one byte: a lock held as the byte in its pipe (`give` puts it back).
        Blocks until it is there; EOFError if every writing end is closed."""
        if not os.read(self.fd, 1):
            raise EOFError

    def give(self) -> None:
        """Write one byte (see `take`)."""
        os.write(self.fd, b"\0")

    def poll(self, timeout: float = 0.0) -> bool:
        """Whether a message (or the end) can be read without waiting, within `timeout`
        seconds."""
        return bool(wait([self], timeout))

    def _write(self, view: memoryview) -> None:
        while view:
            view = view[os.write(self.fd, view[:_WRITE]):]

    def _read(self, view: memoryview) -> None:
        while view:
            got = os.readv(self.fd, [view])
            if got == 0:
                raise EOFError
            view = view[got:]


def pipe() -> tuple[Pipe, Pipe]:
    """(the reading end, the writing end) of a new pipe, of _PIPE_BYTES where Linux
    allows it (see there)."""
    r, w = os.pipe()
    with suppress(OSError, AttributeError):  # not Linux, or past the user's pipe quota
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    return Pipe(r), Pipe(w)


def wait(ends: Sequence[Pipe], timeout: float | None) -> list[Pipe]:
    """The reading ends among `ends` with a message or their end waiting, within
    `timeout` seconds (None: until one has)."""
    poller = select.poll()
    by_fd = {}
    for end in ends:
        poller.register(end.fd, select.POLLIN)  # POLLHUP and POLLERR come with it
        by_fd[end.fd] = end
    ms = None if timeout is None else max(0, int(timeout * 1000))
    return [by_fd[fd] for fd, _ in poller.poll(ms)]


class Helper:
    """A forked process running `target(*args)`: exit status 0 when it returns, 1 when
    it raises (its traceback on stderr); `exitcode` is -N if signal N ended it."""

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.target = target
        self.args = args
        self.pid = 0
        self.exitcode: int | None = None

    def start(self) -> None:
        for f in (sys.stdout, sys.stderr):  # else the child would write the parent's
            with suppress(AttributeError, OSError, ValueError):  # buffered output again
                f.flush()  # when it flushes at its end
        pid = os.fork()
        if pid:
            self.pid = pid
            return
        code = 1
        try:
            try:  # as multiprocessing does: the parent's stdin is not the helper's
                sys.stdin.close()
                sys.stdin = open(os.devnull)  # noqa: SIM115 - the process's, for good
            except (OSError, ValueError):
                pass
            self.target(*self.args)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            for f in (sys.stdout, sys.stderr):
                with suppress(AttributeError, OSError, ValueError):
                    f.flush()
            os._exit(code)

    def _reap(self, flags: int) -> bool:
        """Whether it has ended (its exit status then taken)."""
        if self.exitcode is None and self.pid:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # taken already elsewhere: it has ended
                self.exitcode = -1
                return True
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
        return self.exitcode is not None

    def is_alive(self) -> bool:
        return not self._reap(os.WNOHANG)

    def kill(self) -> None:
        if self.is_alive():
            with suppress(ProcessLookupError):  # ended meanwhile
                os.kill(self.pid, signal.SIGKILL)

    def join(self) -> None:
        """Wait until it has ended."""
        self._reap(0)
