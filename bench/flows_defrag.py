"""CPU time of the flow stage (`summarize` + `ConnectionTable.update`, then `flush`) over a
capture's batches, and of IP defragmentation (`fragments` + `Defragmenter.add`) over
captures with fragments. Decoding is done first and not timed.

    .venv/bin/python bench/flows_defrag.py flows /work/bench1m.pcap
    .venv/bin/python bench/flows_defrag.py defrag A.pcap B.pcap ... [--repeat N]
    .venv/bin/python bench/flows_defrag.py synth 100000   (datagrams, made up here)

`synth`: UDP datagrams of 1,000 to 4,000 bytes over IPv4 and IPv6 (alternately), each in
1,480-byte fragments, interleaved with the next datagram's (the first and last are
swapped every third datagram), as raw IP packets in batches of the pipeline's size.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from netcap.decode.batch import decode_batch
from netcap.flows.extract import summarize
from netcap.flows.table import ConnectionTable
from netcap.reassembly.ip import Defragmenter, fragments
from netcap.sources.capture import open_capture

BATCH = 65536  # the pipeline's batch size


def flows(path: str) -> None:
    table = ConnectionTable()
    t_sum = t_upd = 0.0
    packets = records = 0
    with open_capture(path, batch_packets=BATCH) as src:
        for batch in src:
            d = decode_batch(batch, analyze=True)
            packets += len(batch)
            t0 = time.process_time()
            fb = summarize(d)
            t1 = time.process_time()
            ended = table.update(fb) if fb is not None else None
            t2 = time.process_time()
            t_sum += t1 - t0
            t_upd += t2 - t1
            records += len(ended) if ended is not None else 0
    t0 = time.process_time()
    ended = table.flush()
    t_upd += time.process_time() - t0
    records += len(ended) if ended is not None else 0
    print(f"{packets} packets, {records} connections: summarize {t_sum:.3f} s, "
          f"update+flush {t_upd:.3f} s, total {t_sum + t_upd:.3f} s CPU")


def defrag(decoded: list[Any], repeat: int) -> None:
    t_frag = t_add = 0.0
    count = done = 0
    for _ in range(repeat):
        d = Defragmenter()
        for dec in decoded:
            t0 = time.process_time()
            frags = fragments(dec)
            t1 = time.process_time()
            out = d.add(frags)
            t2 = time.process_time()
            t_frag += t1 - t0
            t_add += t2 - t1
            count += len(frags or ())
            done += len(out)
        t0 = time.process_time()
        d.flush()
        t_add += time.process_time() - t0
    print(f"{count} fragments, {done} datagrams: fragments {t_frag:.3f} s, "
          f"Defragmenter {t_add:.3f} s CPU")


def _synthetic(count: int) -> list[Any]:
    import random
    import struct

    from netcap.decode.linktypes import LT
    from netcap.sources.batch import PacketBatch

    rnd = random.Random(13)
    packets: list[bytes] = []
    for i in range(count):
        size = rnd.randrange(1000, 4000)
        body = struct.pack("!HHHH", 5353, 53, size + 8, 0) + rnd.randbytes(size)
        src, dst = struct.pack("!I", 0x0A000000 + i % 5000), bytes([10, 9, 9, 9])
        frags = []
        for off in range(0, len(body), 1480):
            chunk = body[off : off + 1480]
            more = off + 1480 < len(body)
            if i % 2:
                frags.append(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), i & 0xFFFF,
                                         (more << 13) | off // 8, 64, 17, 0, src, dst) + chunk)
            else:
                fh = struct.pack("!BBHI", 17, 0, (off // 8) << 3 | more, i)
                frags.append(struct.pack("!IHBB16s16s", 6 << 28, 8 + len(chunk), 44, 64,
                                         src.rjust(16, b"\0"), dst.rjust(16, b"\0"))
                             + fh + chunk)
        if i % 3 == 0:
            frags[0], frags[-1] = frags[-1], frags[0]
        packets += frags
    out = []
    for lo in range(0, len(packets), BATCH):
        part = packets[lo : lo + BATCH]
        out.append(decode_batch(PacketBatch.from_packets(
            part, list(range(lo, lo + len(part))), LT.RAW, first=lo)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("flows", "defrag", "synth"))
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    if a.what == "flows":
        flows(a.paths[0])
    elif a.what == "synth":
        defrag(_synthetic(int(a.paths[0])), a.repeat)
    else:
        decoded: list[Any] = []
        for path in a.paths:
            with open_capture(path, batch_packets=BATCH) as src:
                decoded += [decode_batch(b) for b in src]
        defrag(decoded, a.repeat)


if __name__ == "__main__":
    main()
