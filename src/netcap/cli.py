"""The `net` command line (also installed as `netcap`).

Flags keep the Go Netcap's single-dash spelling (`-read FILE`, `-out DIR`,
`-compress=false`), so its documentation works as written; `--read`, `-read=FILE` and
`--read=FILE` are accepted too. Unlike stock argparse, a flag must be spelled in full
(Go's flag package has no abbreviations), and boolean flags take an optional `=value`
(`-json`, `-json=true`, `-compress=false`) but never a separate argument.

Exit status: 0 done; 1 done, but the input was cut short or damaged (everything before
the damage was processed); 2 bad usage or unusable input. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, NoReturn

from . import __version__

__all__ = ["main"]

# numpy's OpenBLAS starts a thread per core at import, which spins for a while: ~60 ms
# of CPU taken from the decoding workers on a 2-core machine, for linear algebra that
# netcap never does. Set before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_TRUE = {"1", "t", "true", "yes", "on"}
_FALSE = {"0", "f", "false", "no", "off"}


class _HelpFormatter(argparse.HelpFormatter):
    """Help in the Go spelling: each flag once (`-read FILE`; `--read` works but is not
    listed), and a boolean that is on by default as the way to turn it off
    (`-compress=false`), since `-compress` alone changes nothing."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:  # argparse's width, without its `import shutil` (~2 ms of
            # every run: a parser makes a formatter for each argument it adds)
            columns = os.environ.get("COLUMNS", "")
            width = int(columns) if columns.isdigit() else 0
            if width == 0 and sys.__stdout__ is not None:
                with suppress(ValueError, OSError):  # not a terminal
                    width = os.get_terminal_size(sys.__stdout__.fileno()).columns
            width = (width or 80) - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        flag = action.option_strings[0]
        if action.nargs == 0:
            return f"{flag}=false" if action.default is True else flag
        return f"{flag} {self._format_args(action, action.dest.upper())}"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self._bool_flags: set[str] = set()

    def bool_flag(self, name: str, help: str, default: bool = False,
                  group: Any = None) -> None:
        """A boolean flag, in `group` (an argument group of this parser) if given. For one
        that is on by default, `help` says what `-name=false` does."""
        (group or self).add_argument(f"-{name}", f"--{name}", dest=name, action="store_true",
                                     default=default, help=help)
        self._bool_flags.add(name)

    def _get_option_tuples(self, option_string: str) -> list[Any]:
        return []  # no prefix matching: `-rea` is not `-read` (CPython #104860)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: Any = None) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        explicit: dict[str, bool] = {}
        rest: list[str] = []
        for a in argv:
            name, eq, value = a.lstrip("-").partition("=")
            if a.startswith("-") and eq and name in self._bool_flags:
                word = value.lower()
                if word not in _TRUE | _FALSE:
                    self.error(f"invalid boolean value {value!r} for flag -{name}")
                explicit[name] = word in _TRUE
                continue
            rest.append(a)
        ns: argparse.Namespace = super().parse_args(rest, namespace)
        for name, flag in explicit.items():
            setattr(ns, name, flag)
        return ns

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


_FLAG_SPELLING = ("Flags are spelled as in Go's flag package: -flag, -flag=value,"
                  " -flag=false for a boolean; --flag works too; never abbreviated.")


