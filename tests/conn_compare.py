"""Connections against tshark's conversation tables (`-z conv,tcp -z conv,udp`).

For every corpus capture, our Connection records (as `net capture` writes them) are
matched to tshark's TCP and UDP conversations by protocol,
endpoints and start time, and compared: total frames, bytes each way (exact where
tshark prints bytes, within its rounding where it prints kB/MB), start time and
duration (to tshark's printed precision). Conversations on one side only count as
differences too. Run as a script to print them; `--update` rewrites the list in
tests/data/connection_disagreements.tsv, keeping reasons and marking new ones
UNEXPLAINED.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from corpus import ORACLE, PCAPS, corpus_files
from netcap.pipeline import CaptureOptions, run_capture
from netcap.records.types import RECORDS
from netcap.sources.capture import CaptureError
from netcap.sources.ncap import NcapReader

HERE = Path(__file__).parent

LIST = HERE / "data" / "connection_disagreements.tsv"
HEADER = ("file", "conversation", "field", "ours", "tshark", "reason")
_LINE = re.compile(r"^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(\d+) (\d+) (bytes|kB|MB)\s+"
                   r"(\d+) (\d+) (bytes|kB|MB)\s+(\d+) (\d+) (bytes|kB|MB)\s+(-?[\d.]+)\s+([\d.]+)")
_UNIT = {"bytes": 1, "kB": 1000, "MB": 1000_000}


@dataclass(frozen=True)
class Conv:
    proto: str
    a: tuple[str, int]
    b: tuple[str, int]
    frames: int
    bytes_ab: tuple[int, str]  # value, unit as printed
    bytes_ba: tuple[int, str]
    start_ns: int  # absolute
    duration: str  # as printed (4 decimals)


def tshark_convs(name: str, oracle: Path = ORACLE) -> list[Conv] | None:
    conv = oracle / f"{name}.conv.txt"
    frames = oracle / f"{name}.jsonl"
    if not conv.exists() or not frames.exists():
        return None
    with open(frames) as f:
        first = f.readline()
    if not first:
        return []
    t0 = json.loads(first).get("frame.time_epoch", ["0.0"])[0]
    sec, _, frac = t0.partition(".")
    base = int(sec) * 10**9 + int((frac + "000000000")[:9])
    out: list[Conv] = []
    proto = ""
    for line in conv.read_text().splitlines():
        if line.endswith("Conversations"):
            proto = line.split()[0]
            continue
        m = _LINE.match(line)
        if m and proto in ("TCP", "UDP"):
            rs, rf = m.group(14).lstrip("-").split(".")
            rel = (int(rs) * 10**9 + int((rf + "000000000")[:9])) * (
                -1 if m.group(14).startswith("-") else 1)
            out.append(Conv(proto, (m.group(1), int(m.group(2))), (m.group(3), int(m.group(4))),
                            int(m.group(11)), (int(m.group(9)), m.group(10)),
                            (int(m.group(6)), m.group(7)), base + rel, m.group(15)))
    return out


def our_connections(name: str, pcaps: Path = PCAPS) -> list[dict[str, object]] | None:
    """Our Connection records, as `net capture` writes them (the whole pipeline: IP
    defragmentation included), read back."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run_capture(CaptureOptions(read=str(pcaps / name), out=tmp, workers=1))
        except CaptureError:
            return None
        path = os.path.join(tmp, "Connection.ncap.gz")
        if not os.path.exists(path):
            return []
        fields = [f.name for f in RECORDS["Connection"].fields]
        with NcapReader(path) as reader:
            return [{f: getattr(m, f) for f in fields} for m in reader]


def _same_bytes(ours: int, printed: tuple[int, str]) -> bool:
    value, unit = printed
    if unit == "bytes":
        return ours == value
    return abs(ours - value * _UNIT[unit]) <= _UNIT[unit]  # printed rounded


