#!/usr/bin/env bash
# Record the project's own test captures: real clients and servers talking over a veth pair
# between two network namespaces this script creates, captured with tcpdump on the client side.
#
#   sudo tests/data/record/record.sh [OUTDIR [SAMPLE]]   (`make record`; defaults
#        tests/data/recorded and tests/data/sample.pcap)
#
# One capture per protocol, in this order (the client gets its address by DHCP first):
#   dhcp.pcap  dnsmasq (DHCP server)         <- busybox udhcpc: lease, lease and RELEASE, lease again
#   dns.pcap   dnsmasq (authoritative zone)  <- dig: A, AAAA, MX, TXT, NXDOMAIN over UDP, A over TCP
#   http.pcap  python3 -m http.server :80    <- curl: GET 200, GET 404, HEAD, GET with a query and cookie
#   tls.pcap   openssl s_server -www :443    <- curl TLS 1.2, curl TLS 1.3, openssl s_client TLS 1.3
#   ssh.pcap   OpenSSH sshd :22              <- ssh, key authentication, one command
#   ntp.pcap   chronyd (local stratum 8)     <- ntpdig (ntpsec), four queries
# and SAMPLE, all of them one after the other (the README's `make run` input).
# Then tests/data/record/make_oracle.py writes what tshark sees in them (OUTDIR/oracle/).
#
# Needs root and the Debian packages iproute2 tcpdump dnsmasq-base busybox dnsutils curl
# openssl openssh-server openssh-client chrony ntpsec-ntpdate (and tshark for the oracle).
# Only the addresses 10.77.0.0/24 inside the two namespaces are used; every client call is
# bounded by `timeout`; namespaces, servers and temporary files are removed on any exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(realpath -m "${1:-$HERE/../recorded}")
SAMPLE=$(realpath -m "${2:-$HERE/../sample.pcap}")
SRV=nc-rec-srv CLI=nc-rec-cli          # namespaces
SIF=nc-rec-s CIF=nc-rec-c              # the two ends of the veth pair
SIP=10.77.0.1                          # server address; the client's comes from DHCP
NAME=www.netcap.test                   # served by dnsmasq, used as SNI and Host
TMP=$(mktemp -d /tmp/netcap-record.XXXXXX)
PIDS=()
CREATED_RUN_SSHD=0

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    ip netns del "$SRV" 2>/dev/null
    ip netns del "$CLI" 2>/dev/null
    ((CREATED_RUN_SSHD)) && rmdir /run/sshd 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap "exit 130" INT TERM  # exit, which runs cleanup

s() { ip netns exec "$SRV" "$@"; }      # run in the server namespace
# Servers are started with `ip netns exec` itself (not through s), so that $! is the server.
c() { timeout 20 ip netns exec "$CLI" "$@"; }   # a bounded client command

wait_port() {  # wait_port PROTO PORT: until a server listens on it in the server namespace
    local i
    for i in $(seq 50); do
        s ss -lnH "--$1" "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    echo "no server on $1 port $2" >&2
    return 1
}

start_capture() {  # start_capture NAME: tcpdump on the client end into $OUT/NAME.pcap
    ip netns exec "$CLI" tcpdump -i "$CIF" -s 0 --immediate-mode -Z root -w "$OUT/$1.pcap" 2>"$TMP/tcpdump.$1" &
    CAPTURE=$!
    PIDS+=("$CAPTURE")
    local i
    for i in $(seq 200); do  # 20 s: tcpdump can be slow to start on a loaded machine
        grep -q "listening on" "$TMP/tcpdump.$1" && return 0
        sleep 0.1
    done
    echo "tcpdump did not start" >&2
    return 1
}

stop_capture() {
    sleep 1  # the last packets (a FIN's ACK, a RELEASE) reach the capture
    kill -INT "$CAPTURE"
    wait "$CAPTURE" || true
    grep -E "packets? (captured|dropped)" "$TMP/tcpdump.$1" | tr '\n' ' ' >&2
    echo "<- $1" >&2
}

