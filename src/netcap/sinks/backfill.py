"""Backfill: metric values at packet time, as OpenMetrics that `promtool tsdb
create-blocks-from openmetrics` turns into Prometheus blocks.

The exporter's live values describe "now"; for a capture of last week, dashboards should
show last week. So while a capture is processed, the metrics state is sampled at every
`step` of *packet* time (the end of each step that saw packets, and the end of the
input), and at the end every series is written with all its samples, family by family,
in time order, timestamps in seconds, ending in `# EOF` (what promtool requires: samples
out of order are silently dropped, millisecond timestamps land in the far future).
Families measured in wall-clock time (uptime, stage seconds, rate) are left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..metrics.collector import float_text, label_text
from ..metrics.families import FAMILIES, Kind
from ..metrics.state import LabelConfig, MetricsState, Snapshot
from .files import create_private

__all__ = ["Backfill"]

_WALL_CLOCK = frozenset({"nc_uptime_seconds", "nc_stage_seconds",
                         "nc_processing_rate_packets_per_second"})


def _labels(names: tuple[str, ...], values: tuple[str, ...], le: str | None = None) -> str:
    """Escaped and spelled as the endpoint spells them (`le` too), so backfilled series
    are the same series the endpoint serves."""
    pairs = list(zip(names, values, strict=True))
    return label_text(pairs if le is None else [*pairs, ("le", le)])


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else str(int(v))


@dataclass
class Backfill:
    path: str
    step_ns: int
    samples: list[tuple[int, Snapshot]] = field(default_factory=list)  # (time ns, values)
    current: int | None = None  # the step being counted
    config: LabelConfig = field(default_factory=LabelConfig)  # label names per family

    def enter(self, step: int, state: MetricsState) -> None:
        """Packets of `step` come next: if a step ended, sample the state at its end."""
        if self.current is not None and step > self.current:
            self.samples.append(((self.current + 1) * self.step_ns, state.snapshot()))
        if self.current is None or step > self.current:
            self.current = step

    def finish(self, state: MetricsState) -> None:
        """Sample the end of the last step and write the file."""
        self.config = state.config
        if self.current is not None:
            self.samples.append(((self.current + 1) * self.step_ns, state.snapshot()))
        self.write()

    def write(self) -> None:
        tmp = self.path + ".part"
        with create_private(tmp, text=True) as out:  # mode 0o640, as audit records
            for fam in FAMILIES.values():
                if fam.name in _WALL_CLOCK:
                    continue
                self._family(out, fam.name)
            out.write("# EOF\n")
        os.replace(tmp, self.path)

    def _family(self, out: object, name: str) -> None:
        fam = FAMILIES[name]
        names = self.config.labels_of(name)
        w = out.write  # type: ignore[attr-defined]
        kind = "info" if fam.kind is Kind.INFO else fam.kind.value
        w(f"# TYPE {fam.name} {kind}\n# HELP {fam.name} {fam.doc}\n")
        if fam.kind is Kind.INFO:
            return  # build information: not a packet-time quantity
        store = {Kind.COUNTER: "counters", Kind.GAUGE: "gauges", Kind.HISTOGRAM: "histograms"}
        series: set[tuple[str, ...]] = set()
        for _, snap in self.samples:
            series |= set(getattr(snap, store[fam.kind]).get(name, {}))
        for labels in sorted(series):
            for t_ns, snap in self.samples:
                values = getattr(snap, store[fam.kind]).get(name, {})
                if labels not in values:
                    continue
                ts = f"{t_ns // 1_000_000_000}.{t_ns % 1_000_000_000:09d}"
                if fam.kind is Kind.HISTOGRAM:
                    h = values[labels]
                    cum = 0.0
                    for le, n in zip(h.bounds, h.buckets, strict=True):
                        cum += n
                        lab = _labels(names, labels, float_text(le))
                        w(f"{name}_bucket{lab} {_num(cum)} {ts}\n")
                    lab_inf = _labels(names, labels, "+Inf")
                    w(f"{name}_bucket{lab_inf} {_num(h.count)} {ts}\n")
                    lab = _labels(names, labels)
                    w(f"{name}_count{lab} {_num(h.count)} {ts}\n")
                    w(f"{name}_sum{lab} {_num(h.sum)} {ts}\n")
                else:
                    suffix = "_total" if fam.kind is Kind.COUNTER else ""
                    w(f"{name}{suffix}{_labels(names, labels)} {_num(values[labels])} {ts}\n")
