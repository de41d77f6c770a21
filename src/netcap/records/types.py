"""The audit-record declarations: one place per record type.

Names, field numbers and types are the Go Netcap's (`netcap.proto`, v0.6.11, int64 ns
timestamps); they are the file format, so they never change here. Fields we add take
numbers above the highest Netcap uses for that message.

Semantics follow gopacket, which the Go Netcap decodes with: TypeCode fields are
type << 8 | code, IPv4 Flags are the top 3 bits of the flags/offset word, IHL and
DataOffset count 32-bit words, an 802.3 length frame has EthernetType 0 (LLC), and
PayloadSize is the captured payload length of that layer.
"""

from __future__ import annotations

from .schema import Field, Kind, RecordType, Render

__all__ = ["HEADER", "RECORDS", "TYPE_ENUM", "record"]

I32, I64, U32, U64 = Kind.INT32, Kind.INT64, Kind.UINT32, Kind.UINT64
BOOL, F64, STR, BYTES, MSG = Kind.BOOL, Kind.DOUBLE, Kind.STRING, Kind.BYTES, Kind.MESSAGE
IP, MAC = Render.IP, Render.MAC

# Header.Type values of the Go Netcap (`types.Type`).
TYPE_ENUM: dict[str, int] = {
    "Header": 0, "Batch": 1, "Connection": 3, "Ethernet": 7, "ARP": 8, "Dot1Q": 9,
    "Dot11": 10, "Dot11QOS": 11, "Dot11HTControl": 12, "Dot11HTControlVHT": 13,
    "Dot11HTControlHT": 14, "Dot11HTControlMFB": 15, "Dot11LinkAdapationControl": 16,
    "Dot11ASEL": 17, "LinkLayerDiscovery": 18, "LLDPChassisID": 19, "LLDPPortID": 20,
    "LinkLayerDiscoveryValue": 21, "EthernetCTP": 22, "EthernetCTPReply": 23,
    "LinkLayerDiscoveryInfo": 24, "LLDPSysCapabilities": 25, "LLDPCapabilities": 26,
    "LLDPMgmtAddress": 27, "LLDPOrgSpecificTLV": 28, "IPv4": 29, "IPv4Option": 30,
    "IPv6": 31, "ICMPv4": 32, "ICMPv6": 33, "ICMPv6NeighborAdvertisement": 34,
    "ICMPv6RouterAdvertisement": 35, "ICMPv6Option": 36, "UDP": 37, "TCP": 38,
    "TCPOption": 39, "SCTP": 40, "DNS": 41, "DNSResourceRecord": 42, "DNSSOA": 43,
    "DNSSRV": 44, "DNSMX": 45, "DNSQuestion": 46, "DHCPv4": 47, "DHCPOption": 48,
    "DHCPv6": 49, "DHCPv6Option": 50, "LLC": 51, "NTP": 52, "SIP": 53, "IGMP": 54,
    "IGMPv3GroupRecord": 55, "IPv6HopByHop": 56, "IPv6HopByHopOption": 57,
    "IPv6HopByHopOptionAlignment": 58, "SNAP": 59, "ICMPv6Echo": 60,
    "ICMPv6NeighborSolicitation": 61, "ICMPv6RouterSolicitation": 62, "HTTP": 63,
    "TLSClientHello": 64, "IPSecAH": 65, "IPSecESP": 66, "Geneve": 67, "IPv6Fragment": 68,
    "VXLAN": 69, "USB": 70, "LCM": 71, "MPLS": 72, "Modbus": 73, "OSPFv2": 74, "OSPFv3": 75,
    "BFD": 76, "GRE": 77, "FDDI": 78, "EAP": 79, "VRRPv2": 80, "EAPOL": 81, "EAPOLKey": 82,
    "CiscoDiscovery": 83, "CiscoDiscoveryInfo": 84, "USBRequestBlockSetup": 85,
    "NortelDiscovery": 86, "CIP": 87, "ENIP": 88, "DeviceProfile": 89, "File": 90,
    "SMTP": 91, "Diameter": 92, "POP3": 93, "TLSServerHello": 94, "Software": 95,
    "Service": 96, "Credentials": 97, "SSH": 98, "Vulnerability": 99, "Exploit": 100,
    "IPProfile": 101, "Mail": 102, "Alert": 103,
}  # fmt: skip

RECORDS: dict[str, RecordType] = {}


