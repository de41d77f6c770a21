"""Bad input to `net capture` and `net dump`: one clear line, the documented exit status,
everything readable before the damage kept, never a traceback, never a hang.

Exit status (cli.py): 0 done; 1 done, but the input was cut short or damaged; 2 bad usage
or unusable input. Where the process is the subject, the real `net` runs in a subprocess
with a timeout; sweeps over many cut positions call `cli.main` in-process (same code,
without paying interpreter start-up per position) under an alarm.

Expectations are computed here, independently of the readers: pcap records and pcapng
blocks are walked with struct, partial gzip streams are decompressed with zlib, and
record streams are split with a varint parser.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import PCAPS, absent
from helpers import net_cmd, uvarint
from netcap import cli
from netcap.decode.batch import decode_batch
from netcap.sources.capture import open_capture
from netcap.sources.ncap import NcapError, NcapReader

TIMEOUT = 60


# -- helpers ------------------------------------------------------------------------------




def net(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*net_cmd(), *args], capture_output=True, timeout=TIMEOUT, input=stdin)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode("utf-8", "replace"),
                                       r.stderr.decode("utf-8", "replace"))


def net_many(argvs: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Several `net` runs at once (interpreter start-up dominates these small runs)."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda a: net(*a), argvs))


def one_line(stderr: str) -> str:
    """The single stderr line (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"want one stderr line, got: {stderr!r}"
    return lines[0]


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (in-process calls have no subprocess timeout)."""

    def boom(*_: Any) -> None:
        raise TimeoutError(f"no result within {seconds}s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def main_inproc(*args: str) -> tuple[int, str, str]:
    """cli.main in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with deadline(30), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(list(args))
    return rc, out.getvalue(), err.getvalue()


def pcap_records(data: bytes) -> tuple[list[int], int]:
    """Classic pcap: start offsets of the complete records, and where reading stops
    (end of data, or the start of the first incomplete or implausible record)."""
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    starts: list[int] = []
    pos = 24
    while pos < len(data):
        if pos + 16 > len(data):
            break
        caplen = struct.unpack_from(endian + "I", data, pos + 8)[0]
        if caplen > 262144 or pos + 16 + caplen > len(data):
            break
        starts.append(pos)
        pos += 16 + caplen
    return starts, pos


def pcapng_packets_before(data: bytes) -> tuple[int, int]:
    """Little-endian pcapng: packet blocks (EPB, SPB, OPB) complete within data, and the
    offset of the first incomplete block."""
    pos = count = 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if pos + blen > len(data):
            break
        count += btype in (2, 3, 6)
        pos += blen
    return count, pos


def gunzip_partial(data: bytes) -> bytes:
    """Everything zlib can decompress from a possibly cut or damaged multi-member gzip."""
    out = bytearray()
    d = zlib.decompressobj(31)
    try:
        out += d.decompress(data)
        while d.eof and d.unused_data:
            rest = d.unused_data
            d = zlib.decompressobj(31)
            out += d.decompress(rest)
    except zlib.error:
        pass
    return bytes(out)


def gunzip_before(data: bytes, pos: int) -> bytes:
    """What zlib decodes from the bytes before `pos` (cannot depend on data[pos:])."""
    out = bytearray()
    d = zlib.decompressobj(31)
    for i in range(pos):  # byte by byte: an error loses at most one byte's output
        try:
            if d.eof:
                d = zlib.decompressobj(31)
            out += d.decompress(data[i : i + 1])
        except zlib.error:
            break
    return bytes(out)


def complete_frames(stream: bytes) -> int:
    """Number of complete varint-delimited messages at the start of a stream."""
    pos = count = 0
    while True:
        value = shift = 0
        while True:
            if pos >= len(stream):
                return count
            b = stream[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
            if shift > 63:
                return count
        if pos + value > len(stream):
            return count
        pos += value
        count += 1


def decode_counts(path: Path, before: int | None = None) -> dict[str, int]:
    """Records per type the in-process decoder gives for the packets < before, and the
    connections of those packets."""
    from netcap.flows.extract import summarize
    from netcap.flows.table import ConnectionTable
    from netcap.reassembly.streams import StreamStage, segments

    counts: dict[str, int] = {}
    flows = ConnectionTable()
    streams = StreamStage()

    def streamed(tables: dict[str, Any]) -> None:
        for name, table in tables.items():
            counts[name] = counts.get(name, 0) + table.n
    with open_capture(path) as src:
        for batch in src:
            if before is not None and batch.first >= before:
                break
            if before is not None and batch.first + len(batch) > before:
                batch = decode_batch(batch).packets(0, before - batch.first).batch
            d = decode_batch(batch)
            for name in d.tables:
                n = sum(1 for p, _ in d.records(name) if before is None or p < before)
                if n:
                    counts[name] = counts.get(name, 0) + n
            streamed(streams.update(segments(d)).tables())
            fb = summarize(d)
            ended = flows.update(fb) if fb is not None else None
            if ended is not None:
                counts["Connection"] = counts.get("Connection", 0) + ended.records.n
    streamed(streams.flush().tables())
    ended = flows.flush()
    if ended is not None:
        counts["Connection"] = counts.get("Connection", 0) + ended.records.n
    return counts


def written(out: Path) -> dict[str, int]:
    """Records per type in the finished files of a run; every file must read cleanly."""
    assert not list(out.glob("*.part")), "no temporary files left behind"
    counts: dict[str, int] = {}
    for p in sorted(out.iterdir()) if out.exists() else []:
        with NcapReader(str(p)) as reader:
            counts[reader.record_type] = sum(1 for _ in reader)
        if p.name.endswith(".gz"):
            gzip.decompress(p.read_bytes())  # a complete gzip file, not a cut one
    return counts


# -- not a capture ------------------------------------------------------------------------


def _not_captures(tmp: Path) -> dict[str, Path]:
    rnd = random.Random(7)
    files = {
        "text": b"hello, this is not a capture\n" * 20,
        "random": bytes(rnd.randrange(256) for _ in range(4096)),
        "empty": b"",
        "three-bytes": b"\xd4\xc3\xb2",
        "gzip-of-text": gzip.compress(b"not a capture either\n" * 50),
        "gzip-empty": gzip.compress(b""),
        "gzip-cut": gzip.compress(b"x" * 1000)[:12],
    }
    paths = {}
    for k, v in files.items():
        paths[k] = tmp / f"{k}.pcap"
        paths[k].write_bytes(v)
    paths["directory"] = tmp
    paths["missing"] = tmp / "no-such-file.pcap"
    return paths


def test_capture_not_a_capture(tmp_path: Path) -> None:
    paths = _not_captures(tmp_path)
    argvs = [["capture", "-read", str(path), "-out", str(tmp_path / f"out-{kind}")]
             for kind, path in paths.items()]
    for (kind, path), r in zip(paths.items(), net_many(argvs), strict=True):
        line = one_line(r.stderr)
        assert r.returncode == 2, (kind, line)
        assert line.startswith("net capture: ") and str(path) in line, (kind, line)
        assert r.stdout == "", kind
        assert not (tmp_path / f"out-{kind}").exists(), f"{kind}: nothing written"


def test_dump_not_an_ncap(tmp_path: Path) -> None:
    paths = _not_captures(tmp_path)
    argvs = [["dump", "-read", str(path), "-json"] for path in paths.values()]
    for (kind, path), r in zip(paths.items(), net_many(argvs), strict=True):
        line = one_line(r.stderr)
        assert r.returncode == 2, (kind, line)
        assert line.startswith("net dump: ") and str(path) in line, (kind, line)
        assert r.stdout == "", kind


@pytest.mark.corpus
def test_dump_a_capture_file() -> None:
    r = net("dump", "-read", str(PCAPS / "zeek_icmp_5-pings.pcap"))
    one_line(r.stderr)
    assert r.returncode == 2 and r.stdout == ""


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["libpcap_pcap-invalid-version-1.pcap",
                                  "libpcap_shb-option-too-long.pcapng"])
def test_corpus_invalid(name: str, tmp_path: Path) -> None:
    r = net("capture", "-read", str(PCAPS / name), "-out", str(tmp_path / "out"))
    line = one_line(r.stderr)
    assert r.returncode == 2 and name in line
    assert not (tmp_path / "out").exists()


@pytest.mark.corpus
def test_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = net("capture", "-read", str(PCAPS / "zeek_icmp_5-pings.pcap"), "-out", str(blocker))
    one_line(r.stderr)
    assert r.returncode == 2


# -- cut captures -------------------------------------------------------------------------

CUT_CORPUS = {  # file -> complete packets before the damage (tshark agrees)
    "dpkt_truncated_dns_2-cut-record-header.pcap": 1,
    "DERIVED_zeek_http-vlan-0_cut-mid-record.pcap": 10,
    "sv_tls_DER-incomplete-header-damaged.pcap": 6,
}


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(CUT_CORPUS))
def test_corpus_cut(name: str, tmp_path: Path) -> None:
    path = PCAPS / name
    starts, stop = pcap_records(path.read_bytes())
    assert len(starts) == CUT_CORPUS[name]
    out = tmp_path / "out"
    # Without -quiet the summary goes to stderr as well, but one warning line only.
    r, loud = net_many([["capture", "-read", str(path), "-out", str(out), "-quiet"],
                        ["capture", "-read", str(path), "-out", str(tmp_path / "out2")]])
    line = one_line(r.stderr)
    assert r.returncode == 1, line
    assert "warning" in line and str(path) in line and f"at byte {stop};" in line
    assert f"; {len(starts)} complete packets" in line
    assert written(out) == decode_counts(path)
    if name.startswith("DERIVED_zeek_http-vlan-0"):  # the original is in the corpus
        assert written(out) == decode_counts(PCAPS / "zeek_http-vlan-0.pcap", before=10)
    assert loud.returncode == 1 and "Traceback" not in loud.stderr
    assert [x for x in loud.stderr.splitlines() if "warning" in x] == [line]