def compare(name: str, pcaps: Path = PCAPS, oracle: Path = ORACLE,
            ) -> list[tuple[str, str, str, str, str]]:
    """One capture's Connection records against tshark's conversations (the public corpus
    by default; tests/test_recorded.py passes the project's own recorded captures)."""
    theirs = tshark_convs(name, oracle)
    ours = our_connections(name, pcaps)
    if theirs is None or ours is None:
        return []
    diffs: list[tuple[str, str, str, str, str]] = []
    left = list(ours)
    for c in theirs:
        label = f"{c.proto} {c.a[0]}:{c.a[1]} <-> {c.b[0]}:{c.b[1]} @{c.start_ns}"
        ends = {c.a, c.b}
        cands = [o for o in left if o.get("TransportProto") == c.proto and {
            (str(o.get("SrcIP")), int(str(o.get("SrcPort", "0")))),
            (str(o.get("DstIP")), int(str(o.get("DstPort", "0"))))} == ends]
        if not cands:
            diffs.append((name, label, "conversation", "ABSENT", "present"))
            continue
        o = min(cands, key=lambda x: abs(int(str(x.get("TimestampFirst", 0))) - c.start_ns))
        left.remove(o)
        src = (str(o.get("SrcIP")), int(str(o.get("SrcPort", "0"))))
        c2s = int(str(o.get("BytesClientToServer", 0)))
        s2c = int(str(o.get("BytesServerToClient", 0)))
        ab, ba = (c2s, s2c) if src == c.a else (s2c, c2s)
        checks = [
            ("frames", str(o.get("NumPackets", 0)), str(c.frames),
             int(str(o.get("NumPackets", 0))) == c.frames),
            ("bytes_a_to_b", str(ab), f"{c.bytes_ab[0]} {c.bytes_ab[1]}",
             _same_bytes(ab, c.bytes_ab)),
            ("bytes_b_to_a", str(ba), f"{c.bytes_ba[0]} {c.bytes_ba[1]}",
             _same_bytes(ba, c.bytes_ba)),
            # tshark adds the relative start to the first frame's time in double
            # precision: at 1.3e9 s that is good to a few hundred ns.
            ("start", str(o.get("TimestampFirst", 0)), str(c.start_ns),
             abs(int(str(o.get("TimestampFirst", 0))) - c.start_ns) <= 1000),
            ("duration", f"{int(str(o.get('Duration', 0))) / 1e9:.4f}", c.duration,
             abs(int(str(o.get("Duration", 0))) / 1e9 - float(c.duration)) <= 0.00005 + 1e-9),
        ]
        diffs += [(name, label, f, a, t) for f, a, t, ok in checks if not ok]
    for o in left:
        label = (f"{o.get('TransportProto')} {o.get('SrcIP')}:{o.get('SrcPort')} <-> "
                 f"{o.get('DstIP')}:{o.get('DstPort')} @{o.get('TimestampFirst')}")
        diffs.append((name, label, "conversation", "present", "ABSENT"))
    return diffs


def compare_all() -> list[tuple[str, str, str, str, str]]:
    return [d for p in corpus_files() for d in compare(p)]


def load_list() -> dict[tuple[str, str, str, str, str], str]:
    if not LIST.exists():
        return {}
    with open(LIST, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert tuple(rows[0]) == HEADER
    return {tuple(r[:5]): r[5] for r in rows[1:] if r}  # type: ignore[misc]


def write_list(diffs: list[tuple[str, str, str, str, str]]) -> None:
    known = load_list()
    with open(LIST, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(HEADER)
        for d in sorted(set(diffs)):
            w.writerow([*d, known.get(d, "UNEXPLAINED")])


if __name__ == "__main__":
    all_diffs = compare_all()
    for d in all_diffs:
        print("\t".join(d))
    print(f"{len(all_diffs)} differences")
    if "--update" in sys.argv:
        write_list(all_diffs)