def record(name: str, doc: str, *fields: Field, top_level: bool = True) -> RecordType:
    """Declare a record type; each name once."""
    if name in RECORDS:
        raise ValueError(f"record {name} declared twice")
    rt = RecordType(name, TYPE_ENUM[name] if top_level else None, doc, tuple(fields))
    RECORDS[name] = rt
    return rt


def f(number: int, name: str, kind: Kind, doc: str, **kw: object) -> Field:
    return Field(number, name, kind, doc, **kw)  # type: ignore[arg-type]


TS = "packet time, Unix nanoseconds"

HEADER = record(
    "Header",
    "First record of every audit-record file: what follows and where it came from.",
    f(1, "Created", I64, "wall-clock time the file was created, Unix nanoseconds"),
    f(2, "InputSource", STR, "capture file or interface the records came from"),
    f(3, "Type", Kind.ENUM, "record type of every following record (Header.Type enum)"),
    f(4, "Version", STR, "netcap version that wrote the file"),
    f(5, "ContainsPayloads", BOOL, "records carry packet payload bytes"),
)

record(
    "Ethernet",
    "Ethernet II or 802.3 frame header.",
    f(1, "Timestamp", I64, TS),
    f(2, "SrcMAC", STR, "source MAC address", render=MAC),
    f(3, "DstMAC", STR, "destination MAC address", render=MAC),
    f(4, "EthernetType", I32, "EtherType; 0 for an 802.3 length frame (LLC)", label=True),
    f(5, "PayloadEntropy", F64, "Shannon entropy of the payload in bits per byte (-entropy)"),
    f(6, "PayloadSize", I32, "captured bytes after the Ethernet header"),
)

record(
    "LLC",
    "IEEE 802.2 Logical Link Control header of an 802.3 frame.",
    f(1, "Timestamp", I64, TS),
    f(2, "DSAP", I32, "destination service access point (I/G bit cleared)", label=True),
    f(3, "IG", BOOL, "DSAP individual/group bit"),
    f(4, "SSAP", I32, "source service access point (C/R bit cleared)", label=True),
    f(5, "CR", BOOL, "SSAP command/response bit"),
    f(6, "Control", I32, "control field (1 byte U-format, 2 bytes I/S-format)"),
)

record(
    "Dot1Q",
    "One IEEE 802.1Q / 802.1ad VLAN tag (a QinQ frame gives one record per tag).",
    f(1, "Timestamp", I64, TS),
    f(2, "Priority", I32, "priority code point (PCP)", label=True),
    f(3, "DropEligible", BOOL, "drop eligible indicator (DEI)"),
    f(4, "VLANIdentifier", I32, "VLAN id (0: priority tag only)"),
    f(5, "Type", I32, "EtherType of what follows the tag", label=True),
)

record(
    "ARP",
    "ARP request or reply.",
    f(1, "Timestamp", I64, TS),
    f(2, "AddrType", I32, "hardware address type (1: Ethernet)", label=True),
    f(3, "Protocol", I32, "protocol address type (0x0800: IPv4)", label=True),
    f(4, "HwAddressSize", I32, "hardware address length in bytes"),
    f(5, "ProtocolAddressSize", I32, "protocol address length in bytes"),
    f(6, "Operation", I32, "1 request, 2 reply", label=True),
    f(7, "SrcHwAddress", STR, "sender hardware address", render=MAC),
    f(8, "SrcProtocolAddress", STR, "sender protocol address", render=IP),
    f(9, "DstHwAddress", STR, "target hardware address", render=MAC),
    f(10, "DstProtocolAddress", STR, "target protocol address", render=IP),
)

record(
    "IPv4Option",
    "One IPv4 header option.",
    f(1, "OptionType", I32, "option type octet"),
    f(2, "OptionLength", I32, "option length (1 for EOL and NOP)"),
    f(3, "OptionData", BYTES, "option bytes after type and length"),
    top_level=True,
)

