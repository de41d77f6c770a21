"""Build a large, deterministic benchmark pcap from the real captures in the test corpus.

The output is a classic pcap (little-endian, microsecond timestamps, LINKTYPE_ETHERNET).
It cycles through every complete Ethernet IPv4/IPv6 packet of the corpus captures; in cycle k
the low 16 bits of every IPv4/IPv6 source and destination address are increased by k (mod
2**16), so each cycle carries distinct flows, and timestamps are shifted so that time never
goes backwards. Checksums are updated incrementally (RFC 1624) for the address change: IPv4
header checksums are always valid (recomputed once for the source packets); TCP, UDP and
ICMPv6 checksums are valid exactly when they were valid in the source capture (many captures
carry offloaded, wrong checksums).

Usage: python bench/make_bench_pcap.py [-n PACKETS] [-o OUT] [--corpus DIR]
The default corpus is the public one (NETCAP_CORPUS, default ../shared/corpus), the captures
listed in tests/data/corpus_files.tsv.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import os
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent


def _corpus_settings() -> ModuleType:
    """tests/corpus.py, the one place that says where the public test corpus is
    (NETCAP_CORPUS, default ../shared/corpus) and which of its captures are used."""
    path = ROOT / "tests" / "corpus.py"
    spec = importlib.util.spec_from_file_location("netcap_test_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_CORPUS = _corpus_settings()
DEFAULT_CORPUS: Path = _CORPUS.PCAPS
DEFAULT_OUT = ROOT / "bench" / "out" / "bench.pcap"
DEFAULT_PACKETS = 1_000_000

LINKTYPE_ETHERNET = 1
ETH_LEN = 14
BASE_TS_US = 1_704_067_200 * 1_000_000  # 2024-01-01T00:00:00Z
MAX_GAP_US = 1_000_000  # gaps inside one source capture are clamped to [0, 1 s]
FILE_GAP_US = 1_000  # gap between source captures and between cycles
SNAPLEN = 262_144
CHUNK_BYTES = 64 << 20  # cycles are built this many bytes at a time

# Source captures whose name says they are cut, damaged or synthetic parser tests are not
# used: only well-formed real traffic goes into the bench file, whichever reader is used.
SKIP_NAME_PARTS = (
    "trunc",
    "cut",
    "damaged",
    "malformed",
    "invalid",
    "err",
    "too-long",
    "modified",
    "pcapngtg_",
)

# Captures listed in tests/data/corpus_files.tsv after the bench was fixed: left out, so
# the bench file (and every figure measured on it) stays the same.
LISTED_LATER = frozenset({"zeek_communityid_sctp.pcap", "sv_sctp-keywords.pcap"})

Reader = str  # "auto" | "builtin" | "netcap"


@dataclass(frozen=True, slots=True)
class SourcePacket:
    ts_ns: int
    data: bytes
    wirelen: int
    linktype: int


@dataclass(frozen=True, slots=True)
class Template:
    """One cycle of the bench file, before per-cycle patching."""

    records: npt.NDArray[np.uint8]  # pcap records (16-byte header + data), ts fields zero
    rec_off: npt.NDArray[np.int64]  # start of record i in `records`
    ts_rel_us: npt.NDArray[np.int64]  # timestamp of packet i relative to the cycle start
    cycle_us: int  # time one cycle advances the clock
    addr_pos: npt.NDArray[np.int64]  # (A, 2): src/dst low-word byte positions per IP packet
    addr_word: npt.NDArray[np.int64]  # (A, 2): the original src/dst low words
    ck_pos: npt.NDArray[np.int64]  # byte position of each checksum field to adjust
    ck_val: npt.NDArray[np.int64]  # its (template) value
    ck_addr: npt.NDArray[np.int64]  # row of addr_pos/addr_word whose change it covers
    ck_udp: npt.NDArray[np.bool_]  # UDP checksum: 0 stays 0, a result of 0 becomes 0xFFFF
    ck_words: npt.NDArray[np.int64]  # (K, 2): 1 where the src/dst low word is covered
    files: tuple[str, ...]  # source captures that contributed packets

    def __len__(self) -> int:
        return int(self.rec_off.shape[0])


@dataclass(frozen=True, slots=True)
class BuildStats:
    packets: int
    bytes: int
    cycles: int
    source_packets: int
    source_files: int
    seconds: float


# --------------------------------------------------------------------------- reading


def _maybe_gunzip(raw: bytes) -> bytes:
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def _read_pcap(buf: bytes) -> Iterator[SourcePacket]:
    magic = buf[:4]
    formats = {
        b"\xd4\xc3\xb2\xa1": ("<", 1000),
        b"\xa1\xb2\xc3\xd4": (">", 1000),
        b"\x4d\x3c\xb2\xa1": ("<", 1),
        b"\xa1\xb2\x3c\x4d": (">", 1),
    }
    if magic not in formats or len(buf) < 24:
        raise ValueError("not a pcap file")
    end, frac_ns = formats[magic]
    major, _minor, _zone, _sigfigs, _snap, network = struct.unpack_from(end + "HHiIII", buf, 4)
    if major != 2:
        raise ValueError(f"pcap major version {major}")
    linktype = network & 0xFFFF
    pos = 24
    rec = struct.Struct(end + "IIII")
    while pos < len(buf):
        if pos + 16 > len(buf):
            raise ValueError("cut record header")
        sec, frac, caplen, wirelen = rec.unpack_from(buf, pos)
        pos += 16
        if caplen > SNAPLEN or pos + caplen > len(buf):
            raise ValueError("cut or oversized record")
        yield SourcePacket(
            sec * 1_000_000_000 + frac * frac_ns, buf[pos : pos + caplen], wirelen, linktype
        )
        pos += caplen


def _tsresol_to_ns(units: int, resol: int) -> int:
    if resol & 0x80:
        return (units * 1_000_000_000) >> (resol & 0x7F)
    scale = int(10 ** abs(9 - resol))
    return units * scale if resol <= 9 else units // scale


def _read_pcapng(buf: bytes) -> Iterator[SourcePacket]:
    """Enhanced Packet Blocks only (Simple/obsolete Packet Blocks carry no usable time)."""
    end = "<"
    ifaces: list[tuple[int, int, int]] = []  # linktype, tsresol, tsoffset (s)
    pos = 0
    while pos < len(buf):
        if pos + 12 > len(buf):
            raise ValueError("cut block header")
        if buf[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            bom = buf[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                end = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                end = ">"
            else:
                raise ValueError("bad byte-order magic")
            ifaces = []
        btype, blen = struct.unpack_from(end + "II", buf, pos)
        if blen < 12 or blen % 4 or pos + blen > len(buf):
            raise ValueError("bad block length")
        body = buf[pos + 8 : pos + blen - 4]
        if btype == 1:  # Interface Description Block
            linktype = struct.unpack_from(end + "H", body, 0)[0]
            resol, offset = 6, 0
            opos = 8
            while opos + 4 <= len(body):
                code, olen = struct.unpack_from(end + "HH", body, opos)
                if code == 0:
                    break
                val = body[opos + 4 : opos + 4 + olen]
                if code == 9 and olen == 1:
                    resol = val[0]
                elif code == 14 and olen == 8:
                    offset = struct.unpack(end + "q", val)[0]
                opos += 4 + (olen + 3) // 4 * 4
            ifaces.append((linktype, resol, offset))
        elif btype == 6:  # Enhanced Packet Block
            iface, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(end + "IIIII", body, 0)
            if iface >= len(ifaces) or 20 + caplen > len(body):
                raise ValueError("bad enhanced packet block")
            linktype, resol, offset = ifaces[iface]
            ts_ns = _tsresol_to_ns((ts_hi << 32) | ts_lo, resol) + offset * 1_000_000_000
            yield SourcePacket(ts_ns, body[20 : 20 + caplen], wirelen, linktype)
        pos += blen


def _read_builtin(path: Path) -> list[SourcePacket]:
    buf = _maybe_gunzip(path.read_bytes())
    if buf[:4] == b"\x0a\x0d\x0d\x0a":
        return list(_read_pcapng(buf))
    return list(_read_pcap(buf))


def _read_netcap(path: Path) -> list[SourcePacket]:
    from netcap.sources.capture import open_capture

    out: list[SourcePacket] = []
    with open_capture(path) as reader:
        for batch in reader:
            for i in range(len(batch)):
                out.append(
                    SourcePacket(
                        int(batch.ts[i]),
                        batch.packet(i),
                        int(batch.wirelen[i]),
                        int(batch.linktype[i]),
                    )
                )
        if reader.truncation is not None:
            raise ValueError(f"{path}: {reader.truncation}")
    return out


def _netcap_reader_available() -> bool:
    try:
        import netcap.sources.capture as capture
    except ImportError:
        return False
    return hasattr(capture, "open_capture")


def read_source(path: Path, reader: Reader = "auto") -> list[SourcePacket] | None:
    """All packets of one capture, or None if it cannot be read completely."""
    if reader == "auto":
        reader = "netcap" if _netcap_reader_available() else "builtin"
    try:
        return _read_netcap(path) if reader == "netcap" else _read_builtin(path)
    except Exception:  # any unreadable capture is simply not used
        return None


# --------------------------------------------------------------------------- template


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _l4_checksum(pkt: bytes, ip_ver: int) -> tuple[int, bool, bool] | None:
    """Where a TCP/UDP/ICMPv6 checksum over the pseudo-header is: offset in `pkt`, whether
    it is UDP's, and whether the pseudo-header holds the destination address field (not so
    behind an IPv6 routing header with segments left: there it holds the final address)."""
    covers_dst = True
    if ip_ver == 4:
        ihl = (pkt[ETH_LEN] & 0x0F) * 4
        frag = struct.unpack_from("!H", pkt, ETH_LEN + 6)[0] & 0x1FFF
        if frag:
            return None
        proto, l4 = pkt[ETH_LEN + 9], ETH_LEN + ihl
    else:
        proto, l4 = pkt[ETH_LEN + 6], ETH_LEN + 40
        while True:
            if proto in (0, 60) and l4 + 8 <= len(pkt):  # hop-by-hop, destination options
                proto, l4 = pkt[l4], l4 + (pkt[l4 + 1] + 1) * 8
            elif proto == 43 and l4 + 8 <= len(pkt):  # routing
                covers_dst = covers_dst and pkt[l4 + 3] == 0
                proto, l4 = pkt[l4], l4 + (pkt[l4 + 1] + 1) * 8
            elif proto == 44 and l4 + 8 <= len(pkt):  # fragment: only the first has L4
                if struct.unpack_from("!H", pkt, l4 + 2)[0] & 0xFFF8:
                    return None
                proto, l4 = pkt[l4], l4 + 8
            else:
                break
    if proto == 6 and l4 + 18 <= len(pkt):
        return l4 + 16, False, covers_dst
    if proto == 17 and l4 + 8 <= len(pkt):
        return l4 + 6, True, covers_dst
    if proto == 58 and ip_ver == 6 and l4 + 4 <= len(pkt):
        return l4 + 2, False, covers_dst
    return None


def _ip_version(p: SourcePacket) -> int:
    """4 or 6 for a complete Ethernet IPv4/IPv6 packet, else 0 (packet not used)."""
    d = p.data
    if p.linktype != LINKTYPE_ETHERNET or len(d) != p.wirelen or len(d) < ETH_LEN + 20:
        return 0
    ethertype = struct.unpack_from("!H", d, 12)[0]
    if ethertype == 0x0800 and d[ETH_LEN] >> 4 == 4:
        ihl = (d[ETH_LEN] & 0x0F) * 4
        total = struct.unpack_from("!H", d, ETH_LEN + 2)[0]
        if ihl >= 20 and ihl <= total and ETH_LEN + total <= len(d):
            return 4
    elif ethertype == 0x86DD and d[ETH_LEN] >> 4 == 6 and len(d) >= ETH_LEN + 40:
        payload = struct.unpack_from("!H", d, ETH_LEN + 4)[0]
        if ETH_LEN + 40 + payload <= len(d):
            return 6
    return 0


def source_files(corpus: Path) -> list[Path]:
    # From the public corpus, the captures the tests use (tests/data/corpus_files.tsv), so
    # the bench file stays the same when the corpus gains captures.
    listed: set[str] | None = (set(_CORPUS.pinned()) - LISTED_LATER
                               if corpus == DEFAULT_CORPUS else None)
    return sorted(
        p
        for p in corpus.iterdir()
        if p.is_file()
        and (listed is None or p.name in listed)
        and p.name.endswith((".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"))
        and not any(part in p.name for part in SKIP_NAME_PARTS)
    )


def load_template(corpus: Path = DEFAULT_CORPUS, reader: Reader = "auto") -> Template:
    chunks: list[bytes] = []
    rec_off: list[int] = []
    ts_rel: list[int] = []
    addr_pos: list[tuple[int, int]] = []
    addr_word: list[tuple[int, int]] = []
    ck_pos: list[int] = []
    ck_val: list[int] = []
    ck_addr: list[int] = []
    ck_udp: list[bool] = []
    ck_words: list[tuple[int, int]] = []
    files: list[str] = []
    now_us, pos = 0, 0
    for path in source_files(corpus):
        packets = read_source(path, reader)
        if not packets:
            continue
        used = [(p, v) for p in packets if (v := _ip_version(p))]
        if not used:
            continue
        files.append(path.name)
        if rec_off:
            now_us += FILE_GAP_US
        prev_ns = used[0][0].ts_ns
        for p, ver in used:
            now_us += min(max(p.ts_ns - prev_ns, 0) // 1000, MAX_GAP_US)
            prev_ns = p.ts_ns
            pkt = bytearray(p.data)
            ip = ETH_LEN
            if ver == 4:
                ihl = (pkt[ip] & 0x0F) * 4
                pkt[ip + 10 : ip + 12] = b"\x00\x00"
                pkt[ip + 10 : ip + 12] = struct.pack(
                    "!H", ~_ones_sum(bytes(pkt[ip : ip + ihl])) & 0xFFFF
                )
                src, dst = ip + 14, ip + 18
            else:
                src, dst = ip + 22, ip + 38
            base = pos + 16
            row = len(addr_pos)
            addr_pos.append((base + src, base + dst))
            addr_word.append(
                (struct.unpack_from("!H", pkt, src)[0], struct.unpack_from("!H", pkt, dst)[0])
            )
            checksums = [(ip + 10, False, True)] if ver == 4 else []
            l4 = _l4_checksum(bytes(pkt), ver)
            if l4 is not None:
                checksums.append(l4)
            for off, is_udp, covers_dst in checksums:
                ck_pos.append(base + off)
                ck_val.append(struct.unpack_from("!H", pkt, off)[0])
                ck_addr.append(row)
                ck_udp.append(is_udp)
                ck_words.append((1, int(covers_dst)))
            rec_off.append(pos)
            ts_rel.append(now_us)
            chunks.append(struct.pack("<IIII", 0, 0, len(pkt), len(pkt)))
            chunks.append(bytes(pkt))
            pos += 16 + len(pkt)
    if not rec_off:
        raise SystemExit(f"no usable Ethernet IPv4/IPv6 packets under {corpus}")
    return Template(
        records=np.frombuffer(b"".join(chunks), dtype=np.uint8).copy(),
        rec_off=np.asarray(rec_off, dtype=np.int64),
        ts_rel_us=np.asarray(ts_rel, dtype=np.int64),
        cycle_us=now_us + FILE_GAP_US,
        addr_pos=np.asarray(addr_pos, dtype=np.int64).reshape(-1, 2),
        addr_word=np.asarray(addr_word, dtype=np.int64).reshape(-1, 2),
        ck_pos=np.asarray(ck_pos, dtype=np.int64),
        ck_val=np.asarray(ck_val, dtype=np.int64),
        ck_addr=np.asarray(ck_addr, dtype=np.int64),
        ck_udp=np.asarray(ck_udp, dtype=np.bool_),
        ck_words=np.asarray(ck_words, dtype=np.int64).reshape(-1, 2),
        files=tuple(files),
    )


# --------------------------------------------------------------------------- building


def _put_u32le(
    buf: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64], val: npt.NDArray[np.int64]
) -> None:
    b = val.astype("<u4").view(np.uint8).reshape(-1, 4)
    buf[pos[:, None] + np.arange(4)] = b


def _put_u16be(
    buf: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64], val: npt.NDArray[np.int64]
) -> None:
    buf[pos] = (val >> 8).astype(np.uint8)
    buf[pos + 1] = (val & 0xFF).astype(np.uint8)


def _fold(x: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    x = (x & 0xFFFF) + (x >> 16)
    return (x & 0xFFFF) + (x >> 16)


def _build_cycles(t: Template, k0: int, ncycles: int) -> npt.NDArray[np.uint8]:
    """Cycles k0 .. k0+ncycles-1, complete, back to back."""
    size = t.records.shape[0]
    buf = np.tile(t.records, ncycles)
    ks = np.arange(k0, k0 + ncycles, dtype=np.int64)
    shift = (np.arange(ncycles, dtype=np.int64) * size)[:, None]  # cycle start in buf

    ts = (BASE_TS_US + ks[:, None] * t.cycle_us + t.ts_rel_us[None, :]).ravel()
    rec = (shift + t.rec_off[None, :]).ravel()
    _put_u32le(buf, rec, ts // 1_000_000)
    _put_u32le(buf, rec + 4, ts % 1_000_000)

    kk = ks[:, None, None]
    new_words = (t.addr_word[None, :, :] + kk) & 0xFFFF  # (C, A, 2)
    _put_u16be(buf, (shift[:, :, None] + t.addr_pos[None, :, :]).ravel(), new_words.ravel())

    # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for each changed 16-bit word m.
    old = t.addr_word[t.ck_addr]  # (K, 2)
    new = new_words[:, t.ck_addr, :]  # (C, K, 2)
    change = ((~old & 0xFFFF)[None, :, :] + new) * t.ck_words[None, :, :]
    s = (~t.ck_val & 0xFFFF)[None, :] + change.sum(axis=2)
    ck = ~_fold(s) & 0xFFFF
    keep_zero = t.ck_udp & (t.ck_val == 0)
    ck = np.where(keep_zero[None, :], 0, np.where(t.ck_udp[None, :] & (ck == 0), 0xFFFF, ck))
    _put_u16be(buf, (shift + t.ck_pos[None, :]).ravel(), ck.ravel())
    return buf


def pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)


def build(
    out: Path = DEFAULT_OUT,
    packets: int = DEFAULT_PACKETS,
    corpus: Path = DEFAULT_CORPUS,
    reader: Reader = "auto",
) -> BuildStats:
    """Write a `packets`-packet bench pcap to `out` (atomically) and return what was built."""
    start = time.perf_counter()
    t = load_template(corpus, reader)
    per_cycle = len(t)
    size = int(t.records.shape[0])
    full, rest = divmod(packets, per_cycle)
    chunk_cycles = max(1, CHUNK_BYTES // size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    written = 0
    try:
        with open(tmp, "wb") as f:
            f.write(pcap_header())
            written += 24
            k = 0
            while k < full:
                n = min(chunk_cycles, full - k)
                f.write(_build_cycles(t, k, n).data)
                written += n * size
                k += n
            if rest:
                part = _build_cycles(t, full, 1)[: int(t.rec_off[rest])]
                f.write(part.data)
                written += int(part.shape[0])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return BuildStats(
        packets=packets,
        bytes=written,
        cycles=full + (1 if rest else 0),
        source_packets=per_cycle,
        source_files=len(t.files),
        seconds=time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "-n",
        "--packets",
        type=int,
        default=DEFAULT_PACKETS,
        help=f"number of packets (default {DEFAULT_PACKETS:,})",
    )
    ap.add_argument(
        "-o",
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output pcap (default {DEFAULT_OUT.relative_to(ROOT)})",
    )
    ap.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="directory of source captures"
    )
    ap.add_argument(
        "--reader",
        choices=("auto", "builtin", "netcap"),
        default="auto",
        help="capture reader for the sources (auto: netcap's if installed)",
    )
    args = ap.parse_args(argv)
    if args.packets < 1:
        ap.error("--packets must be positive")
    st = build(args.out, args.packets, args.corpus, args.reader)
    print(
        f"wrote {args.out}: {st.packets:,} packets, {st.bytes / 1e6:.1f} MB, {st.cycles} cycles "
        f"of {st.source_packets} packets from {st.source_files} captures, {st.seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
