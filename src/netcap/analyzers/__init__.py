"""Application-layer analyzers: sans-I/O parsers from payload bytes to audit records.

Each analyzer takes the bytes of one datagram (or, later, a reassembled stream) and
returns the fields of its record, or raises `DecodeError(protocol, reason)`; it never
sees sockets, files or clocks. Which payloads reach which analyzer is decided in one
table (`datagrams.UDP_PORTS`).
"""
