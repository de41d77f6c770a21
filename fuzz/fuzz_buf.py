"""Fuzz target: the bounded reader (`_buf.pxd`) through its Python face `_bufcheck.read`.

The input is a little program and the bytes it reads: byte 0 says how many reads (0-15),
the next bytes pick each read's width from WIDTHS, the rest is the data. The reader is
compared with plain slicing of the same bytes, so a wrong value or a wrong `bad`/`left` is a
finding too, not only a read outside the buffer (which the sanitizers catch).

Run: `make fuzz FUZZ_TARGETS=buf` (fuzz/run.py); alone: see docs/fuzzing.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from netcap._bufcheck import read

# read()'s widths: 1-8 read a field; 0 or -n skip n; below -1000 take a sub-reader of
# -(w + 1000) bytes and go on reading from it.
WIDTHS = (1, 2, 3, 4, 8, 0, -1, -2, -7, -64, -1000, -1001, -1004, -1009, -1040, -1255)
ROOT = Path(__file__).resolve().parent.parent


def split(data: bytes) -> tuple[list[int], bytes]:
    """The program (widths) and the bytes it reads."""
    if not data:
        return [], b""
    n = min(data[0] & 15, len(data) - 1)
    return [WIDTHS[b & 15] for b in data[1 : 1 + n]], data[1 + n :]


def model(data: bytes, widths: list[int]) -> tuple[list[int], bool, int, int]:
    """What read() must return, by slicing: (values, bad, left, next byte or 0)."""
    buf, pos, bad, values = data, 0, False, []
    for w in widths:
        n = w if w > 0 else (-(w + 1000) if w < -1000 else -w)
        if bad or n > len(buf) - pos:
            bad = True
            if w > 0:
                values.append(0)
            continue
        if w > 0:
            values.append(int.from_bytes(buf[pos : pos + n], "big"))
            pos += n
        elif w < -1000:
            buf, pos = buf[pos : pos + n], 0
        else:
            pos += n
    if bad:
        return values, True, 0, 0
    return values, False, len(buf) - pos, buf[pos] if pos < len(buf) else 0


def TestOneInput(data: bytes) -> None:  # noqa: N802 (atheris's name)
    widths, body = split(data)
    got = read(body, widths)
    want = model(body, widths)
    if got != want:
        raise AssertionError(f"read({body!r}, {widths}) = {got}, slicing gives {want}")


def seeds() -> list[bytes]:
    """Real headers read as a parser would: the first frames of the project's sample
    capture behind programs that read an Ethernet + IPv4 + TCP header, skip, and sub."""
    raw = (ROOT / "tests" / "data" / "sample.pcap").read_bytes()
    frames: list[bytes] = []
    pos = 24  # pcap file header, then (16-byte record header, frame)...
    while pos + 16 <= len(raw) and len(frames) < 4:
        size = int.from_bytes(raw[pos + 8 : pos + 12], "little")
        frames.append(raw[pos + 16 : pos + 16 + size])
        pos += 16 + size
    programs = [
        bytes([15, 4, 3, 1, 0, 0, 1, 1, 1, 0, 0, 1, 3, 3, 14, 1]),  # MACs, type, IPv4, sub 40
        bytes([4, 6, 11, 1, 2]),  # skip, sub-reader of 4, fields inside it and past it
        bytes([3, 15, 1, 1]),  # a sub-reader longer than most frames
        bytes([0]),
    ]
    return [p + f for p in programs for f in frames] + [b"", b"\x01\x04"]


if __name__ == "__main__":
    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
