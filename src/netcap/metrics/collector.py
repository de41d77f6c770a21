"""A prometheus_client collector that renders a `MetricsState` snapshot.

State is read at scrape time (client_python's collector model) from a copy taken under
the state's lock, so rendering never holds up decoding.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .. import __version__
from .families import FAMILIES, Kind
from .state import MetricsState

__all__ = ["NetcapCollector", "make_registry"]


class NetcapCollector(Collector):
    def __init__(self, state: MetricsState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        snap = self.state.snapshot()
        for fam in FAMILIES.values():
            labels = list(self.state.config.labels_of(fam.name))
            if fam.kind is Kind.INFO:
                info = InfoMetricFamily(fam.name, fam.doc, labels=[])
                info.add_metric([], {"version": __version__,
                                     "python": platform.python_version()})
                yield info
            elif fam.kind is Kind.COUNTER:
                c = CounterMetricFamily(fam.name, fam.doc, labels=labels)
                for key, v in sorted(snap.counters.get(fam.name, {}).items()):
                    c.add_metric(list(key), v)
                yield c
            elif fam.kind is Kind.GAUGE:
                g = GaugeMetricFamily(fam.name, fam.doc, labels=labels)
                for key, v in sorted(snap.gauges.get(fam.name, {}).items()):
                    g.add_metric(list(key), v)
                yield g
            else:
                h = HistogramMetricFamily(fam.name, fam.doc, labels=labels)
                for key, hist in sorted(snap.histograms.get(fam.name, {}).items()):
                    cum, buckets = 0.0, []
                    for le, n in zip(hist.bounds, hist.buckets, strict=True):
                        cum += n
                        buckets.append((f"{le:g}", cum))
                    buckets.append(("+Inf", hist.count))
                    h.add_metric(list(key), buckets, hist.sum)
                yield h


def make_registry(state: MetricsState) -> CollectorRegistry:
    """A fresh registry: the Python process and GC collectors, and netcap's own."""
    reg = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    GCCollector(registry=reg)
    reg.register(NetcapCollector(state))
    return reg
