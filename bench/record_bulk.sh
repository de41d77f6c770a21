#!/usr/bin/env bash
# Record the bulk-heavy bench capture: real servers and clients in two network namespaces this
# script creates, large transfers between them, captured with tcpdump on the client's end of
# the veth pair. The handshake-rich bench capture (make_bench_pcap.py) is mostly hellos and
# small transactions; this one is mostly payload, as a busy link's traffic is.
#
#   bench/record_bulk.sh [OUT]     (root; default bench/out/bulk.pcap; `make bench-bulk`)
#
# In this order, each transfer its own TCP connection unless said:
#   HTTP  python3 -m http.server :80  <- curl: 64 MiB binary, 32 MiB text, and 16 x 1 MiB
#                                        binary on one keep-alive connection
#   TLS   openssl s_server -WWW :443  <- curl -k: 64 MiB over TLS 1.3, 32 MiB over TLS 1.2
#   SSH   OpenSSH sshd :22            <- scp (SFTP): 64 MiB, with a throwaway key
# About 300 MB and 225,000 packets. The files are the same every time (seeded); the packets
# differ a little between recordings (ACK timing), the byte counts per protocol do not.
# Transfers are rate-limited (25 MB/s) so that tcpdump keeps up on a loaded machine; the
# script fails if tcpdump reports a dropped packet. Segments are MSS-sized as on a real link:
# the veth ends are told to build no GSO packets (gso_max_segs 1), or tcpdump would see
# 64 KiB "packets".
#
# Needs root and the Debian packages iproute2 tcpdump curl openssl openssh-server
# openssh-client python3 (`make bench-bulk` installs them: tools/setup bench). Only
# 10.78.0.0/24 inside the two namespaces is used; every client call is bounded by `timeout`;
# namespaces, servers and temporary files are removed on any exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(realpath -m "${1:-$HERE/out/bulk.pcap}")
SRV=nc-bulk-srv CLI=nc-bulk-cli      # namespaces
SIF=nc-bulk-s CIF=nc-bulk-c          # the two ends of the veth pair
SIP=10.78.0.1 CIP=10.78.0.2
NAME=bulk.netcap.test                # SNI and Host
RATE=25M                             # curl --limit-rate (bytes/s); scp -l is in Kbit/s
TMP=$(mktemp -d /tmp/netcap-bulk.XXXXXX)
PIDS=()
CREATED_RUN_SSHD=0

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    ip netns del "$SRV" 2>/dev/null
    ip netns del "$CLI" 2>/dev/null
    ((CREATED_RUN_SSHD)) && rmdir /run/sshd 2>/dev/null
    rm -rf "$TMP" "$OUT.part"
}
trap cleanup EXIT
trap "exit 130" INT TERM  # exit, which runs cleanup

s() { ip netns exec "$SRV" "$@"; }                # run in the server namespace
c() { timeout 120 ip netns exec "$CLI" "$@"; }    # a bounded client command

wait_port() {  # wait_port PORT: until a server listens on TCP PORT in the server namespace
    local i
    for i in $(seq 100); do
        s ss -lntH "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    echo "record_bulk.sh: no server on port $1" >&2
    return 1
}

