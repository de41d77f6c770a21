"""Parallel capture (-workers N) writes the same records as a single process."""

from __future__ import annotations

import faulthandler
import gzip
from pathlib import Path

import numpy as np
import pytest

from corpus import PCAPS
from netcap.pipeline import CaptureOptions, run_capture
from netcap.sinks.ncap import EncodeOptions
from netcap.sources import capture as capture_mod
from netcap.sources.ncap import NcapReader

pytestmark = pytest.mark.corpus  # every test here reads the public corpus (tests/corpus.py)


def _records(out: Path) -> dict[str, list[bytes]]:
    result: dict[str, list[bytes]] = {}
    for f in sorted(out.glob("*.ncap*")):
        with NcapReader(str(f)) as r:
            result[r.record_type] = [m.SerializeToString() for m in r]
    return result


def _tiny_chunks(monkeypatch: pytest.MonkeyPatch, chunk: int = 2048) -> None:
    """Tiny chunks and batches, so even a small capture goes round the workers many times
    (chunks of uncompressed files are relayed; gzip input is sharded by batch)."""
    real_open = capture_mod.open_capture
    monkeypatch.setattr("netcap.pipeline.open_capture",
                        lambda path, **kw: real_open(path, **{**kw, "batch_packets": 3,
                                                              "chunk_bytes": 4096}))
    monkeypatch.setattr("netcap.pipeline.CHUNK_BYTES", chunk)
    monkeypatch.setattr("netcap.pipeline._BATCH_PACKETS", 3)


@pytest.mark.parametrize("name", [
    "zeek_http_bro.org.pcap", "zeek_wikipedia.pcap", "ja4_tls-handshake.pcapng",
    "DERIVED_zeek_http-vlan-0_cut-mid-record.pcap",  # cut: truncation reported the same
    "sv_tls_DER-incomplete-header-damaged.pcap",  # damaged record header
    "zeek_http_iso-download.pcap.gz",  # gzip: workers take shards instead of an index
    "tcpdump_dns_tcp.pcap",  # DNS over TCP: streams span batches and workers
])
@pytest.mark.parametrize(("workers", "chunk"), [(2, 2048), (3, 2048), (2, 100)])
def test_parallel_equals_single(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                workers: int, chunk: int) -> None:
    _tiny_chunks(monkeypatch, chunk)  # 100: most records are larger
    src = str(PCAPS / name)
    single = run_capture(CaptureOptions(read=src, out=str(tmp_path / "one"), workers=1))
    multi = run_capture(CaptureOptions(read=src, out=str(tmp_path / "many"), workers=workers))
    assert multi.workers == workers
    assert single.packets == multi.packets >= 6
    assert single.records == multi.records
    assert single.errors == multi.errors and single.linktypes == multi.linktypes
    assert single.truncation == multi.truncation
    assert _records(tmp_path / "one") == _records(tmp_path / "many")
    # Many gzip members in one file: still one gzip stream to a standard reader.
    for f in (tmp_path / "many").glob("*.ncap.gz"):
        assert gzip.decompress(f.read_bytes())


def test_parallel_bad_input_is_capture_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_text("hello\n")
    with pytest.raises(capture_mod.CaptureError):
        run_capture(CaptureOptions(read=str(bad), out=str(tmp_path / "o"), workers=2,
                                   encode=EncodeOptions()))
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


@pytest.mark.parametrize("name", ["zeek_wikipedia.pcap", "zeek_http_iso-download.pcap.gz",
                                  "dpkt_dns_icmp.pcap",  # DNS: responses in later batches
                                  "ja4_tls-handshake.pcapng", "sv_ssh-hassh.pcap",
                                  "tcpdump_dns_tcp.pcap"])  # stream records counted apart
