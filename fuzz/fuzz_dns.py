"""Fuzz target: the compiled DNS reader (netcap.analyzers._dns) on one message. The full
parse and the counting check must agree (both fail with the same reason, or both pass
with the same question types); anything else than DecodeError coming out is a bug, and
so is any sanitizer report."""

from __future__ import annotations

import sys

from netcap.analyzers._dns import check_dns, parse_dns
from netcap.decode.errors import DecodeError


def TestOneInput(data: bytes) -> None:
    try:
        rec = parse_dns(data)
        full = 0
    except DecodeError as e:
        full = e.index
    try:
        types = check_dns(data)
    except DecodeError as e:
        if e.index != full:
            raise AssertionError(f"check_dns fails with {e.index}, parse_dns {full}") from e
        return
    if full or types != [q["Type"] for q in rec["Questions"]]:
        raise AssertionError("check_dns and parse_dns disagree")


def _udp_payloads(names: tuple[str, ...], ports: set[int]) -> list[bytes]:
    """UDP payloads to or from `ports` in the public corpus' captures (`seedfiles`)."""
    from seedfiles import captures

    from netcap.decode.batch import decode_batch
    from netcap.sources.capture import open_capture

    out = []
    for path in captures(corpus=names):
        for batch in open_capture(path):
            t = decode_batch(batch, analyze=False).tables.get("UDP")
            if t is None:
                continue
            for sp, dp, off, size in zip(t.cols["SrcPort"], t.cols["DstPort"],
                                         t.cols["_poff"], t.cols["PayloadSize"], strict=True):
                if int(sp) in ports or int(dp) in ports:
                    out.append(batch.data[int(off) : int(off) + int(size)].tobytes())
    return out


def seeds() -> list[bytes]:
    return _udp_payloads(("dpkt_dns_icmp.pcap", "zeek_dns_mdns.pcap",
                          "sv_dns-udp-eve-log-srv.pcap", "tcpdump_dns_udp.pcap",
                          "zeek_dns-inverse-query-fddi.pcap"), {53, 5353, 5355})


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
