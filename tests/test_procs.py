"""The helper-process primitives (procs.py): forked helpers and their exit status, pipes of
pickled objects, waiting on several pipes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from netcap.procs import Helper, Pipe, pipe, wait


def _send_all(out: Pipe, items: list[object]) -> None:
    for item in items:
        out.send(item)
    out.close()


def _raise() -> None:
    raise RuntimeError("a helper's bug")


def _sleep() -> None:
    time.sleep(30)


def test_messages_arrive_whole_and_in_order_then_the_end() -> None:
    """Small ones (one write each), one larger than the pipe and the write size (many),
    arrays; after the writer is gone, EOFError."""
    big = np.arange(1 << 20, dtype=np.int64)  # 8 MiB
    items: list[object] = [b"x", {"a": (1, 2.5, "three")}, big, [], None]
    r, w = pipe()
    helper = Helper(_send_all, (w, items))
    helper.start()
    w.close()
    got = [r.recv() for _ in items]
    assert got[:2] == items[:2] and got[3:] == items[3:]
    assert np.array_equal(got[2], big)  # type: ignore[arg-type]
    with pytest.raises(EOFError):
        r.recv()
    helper.join()
    assert helper.exitcode == 0 and not helper.is_alive()
    r.close()


def test_a_message_cut_short_is_the_end() -> None:
    r, w = pipe()
    os.write(w.fileno(), (100).to_bytes(8, "big") + b"only part of it")
    w.close()
    with pytest.raises(EOFError):
        r.recv()
    r.close()


def test_wait_and_poll_report_what_can_be_read() -> None:
    a, a_w = pipe()
    b, b_w = pipe()
    assert wait([a, b], 0.0) == [] and not a.poll()
    b_w.send("ready")
    assert wait([a, b], 1.0) == [b] and b.poll(0.5) and not a.poll()
    assert b.recv() == "ready"
    a_w.close()  # an end is readable too: recv says EOFError
    assert wait([a, b], 1.0) == [a]
    for end in (a, b, b_w):
        end.close()
    a.close()  # closing twice is fine


def test_exit_status_of_a_helper() -> None:
    """0 when its target returns, 1 when it raises (traceback on stderr), -N when signal
    N ends it; none while it runs."""
    r, w = pipe()
    ok = Helper(_send_all, (w, []))
    bug = Helper(_raise, ())
    slow = Helper(_sleep, ())
    for h in (ok, bug, slow):
        h.start()
    ok.join()
    bug.join()
    assert (ok.exitcode, bug.exitcode) == (0, 1)
    assert slow.is_alive() and slow.exitcode is None
    slow.kill()
    slow.join()
    assert slow.exitcode == -signal.SIGKILL and not slow.is_alive()
    slow.kill()  # ended already: nothing to do
    r.close()
    w.close()


def test_a_pipe_holds_a_batch_of_results_without_a_reader() -> None:
    """pipe() asks for a 1 MiB buffer (procs._PIPE_BYTES): a worker's ~64 KiB of results
    per batch must not wait for the parent to read (Linux's default buffer is 64 KiB).
    Where the system caps pipes lower, the pipe still works at the size it has."""
    import fcntl

    r, w = pipe()
    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    size = fcntl.fcntl(w.fileno(), fcntl.F_GETPIPE_SZ)
    assert size == min(1 << 20, max(limit, 1 << 16))
    if size >= 1 << 20:
        os.set_blocking(w.fileno(), False)
        w.send(b"x" * (600 << 10))  # more than the default buffer, without a reader
        os.set_blocking(w.fileno(), True)
        assert r.recv() == b"x" * (600 << 10)
    r.close()
    w.close()