record(
    "IPv4",
    "IPv4 header.",
    f(1, "Timestamp", I64, TS),
    f(2, "Version", I32, "IP version (4)"),
    f(3, "IHL", I32, "header length in 32-bit words"),
    f(4, "TOS", I32, "type of service / DSCP+ECN"),
    f(5, "Length", I32, "total length from the header"),
    f(6, "Id", I32, "identification"),
    f(7, "Flags", I32, "flags: 4 evil bit, 2 don't fragment, 1 more fragments", label=True),
    f(8, "FragOffset", I32, "fragment offset in 8-byte units"),
    f(9, "TTL", I32, "time to live"),
    f(10, "Protocol", I32, "IP protocol number of the payload", label=True),
    f(11, "Checksum", I32, "header checksum"),
    f(12, "SrcIP", STR, "source address", render=IP),
    f(13, "DstIP", STR, "destination address", render=IP),
    f(14, "Padding", BYTES, "option bytes after an end-of-options option"),
    f(15, "Options", MSG, "header options", repeated=True, message="IPv4Option"),
    f(16, "PayloadEntropy", F64, "Shannon entropy of the payload (-entropy)"),
    f(17, "PayloadSize", I32, "captured payload bytes (within Length)"),
    f(18, "SrcPort", I32, "TCP/UDP source port of the payload, if decoded"),
    f(19, "DstPort", I32, "TCP/UDP destination port of the payload, if decoded"),
)

record(
    "IPv6",
    "IPv6 fixed header.",
    f(1, "Timestamp", I64, TS),
    f(2, "Version", I32, "IP version (6)"),
    f(3, "TrafficClass", I32, "traffic class"),
    f(4, "FlowLabel", U32, "flow label"),
    f(5, "Length", I32, "payload length from the header"),
    f(6, "NextHeader", I32, "next header (first extension header or transport)", label=True),
    f(7, "HopLimit", I32, "hop limit"),
    f(8, "SrcIP", STR, "source address", render=IP),
    f(9, "DstIP", STR, "destination address", render=IP),
    f(10, "PayloadEntropy", F64, "Shannon entropy of the payload (-entropy)"),
    f(11, "PayloadSize", I32, "captured bytes after the fixed header"),
    f(13, "SrcPort", I32, "TCP/UDP source port of the payload, if decoded"),
    f(14, "DstPort", I32, "TCP/UDP destination port of the payload, if decoded"),
)

record(
    "IPv6Fragment",
    "IPv6 fragment extension header.",
    f(1, "Timestamp", I64, TS),
    f(2, "NextHeader", I32, "next header of the fragmented payload", label=True),
    f(3, "Reserved1", I32, "reserved octet"),
    f(4, "FragmentOffset", I32, "fragment offset in 8-byte units"),
    f(5, "Reserved2", I32, "reserved bits"),
    f(6, "MoreFragments", BOOL, "more fragments follow"),
    f(7, "Identification", U32, "fragment identification"),
    f(8, "SrcPort", I32, "TCP/UDP source port (first fragment only)"),
    f(9, "DstPort", I32, "TCP/UDP destination port (first fragment only)"),
    f(10, "SrcIP", STR, "source address", render=IP),
    f(11, "DstIP", STR, "destination address", render=IP),
)

record(
    "ICMPv4",
    "ICMP for IPv4.",
    f(1, "Timestamp", I64, TS),
    f(2, "TypeCode", I32, "type << 8 | code", label=True),
    f(3, "Checksum", I32, "checksum"),
    f(4, "Id", I32, "identifier (bytes 4-5)"),
    f(5, "Seq", I32, "sequence number (bytes 6-7)"),
    f(6, "SrcIP", STR, "source address", render=IP),
    f(7, "DstIP", STR, "destination address", render=IP),
)

record(
    "ICMPv6",
    "ICMP for IPv6.",
    f(1, "Timestamp", I64, TS),
    f(2, "TypeCode", I32, "type << 8 | code", label=True),
    f(3, "Checksum", I32, "checksum"),
    f(4, "SrcIP", STR, "source address", render=IP),
    f(5, "DstIP", STR, "destination address", render=IP),
)

record(
    "SCTP",
    "SCTP common header (its chunks are not decoded).",
    f(1, "Timestamp", I64, TS),
    f(2, "SrcPort", I32, "source port"),
    f(3, "DstPort", I32, "destination port"),
    f(4, "VerificationTag", U32, "verification tag"),
    f(5, "Checksum", U32, "CRC32c checksum"),
    f(6, "SrcIP", STR, "source address", render=IP),
    f(7, "DstIP", STR, "destination address", render=IP),
)

record(
    "UDP",
    "UDP header.",
    f(1, "Timestamp", I64, TS),
    f(2, "SrcPort", I32, "source port"),
    f(3, "DstPort", I32, "destination port"),
    f(4, "Length", I32, "length from the header"),
    f(5, "Checksum", I32, "checksum"),
    f(6, "PayloadEntropy", F64, "Shannon entropy of the payload (-entropy)"),
    f(7, "PayloadSize", I32, "captured payload bytes"),
    f(8, "Payload", BYTES, "payload bytes (-payload)"),
    f(9, "SrcIP", STR, "source address", render=IP),
    f(10, "DstIP", STR, "destination address", render=IP),
)

