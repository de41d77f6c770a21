"""Every metric family netcap exports, declared once.

Names follow Prometheus conventions: prefix `nc_`, snake_case, base units, counters end in
`_total`. Every label takes values from a closed set (protocol names, reason codes,
well-known service names or `other`): no IPs, ports or other identifiers, so the number
of series stays bounded whatever the traffic. `docs/metrics.md` is generated from here.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

__all__ = ["ENTROPY_BUCKETS", "FAMILIES", "LATENCY_BUCKETS", "PAYLOAD_BUCKETS", "Family",
           "Kind"]


class Kind(Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    INFO = "info"


class Family(NamedTuple):
    name: str  # without the _total suffix for counters (prometheus_client adds it)
    kind: Kind
    doc: str
    labels: tuple[str, ...] = ()
    # High-cardinality labels a user may turn on (-labels), always under a series budget.
    optional: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # histograms: upper bounds (PAYLOAD_BUCKETS if empty)

    @property
    def bounds(self) -> tuple[float, ...]:
        return self.buckets or PAYLOAD_BUCKETS

    @property
    def exposed(self) -> str:
        """The name as scraped (counters gain `_total`)."""
        return self.name + "_total" if self.kind is Kind.COUNTER else self.name


# Byte-scale buckets for payload and packet sizes (upper bounds, bytes).
PAYLOAD_BUCKETS: tuple[float, ...] = (0, 64, 128, 256, 512, 1024, 1500, 4096, 9000, 65535)
# Shannon entropy in bits per byte: text is around 4-5, compressed or encrypted near 8.
ENTROPY_BUCKETS: tuple[float, ...] = (1, 2, 3, 4, 5, 6, 7, 7.5, 7.9, 8)

# Latencies measured from packets (seconds): LAN answers in well under a millisecond,
# resolvers in tens of milliseconds, timeouts in seconds.
LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25, 0.5, 1, 2.5, 5, 10)

# HTTP bodies (bytes): from empty to large downloads.
BODY_BUCKETS: tuple[float, ...] = (0, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
                                   16777216, 268435456)

# Connection durations (seconds) and sizes (bytes both ways).
DURATION_BUCKETS: tuple[float, ...] = (0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800,
                                       3600)
CONNECTION_BYTES_BUCKETS: tuple[float, ...] = (64, 256, 1024, 4096, 16384, 65536, 262144,
                                               1048576, 16777216, 268435456, 4294967296)

C, G, H, INFO = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM, Kind.INFO

FAMILIES: dict[str, Family] = {f.name: f for f in (
    # -- the collection process ----------------------------------------------------
    Family("nc_build", INFO, "netcap version and Python it runs on", ("version", "python")),
    Family("nc_uptime_seconds", G, "seconds since the exporter started"),
    Family("nc_packets", C, "packets processed"),
    Family("nc_bytes", C, "bytes processed (original length on the wire)"),
    Family("nc_protocols", C, "packets seen per decoded protocol layer", ("protocol",)),
    Family("nc_unknown_protocols", C,
           "packets with a layer not decoded, by where decoding stopped", ("layer",)),
    Family("nc_decoding_errors", C, "packets with a malformed or truncated header (protocol"
           " ncap: audit records read from files that could not be used in full)",
           ("protocol", "reason")),
    Family("nc_audit_records", C, "audit records produced, by Netcap record type", ("type",)),
    Family("nc_stage_seconds", C, "processing time spent per pipeline stage", ("stage",)),
    Family("nc_processing_rate_packets_per_second", G,
           "packets per second over the last few seconds of processing"),
    Family("nc_last_packet_timestamp_seconds", G, "capture timestamp of the last packet"),
    Family("nc_input_files_done", C, "input files processed to the end"),
    Family("nc_input_done", G,
           "1 once all input has been processed and the final values are served, else 0"),
    Family("nc_truncated_inputs", C, "inputs that ended in a cut or damaged record"),
    # -- live capture health (-iface) ---------------------------------------------------
    Family("nc_capture_received_packets", C,
           "packets the kernel delivered to the live capture (libpcap ps_recv; on lo both"
           " the sent and the received copy, of which one is decoded)", ("interface",)),
    Family("nc_capture_dropped_packets", C,
           "packets the live capture lost: where=kernel (its buffer was full, libpcap"
           " ps_drop) or interface (dropped by the interface or its driver, ps_ifdrop)",
           ("interface", "where")),
    Family("nc_capture_lag_seconds", G,
           "wall-clock time minus the timestamp of the last packet processed: how far"
           " processing is behind the live capture", ("interface",)),
    # -- the audit records -----------------------------------------------------------
    Family("nc_ethernet_frames", C, "Ethernet frames by EtherType", ("ethertype",),
           ("src_mac", "dst_mac")),
    Family("nc_vlan_tags", C, "802.1Q/802.1ad VLAN tags seen"),
    Family("nc_arp_packets", C, "ARP packets by operation", ("operation",)),
    Family("nc_ip_packets", C, "IP packets by version and payload protocol",
           ("version", "protocol"), ("src_ip", "dst_ip")),
    Family("nc_ip_fragments", C, "IP packets that are fragments", ("version",)),
    Family("nc_tcp_segments", C, "TCP segments by flag combination and service",
           ("flags", "service"), ("src_ip", "dst_ip", "src_port", "dst_port")),
    Family("nc_udp_datagrams", C, "UDP datagrams by service", ("service",),
           ("src_ip", "dst_ip", "src_port", "dst_port")),
    Family("nc_metric_label_overflow", C,
           "increments folded into label value `other` because a family's series budget"
           " was reached", ("metric",)),
    Family("nc_icmp_messages", C, "ICMP messages by version and type", ("version", "type")),
    Family("nc_tcp_payload_bytes", H, "TCP payload sizes (captured bytes)"),
    Family("nc_udp_payload_bytes", H, "UDP payload sizes (captured bytes)"),
    Family("nc_ip_packet_bytes", H, "IP packet sizes (total length from the header)",
           ("version",)),
    # -- connections -------------------------------------------------------------------
    Family("nc_connections", C, "connections ended (closed, idle, evicted or at the end of"
           " input), by transport and application protocol", ("transport", "application")),
    Family("nc_connections_active", G, "connections open in the connection table"),
    Family("nc_connections_evicted", C,
           "connections ended early because the table was full (-max-flows)"),
    Family("nc_connection_duration_seconds", H, "duration of ended connections",
           buckets=DURATION_BUCKETS),
    Family("nc_connection_bytes", H, "bytes on the wire of ended connections, both ways",
           buckets=CONNECTION_BYTES_BUCKETS),
    Family("nc_tcp_handshake_rtt_seconds", H,
           "TCP handshake round trip at the capture point: SYN to the client's ACK of the"
           " SYN+ACK (packet time)", buckets=LATENCY_BUCKETS),
    Family("nc_tcp_reassembly_gap_bytes", C,
           "bytes missing in reassembled TCP streams (reported as gaps, never filled)"),
    Family("nc_tcp_reassembly_overflows", C,
           "times a stream's out-of-order buffer was full and reassembly skipped ahead"),
    # -- application layer (analyzers) ------------------------------------------------
    Family("nc_dns_messages", C, "DNS messages by direction, opcode and response code",
           ("qr", "opcode", "rcode")),
    Family("nc_dns_questions", C, "DNS questions by query type", ("qtype",)),
    Family("nc_dns_response_seconds", H,
           "time from a DNS query to its response in packet time (matched by addresses,"
           " ports and ID)", buckets=LATENCY_BUCKETS),
    Family("nc_tls_hellos", C, "TLS ClientHellos and ServerHellos by TLS version (opt-in:"
           " server name, JA3 (JA3S for server hellos) and JA4)", ("hello", "version"),
           ("sni", "ja3", "ja4")),
    Family("nc_tls_handshake_seconds", H,
           "ClientHello to ServerHello on a connection, in packet time",
           buckets=LATENCY_BUCKETS),
    Family("nc_http_requests", C,
           "HTTP requests by method and response status code (status `none`: no response"
           " seen); opt-in: Host, User-Agent and response Content-Type",
           ("method", "status"), ("host", "user_agent", "content_type")),
    Family("nc_http_response_seconds", H,
           "time from an HTTP request's first byte to its response's first byte, in packet"
           " time", buckets=LATENCY_BUCKETS),
    Family("nc_http_response_body_bytes", H,
           "HTTP response body sizes as delivered (after de-chunking, before decoding)",
           buckets=BODY_BUCKETS),
    Family("nc_ssh_endpoints", C,
           "SSH clients and servers seen (banner read) by SSH protocol version and whether"
           " their KEXINIT was read; opt-in: HASSH (client) or HASSH-server",
           ("side", "version", "kexinit"), ("hassh",)),
    Family("nc_ntp_messages", C, "NTP messages by version and mode", ("version", "mode")),
    Family("nc_dhcp_messages", C, "DHCPv4 messages by message type (option 53)",
           ("message_type",)),
    Family("nc_payload_entropy_bits_per_byte", H,
           "Shannon entropy of TCP and UDP payloads in bits per byte (with -entropy)",
           ("protocol",), buckets=ENTROPY_BUCKETS),
)}