[[ $(id -u) == 0 ]] || { echo "record_bulk.sh: needs root (network namespaces)" >&2; exit 2; }
missing=()
for cmd in ip ss tcpdump curl openssl ssh-keygen scp /usr/sbin/sshd python3; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if ((${#missing[@]})); then
    echo "record_bulk.sh: missing ${missing[*]} (apt-get install iproute2 tcpdump curl openssl" \
         "openssh-server openssh-client python3)" >&2
    exit 2
fi
mkdir -p "$(dirname "$OUT")"
ip netns del "$SRV" 2>/dev/null || true
ip netns del "$CLI" 2>/dev/null || true

# -- the link: fixed MACs, IPv4 only, no GSO (MSS-sized segments on the wire)
ip netns add "$SRV"
ip netns add "$CLI"
ip link add "$SIF" address 02:00:0a:4e:00:01 netns "$SRV" type veth \
    peer name "$CIF" address 02:00:0a:4e:00:02 netns "$CLI"
for ns in "$SRV" "$CLI"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
s ip link set "$SIF" gso_max_segs 1
c ip link set "$CIF" gso_max_segs 1
s ip addr add "$SIP/24" dev "$SIF"
c ip addr add "$CIP/24" dev "$CIF"
s ip link set "$SIF" up
c ip link set "$CIF" up

# -- the files served: the same bytes every time
mkdir -p "$TMP/www"
python3 - "$TMP/www" <<'EOF'
import random
import sys
from pathlib import Path

www = Path(sys.argv[1])
rng = random.Random(13)
MiB = 1 << 20
(www / "big.bin").write_bytes(rng.randbytes(64 * MiB))
(www / "mid.bin").write_bytes(rng.randbytes(32 * MiB))
for i in range(16):
    (www / f"part{i:02d}.bin").write_bytes(rng.randbytes(MiB))
line = "%08d the quick brown fox jumps over the lazy dog, a log line of a bulk text file\n"
text = "".join(line % i for i in range(32 * MiB // len(line % 0) + 1))
(www / "big.txt").write_text(text[:32 * MiB])
EOF

# -- servers
ip netns exec "$SRV" python3 -m http.server 80 --bind "$SIP" --directory "$TMP/www" \
    >"$TMP/http.log" 2>&1 &
PIDS+=($!)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$NAME" -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
# -WWW serves files relative to its working directory
(cd "$TMP/www" && exec ip netns exec "$SRV" openssl s_server -quiet -accept "$SIP:443" \
    -cert "$TMP/tls.crt" -key "$TMP/tls.key" -WWW >"$TMP/tls.log" 2>&1) &
PIDS+=($!)
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
Subsystem sftp internal-sftp
EOF
ip netns exec "$SRV" /usr/sbin/sshd -D -e -f "$TMP/sshd_config" 2>"$TMP/sshd.log" &
PIDS+=($!)
wait_port 80
wait_port 443
wait_port 22

# -- the capture: the client's end, whole packets, a large kernel buffer (and no
# --immediate-mode: a wake-up per packet makes tcpdump drop on a loaded machine)
ip netns exec "$CLI" tcpdump -i "$CIF" -s 0 -B 131072 -Z root -w "$OUT.part" \
    2>"$TMP/tcpdump.log" &
CAPTURE=$!
PIDS+=("$CAPTURE")
for _ in $(seq 200); do  # 20 s: tcpdump can be slow to start on a loaded machine
    grep -q "listening on" "$TMP/tcpdump.log" && break
    sleep 0.1
done
grep -q "listening on" "$TMP/tcpdump.log" || { echo "record_bulk.sh: tcpdump did not start" >&2; exit 1; }

get() { c curl -sS --fail --limit-rate "$RATE" -o /dev/null "$@"; }
# HTTP/1.1: two large downloads, then 16 on one connection
get -A "netcap-bulk/1 curl" "http://$NAME/big.bin" --resolve "$NAME:80:$SIP"
get "http://$NAME/big.txt" --resolve "$NAME:80:$SIP"
parts=()  # curl pairs each -o with one URL
for i in $(seq -f %02g 1 15); do parts+=(-o /dev/null "http://$NAME/part$i.bin"); done
get --resolve "$NAME:80:$SIP" "http://$NAME/part00.bin" "${parts[@]}"
# TLS 1.3 and 1.2 (openssl s_server answers HTTP/1.0 and closes after the file)
get -k --tlsv1.3 "https://$NAME/big.bin" --resolve "$NAME:443:$SIP"
get -k --tlsv1.2 --tls-max 1.2 "https://$NAME/mid.bin" --resolve "$NAME:443:$SIP"
# SSH: one file copied from the server
c scp -q -i "$TMP/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o BatchMode=yes -o LogLevel=ERROR -l 200000 "root@$SIP:$TMP/www/big.bin" "$TMP/copy.bin"
cmp -s "$TMP/copy.bin" "$TMP/www/big.bin" || { echo "record_bulk.sh: scp copy differs" >&2; exit 1; }
rm -f "$TMP/copy.bin"

sleep 1  # the last FIN's ACK reaches the capture
kill -INT "$CAPTURE"
wait "$CAPTURE" || true
cat "$TMP/tcpdump.log" >&2
if ! grep -q "^0 packets dropped by kernel" "$TMP/tcpdump.log"; then
    echo "record_bulk.sh: tcpdump dropped packets; run again on a quieter machine" >&2
    exit 1
fi
mv "$OUT.part" "$OUT"
ls -l "$OUT" >&2