record(
    "TCPOption",
    "One TCP header option.",
    f(1, "OptionType", I32, "option kind (2 MSS, 3 window scale, 4 SACK permitted, 8 timestamps)"),
    f(2, "OptionLength", I32, "option length (1 for EOL and NOP)"),
    f(3, "OptionData", BYTES, "option bytes after kind and length"),
)

record(
    "TCP",
    "TCP segment header.",
    f(1, "Timestamp", I64, TS),
    f(2, "SrcPort", I32, "source port"),
    f(3, "DstPort", I32, "destination port"),
    f(4, "SeqNum", U32, "sequence number"),
    f(5, "AckNum", U32, "acknowledgment number"),
    f(6, "DataOffset", I32, "header length in 32-bit words"),
    f(7, "FIN", BOOL, "FIN flag", label=True),
    f(8, "SYN", BOOL, "SYN flag", label=True),
    f(9, "RST", BOOL, "RST flag", label=True),
    f(10, "PSH", BOOL, "PSH flag", label=True),
    f(11, "ACK", BOOL, "ACK flag", label=True),
    f(12, "URG", BOOL, "URG flag", label=True),
    f(13, "ECE", BOOL, "ECE flag", label=True),
    f(14, "CWR", BOOL, "CWR flag", label=True),
    f(15, "NS", BOOL, "NS (ECN nonce) flag", label=True),
    f(16, "Window", I32, "receive window (unscaled)"),
    f(17, "Checksum", I32, "checksum"),
    f(18, "Urgent", I32, "urgent pointer"),
    f(19, "Padding", BYTES, "option bytes after an end-of-options option"),
    f(20, "Options", MSG, "header options", repeated=True, message="TCPOption"),
    f(21, "PayloadEntropy", F64, "Shannon entropy of the payload (-entropy)"),
    f(22, "PayloadSize", I32, "captured payload bytes"),
    f(23, "Payload", BYTES, "payload bytes (-payload)"),
    f(24, "SrcIP", STR, "source address", render=IP),
    f(25, "DstIP", STR, "destination address", render=IP),
)

# -- application layer: records made by the analyzers (`analyzers/`) -------------------

record(
    "DNSQuestion",
    "One entry of a DNS question section.",
    f(1, "Name", STR, "queried name, dot-separated (bytes outside printable ASCII as \\DDD)"),
    f(2, "Type", I32, "query type (1 A, 28 AAAA, 5 CNAME, 12 PTR, 15 MX, 16 TXT, ...)",
      label=True),
    f(3, "Class", I32, "query class (1 IN; mDNS sets the top bit for unicast replies)"),
)

record(
    "DNSSOA",
    "Data of an SOA resource record.",
    f(1, "MName", BYTES, "primary name server"),
    f(2, "RName", BYTES, "responsible mailbox"),
    f(3, "Serial", U32, "zone serial"),
    f(4, "Refresh", U32, "refresh interval, seconds"),
    f(5, "Retry", U32, "retry interval, seconds"),
    f(6, "Expire", U32, "expire limit, seconds"),
    f(7, "Minimum", U32, "negative-caching TTL, seconds"),
)

record(
    "DNSSRV",
    "Data of an SRV resource record.",
    f(1, "Priority", I32, "priority"),
    f(2, "Weight", I32, "weight"),
    f(3, "Port", I32, "service port"),
    f(4, "Name", BYTES, "target host"),
)

record(
    "DNSMX",
    "Data of an MX resource record.",
    f(1, "Preference", I32, "preference"),
    f(2, "Name", STR, "mail exchanger"),
)