def _cut_positions(starts: list[int], data_len: int) -> list[tuple[int, int]]:
    """(cut position, complete packets before it) inside record headers and data."""
    out: list[tuple[int, int]] = []
    ends = [*starts[1:], data_len]
    for k in (0, 1, len(starts) // 2, len(starts) - 1):
        s, e = starts[k], ends[k]
        for pos in (s + 1, s + 8, s + 15, s + 16, s + 16 + (e - s - 16) // 2, e - 1):
            out.append((pos, k))
    return out


@pytest.mark.corpus
def test_cut_pcap_positions(tmp_path: Path) -> None:
    src = PCAPS / "zeek_wikipedia.pcap"
    data = src.read_bytes()
    starts, _ = pcap_records(data)
    full = {}
    with open_capture(src) as cap:
        for batch in cap:
            d = decode_batch(batch)
            full.update({name: [p for p, _ in d.records(name)] for name in d.tables})
    for pos, k in _cut_positions(starts, len(data)):
        path = tmp_path / f"cut{pos}.pcap"
        path.write_bytes(data[:pos])
        out = tmp_path / f"out{pos}"
        rc, stdout, stderr = main_inproc("capture", "-read", str(path), "-out", str(out),
                                         "-quiet")
        line = one_line(stderr)
        assert rc == 1, (pos, line)
        assert str(path) in line and f"at byte {starts[k]};" in line, (pos, k, line)
        assert f"; {k} complete packets" in line
        want = {name: sum(p < k for p in pkts) for name, pkts in full.items()}
        got = written(out)
        staged = decode_counts(src, before=k)  # connections and stream analyzers' records
        for name in ("Connection", "HTTP"):
            assert got.pop(name, 0) == staged.get(name, 0), (pos, name)
        assert got == {n: c for n, c in want.items() if c}, pos
    # A cut at a record boundary is a complete file.
    path = tmp_path / "boundary.pcap"
    path.write_bytes(data[: starts[5]])
    rc, _, stderr = main_inproc("capture", "-read", str(path), "-out", str(tmp_path / "b"),
                                "-quiet")
    assert rc == 0 and stderr == ""
    # A cut in the file header is not a capture at all.
    path.write_bytes(data[:20])
    rc, _, stderr = main_inproc("capture", "-read", str(path), "-out", str(tmp_path / "h"))
    one_line(stderr)
    assert rc == 2


@pytest.mark.corpus
def test_cut_gzip_capture(tmp_path: Path) -> None:
    src = PCAPS / "zeek_http_iso-download.pcap.gz"
    data = src.read_bytes()
    for pos in (200, len(data) // 3, len(data) // 2, len(data) - 9, len(data) - 1):
        plain = gunzip_partial(data[:pos])
        starts, stop = pcap_records(plain)
        path = tmp_path / f"cut{pos}.pcap.gz"
        path.write_bytes(data[:pos])
        out = tmp_path / f"out{pos}"
        rc, _, stderr = main_inproc("capture", "-read", str(path), "-out", str(out), "-quiet")
        line = one_line(stderr)
        assert rc == 1, line
        assert f"; {len(starts)} complete packets" in line, line
        assert str(path) in line and f"at byte {stop};" in line, (stop, line)
        counts = written(out)
        assert counts.get("TCP", 0) == len(starts)


@pytest.mark.corpus
def test_cut_pcapng(tmp_path: Path) -> None:
    src = PCAPS / "ja4_tls-sni.pcapng"
    data = src.read_bytes()
    for pos in (3000, 30000, 45001, len(data) - 1):
        k, stop = pcapng_packets_before(data[:pos])
        path = tmp_path / f"cut{pos}.pcapng"
        path.write_bytes(data[:pos])
        out = tmp_path / f"out{pos}"
        rc, _, stderr = main_inproc("capture", "-read", str(path), "-out", str(out), "-quiet")
        line = one_line(stderr)
        assert rc == 1 and f"at byte {stop};" in line and f"; {k} complete packets" in line
        assert sum(written(out).get(t, 0) for t in ("TCP", "UDP")) == k


# -- damaged audit-record files -----------------------------------------------------------


@pytest.fixture(scope="module")
def ncap_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real `net capture` output, compressed and not, with payloads (bigger files)."""
    out = tmp_path_factory.mktemp("ncap")
    # Read by a relative name from a fixed place, so the Header (which records the input
    # name) and so every offset in the files are the same wherever the tests run.
    shutil.copy(PCAPS / "zeek_http_bro.org.pcap", out / "in.pcap")
    for flags in ((), ("-compress=false",)):
        r = subprocess.run([*net_cmd(), "capture", "-read", "in.pcap", "-out", ".", "-payload",
                            "-quiet", *flags], capture_output=True, text=True, cwd=out,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
    return {"gz": out / "TCP.ncap.gz", "plain": out / "TCP.ncap"}


def _json_lines(stdout: str) -> list[Any]:
    return [json.loads(x) for x in stdout.splitlines()]


@pytest.fixture(scope="module")
def original(ncap_files: dict[str, Path]) -> list[Any]:
    rc, stdout, stderr = main_inproc("dump", "-read", str(ncap_files["gz"]), "-json")
    assert rc == 0 and stderr == ""
    return _json_lines(stdout)


def _check_damaged_dump(path: Path, good: int, original: list[Any], exact: bool,
                        header_ok: bool = True) -> None:
    """`net dump -json` of a damaged file: the first `good` records as in the original
    (exactly `good` when `exact`), then one error line, and exit status 1 — or 2 when not
    even the file's Header could be read (not a usable audit-record file)."""
    rc, stdout, stderr = main_inproc("dump", "-read", str(path), "-json")
    line = one_line(stderr)
    assert line.startswith("net dump: ") and str(path) in line
    got = _json_lines(stdout)
    if exact:
        assert len(got) == good, (len(got), good, line)
    assert got[:good] == original[:good]
    assert rc == (1 if header_ok else 2), (rc, line)


def _member_ends(data: bytes) -> set[int]:
    """Offsets where a gzip member of the file ends (a file may hold several)."""
    ends, pos = set(), 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
        ends.add(pos)
    return ends


def _frame_ends(stream: bytes) -> set[int]:
    """Offsets where a varint-delimited record of the stream ends."""
    ends, pos = set(), 0
    while pos < len(stream):
        value, pos = uvarint(stream, pos)
        pos += value
        ends.add(pos)
    return ends


@pytest.mark.corpus
def test_dump_cut_gzip(ncap_files: dict[str, Path], original: list[Any], tmp_path: Path
                       ) -> None:
    data = ncap_files["gz"].read_bytes()
    rnd = random.Random(3)
    positions = {0, 1, 2, 9, 10, 11, 30, 60, len(data) - 8, len(data) - 4, len(data) - 1}
    positions |= {rnd.randrange(len(data)) for _ in range(40)}
    # A cut exactly between two gzip members leaves a valid, shorter file: nothing to
    # detect (tested below), so those offsets are not damage.
    positions -= _member_ends(data)
    path = tmp_path / "cut.ncap.gz"
    for pos in sorted(positions):
        path.write_bytes(data[:pos])
        frames = complete_frames(gunzip_partial(data[:pos]))
        _check_damaged_dump(path, max(0, frames - 1), original, exact=True,  # minus Header
                            header_ok=frames > 0)


@pytest.mark.corpus
def test_dump_cut_plain(ncap_files: dict[str, Path], original: list[Any], tmp_path: Path
                        ) -> None:
    data = ncap_files["plain"].read_bytes()
    rnd = random.Random(4)
    positions = {1, 2, 5, 30, len(data) - 1} | {rnd.randrange(len(data)) for _ in range(40)}
    # A cut exactly after a record leaves a valid, shorter file (the format has no trailer).
    positions -= _frame_ends(data)
    path = tmp_path / "cut.ncap"
    for pos in sorted(positions):
        path.write_bytes(data[:pos])
        frames = complete_frames(data[:pos])
        _check_damaged_dump(path, max(0, frames - 1), original, exact=True,
                            header_ok=frames > 0)


@pytest.mark.corpus
def test_dump_cut_at_record_boundary_is_a_shorter_file(
        ncap_files: dict[str, Path], original: list[Any], tmp_path: Path) -> None:
    """No trailer, no index: a plain file cut right after a record reads as complete."""
    data = ncap_files["plain"].read_bytes()
    ends = sorted(_frame_ends(data))
    path = tmp_path / "short.ncap"
    for k in (1, 2, len(ends) // 2):
        path.write_bytes(data[: ends[k - 1]])
        rc, stdout, stderr = main_inproc("dump", "-read", str(path), "-json")
        assert rc == 0 and stderr == ""
        assert _json_lines(stdout) == original[: k - 1]


@pytest.mark.corpus
def test_dump_flipped_gzip(ncap_files: dict[str, Path], original: list[Any], tmp_path: Path
                           ) -> None:
    """A changed byte inside the deflate data: every record decoded before it is printed
    (zlib tells which), then one error (gzip's CRC catches what the framing does not)."""
    data = ncap_files["gz"].read_bytes()
    path = tmp_path / "flip.ncap.gz"
    for pos in (len(data) // 3, len(data) // 2, 2 * len(data) // 3, len(data) - 20):
        for mask in (0x01, 0x80, 0xFF):
            b = bytearray(data)
            b[pos] ^= mask
            path.write_bytes(bytes(b))
            good = complete_frames(gunzip_before(bytes(b), pos)) - 1
            assert good > 100
            _check_damaged_dump(path, good, original, exact=False)


@pytest.mark.corpus
def test_dump_flipped_plain(ncap_files: dict[str, Path], original: list[Any], tmp_path: Path
                            ) -> None:
    """No checksum in a plain stream: damage may go unnoticed, but what precedes it is
    printed unchanged and nothing crashes."""
    data = ncap_files["plain"].read_bytes()
    path = tmp_path / "flip.ncap"
    rnd = random.Random(5)
    for _ in range(30):
        pos = rnd.randrange(len(data) // 4, len(data))
        b = bytearray(data)
        b[pos] ^= 1 << rnd.randrange(8)
        path.write_bytes(bytes(b))
        rc, stdout, stderr = main_inproc("dump", "-read", str(path), "-json")
        assert "Traceback" not in stderr and len(stderr.splitlines()) <= 1
        assert rc in (0, 1) and (rc == 0) == (stderr == "")
        good = complete_frames(data[:pos]) - 1
        assert _json_lines(stdout)[:good] == original[:good]


@pytest.mark.corpus
@pytest.mark.parametrize("tail", [b"garbage\n", bytes(range(256)) * 2, b"\x00" * 4,
                                  b"\x1f\x8b\x08\x00", gzip.compress(b"\xff" * 40)],
                         ids=["text", "binary", "zeros", "gzip-header", "gzip-member"])
def test_dump_garbage_after_gzip(tail: bytes, ncap_files: dict[str, Path],
                                 original: list[Any], tmp_path: Path) -> None:
    path = tmp_path / "tail.ncap.gz"
    path.write_bytes(ncap_files["gz"].read_bytes() + tail)
    _check_damaged_dump(path, len(original), original, exact=True)


@pytest.mark.corpus
@pytest.mark.parametrize("tail", [b"\xff" * 12, b"\x05\xff\xff\xff\xff\xff",
                                  b"\x80\x80\x80\x80\x10"],
                         ids=["long-varint", "bad-record", "huge-length"])
def test_dump_garbage_after_plain(tail: bytes, ncap_files: dict[str, Path],
                                  original: list[Any], tmp_path: Path) -> None:
    path = tmp_path / "tail.ncap"
    path.write_bytes(ncap_files["plain"].read_bytes() + tail)
    _check_damaged_dump(path, len(original), original, exact=True)


@pytest.mark.corpus
def test_dump_gzip_of_garbage(ncap_files: dict[str, Path], tmp_path: Path) -> None:
    plain = ncap_files["plain"].read_bytes()
    header_len = plain[0] + 1
    rnd = random.Random(6)
    cases = {
        "random": (gzip.compress(bytes(rnd.randrange(256) for _ in range(5000))), 2),
        "unknown-type": (gzip.compress(b"\x02\x18\x02"), 2),  # Header{Type: 2}
        "header-then-garbage": (gzip.compress(plain[:header_len] + b"\x05\xff\xff\xff\xff\xff"),
                                1),
        "record-too-long": (gzip.compress(plain[:header_len] + b"\xff\xff\xff\xff\x0f"), 1),
    }
    for name, (blob, status) in cases.items():
        path = tmp_path / f"{name}.ncap.gz"
        path.write_bytes(blob)
        r = net("dump", "-read", str(path), "-json")
        one_line(r.stderr)
        assert r.returncode == status and r.stdout == "", name


@pytest.mark.corpus
def test_dump_cut_subprocess(ncap_files: dict[str, Path], original: list[Any],
                             tmp_path: Path) -> None:
    """The real process, all three output formats: records, one error line, status 1."""
    data = ncap_files["gz"].read_bytes()
    path = tmp_path / "cut.ncap.gz"
    path.write_bytes(data[: len(data) // 2])
    good = complete_frames(gunzip_partial(data[: len(data) // 2])) - 1
    for fmt, header in (("-json", 0), ("-csv", 1), ("-json=false", None)):
        r = net("dump", "-read", str(path), fmt)
        line = one_line(r.stderr)
        assert r.returncode == 1 and "cut short" in line, line
        if header is not None:
            assert len(r.stdout.splitlines()) == good + header
    assert _json_lines(net("dump", "-read", str(path), "-json").stdout) == original[:good]


# -- bad flags ----------------------------------------------------------------------------

BAD_FLAGS = [
    ("capture", "-rea", "x"),
    ("capture", "--rea=x"),
    ("capture", "-compress=maybe", "-read", "x"),
    ("capture", "-read"),
    ("capture", "-read", "x", "-json"),
    ("capture", "-read", "x", "extra"),
    ("capture", "-read", "x", "-payload", "yes"),
    ("capture", "-read", "x", "-include", "TCP,Bogus"),
    ("capture", "-read", "x", "-workers", "-1"),
    ("capture", "-read", "x", "-workers", "many"),
    ("dump",),
    ("dump", "-read", "x", "-json", "-csv"),
    ("dump", "-read", "x", "-json=maybe"),
    ("frobnicate",),
    ("-read", "x"),
]


def test_bad_flags() -> None:
    for args, r in zip(BAD_FLAGS, net_many([list(a) for a in BAD_FLAGS]), strict=True):
        line = one_line(r.stderr)
        assert r.returncode == 2, (args, line)
        assert line.startswith("net"), (args, line)
        assert r.stdout == "", args


# -- fuzz ---------------------------------------------------------------------------------

FUZZ_BASES = [
    "zeek_wikipedia.pcap", "zeek_icmp_dot1q.pcap", "tcpdump_icmpv6.pcap",
    "zeek_linux_dlt_sll2.pcap", "pcapngtg_le_test202_mixed-endian-sections.pcapng",
    "ja4_http1-with-cookies.pcapng", "zeek_radiotap.pcap", "zeek_ipv6-fragmented-dns.pcap",
    "libpcap_ipv6_ext_headers.pcap", "zeek_q-in-q.pcap",
]


@st.composite
def mutated(draw: st.DrawFn, bases: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(bases)))
    n = len(data)
    for _ in range(draw(st.integers(1, 20))):
        pos = draw(st.integers(0, n - 1))
        data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        pos = draw(st.integers(0, n))
        data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


_BASE_BYTES = [] if absent() else [(PCAPS / n).read_bytes() for n in FUZZ_BASES]


@pytest.mark.corpus
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated(_BASE_BYTES), gz=st.booleans())
def test_fuzz_capture(data: bytes, gz: bool, tmp_path: Path) -> None:
    """Mutated real captures: `net capture` ends with 0, 1 or 2, and whatever it wrote
    reads back cleanly."""
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(gzip.compress(data) if gz else data)
    out = tmp_path / "fuzz-out"
    shutil.rmtree(out, ignore_errors=True)
    rc, _, stderr = main_inproc("capture", "-read", str(path), "-out", str(out), "-quiet",
                                "-payload", "-entropy")
    assert rc in (0, 1, 2)
    assert "Traceback" not in stderr
    if rc == 2:
        one_line(stderr)
    written(out)


@pytest.mark.corpus
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 8), cut=st.booleans(),
       which=st.sampled_from(["gz", "plain"]))
def test_fuzz_dump(seed: int, flips: int, cut: bool, which: str,
                   ncap_files: dict[str, Path], tmp_path: Path) -> None:
    rnd = random.Random(seed)
    data = bytearray(ncap_files[which].read_bytes())
    for _ in range(flips):
        data[rnd.randrange(len(data))] = rnd.randrange(256)
    if cut:
        del data[rnd.randrange(len(data)) :]
    path = tmp_path / ("fuzz.ncap.gz" if which == "gz" else "fuzz.ncap")
    path.write_bytes(bytes(data))
    for fmt in ("-json", "-csv", "-json=false"):
        rc, _, stderr = main_inproc("dump", "-read", str(path), fmt)
        assert rc in (0, 1, 2)
        assert len(stderr.splitlines()) == (rc != 0)


@pytest.mark.corpus
def test_reader_api_on_damage(ncap_files: dict[str, Path], tmp_path: Path) -> None:
    """NcapReader itself: records first, then NcapError (one line), file closed."""
    data = ncap_files["gz"].read_bytes()
    path = tmp_path / "cut.ncap.gz"
    path.write_bytes(data[: len(data) // 2])
    reader = NcapReader(str(path))
    got = 0
    with pytest.raises(NcapError) as e:
        for _ in reader:
            got += 1
    assert got == complete_frames(gunzip_partial(data[: len(data) // 2])) - 1
    assert "\n" not in str(e.value) and f"after {got} records" in str(e.value)
    reader.close()
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for _ in range(20):
        with pytest.raises(NcapError):
            NcapReader(str(tmp_path))  # a directory
        path.write_bytes(b"\x1f\x8b" + b"\x00" * 30)
        with pytest.raises(NcapError):
            NcapReader(str(path))
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds, "no file handles leaked"
