"""Fuzz target: the compiled SSH reader (netcap.analyzers._ssh). The first byte of the
input chooses the side (client or server) and the size of the pieces the rest is fed in
(1 byte to all at once), then finish(). At most one record, the reader done at the end,
its buffer bounded, and nothing raised (feed and finish never raise); a sanitizer report
is a bug too. parse_kexinit gets the input as a KEXINIT payload as well."""

from __future__ import annotations

import contextlib
import sys

from netcap.analyzers._ssh import MAX_PACKET, MAX_PREBANNER, SshReader, parse_kexinit
from netcap.decode.errors import DecodeError

_BOUND = max(MAX_PREBANNER, 4 + MAX_PACKET)
_STEPS = (1, 3, 16, 64, 256, 1024, 4096, 1 << 20)  # bytes a piece


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    head, body = data[0], data[1:]
    reader = SshReader(bool(head & 1))
    step = _STEPS[(head >> 1) & 7]
    records = []
    for i in range(0, len(body), step):
        records += reader.feed(body[i : i + step])
        if len(reader._buf) > _BOUND:
            raise AssertionError("unbounded buffer")
    records += reader.finish()
    if not reader.done or len(records) > 1:
        raise AssertionError("more than one record, or not done")
    with contextlib.suppress(DecodeError):
        parse_kexinit(b"\x14" + body)


def seeds() -> list[bytes]:
    """Both directions of the corpus' SSH conversations (their first 4 KiB), fed whole
    and in pieces, by either side."""
    from seedfiles import captures  # puts tests/ on sys.path

    from tcp_streams import conversations

    out = []
    for path in captures(corpus=("sv_ssh-hassh.pcap", "ja4_ssh.pcapng",
                                 "zeek_ssh_kex_curve25519.pcap")):
        for c in conversations(path):
            for side in (True, False):
                out.append(bytes([0xE | side]) + c.data(side)[:4096])
                out.append(bytes([0x6 | side]) + c.data(side)[:4096])
    return out


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