record(
    "DNSResourceRecord",
    "One resource record of an answer, authority or additional section.",
    f(1, "Name", STR, "owner name"),
    f(2, "Type", I32, "record type", label=True),
    f(3, "Class", I32, "record class (mDNS: top bit = cache flush)"),
    f(4, "TTL", U32, "time to live, seconds"),
    f(5, "DataLength", I32, "RDLENGTH: bytes of record data"),
    f(6, "Data", BYTES, "record data as sent (names inside it may be compressed)"),
    f(7, "IP", STR, "address of an A or AAAA record", render=IP),
    f(8, "NS", BYTES, "name server of an NS record"),
    f(9, "CNAME", BYTES, "canonical name of a CNAME record"),
    f(10, "PTR", BYTES, "name of a PTR record"),
    f(11, "SOA", MSG, "data of an SOA record", message="DNSSOA"),
    f(12, "SRV", MSG, "data of an SRV record", message="DNSSRV"),
    f(13, "MX", MSG, "data of an MX record", message="DNSMX"),
    f(14, "TXTs", BYTES, "character strings of a TXT record", repeated=True),
)

record(
    "DNS",
    "A DNS message (UDP, TCP or mDNS).",
    f(1, "Timestamp", I64, TS),
    f(2, "ID", I32, "transaction ID"),
    f(3, "QR", BOOL, "a response", label=True),
    f(4, "OpCode", I32, "opcode (0 query, 4 notify, 5 update)", label=True),
    f(5, "AA", BOOL, "authoritative answer"),
    f(6, "TC", BOOL, "truncated"),
    f(7, "RD", BOOL, "recursion desired"),
    f(8, "RA", BOOL, "recursion available"),
    f(9, "Z", I32, "reserved bits (incl. AD and CD)"),
    f(10, "ResponseCode", I32, "rcode (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...)", label=True),
    f(11, "QDCount", I32, "questions announced in the header"),
    f(12, "ANCount", I32, "answers announced"),
    f(13, "NSCount", I32, "authority records announced"),
    f(14, "ARCount", I32, "additional records announced"),
    f(15, "Questions", MSG, "question section", repeated=True, message="DNSQuestion"),
    f(16, "Answers", MSG, "answer section", repeated=True, message="DNSResourceRecord"),
    f(17, "Authorities", MSG, "authority section", repeated=True, message="DNSResourceRecord"),
    f(18, "Additionals", MSG, "additional section", repeated=True, message="DNSResourceRecord"),
    f(19, "SrcIP", STR, "source address", render=IP),
    f(20, "DstIP", STR, "destination address", render=IP),
    f(21, "SrcPort", I32, "source port"),
    f(22, "DstPort", I32, "destination port"),
)

record(
    "DHCPOption",
    "One DHCP option.",
    f(1, "Type", I32, "option code (53 message type, 55 parameter request list, ...)"),
    f(2, "Length", I32, "option length"),
    f(3, "Data", STR, "option value as text (addresses dotted, names as sent, else hex)"),
)

record(
    "DHCPv4",
    "A DHCPv4 (BOOTP) message.",
    f(1, "Timestamp", I64, TS),
    f(2, "Operation", I32, "1 request, 2 reply"),
    f(3, "HardwareType", I32, "hardware type (1 Ethernet)"),
    f(4, "HardwareLen", I32, "hardware address length"),
    f(5, "HardwareOpts", I32, "hops"),
    f(6, "Xid", U32, "transaction ID"),
    f(7, "Secs", I32, "seconds since the client began"),
    f(8, "Flags", I32, "flags (0x8000 broadcast)"),
    f(9, "ClientIP", STR, "ciaddr", render=IP),
    f(10, "YourClientIP", STR, "yiaddr", render=IP),
    f(11, "NextServerIP", STR, "siaddr", render=IP),
    f(12, "RelayAgentIP", STR, "giaddr", render=IP),
    f(13, "ClientHWAddr", STR, "chaddr (hardware length bytes)", render=MAC),
    f(14, "ServerName", BYTES, "sname field, up to its first NUL"),
    f(15, "File", BYTES, "file field, up to its first NUL"),
    f(16, "Options", MSG, "options", repeated=True, message="DHCPOption"),
    f(17, "Fingerprint", STR, "option 55 parameter request list, comma-separated codes"),
    f(18, "SrcIP", STR, "source address", render=IP),
    f(19, "DstIP", STR, "destination address", render=IP),
    f(20, "SrcPort", I32, "source port"),
    f(21, "DstPort", I32, "destination port"),
)

