"""What the application analyzers alone cost on the benchmark capture, replayed in
isolation: the CPU floor of `net export` with everything on, for any pure-Python pipeline
built on these parsers.

One in-process run (`net export -workers 1 -exit`) records every input the analyzers get
(each TLS and SSH direction's byte feeds, each HTTP connection's calls, each DNS/DHCP
datagram) and times the pipeline's stages. Then each analyzer's inputs are fed again to
fresh analyzer objects, with nothing else running, and timed with process CPU time. The
report sets that against the budget the 10x goal of issue 4 leaves: tshark's time / 10,
less what `net export` takes for counting alone (issue 3's scope), times the two cores.

    python bench/floor.py                      # the 1,000,000-packet bench capture
    python bench/floor.py --tshark 10.5 --counting 0.64   # seconds measured by run_bench.py

Never run from tests or CI: it takes a minute or two and ~2 GB of memory.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PCAP = ROOT / "bench" / "out" / "bench.pcap"

SEGMENT_LOOP = "segments: a minimal in-order loop"


class ObjectCalls:
    """The calls made on each object of one stateful analyzer class (a TLS or SSH
    direction, an HTTP connection), recorded in order, with what a fresh object of the
    same kind is made from (`ctor`, read off the object at its first call)."""

    def __init__(self, label: str, cls: type, methods: tuple[str, ...],
                 ctor: Callable[[Any], tuple[Any, ...]]) -> None:
        self.label = label
        self.cls = cls
        self.ctor = ctor
        self.originals: dict[str, Callable[..., Any]] = {m: getattr(cls, m) for m in methods}
        self.objects: dict[int, tuple[tuple[Any, ...], list[tuple[str, tuple[Any, ...]]]]] = {}
        self._keep: list[object] = []  # recorded objects stay alive: their ids stay unique

    def install(self) -> None:
        for name, orig in self.originals.items():
            setattr(self.cls, name, self._recording(name, orig))

    def _recording(self, name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(obj: Any, *args: Any) -> Any:
            entry = self.objects.get(id(obj))
            if entry is None:
                self._keep.append(obj)
                entry = self.objects[id(obj)] = (self.ctor(obj), [])
            entry[1].append((name, args))
            return orig(obj, *args)
        return wrapper

    @property
    def inputs(self) -> int:
        return sum(len(calls) for _, calls in self.objects.values())

    def replay(self) -> int:
        """The same calls on fresh objects, through the unwrapped methods; records made."""
        from netcap.decode.errors import DecodeError

        n = 0
        for ctor_args, calls in self.objects.values():
            obj = self.cls(*ctor_args)
            for name, args in calls:
                try:
                    n += len(self.originals[name](obj, *args))
                except DecodeError:  # the stage feeds a direction no more after one
                    break
        return n


class Recorder:
    """Wraps the analyzers' entry points to keep their inputs, and the pipeline's stages to
    add up their CPU time."""

    def __init__(self) -> None:
        from netcap.analyzers import http, ssh, tls

        self.objects = [
            ObjectCalls("TLS hellos (HelloReader.feed)", tls.HelloReader, ("feed",),
                        lambda r: ()),
            ObjectCalls("HTTP (HttpConnection calls)", http.HttpConnection,
                        ("client", "server", "gap", "close"), lambda c: (c.detail,)),
            ObjectCalls("SSH (SshReader.feed)", ssh.SshReader, ("feed",),
                        lambda r: (r.is_client,))]
        self.dns: list[bytes] = []
        self.dns_full: list[bytes] = []
        self.dhcp: list[bytes] = []
        self.segments: list[Any] = []  # the SegmentBatches the stream stage was given
        self.stage_cpu: dict[str, float] = defaultdict(float)

    def install(self) -> None:
        from netcap import pipeline
        from netcap.analyzers import datagrams
        from netcap.flows.table import ConnectionTable
        from netcap.metrics.state import MetricsState
        from netcap.reassembly import streams

        rec = self
        for calls in self.objects:
            calls.install()

        def recorded(store: list[bytes], fn: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
            def wrapper(msg: bytes) -> Any:
                store.append(msg)
                return fn(msg)
            return wrapper

        for mod, name, store in ((datagrams, "check_dns", self.dns),
                                 (datagrams, "parse_dns", self.dns_full),
                                 (streams, "parse_dns", self.dns_full),
                                 (datagrams, "parse_dhcp", self.dhcp)):
            setattr(mod, name, recorded(store, getattr(mod, name)))

        update = streams.StreamStage.update

        def update_rec(self: Any, segs: Any) -> Any:
            if isinstance(segs, streams.SegmentBatch):
                rec.segments.append(segs)
            return update(self, segs)

        streams.StreamStage.update = update_rec  # type: ignore[method-assign]

        for mod, name in ((pipeline, "decode_batch"), (pipeline, "summarize"),
                          (pipeline, "stream_segments"), (pipeline, "fragments"),
                          (pipeline, "encode_batch")):
            setattr(mod, name, self._timed(name, getattr(mod, name)))
        for cls, name in ((streams.StreamStage, "update"), (ConnectionTable, "update"),
                          (MetricsState, "add_batch"), (MetricsState, "add_connections"),
                          (MetricsState, "add_stream_output"), (MetricsState, "merge"),
                          (MetricsState, "delta")):
            setattr(cls, name, self._timed(f"{cls.__name__}.{name}", getattr(cls, name)))

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            t = time.process_time()
            try:
                return fn(*args, **kw)
            finally:
                self.stage_cpu[name] += time.process_time() - t
        return wrapper


def _best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """The least CPU time of `repeat` runs of fn (the machine is noisy), and its count."""
    best, n = float("inf"), 0
    for _ in range(repeat):
        t = time.process_time()
        n = fn()
        best = min(best, time.process_time() - t)
    return best, n


def replay(rec: Recorder, repeat: int) -> dict[str, tuple[float, int, int]]:
    """Each analyzer's inputs into fresh analyzers: {name: (cpu s, inputs, objects)}."""
    from netcap.analyzers import dhcp, dns
    from netcap.decode.errors import DecodeError

    def run_parser(parse: Callable[[bytes], Any], msgs: list[bytes]) -> Callable[[], int]:
        def run() -> int:
            for m in msgs:
                try:  # noqa: SIM105 (a `with suppress` per message would add to what is timed)
                    parse(m)
                except DecodeError:
                    pass
            return len(msgs)
        return run

    def run_segments() -> int:
        # The least any per-segment Python step does: take the segment from the batch,
        # find its direction, check it is the next in order, keep its bytes.
        n = 0
        dirs: dict[Any, list[Any]] = {}
        for batch in rec.segments:
            for src, sport, dst, dport, seq, _, payload, _, _ in batch.rows():
                d = dirs.get((src, sport, dst, dport))
                if d is None:
                    d = dirs[(src, sport, dst, dport)] = [seq, []]
                if d[0] == seq:
                    d[0] = seq + (payload if isinstance(payload, int) else len(payload))
                    d[1].append(payload)
                n += 1
        return n

    out: dict[str, tuple[float, int, int]] = {}
    for name, fn, inputs, objs in (
            (SEGMENT_LOOP, run_segments, sum(len(b) for b in rec.segments), 0),
            *((c.label, c.replay, c.inputs, len(c.objects)) for c in rec.objects),
            ("DNS datagrams (check_dns)", run_parser(dns.check_dns, rec.dns), len(rec.dns), 0),
            ("DNS over TCP / full (parse_dns)", run_parser(dns.parse_dns, rec.dns_full),
             len(rec.dns_full), 0),
            ("DHCPv4 (parse_dhcp)", run_parser(dhcp.parse_dhcp, rec.dhcp), len(rec.dhcp), 0)):
        if inputs:
            cpu, _ = _best(fn, repeat)
            out[name] = (cpu, inputs, objs)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pcap", nargs="?", type=Path, default=DEFAULT_PCAP)
    ap.add_argument("--tshark", type=float, default=10.5,
                    help="tshark -q -z io,phs seconds on this file (run_bench.py; default 10.5)")
    ap.add_argument("--counting", type=float, default=0.64,
                    help="net export seconds with issue 3's scope (run_bench.py --mode export"
                         " --net-args '-exclude ...'; default 0.64)")
    ap.add_argument("-r", "--repeat", type=int, default=3, help="replays per analyzer (best)")
    args = ap.parse_args()
    if not args.pcap.exists():
        sys.exit(f"{args.pcap}: missing (python bench/make_bench_pcap.py builds it)")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    from netcap.cli import main as net
    from netcap.cli import tune_gc

    tune_gc()  # as the `net` program does before main()
    rec = Recorder()
    rec.install()
    t0, c0 = time.perf_counter(), time.process_time()
    status = net(["export", "-read", str(args.pcap), "-workers", "1", "-exit", "-quiet",
                  "-address", "127.0.0.1:0"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if status != 0:
        return status
    print(f"in-process run (recording): {wall:.2f} s wall, {cpu:.2f} s CPU")
    print("\nstage CPU in that run (s, with the recording's own cost in it):")
    for name, s in sorted(rec.stage_cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {s:7.2f}  {name}")

    print(f"\nanalyzers replayed alone (best of {args.repeat}):")
    results = replay(rec, args.repeat)
    total: float = 0.0
    for name, (s, n, objs) in results.items():
        total += s
        per = f", {objs:,} objects" if objs else ""
        print(f"  {s:7.3f} s  {name}: {n:,} inputs{per}, {1e6 * s / n:.1f} µs each")
    print(f"  {total:7.3f} s  in all")

    budget_wall = args.tshark / 10 - args.counting
    budget = 2 * budget_wall
    print(f"\n10x budget: {args.tshark:.2f} s / 10 = {args.tshark / 10:.3f} s wall; less "
          f"{args.counting:.2f} s for counting alone leaves {budget_wall:.3f} s, "
          f"{budget:.3f} s of CPU on 2 cores for everything issue 4 adds.")
    parsing = total - results.get(SEGMENT_LOOP, (0.0, 0, 0))[0]
    print(f"The analyzers' parsing alone takes {parsing:.3f} s of it "
          f"({100 * parsing / budget:.0f}%); with a minimal segment loop {total:.3f} s "
          f"({100 * total / budget:.0f}%), before real reassembly, connections, segment "
          f"picking, records and moving data between processes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