def _split_types(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    from .records.types import RECORDS

    names = frozenset(v.strip() for v in value.split(",") if v.strip())
    unknown = sorted(names - set(RECORDS))
    if unknown:
        raise ValueError(f"unknown record type(s): {', '.join(unknown)}")
    return names


def _flow_flags(g: Any) -> None:
    g.add_argument("-max-flows", "--max-flows", metavar="N", type=int, default=100_000,
                   help="connections tracked at once; past it the least recently seen end"
                        " early and are counted as evicted (default 100000)")


def _live_flags(p: _Parser, g_in: Any) -> None:
    """The live-capture group; -bpf goes with the inputs (g_in), as it filters files too."""
    g_in.add_argument("-bpf", "--bpf", metavar="EXPR",
                      help="only packets matching this tcpdump-syntax filter (live and files)")
    g = p.add_argument_group("live capture (root, or CAP_NET_RAW and CAP_NET_ADMIN)")
    g.add_argument("-iface", "--iface", metavar="IF",
                   help="capture live from this interface instead of files (see -interfaces)")
    p.bool_flag("interfaces", "list the network interfaces and exit", group=g)
    p.bool_flag("promisc", "do not put the interface in promiscuous mode (default: do)",
                default=True, group=g)
    g.add_argument("-snaplen", "--snaplen", metavar="N", type=int, default=1514,
                   help="bytes kept of each packet (default 1514)")
    g.add_argument("-flush-interval", "--flush-interval", metavar="DURATION", default="5s",
                   help="write audit-record files out this often (default 5s)")


def _live_checks(p: _Parser, a: argparse.Namespace, inputs: list[str]) -> float:
    """Flag combinations of live capture; returns the flush interval in seconds."""
    if a.iface is not None and inputs:
        p.error("-iface and file inputs exclude each other")
    if not 1 <= a.snaplen <= 262144:
        p.error("-snaplen must be between 1 and 262144")
    flush_ns = _duration_ns(a.flush_interval)
    if not flush_ns or flush_ns <= 0:
        p.error(f"bad -flush-interval {a.flush_interval!r}: want a duration such as 5s")
    if a.bpf is not None:
        from .sources.live import LiveError, check_bpf

        try:
            check_bpf(a.bpf)
        except LiveError as e:
            print(f"{p.prog}: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    return flush_ns / 1e9


def _print_interfaces() -> int:
    from .sources.live import list_interfaces

    rows = [(str(i.index), i.name, ",".join(i.flags) or "-", i.mac or "-", str(i.mtu),
             " ".join(i.addresses) or "-") for i in list_interfaces()]
    head = ("INDEX", "NAME", "FLAGS", "MAC", "MTU", "ADDRESSES")
    widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head) - 1)]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return 0


def _stop_on_signals() -> Any:
    """An event set by SIGINT or SIGTERM, in every mode: a run checks it between
    batches (and while replay waits), stops reading, finishes its stages and closes
    its files, so every output is complete up to its last whole record. Its worker
    processes ignore SIGINT (a terminal sends it to the whole group) and are stopped
    by the parent (see procs.py). `stop.signal` names the signal."""
    import signal
    import threading

    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        stop.signal = signal.Signals(signum).name  # type: ignore[attr-defined]
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stop


def _signal_name(stop: Any) -> str:
    return str(getattr(stop, "signal", "a signal"))


def _check_outputs(out: str | None, backfill: str | None = None) -> None:
    """-out (made if missing) and -backfill must take files: checked before any work
    (raises OSError naming the path)."""
    from .sinks.files import check_dir, check_file

    if out is not None:
        check_dir(out)
    if backfill is not None:
        check_file(backfill)


def _live_options(a: argparse.Namespace, encode: Any, flush: float,
                  labels: Any = None) -> Any:
    from .live import LiveOptions

    return LiveOptions(iface=a.iface, out=a.out, encode=encode, snaplen=a.snaplen,
                       promisc=a.promisc, bpf=a.bpf, flush_seconds=flush,
                       max_flows=a.max_flows, labels=labels)


def _live_failed(prog: str, e: Exception, out: str | None) -> int:
    """The one line for a live capture that cannot start or go on: a LiveError says
    itself; an OSError is the audit-record directory (-out). Exit status 2."""
    if isinstance(e, OSError):
        print(f"{prog}: {e.filename or out}: {e.strerror or e}", file=sys.stderr)
    else:
        print(f"{prog}: {e}", file=sys.stderr)
    return 2


def _selection(p: _Parser, a: argparse.Namespace
               ) -> tuple[frozenset[str] | None, frozenset[str]]:
    """-include/-exclude as record-type sets, and -max-flows checked (capture, export)."""
    if a.max_flows < 1:
        p.error("-max-flows must be at least 1")
    try:
        return _split_types(a.include), _split_types(a.exclude) or frozenset()
    except ValueError as e:
        p.error(str(e))