record(
    "NTP",
    "An NTP message.",
    f(1, "Timestamp", I64, TS),
    f(2, "LeapIndicator", I32, "leap indicator"),
    f(3, "Version", I32, "version", label=True),
    f(4, "Mode", I32, "mode (1 symmetric active, 3 client, 4 server, 5 broadcast, ...)",
      label=True),
    f(5, "Stratum", I32, "stratum"),
    f(6, "Poll", I32, "poll interval, log2 seconds"),
    f(7, "Precision", I32, "precision, log2 seconds"),
    f(8, "RootDelay", U32, "root delay, 16.16 fixed point seconds"),
    f(9, "RootDispersion", U32, "root dispersion, 16.16 fixed point seconds"),
    f(10, "ReferenceID", U32, "reference ID"),
    f(11, "ReferenceTimestamp", U64, "reference time, raw 64-bit NTP timestamp"),
    f(12, "OriginTimestamp", U64, "origin time, raw 64-bit NTP timestamp"),
    f(13, "ReceiveTimestamp", U64, "receive time, raw 64-bit NTP timestamp"),
    f(14, "TransmitTimestamp", U64, "transmit time, raw 64-bit NTP timestamp"),
    f(15, "ExtensionBytes", BYTES, "bytes after the 48-byte header (extensions, MAC)"),
    f(16, "SrcIP", STR, "source address", render=IP),
    f(17, "DstIP", STR, "destination address", render=IP),
    f(18, "SrcPort", I32, "source port"),
    f(19, "DstPort", I32, "destination port"),
)

record(
    "Connection",
    "A bidirectional TCP or UDP flow (5-tuple), written when it ends: closed (FIN both"
    " ways or RST, plus a short linger), idle past its timeout, evicted from a full table,"
    " or at the end of input. Src is the side that sent the first packet seen.",
    f(1, "TimestampFirst", I64, "time of the first packet, Unix nanoseconds"),
    f(2, "LinkProto", STR, "link layer of the first packet (Ethernet, ...)"),
    f(3, "NetworkProto", STR, "IPv4 or IPv6"),
    f(4, "TransportProto", STR, "TCP or UDP", label=True),
    f(5, "ApplicationProto", STR, "record type of the analyzer that recognised its"
      " protocol (DNS, NTP, DHCPv4, HTTP, TLS, SSH), else empty", label=True),
    f(6, "SrcMAC", STR, "source MAC of the first packet", render=MAC),
    f(7, "DstMAC", STR, "destination MAC of the first packet", render=MAC),
    f(8, "SrcIP", STR, "address of the side that sent the first packet", render=IP),
    f(9, "SrcPort", STR, "its port, as text"),
    f(10, "DstIP", STR, "the other side's address", render=IP),
    f(11, "DstPort", STR, "its port, as text"),
    f(12, "TotalSize", I32, "bytes on the wire, both directions (frame lengths)"),
    f(13, "AppPayloadSize", I32, "transport payload bytes, both directions"),
    f(14, "NumPackets", I32, "packets, both directions"),
    f(15, "UID", STR, "connection ID: hex of a hash of the 5-tuple and the first timestamp"),
    f(16, "TimestampLast", I64, "time of the last packet, Unix nanoseconds"),
    f(17, "Duration", I64, "TimestampLast - TimestampFirst, nanoseconds"),
    f(18, "BytesServerToClient", I64, "wire bytes sent by the Dst side"),
    f(19, "BytesClientToServer", I64, "wire bytes sent by the Src side"),
    f(20, "NumFINFlags", I32, "TCP segments with FIN"),
    f(21, "NumRSTFlags", I32, "TCP segments with RST"),
    f(22, "NumACKFlags", I32, "TCP segments with ACK"),
    f(23, "NumSYNFlags", I32, "TCP segments with SYN"),
    f(24, "NumURGFlags", I32, "TCP segments with URG"),
    f(25, "NumECEFlags", I32, "TCP segments with ECE"),
    f(26, "NumPSHFlags", I32, "TCP segments with PSH"),
    f(27, "NumCWRFlags", I32, "TCP segments with CWR"),
    f(28, "NumNSFlags", I32, "TCP segments with NS"),
    f(29, "MeanWindowSize", I32, "mean TCP receive window (unscaled)"),
)

