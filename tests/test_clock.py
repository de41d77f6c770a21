"""The packet clock and bad timestamps (issue 12, item 5).

Captures are the sample capture with one packet's stamp changed (to 2106, to 0, a day
ahead, a day back), or with a real pause in the middle; the real `net` runs on them.
A bad stamp must be counted (`frame/timestamp_jump_*`) and must not move the time that
connections time out by, that backfill samples at, or that replay waits for: every
output equals the clean capture's, except the counted error and that packet's time.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import net_cmd
from netcap.clock import CONFIRM, JUMP_NS, PacketClock
from netcap.decode.errors import code

SAMPLE = Path(__file__).parent / "data" / "sample.pcap"
MIDDLE = 100  # the packet whose stamp is changed (of 194)
MAX_U32 = 0xFFFFFFFF  # the last second a classic pcap can hold: 2106-02-07
DAY_US = 86_400 * 10**6


def records(src: Path) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The file header and (µs stamp, record without its stamp) of a classic µs pcap."""
    data = src.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    out = []
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, incl = struct.unpack_from("<III", data, pos)
        out.append((sec * 10**6 + usec, data[pos + 8 : pos + 16 + incl]))
        pos += 16 + incl
    return data[:24], out


def write(path: Path, head: bytes, recs: list[tuple[int, bytes]]) -> Path:
    with path.open("wb") as f:
        f.write(head)
        for t, rest in recs:
            f.write(struct.pack("<II", t // 10**6, t % 10**6) + rest)
    return path


def variant(tmp: Path, name: str) -> Path:
    """The sample capture with packet MIDDLE's stamp changed (or, "pause", every packet
    from MIDDLE on a day later)."""
    head, recs = records(SAMPLE)
    t = recs[MIDDLE][0]
    if name == "pause":
        recs = recs[:MIDDLE] + [(u + DAY_US, r) for u, r in recs[MIDDLE:]]
    else:
        new = {"2106": MAX_U32 * 10**6, "zero": 0, "ahead": t + DAY_US,
               "back": t - DAY_US, "clean": t}[name]
        recs[MIDDLE] = (new, recs[MIDDLE][1])
    return write(tmp / f"{name}.pcap", head, recs)


def net(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*net_cmd(), *args], capture_output=True, text=True, timeout=120)


def dump(path: Path) -> list[str]:
    r = net("dump", "-read", str(path), "-csv")
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def capture(pcap: Path, out: Path, workers: int = 1) -> str:
    r = net("capture", "-read", str(pcap), "-out", str(out), "-workers", str(workers))
    assert r.returncode == 0, r.stderr
    return r.stderr


BAD = {"2106": "forward", "zero": "back", "ahead": "forward", "back": "back"}


@pytest.mark.parametrize("name", BAD)
@pytest.mark.parametrize("workers", [1, 2])
def test_bad_stamp_is_counted_and_not_followed(tmp_path: Path, name: str,
                                               workers: int) -> None:
    clean = tmp_path / "clean"
    capture(variant(tmp_path, "clean"), clean)
    out = tmp_path / name
    summary = capture(variant(tmp_path, name), out, workers)
    assert f"decode errors: frame/timestamp_jump_{BAD[name]} 1\n" in summary, summary
    # Connections end as in the clean capture (a clock in 2106 would have timed them
    # all out at that packet), and stream records are the same.
    for kind in ("Connection", "HTTP"):
        assert dump(out / f"{kind}.ncap.gz") == dump(clean / f"{kind}.ncap.gz"), kind
    # The packet's own records carry the time of the packet before it (Ethernet: one
    # record per packet of the sample).
    rows, want = dump(out / "Ethernet.ncap.gz"), dump(clean / "Ethernet.ncap.gz")
    assert len(rows) == len(want) == 1 + len(records(SAMPLE)[1])
    k = 1 + MIDDLE  # after the header line
    assert rows[:k] + rows[k + 1:] == want[:k] + want[k + 1:]
    assert rows[k].split(",")[0] == want[k - 1].split(",")[0]
    assert rows[k].split(",")[1:] == want[k].split(",")[1:]


def om_times(path: Path) -> list[float]:
    return sorted({float(line.rsplit(" ", 1)[1]) for line in path.read_text().splitlines()
                   if line and not line.startswith("#")})


@pytest.mark.parametrize("name", ["2106", "zero"])
def test_backfill_and_replay_do_not_follow_a_bad_stamp(tmp_path: Path, name: str) -> None:
    clean_om, bad_om = tmp_path / "clean.om", tmp_path / "bad.om"
    for pcap, om in ((variant(tmp_path, "clean"), clean_om), (variant(tmp_path, name), bad_om)):
        r = net("export", "-read", str(pcap), "-exit", "-backfill", str(om), "-step", "1s",
                "-address", "127.0.0.1:0")
        assert r.returncode == 0, r.stderr
    assert om_times(bad_om) == om_times(clean_om)
    assert len(om_times(clean_om)) > 8  # the capture spans 11 s: one sample per second
    assert f'reason="timestamp_jump_{BAD[name]}"' in bad_om.read_text()
    # Replay: the capture's 11 s at 100x; following 2106 it would wait for decades.
    r = net("export", "-read", str(variant(tmp_path, name)), "-exit", "-replay", "-speed",
            "100", "-address", "127.0.0.1:0")
    assert r.returncode == 0, r.stderr


def test_a_real_pause_is_followed(tmp_path: Path) -> None:
    """A day without packets, then traffic again: confirmed by the packets after it,
    so the clock follows, nothing is counted, and the backfill spans both days."""
    out, om = tmp_path / "out", tmp_path / "pause.om"
    pcap = variant(tmp_path, "pause")
    assert "decode errors" not in capture(pcap, out)
    r = net("export", "-read", str(pcap), "-exit", "-backfill", str(om), "-step", "1s",
            "-address", "127.0.0.1:0")
    assert r.returncode == 0, r.stderr
    times = om_times(om)
    assert times[-1] - times[0] > 86_000
    assert "timestamp_jump" not in om.read_text()


# -- the rule itself, on stamps alone ----------------------------------------------------

S = 10**9
FWD, BACK = code("frame", "timestamp_jump_forward"), code("frame", "timestamp_jump_back")


def judge(stamps: list[int], chunks: int = 1) -> tuple[list[int], list[int]]:
    """(stamps after the clock, error codes), fed in `chunks` pieces."""
    clock = PacketClock()
    ts = np.asarray(stamps, np.int64)
    errors = np.zeros(len(stamps), np.int16)
    for part in np.array_split(np.arange(len(stamps)), chunks):
        if part.size:
            view = ts[part[0] : part[-1] + 1]
            got = clock.check(view)
            if got is not None:
                errors[part[0] : part[-1] + 1] = got
    return ts.tolist(), errors.tolist()


def test_rule_single_and_short_runs_rejected() -> None:
    base = [1_700_000_000 * S + k * S for k in range(20)]
    for bad, want in ((MAX_U32 * S, FWD), (0, BACK), (2**63 - 1, FWD), (-(2**63), BACK)):
        for run in range(1, CONFIRM):  # up to CONFIRM-1 bad stamps in a row
            stamps = base[:10] + [bad] * run + base[10:]
            ts, err = judge(stamps)
            assert err == [0] * 10 + [want] * run + [0] * 10
            assert ts == base[:10] + [base[9]] * run + base[10:]


def test_rule_first_and_last_packets() -> None:
    base = [1_700_000_000 * S + k * S for k in range(10)]
    ts, err = judge([0, *base])  # the first is judged against the first few
    assert err == [BACK] + [0] * 10 and abs(ts[0] - base[0]) < JUMP_NS
    ts, err = judge([*base, MAX_U32 * S])  # nothing after it confirms it
    assert err == [0] * 10 + [FWD] and ts[-1] == base[-1]


def test_rule_accepts_consistent_time() -> None:
    # All zero (a generated capture), backwards within the window, sparse captures
    # (packets hours apart), a step back that the next packets confirm.
    hour = 3600 * S
    for stamps in ([0] * 50,
                   [10 * S - k for k in range(50)],
                   [100 * hour + k * S for k in range(10)] + [k * S for k in range(10)]):
        for chunks in (1, 3):
            ts, err = judge(stamps, chunks)
            assert not any(err) and ts == stamps, (stamps[:3], chunks)
    # Packets hours apart: each is confirmed by those after it, but the very last has
    # none to confirm it (a last packet stamped 2106 must not be followed either).
    sparse = [k * 5 * hour for k in range(50)]
    ts, err = judge(sparse)
    assert err == [0] * 49 + [FWD] and ts == sparse[:49] + sparse[48:49]


def test_rule_window() -> None:
    """Within JUMP_NS of the neighbours, whatever the followers do, nothing is judged."""
    base = 1_700_000_000 * S
    ts, err = judge([base, base + JUMP_NS, base, base + JUMP_NS])
    assert not any(err)
    ts, err = judge([base, base + JUMP_NS + 1, base, base])
    assert err == [0, FWD, 0, 0]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_audit_records_with_a_bad_stamp(tmp_path: Path) -> None:
    """Audit-record files are replayed and backfilled on the same clock: a TCP record
    stamped in 2106 is counted and not followed."""
    import gzip

    from netcap.sources.ncap import NcapReader

    clean, bad = tmp_path / "clean", tmp_path / "bad"
    capture(SAMPLE, clean)
    bad.mkdir()
    for f in clean.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    with NcapReader(str(clean / "TCP.ncap.gz")) as r:
        header, msgs = r.header, list(r)
    msgs[MIDDLE].Timestamp = MAX_U32 * 10**9
    body = b"".join(_varint(len(m.SerializeToString())) + m.SerializeToString()
                    for m in [header, *msgs])
    (bad / "TCP.ncap.gz").write_bytes(gzip.compress(body))
    oms = []
    for d in (clean, bad):
        om = tmp_path / f"{d.name}.om"
        r2 = net("export", str(d), "-exit", "-backfill", str(om), "-step", "1s",
                 "-address", "127.0.0.1:0")
        assert r2.returncode == 0, r2.stderr
        oms.append(om)
    assert om_times(oms[1]) == om_times(oms[0])
    assert 'reason="timestamp_jump_forward"} 1 ' in oms[1].read_text()
    r3 = net("export", str(bad), "-exit", "-replay", "-speed", "100", "-address", "127.0.0.1:0")
    assert r3.returncode == 0, r3.stderr


def test_replay_skips_a_long_pause(tmp_path: Path) -> None:
    """A day without packets amid a capture (accepted by the clock) is skipped by the
    replay, not waited out: at -speed 100 that day would take 14 minutes (found by
    bench/mutfuzz.py: a capture resumed 12 years later held a replay for hours)."""
    pcap = variant(tmp_path, "pause")
    r = net("export", "-read", str(pcap), "-exit", "-replay", "-speed", "100",
            "-address", "127.0.0.1:0")  # net() ends it after 120 s: a hang fails
    assert r.returncode == 0, r.stderr
    assert "194 packets" in r.stderr
