"""Mutation fuzzing of `net capture`, `net export` and `net dump` (issue 12).

    .venv/bin/python bench/mutfuzz.py --cases 20000 --seconds 3600      # a campaign
    .venv/bin/python bench/mutfuzz.py --confirm bench/out/fuzz/<bucket> # a finding, by `net`

Seeds: every capture of the corpus ($NETCAP_CORPUS/pcaps, default ../shared/corpus), the
project's own captures (tests/data, except a copy of the corpus there), and audit-record
files that `net capture` makes from them (gzip-compressed `.ncap.gz` and plain `.ncap`).
Case N is one seed mutated by a few operators drawn from a generator seeded with N (and
--seed), so the same seeds give the same case N on every run: bit flips, bytes and words set
to boundary values, chunks deleted, duplicated or inserted, truncation, splicing two files;
and edits that know the formats: pcap and pcapng record and block headers (lengths,
timestamps, link types, interfaces, options), and in audit records the varint framing and
the protobuf fields inside (varints and timestamps set to extremes, long and odd strings,
repeated fields repeated a varying number of times, wrong wire types, records of another
type). A `.ncap.gz` is inflated, mutated and compressed again, and sometimes its gzip
bytes are damaged as well.

Every case is a real `net` run. Starting Python and importing netcap costs ~0.2 s, so this
process imports netcap once and forks a child per case (a fork server): the child resets
the signal handlers, limits the address space it adds (RLIMIT_AS: the server's plus
--mem-limit), sends stdout and stderr to files and calls the `net` script's entry
(netcap.cli.main after run()'s settings) with the case's arguments, then leaves with its
status as `net` would. Captures run with `-workers 1`: more workers fork processes of
their own, which a case's process group also holds (the parent kills the group).
Exports run with `-exit` and serve on 127.0.0.1:0 (a free port each). --subprocess execs
the installed `net` instead, to confirm a finding the way a user meets it. A case still
running after --timeout gets SIGABRT (faulthandler then prints where every thread is,
which names the hang) and then SIGKILL.

Verdicts: ok (exit 0, 1 or 2 and no traceback); traceback (a Python traceback on stderr,
or exit 3); exit (any other status); hang (past --timeout); memory (MemoryError, or peak
RSS over the limit); crash (killed by a signal). A finding's bucket is its command,
verdict, exception type and innermost project frame; each bucket keeps its first case,
minimized, under the output directory (bench/out/fuzz/<bucket>/: in/ the input, cmd.txt,
stderr.txt, info.json, original/ the case before minimizing).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import functools
import gzip
import hashlib
import importlib
import io
import json
import os
import pkgutil
import random
import re
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out" / "fuzz"
COMMANDS = ("capture", "export", "dump")
MiB = 1 << 20
GiB = 1 << 30
MAX_FILE = 4 * MiB  # a mutation that would grow a file past this is cut back or skipped
STDERR_KEEP = 64 * 1024

Entry = Callable[[list[str]], int]


# -- seeds ------------------------------------------------------------------------------

PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
              b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


@dataclass(frozen=True)
class Seed:
    name: str  # where it came from (for reports)
    kind: str  # "pcap", "pcapng", "ncap", or "raw" for a capture of neither format
    data: bytes  # plain bytes (an audit-record file inflated)
    gz: bool = False  # an audit-record file stored gzip-compressed
    rtype: str = ""  # audit records: the record type, which names the file
    group: str = ""  # audit records: the capture they were made from

    @property
    def is_capture(self) -> bool:
        return self.kind != "ncap"

    @property
    def filename(self) -> str:
        if self.kind == "ncap":
            return f"{self.rtype}.ncap" + (".gz" if self.gz else "")
        return Path(self.name).name


def capture_kind(data: bytes) -> str:
    if data[:4] == PCAPNG_SHB:
        return "pcapng"
    return "pcap" if data[:4] in PCAP_MAGIC else "raw"


def corpus_dir() -> Path:
    return Path(os.environ.get("NETCAP_CORPUS", REPO.parent / "shared" / "corpus"))


def capture_paths() -> list[Path]:
    """The corpus captures and the project's own (tests/data, not a corpus copy there)."""
    paths = sorted((corpus_dir() / "pcaps").glob("*"))
    data = REPO / "tests" / "data"
    paths += sorted(p for p in data.rglob("*")
                    if p.suffix in (".pcap", ".pcapng", ".gz") and "corpus" not in p.parts)
    return [p for p in paths if p.is_file()]


def load_captures(paths: Sequence[Path]) -> list[Seed]:
    seen: set[bytes] = set()
    seeds = []
    for p in paths:
        data = p.read_bytes()
        digest = hashlib.sha1(data).digest()
        if digest in seen or len(data) > MAX_FILE:
            continue
        seen.add(digest)
        seeds.append(Seed(str(p), capture_kind(data), data))
    return seeds


# -- protobuf and varints -----------------------------------------------------------------

U64 = (1 << 64) - 1


def uvarint(n: int) -> bytes:
    n &= U64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_uvarint(b: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    for i in range(10):
        if pos + i >= len(b):
            return None
        c = b[pos + i]
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return value & U64, pos + i + 1
    return None


@dataclass
class Field:
    num: int
    wt: int  # wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
    value: int | bytes
    raw: bytes | None = None  # written as is instead (framing damage)

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        tag = uvarint(self.num << 3 | self.wt)
        if self.wt == 0:
            assert isinstance(self.value, int)
            return tag + uvarint(self.value)
        assert isinstance(self.value, bytes)
        if self.wt == 2:
            return tag + uvarint(len(self.value)) + self.value
        return tag + self.value


def parse_message(b: bytes) -> list[Field] | None:
    """The fields of a protobuf message, or None if `b` does not parse as one."""
    out: list[Field] = []
    pos = 0
    while pos < len(b):
        r = read_uvarint(b, pos)
        if r is None:
            return None
        tag, pos = r
        num, wt = tag >> 3, tag & 7
        if num == 0 or num >= 1 << 29:
            return None
        if wt == 0:
            r = read_uvarint(b, pos)
            if r is None:
                return None
            out.append(Field(num, 0, r[0]))
            pos = r[1]
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            if pos + n > len(b):
                return None
            out.append(Field(num, wt, b[pos:pos + n]))
            pos += n
        elif wt == 2:
            r = read_uvarint(b, pos)
            if r is None or r[1] + r[0] > len(b):
                return None
            out.append(Field(num, 2, b[r[1]:r[1] + r[0]]))
            pos = r[1] + r[0]
        else:
            return None
    return out


def encode_message(fields: Sequence[Field]) -> bytes:
    return b"".join(f.encode() for f in fields)


def frame_spans(stream: bytes) -> list[tuple[int, int, int]]:
    """The whole records of an audit-record stream: (start of the length prefix, start
    of the record, end), up to the first cut or bad length."""
    spans = []
    pos = 0
    while pos < len(stream):
        r = read_uvarint(stream, pos)
        if r is None or r[1] + r[0] > len(stream):
            break
        spans.append((pos, r[1], r[1] + r[0]))
        pos = r[1] + r[0]
    return spans


def split_frames(stream: bytes) -> tuple[list[bytes], bytes]:
    """An audit-record stream as its records, and whatever follows the last whole one."""
    spans = frame_spans(stream)
    return [stream[b:e] for _, b, e in spans], stream[spans[-1][2] if spans else 0:]


def join_frames(frames: Sequence[bytes]) -> bytes:
    return b"".join(uvarint(len(f)) + f for f in frames)


# -- capture layouts ------------------------------------------------------------------------

def pcap_records(data: bytes) -> tuple[str, list[int]] | None:
    """Byte order and the offsets of the whole records of a pcap file."""
    endian = PCAP_MAGIC.get(data[:4])
    if endian is None or len(data) < 24:
        return None
    offsets = []
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, pos + 8)[0]
        if pos + 16 + incl > len(data):
            break
        offsets.append(pos)
        pos += 16 + incl
    return endian, offsets


@dataclass(frozen=True)
class Block:
    offset: int
    type: int
    length: int
    endian: str


def pcapng_blocks(data: bytes) -> list[Block]:
    blocks = []
    pos = 0
    endian = "<"
    while pos + 12 <= len(data):
        if data[pos:pos + 4] == PCAPNG_SHB:
            bom = data[pos + 8:pos + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" \
                else endian
        btype, blen = struct.unpack_from(endian + "II", data, pos)
        if blen < 12 or blen % 4 or pos + blen > len(data):
            break
        blocks.append(Block(pos, btype, blen, endian))
        pos += blen
    return blocks


def units(kind: str, data: bytes) -> list[tuple[int, int]]:
    """Spans of whole structural units (records, blocks, frames), for minimizing."""
    if kind == "pcap":
        lay = pcap_records(data)
        if lay and lay[1]:  # (a header and no whole record: no units)
            ends = [*lay[1][1:], len(data)]
            return list(zip(lay[1], ends, strict=True))
    elif kind == "pcapng":
        return [(b.offset, b.offset + b.length) for b in pcapng_blocks(data)]
    elif kind == "ncap":
        return [(start, end) for start, _, end in frame_spans(data)]
    return []


# -- mutations ----------------------------------------------------------------------------

BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x40, 0x10)
WORDS16 = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
WORDS32 = (0, 1, 0x7F, 0x80, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
VARINTS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32,
           (1 << 53) + 1, (1 << 63) - 1, 1 << 63, U64, U64 - 1)  # 1 << 63 and up: negative