def _capture(argv: Sequence[str]) -> int:
    p = _Parser(prog="net capture", usage="net capture -read FILE | -iface IF [flags]",
                description="Decode a capture file, or live traffic (-iface), into audit-record"
                            " files, one per type.",
                epilog=_FLAG_SPELLING)
    g_in = p.add_argument_group("input")
    g_in.add_argument("-read", "--read", metavar="FILE",
                      help="pcap or pcapng file (gzip-compressed too)")
    g_in.add_argument("-include", "--include", metavar="TYPES",
                      help="comma-separated record types to write (default all)")
    g_in.add_argument("-exclude", "--exclude", metavar="TYPES",
                      help="comma-separated record types not to write")
    g_in.add_argument("-workers", "--workers", metavar="N", type=int, default=0,
                      help="decoding processes (default: one per CPU for inputs of 16 MiB"
                           " or more; 1 = no extra processes; with more, one more runs the"
                           " stream analyzers)")
    _flow_flags(g_in)
    _live_flags(p, g_in)
    g_out = p.add_argument_group("output")
    g_out.add_argument("-out", "--out", metavar="DIR", default=".",
                       help="directory for the <Type>.ncap.gz files (default .)")
    p.bool_flag("compress", "write uncompressed <Type>.ncap files (default: gzip)",
                default=True, group=g_out)
    p.bool_flag("payload", "include payload bytes in TCP and UDP records", group=g_out)
    p.bool_flag("entropy", "compute payload entropy for Ethernet, IP, TCP and UDP records",
                group=g_out)
    p.bool_flag("quiet", "print no summary", group=g_out)
    a = p.parse_args(argv)
    if a.interfaces:
        return _print_interfaces()
    if a.workers < 0:
        p.error("-workers must be 0 or more")
    if (a.read is None) == (a.iface is None):
        p.error("give one input: -read FILE or -iface IF")
    flush = _live_checks(p, a, [a.read] if a.read else [])
    include, exclude = _selection(p, a)

    from .pipeline import CaptureOptions, WorkerError, run_capture
    from .sinks.options import EncodeOptions
    from .sources.capture import CaptureError

    encode = EncodeOptions(compress=a.compress, payload=a.payload, entropy=a.entropy,
                           include=include, exclude=exclude)
    if a.iface is not None:
        return _capture_live(a, encode, flush)
    try:
        _check_outputs(a.out)
    except OSError as e:
        print(f"net capture: {e.filename or a.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    try:
        stats = run_capture(CaptureOptions(
            read=a.read, out=a.out, workers=a.workers, max_flows=a.max_flows,
            encode=encode, bpf=a.bpf,
        ), stop=stop)
    except CaptureError as e:
        print(f"net capture: {e}", file=sys.stderr)
        return 2
    except WorkerError as e:  # a bug or a killed worker: say so in one line
        print(f"net capture: internal error: {str(e).splitlines()[0]}"
              " (run with -workers 1 to see more)", file=sys.stderr)
        return 3
    except OSError as e:
        print(f"net capture: {e.filename or a.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    if not a.quiet:
        _summary(stats, a.out)
    if stats.truncation is not None:
        t = stats.truncation
        print(f"net capture: warning: {t.path}: {t.reason} at byte {t.offset};"
              f" {stats.packets} complete packets before it were decoded", file=sys.stderr)
        return 1
    if stats.interrupted:
        print(f"net capture: warning: interrupted by {_signal_name(stop)}; the"
              f" {stats.packets} packets before it were decoded", file=sys.stderr)
        return 1
    return 0


def _capture_live(a: argparse.Namespace, encode: Any, flush: float) -> int:
    from .live import open_live, run_live
    from .sources.live import LiveError

    opts = _live_options(a, encode, flush)
    try:
        src = open_live(opts)
    except (LiveError, OSError) as e:
        return _live_failed("net capture", e, a.out)
    stop = _stop_on_signals()
    if not a.quiet:
        print(f"net capture: capturing on {a.iface} into {a.out} (Ctrl-C to stop)",
              file=sys.stderr, flush=True)
    try:
        stats = run_live(src, opts, None, stop)
    except (LiveError, OSError) as e:
        return _live_failed("net capture", e, a.out)
    if not a.quiet:
        _summary(stats, a.out)
    return 0


def _summary(stats: Any, out: str) -> None:
    rate = stats.packets / stats.seconds if stats.seconds > 0 else 0.0
    lines = [f"{stats.packets} packets ({stats.bytes} bytes) in {stats.seconds:.2f}s"
             f" ({rate:,.0f} packets/s); link types: "
             + (", ".join(f"{k} {v}" for k, v in sorted(stats.linktypes.items())) or "none")]
    if stats.records:
        lines.append(f"audit records written to {out}:")
        width = max(len(k) for k in stats.records)
        lines += [f"  {k.ljust(width)}  {v}" for k, v in stats.records.items()]
    else:
        lines.append("no audit records")
    if stats.errors:
        lines.append("decode errors: " + ", ".join(
            f"{k} {v}" for k, v in sorted(stats.errors.items())))
    print("\n".join(lines), file=sys.stderr)


def _dump(argv: Sequence[str]) -> int:
    p = _Parser(prog="net dump", usage="net dump -read FILE [flags]",
                description="Print the records of an audit-record file (a table by default).",
                epilog=_FLAG_SPELLING)
    g_in = p.add_argument_group("input")
    g_in.add_argument("-read", "--read", metavar="FILE", required=True,
                      help="audit-record file (.ncap or .ncap.gz)")
    g_out = p.add_argument_group("output")
    p.bool_flag("json", "one JSON object per line", group=g_out)
    p.bool_flag("csv", "CSV with a header line", group=g_out)
    p.bool_flag("header", "print the file header to stderr first", group=g_out)
    a = p.parse_args(argv)
    if a.json and a.csv:
        p.error("-json and -csv are exclusive")

    from .records.types import RECORDS
    from .sinks.text import write_csv, write_json, write_table
    from .sources.ncap import NcapError, NcapReader

    try:
        reader = NcapReader(a.read)
    except NcapError as e:
        print(f"net dump: {e}", file=sys.stderr)
        return 2
    with reader:
        h = reader.header
        if a.header:
            print(f"# {reader.record_type} records; source {h.InputSource}; netcap {h.Version};"
                  f" payloads {'yes' if h.ContainsPayloads else 'no'}", file=sys.stderr)
        rtype = RECORDS[reader.record_type]
        write = write_json if a.json else write_csv if a.csv else write_table
        try:
            write(rtype, reader, sys.stdout)
        except NcapError as e:
            sys.stdout.flush()
            print(f"net dump: {e}", file=sys.stderr)
            return 1
        if reader.skipped or reader.empty:  # not real records: passed over, not printed
            sys.stdout.flush()
            what = [f"{n} {why}" for n, why in ((reader.skipped, "over the size limit"),
                                                 (reader.empty, "empty")) if n]
            print(f"net dump: {a.read}: record(s) skipped: {', '.join(what)}",
                  file=sys.stderr)
            return 1
    return 0


_UNITS_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _duration_ns(text: str) -> int | None:
    """'15s', '1m', '500ms', '2h' or plain seconds -> nanoseconds (None if not one)."""
    for unit in sorted(_UNITS_NS, key=len, reverse=True):
        if text.endswith(unit):
            number = text[: -len(unit)]
            break
    else:
        unit, number = "s", text
    try:
        return int(float(number) * _UNITS_NS[unit])
    except ValueError:
        return None


def _label_config(specs: list[str], budget: int, expiry: str | None) -> Any:
    from .metrics.families import FAMILIES
    from .metrics.state import LabelConfig

    extra: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        name, eq, labels = spec.partition("=")
        name = name.strip().removesuffix("_total")
        name = name if name.startswith("nc_") else "nc_" + name
        fam = FAMILIES.get(name)
        if fam is None or not fam.optional:
            raise ValueError(f"-labels: {name} has no optional labels (see docs/metrics.md)")
        wanted = tuple(x.strip() for x in labels.split(",") if x.strip())
        bad = [x for x in wanted if x not in fam.optional]
        if not eq or not wanted or bad:
            raise ValueError(f"-labels {spec!r}: choose from {', '.join(fam.optional)}")
        extra[name] = tuple(x for x in fam.optional if x in wanted)  # declared order
    if budget < 1:
        raise ValueError("-series-budget must be at least 1")
    expiry_ns = _duration_ns(expiry) if expiry else None
    if expiry is not None and not expiry_ns:
        raise ValueError(f"bad -label-expiry {expiry!r}")
    return LabelConfig(extra, budget, expiry_ns / 1e9 if expiry_ns else None)


def _export(argv: Sequence[str]) -> int:
    p = _Parser(prog="net export", usage="net export [flags] [DIR|FILE ...]",
                description="Serve Prometheus metrics about captures, live traffic (-iface)"
                            " and audit records. It serves /metrics until Ctrl-C (SIGINT) or"
                            " SIGTERM, also after the input is done (nc_input_done turns 1);"
                            " with -exit it stops once the input is processed.",
                epilog=_FLAG_SPELLING)
    g_in = p.add_argument_group("input")
    g_in.add_argument("-read", "--read", metavar="FILE", action="append", default=[],
                      help="pcap/pcapng capture (gzip too) or audit-record file; repeatable")
    g_in.add_argument("-dir", "--dir", metavar="DIR", action="append", default=[],
                      help="directory of audit-record files (.ncap, .ncap.gz)")
    g_in.add_argument("paths", nargs="*", metavar="DIR|FILE",
                      help="more inputs, e.g. `net export .` for the audit records here")
    g_in.add_argument("-include", "--include", metavar="TYPES",
                      help="comma-separated record types to count (and write with -out);"
                           " default all")
    g_in.add_argument("-exclude", "--exclude", metavar="TYPES",
                      help="comma-separated record types not to count or write (e.g."
                           " Connection,DNS: their stages are skipped too)")
    g_in.add_argument("-workers", "--workers", metavar="N", type=int, default=0,
                      help="decoding processes, as for capture (default: one per CPU for"
                           " captures of 16 MiB or more; with more than 1, one more runs the"
                           " stream analyzers)")
    _flow_flags(g_in)
    _live_flags(p, g_in)
    g_out = p.add_argument_group("output")
    g_out.add_argument("-out", "--out", metavar="DIR", help="also write audit-record files here")
    p.bool_flag("quiet", "print no summary", group=g_out)
    g_metrics = p.add_argument_group("metrics")
    g_metrics.add_argument("-address", "--address", metavar="HOST:PORT",
                           default="127.0.0.1:7777",
                           help="where to serve /metrics (default 127.0.0.1:7777; :7777 is"
                                " every interface, [::1]:7777 an IPv6 address)")
    g_metrics.add_argument("-web-config", "--web-config", metavar="FILE",
                           help="TLS and basic auth for the endpoint, in the Prometheus"
                                " exporter-toolkit web-config format (see README)")
    p.bool_flag("exit", "exit once the input is processed instead of serving until Ctrl-C",
                group=g_metrics)
    g_metrics.add_argument("-labels", "--labels", metavar="FAMILY=LABEL,...", action="append",
                           default=[], help="turn on high-cardinality labels for a metric"
                           " family, e.g. nc_tcp_segments=src_ip,dst_port (see"
                           " docs/metrics.md); repeatable")
    g_metrics.add_argument("-series-budget", "--series-budget", metavar="N", type=int,
                           default=1000, help="series per metric family; past it new label"
                           " values become `other` (default 1000)")
    g_metrics.add_argument("-label-expiry", "--label-expiry", metavar="DURATION",
                           help="forget series with opt-in labels not updated for this long")
    p.bool_flag("entropy", "payload entropy histograms (and PayloadEntropy in written"
                " records)", group=g_metrics)
    g_time = p.add_argument_group(
        "replay and backfill (file inputs)",
        "A file is exported as fast as it decodes, so Prometheus scrapes only its totals and"
        " rate panels stay empty: replay it at packet pace, or backfill it at packet time.")
    p.bool_flag("replay", "pace captures by their packet timestamps (see -speed)",
                group=g_time)
    g_time.add_argument("-speed", "--speed", metavar="F", type=float, default=1.0,
                        help="replay speed: 1.0 real time, 10 ten times faster (default 1.0)")
    g_time.add_argument("-backfill", "--backfill", metavar="OUT.om",
                        help="also write the metrics at packet time as OpenMetrics, for"
                             " `promtool tsdb create-blocks-from openmetrics`")
    g_time.add_argument("-step", "--step", metavar="DURATION", default="15s",
                        help="packet-time interval between backfill samples (default 15s)")
    a = p.parse_args(argv)
    if a.interfaces:
        return _print_interfaces()
    inputs_given = [*a.read, *a.dir, *a.paths]
    flush = _live_checks(p, a, inputs_given)
    if a.iface is not None and (a.replay or a.backfill or a.exit):
        p.error("-replay, -backfill and -exit apply to file inputs, not -iface")
    if not a.speed > 0:
        p.error("-speed must be above 0")
    include, exclude = _selection(p, a)
    try:
        labels = _label_config(a.labels, a.series_budget, a.label_expiry)
    except ValueError as e:
        p.error(str(e))
    step_ns = _duration_ns(a.step)
    if step_ns is None or step_ns <= 0:
        p.error(f"bad -step {a.step!r}: want a duration such as 15s, 1m or 500ms")
    if not inputs_given and a.iface is None:
        p.error("no input: give -read FILE, -dir DIR, a directory or -iface IF")
    from .exporter.server import Exporter, parse_address

    try:
        host, port = parse_address(a.address)
    except ValueError as e:
        p.error(str(e))
    web = None
    if a.web_config is not None:  # yaml, ssl and bcrypt: loaded only for a web config
        from .exporter.webconfig import WebConfigError, load_web_config

        try:
            web = load_web_config(a.web_config)
        except WebConfigError as e:
            print(f"net export: -web-config {e}", file=sys.stderr)
            return 2

    from .export import ExportError, ExportOptions, expand_inputs, run_export
    from .metrics.collector import Exposition
    from .metrics.state import MetricsState
    from .procs import WorkerError
    from .sinks.options import EncodeOptions

    encode = EncodeOptions(entropy=a.entropy, include=include, exclude=exclude)
    live: Any = None
    if a.iface is not None:  # opened first: a bad interface is the one error to show
        from .live import open_live
        from .sources.live import LiveError

        live_opts = _live_options(a, encode, flush, labels)
        try:
            live = open_live(live_opts)
        except (LiveError, OSError) as e:
            return _live_failed("net export", e, a.out)
    else:
        try:
            inputs = expand_inputs(inputs_given)
        except ExportError as e:
            print(f"net export: {e}", file=sys.stderr)
            return 2
        from .sources.ncap import is_ncap

        if a.bpf is not None and all(is_ncap(x) for x in inputs):
            p.error("-bpf filters packets: it applies to captures and -iface, not to"
                    " audit-record files")
    try:  # outputs checked before any work (a bad one fails now, not at the end)
        _check_outputs(a.out, a.backfill)
    except OSError as e:
        print(f"net export: {e.filename or a.out}: {e.strerror or e}", file=sys.stderr)
        if live is not None:
            live.close()
        return 2
    stop = _stop_on_signals()  # before the work, so a signal during it is seen
    state = MetricsState(labels)
    try:
        server = Exporter(Exposition(state), host, port, web)
    except (OSError, UnicodeError) as e:  # UnicodeError: a host name IDNA refuses (a..b)
        print(f"net export: cannot serve on {a.address}: "
              f"{getattr(e, 'strerror', None) or e}", file=sys.stderr)
        if live is not None:
            live.close()
        return 2
    warning = server.warning()
    if warning is not None:
        print(f"net export: warning: {warning}", file=sys.stderr)
    server.start()
    if live is not None:
        return _export_live(live, live_opts, state, stop, server, a.quiet)
    try:
        backfill = None
        if a.backfill:
            from .sinks.backfill import Backfill

            backfill = Backfill(a.backfill, step_ns)
        result = run_export(ExportOptions(inputs=tuple(inputs), out=a.out, encode=encode,
                                          max_flows=a.max_flows,
                                          workers=max(a.workers, 0), backfill=backfill,
                                          replay_speed=a.speed if a.replay else None,
                                          bpf=a.bpf),
                            state, stop)
    except ExportError as e:
        print(f"net export: {e}", file=sys.stderr)
        server.stop()
        return 2
    except OSError as e:  # an output that failed after the checks (a full disk)
        print(f"net export: {e.filename or a.out}: {e.strerror or e}", file=sys.stderr)
        server.stop()
        return 2
    except WorkerError as e:  # a bug or a killed process: say so in one line
        print(f"net export: internal error: {str(e).splitlines()[0]}"
              " (run with -workers 1 to see more)", file=sys.stderr)
        server.stop()
        return 3
    for note in result.truncated:
        print(f"net export: warning: {note}", file=sys.stderr)
    if result.interrupted:
        print(f"net export: warning: interrupted by {_signal_name(stop)}; outputs hold"
              " what was processed before it", file=sys.stderr)
    serving = not a.exit and not stop.is_set()
    if not a.quiet:
        where = f"; metrics on {server.url}" if serving else ""
        print(f"net export: {result.files} input(s), {result.packets} packets,"
              f" {result.records} audit records in {result.seconds:.2f}s{where}",
              file=sys.stderr)
    if serving:
        stop.wait()
    server.stop()
    return 1 if result.truncated or result.interrupted else 0


def _export_live(src: Any, opts: Any, state: Any, stop: Any, server: Any, quiet: bool
                 ) -> int:
    from .live import run_live
    from .sources.live import LiveError

    if not quiet:
        print(f"net export: capturing on {opts.iface}; metrics on"
              f" {server.url} (Ctrl-C to stop)", file=sys.stderr,
              flush=True)
    try:
        stats = run_live(src, opts, state, stop)
    except (LiveError, OSError) as e:
        return _live_failed("net export", e, opts.out)
    finally:
        server.stop()
    if not quiet:
        print(f"net export: {opts.iface}: {stats.packets} packets", file=sys.stderr)
    return 0


_COMMANDS = {
    "capture": (_capture, "decode a capture file or live traffic into audit-record files"),
    "dump": (_dump, "print an audit-record file as a table, JSON or CSV"),
    "export": (_export, "serve Prometheus metrics about captures and audit records"),
}


def _usage() -> str:
    cmds = "\n".join(f"  {k:8s} {v[1]}" for k, v in _COMMANDS.items())
    return (f"usage: net <command> [flags]   (netcap {__version__})\n\ncommands:\n{cmds}\n\n"
            "run 'net <command> -h' for the flags of a command\n")


def tune_gc() -> None:
    """Run the cycle collector less often: a setting of the `net` process, made in `run`
    (not in `main`, which tests call in their own process). The stream stage allocates a
    few objects per segment (chunks, record dicts) and holds thousands of streams. With
    the default threshold (a young collection every 700 allocations) the collector took ~8%
    of `net export` with every analyzer on the bench capture; with 50,000 the parent still
    made three young collections on the 1M bench, of 65-180 ms each, collecting 0-563
    objects. With 1,000,000 it makes none there (its live objects grow by less), and a
    long live capture still collects cycles, later. Objects alive now (modules, tables)
    are frozen out of the collections."""
    gc.freeze()
    gc.set_threshold(1_000_000, 20, 20)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0 if args else 2
    if args[0] in ("-version", "--version", "version"):
        print(f"netcap {__version__}")
        return 0
    cmd = _COMMANDS.get(args[0])
    if cmd is None:
        print(f"net: unknown command {args[0]!r} (commands: {', '.join(_COMMANDS)})",
              file=sys.stderr)
        return 2
    try:
        return cmd[0](args[1:])
    except KeyboardInterrupt:
        print("net: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `net dump ... | head`: the reader went away; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug: bad input is reported where it is met. One line
        # (where it was raised), and the documented status for an internal error.
        tb = e.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = (f" at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
                 if tb is not None else "")
        first = str(e).splitlines()[0] if str(e) else ""
        print(f"net {args[0]}: internal error: {type(e).__name__}: {first}{where}",
              file=sys.stderr)
        return 3


def run() -> None:
    """The `net` program: main(), then a quick exit.

    Python's own shutdown frees every module and array one by one and waits for the
    HTTP thread: measured 45-60 ms after a 1M-packet export, 5-10% of the whole run. By
    now every output file is closed, worker processes are joined and the summary is
    printed, so after flushing stdout/stderr nothing is left to clean up."""
    tune_gc()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `net dump ... | head`: the reader went away
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