record(
    "TLSClientHello",
    "A TLS ClientHello, from a reassembled TCP stream, with its JA3 and JA4 fingerprints.",
    f(1, "Timestamp", I64, TS),
    f(2, "Type", I32, "record content type (22 handshake)"),
    f(3, "Version", I32, "record-layer version of the first record (0x0301 = 769, ...)"),
    f(4, "MessageLen", I32, "length of the first record"),
    f(5, "HandshakeType", I32, "handshake message type (1)"),
    f(6, "HandshakeLen", U32, "handshake message length"),
    f(7, "HandshakeVersion", I32, "client_version (legacy version for TLS 1.3)"),
    f(8, "Random", BYTES, "client random"),
    f(9, "SessionIDLen", U32, "session ID length"),
    f(10, "SessionID", BYTES, "session ID"),
    f(11, "CipherSuiteLen", I32, "bytes of the cipher suite list"),
    f(12, "ExtensionLen", I32, "bytes of the extensions"),
    f(13, "SNI", STR, "server name (server_name extension)"),
    f(14, "OSCP", BOOL, "status_request extension present"),
    f(15, "CipherSuites", I32, "offered cipher suites, in order", repeated=True),
    f(16, "CompressMethods", I32, "compression methods", repeated=True),
    f(17, "SignatureAlgs", I32, "signature_algorithms, in order", repeated=True),
    f(18, "SupportedGroups", I32, "supported_groups (elliptic curves)", repeated=True),
    f(19, "SupportedPoints", I32, "ec_point_formats", repeated=True),
    f(20, "ALPNs", STR, "offered application protocols (ALPN)", repeated=True),
    f(21, "Ja3", STR, "JA3: MD5 hex of the JA3 string (as tshark's tls.handshake.ja3)"),
    f(22, "SrcIP", STR, "client address", render=IP),
    f(23, "DstIP", STR, "server address", render=IP),
    f(26, "SrcPort", I32, "client port"),
    f(27, "DstPort", I32, "server port"),
    f(28, "Extensions", I32, "extension types, in order", repeated=True),
    f(29, "Ja4", STR, "JA4 fingerprint (TLS client; added here, not in the Go Netcap)"),
    f(30, "SupportedVersions", I32, "supported_versions extension: the versions offered, in"
      " order (added here, not in the Go Netcap)", repeated=True),
)

record(
    "TLSServerHello",
    "A TLS ServerHello, from a reassembled TCP stream, with its JA3S fingerprint.",
    f(1, "Timestamp", I64, TS),
    f(2, "Version", I32, "server_version (legacy version for TLS 1.3)"),
    f(3, "Random", BYTES, "server random"),
    f(4, "SessionID", BYTES, "session ID"),
    f(5, "CipherSuite", I32, "chosen cipher suite"),
    f(6, "CompressionMethod", I32, "chosen compression method"),
    f(7, "NextProtoNeg", BOOL, "next_protocol_negotiation extension present"),
    f(8, "NextProtos", STR, "NPN protocols", repeated=True),
    f(9, "OCSPStapling", BOOL, "status_request extension present"),
    f(10, "TicketSupported", BOOL, "session_ticket extension present"),
    f(11, "SecureRenegotiationSupported", BOOL, "renegotiation_info extension present"),
    f(12, "SecureRenegotiation", BYTES, "renegotiation_info data"),
    f(13, "AlpnProtocol", STR, "chosen application protocol (ALPN)"),
    f(14, "Ems", BOOL, "extended_master_secret extension present"),
    f(15, "Scts", BYTES, "signed certificate timestamps", repeated=True),
    f(16, "SupportedVersion", I32, "supported_versions: the version chosen (TLS 1.3)"),
    f(18, "SelectedIdentityPresent", BOOL, "pre_shared_key extension present"),
    f(19, "SelectedIdentity", I32, "the PSK identity chosen"),
    f(20, "Cookie", BYTES, "cookie extension (HelloRetryRequest)"),
    f(21, "SelectedGroup", I32, "key_share: the group chosen"),
    f(22, "Extensions", I32, "extension types, in order", repeated=True),
    f(23, "SrcIP", STR, "server address", render=IP),
    f(24, "DstIP", STR, "client address", render=IP),
    f(27, "SrcPort", I32, "server port"),
    f(28, "DstPort", I32, "client port"),
    f(29, "Ja3s", STR, "JA3S: MD5 hex of the JA3S string (as tshark's tls.handshake.ja3s)"),
)

record(
    "HTTPCookie",
    "A cookie from a Cookie (request) or Set-Cookie (response) header.",
    f(1, "Name", STR, "cookie name"),
    f(2, "Value", STR, "cookie value"),
    f(3, "Path", STR, "Path attribute (Set-Cookie)"),
    f(4, "Domain", STR, "Domain attribute (Set-Cookie)"),
    f(5, "Expires", U64, "Expires attribute, Unix seconds (Set-Cookie)"),
    f(6, "MaxAge", I32, "Max-Age attribute, seconds (Set-Cookie)"),
    f(7, "Secure", BOOL, "Secure attribute (Set-Cookie)"),
    f(8, "HttpOnly", BOOL, "HttpOnly attribute (Set-Cookie)"),
    f(9, "SameSite", I32, "SameSite attribute: 1 default, 2 lax, 3 strict, 4 none (Go's"
      " http.SameSite)"),
    top_level=False,
)

