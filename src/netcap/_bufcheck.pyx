"""The bounded reader (`_buf.pxd`) seen from Python, for its tests and fuzz target:
the reader is inline C in every parser, so it is checked here once."""

from libc.stdint cimport uint8_t

from netcap._buf cimport Reader, left, peek, reader, skip, sub, u8, u16, u24, u32, u64


def read(const uint8_t[::1] data, list widths):
    """Read fields of the given widths (1, 2, 3, 4 or 8 bytes; 0 - n: skip n; a
    negative width below -1000: take a sub-reader of -(w + 1000) bytes and read the
    rest from it). Returns (values, bad, left): every value read (0 past the end)."""
    cdef Reader r = reader(&data[0] if data.shape[0] else NULL, data.shape[0])
    cdef Reader s
    cdef Reader* cur = &r
    cdef list out = []
    cdef long w
    for item in widths:
        w = item
        if w == 1:
            out.append(u8(cur))
        elif w == 2:
            out.append(u16(cur))
        elif w == 3:
            out.append(u24(cur))
        elif w == 4:
            out.append(u32(cur))
        elif w == 8:
            out.append(u64(cur))
        elif w < -1000:
            s = sub(cur, -(w + 1000))
            cur = &s
        elif w <= 0:
            skip(cur, -w)
        else:
            raise ValueError(f"width {w}")
    return out, bool(cur.bad), left(cur), peek(cur, 0)
