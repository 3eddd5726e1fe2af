#!/bin/bash
# Datapath, side by side in one run, in the namespace cluster of
# tests/netns/lib.sh (rack 1 host h11 -> rack 2 host h21, through both rack
# bridges and the router):
#   limit   host h11 to host h21 over the same veths, bridges and router
#           (the fabric itself, no pods)
#   larch   pod on h11 to pod on h21 through Larch's routes (plain routing)
#   vxlan   pods on the same two hosts over a VXLAN overlay built the way
#           flannel's vxlan backend builds it: a cni0 bridge per host, a
#           /24 per host, flannel.1 (VNI 1, port 8472) with a static
#           neighbour and FDB entry per remote host, MTU 1450
# Throughput: iperf3 TCP, one stream, TIME seconds; latency: ping RTT
# (COUNT probes, 5 ms apart). Rounds interleave the three paths.
# Usage: bench/datapath.sh [ROUNDS] [TIME] [COUNT]
set -eu
cd "$(dirname "$0")/.."
NSP=lxp
. tests/netns/lib.sh
ROUNDS=${1:-3}
T=${2:-5}
COUNT=${3:-200}
trap cluster_down EXIT INT TERM
HOSTS="h11 h21"
RESYNC=30

cluster_up
pod_add h11 a t1 web
pod_add h21 a t1 web
A=$(pod_ip h21 a 4)

# flannel-style overlay between h11 and h21
vx() { # vx HOST N(this host's /24 index) PEER_UNDERLAY PEER_N PEER_MAC
	local h=$1
	ns "$h" ip link add cni0 type bridge
	ns "$h" ip addr add "10.244.$2.1/24" dev cni0
	ns "$h" ip link set cni0 up
	ns "$h" ip link add flannel.1 type vxlan id 1 local "$(host_ip "$h")" dev eth0 dstport 8472 nolearning
	ns "$h" ip link set flannel.1 mtu 1450 address "02:00:00:00:00:0$2" up
	ns "$h" ip addr add "10.244.$2.0/32" dev flannel.1
	ns "$h" ip route add "10.244.$4.0/24" via "10.244.$4.0" dev flannel.1 onlink
	ns "$h" ip neigh add "10.244.$4.0" lladdr "$5" dev flannel.1 nud permanent
	ns "$h" bridge fdb add "$5" dev flannel.1 dst "$3"
	ip netns add "$NSP-ov-$h"
	ip link add veth0 netns "$NSP-ov-$h" mtu 1450 type veth peer name "ov$h" netns "$NSP-$h" mtu 1450
	ns "$h" ip link set "ov$h" master cni0 up
	ns "ov-$h" ip link set lo up
	ns "ov-$h" ip link set veth0 up
	ns "ov-$h" ip addr add "10.244.$2.2/24" dev veth0
	ns "ov-$h" ip route add default via "10.244.$2.1"
}
vx h11 1 "$(host_ip h21)" 2 02:00:00:00:00:02
vx h21 2 "$(host_ip h11)" 1 02:00:00:00:00:01
ns h21 iperf3 -s -D -B "$(host_ip h21)" --pidfile "$DIR/ip-host.pid"
ns p-h21-a iperf3 -s -D -B "$A" --pidfile "$DIR/ip-pod.pid"
ns ov-h21 iperf3 -s -D -B 10.244.2.2 --pidfile "$DIR/ip-ov.pid"
sleep 0.5

machine
echo "# iperf3 TCP 1 stream ${T}s; ping $COUNT x 5 ms; $ROUNDS interleaved rounds"
enc_before=$(for h in $HOSTS; do ns "$h" ip -d -o link show; done | grep -c vxlan || true)
for r in $(seq 1 "$ROUNDS"); do
	echo "limit $(gbps h11 "$(host_ip h21)") $(rtt h11 "$(host_ip h21)")" | tee -a "$DIR/res"
	echo "larch $(gbps p-h11-a "$A") $(rtt p-h11-a "$A")" | tee -a "$DIR/res"
	echo "vxlan $(gbps ov-h11 10.244.2.2) $(rtt ov-h11 10.244.2.2)" | tee -a "$DIR/res"
done
echo "# columns: path Gbit/s rtt_p50_ms rtt_p99_ms; medians over the rounds:"
python3 - "$DIR/res" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    p, g, l50, l99 = line.split()
    rows.setdefault(p, []).append((float(g), float(l50), float(l99)))
med = {p: [statistics.median(x[i] for x in v) for i in range(3)] for p, v in rows.items()}
for p, (g, l50, l99) in med.items():
    print(f"{p:6} {g:7.2f} Gbit/s  rtt p50 {l50:.3f} ms  p99 {l99:.3f} ms  "
          f"throughput {100 * g / med['limit'][0]:5.1f}% of limit  rtt p50 {100 * l50 / med['limit'][1]:5.1f}% of limit")
EOF
echo "# (the vxlan device exists only for the overlay comparison: $enc_before on the hosts; Larch's path uses none)"
