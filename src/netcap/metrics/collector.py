"""The body of `/metrics`: netcap's families rendered from a `MetricsState` snapshot,
after the Python process, platform and GC metrics (client_python's collectors and
encoders).

Rendering netcap's families through client_python's metric objects cost 15-25 µs a
series (an object per sample, a label dict sorted and escaped every time): with opt-in
labels (tens of thousands of series, a 7 MB body) one render took about a second, so
serving stole a third of the decoder's time. Here every series keeps its rendered
line(s) with the value they show: a render formats again only the series whose value
changed, and reuses a family's whole text when none did. The lines are byte for byte
what client_python writes, in the text format and in OpenMetrics, which differ only in
the HELP/TYPE lines (tests/test_endpoint.py compares both with client_python's output).
Series appear in the order they were first counted (Prometheus needs no order within a
family; sorting tens of thousands of label tuples at every render would cost more than
the render).

client_python is imported at the first render, not with this module: its package
brings `urllib.request`, `http.client`, `ssl`, `hashlib` and `email` along (about 30 ms
at start), which a run that nobody scrapes never needs.
"""

from __future__ import annotations

import operator
import platform
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from .families import FAMILIES, Family, Kind
from .state import Histogram, MetricsState

__all__ = ["Exposition", "float_text", "label_text"]

Labels = tuple[str, ...]

OPENMETRICS = "application/openmetrics-text"


_go_float: Callable[[float], str] | None = None  # client_python's, once loaded


def float_text(v: float) -> str:
    """A sample value or a bucket bound as client_python writes it: the shortest repr
    that reads back exactly, in Go's exponent style (1048576 -> 1.048576e+06)."""
    global _go_float
    if _go_float is None:
        from prometheus_client.utils import floatToGoString

        _go_float = floatToGoString
    return str(_go_float(v))


def _escape(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def label_text(pairs: list[tuple[str, str]]) -> str:
    """`{a="x",b="y"}` with label names sorted and values escaped, as client_python
    writes them ("" without labels)."""
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(pairs)) + "}"


def _headers(fam: Family) -> tuple[str, str]:
    """The HELP and TYPE lines: (text format, OpenMetrics)."""
    text_doc = fam.doc.replace("\\", r"\\").replace("\n", r"\n")
    om_doc = _escape(fam.doc)
    if fam.kind is Kind.INFO:
        text_name, text_type, om_type = fam.name + "_info", "gauge", "info"
    else:
        text_name, text_type, om_type = fam.exposed, fam.kind.value, fam.kind.value
    return (f"# HELP {text_name} {text_doc}\n# TYPE {text_name} {text_type}\n",
            f"# HELP {fam.name} {om_doc}\n# TYPE {fam.name} {om_type}\n")


# Series per chunk: a family is compared and re-rendered chunk by chunk.
_CHUNK = 256


@dataclass
class _Chunk:
    """Consecutive series of a family as last rendered: labels, values, line(s), text."""

    keys: list[Labels]
    values: list[Any]
    lines: list[str]
    text: str


@dataclass
class _Family:
    """A family as last rendered."""

    values: dict[Labels, Any] = field(default_factory=dict)
    chunks: list[_Chunk] = field(default_factory=list)
    text: str = ""


_NEEDS_ESCAPE = re.compile(r'[\\\n"]')


class _LabelSet:
    """One family's `{...}` for a series: the names sorted once, a %-template with the
    values in that order, escaping only when a value needs it (addresses and closed-set
    values never do), so a new series costs about a microsecond, not ten."""

    def __init__(self, names: Labels) -> None:
        order = sorted(range(len(names)), key=names.__getitem__)
        self.template = ("{" + ",".join(f'{names[i]}="%s"' for i in order) + "}"
                         if names else "")
        self.pick = operator.itemgetter(*order) if len(order) > 1 else None
        self.first = order[0] if len(order) == 1 else None

    def text(self, labels: Labels) -> str:
        if self.first is not None:
            return self.template % _escape(labels[self.first])
        if self.pick is None:
            return ""
        if _NEEDS_ESCAPE.search("".join(labels)):
            labels = tuple(map(_escape, labels))
        return str(self.template % self.pick(labels))