# Netcap's `map<string, string>` fields: on the wire a map is a repeated entry message
# with key = 1 and value = 2, so declaring the entry keeps files byte-identical.
record(
    "HTTPMapEntry",
    "One entry of an HTTP header or parameter map (a protobuf map entry).",
    f(1, "Key", STR, "header or parameter name"),
    f(2, "Value", STR, "its value (repeated headers joined with ', ')"),
    top_level=False,
)

record(
    "HTTP",
    "One HTTP/1.x request and its response, from a reassembled TCP connection.",
    f(1, "Timestamp", I64, "packet time of the request's first byte, Unix nanoseconds"),
    f(2, "Proto", STR, "request protocol version, e.g. HTTP/1.1"),
    f(3, "Method", STR, "request method", label=True),
    f(4, "Host", STR, "Host header"),
    f(5, "UserAgent", STR, "User-Agent header"),
    f(6, "Referer", STR, "Referer header"),
    f(7, "ReqCookies", MSG, "cookies sent", repeated=True, message="HTTPCookie"),
    f(8, "ReqContentLength", I32, "request body bytes (as delivered, after chunking)"),
    f(9, "URL", STR, "request target as sent"),
    f(10, "ResContentLength", I32, "response body bytes (as delivered, after chunking)"),
    f(11, "ContentType", STR, "request Content-Type header"),
    f(12, "StatusCode", I32, "response status code; 0 when no response was seen",
      label=True),
    f(13, "SrcIP", STR, "client address", render=IP),
    f(14, "DstIP", STR, "server address", render=IP),
    f(15, "ReqContentEncoding", STR, "request Content-Encoding header"),
    f(16, "ResContentEncoding", STR, "response Content-Encoding header"),
    f(17, "ServerName", STR, "response Server header"),
    f(18, "ResCookies", MSG, "cookies set", repeated=True, message="HTTPCookie"),
    f(19, "ResContentType", STR, "response Content-Type header"),
    f(20, "DoneAfter", I64, "ns from the request's first byte to the response's end"),
    f(21, "DNSDoneAfter", I64, "not measured (Netcap field kept for compatibility)"),
    f(22, "FirstByteAfter", I64, "ns from the request's first byte to the response's first"),
    f(23, "TLSDoneAfter", I64, "not measured (Netcap field kept for compatibility)"),
    f(24, "ContentTypeDetected", STR, "request body type sniffed from its first bytes"),
    f(25, "ResContentTypeDetected", STR, "response body type sniffed from its first bytes"),
    f(26, "RequestHeader", MSG, "request headers", repeated=True, message="HTTPMapEntry"),
    f(27, "ResponseHeader", MSG, "response headers", repeated=True, message="HTTPMapEntry"),
    f(28, "Parameters", MSG, "query parameters of the URL", repeated=True,
      message="HTTPMapEntry"),
    f(29, "RequestBody", BYTES, "request body (not kept: always empty)"),
    f(30, "ResponseBody", BYTES, "response body (not kept: always empty)"),
    f(31, "SrcPort", I32, "client port (added here, not in the Go Netcap)"),
    f(32, "DstPort", I32, "server port (added here, not in the Go Netcap)"),
)

record(
    "SSH",
    "An SSH endpoint's identification banner and key-exchange offer, with its HASSH.",
    f(1, "Timestamp", I64, "packet time of the KEXINIT (or of the banner without one)"),
    f(2, "HASSH", STR, "HASSH (client) or HASSH-server: MD5 hex of `Algorithms`"),
    f(3, "Flow", STR, "srcip:srcport->dstip:dstport of the sending side"),
    f(4, "Notes", STR, "what went wrong, when the KEXINIT was not readable"),
    f(5, "Ident", STR, "identification banner, e.g. SSH-2.0-OpenSSH_8.9"),
    f(6, "Algorithms", STR, "the HASSH input: kex;encryption;mac;compression"),
    f(7, "IsClient", BOOL, "sent by the client (HASSH) rather than the server"),
)