def test_parallel_metrics_equal_single(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Workers count metrics per batch and the parent merges them: the same values as
    counting in one process (stage times and the rate aside)."""
    from netcap.metrics.state import MetricsState

    _tiny_chunks(monkeypatch)
    src = str(PCAPS / name)

    def counted(workers: int) -> tuple[dict[str, dict[tuple[str, ...], float]], object]:
        state = MetricsState()
        run_capture(CaptureOptions(read=src, out=None, workers=workers, metrics=True), state)
        snap = state.snapshot()
        counters = {k: v for k, v in snap.counters.items() if k != "nc_stage_seconds"}
        # sums rounded: records may be added in other groupings (float addition order)
        hists = {k: {lk: (h.buckets, h.count, round(h.sum, 6)) for lk, h in v.items()}
                 for k, v in snap.histograms.items()}
        return counters, hists

    one, many = counted(1), counted(2)
    assert one == many
    assert one[0]["nc_packets"][()] >= 11


@pytest.mark.parametrize("out", [True, False])
def test_stopped_with_a_stream_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       out: bool) -> None:
    """Stopped mid-input (SIGINT sets the event), the stream process ends where it is and
    sends the steps of its end; the files are complete and hold no more than a whole run."""
    import threading

    from netcap.metrics.state import MetricsState
    from netcap.pipeline import Sink

    _tiny_chunks(monkeypatch)
    stop = threading.Event()
    taken = []
    real_take = Sink.take_remote

    def take_remote(self: Sink, *args: object) -> None:
        real_take(self, *args)  # type: ignore[arg-type]
        taken.append(1)
        if len(taken) == 5:
            stop.set()

    monkeypatch.setattr(Sink, "take_remote", take_remote)
    src = str(PCAPS / "zeek_http_bro.org.pcap")
    whole = run_capture(CaptureOptions(read=src, out=str(tmp_path / "whole"), workers=1))
    state = MetricsState()
    cut = run_capture(CaptureOptions(read=src, out=str(tmp_path / "cut") if out else None,
                                     workers=2, metrics=True), state, stop)
    assert cut.interrupted and len(taken) == 5  # the stream process ran, and stopped
    assert 0 < cut.packets < whole.packets
    if out:
        got = _records(tmp_path / "cut")
        assert got["HTTP"] and len(got["HTTP"]) <= whole.records["HTTP"]
        assert set(got) <= set(_records(tmp_path / "whole"))
    assert state.snapshot().counters["nc_packets"][()] == cut.packets


def test_a_failing_stream_process_is_a_worker_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from netcap.pipeline import StreamSide, WorkerError

    _tiny_chunks(monkeypatch)

    def broken(self: StreamSide, segs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(StreamSide, "take_segments", broken)  # inherited by the fork
    with pytest.raises(WorkerError, match="RuntimeError: boom"):
        run_capture(CaptureOptions(read=str(PCAPS / "zeek_http_bro.org.pcap"),
                                   out=str(tmp_path / "o"), workers=2))


@pytest.mark.parametrize("mapped", [True, False])
def test_the_stream_process_reads_payloads_from_the_file(tmp_path: Path, mapped: bool) -> None:
    """A relay worker sends where its segments' payloads are in the input file; the
    stream process reads them there (in its mapping of the file, or, if the file cannot
    be mapped, one read per batch), the same bytes; a file cut short meanwhile is a
    one-line error."""
    from netcap.pipeline import _FilePayloads, in_file
    from netcap.reassembly.streams import SegmentBatch
    from netcap.sources.capture import CaptureError

    chunk = bytes(range(256)) * 40  # a chunk of the "file", at offset 1000
    path = tmp_path / "input"
    path.write_bytes(b"x" * 1000 + chunk)
    src, dst = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    spans = [(17, 5), (300, 1460), (9000, 240)]  # (offset in the chunk, size)
    rows = [(src, 4000, dst, 80, 1 + i, 0, chunk[a : a + n], 10 * i, i)
            for i, (a, n) in enumerate(spans)]
    rows.insert(2, (src, 4000, dst, 80, 9, 0, 700, 15, 2))  # a hidden body run: no bytes
    want = list(SegmentBatch.from_rows(rows).rows())
    # As segments(in_place=True) gives them: the chunk is the payload, `at` into it.
    in_place = SegmentBatch.from_rows(rows)
    in_place.payload = chunk
    in_place.at = np.array([17, 300, 0, 9000], np.int64)
    sent = in_file(in_place, 1000)
    assert sent is not None and sent.payload is None
    reader = _FilePayloads(str(path))
    assert reader.mapped is not None
    if not mapped:
        reader.mapped = None  # as for a file that cannot be mapped
    try:
        got = reader.land(sent)
        assert got is not None and list(got.rows()) == want
        assert got.payload is not None and len(got.payload) == 9240 - 17  # the span only
        assert len(reader.buf) == (0 if mapped else 9240 - 17)
        path.write_bytes(b"x" * 1000 + chunk[:5000])  # cut short under the reader
        again = SegmentBatch.from_rows(rows)
        again.payload, again.at = chunk, np.array([17, 300, 0, 9000], np.int64)
        with pytest.raises(CaptureError, match="changed while it was read"):
            reader.land(in_file(again, 1000))
    finally:
        reader.close()


@pytest.mark.parametrize("split", [True, False])
def test_a_file_cut_short_under_the_workers_is_an_input_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: bool) -> None:
    """A relay worker walks the input in its mapping of the file: reading a page past
    the end of a file cut short after it was mapped is a SIGBUS, which ends the worker.
    The run ends with the input's one-line error, not an internal error (with and
    without the stream process)."""
    import os

    import netcap.pipeline as pipeline
    from netcap.sources.capture import CaptureError

    _tiny_chunks(monkeypatch)
    path = tmp_path / "input.pcap"
    path.write_bytes((PCAPS / "zeek_wikipedia.pcap").read_bytes())
    walk = pipeline.walk_chunk

    def cut_then_walk(f: object, name: str, start: int, *rest: object) -> object:
        if start > 8_000:  # a few chunks in, the file is emptied under the mapping
            os.truncate(name, 0)
        return walk(f, name, start, *rest)  # type: ignore[arg-type]

    child_signals = pipeline.child_signals

    def quiet_helper(parent: int) -> None:  # pytest's faulthandler would print the
        child_signals(parent)  # dying helpers' stacks: expected here
        faulthandler.disable()

    monkeypatch.setattr(pipeline, "walk_chunk", cut_then_walk)
    monkeypatch.setattr(pipeline, "child_signals", quiet_helper)
    encode = EncodeOptions() if split else EncodeOptions(exclude=frozenset({"HTTP", "DNS",
                                                                            "TLSClientHello",
                                                                            "TLSServerHello",
                                                                            "SSH"}))
    with pytest.raises(CaptureError, match="input.pcap: the input file changed while it"):
        run_capture(CaptureOptions(read=str(path), out=str(tmp_path / "out"), workers=2,
                                   encode=encode))


def _chunk_msgs(chunk: int, end: bool = False) -> list[tuple[object, ...]]:
    """A relay worker's messages for one chunk of one batch: its results, then its end."""
    from netcap.pipeline import _BATCH, _CHUNK

    return [(_BATCH, chunk, {}, f"stats {chunk}", None, None, None), (_CHUNK, chunk, None, end)]