[[ $(id -u) == 0 ]] || { echo "record.sh: needs root (network namespaces)" >&2; exit 2; }
missing=()
for cmd in ip tcpdump dnsmasq busybox dig curl openssl ssh ssh-keygen /usr/sbin/sshd chronyd ntpdig \
           /usr/bin/python3; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if ((${#missing[@]})); then
    echo "record.sh: missing ${missing[*]} (apt-get install iproute2 tcpdump dnsmasq-base busybox" \
         "dnsutils curl openssl openssh-server openssh-client chrony ntpsec-ntpdate python3)" >&2
    exit 2
fi
mkdir -p "$OUT"
ip netns del "$SRV" 2>/dev/null || true
ip netns del "$CLI" 2>/dev/null || true

# -- the link: fixed MACs, IPv4 only (no IPv6 router/neighbour chatter in the captures)
ip netns add "$SRV"
ip netns add "$CLI"
ip link add "$SIF" address 02:00:0a:4d:00:01 netns "$SRV" type veth \
    peer name "$CIF" address 02:00:0a:4d:00:02 netns "$CLI"
for ns in "$SRV" "$CLI"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
s ip addr add "$SIP/24" dev "$SIF"
s ip link set "$SIF" up
c ip link set "$CIF" up
s sysctl -qw net.ipv6.conf.$SIF.disable_ipv6=1
c sysctl -qw net.ipv6.conf.$CIF.disable_ipv6=1

# -- servers
# dnsmasq: DHCP on the link and an authoritative local zone, nothing forwarded anywhere.
ip netns exec "$SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --interface="$SIF" --bind-interfaces --user=root --pid-file="$TMP/dnsmasq.pid" \
    --dhcp-range=10.77.0.50,10.77.0.59,255.255.255.0,10m --dhcp-leasefile="$TMP/leases" \
    --dhcp-authoritative --domain=netcap.test --local=/netcap.test/ \
    --host-record="$NAME,$SIP,fd00:77::1" --mx-host=netcap.test,mail.netcap.test,10 \
    --host-record=mail.netcap.test,10.77.0.2 --txt-record=netcap.test,"v=netcap test zone" \
    --log-facility="$TMP/dnsmasq.log" &
PIDS+=($!)
# HTTP: Python's http.server over a small directory.
mkdir -p "$TMP/www"
printf '<!doctype html>\n<title>netcap</title>\n<p>recorded test page</p>\n' > "$TMP/www/index.html"
head -c 3000 /dev/zero | tr '\0' 'x' > "$TMP/www/data.txt"
ip netns exec "$SRV" /usr/bin/python3 -m http.server 80 --bind "$SIP" --directory "$TMP/www" \
    >"$TMP/http.log" 2>&1 &
PIDS+=($!)
# TLS: openssl s_server with a fresh self-signed certificate for $NAME.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$NAME" -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
ip netns exec "$SRV" openssl s_server -quiet -accept "$SIP:443" -cert "$TMP/tls.crt" -key "$TMP/tls.key" -www \
    >"$TMP/tls.log" 2>&1 &
PIDS+=($!)
# SSH: OpenSSH's sshd with its own host key and one authorized client key.
[[ -d /run/sshd ]] || { mkdir -p /run/sshd; CREATED_RUN_SSHD=1; }
ssh-keygen -q -t ed25519 -N '' -f "$TMP/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/client_key"
cp "$TMP/client_key.pub" "$TMP/authorized_keys"
cat > "$TMP/sshd_config" <<EOF
ListenAddress $SIP
Port 22
HostKey $TMP/host_key
AuthorizedKeysFile $TMP/authorized_keys
PidFile $TMP/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
EOF
ip netns exec "$SRV" /usr/sbin/sshd -D -e -f "$TMP/sshd_config" 2>"$TMP/sshd.log" &
PIDS+=($!)
# NTP: chronyd serving its own clock (never setting the system's: -x).
cat > "$TMP/chrony.conf" <<EOF
local stratum 8
allow 10.77.0.0/24
bindaddress $SIP
cmdport 0
pidfile $TMP/chronyd.pid
driftfile $TMP/chrony.drift
EOF
ip netns exec "$SRV" chronyd -d -x -f "$TMP/chrony.conf" >"$TMP/chrony.log" 2>&1 &
PIDS+=($!)

wait_port udp 67
wait_port udp 53
wait_port tcp 80
wait_port tcp 443
wait_port tcp 22
wait_port udp 123

# -- DHCP: the client's address
cat > "$TMP/udhcpc.sh" <<'EOF'
#!/bin/sh
# busybox udhcpc event script: set the leased address on the interface, nothing else.
case "$1" in
    bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
    deconfig) ip addr flush dev "$interface" ;;
esac
EOF
chmod +x "$TMP/udhcpc.sh"
start_capture dhcp
c busybox udhcpc -i "$CIF" -f -q -n -t 5 -T 2 -x hostname:netcap-client -s "$TMP/udhcpc.sh" >/dev/null
CIP=$(ip netns exec "$CLI" ip -4 -o addr show dev "$CIF" | awk '{print $4}' | cut -d/ -f1)
# a second client run that holds the lease until it is stopped, and releases it then (-R):
# DISCOVER/OFFER/REQUEST/ACK of the same address, then RELEASE; then the lease is taken again
ip netns exec "$CLI" busybox udhcpc -i "$CIF" -f -R -t 5 -T 2 -r "$CIP" -x hostname:netcap-client \
    -s "$TMP/udhcpc.sh" >/dev/null 2>&1 &
HOLDER=$!
PIDS+=("$HOLDER")
for _ in $(seq 50); do
    sleep 0.2
    ip netns exec "$CLI" ip -4 -o addr show dev "$CIF" | grep -q "$CIP" && break
done
sleep 0.5
kill -TERM "$HOLDER"
wait "$HOLDER" || true
c busybox udhcpc -i "$CIF" -f -q -n -t 5 -T 2 -r "$CIP" -x hostname:netcap-client \
    -s "$TMP/udhcpc.sh" >/dev/null
stop_capture dhcp
CIP=$(ip netns exec "$CLI" ip -4 -o addr show dev "$CIF" | awk '{print $4}' | cut -d/ -f1)
[[ -n "$CIP" ]] || { echo "record.sh: no DHCP lease" >&2; exit 1; }
echo "client address $CIP (DHCP)" >&2

# -- DNS
start_capture dns
c dig +tries=1 +time=2 @"$SIP" "$NAME" A >/dev/null
c dig +tries=1 +time=2 @"$SIP" "$NAME" AAAA >/dev/null
c dig +tries=1 +time=2 @"$SIP" netcap.test MX >/dev/null
c dig +tries=1 +time=2 @"$SIP" netcap.test TXT >/dev/null
c dig +tries=1 +time=2 @"$SIP" missing.netcap.test A >/dev/null
c dig +tries=1 +time=2 +tcp @"$SIP" "$NAME" A >/dev/null
stop_capture dns

# -- HTTP
start_capture http
c curl -sS -o /dev/null -A "netcap-recorder/1 curl" "http://$NAME/" --resolve "$NAME:80:$SIP"
c curl -sS -o /dev/null "http://$NAME/missing" --resolve "$NAME:80:$SIP"
c curl -sS -o /dev/null -I "http://$NAME/data.txt" --resolve "$NAME:80:$SIP"
c curl -sS -o /dev/null "http://$SIP/data.txt?size=3000&x=1" -H "Cookie: session=recorded"
stop_capture http

# -- TLS 1.2 and 1.3 (SNI and ALPN from curl; openssl s_client with its own hello)
start_capture tls
c curl -sS -k -o /dev/null --tlsv1.2 --tls-max 1.2 "https://$NAME/" --resolve "$NAME:443:$SIP"
c curl -sS -k -o /dev/null --tlsv1.3 "https://$NAME/" --resolve "$NAME:443:$SIP"
c openssl s_client -connect "$SIP:443" -servername "$NAME" -tls1_3 </dev/null >/dev/null 2>&1
stop_capture tls

# -- SSH
start_capture ssh
c ssh -i "$TMP/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o BatchMode=yes -o LogLevel=ERROR "root@$SIP" true
stop_capture ssh

# -- NTP
start_capture ntp
for _ in 1 2 3 4; do c ntpdig -t 2 "$SIP" >/dev/null; done
stop_capture ntp

# -- the sample: all of the above, one after the other (same link type and snap length)
python3 - "$OUT" "$SAMPLE" <<'EOF'
import sys
from pathlib import Path
out = Path(sys.argv[1])
parts = [(out / f"{n}.pcap").read_bytes() for n in ("dhcp", "dns", "http", "tls", "ssh", "ntp")]
assert len({p[:24] for p in parts}) == 1, "the captures differ in their file headers"
Path(sys.argv[2]).write_bytes(parts[0] + b"".join(p[24:] for p in parts[1:]))
EOF

# -- what it was made with
{
    echo "recorded $(date -u +%Y-%m-%dT%H:%M:%SZ) on Debian $(cat /etc/debian_version), kernel $(uname -r)"
    dpkg-query -W -f '${Package} ${Version}\n' iproute2 tcpdump dnsmasq-base busybox dnsutils curl \
        openssl openssh-server openssh-client chrony ntpsec-ntpdate python3.11 tshark 2>/dev/null
} > "$OUT/VERSIONS.txt"
ls -l "$OUT"/*.pcap "$SAMPLE" >&2
if command -v tshark >/dev/null; then
    python3 "$HERE/make_oracle.py" "$OUT"
else
    echo "record.sh: tshark not found: $OUT/oracle not regenerated" >&2
fi