NS = 10**9
TIMES = (0, 1, U64, (1 << 63) - 1, 1 << 63, 4102444800 * NS, 4294967295 * NS,
         253402300800 * NS % (1 << 63), 86400 * NS)  # 0, -1, int64 ends, 2100, 2106, ...
LINKTYPES = (0, 1, 6, 9, 12, 101, 104, 105, 113, 127, 147, 192, 220, 228, 229, 239, 276,
             0xFFFF, 0x10000001, 0xFFFFFFFF)
STRINGS = (b"", b"\x00", b"\xff\xfe\xfd", b"\xc3", b"\xed\xa0\x80", "\u00b9\u00b2\u00b3".encode(),
           "\u0663\u0664".encode(), "\U0001d7d7\U0001d7d7".encode(), b"9" * 5000, b"-1",
           b"1e308", b"NaN", b"inf", b"4294967296", b"18446744073709551616",
           b"-9223372036854775809", b"user:secret@10.1.2.3", b"Authorization: Basic dTpw",
           b"%s%n%x", b"\r\n" * 64, b"../../etc/passwd", b"a\nb\"c,d", b"1.1.1.1", b"::1",
           b"fe80::1%eth0", b"GET", b"HTTP/1.1", b" 80 ", b"0x" + b"f" * 40, b"\t")
STRING_SIZES = (256, 4096, 65536, 1 << 20)
NUMERIC = ("\u00b2", "\u00b9\u00b2", "\u0663", "\uff15\uff13", "\u2460", "\U0001d7d7", "5" * 4301,
           "9" * 5000, "0" * 20 + "53", "+53", " 53", "53\n", "-0", "1_000", "0x35", "5\u00b3")


def _flip(rng: random.Random, b: bytearray, lo: int = 0, hi: int | None = None) -> None:
    hi = len(b) if hi is None else hi
    if hi > lo:
        for _ in range(rng.choice((1, 1, 2, 4, 8))):
            i = rng.randrange(lo, hi)
            b[i] ^= 1 << rng.randrange(8)


def _set_value(rng: random.Random, b: bytearray, lo: int = 0, hi: int | None = None) -> None:
    hi = len(b) if hi is None else hi
    width = rng.choice((1, 1, 2, 4))
    if hi - lo < width:
        return
    i = rng.randrange(lo, hi - width + 1)
    if width == 1:
        b[i] = rng.choice(BYTES)
    else:
        v = rng.choice(WORDS16 if width == 2 else WORDS32)
        b[i:i + width] = v.to_bytes(width, rng.choice(("little", "big")))


def _span(rng: random.Random, n: int) -> tuple[int, int]:
    size = min(n, rng.choice((1, 2, 4, 8, 16, 64, 512, 4096)))
    i = rng.randrange(0, n - size + 1)
    return i, i + size


def generic(rng: random.Random, data: bytes, others: Sequence[bytes]) -> tuple[bytes, str]:
    """One format-blind mutation."""
    b = bytearray(data)
    if not b:
        return bytes(rng.randbytes(rng.randrange(1, 64))), "fill"
    op = rng.choice(("flip", "flip", "value", "value", "delete", "dup", "insert", "truncate",
                     "splice", "append"))
    if op == "flip":
        _flip(rng, b)
    elif op == "value":
        _set_value(rng, b)
    elif op == "delete":
        i, j = _span(rng, len(b))
        del b[i:j]
    elif op == "dup":
        i, j = _span(rng, len(b))
        k = rng.randrange(0, len(b) + 1)
        b[k:k] = b[i:j] * rng.choice((1, 1, 2, 16))
    elif op == "insert":
        k = rng.randrange(0, len(b) + 1)
        n = rng.choice((1, 4, 16, 256))
        b[k:k] = rng.randbytes(n) if rng.random() < 0.5 else bytes([rng.choice(BYTES)]) * n
    elif op == "truncate":
        del b[rng.randrange(0, len(b)):]
    elif op == "splice" and others:
        other = rng.choice(others)
        b = b[:rng.randrange(0, len(b) + 1)] + other[rng.randrange(0, len(other) + 1):]
    else:
        b += rng.randbytes(rng.choice((1, 3, 16, 100)))
    return bytes(b), op


def _pack(endian: str, fmt: str, b: bytearray, pos: int, v: int) -> None:
    if pos + struct.calcsize(fmt) <= len(b):
        struct.pack_into(endian + fmt, b, pos, v & ((1 << (8 * struct.calcsize(fmt))) - 1))