def test_chunks_taken_by_any_worker_come_back_in_input_order() -> None:
    """Whichever worker took a chunk (the shared turn), the results come out in chunk
    order; a worker's `_DONE` and then its pipe's end are not errors."""
    import threading

    from netcap.pipeline import _DONE, RunStats, _relayed
    from netcap.procs import pipe

    pipes = [pipe(), pipe()]
    taken = {0: [0, 3, 4], 1: [1, 2, 5]}  # worker 1 ran ahead, then worker 0 did
    for w, chunks in taken.items():
        for c in chunks:
            for msg in _chunk_msgs(c, end=c == 5):
                pipes[w][1].send(msg)
        pipes[w][1].send((_DONE,))
        pipes[w][1].close()
    got = [r[1] for r in _relayed([p[0] for p in pipes], RunStats(), threading.Event())]
    assert got == [f"stats {c}" for c in range(6)]


def test_a_worker_far_ahead_is_left_to_wait() -> None:
    """While the chunk due has not come, a worker's pipe is read for at most _AHEAD
    whole chunks: the rest stays in its pipe (the worker then waits on it), so one
    worker falling behind does not make the parent hold the other's whole output."""
    import fcntl
    import struct
    import termios
    import threading

    from netcap.pipeline import _AHEAD, RunStats, _relayed
    from netcap.procs import pipe

    slow, fast = pipe(), pipe()
    for c in range(1, 2 * _AHEAD + 2):
        for msg in _chunk_msgs(c):
            fast[1].send(msg)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    stats = RunStats()
    assert list(_relayed([slow[0], fast[0]], stats, stop)) == []  # chunk 0 never came
    assert stats.interrupted
    left = struct.unpack("i", fcntl.ioctl(fast[0].fd, termios.FIONREAD, b"\0" * 4))[0]
    assert left > 0  # chunks past _AHEAD are still in the pipe


def test_a_worker_gone_without_done_is_an_error_not_a_wait() -> None:
    """A worker whose pipe ends before its `_DONE` died (a signal), maybe holding the
    turn the others wait for: the parent raises at once instead of waiting for them."""
    import threading

    from netcap.pipeline import RunStats, WorkerError, _relayed
    from netcap.procs import pipe

    dead, alive = pipe(), pipe()
    for msg in _chunk_msgs(1):
        alive[1].send(msg)  # the live worker waits for a turn the dead one held
    dead[1].close()
    with pytest.raises(WorkerError, match="worker 0 exited without a result"):
        list(_relayed([dead[0], alive[0]], RunStats(), threading.Event()))
