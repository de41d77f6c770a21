"""The bounded reader every compiled parser reads untrusted bytes through (_buf.pxd),
checked through its Python face (_bufcheck): reads past the end return 0 and make the
reader bad for good; nothing reads outside the bytes given."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netcap._bufcheck import read


def test_big_endian_fields() -> None:
    data = bytes(range(1, 19))
    values, bad, left, nxt = read(data, [1, 2, 3, 4, 8])
    assert values == [0x01, 0x0203, 0x040506, 0x0708090A, 0x0B0C0D0E0F101112]
    assert (bad, left, nxt) == (False, 0, 0)


def test_past_the_end_is_sticky() -> None:
    values, bad, left, _ = read(b"\x01\x02\x03", [2, 2, 1])
    # The second read does not fit: 0, and the third (which would fit) is refused too.
    assert values == [0x0102, 0, 0]
    assert bad and left == 0


def test_sub_reader_is_bounded() -> None:
    values, bad, left, _ = read(b"\x01\x02\x03\x04", [-1002, 1, 1, 1])
    assert values == [1, 2, 0] and bad  # the sub-reader has 2 bytes, not the rest
    values, bad, _, _ = read(b"\x01", [-1002, 1])
    assert values == [0] and bad  # a sub-reader longer than what is left is bad


def test_skip_and_peek() -> None:
    values, bad, left, nxt = read(b"\x01\x02\x03", [-1, 1])
    assert values == [2] and not bad and left == 1 and nxt == 3
    _, bad, _, _ = read(b"\x01", [-2])
    assert bad


def test_empty() -> None:
    assert read(b"", [1]) == ([0], True, 0, 0)
    assert read(b"", []) == ([], False, 0, 0)


@given(st.binary(max_size=40), st.lists(st.sampled_from([1, 2, 3, 4, 8, 0, -1, -3]),
                                        max_size=20))
def test_reads_match_slicing(data: bytes, widths: list[int]) -> None:
    values, bad, left, _ = read(data, widths)
    pos, expect, gone = 0, [], False
    for w in widths:
        n = -w if w <= 0 else w
        if gone or pos + n > len(data):
            gone = True
            if w > 0:
                expect.append(0)
            continue
        if w > 0:
            expect.append(int.from_bytes(data[pos : pos + n], "big"))
        pos += n
    assert values == expect
    assert bad == gone
    assert left == (0 if gone else len(data) - pos)