def _reorder(rng: random.Random, data: bytes, spans: list[tuple[int, int]], head: int,
             keep_first: int = 0) -> tuple[bytes, str]:
    """Delete, duplicate, swap, reverse or flood whole units (records, blocks)."""
    parts = [data[i:j] for i, j in spans]
    tail = data[spans[-1][1]:] if spans else data[head:]
    fixed, movable = parts[:keep_first], parts[keep_first:]
    if not movable:
        return data, "none"
    op = rng.choice(("delete", "dup", "swap", "reverse", "shuffle", "flood", "flood"))
    k = rng.randrange(len(movable))
    if op == "delete":
        del movable[k:k + rng.choice((1, 1, 3, 10))]
    elif op == "dup":
        movable.insert(rng.randrange(len(movable) + 1), movable[k])
    elif op == "swap":
        m = rng.randrange(len(movable))
        movable[k], movable[m] = movable[m], movable[k]
    elif op == "reverse":
        movable.reverse()
    elif op == "shuffle":
        rng.shuffle(movable)
    else:
        n = min(rng.choice((100, 1000, 20_000)), MAX_FILE // max(1, len(movable[k])))
        movable[k + 1:k + 1] = [movable[k]] * n
    return data[:head] + b"".join(fixed + movable) + tail, op


def _tcp_split(rng: random.Random, data: bytes, endian: str, offs: list[int]) -> bytes | None:
    """One TCP segment (Ethernet, IPv4) cut into pieces: at one random byte (inside a
    UTF-8 character, a request line, ...) or into 1-byte segments; sometimes reordered,
    sometimes with a piece missing (a hole that never fills)."""
    if struct.unpack_from(endian + "I", data, 20)[0] & 0xFFFF != 1:
        return None
    found = []
    for at in offs:
        incl = struct.unpack_from(endian + "I", data, at + 8)[0]
        pkt = data[at + 16:at + 16 + incl]
        eth = 14 + 4 * (pkt[12:14] == b"\x81\x00")
        if len(pkt) < eth + 20 or pkt[eth - 2:eth] != b"\x08\x00" or pkt[eth + 9] != 6:
            continue
        ihl = (pkt[eth] & 0xF) * 4
        total = struct.unpack_from(">H", pkt, eth + 2)[0]
        if len(pkt) < eth + ihl + 20 or total > len(pkt) - eth:
            continue
        thl = (pkt[eth + ihl + 12] >> 4) * 4
        if ihl >= 20 and thl >= 20 and len(pkt) >= eth + total and total - ihl - thl >= 2:
            found.append((at, incl, eth, ihl, thl, total))
    if not found:
        return None
    at, incl, eth, ihl, thl, total = rng.choice(found)
    pkt = data[at + 16:at + 16 + incl]
    head, payload = pkt[:eth + ihl + thl], pkt[eth + ihl + thl:eth + total]
    if rng.random() < 0.5:
        cut = rng.randrange(1, len(payload))
        pieces = [(0, payload[:cut]), (cut, payload[cut:])]
    else:
        pieces = [(i, payload[i:i + 1]) for i in range(min(len(payload), 2000))]
    if rng.random() < 0.3:
        pieces.reverse()
    if rng.random() < 0.3 and len(pieces) > 2:
        del pieces[0 if rng.random() < 0.5 else rng.randrange(len(pieces))]
    seq = struct.unpack_from(">I", head, eth + ihl + 4)[0]
    ts = data[at:at + 8]
    out = bytearray()
    for off, piece in pieces:
        h = bytearray(head)
        struct.pack_into(">H", h, eth + 2, ihl + thl + len(piece))
        struct.pack_into(">I", h, eth + ihl + 4, (seq + off) & 0xFFFFFFFF)
        n = len(h) + len(piece)
        out += ts + struct.pack(endian + "II", n, n) + h + piece
    return data[:at] + bytes(out) + data[at + 16 + incl:]


def mutate_pcap(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lay = pcap_records(data)
    if lay is None:
        return data, "none"
    endian, offs = lay
    b = bytearray(data)
    op = rng.choice(("len", "len", "time", "time", "global", "records", "packet", "packet",
                     "split", "split"))
    if op == "split":
        split = _tcp_split(rng, data, endian, offs)
        if split is not None:
            return split, "pcap-split"
        op = "packet"
    if not offs and op not in ("global",):
        op = "global"
    if op == "len":
        at = rng.choice(offs)
        incl, orig = struct.unpack_from(endian + "II", b, at + 8)
        if rng.random() < 0.7:
            _pack(endian, "I", b, at + 8, rng.choice(
                (0, 1, incl - 1, incl + 1, orig, 65535, 65536, 262144, 262145, 16 * MiB,
                 0x7FFFFFFF, 0xFFFFFFFF)))
        else:
            _pack(endian, "I", b, at + 12, rng.choice((0, 1, incl - 1, 0xFFFFFFFF)))
    elif op == "time":
        picks = [rng.choice(offs)] if rng.random() < 0.7 else offs[rng.randrange(len(offs)):]
        ts = struct.unpack_from(endian + "I", b, offs[0])[0]
        sec = rng.choice((0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, ts + 10**9, ts - 10**8,
                          max(0, ts - 3600), ts + 86400 * 365 * 30))
        frac = rng.choice((None, 0, 999_999, 1_000_000, 999_999_999, 0xFFFFFFFF))
        for at in picks:
            _pack(endian, "I", b, at, sec)
            if frac is not None:
                _pack(endian, "I", b, at + 4, frac)
    elif op == "global":
        what = rng.choice(("snaplen", "linktype", "linktype", "version", "magic"))
        if what == "snaplen":
            _pack(endian, "I", b, 16, rng.choice((0, 1, 14, 60, 65535, 0x7FFFFFFF, 0xFFFFFFFF)))
        elif what == "linktype":
            _pack(endian, "I", b, 20, rng.choice(LINKTYPES) | rng.choice((0, 0, 0x10000000)))
        elif what == "version":
            _pack(endian, "H", b, 4 + 2 * rng.randrange(2), rng.choice(WORDS16))
        else:
            b[:4] = rng.choice(list(PCAP_MAGIC))
    elif op == "records":
        spans = units("pcap", data)
        return _reorder(rng, data, spans, 24)
    else:
        for _ in range(rng.choice((1, 1, 3, 10))):
            at = rng.choice(offs)
            incl = struct.unpack_from(endian + "I", b, at + 8)[0]
            lo, hi = at + 16, at + 16 + incl
            if rng.random() < 0.6:
                hi = min(hi, lo + 64)  # the link, IP and transport headers
            (_set_value if rng.random() < 0.6 else _flip)(rng, b, lo, hi)
    return bytes(b), "pcap-" + op


def _ng_block(endian: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def mutate_pcapng(rng: random.Random, data: bytes, others: Sequence[bytes]) -> tuple[bytes, str]:
    blocks = pcapng_blocks(data)
    if not blocks:
        return data, "none"
    b = bytearray(data)
    op = rng.choice(("blocklen", "epb", "epb", "idb", "shb", "blocks", "blocks", "packet",
                     "type", "section"))
    blk = rng.choice(blocks)
    e = blk.endian
    epbs = [x for x in blocks if x.type == 6]
    if op == "blocklen":
        where = blk.offset + (4 if rng.random() < 0.6 else blk.length - 4)
        _pack(e, "I", b, where, rng.choice((0, 4, 8, 12, 13, blk.length - 4, blk.length + 4,
                                            blk.length + 1, 0x10000000, 0x7FFFFFFF,
                                            0xFFFFFFFF)))
    elif op == "epb" and epbs:
        blk = rng.choice(epbs)
        e = blk.endian
        field_at = rng.choice((8, 12, 16, 20, 20, 24))
        value = rng.choice(WORDS32 + (1, 2, 5))
        if field_at == 20:  # captured length
            cap = struct.unpack_from(e + "I", b, blk.offset + 20)[0]
            value = rng.choice((0, cap + 1, cap + 4, blk.length, 0xFFFFFFFF, 0x7FFFFFFF))
        _pack(e, "I", b, blk.offset + field_at, value)
    elif op == "idb":
        # a new interface description with odd link type, snap length or options
        opts = b""
        if rng.random() < 0.7:
            code, val = rng.choice(((9, bytes([rng.choice((0, 3, 6, 9, 19, 63, 64, 0x7F, 0x80,
                                                            0x80 | 10, 0xBF, 0xFF))])),
                                    (14, struct.pack(e + "q", rng.choice((-(1 << 63), -1,
                                                                          (1 << 63) - 1,
                                                                          4102444800)))),
                                    (2, b"x" * rng.choice((0, 1, 255, 3000)))))
            length = len(val) if rng.random() < 0.8 else rng.choice((0, 0xFFFF, len(val) + 8))
            opts = struct.pack(e + "HH", code, length) + val + b"\0" * (-len(val) % 4)
            if rng.random() < 0.7:
                opts += b"\0\0\0\0"
        body = struct.pack(e + "HHI", rng.choice(LINKTYPES) & 0xFFFF, 0,
                           rng.choice((0, 1, 64, 65535, 0xFFFFFFFF))) + opts
        idbs = [x for x in blocks if x.type == 1]
        if idbs and rng.random() < 0.6:
            old = rng.choice(idbs)
            b[old.offset:old.offset + old.length] = _ng_block(old.endian, 1, body)
        else:
            at = rng.choice(blocks[1:] or blocks)
            b[at.offset:at.offset] = _ng_block(at.endian, 1, body)
    elif op == "shb":
        shb = rng.choice([x for x in blocks if x.type == 0x0A0D0D0A] or blocks)
        what = rng.randrange(3)
        if what == 0:
            b[shb.offset + 8:shb.offset + 12] = rng.choice(
                (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d", b"\0\0\0\0", b"\x4d\x3c\x2b\x1b"))
        elif what == 1:
            _pack(shb.endian, "H", b, shb.offset + 12 + 2 * rng.randrange(2),
                  rng.choice(WORDS16))
        else:
            _pack(shb.endian, "Q", b, shb.offset + 16,
                  rng.choice((-1, 0, 1, 1 << 40, (1 << 63) - 1)))
    elif op in ("blocks", "epb"):
        return _reorder(rng, data, units("pcapng", data), 0, keep_first=1)
    elif op == "packet" and epbs:
        for _ in range(rng.choice((1, 1, 3, 10))):
            blk = rng.choice(epbs)
            lo, hi = blk.offset + 28, blk.offset + blk.length - 4
            if rng.random() < 0.6:
                hi = min(hi, lo + 64)
            (_set_value if rng.random() < 0.6 else _flip)(rng, b, lo, hi)
    elif op == "type":
        _pack(e, "I", b, blk.offset, rng.choice((1, 2, 3, 5, 6, 0x0A0D0D0A, 0x80000001,
                                                 0xBAD, 0, 0xFFFFFFFF)))
    elif op == "section":  # another file's section (header and interfaces) inserted
        ng = [o for o in others if o[:4] == PCAPNG_SHB]
        if ng:
            src = rng.choice(ng)
            sb = pcapng_blocks(src)
            head = [x for x in sb if x.type in (0x0A0D0D0A, 1)][:3]
            piece = b"".join(src[x.offset:x.offset + x.length] for x in head)
            pos = rng.choice(blocks).offset
            b[pos:pos] = piece
    return bytes(b), "pcapng-" + op


# protobuf fields ----------------------------------------------------------------------------

def _odd_string(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.2:  # numeric text that str.isdigit() accepts and int() may not
        return rng.choice(NUMERIC).encode()
    if r < 0.5:
        return rng.choice(STRINGS)
    if r < 0.8:
        return rng.choice((b"A", b"9", "\u00e9".encode(), b"\0")) * rng.choice(STRING_SIZES)
    return rng.randbytes(rng.choice((1, 16, 300)))


def _varint_value(rng: random.Random, old: int) -> int:
    if old > 10**17 and rng.random() < 0.7:  # a timestamp in nanoseconds
        return rng.choice(TIMES + (old + 10**18, old - 10**18, old + 100 * 365 * 86400 * NS,
                                   old - 3600 * NS))
    return rng.choice(VARINTS + (old + 1, old - 1, old * 1000))


def mutate_fields(rng: random.Random, fields: list[Field], depth: int = 0) -> str:
    """One edit of a parsed message (in place); returns its name."""
    if not fields:
        fields.append(Field(rng.randrange(1, 40), 0, rng.choice(VARINTS)))
        return "pb-add"
    k = rng.randrange(len(fields))
    f = fields[k]
    op = rng.choice(("value", "value", "value", "repeat", "delete", "wiretype", "unknown",
                     "packed", "badlen", "shuffle"))
    if op == "value":
        if f.wt == 0:
            assert isinstance(f.value, int)
            f.value = _varint_value(rng, f.value)
        elif f.wt == 2:
            assert isinstance(f.value, bytes)
            sub = parse_message(f.value) if depth < 4 and f.value else None
            if sub and rng.random() < 0.6:
                name = mutate_fields(rng, sub, depth + 1)
                f.value = encode_message(sub)
                return name
            f.value = _odd_string(rng)
            return "pb-string"
        else:
            f.value = rng.choice((b"\xff" * 8, b"\0" * 8, struct.pack("<d", float("nan")),
                                  struct.pack("<d", float("inf")), b"\x00\x00\x80\x7f" * 2))
            f.value = f.value[:8 if f.wt == 1 else 4]
        return "pb-value"
    if op == "repeat":
        n = rng.choice((1, 2, 3, 5, 100, 1000))
        fields[k + 1:k + 1] = [Field(f.num, f.wt, f.value) for _ in range(n)]
    elif op == "delete":
        del fields[k]
    elif op == "wiretype":
        wt = rng.choice([w for w in (0, 1, 2, 5) if w != f.wt])
        value: int | bytes = rng.choice(VARINTS) if wt == 0 else (
            _odd_string(rng) if wt == 2 else rng.randbytes(8 if wt == 1 else 4))
        fields[k] = Field(f.num, wt, value)
    elif op == "unknown":
        num = rng.choice((rng.randrange(1, 64), 1000, (1 << 29) - 1))
        wt = rng.choice((0, 2, 3, 4, 6, 7))
        raw = uvarint(num << 3 | wt) + (uvarint(rng.choice(VARINTS)) if wt in (0, 2) else b"")
        fields.insert(k, Field(num, wt, 0, raw=raw))
    elif op == "packed":
        n = rng.choice((0, 1, 2, 5, 100, 10_000))
        f.wt, f.value = 2, b"".join(uvarint(rng.choice(VARINTS)) for _ in range(n))
    elif op == "badlen" and f.raw is None:  # a length past the end of the message, or short
        body = f.value if isinstance(f.value, bytes) else uvarint(f.value)
        n = rng.choice((len(body) + 1, len(body) + 1000, 1 << 31, U64, max(0, len(body) - 1)))
        f.raw = uvarint(f.num << 3 | 2) + uvarint(n) + body
    else:
        rng.shuffle(fields)
    return "pb-" + op


def _field_nums(frames: Sequence[bytes]) -> list[int]:
    nums: set[int] = set()
    for fr in frames[:50]:
        nums.update(f.num for f in parse_message(fr) or ())
    return sorted(nums)


# schema-aware edits: netcap's own declarations of the record types say which field
# numbers are strings, numbers, repeated or nested records, including fields a seed
# leaves out (proto3 does not write defaults), so they can be added, not only changed.

def _record_types() -> dict[str, Any]:
    try:
        from netcap.records.types import RECORDS
    except ImportError:
        return {}
    return RECORDS


@functools.lru_cache(maxsize=1)
def _metric_columns() -> frozenset[str]:
    """Field names the record metrics read (where a file's values meet numpy and labels)."""
    try:
        from netcap.metrics import state
    except ImportError:
        return frozenset()
    names: set[str] = set()
    for table in ("_RECORD_COLUMNS", "STREAM_RECORD_COLUMNS"):
        for cols in getattr(state, table, {}).values():
            names |= cols
    for extra in ("TEXT_COLUMNS", "LIST_COLUMNS"):
        names |= getattr(state, extra, frozenset())
    return frozenset(names)


def _wire_type(kind: Any) -> int:
    if kind.is_varint:
        return 0
    return 2 if kind.is_length_delimited else 1  # the one fixed kind declared is double


def _field_path(rng: random.Random, rtype: str, depth: int = 0) -> list[Any]:
    """A declared field of `rtype` (through nested records), weighted towards the kinds
    that reach numpy columns and labels: repeated, strings, nested records."""
    rt = _record_types().get(rtype)
    if rt is None or not rt.fields:
        return []
    used = _metric_columns()
    weights = [3 * f.repeated + 2 * (f.kind.value == "string") + 2 * bool(f.label)
               + 2 * (f.kind.value == "message") + 4 * (f.name in used) + 1 for f in rt.fields]
    f = rng.choices(rt.fields, weights)[0]
    if f.message and depth < 2 and rng.random() < 0.7:
        sub = _field_path(rng, f.message, depth + 1)
        if sub:
            return [f, *sub]
    return [f]


class _Plan:
    """One field edit applied to many records: a list length varying from record to record,
    one odd string everywhere, a unique string per record, extreme numbers, ..."""

    def __init__(self, rng: random.Random, path: list[Any]) -> None:
        self.path = path
        leaf = path[-1]
        modes = ["value", "value", "drop", "wiretype"]
        if leaf.repeated or leaf.kind.value == "message":
            modes += ["count"] * 5
        if leaf.kind.value in ("string", "bytes"):
            modes += ["unique", "string", "string", "big", "big", "numeric"]
        self.mode = rng.choice(modes)
        self.string = _odd_string(rng)
        if self.mode == "big":  # one long value: a file's size on disk against memory
            self.string = rng.choice((b"A", b"\xc3\xa9", b"1")) * rng.choice(
                (4096, 65536, 300_000, 1 << 20))
        elif self.mode == "numeric":
            self.string = rng.choice(NUMERIC).encode()
        self.counts = rng.choice(((0, 1, 2, 3, 4, 5, 8), (0, 4, 5), (1, 1000), (0, 2)))
        self.share = rng.choice((0.0, 0.1, 0.5, 1.0))  # 0: one record
        if self.mode == "big":
            self.share = rng.choice((0.0, 0.0, 0.01))

    def one(self, rng: random.Random, kind: str, old: list[Field], i: int) -> int | bytes:
        if self.mode in ("big", "numeric"):
            return self.string
        if kind == "string":
            if self.mode == "unique":
                return f"u{i}-{rng.randrange(1 << 40)}".encode()
            return self.string if self.mode == "string" or rng.random() < 0.5 else \
                _odd_string(rng)
        if kind == "message":
            return old[0].value if old and isinstance(old[0].value, bytes) else b""
        if kind == "bytes":
            return _odd_string(rng) if rng.random() < 0.5 else \
                rng.randbytes(rng.choice((0, 1, 16, 1500)))
        if kind == "double":
            return struct.pack("<d", rng.choice((float("nan"), float("inf"), -1.0, 1e308,
                                                 -0.0, 5e-324)))
        prev = old[0].value if old and isinstance(old[0].value, int) else 0
        return _varint_value(rng, prev) if rng.random() < 0.7 else rng.choice(VARINTS)

    def values(self, rng: random.Random, f: Any, old: list[Field], i: int) -> list[Field]:
        kind = f.kind.value
        wt = _wire_type(f.kind)
        if self.mode == "drop":
            return []
        if self.mode == "wiretype":
            wt = rng.choice([w for w in (0, 1, 2, 5) if w != wt])
            value: int | bytes = rng.choice(VARINTS) if wt == 0 else (
                _odd_string(rng) if wt == 2 else rng.randbytes(8 if wt == 1 else 4))
            return [Field(f.number, wt, value)]
        n = rng.choice(self.counts) if self.mode == "count" else \
            (rng.choice((1, 1, 2, 3)) if f.repeated else 1)
        items = [self.one(rng, kind, old, i) for _ in range(n)]
        if f.repeated and wt != 2:  # packed, as proto3 writes repeated numbers
            packed = b"".join(uvarint(v) if isinstance(v, int) else v for v in items)
            return [Field(f.number, 2, packed)] if items else []
        return [Field(f.number, wt, v) for v in items]

    def apply(self, rng: random.Random, fields: list[Field], path: list[Any], i: int
              ) -> list[Field]:
        f = path[0]
        if len(path) > 1:  # into the nested record(s), made if absent
            subs = [x for x in fields if x.num == f.number and x.wt == 2]
            if not subs:
                subs = [Field(f.number, 2, b"")]
                fields = fields + subs
            for x in subs:
                assert isinstance(x.value, bytes)
                x.value = encode_message(self.apply(rng, parse_message(x.value) or [],
                                                    path[1:], i))
            return fields
        old = [x for x in fields if x.num == f.number]
        return [x for x in fields if x.num != f.number] + self.values(rng, f, old, i)


def schema_edit(rng: random.Random, rtype: str, recs: list[bytes]) -> str:
    path = _field_path(rng, rtype)
    if not path or not recs:
        return "none"
    plan = _Plan(rng, path)
    picks = [rng.randrange(len(recs))] if not plan.share else \
        [i for i in range(len(recs)) if rng.random() < plan.share]
    size = sum(map(len, recs))
    for i in picks:
        fields = parse_message(recs[i])
        if fields is None:
            continue
        new = encode_message(plan.apply(rng, fields, path, i))
        size += len(new) - len(recs[i])
        if size > MAX_FILE:
            break
        recs[i] = new
    return f"schema-{plan.mode}-{'.'.join(f.name for f in path)}"


def mutate_ncap(rng: random.Random, data: bytes, others: Sequence[bytes], rtype: str = ""
                ) -> tuple[bytes, str]:
    """Mutate an audit-record stream: its records' fields, its records, its framing."""
    frames, rest = split_frames(data)
    if not frames:
        return data, "none"
    header, recs = frames[0], frames[1:]
    op = rng.choice(("schema", "schema", "schema", "schema", "fields", "fields", "mix",
                     "strings", "time", "records", "header", "framing", "framing", "alien",
                     "unique"))
    if op in ("schema", "fields", "strings", "time", "mix", "unique") and not recs:
        op = "header"
    name = op
    if op == "schema":
        name = schema_edit(rng, rtype, recs)
    elif op == "fields":
        picks = rng.sample(range(len(recs)), min(len(recs), rng.choice((1, 1, 3, 50))))
        for i in picks:
            fields = parse_message(recs[i])
            if fields is not None:
                name = mutate_fields(rng, fields)
                recs[i] = encode_message(fields)
    elif op == "mix":  # a repeated (or any) field repeated a different number of times
        nums = _field_nums(recs)
        if nums:
            num = rng.choice(nums)
            for i in range(min(len(recs), 200)):
                fields = parse_message(recs[i])
                if fields is None:
                    continue
                same = [f for f in fields if f.num == num]
                others_f = [f for f in fields if f.num != num]
                if not same:
                    continue
                n = rng.choice((0, 1, 1, 2, 3, 4, 5, 8))
                recs[i] = encode_message(others_f + [same[j % len(same)] for j in range(n)])
    elif op in ("strings", "unique"):
        nums = [n for n in _field_nums(recs)
                if any(f.num == n and f.wt == 2 for f in parse_message(recs[0]) or ())]
        if nums:
            num = rng.choice(nums)
            big = _odd_string(rng)
            every = rng.random() < 0.3
            for i in range(len(recs)):
                if op == "strings" and not every and rng.random() > 0.1:
                    continue
                fields = parse_message(recs[i])
                if fields is None:
                    continue
                value = f"x{i}-{rng.randrange(1 << 30)}".encode() if op == "unique" else big
                for f in fields:
                    if f.num == num and f.wt == 2:
                        f.value = value
                recs[i] = encode_message(fields)
                if sum(map(len, recs)) > MAX_FILE:
                    break
    elif op == "time":
        picks = [rng.randrange(len(recs))] if rng.random() < 0.7 else list(range(len(recs)))
        extreme = rng.choice(TIMES)
        for i in picks:
            fields = parse_message(recs[i])
            if fields is None:
                continue
            for f in fields:
                if f.wt == 0 and isinstance(f.value, int) and f.value > 10**17:
                    f.value = extreme if rng.random() < 0.8 else _varint_value(rng, f.value)
            recs[i] = encode_message(fields)
    elif op == "records":
        spans = units("ncap", join_frames(recs))
        body, name = _reorder(rng, join_frames(recs), spans, 0) if spans else (b"", "none")
        recs, _ = split_frames(body)
        if rng.random() < 0.2:
            header = rng.choice((b"", header + header, recs[0] if recs else b""))
            name = "header-gone"
    elif op == "header":
        fields = parse_message(header) or []
        which = rng.random()
        if which < 0.4:
            fields = [f for f in fields if f.num != 3] + [Field(3, 0, rng.choice(
                (0, 1, 2, 4, 99, 1000, U64, rng.randrange(0, 80))))]
        elif which < 0.6:
            fields.append(Field(rng.choice((2, 4)), 2, _odd_string(rng)))
        else:
            name = mutate_fields(rng, fields)
        header = encode_message(fields)
        name = "header-" + name
    elif op == "alien" and others:  # another file's records after this header, or its header
        o_frames, _ = split_frames(rng.choice(others))
        if o_frames:
            if rng.random() < 0.5:
                recs = recs[:rng.randrange(len(recs) + 1)] + o_frames[1:]
            else:
                header = o_frames[0]
    body = join_frames([header, *recs]) + (rest if rng.random() < 0.5 else b"")
    if op == "framing":
        spans = units("ncap", body)
        if spans:
            i, _ = rng.choice(spans)
            r = read_uvarint(body, i)
            assert r is not None
            n, j = r
            what = rng.random()
            if what < 0.5:
                new = uvarint(rng.choice((0, 1, n - 1, n + 1, n * 2, 1 << 26, 64 << 20,
                                          (64 << 20) + 1, 1 << 31, 1 << 63, U64)))
            elif what < 0.8:  # the same length in too many bytes (10 is the most)
                pad = rng.choice((1, 3, 9, 12))
                enc = bytearray(uvarint(n))
                enc[-1] |= 0x80
                new = bytes(enc) + b"\x80" * (pad - 1) + b"\x00"
            else:
                new = b"\xff" * rng.choice((1, 5, 10, 11))
                body = body[:i] + new
                return body, "ncap-framing-cut"
            body = body[:i] + new + body[j:]
    return body, "ncap-" + name


def mutate_gzip(rng: random.Random, gz: bytes, others: Sequence[bytes]) -> tuple[bytes, str]:
    b = bytearray(gz)
    op = rng.choice(("flip", "truncate", "trailer", "garbage", "member", "header", "empty"))
    if op == "flip" and len(b) > 18:
        _flip(rng, b, 10, len(b) - 8)
    elif op == "truncate":
        del b[rng.randrange(0, len(b) + 1):]
    elif op == "trailer" and len(b) >= 8:
        _set_value(rng, b, len(b) - 8, len(b))
    elif op == "garbage":
        b += rng.choice((b"\0" * 8, rng.randbytes(20), b"\x1f\x8b", b"\x1f\x8b\x08"))
    elif op == "member":
        b += gzip.compress(rng.choice(others) if others else b"x", mtime=0)
    elif op == "header" and len(b) > 10:
        b[3] = rng.choice((0x04, 0x08, 0x10, 0x1F, 0xE0))
        if rng.random() < 0.3:
            b[2] = rng.choice((0, 7, 9))
    else:
        b += gzip.compress(b"", mtime=0)
    return bytes(b), "gzip-" + op


def mutate(rng: random.Random, seed: Seed, others: Sequence[bytes]) -> tuple[bytes, list[str]]:
    """Stack 1-5 mutations on a seed's plain bytes."""
    data = seed.data
    names = []
    for _ in range(min(5, 1 + int(rng.expovariate(1.0)))):
        try:
            if seed.kind != "raw" and rng.random() < 0.75:
                if seed.kind == "pcap":
                    data, name = mutate_pcap(rng, data)
                elif seed.kind == "pcapng":
                    data, name = mutate_pcapng(rng, data, others)
                else:
                    data, name = mutate_ncap(rng, data, others, seed.rtype)
            else:
                data, name = generic(rng, data, others)
        except (struct.error, IndexError, ValueError) as e:  # a mutator met odd input:
            name = f"mutator-{type(e).__name__}"  # the mutation so far is kept
        names.append(name)
        data = data[:MAX_FILE]
    return data, names


# -- cases ----------------------------------------------------------------------------------

@dataclass
class Case:
    index: int
    command: str
    seed: Seed
    ops: list[str]
    args: list[str]  # `net` arguments, paths relative to the case's directory
    target: str  # the mutated file, relative to the case's directory
    plain: bytes  # its mutated bytes before gzip (when `gzipped`)
    gzipped: bool  # written as gzip(plain); else plain is written as is
    extra: dict[str, bytes] = field(default_factory=dict)  # unmutated sibling files

    def files(self, plain: bytes | None = None) -> dict[str, bytes]:
        data = self.plain if plain is None else plain
        out = dict(self.extra)
        out[self.target] = gzip.compress(data, compresslevel=1, mtime=0) if self.gzipped \
            else data
        return out


def _export_labels(rng: random.Random) -> list[str]:
    from netcap.metrics.families import FAMILIES

    fams = sorted((f for f in FAMILIES.values() if f.optional), key=lambda f: f.name)
    if not fams:
        return []
    fam = rng.choice(fams)
    return ["-labels", f"{fam.name}={','.join(fam.optional)}", "-series-budget",
            rng.choice(("5", "1000"))]


class Generator:
    """Case N from the seeds, the same on every run."""

    def __init__(self, seeds: Sequence[Seed], master: int, commands: Sequence[str]) -> None:
        self.master = master
        self.commands = list(commands)
        self.captures = [s for s in seeds if s.is_capture]
        by_type: dict[str, list[Seed]] = {}
        for s in seeds:
            if not s.is_capture:
                by_type.setdefault(s.rtype, []).append(s)
        self.ncap_types = sorted(by_type)
        self.ncaps = by_type
        self.groups: dict[str, list[Seed]] = {}
        for s in seeds:
            if s.group:
                self.groups.setdefault(s.group, []).append(s)

    def _pick(self, rng: random.Random, want_capture: bool) -> Seed:
        if want_capture and self.captures or not self.ncap_types:
            return rng.choice(self.captures)
        return rng.choice(self.ncaps[rng.choice(self.ncap_types)])

    def case(self, index: int) -> Case:
        rng = random.Random(f"{self.master}:{index}")
        command = self.commands[index % len(self.commands)]
        p_capture = {"capture": 0.93, "export": 0.5, "dump": 0.03}[command]
        seed = self._pick(rng, rng.random() < p_capture)
        same = [s for s in (self.captures if seed.is_capture else self.ncaps[seed.rtype])
                if s is not seed]
        others = [s.data for s in rng.sample(same, min(3, len(same)))]
        if not seed.is_capture and rng.random() < 0.2:  # another type's records
            alien = self._pick(rng, False)
            others.append(alien.data)
        plain, ops = mutate(rng, seed, others)
        gzipped = seed.gz
        target = "in/" + seed.filename
        case = Case(index, command, seed, ops, [], target, plain, gzipped)
        if seed.gz and rng.random() < 0.2:
            final, name = mutate_gzip(rng, gzip.compress(plain, compresslevel=1, mtime=0),
                                      others)
            case.plain, case.gzipped = final, False
            ops.append(name)
        case.args = self._args(rng, case)
        return case

    def _args(self, rng: random.Random, case: Case) -> list[str]:
        t = case.target
        if case.command == "capture":
            args = ["capture", "-read", t, "-out", "out", "-workers", "1"]
            for flag, p in (("-compress=false", 0.3), ("-payload", 0.2), ("-entropy", 0.2),
                            ("-quiet", 0.2)):
                if rng.random() < p:
                    args.append(flag)
            if rng.random() < 0.1:
                args += ["-max-flows", "2"]
            return args
        if case.command == "dump":
            return ["dump", "-read", t, *rng.choice(([], [], ["-json"], ["-csv"], ["-header"],
                                                      ["-json", "-header"]))]
        args = ["export", "-exit", "-address", "127.0.0.1:0", "-workers", "1"]
        if case.seed.is_capture or rng.random() < 0.5:
            args += ["-read", t]
        else:
            args += ["in"] if rng.random() < 0.6 else ["-dir", "in"]
            if rng.random() < 0.4:  # with the other audit-record files of the same capture
                for s in self.groups.get(case.seed.group, []):
                    if s.rtype != case.seed.rtype:
                        case.extra["in/" + s.filename] = (
                            gzip.compress(s.data, compresslevel=1, mtime=0) if s.gz else s.data)
        if rng.random() < 0.2:
            args.append("-entropy")
        if rng.random() < 0.15:
            args += ["-out", "out"]
        if rng.random() < 0.2:
            args += ["-backfill", "metrics.om", "-step", rng.choice(("1s", "15s", "1h"))]
        if rng.random() < 0.05:
            args += ["-max-flows", "2"]
        if rng.random() < 0.02:  # (a jump to 2106 is then a wait of an hour)
            args += ["-replay", "-speed", "1000000"]
        if rng.random() < 0.1:
            args += _export_labels(rng)
        return args


# -- running ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    status: int | None  # exit status; None when ended by a signal
    signal: int | None
    timed_out: bool
    seconds: float
    maxrss: int  # bytes, peak resident set (wait4)
    vmpeak: int  # bytes, peak address space (fork server only; 0 if unknown)
    stderr: str


@dataclass
class Running:
    pid: int
    pidfd: int
    workdir: Path
    started: float
    deadline: float
    payload: Any = None
    aborted: bool = False
    kill_at: float = 0.0


def net_main(argv: list[str]) -> int:
    """What the `net` script (netcap.cli:run) does before its os._exit."""
    from netcap import cli

    cli.tune_gc()
    return cli.main(argv)


def preload() -> None:
    """Import every netcap module once, in the fork server (the children share them)."""
    import netcap

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as netcap.cli sets it
    importlib.import_module("netcap.cli")
    for m in pkgutil.walk_packages(netcap.__path__, "netcap."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _vm(field_name: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Runner:
    """Runs `net` cases as children of this process: forked (calling `entry`) or exec'd."""

    def __init__(self, entry: Entry | None = net_main, net: str | None = None,
                 mem_limit: int = GiB, timeout: float = 10.0) -> None:
        self.entry = entry
        self.net = net
        self.mem_limit = mem_limit
        self.timeout = timeout
        self.grace = 2.0  # from SIGABRT (stack dump) to SIGKILL

    def start(self, args: list[str], workdir: Path, timeout: float | None = None,
              payload: Any = None) -> Running:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(args, workdir)
        with contextlib.suppress(OSError):  # the child did it first (or is gone)
            os.setpgid(pid, pid)
        now = time.monotonic()
        return Running(pid, os.pidfd_open(pid), workdir, now,
                       now + (timeout or self.timeout), payload)

    def _child(self, args: list[str], workdir: Path) -> NoReturn:
        code = 70
        try:
            os.setpgid(0, 0)
            for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGALRM, signal.SIGABRT,
                        signal.SIGUSR1, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN if self.net is None else signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            # The case's own address space: a forked child starts with the fork server's
            # (a test runner's grows with every thread that ran in it: glibc reserves
            # 64 MiB of address space per malloc arena, up to 8 per core), an exec'd one
            # with none.
            limit = self.mem_limit + (_vm("VmSize") if self.net is None else 0)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.chdir(workdir)
            for fd, name, flags in ((0, os.devnull, os.O_RDONLY),
                                    (1, ".stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                    (2, ".stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                f = os.open(name, flags, 0o644)
                os.dup2(f, fd)
                os.close(f)
            if self.net is not None:
                env = dict(os.environ, PYTHONFAULTHANDLER="1")
                os.execve(self.net, ["net", *args], env)
            # stdout and stderr as `net` has them on files (not a test runner's capture):
            # stdout block-buffered, stderr line-buffered, encoding and errors as here
            real = sys.__stdout__
            sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                          encoding=real.encoding if real else "utf-8",
                                          errors=real.errors if real else "strict")
            sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                          encoding=real.encoding if real else "utf-8",
                                          errors="backslashreplace", line_buffering=True)
            faulthandler.disable()  # (re-)install its handlers, reset above if it was on
            faulthandler.enable(file=sys.stderr, all_threads=True)
            sys.argv = ["net", *args]
            assert self.entry is not None
            try:
                code = _exit_status(self.entry(list(args)))
            except SystemExit as e:
                code = _exit_status(e.code)
            except BaseException:  # what the interpreter does with an uncaught exception
                traceback.print_exc()
                code = 1
            with contextlib.suppress(BrokenPipeError):
                sys.stdout.flush()
            sys.stderr.flush()
            Path(".vm").write_text(str(_vm("VmPeak")))
        except BaseException:
            try:
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        os._exit(code)

    def poll(self, running: list[Running], wait: float) -> list[tuple[Running, Outcome]]:
        """Wait up to `wait` seconds for cases to end; kill those past their deadline."""
        now = time.monotonic()
        for r in running:
            if not r.aborted and now >= r.deadline:
                r.aborted, r.kill_at = True, now + self.grace
                _signal(r.pid, signal.SIGABRT, group=False)
            elif r.aborted and now >= r.kill_at:
                _signal(r.pid, signal.SIGKILL, group=True)
                r.kill_at = now + 1.0
        wake = min([r.kill_at if r.aborted else r.deadline for r in running] + [now + wait])
        ready, _, _ = select.select([r.pidfd for r in running], [], [], max(0.0, wake - now))
        done = []
        for r in running:
            if r.pidfd in ready:
                done.append((r, self._reap(r)))
        return done

    def _reap(self, r: Running) -> Outcome:
        _, status, usage = os.wait4(r.pid, 0)
        seconds = time.monotonic() - r.started
        os.close(r.pidfd)
        _signal(r.pid, signal.SIGKILL, group=True)  # anything it left behind in its group
        try:
            with open(r.workdir / ".stderr", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - STDERR_KEEP))
                err = f.read().decode("utf-8", "replace")
        except OSError:
            err = ""
        try:
            vmpeak = int((r.workdir / ".vm").read_text())
        except (OSError, ValueError):
            vmpeak = 0
        return Outcome(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
                       os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                       r.aborted, seconds, usage.ru_maxrss * 1024, vmpeak, err)

    def run(self, args: list[str], workdir: Path, timeout: float | None = None) -> Outcome:
        r = self.start(args, workdir, timeout)
        while True:
            for _, outcome in self.poll([r], 1.0):
                return outcome


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- verdicts --------------------------------------------------------------------------------

FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+),? in (\S+)')


@dataclass(frozen=True)
class Verdict:
    kind: str  # ok, traceback, exit, hang, memory, crash
    key: str  # the bucket within a command and kind: exception and project frame
    detail: str = ""  # the exception's message, or what was seen

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def _project_frame(path: str, line: str, func: str) -> str | None:
    p = Path(path)
    if not p.is_absolute():  # "<string>", "<frozen ...>"
        return None
    try:
        rel = p.resolve().relative_to(REPO)
    except ValueError:
        return None
    if rel.parts[:1] == (".venv",) or p.name == "mutfuzz.py":
        return None
    return f"{rel}:{line} {func}"


def parse_traceback(err: str) -> tuple[str, str, str]:
    """Exception type, innermost project frame and message of the last traceback."""
    lines = err.splitlines()
    starts = [i for i, s in enumerate(lines) if s.startswith("Traceback (most recent call")]
    if not starts:
        return "", "", ""
    frame = ""
    exc, msg = "?", ""
    for s in lines[starts[-1] + 1:]:
        m = FRAME.match(s)
        if m:
            frame = _project_frame(*m.groups()) or frame
        elif s and not s[0].isspace():
            exc, _, msg = s.partition(":")
            break
    return exc.strip(), frame, msg.strip()


def parse_stack_dump(err: str) -> str:
    """The innermost project frame of the main thread in a faulthandler dump (which
    lists the most recent call first)."""
    blocks: list[list[str]] = []
    for s in err.splitlines():
        if s.startswith(("Thread 0x", "Current thread 0x")):
            blocks.append([])
        elif blocks:
            blocks[-1].append(s)
    main = [b for b in blocks if any("netcap/cli.py" in s and " in main" in s for s in b)]
    for block in main or blocks:
        for s in block:
            m = FRAME.match(s)
            if m:
                frame = _project_frame(*m.groups())
                if frame:
                    return re.sub(r":\d+ ", " ", frame)  # where, not which line of a loop
    return "?"


def classify(o: Outcome, mem_limit: int) -> Verdict:
    if o.timed_out:
        return Verdict("hang", parse_stack_dump(o.stderr), f"killed after {o.seconds:.1f}s")
    exc, frame, msg = parse_traceback(o.stderr)
    if "MemoryError" in exc or o.maxrss > mem_limit:
        return Verdict("memory", f"{exc or 'rss'} @ {frame or '?'}",
                       msg or f"peak RSS {o.maxrss >> 20} MiB")
    if exc:
        return Verdict("traceback", f"{exc} @ {frame or '?'}", msg[:300])
    if o.signal is not None:
        return Verdict("crash", signal.Signals(o.signal).name, o.stderr[-300:])
    if o.status == 3:
        last = (o.stderr.strip().splitlines() or [""])[-1]
        return Verdict("traceback", "exit 3: " + re.sub(r"\d+", "N", last)[:120], last)
    if o.status not in (0, 1, 2):
        return Verdict("exit", f"exit {o.status}", o.stderr[-300:])
    if "Exception in thread" in o.stderr:
        return Verdict("traceback", "thread exception", o.stderr[-300:])
    return Verdict("ok", "")


# -- campaign ----------------------------------------------------------------------------------

@dataclass
class Config:
    cases: int = 1000
    seconds: float = 0.0  # 0: no time limit
    jobs: int = 1
    timeout: float = 10.0
    confirm_timeout: float = 60.0  # a hang is run again this long, once per bucket
    mem_limit: int = GiB
    seed: int = 0
    start: int = 0
    commands: tuple[str, ...] = COMMANDS
    out: Path = OUT
    capture_seeds: list[Path] | None = None  # default: capture_paths()
    ncap_from: int = 0  # captures made into audit-record seeds (0: all)
    minimize_seconds: float = 60.0
    subprocess: bool = False
    net: str = str(Path(sys.executable).parent / "net")
    workdir: Path | None = None
    quiet: bool = False


@dataclass
class Bucket:
    command: str
    verdict: Verdict
    first: int
    count: int = 0
    path: str = ""
    confirmed: str = ""


@dataclass
class Summary:
    cases: Counter[str] = field(default_factory=Counter)  # per command
    verdicts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (command, kind)
    buckets: dict[tuple[str, str, str], Bucket] = field(default_factory=dict)
    busy: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # run seconds
    maxrss: Counter[str] = field(default_factory=Counter)  # bytes, of ok runs
    vmpeak: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    seed_seconds: float = 0.0
    seeds: dict[str, int] = field(default_factory=dict)

    @property
    def findings(self) -> int:
        return sum(n for (_, k), n in self.verdicts.items() if k != "ok")

    def table(self) -> str:
        kinds = ("ok", "traceback", "exit", "hang", "memory", "crash")
        rows: list[tuple[str, ...]] = [("command", "cases", *kinds, "cases/s", "max RSS", "max VM")]
        for c in sorted(self.cases):
            rows.append((c, str(self.cases[c]), *(str(self.verdicts[c, k]) for k in kinds),
                         f"{self.cases[c] / self.busy[c]:.1f}" if self.busy[c] else "-",
                         f"{self.maxrss[c] >> 20} MiB", f"{self.vmpeak[c] >> 20} MiB"))
        total = sum(self.cases.values())
        rows.append(("all", str(total),
                     *(str(sum(self.verdicts[c, k] for c in self.cases)) for k in kinds),
                     f"{total / self.seconds:.1f}" if self.seconds else "-", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out = ["  ".join(s.rjust(w) if i else s.ljust(w) for i, (s, w) in
                         enumerate(zip(r, widths, strict=True))) for r in rows]
        out.append(f"({total} cases in {self.seconds:.0f}s after {self.seed_seconds:.0f}s of"
                   f" seed building; seeds: " + ", ".join(f"{k} {v}" for k, v in
                                                          sorted(self.seeds.items())) + ")")
        if self.buckets:
            out.append("findings (bucket: cases, first case, reproducer):")
            for b in sorted(self.buckets.values(), key=lambda b: (b.command, b.verdict.kind)):
                out.append(f"  {b.command} {b.verdict.kind} {b.verdict.key}: {b.count},"
                           f" #{b.first}{' ' + b.confirmed if b.confirmed else ''}"
                           f" -> {b.path}")
                if b.verdict.detail:
                    out.append(f"      {b.verdict.detail.splitlines()[0][:150]}")
        return "\n".join(out)


def _write(workdir: Path, files: dict[str, bytes], clean: bool = True) -> None:
    if clean and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        p = workdir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def build_ncap_seeds(cfg: Config, runner: Runner, captures: Sequence[Seed],
                     base: Path, summary: Summary) -> list[Seed]:
    """Audit-record files made by `net capture` from the captures (every other one plain,
    every third with payloads and entropy)."""
    chosen = [s for s in captures if s.kind != "raw"]
    if cfg.ncap_from:
        step = max(1, len(chosen) // cfg.ncap_from)
        chosen = chosen[::step][:cfg.ncap_from]
    seeds: list[Seed] = []
    for i, cap in enumerate(chosen):
        workdir = base / "seed"
        _write(workdir, {"in/" + cap.filename: cap.data})
        args = ["capture", "-read", "in/" + cap.filename, "-out", "out", "-workers", "1",
                "-quiet"]
        if i % 2:
            args.append("-compress=false")
        if i % 3 == 0:
            args += ["-payload", "-entropy"]
        o = runner.run(args, workdir, timeout=max(cfg.confirm_timeout, cfg.timeout))
        v = classify(o, cfg.mem_limit)
        summary.maxrss["seed capture"] = max(summary.maxrss["seed capture"], o.maxrss)
        summary.vmpeak["seed capture"] = max(summary.vmpeak["seed capture"], o.vmpeak)
        if not v.ok:
            _log(cfg, f"seed capture of {cap.name}: {v.kind} {v.key}")
            continue
        for p in sorted((workdir / "out").glob("*.ncap*")):
            raw = p.read_bytes()
            gz = p.name.endswith(".gz")
            data = gzip.decompress(raw) if gz else raw
            if len(data) <= MAX_FILE:
                seeds.append(Seed(f"{cap.name} -> {p.name}", "ncap", data, gz,
                                  p.name.split(".")[0], cap.name))
    return seeds


def _log(cfg: Config, text: str) -> None:
    if not cfg.quiet:
        print(text, file=sys.stderr, flush=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:110]


class Campaign:
    def __init__(self, cfg: Config, entry: Entry | None = net_main) -> None:
        self.cfg = cfg
        net = cfg.net if cfg.subprocess else None
        self.runner = Runner(None if net else entry, net, cfg.mem_limit, cfg.timeout)
        # seeds are made by the real `net` whatever runs the cases (a test plants bugs there)
        self.seed_runner = Runner(None if net else net_main, net, cfg.mem_limit, cfg.timeout)
        self.summary = Summary()
        self._own_workdir = cfg.workdir is None
        shm = Path("/dev/shm")
        self.base = cfg.workdir or Path(tempfile.mkdtemp(
            prefix="mutfuzz-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
        self.gen: Generator | None = None

    def close(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.base, ignore_errors=True)

    def build_seeds(self) -> list[Seed]:
        t0 = time.monotonic()
        if not self.cfg.subprocess:
            preload()
        caps = load_captures(self.cfg.capture_seeds if self.cfg.capture_seeds is not None
                             else capture_paths())
        ncaps = build_ncap_seeds(self.cfg, self.seed_runner, caps, self.base, self.summary)
        seeds = caps + ncaps
        self.summary.seeds = dict(Counter(s.kind + (".gz" if s.gz else "") for s in seeds))
        self.summary.seed_seconds = time.monotonic() - t0
        self.gen = Generator(seeds, self.cfg.seed, self.cfg.commands)
        return seeds

    def run(self) -> Summary:
        cfg = self.cfg
        if self.gen is None:
            self.build_seeds()
        assert self.gen is not None
        cfg.out.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        last_note = t0
        running: list[Running] = []
        free = [self.base / f"job{j}" for j in range(max(1, cfg.jobs))]
        index = cfg.start
        stopping = False
        # Ctrl-C or SIGTERM end the campaign with its summary (a background job started
        # by a shell without job control has SIGINT ignored: set it here).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.default_int_handler)
        try:
            while True:
                now = time.monotonic()
                out_of_time = bool(cfg.seconds) and now - t0 >= cfg.seconds
                while (not stopping and not out_of_time and free
                       and index < cfg.start + cfg.cases):
                    case = self.gen.case(index)
                    index += 1
                    workdir = free.pop()
                    _write(workdir, case.files())
                    running.append(self.runner.start(case.args, workdir, payload=case))
                if not running:
                    break
                for r, outcome in self.runner.poll(running, 1.0):
                    running.remove(r)
                    self._record(r.payload, outcome)
                    free.append(r.workdir)
                if now - last_note > 60:
                    last_note = now
                    done = sum(self.summary.cases.values())
                    _log(cfg, f"{done} cases, {done / (now - t0):.1f}/s,"
                              f" {self.summary.findings} findings in"
                              f" {len(self.summary.buckets)} buckets")
        except KeyboardInterrupt:
            for r in running:
                _signal(r.pid, signal.SIGKILL, group=True)
                os.waitpid(r.pid, 0)
            _log(cfg, "interrupted")
        self.summary.seconds = time.monotonic() - t0
        (cfg.out / "summary.txt").write_text(self.summary.table() + "\n")
        return self.summary

    def _record(self, case: Case, o: Outcome) -> None:
        s = self.summary
        v = classify(o, self.cfg.mem_limit)
        s.cases[case.command] += 1
        s.verdicts[case.command, v.kind] += 1
        s.busy[case.command] += o.seconds
        if v.ok:
            s.maxrss[case.command] = max(s.maxrss[case.command], o.maxrss)
            s.vmpeak[case.command] = max(s.vmpeak[case.command], o.vmpeak)
            return
        key = (case.command, v.kind, v.key)
        bucket = s.buckets.get(key)
        if bucket is None:
            bucket = s.buckets[key] = Bucket(case.command, v, case.index)
            _log(self.cfg, f"#{case.index} {case.command} {v.kind} {v.key}  [{case.seed.name};"
                           f" {' '.join(case.ops)}]")
            self._save(bucket, case, o)
        bucket.count += 1

    def _save(self, bucket: Bucket, case: Case, o: Outcome) -> None:
        """The first case of a bucket, and the smallest input found that still lands in it."""
        cfg = self.cfg
        v = bucket.verdict
        where = cfg.out / _slug(f"{case.command}-{v.kind}-{v.key}")
        if where.exists():
            shutil.rmtree(where)
        _write(where / "original", case.files())
        (where / "original" / "stderr.txt").write_text(o.stderr)
        plain, o2 = case.plain, o
        if v.kind == "hang":
            o2 = self.runner.run(case.args, self._scratch(case, plain), cfg.confirm_timeout)
            bucket.confirmed = (f"(still running at {cfg.confirm_timeout:.0f}s)"
                                if o2.timed_out else f"(ends in {o2.seconds:.1f}s)")
            o2 = o
        elif cfg.minimize_seconds > 0:
            plain, o2 = self._minimize(case, key=(v.kind, v.key), outcome=o)
        _write(where, case.files(plain), clean=False)
        (where / "stderr.txt").write_text(o2.stderr)
        (where / "cmd.txt").write_text(f"# from this directory (in/ is the input; `net` is"
                                       f" .venv/bin/net)\nnet {' '.join(case.args)}\n")
        (where / "info.json").write_text(json.dumps({
            "case": case.index, "master_seed": cfg.seed, "command": case.command,
            "verdict": v.kind, "key": v.key, "detail": v.detail, "seed": case.seed.name,
            "ops": case.ops, "args": case.args, "status": o.status, "signal": o.signal,
            "seconds": round(o.seconds, 3), "maxrss_mib": o.maxrss >> 20,
            "size": len(case.files()[case.target]), "minimized_size":
                len(case.files(plain)[case.target]), "confirmed": bucket.confirmed,
        }, indent=1) + "\n")
        try:
            bucket.path = str(where.relative_to(REPO))
        except ValueError:
            bucket.path = str(where)

    def _scratch(self, case: Case, plain: bytes) -> Path:
        workdir = self.base / "min"
        _write(workdir, case.files(plain))
        return workdir

    def _minimize(self, case: Case, key: tuple[str, str], outcome: Outcome
                  ) -> tuple[bytes, Outcome]:
        """Cut the mutated bytes down while the case stays in its bucket: whole units
        (records, blocks) first, then byte ranges; bounded by --minimize-seconds."""
        end = time.monotonic() + self.cfg.minimize_seconds
        best, best_o = case.plain, outcome
        kind = "raw" if case.seed.gz and not case.gzipped else case.seed.kind  # gzip bytes

        def same(data: bytes) -> bool:
            nonlocal best_o
            if time.monotonic() > end:
                return False
            o = self.runner.run(case.args, self._scratch(case, data))
            v = classify(o, self.cfg.mem_limit)
            if (v.kind, v.key) == key:
                best_o = o
                return True
            return False

        spans = units(kind, best)
        chunk = max(1, len(spans) // 2)
        while spans and chunk >= 1 and time.monotonic() < end:
            i = len(spans) - chunk
            changed = False
            while i >= 0 and time.monotonic() < end:
                lo, hi = spans[i][0], spans[min(i + chunk, len(spans)) - 1][1]
                cand = best[:lo] + best[hi:]
                if same(cand):
                    best, changed = cand, True
                    spans = units(kind, best)
                i -= chunk
            if not changed:
                chunk //= 2
        chunk = max(1, len(best) // 2)
        while chunk >= 1 and time.monotonic() < end:
            i = len(best) - chunk
            changed = False
            while i >= 0 and time.monotonic() < end:
                cand = best[:i] + best[i + chunk:]
                if same(cand):
                    best, changed = cand, True
                i -= chunk
            if not changed:
                chunk //= 2
        return best, best_o


def confirm(where: Path, cfg: Config) -> tuple[Verdict, Outcome]:
    """Run a saved reproducer with the installed `net` program."""
    info = json.loads((where / "info.json").read_text())
    workdir = Path(tempfile.mkdtemp(prefix="mutfuzz-confirm-"))
    try:
        shutil.copytree(where / "in", workdir / "in")
        runner = Runner(None, cfg.net, cfg.mem_limit, cfg.timeout)
        o = runner.run(info["args"], workdir)
        return classify(o, cfg.mem_limit), o
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--cases", type=int, default=1000, help="cases to run (default 1000)")
    p.add_argument("--seconds", type=float, default=0, help="stop starting cases after this")
    p.add_argument("--jobs", type=int, default=1, help="cases at once (default 1)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds a case may run")
    p.add_argument("--mem-limit", type=float, default=1.0, help="GiB of address space a case"
                   " may add to the fork server's (RLIMIT_AS; default 1)")
    p.add_argument("--seed", type=int, default=0, help="master seed of the mutations")
    p.add_argument("--start", type=int, default=0, help="number of the first case")
    p.add_argument("--commands", default=",".join(COMMANDS), help="capture,export,dump")
    p.add_argument("--out", type=Path, default=OUT, help=f"reproducers (default {OUT})")
    p.add_argument("--ncap-from", type=int, default=0,
                   help="captures turned into audit-record seeds (default all)")
    p.add_argument("--minimize-seconds", type=float, default=60.0)
    p.add_argument("--subprocess", action="store_true",
                   help="exec the installed `net` for each case instead of forking")
    p.add_argument("--net", default=str(Path(sys.executable).parent / "net"))
    p.add_argument("--confirm", type=Path, nargs="*", metavar="BUCKET_DIR",
                   help="run saved reproducers with the installed `net` and classify them")
    p.add_argument("--print-case", type=int, metavar="N", help="write case N into --out/caseN")
    a = p.parse_args(argv)
    cfg = Config(cases=a.cases, seconds=a.seconds, jobs=max(1, a.jobs), timeout=a.timeout,
                 mem_limit=int(a.mem_limit * GiB), seed=a.seed, start=a.start,
                 commands=tuple(c for c in a.commands.split(",") if c in COMMANDS),
                 out=a.out, ncap_from=a.ncap_from, minimize_seconds=a.minimize_seconds,
                 subprocess=a.subprocess, net=a.net)
    if a.confirm is not None:
        bad = 0
        for where in a.confirm:
            v, o = confirm(where, cfg)
            bad += not v.ok
            print(f"{where}: {v.kind} {v.key} (exit {o.status}, signal {o.signal},"
                  f" {o.seconds:.2f}s, {o.maxrss >> 20} MiB)")
        return 1 if bad else 0
    camp = Campaign(cfg)
    try:
        camp.build_seeds()
        if a.print_case is not None:
            assert camp.gen is not None
            case = camp.gen.case(a.print_case)
            _write(cfg.out / f"case{a.print_case}", case.files())
            print(f"{cfg.out / f'case{a.print_case}'}: net {' '.join(case.args)}"
                  f"  [{case.seed.name}; {' '.join(case.ops)}]")
            return 0
        summary = camp.run()
    finally:
        camp.close()
    print(summary.table())
    return 1 if summary.findings else 0


if __name__ == "__main__":
    sys.exit(main())