class Exposition:
    """Renders the whole body; safe to call from several threads (one render at a time).

    `lines_formatted` counts series formatted since the start: what a render cost,
    which tests count instead of timing it."""

    def __init__(self, state: MetricsState) -> None:
        self.state = state
        self._process: Any = None  # client_python's registry of the process metrics
        self.lines_formatted = 0
        self._lock = threading.Lock()
        self._done: dict[str, _Family] = {}
        self._headers = {f.name: _headers(f) for f in FAMILIES.values()}
        self._label_names = {f.name: state.config.labels_of(f.name) for f in FAMILIES.values()}
        self._label_sets = {name: _LabelSet(names) for name, names in self._label_names.items()}
        build = label_text([("version", __version__), ("python", platform.python_version())])
        self._build = f"nc_build_info{build} 1.0\n"

    @property
    def process(self) -> Any:
        """The Python process, platform and GC metrics (client_python's collectors in a
        registry of their own), made at first use."""
        with self._lock:
            if self._process is None:
                from prometheus_client import (
                    CollectorRegistry,
                    GCCollector,
                    PlatformCollector,
                    ProcessCollector,
                )

                registry = CollectorRegistry(auto_describe=False)
                ProcessCollector(registry=registry)
                PlatformCollector(registry=registry)
                GCCollector(registry=registry)
                self._process = registry
            return self._process

    @staticmethod
    def content_type(accept: str) -> str:
        """The format a request's Accept header gets (client_python's choice)."""
        from prometheus_client.exposition import choose_encoder

        return str(choose_encoder(accept)[1])

    def render(self, accept: str) -> tuple[bytes, str]:
        """The body for a request's Accept header, and its content type."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        om = content_type.startswith(OPENMETRICS)
        head = encoder(self.process)
        if om:
            head = head.removesuffix(b"# EOF\n")
        body = self.netcap_text(om).encode()
        return head + body + (b"# EOF\n" if om else b""), content_type

    def netcap_text(self, openmetrics: bool = False) -> str:
        """netcap's families, re-rendering only what changed since the last call."""
        with self._lock:
            snap = self.state.snapshot()
            store: dict[Kind, dict[str, dict[Labels, Any]]] = {
                Kind.COUNTER: snap.counters, Kind.GAUGE: snap.gauges,
                Kind.HISTOGRAM: snap.histograms}
            out: list[str] = []
            for fam in FAMILIES.values():
                out.append(self._headers[fam.name][openmetrics])
                if fam.kind is Kind.INFO:
                    out.append(self._build)
                    continue
                out.append(self._family(fam, store[fam.kind].get(fam.name, {})))
            return "".join(out)

    def _family(self, fam: Family, values: dict[Labels, Any]) -> str:
        """A family's samples. Series keep the order they were first counted in, so
        a family that grew has its old chunks unchanged (compared in C, list to list),
        and only chunks with a changed value are formatted again, series by series."""
        done = self._done.get(fam.name) or _Family()
        if done.values == values:
            return done.text
        keys, vals = list(values), list(values.values())
        chunks: list[_Chunk] = []
        for i, start in enumerate(range(0, len(keys), _CHUNK)):
            k, v = keys[start:start + _CHUNK], vals[start:start + _CHUNK]
            old = done.chunks[i] if i < len(done.chunks) else None
            if old is not None and old.keys == k and old.values == v:
                chunks.append(old)
                continue
            chunks.append(self._chunk(fam, k, v, old))
            # Let the decoding thread have the interpreter back between chunks: a
            # render holding it for its whole length stalls every numpy call there.
            time.sleep(0)
        text = "".join(c.text for c in chunks)
        self._done[fam.name] = _Family(values, chunks, text)
        return text

    def _chunk(self, fam: Family, keys: list[Labels], vals: list[Any], old: _Chunk | None
               ) -> _Chunk:
        before = dict(zip(old.keys, zip(old.values, old.lines, strict=True), strict=True)
                      ) if old is not None else {}
        names = self._label_names[fam.name]
        label_set = self._label_sets[fam.name]
        suffix = "_total" if fam.kind is Kind.COUNTER else ""
        lines = []
        for labels, v in zip(keys, vals, strict=True):
            hit = before.get(labels)
            if hit is not None and hit[0] == v:
                lines.append(hit[1])
                continue
            self.lines_formatted += 1
            if fam.kind is Kind.HISTOGRAM:
                lines.append(self._histogram(fam.name, names, labels, v))
            elif hit is not None:  # a new value: the name and labels are as before
                lines.append(f"{hit[1][: hit[1].rindex(' ') + 1]}{float_text(v)}\n")
            else:
                lines.append(f"{fam.name}{suffix}{label_set.text(labels)} {float_text(v)}\n")
        return _Chunk(keys, vals, lines, "".join(lines))

    @staticmethod
    def _histogram(name: str, names: Labels, labels: Labels, h: Histogram) -> str:
        pairs = list(zip(names, labels, strict=True))
        out, cum = [], 0.0
        for le, n in zip(h.bounds, h.buckets, strict=True):
            cum += n
            out.append(f"{name}_bucket{label_text([*pairs, ('le', float_text(le))])}"
                       f" {float_text(cum)}\n")
        plain = label_text(pairs)
        out.append(f"{name}_bucket{label_text([*pairs, ('le', '+Inf')])}"
                   f" {float_text(h.count)}\n")
        out.append(f"{name}_count{plain} {float_text(h.count)}\n")
        out.append(f"{name}_sum{plain} {float_text(h.sum)}\n")
        return "".join(out)
